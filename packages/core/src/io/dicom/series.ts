/**
 * DICOM image series -> Volume: group files by SeriesInstanceUID, split where the image grid changes,
 * sort slices along the normal, place them exactly as docs/conventions.md ("DICOM geometry") says, and
 * fill one typed array with rescaled values. Gantry tilt gives a sheared indexToPatient; missing or
 * irregular slices are resampled onto an even grid with a warning; nothing is placed silently wrong.
 */
import { CorridorError, FormatError, GeometryError, LimitError } from '../../errors.js';
import { cross, dot, norm, type Point3 } from '../../math/vec3.js';
import { allocateVoxels, createVolume, MAX_VOXELS, type VolumeMetadata, type VoxelArray } from '../../volume/volume.js';
import type { LazyNamedBytes, LoadedSeries, NamedBytes } from '../types.js';
import { DicomDataset, parseDicom } from './parse.js';
import { addToInt16 } from './lanes.js';
import {
  applyModalityLut,
  decodeFrame,
  decodeNativeFrame,
  describePixels,
  modalityLut,
  type ModalityLut,
  type PixelDescription,
  type StoredArray,
} from './pixels.js';
import { SOP_CLASS, TAG } from './tags.js';
import { codecConcurrency } from './codecs.js';

export interface DicomReadOptions {
  /** Called after each file is parsed and after each file's frames are decoded: (done, total). */
  onProgress?: (done: number, total: number) => void;
  /** Largest voxel count of one volume (default MAX_VOXELS). */
  maxVoxels?: number;
}

export interface DicomReadResult {
  series: LoadedSeries[];
  /** Files (or series parts) that gave no volume, each with the reason. */
  skipped: { name: string; reason: string }[];
}

/** One image plane: a single-frame file or one frame of a multi-frame file. */
interface Slice {
  ds: DicomDataset;
  desc: PixelDescription;
  frame: number;
  /** File name, with the frame number for multi-frame files. */
  label: string;
  seriesUid: string | undefined;
  position: Point3 | undefined;
  orientation: number[] | undefined;
  /** [row spacing, column spacing] (PixelSpacing order). */
  pixelSpacing: [number, number] | undefined;
  sliceThickness: number | undefined;
  slope: number;
  intercept: number;
  /** The file's Modality LUT, applied instead of slope and intercept (then 1 and 0). */
  lut: ModalityLut | undefined;
  instanceNumber: number;
}

const ORIENTATION_TOLERANCE = 1e-3;
const SPACING_TOLERANCE_MM = 1e-3;
/** Positions closer than this along the normal are the same slice. */
const DUPLICATE_TOLERANCE_MM = 1e-3;

function rescaleOf(ds: DicomDataset | undefined): { slope?: number; intercept?: number } {
  if (!ds) return {};
  return { slope: ds.number(TAG.RescaleSlope), intercept: ds.number(TAG.RescaleIntercept) };
}

