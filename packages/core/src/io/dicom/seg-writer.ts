/**
 * DICOM SEG writer: a label Volume as a BINARY Segmentation Storage object (PS3.3 A.51), explicit VR
 * little endian, one 1-bit frame per (segment, slice) that holds any voxel of the segment, frames packed
 * LSB first and continuously (PS3.5 8.1.1). The frames lie on the volume's own grid (its slices), so a
 * SEG written from labels on a CT's grid reads back onto that grid. Deterministic UIDs (uidFromText).
 */
import { GeometryError, LimitError, UsageError } from '../../errors.js';
import { cross, dot, norm, type Point3 } from '../../math/vec3.js';
import type { Volume } from '../../volume/volume.js';
import { dicomElements, formatDS, part10File, uidFromText, writeSequence } from './writer.js';
import { SOP_CLASS } from './tags.js';

export interface DicomSegWriteSegment {
  /** SegmentNumber (0062,0004), 1-65535. */
  number: number;
  /** SegmentLabel (0062,0005). */
  label: string;
  /** Label values of the volume that make up this segment. */
  values: readonly number[];
}

export interface DicomSegWriteOptions {
  segments: readonly DicomSegWriteSegment[];
  /** The series the segmentation was made on: ReferencedSeriesSequence (0008,1115). */
  referencedSeriesUid?: string;
  frameOfReferenceUid?: string;
  seriesInstanceUid?: string;
  /** Extra text mixed into the generated UIDs. */
  uidSeed?: string;
}

const ds = (v: readonly number[]) => v.map(formatDS).join('\\');

