/**
 * DICOM SEG writer: a label Volume as a BINARY Segmentation Storage object (PS3.3 A.51), explicit VR
 * little endian, one 1-bit frame per (segment, slice) that holds any voxel of the segment, frames packed
 * LSB first and continuously (PS3.5 8.1.1). The frames lie on the volume's own grid (its slices), so a
 * SEG written from labels on a CT's grid reads back onto that grid. Deterministic UIDs (uidFromText).
 */
import { GeometryError, LimitError, UsageError } from '../../errors.js';
import { cross, dot, norm, type Point3 } from '../../math/vec3.js';
import type { Volume } from '../../volume/volume.js';
import { part10File, uidFromText } from './writer.js';
import { DicomDatasetWriter, addCommonModules, codeItem, dicomDateTime, type DicomCode } from './dataset-writer.js';
import { SOP_CLASS } from './tags.js';

export interface DicomSegWriteSegment {
  /** SegmentNumber (0062,0004), 1-65535. */
  number: number;
  /** SegmentLabel (0062,0005). */
  label: string;
  /** Label values of the volume that make up this segment. */
  values: readonly number[];
  /** SegmentAlgorithmType (0062,0008): default AUTOMATIC (named by the options' algorithmName). */
  algorithmType?: 'AUTOMATIC' | 'SEMIAUTOMATIC' | 'MANUAL';
  /** Segmented Property Category and Type codes; default SCT 85756007 "Tissue" for both. */
  category?: DicomCode;
  type?: DicomCode;
}

export interface DicomSegWriteOptions {
  segments: readonly DicomSegWriteSegment[];
  /** The series the segmentation was made on: ReferencedSeriesSequence (0008,1115). */
  referencedSeriesUid?: string;
  frameOfReferenceUid?: string;
  seriesInstanceUid?: string;
  /** The referenced series' instances (Common Instance Reference); written with referencedSeriesUid. */
  referencedInstances?: readonly { sopClassUid: string; sopInstanceUid: string }[];
  /** Extra text mixed into the generated UIDs. */
  uidSeed?: string;
  patientName?: string;
  patientId?: string;
  studyInstanceUid?: string;
  studyDate?: string;
  seriesNumber?: number;
  seriesDescription?: string;
  contentDescription?: string;
  /** Content Date and Time (0008,0023/0033); default: now. */
  contentDate?: Date;
  /** SegmentAlgorithmName (0062,0009) of automatic segments (default 'Corridor'). */
  algorithmName?: string;
}