function slicesOf(ds: DicomDataset): Slice[] {
  if (ds.string(TAG.SopClassUid) === SOP_CLASS.Segmentation) {
    throw new FormatError('DICOM SEG: read with readDicomSeg', ds.name);
  }
  const desc = describePixels(ds);
  if (desc.samplesPerPixel !== 1) {
    throw new FormatError(
      `colour image (SamplesPerPixel ${desc.samplesPerPixel}, ${desc.photometricInterpretation}) cannot be ` +
        `read as a volume`,
      ds.name,
    );
  }
  if (desc.photometricInterpretation !== 'MONOCHROME1' && desc.photometricInterpretation !== 'MONOCHROME2') {
    throw new FormatError(
      `PhotometricInterpretation ${desc.photometricInterpretation} cannot be read as a grayscale volume`,
      ds.name,
    );
  }
  const seriesUid = ds.string(TAG.SeriesInstanceUid);
  const instanceNumber = ds.number(TAG.InstanceNumber) ?? 0;
  const top = {
    position: ds.vector(TAG.ImagePositionPatient, 3) as Point3 | undefined,
    orientation: ds.vector(TAG.ImageOrientationPatient, 6),
    pixelSpacing: ds.vector(TAG.PixelSpacing, 2) as [number, number] | undefined,
    sliceThickness: ds.number(TAG.SliceThickness),
    ...rescaleOf(ds),
  };
  const perFrame = ds.sequence(TAG.PerFrameFunctionalGroupsSequence);
  const shared = ds.item(TAG.SharedFunctionalGroupsSequence);
  const lut = modalityLut(ds, desc);
  if (lut && (top.slope !== undefined || top.intercept !== undefined)) {
    ds.warnings.push(`${ds.name}: both a Modality LUT Sequence and RescaleSlope/Intercept; the LUT is applied`);
  }
  const make = (frame: number, g: typeof top): Slice => {
    const slope = lut ? 1 : (g.slope ?? 1);
    const intercept = lut ? 0 : (g.intercept ?? 0);
    if (slope === 0) throw new FormatError('RescaleSlope is 0', ds.name);
    return {
      ds,
      desc,
      frame,
      label: desc.numberOfFrames > 1 ? `${ds.name} frame ${frame + 1}` : ds.name,
      seriesUid,
      position: g.position,
      orientation: g.orientation,
      pixelSpacing: g.pixelSpacing,
      sliceThickness: g.sliceThickness,
      slope,
      intercept,
      lut,
      instanceNumber: instanceNumber * 100000 + frame,
    };
  };
  if (perFrame.length > 0 || shared) {
    if (perFrame.length !== desc.numberOfFrames) {
      throw new FormatError(
        `PerFrameFunctionalGroupsSequence has ${perFrame.length} items for ${desc.numberOfFrames} frames`,
        ds.name,
      );
    }
    return perFrame.map((pf, f) => {
      const pick = (tag: string) => pf.item(tag) ?? shared?.item(tag);
      const measures = pick(TAG.PixelMeasuresSequence);
      const transform = rescaleOf(pick(TAG.PixelValueTransformationSequence));
      return make(f, {
        position:
          (pick(TAG.PlanePositionSequence)?.vector(TAG.ImagePositionPatient, 3) as Point3 | undefined) ?? top.position,
        orientation: pick(TAG.PlaneOrientationSequence)?.vector(TAG.ImageOrientationPatient, 6) ?? top.orientation,
        pixelSpacing: (measures?.vector(TAG.PixelSpacing, 2) as [number, number] | undefined) ?? top.pixelSpacing,
        sliceThickness: measures?.number(TAG.SliceThickness) ?? top.sliceThickness,
        slope: transform.slope ?? top.slope,
        intercept: transform.intercept ?? top.intercept,
      });
    });
  }
  if (desc.numberOfFrames > 1) {
    throw new FormatError(
      `multi-frame image (${desc.numberOfFrames} frames) without per-frame positions is not a slice volume ` +
        `(projection frames are read elsewhere)`,
      ds.name,
    );
  }
  return [make(0, top)];
}

function close(a: readonly number[] | undefined, b: readonly number[] | undefined, tol: number): boolean {
  if (!a || !b) return a === b;
  for (let i = 0; i < a.length; i++) if (Math.abs(a[i] - b[i]) > tol) return false;
  return true;
}

/** Splits one series into parts of identical grid; returns the parts and the reasons they differ. */
function splitByGrid(slices: Slice[]): { parts: Slice[][]; reasons: Set<string> } {
  const parts: Slice[][] = [];
  const reasons = new Set<string>();
  for (const s of slices) {
    let placed = false;
    for (const part of parts) {
      const r = part[0];
      if (
        s.desc.rows === r.desc.rows &&
        s.desc.columns === r.desc.columns &&
        close(s.pixelSpacing, r.pixelSpacing, SPACING_TOLERANCE_MM) &&
        close(s.orientation, r.orientation, ORIENTATION_TOLERANCE)
      ) {
        part.push(s);
        placed = true;
        break;
      }
    }
    if (!placed) {
      if (parts.length) {
        const r = parts[0][0];
        if (s.desc.rows !== r.desc.rows || s.desc.columns !== r.desc.columns) reasons.add('Rows/Columns');
        if (!close(s.pixelSpacing, r.pixelSpacing, SPACING_TOLERANCE_MM)) reasons.add('PixelSpacing');
        if (!close(s.orientation, r.orientation, ORIENTATION_TOLERANCE)) reasons.add('ImageOrientationPatient');
      }
      parts.push([s]);
    }
  }
  return { parts, reasons };
}

