/**
 * DICOM SEG (Segmentation Storage, PS3.3 A.51 / C.8.20) -> a label Volume whose voxel value is the segment
 * number. BINARY segmentations only: 1-bit frames, packed LSB first and continuously across frames (PS3.5
 * 8.1.1: a frame need not start on a byte boundary). Each frame is one plane of one segment, placed by its
 * Plane Position; with a reference grid (the CT's Volume) the labels are put on exactly that grid.
 */
import { FormatError, GeometryError, LimitError } from '../../errors.js';
import { cross, dot, type Point3 } from '../../math/vec3.js';
import { createVolume, MAX_VOXELS, type Volume } from '../../volume/volume.js';
import { DicomDataset, parseDicom } from './parse.js';
import { metaOf } from './series.js';
import { SOP_CLASS, TAG } from './tags.js';

const SEG_SOP_CLASS = SOP_CLASS.Segmentation;

const SEG_TAG = {
  SegmentationType: 'x00620001',
  SegmentSequence: 'x00620002',
  SegmentNumber: 'x00620004',
  SegmentLabel: 'x00620005',
  SegmentIdentificationSequence: 'x0062000a',
  ReferencedSegmentNumber: 'x0062000b',
  ReferencedSeriesSequence: 'x00081115',
} as const;

/** Direction cosines may differ by this much and still be the same orientation. */
const ORIENTATION_TOLERANCE = 1e-3;
/** Pixel spacings (mm) may differ by this much and still be the same. */
const SPACING_TOLERANCE_MM = 1e-3;
/** A frame matches a slice (or an in-plane offset a whole pixel) when within this fraction of a voxel. */
const INDEX_TOLERANCE = 0.1;

export interface DicomSegment {
  /** SegmentNumber (0062,0004): the voxel value of this segment in the label volume. */
  number: number;
  /** SegmentLabel (0062,0005), '' when absent. */
  label: string;
}

export interface DicomSegReadOptions {
  /** Put the labels on exactly this grid (the referenced CT's Volume); else on the SEG's own grid. */
  grid?: Volume;
}

export interface DicomSegResult {
  /** Label volume: 0 outside every segment, else the segment number (Uint16Array when a number is > 255). */
  volume: Volume<Uint8Array | Uint16Array>;
  segments: DicomSegment[];
  /** SeriesInstanceUID of the series the SEG was made on (ReferencedSeriesSequence), when it names one. */
  referencedSeriesUid?: string;
  warnings: string[];
}

interface SegFrame {
  index: number;
  segment: number;
  position: Point3;
}

function fmtList(v: readonly number[]): string {
  return `[${v.map((x) => +x.toFixed(4)).join(', ')}]`;
}

function isSeg(ds: DicomDataset): boolean {
  return ds.string(TAG.SopClassUid) === SEG_SOP_CLASS || ds.string(TAG.MediaStorageSopClassUid) === SEG_SOP_CLASS;
}

/** Whether a parsed data set is a DICOM SEG (for readers that should hand it to readDicomSeg). */
export function isDicomSeg(ds: DicomDataset): boolean {
  return isSeg(ds);
}

function unit(v: readonly number[]): Point3 {
  const n = Math.hypot(v[0], v[1], v[2]);
  return [v[0] / n, v[1] / n, v[2] / n];
}

/**
 * Read a DICOM SEG as a label volume plus its segment list. Overlapping segments: the higher segment
 * number wins (a warning counts the voxels). With `grid`, frames are matched to the grid's slices by
 * position; a SEG whose orientation or pixel spacing differs from the grid's is refused (GeometryError).
 */