/** Write `labels` as a DICOM SEG with the given segments (each a set of label values). */
export function writeDicomSeg(labels: Volume, options: DicomSegWriteOptions): Uint8Array {
  const source = labels.meta.source ?? 'labels';
  const [ni, nj, nk] = labels.dims;
  if (ni > 65535 || nj > 65535) throw new LimitError(`slices of ${ni} x ${nj} exceed 65535 rows/columns`, source);
  const m = labels.indexToPatient;
  const col = (c: number): Point3 => [m[c], m[4 + c], m[8 + c]];
  const [ai, aj, ak] = [col(0), col(1), col(2)];
  const [di, dj, dk] = [norm(ai), norm(aj), norm(ak)];
  const rowDir: Point3 = [ai[0] / di, ai[1] / di, ai[2] / di];
  const colDir: Point3 = [aj[0] / dj, aj[1] / dj, aj[2] / dj];
  const normal = cross(rowDir, colDir);
  if (Math.abs(dot(rowDir, colDir)) > 1e-6 || Math.abs(Math.abs(dot(normal, ak)) - dk) > 1e-6 * dk) {
    throw new GeometryError('the label grid is sheared: its slices are not normal to its rows and columns', source);
  }
  const seen = new Set<number>();
  const segmentOf = new Uint16Array(65536);
  for (const s of options.segments) {
    if (!Number.isInteger(s.number) || s.number < 1 || s.number > 65535 || seen.has(s.number)) {
      throw new UsageError(`segment number ${s.number} is not a new integer 1-65535`, source);
    }
    seen.add(s.number);
    for (const v of s.values) {
      if (!Number.isInteger(v) || v < 1 || v > 65535) throw new UsageError(`label value ${v} is not 1-65535`, source);
      segmentOf[v] = s.number;
    }
  }
  const data = labels.data;
  const plane = ni * nj;
  // Frames in segment order, then slice order: only slices holding the segment get a frame.
  const frames: { segment: number; k: number }[] = [];
  const present = new Uint8Array(65536);
  const segs = [...options.segments].sort((a, b) => a.number - b.number);
  const inSlice: Set<number>[] = [];
  for (let k = 0; k < nk; k++) {
    const here = new Set<number>();
    present.fill(0);
    for (let p = k * plane, end = p + plane; p < end; p++) {
      const v = data[p];
      if (v > 0 && v < 65536 && !present[v]) {
        present[v] = 1;
        if (segmentOf[v]) here.add(segmentOf[v]);
      }
    }
    inSlice.push(here);
  }
  for (const s of segs)
    for (let k = 0; k < nk; k++) if (inSlice[k].has(s.number)) frames.push({ segment: s.number, k });
  if (frames.length === 0) throw new UsageError('no voxel belongs to any of the segments', source);
  const bits = frames.length * plane;
  const pixels = new Uint8Array(Math.ceil(bits / 8) + (Math.ceil(bits / 8) % 2));
  let bit = 0;
  for (const f of frames) {
    for (let p = f.k * plane, end = p + plane; p < end; p++, bit++) {
      const v = data[p];
      if (v > 0 && v < 65536 && segmentOf[v] === f.segment) pixels[bit >>> 3] |= 1 << (bit & 7);
    }
  }
  const seed = options.uidSeed ?? '';
  const sopInstanceUid = uidFromText(`seg instance ${seed} ${source}`);
  const seriesUid = options.seriesInstanceUid ?? uidFromText(`seg series ${seed} ${source}`);
  const forUid = options.frameOfReferenceUid ?? labels.meta.frameOfReferenceUid ?? uidFromText(`seg for ${seed}`);
  const body = dicomElements((w) => {
    w.str(0x0008, 0x0016, 'UI', SOP_CLASS.Segmentation);
    w.str(0x0008, 0x0018, 'UI', sopInstanceUid);
    w.str(0x0008, 0x0060, 'CS', 'SEG');
    const referenced = options.referencedSeriesUid;
    if (referenced) writeSequence(w, 0x0008, 0x1115, [dicomElements((r) => r.str(0x0020, 0x000e, 'UI', referenced))]);
    w.str(0x0020, 0x000e, 'UI', seriesUid);
    w.str(0x0020, 0x0052, 'UI', forUid);
    w.us(0x0028, 0x0002, 1);
    w.str(0x0028, 0x0004, 'CS', 'MONOCHROME2');
    w.str(0x0028, 0x0008, 'IS', String(frames.length));
    w.us(0x0028, 0x0010, nj);
    w.us(0x0028, 0x0011, ni);
    w.us(0x0028, 0x0100, 1);
    w.us(0x0028, 0x0101, 1);
    w.us(0x0028, 0x0102, 0);
    w.us(0x0028, 0x0103, 0);
    w.str(0x0062, 0x0001, 'CS', 'BINARY');
    writeSequence(
      w,
      0x0062,
      0x0002,
      segs.map((s) =>
        dicomElements((e) => {
          e.us(0x0062, 0x0004, s.number);
          e.str(0x0062, 0x0005, 'LO', s.label);
        }),
      ),
    );
    const shared = dicomElements((s) => {
      writeSequence(s, 0x0020, 0x9116, [dicomElements((o) => o.str(0x0020, 0x0037, 'DS', ds([...rowDir, ...colDir])))]);
      writeSequence(s, 0x0028, 0x9110, [
        dicomElements((e) => {
          e.str(0x0018, 0x0050, 'DS', formatDS(dk));
          e.str(0x0018, 0x0088, 'DS', formatDS(dk));
          e.str(0x0028, 0x0030, 'DS', ds([dj, di]));
        }),
      ]);
    });
    writeSequence(w, 0x5200, 0x9229, [shared]);
    const perFrame = frames.map((f) =>
      dicomElements((s) => {
        const pos = [0, 1, 2].map((x) => m[4 * x + 2] * f.k + m[4 * x + 3]);
        writeSequence(s, 0x0020, 0x9113, [dicomElements((p) => p.str(0x0020, 0x0032, 'DS', ds(pos)))]);
        writeSequence(s, 0x0062, 0x000a, [dicomElements((g) => g.us(0x0062, 0x000b, f.segment))]);
      }),
    );
    writeSequence(w, 0x5200, 0x9230, perFrame);
    w.ob(0x7fe0, 0x0010, pixels);
  });
  return part10File(SOP_CLASS.Segmentation, sopInstanceUid, body);
}