function fmt(x: number, digits = 3): string {
  return Number(x.toFixed(digits)).toString();
}

interface Grid {
  /** Slices in output order (after sorting and removing duplicates). */
  slices: Slice[];
  /** Projection of each slice's position on the normal (mm). */
  t: number[];
  /** Number of output slices; equals slices.length unless resampling. */
  count: number;
  /** Output slice k sits at t0 + k * step along the normal. */
  t0: number;
  step: number;
  resample: boolean;
  indexToPatient: Float64Array;
}

function unitOrWarn(v: number[], what: string, source: string, warnings: string[]): Point3 {
  const n = norm(v);
  if (!(n > 0.5) || !Number.isFinite(n))
    throw new GeometryError(`ImageOrientationPatient ${what} direction (${v.join(', ')}) is not a direction`, source);
  if (Math.abs(n - 1) > 1e-3) {
    warnings.push(`${source}: ImageOrientationPatient ${what} direction has length ${fmt(n, 4)}; normalised`);
    return [v[0] / n, v[1] / n, v[2] / n];
  }
  return [v[0], v[1], v[2]];
}

function buildGrid(part: Slice[], source: string, warnings: string[]): Grid {
  const first = part[0];
  const rowSp = first.pixelSpacing?.[0];
  const colSp = first.pixelSpacing?.[1];
  const dr = rowSp ?? 1;
  const dc = colSp ?? 1;
  if (!first.pixelSpacing) warnings.push(`${source}: no PixelSpacing; 1 mm assumed`);
  if (!(dr > 0) || !(dc > 0))
    throw new GeometryError(`PixelSpacing ${first.pixelSpacing?.join('\\')} is not positive`, first.label);

  if (!first.orientation || part.some((s) => !s.position)) {
    if (part.length > 1) {
      const bad = part.find((s) => !s.position || !s.orientation) ?? first;
      throw new GeometryError(
        `no ImagePositionPatient/ImageOrientationPatient: ${part.length} slices cannot be ordered`,
        bad.label,
      );
    }
  }
  const orientation = first.orientation ?? [1, 0, 0, 0, 1, 0];
  if (!first.orientation || !first.position)
    warnings.push(
      `${source}: no ImageOrientationPatient/ImagePositionPatient; identity orientation at the origin assumed`,
    );
  const x = unitOrWarn(orientation.slice(0, 3), 'row', first.label, warnings);
  const y = unitOrWarn(orientation.slice(3, 6), 'column', first.label, warnings);
  if (Math.abs(dot(x, y)) > ORIENTATION_TOLERANCE) {
    throw new GeometryError(
      `ImageOrientationPatient row and column directions are not perpendicular (cosine ${fmt(dot(x, y), 5)})`,
      first.label,
    );
  }
  const nRaw = cross(x, y);
  const nLen = norm(nRaw);
  const n: Point3 = [nRaw[0] / nLen, nRaw[1] / nLen, nRaw[2] / nLen];

  // Sort along the normal; ties keep instance order so the kept duplicate is the lowest instance.
  const withT = part.map((s) => ({ s, t: s.position ? dot(n, s.position) : 0 }));
  withT.sort((a, b) => a.t - b.t || a.s.instanceNumber - b.s.instanceNumber);
  const kept: typeof withT = [];
  const dropped: string[] = [];
  for (const e of withT) {
    const last = kept[kept.length - 1];
    if (last && Math.abs(e.t - last.t) < DUPLICATE_TOLERANCE_MM) dropped.push(e.s.label);
    else kept.push(e);
  }
  if (dropped.length) {
    warnings.push(
      `${source}: ${dropped.length} slice(s) repeat a position already present and were left out: ` +
        `${dropped.slice(0, 5).join(', ')}${dropped.length > 5 ? ', ...' : ''}`,
    );
  }
  const slices = kept.map((e) => e.s);
  const t = kept.map((e) => e.t);
  const p0 = slices[0].position ?? [0, 0, 0];
  const m = new Float64Array(16);
  const setColumns = (k: Point3) => {
    for (let r = 0; r < 3; r++) {
      m[r * 4] = x[r] * dc;
      m[r * 4 + 1] = y[r] * dr;
      m[r * 4 + 2] = k[r];
    }
    m[3] = p0[0];
    m[7] = p0[1];
    m[11] = p0[2];
    m[15] = 1;
  };
  if (slices.length === 1) {
    const thickness = slices[0].sliceThickness ?? slices[0].ds.number(TAG.SpacingBetweenSlices);
    const dz = thickness && thickness > 0 ? thickness : 1;
    setColumns([n[0] * dz, n[1] * dz, n[2] * dz]);
    return { slices, t, count: 1, t0: t[0], step: dz, resample: false, indexToPatient: m };
  }

  const steps = t.slice(1).map((v, i) => v - t[i]);
  const sorted = [...steps].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  const minStep = sorted[0];
  const tol = (s: number) => Math.max(0.01 * s, 0.01);
  const span = t[t.length - 1] - t[0];
  let count = slices.length;
  let step = span / (slices.length - 1);
  let resample = false;
  if (steps.some((s) => Math.abs(s - median) > tol(median))) {
    const multiples = steps.map((s) => Math.round(s / minStep));
    const isMultiple = steps.every((s, i) => Math.abs(s - multiples[i] * minStep) <= tol(minStep) * multiples[i]);
    if (isMultiple) {
      const total = multiples.reduce((a, b) => a + b, 0);
      step = span / total;
      count = total + 1;
      const missing: string[] = [];
      let k = 0;
      multiples.forEach((mult, i) => {
        for (let j = 1; j < mult; j++) missing.push(`k=${k + j} (${fmt(t[i] + j * step)} mm along the normal)`);
        k += mult;
      });
      warnings.push(
        `${source}: ${missing.length} slice(s) missing from an even ${fmt(step, 4)} mm grid: ` +
          `${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ', ...' : ''}; filled by linear interpolation ` +
          `between their neighbours`,
      );
    } else {
      step = minStep;
      count = Math.floor(span / step + 1e-6) + 1;
      warnings.push(
        `${source}: uneven slice spacing (${fmt(minStep, 4)} to ${fmt(sorted[sorted.length - 1], 4)} mm); ` +
          `resampled by linear interpolation to ${count} slices ${fmt(step, 4)} mm apart`,
      );
    }
    if (count > 8 * slices.length + 8) {
      throw new GeometryError(
        `slice spacing too irregular to resample (${slices.length} slices would need ${count} grid slices)`,
        source,
      );
    }
    resample = true;
  }
  if (!(step > 0)) throw new GeometryError('slice positions do not advance along the normal', source);

  // In-plane drift of the positions along the stack: constant drift is gantry tilt (a sheared grid).
  const perp = slices.map((s, i) => {
    const p = s.position;
    if (!p) throw new GeometryError('no ImagePositionPatient: the slice cannot be placed in the stack', s.label);
    return [p[0] - t[i] * n[0], p[1] - t[i] * n[1], p[2] - t[i] * n[2]];
  });
  const last = perp.length - 1;
  const drift = [0, 1, 2].map((c) => (perp[last][c] - perp[0][c]) / span);
  let maxResidual = 0;
  for (let i = 0; i <= last; i++) {
    const dt = t[i] - t[0];
    maxResidual = Math.max(maxResidual, Math.hypot(...[0, 1, 2].map((c) => perp[i][c] - perp[0][c] - drift[c] * dt)));
  }
  const minPixel = Math.min(dr, dc);
  if (maxResidual > 0.5 * minPixel) {
    throw new GeometryError(
      `slice positions do not lie on a straight line (up to ${fmt(maxResidual)} mm off it)`,
      source,
    );
  }
  if (maxResidual > 0.01)
    warnings.push(`${source}: slice positions deviate up to ${fmt(maxResidual)} mm from a straight line`);
  const totalDrift = Math.hypot(drift[0], drift[1], drift[2]) * span;
  let k: Point3;
  if (totalDrift > 0.01) {
    const tiltDeg = (Math.atan(Math.hypot(drift[0], drift[1], drift[2])) * 180) / Math.PI;
    warnings.push(
      `${source}: gantry tilt of ${fmt(tiltDeg, 2)} deg: slice positions shift ${fmt(totalDrift, 2)} mm ` +
        `in-plane over the stack; the grid is sheared so every voxel keeps its scanned position`,
    );
    k = [(n[0] + drift[0]) * step, (n[1] + drift[1]) * step, (n[2] + drift[2]) * step];
  } else {
    k = [n[0] * step, n[1] * step, n[2] * step];
  }
  setColumns(k);
  return { slices, t, count, t0: t[0], step, resample, indexToPatient: m };
}