export function readDicomSeg(bytes: Uint8Array, name: string, options: DicomSegReadOptions = {}): DicomSegResult {
  const ds = parseDicom(bytes, name);
  const warnings = ds.warnings;
  if (!isSeg(ds)) {
    throw new FormatError(`not a DICOM SEG (SOP class ${ds.string(TAG.SopClassUid) ?? 'missing'})`, name);
  }
  const type = ds.string(SEG_TAG.SegmentationType);
  if (type !== 'BINARY') {
    throw new FormatError(`SegmentationType ${type ?? '(missing)'} is not supported (only BINARY)`, name);
  }
  const bitsAllocated = ds.uint16(TAG.BitsAllocated);
  if (bitsAllocated !== 1) throw new FormatError(`BitsAllocated ${bitsAllocated ?? '(missing)'} is not 1`, name);
  const rows = ds.unsigned(TAG.Rows) ?? 0;
  const columns = ds.unsigned(TAG.Columns) ?? 0;
  if (rows < 1 || columns < 1) throw new FormatError(`image is empty (${columns} x ${rows})`, name);
  const frameCount = ds.number(TAG.NumberOfFrames) ?? 1;
  if (!Number.isSafeInteger(frameCount) || frameCount < 1) {
    throw new FormatError(`NumberOfFrames ${frameCount} is not a positive integer`, name);
  }
  const px = ds.element(TAG.PixelData);
  if (!px) throw new FormatError('no PixelData (7FE0,0010)', name);
  if (px.encapsulatedPixelData)
    throw new FormatError('encapsulated (compressed) SEG pixel data is not supported', name);
  const framePixels = rows * columns;
  const needBytes = Math.ceil((framePixels * frameCount) / 8);
  if (px.length < needBytes || px.dataOffset + needBytes > ds.bytes.length) {
    throw new FormatError(
      `pixel data holds ${Math.min(px.length, ds.bytes.length - px.dataOffset)} bytes but ${columns} x ${rows} x ` +
        `${frameCount} frame(s) at 1 bit need ${needBytes} (truncated file?)`,
      name,
    );
  }
  const pixels = ds.bytes.subarray(px.dataOffset, px.dataOffset + needBytes);

  // Segments.
  const segments: DicomSegment[] = [];
  const known = new Set<number>();
  for (const item of ds.sequence(SEG_TAG.SegmentSequence)) {
    const number = item.uint16(SEG_TAG.SegmentNumber);
    if (number === undefined || number < 1) throw new FormatError('a SegmentSequence item has no SegmentNumber', name);
    if (known.has(number)) throw new FormatError(`SegmentNumber ${number} occurs twice in SegmentSequence`, name);
    known.add(number);
    segments.push({ number, label: item.string(SEG_TAG.SegmentLabel) ?? '' });
  }
  if (segments.length === 0) throw new FormatError('SegmentSequence (0062,0002) lists no segments', name);
  segments.sort((a, b) => a.number - b.number);

  // Frames: position and segment of each.
  const shared = ds.item(TAG.SharedFunctionalGroupsSequence);
  const perFrame = ds.sequence(TAG.PerFrameFunctionalGroupsSequence);
  if (perFrame.length !== frameCount) {
    throw new FormatError(
      `PerFrameFunctionalGroupsSequence has ${perFrame.length} items for ${frameCount} frames`,
      name,
    );
  }
  let orientation: number[] | undefined;
  let pixelSpacing: number[] | undefined;
  let sliceSpacing: number | undefined;
  const frames: SegFrame[] = perFrame.map((pf, f) => {
    const pick = (tag: string) => pf.item(tag) ?? shared?.item(tag);
    const o = pick(TAG.PlaneOrientationSequence)?.vector(TAG.ImageOrientationPatient, 6);
    const measures = pick(TAG.PixelMeasuresSequence);
    const s = measures?.vector(TAG.PixelSpacing, 2);
    if (!o) throw new FormatError(`frame ${f + 1} has no Plane Orientation (0020,9116)`, name);
    if (!s) throw new FormatError(`frame ${f + 1} has no Pixel Measures PixelSpacing (0028,9110)`, name);
    if (orientation && !orientation.every((x, i) => Math.abs(x - o[i]) <= ORIENTATION_TOLERANCE)) {
      throw new GeometryError(`frame ${f + 1} orientation ${fmtList(o)} differs from ${fmtList(orientation)}`, name);
    }
    if (pixelSpacing && !pixelSpacing.every((x, i) => Math.abs(x - s[i]) <= SPACING_TOLERANCE_MM)) {
      throw new GeometryError(`frame ${f + 1} pixel spacing ${fmtList(s)} differs from ${fmtList(pixelSpacing)}`, name);
    }
    orientation ??= o;
    pixelSpacing ??= s;
    sliceSpacing ??= measures?.number(TAG.SpacingBetweenSlices);
    const position = pick(TAG.PlanePositionSequence)?.vector(TAG.ImagePositionPatient, 3) as Point3 | undefined;
    if (!position) throw new FormatError(`frame ${f + 1} has no Plane Position (0020,9113)`, name);
    const segment = pick(SEG_TAG.SegmentIdentificationSequence)?.uint16(SEG_TAG.ReferencedSegmentNumber);
    if (segment === undefined) throw new FormatError(`frame ${f + 1} has no ReferencedSegmentNumber (0062,000B)`, name);
    if (!known.has(segment)) {
      throw new FormatError(`frame ${f + 1} refers to segment ${segment}, which SegmentSequence does not list`, name);
    }
    return { index: f, segment, position };
  });
  if (!orientation || !pixelSpacing) throw new FormatError('no frames', name);
  const rowDir = unit(orientation.slice(0, 3));
  const colDir = unit(orientation.slice(3, 6));
  if (Math.abs(dot(rowDir, colDir)) > ORIENTATION_TOLERANCE) {
    throw new GeometryError(`ImageOrientationPatient ${fmtList(orientation)} is not orthogonal`, name);
  }
  const normal = cross(rowDir, colDir);
  const di = pixelSpacing[1];
  const dj = pixelSpacing[0];
  if (!(di > 0 && dj > 0)) throw new GeometryError(`PixelSpacing ${fmtList(pixelSpacing)} is not positive`, name);

  const source = `DICOM SEG ${name}`;
  const referencedSeriesUid = ds.item(SEG_TAG.ReferencedSeriesSequence)?.string(TAG.SeriesInstanceUid);
  const gridSeries = options.grid?.meta.seriesInstanceUid;
  if (options.grid && referencedSeriesUid && gridSeries && referencedSeriesUid !== gridSeries) {
    const gridName = options.grid.meta.source ?? 'the reference grid';
    throw new GeometryError(
      `the SEG was made on series ${referencedSeriesUid}, not on ${gridName} (series ${gridSeries}): ` +
        'give the CT series it segments',
      name,
    );
  }
  const placement = options.grid
    ? onGrid(options.grid, frames, { rowDir, colDir, di, dj, rows, columns }, name, ds, warnings)
    : ownGrid(frames, { rowDir, colDir, normal, di, dj, rows, columns, sliceSpacing }, name, warnings);
  const [ni, nj, nk] = placement.dims;
  const count = ni * nj * nk;
  if (count > MAX_VOXELS) throw new LimitError(`label volume of ${ni} x ${nj} x ${nk} voxels is too large`, name);
  const maxNumber = segments[segments.length - 1].number;
  const data = maxNumber > 255 ? new Uint16Array(count) : new Uint8Array(count);

  // Later (higher-numbered) segments overwrite earlier ones; frames of one segment keep file order.
  const order = [...frames].sort((a, b) => a.segment - b.segment || a.index - b.index);
  let overlaps = 0;
  for (const fr of order) {
    const { k, oi, oj } = placement.place[fr.index];
    const value = fr.segment;
    let bit = fr.index * framePixels;
    for (let r = 0; r < rows; r++) {
      let v = (k * nj + oj + r) * ni + oi;
      for (let c = 0; c < columns; c++, bit++, v++) {
        if ((pixels[bit >>> 3] >>> (bit & 7)) & 1) {
          const old = data[v];
          if (old !== 0 && old !== value) overlaps++;
          data[v] = value;
        }
      }
    }
  }
  if (overlaps > 0) {
    warnings.push(`${name}: ${overlaps} voxel(s) belong to more than one segment; the higher segment number is kept`);
  }
  const volume = createVolume({
    data,
    dims: placement.dims,
    indexToPatient: placement.indexToPatient,
    meta: { ...metaOf(ds, source), modality: 'SEG' },
  });
  const result: DicomSegResult = { volume, segments, warnings: [...new Set(warnings)] };
  if (referencedSeriesUid) result.referencedSeriesUid = referencedSeriesUid;
  return result;
}