const TISSUE_CATEGORY: DicomCode = { value: '85756007', scheme: 'SCT', meaning: 'Tissue' };

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
  const meta = labels.meta;
  const ds = new DicomDatasetWriter();
  addCommonModules(ds, SOP_CLASS.Segmentation, sopInstanceUid, {
    patientName: options.patientName ?? meta.patientName ?? '',
    patientId: options.patientId ?? meta.patientId ?? '',
    studyInstanceUid: options.studyInstanceUid ?? meta.studyInstanceUid ?? uidFromText(`seg study ${seed} ${source}`),
    studyDate: options.studyDate ?? meta.studyDate ?? '',
    seriesInstanceUid: seriesUid,
    seriesNumber: options.seriesNumber ?? 100,
    seriesDescription: options.seriesDescription ?? 'Corridor segmentation',
    modality: 'SEG',
  });
  const content = dicomDateTime(options.contentDate ?? new Date());
  ds.str(0x00080008, 'CS', 'DERIVED\\PRIMARY')
    .str(0x00080023, 'DA', content.date)
    .str(0x00080033, 'TM', content.time)
    .str(0x00081090, 'LO', 'Corridor')
    .str(0x00181000, 'LO', 'software')
    .str(0x00200052, 'UI', forUid)
    .str(0x00201040, 'LO', '')
    .us(0x00280002, 1)
    .str(0x00280004, 'CS', 'MONOCHROME2')
    .str(0x00280008, 'IS', String(frames.length))
    .us(0x00280010, nj)
    .us(0x00280011, ni)
    .us(0x00280100, 1)
    .us(0x00280101, 1)
    .us(0x00280102, 0)
    .us(0x00280103, 0)
    .str(0x00282110, 'CS', '00')
    .str(0x00620001, 'CS', 'BINARY')
    // Content Identification: label, description, creator.
    .str(0x00700080, 'CS', 'SEGMENTATION')
    .str(0x00700081, 'LO', options.contentDescription ?? '')
    .str(0x00700084, 'PN', '');
  const referenced = options.referencedSeriesUid;
  if (referenced) {
    const instances = (options.referencedInstances ?? []).map((r) =>
      new DicomDatasetWriter().str(0x00081150, 'UI', r.sopClassUid).str(0x00081155, 'UI', r.sopInstanceUid),
    );
    const item = new DicomDatasetWriter().str(0x0020000e, 'UI', referenced);
    if (instances.length) item.sq(0x0008114a, instances);
    ds.sq(0x00081115, [item]);
  }
  const algorithmName = options.algorithmName ?? 'Corridor';
  ds.sq(
    0x00620002,
    segs.map((s) => {
      const item = new DicomDatasetWriter()
        .us(0x00620004, s.number)
        .str(0x00620005, 'LO', s.label)
        .str(0x00620008, 'CS', s.algorithmType ?? 'AUTOMATIC')
        .sq(0x00620003, [codeItem(s.category ?? TISSUE_CATEGORY)])
        .sq(0x0062000f, [codeItem(s.type ?? { value: '85756007', scheme: 'SCT', meaning: 'Tissue' })]);
      if ((s.algorithmType ?? 'AUTOMATIC') !== 'MANUAL') item.str(0x00620009, 'LO', algorithmName);
      return item;
    }),
  );
  // Multi-frame Dimension: frames indexed by segment number, then by plane position.
  const dimensionUid = uidFromText(`seg dimensions ${sopInstanceUid}`);
  ds.sq(0x00209221, [new DicomDatasetWriter().str(0x00209164, 'UI', dimensionUid)]);
  ds.sq(0x00209222, [
    new DicomDatasetWriter()
      .str(0x00209164, 'UI', dimensionUid)
      .at(0x00209165, 0x0062000b)
      .at(0x00209167, 0x0062000a)
      .str(0x00209421, 'LO', 'segment number'),
    new DicomDatasetWriter()
      .str(0x00209164, 'UI', dimensionUid)
      .at(0x00209165, 0x00200032)
      .at(0x00209167, 0x00209113)
      .str(0x00209421, 'LO', 'image position'),
  ]);
  const shared = new DicomDatasetWriter()
    .sq(0x00209116, [new DicomDatasetWriter().ds(0x00200037, [...rowDir, ...colDir])])
    .sq(0x00289110, [new DicomDatasetWriter().ds(0x00180050, [dk]).ds(0x00180088, [dk]).ds(0x00280030, [dj, di])]);
  ds.sq(0x52009229, [shared]);
  const kSlices = [...new Set(frames.map((f) => f.k))].sort((a, b) => a - b);
  const positionIndex = new Map(kSlices.map((k, i) => [k, i + 1]));
  ds.sq(
    0x52009230,
    frames.map((f) => {
      const pos = [0, 1, 2].map((x) => m[4 * x + 2] * f.k + m[4 * x + 3]);
      return new DicomDatasetWriter()
        .sq(0x00209111, [new DicomDatasetWriter().ulList(0x00209157, [f.segment, positionIndex.get(f.k) ?? 1])])
        .sq(0x00209113, [new DicomDatasetWriter().ds(0x00200032, pos)])
        .sq(0x0062000a, [new DicomDatasetWriter().us(0x0062000b, f.segment)]);
    }),
  );
  ds.ob(0x7fe00010, pixels);
  const body = ds.bytes();
  return part10File(SOP_CLASS.Segmentation, sopInstanceUid, body);
}