function storedRange(desc: PixelDescription): [number, number] {
  const b = desc.bitsStored;
  return desc.pixelRepresentation === 1 ? [-(2 ** (b - 1)), 2 ** (b - 1) - 1] : [0, 2 ** b - 1];
}

/** The range of a slice's values after its Modality LUT or rescale, from the header alone. */
function headerRange(s: Slice): [number, number] {
  return s.lut ? [s.lut.min, s.lut.max] : rescaledRange(s, ...storedRange(s.desc));
}

function rescaledRange(s: Slice, lo: number, hi: number): [number, number] {
  const a = lo * s.slope + s.intercept;
  const b = hi * s.slope + s.intercept;
  return a <= b ? [a, b] : [b, a];
}

function fits16(range: [number, number]): boolean {
  return range[0] >= -32768 && range[1] <= 32767;
}

/*
 * Rescale loops, one per common (output, stored) type pair: a single loop over the VoxelArray and
 * StoredArray unions sees several array types, and V8 then compiles its element accesses as generic
 * (several times slower per voxel). The usual CT cases (Int16 or Uint16 stored, integer slope and
 * intercept, Int16 out) each get their own function so every access stays monomorphic.
 */
function rescaleI16FromI16(out: Int16Array, offset: number, data: Int16Array, slope: number, intercept: number): void {
  // Int16 output only ever comes with integer slope and intercept and values checked to fit.
  if (slope === 1) return addToInt16(out, offset, data, intercept);
  const n = data.length;
  for (let i = 0; i < n; i++) out[offset + i] = data[i] * slope + intercept;
}