interface InPlane {
  rowDir: Point3;
  colDir: Point3;
  di: number;
  dj: number;
  rows: number;
  columns: number;
}

interface Placement {
  dims: [number, number, number];
  indexToPatient: Float64Array;
  /** Per frame (by file index): its slice and the in-plane offset of its first pixel, in voxels. */
  place: { k: number; oi: number; oj: number }[];
}

/** The SEG's own grid: the frames' plane, k along the normal from the lowest frame, step from the gaps. */
function ownGrid(
  frames: SegFrame[],
  g: InPlane & { normal: Point3; sliceSpacing: number | undefined },
  name: string,
  warnings: string[],
): Placement {
  const origin0 = frames[0].position;
  const along = frames.map((f) => dot(g.normal, f.position));
  // Every frame's position must lie on the line through the first one along the normal.
  for (const f of frames) {
    const d: Point3 = [f.position[0] - origin0[0], f.position[1] - origin0[1], f.position[2] - origin0[2]];
    const u = dot(d, g.rowDir) / g.di;
    const w = dot(d, g.colDir) / g.dj;
    if (Math.abs(u) > INDEX_TOLERANCE || Math.abs(w) > INDEX_TOLERANCE) {
      throw new GeometryError(
        `frame ${f.index + 1} at ${fmtList(f.position)} is off the stack by (${u.toFixed(2)}, ${w.toFixed(2)}) pixels`,
        name,
      );
    }
  }
  const sorted = [...along].sort((a, b) => a - b);
  const distinct: number[] = [];
  for (const s of sorted) if (distinct.length === 0 || s - distinct[distinct.length - 1] > 1e-3) distinct.push(s);
  let dk = g.sliceSpacing;
  if (dk === undefined || !(dk > 0)) {
    let smallest = Infinity;
    for (let i = 1; i < distinct.length; i++) smallest = Math.min(smallest, distinct[i] - distinct[i - 1]);
    if (Number.isFinite(smallest)) dk = smallest;
    else {
      dk = 1;
      warnings.push(`${name}: one plane and no SpacingBetweenSlices; 1 mm assumed along the normal`);
    }
  }
  const s0 = distinct[0];
  const place = frames.map((f, i) => {
    const q = (along[i] - s0) / dk;
    const k = Math.round(q);
    if (Math.abs(q - k) > INDEX_TOLERANCE) {
      throw new GeometryError(
        `frame ${f.index + 1} lies ${(q * dk).toFixed(3)} mm from the first plane, not a multiple of the ` +
          `${dk.toFixed(3)} mm slice step`,
        name,
      );
    }
    return { k, oi: 0, oj: 0 };
  });
  const nk = Math.round((distinct[distinct.length - 1] - s0) / dk) + 1;
  if (nk > 65536) throw new LimitError(`the frames span ${nk} slices of ${dk} mm`, name);
  // Origin: the first frame's position moved along the normal to the lowest plane.
  const shift = dot(g.normal, origin0) - s0;
  const o: Point3 = [
    origin0[0] - shift * g.normal[0],
    origin0[1] - shift * g.normal[1],
    origin0[2] - shift * g.normal[2],
  ];
  const { rowDir: r, colDir: c, normal: n, di, dj } = g;
  return {
    dims: [g.columns, g.rows, nk],
    indexToPatient: Float64Array.of(
      ...[r[0] * di, c[0] * dj, n[0] * dk, o[0]],
      ...[r[1] * di, c[1] * dj, n[1] * dk, o[1]],
      ...[r[2] * di, c[2] * dj, n[2] * dk, o[2]],
      ...[0, 0, 0, 1],
    ),
    place,
  };
}