function rescaleI16FromU16(out: Int16Array, offset: number, data: Uint16Array, slope: number, intercept: number): void {
  if (slope === 1) return addToInt16(out, offset, data, intercept);
  const n = data.length;
  for (let i = 0; i < n; i++) out[offset + i] = data[i] * slope + intercept;
}

function rescaleF32FromI16(
  out: Float32Array,
  offset: number,
  data: Int16Array,
  slope: number,
  intercept: number,
): void {
  const n = data.length;
  for (let i = 0; i < n; i++) out[offset + i] = data[i] * slope + intercept;
}

function rescaleF32FromU16(
  out: Float32Array,
  offset: number,
  data: Uint16Array,
  slope: number,
  intercept: number,
): void {
  const n = data.length;
  for (let i = 0; i < n; i++) out[offset + i] = data[i] * slope + intercept;
}

function rescaleAny(out: VoxelArray, offset: number, data: StoredArray, slope: number, intercept: number): void {
  const n = data.length;
  if (slope === 1) for (let i = 0; i < n; i++) out[offset + i] = data[i] + intercept;
  else for (let i = 0; i < n; i++) out[offset + i] = data[i] * slope + intercept;
}

/* [min, max] of a frame; one function per common type so each loop stays monomorphic. */
function rangeU16(f: Uint16Array): [number, number] {
  let lo = 65535;
  let hi = 0;
  for (let i = 0; i < f.length; i++) {
    const v = f[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

function rangeI16(f: Int16Array): [number, number] {
  let lo = 32767;
  let hi = -32768;
  for (let i = 0; i < f.length; i++) {
    const v = f[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

function rangeAny(f: StoredArray): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < f.length; i++) {
    const v = f[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

function valueRange(f: StoredArray): [number, number] {
  if (f.length === 0) return rangeAny(f);
  if (f instanceof Uint16Array) return rangeU16(f);
  if (f instanceof Int16Array) return rangeI16(f);
  return rangeAny(f);
}

function writeSlice(out: VoxelArray, offset: number, data: StoredArray, slope: number, intercept: number): void {
  if (out instanceof Int16Array) {
    if (data instanceof Int16Array) {
      // A plain copy (memcpy) when nothing changes: the common uncompressed case.
      if (slope === 1 && intercept === 0) out.set(data, offset);
      else rescaleI16FromI16(out, offset, data, slope, intercept);
      return;
    }
    if (data instanceof Uint16Array) return rescaleI16FromU16(out, offset, data, slope, intercept);
  } else if (out instanceof Float32Array) {
    if (data instanceof Int16Array) return rescaleF32FromI16(out, offset, data, slope, intercept);
    if (data instanceof Uint16Array) return rescaleF32FromU16(out, offset, data, slope, intercept);
  }
  rescaleAny(out, offset, data, slope, intercept);
}

/** Text attributes copied into VolumeMetadata, by key. */
const META_TAGS = {
  patientName: TAG.PatientName,
  patientId: TAG.PatientId,
  patientBirthDate: TAG.PatientBirthDate,
  patientSex: TAG.PatientSex,
  studyInstanceUid: TAG.StudyInstanceUid,
  studyDate: TAG.StudyDate,
  studyDescription: TAG.StudyDescription,
  seriesInstanceUid: TAG.SeriesInstanceUid,
  seriesDescription: TAG.SeriesDescription,
  frameOfReferenceUid: TAG.FrameOfReferenceUid,
  modality: TAG.Modality,
  manufacturer: TAG.Manufacturer,
  manufacturerModelName: TAG.ManufacturerModelName,
  acquisitionDate: TAG.AcquisitionDate,
  acquisitionTime: TAG.AcquisitionTime,
} as const satisfies Partial<Record<keyof VolumeMetadata, string>>;

/**
 * The elements read from a file after slicesOf: the pixel data, metaOf's attributes and the single-slice
 * fallback thickness. Everything else is let go once the file's slices are known, so that hundreds of
 * parsed files held until assembly do not fill the heap with element objects (collector time).
 */
const RETAINED_TAGS: readonly string[] = [
  TAG.PixelData,
  TAG.SpacingBetweenSlices,
  TAG.SeriesNumber,
  ...Object.values(META_TAGS),
];

export function metaOf(ds: DicomDataset, source: string): VolumeMetadata {
  const seriesNumber = (() => {
    try {
      return ds.number(TAG.SeriesNumber);
    } catch {
      return undefined;
    }
  })();
  const meta: VolumeMetadata = {};
  for (const [key, tag] of Object.entries(META_TAGS)) {
    meta[key as keyof typeof META_TAGS] = ds.string(tag);
    if (key === 'seriesInstanceUid') meta.seriesNumber = seriesNumber;
  }
  meta.source = source;
  for (const key of Object.keys(meta) as (keyof VolumeMetadata)[]) if (meta[key] === undefined) delete meta[key];
  return meta;
}

async function assemble(
  part: Slice[],
  source: string,
  warnings: string[],
  maxVoxels: number,
  progress: (ds: DicomDataset) => void,
): Promise<LoadedSeries> {
  const grid = buildGrid(part, source, warnings);
  const { rows, columns } = grid.slices[0].desc;
  const frameSize = rows * columns;
  const total = frameSize * grid.count;
  if (total > maxVoxels)
    throw new LimitError(`${columns} x ${rows} x ${grid.count} voxels exceed the limit of ${maxVoxels}`, source);
  if (grid.slices.some((s) => s.desc.photometricInterpretation === 'MONOCHROME1')) {
    warnings.push(
      `${source}: MONOCHROME1 (low values display white): values kept as stored and rescaled, not inverted`,
    );
  }
  const allInteger = grid.slices.every((s) => Number.isInteger(s.slope) && Number.isInteger(s.intercept));
  const headerFits = allInteger && grid.slices.every((s) => fits16(headerRange(s)));
  // Native frames synchronously: an await per frame costs measurably over hundreds of frames.
  const decodeNow = (s: Slice): StoredArray | undefined => {
    if (s.desc.encapsulated) return undefined;
    const f = decodeNativeFrame(s.ds, s.frame, s.desc);
    progress(s.ds);
    return s.lut ? applyModalityLut(f.data, s.lut) : f.data;
  };
  const decodeOne = async (s: Slice): Promise<StoredArray> => {
    const now = decodeNow(s);
    if (now) return now;
    const f = await decodeFrame(s.ds, s.frame, s.desc);
    progress(s.ds);
    return s.lut ? applyModalityLut(f.data, s.lut) : f.data;
  };
  // With a codec runner (worker threads), the next frames decode while this one is awaited: up to
  // `ahead` frames in flight, taken in the order they are asked for. One at a time without a runner.
  const ahead = codecConcurrency();
  const order = grid.slices;
  const indexOf = new Map(order.map((sl, i) => [sl, i]));
  const started = new Set<number>();
  const inFlight = new Map<Slice, Promise<StoredArray>>();
  const decode = (s: Slice): Promise<StoredArray> => {
    if (ahead <= 1 || !s.desc.encapsulated) return decodeOne(s);
    const i = indexOf.get(s) ?? 0;
    for (let j = i; j < Math.min(order.length, i + ahead); j++) {
      if (started.has(j) || !order[j].desc.encapsulated) continue;
      started.add(j);
      const p = decodeOne(order[j]);
      p.catch(() => undefined); // seen when awaited; a frame never asked for must not go unhandled
      inFlight.set(order[j], p);
    }
    const p = inFlight.get(s);
    if (!p) return decodeOne(s);
    inFlight.delete(s);
    return p;
  };

  let data: VoxelArray;
  if (grid.resample) {
    // Resampled slices are Float32: interpolated values are in general not integers.
    data = allocateVoxels('float32', total, source);
    const cache = new Map<number, Float32Array>();
    const rescaled = async (i: number) => {
      let v = cache.get(i);
      if (!v) {
        const s = grid.slices[i];
        const raw = await decode(s);
        v = new Float32Array(frameSize);
        writeSlice(v, 0, raw, s.slope, s.intercept);
        cache.set(i, v);
        for (const key of cache.keys()) if (key < i - 1) cache.delete(key);
      }
      return v;
    };
    let a = 0;
    for (let k = 0; k < grid.count; k++) {
      const tk = grid.t0 + k * grid.step;
      while (a + 1 < grid.t.length - 1 && grid.t[a + 1] <= tk + DUPLICATE_TOLERANCE_MM) a++;
      const ta = grid.t[a];
      const tb = grid.t[a + 1];
      const w = Math.min(1, Math.max(0, (tk - ta) / (tb - ta)));
      const off = k * frameSize;
      if (w < 1e-6) data.set(await rescaled(a), off);
      else if (w > 1 - 1e-6) data.set(await rescaled(a + 1), off);
      else {
        const va = await rescaled(a);
        const vb = await rescaled(a + 1);
        for (let i = 0; i < frameSize; i++) data[off + i] = va[i] + (vb[i] - va[i]) * w;
      }
    }
  } else if (headerFits) {
    data = allocateVoxels('int16', total, source);
    for (let k = 0; k < grid.count; k++) {
      const s = grid.slices[k];
      writeSlice(data, k * frameSize, decodeNow(s) ?? (await decode(s)), s.slope, s.intercept);
    }
  } else if (allInteger) {
    // The header allows values beyond int16: look at the real ones before choosing the type.
    const frames: StoredArray[] = [];
    let fits = true;
    for (const s of grid.slices) {
      const f = decodeNow(s) ?? (await decode(s));
      frames.push(f);
      if (fits) fits = fits16(rescaledRange(s, ...valueRange(f)));
    }
    data = allocateVoxels(fits ? 'int16' : 'float32', total, source);
    for (let k = 0; k < grid.count; k++)
      writeSlice(data, k * frameSize, frames[k], grid.slices[k].slope, grid.slices[k].intercept);
  } else {
    data = allocateVoxels('float32', total, source);
    for (let k = 0; k < grid.count; k++) {
      const s = grid.slices[k];
      writeSlice(data, k * frameSize, decodeNow(s) ?? (await decode(s)), s.slope, s.intercept);
    }
  }
  const first = grid.slices[0].ds;
  const volume = createVolume({
    data,
    dims: [columns, rows, grid.count],
    indexToPatient: grid.indexToPatient,
    meta: metaOf(first, source),
  });
  return { format: 'dicom', volume, warnings };
}

/**
 * Read DICOM files into volumes: one LoadedSeries per series (or per part of a series whose grid
 * changes). Files that give no image are listed in `skipped`; when nothing can be read at all a
 * FormatError (or the single file's own error) is thrown naming the files and the problems.
 */
export async function readDicomSeries(
  files: readonly (NamedBytes | LazyNamedBytes)[],
  options: DicomReadOptions = {},
): Promise<DicomReadResult> {
  const skipped: { name: string; reason: string }[] = [];
  const errors: CorridorError[] = [];
  const slices: Slice[] = [];
  const maxVoxels = options.maxVoxels ?? MAX_VOXELS;
  const totalUnits = files.length * 2;
  let done = 0;
  const tick = () => options.onProgress?.(++done, totalUnits);

  for (const file of files) {
    try {
      // A lazy file is read here; if it gives no slice, nothing keeps its bytes after this iteration.
      const bytes = 'bytes' in file ? file.bytes : await file.read();
      const ds = parseDicom(bytes, file.name);
      const fileSlices = slicesOf(ds);
      const kept = ds.retaining(RETAINED_TAGS);
      for (const s of fileSlices) s.ds = kept;
      slices.push(...fileSlices);
    } catch (e) {
      if (!(e instanceof CorridorError)) throw e;
      errors.push(e);
      skipped.push({ name: file.name, reason: e.message });
      tick();
    }
    tick();
  }

  const bySeries = new Map<string, Slice[]>();
  for (const s of slices) {
    const key = s.seriesUid ?? '';
    let list = bySeries.get(key);
    if (!list) bySeries.set(key, (list = []));
    list.push(s);
  }

  const series: LoadedSeries[] = [];
  for (const [uid, members] of bySeries) {
    const seriesLabel = uid || '(no SeriesInstanceUID)';
    const { parts, reasons } = splitByGrid(members);
    for (let p = 0; p < parts.length; p++) {
      const part = parts[p];
      const fileCount = new Set(part.map((s) => s.ds)).size;
      const partLabel = parts.length > 1 ? ` part ${p + 1} of ${parts.length}` : '';
      const fileLabel = `${fileCount} file${fileCount > 1 ? 's' : ''}`;
      const source = `DICOM series ${seriesLabel}${partLabel} (${fileLabel}, first ${part[0].ds.name})`;
      const warnings: string[] = [];
      if (!uid) warnings.push(`${source}: files have no SeriesInstanceUID; grouped together`);
      if (parts.length > 1)
        warnings.push(
          `series ${seriesLabel} was split into ${parts.length} volumes because ${[...reasons].join(', ')} ` +
            `change(s) between its images; this is part ${p + 1}`,
        );
      const seen = new Set<string>();
      for (const s of part) {
        for (const w of s.ds.warnings) {
          if (!seen.has(w)) {
            seen.add(w);
            warnings.push(w);
          }
        }
      }
      // Progress: a file counts as decoded when all its frames in this part are.
      const framesLeft = new Map<DicomDataset, number>();
      for (const s of part) framesLeft.set(s.ds, (framesLeft.get(s.ds) ?? 0) + 1);
      const progress = (ds: DicomDataset) => {
        const left = (framesLeft.get(ds) ?? 1) - 1;
        framesLeft.set(ds, left);
        if (left === 0) tick();
      };
      try {
        series.push(await assemble(part, source, warnings, maxVoxels, progress));
      } catch (e) {
        if (!(e instanceof CorridorError)) throw e;
        errors.push(e);
        for (const name of new Set(part.map((s) => s.ds.name))) skipped.push({ name, reason: e.message });
      }
      // Files not decoded (duplicates left out, or a failed part) still complete the progress count.
      for (const left of framesLeft.values()) if (left > 0) tick();
    }
  }
  if (series.length === 0) {
    if (errors.length === 1) throw errors[0];
    if (files.length === 0) throw new FormatError('no files given');
    const listed = skipped
      .slice(0, 10)
      .map((s) => s.reason)
      .join('; ');
    throw new FormatError(
      `no image series could be read from ${files.length} file(s): ` +
        `${listed}${skipped.length > 10 ? `; and ${skipped.length - 10} more` : ''}`,
    );
  }
  return { series, skipped };
}