function describeGrid(orientation: readonly number[], spacing: readonly number[], dims: readonly number[]): string {
  return `orientation ${fmtList(orientation)}, spacing ${fmtList(spacing)} mm, ${dims.join(' x ')}`;
}

/** The reference grid: same orientation and pixel spacing required; each frame matched to one slice. */
function onGrid(
  grid: Volume,
  frames: SegFrame[],
  g: InPlane,
  name: string,
  ds: DicomDataset,
  warnings: string[],
): Placement {
  const m = grid.indexToPatient;
  const gi: Point3 = [m[0], m[4], m[8]];
  const gj: Point3 = [m[1], m[5], m[9]];
  const gRow = unit(gi);
  const gCol = unit(gj);
  const [sx, sy] = grid.spacing;
  const sameOrientation = [0, 1, 2].every(
    (a) =>
      Math.abs(gRow[a] - g.rowDir[a]) <= ORIENTATION_TOLERANCE &&
      Math.abs(gCol[a] - g.colDir[a]) <= ORIENTATION_TOLERANCE,
  );
  const sameSpacing = Math.abs(sx - g.di) <= SPACING_TOLERANCE_MM && Math.abs(sy - g.dj) <= SPACING_TOLERANCE_MM;
  const gridName = grid.meta.source ?? 'the reference grid';
  if (!sameOrientation || !sameSpacing) {
    throw new GeometryError(
      `the SEG's grid (${describeGrid([...g.rowDir, ...g.colDir], [g.di, g.dj], [g.columns, g.rows])}) does not ` +
        `match ${gridName} (${describeGrid([...gRow, ...gCol], grid.spacing, grid.dims)}); resample one onto the other`,
      name,
    );
  }
  const segFor = ds.string(TAG.FrameOfReferenceUid);
  const gridFor = grid.meta.frameOfReferenceUid;
  if (segFor && gridFor && segFor !== gridFor) {
    warnings.push(`${name}: FrameOfReferenceUID ${segFor} differs from ${gridName}'s ${gridFor}; placed by position`);
  }
  const inv = grid.patientToIndex;
  const [ni, nj, nk] = grid.dims;
  const place = frames.map((f) => {
    const p = f.position;
    const idx = [0, 1, 2].map(
      (r) => inv[4 * r] * p[0] + inv[4 * r + 1] * p[1] + inv[4 * r + 2] * p[2] + inv[4 * r + 3],
    );
    const [oi, oj, k] = idx.map(Math.round);
    if (idx.some((x, a) => Math.abs(x - [oi, oj, k][a]) > INDEX_TOLERANCE)) {
      throw new GeometryError(
        `frame ${f.index + 1} at ${fmtList(p)} falls at voxel ${fmtList(idx)} of ${gridName}, between its voxels`,
        name,
      );
    }
    if (k < 0 || k >= nk || oi < 0 || oj < 0 || oi + g.columns > ni || oj + g.rows > nj) {
      throw new GeometryError(
        `frame ${f.index + 1} at ${fmtList(p)} (voxel ${fmtList(idx)}, ${g.columns} x ${g.rows}) lies outside ` +
          `${gridName} (${grid.dims.join(' x ')})`,
        name,
      );
    }
    return { k, oi, oj };
  });
  return { dims: [ni, nj, nk], indexToPatient: Float64Array.from(m), place };
}
