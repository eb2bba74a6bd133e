/**
 * Coordinate forms of a point a person reads or types: LPS mm (this project's patient frame, DICOM),
 * RAS mm (what 3D Slicer and NIfTI show: R = -x_LPS, A = -y_LPS, S = z_LPS) and the continuous voxel
 * index (i, j, k; integer at voxel centres). One parser and one formatter, used by the CLI's `--seed`
 * and the browser's crosshair field alike, so both read the same text the same way.
 *
 * Also the slice step of a slice view: the next acquired slice centre along a view normal.
 */
import { UsageError } from '../errors.js';
import type { Volume } from './volume.js';

export type CoordinateForm = 'lps' | 'ras' | 'ijk';

export const COORDINATE_FORMS: readonly CoordinateForm[] = ['lps', 'ras', 'ijk'];

/** A point as typed: its form and its three numbers (mm for lps/ras, continuous voxel index for ijk). */
export interface TypedCoordinate {
  form: CoordinateForm;
  values: [number, number, number];
}

/** The three forms of one patient point. */
export interface CoordinateForms {
  /** LPS mm. */
  lps: [number, number, number];
  /** RAS mm: (-x, -y, z) of LPS. */
  ras: [number, number, number];
  /** Continuous voxel index (patientToIndex of the LPS point). */
  ijk: [number, number, number];
  /** Nearest voxel (rounded ijk); null when that voxel lies outside the grid. */
  voxel: [number, number, number] | null;
}

const NUMBER = '[-+]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][-+]?\\d+)?';
const TRIPLE = new RegExp(`^\\s*(${NUMBER})\\s*[,\\s]\\s*(${NUMBER})\\s*[,\\s]\\s*(${NUMBER})\\s*$`);

/**
 * Parse "x,y,z" with an optional form prefix: "lps:x,y,z", "ras:x,y,z", "ijk:i,j,k" (case-insensitive;
 * commas or spaces between the numbers). Without a prefix the text is in `bareForm` (default LPS mm).
 * Throws UsageError naming `what` (e.g. `--seed "s1=..."`) when the text is not one of these.
 */
export function parseCoordinate(text: string, what = 'coordinate', bareForm: CoordinateForm = 'lps'): TypedCoordinate {
  const m = /^\s*([A-Za-z]+)\s*:(.*)$/.exec(text);
  let form: CoordinateForm = bareForm;
  let rest = text;
  if (m) {
    const f = m[1].toLowerCase();
    if (!(COORDINATE_FORMS as readonly string[]).includes(f))
      throw new UsageError(`unknown coordinate form "${m[1]}" in "${text}" (use lps:, ras: or ijk:)`, what);
    form = f as CoordinateForm;
    rest = m[2];
  }
  const t = TRIPLE.exec(rest);
  const values = t ? [Number(t[1]), Number(t[2]), Number(t[3])] : [];
  if (!t || !values.every(Number.isFinite))
    throw new UsageError(
      `"${text}" is not three numbers x,y,z, optionally named lps:x,y,z (mm), ras:x,y,z (mm) or ijk:i,j,k (voxel index)`,
      what,
    );
  return { form, values: values as [number, number, number] };
}

/** RAS mm of an LPS point (and back: the map is its own inverse). */
export function lpsToRas(p: ArrayLike<number>): [number, number, number] {
  return [-p[0], -p[1], p[2]];
}

function apply(m: ArrayLike<number>, p: ArrayLike<number>): [number, number, number] {
  return [
    m[0] * p[0] + m[1] * p[1] + m[2] * p[2] + m[3],
    m[4] * p[0] + m[5] * p[1] + m[6] * p[2] + m[7],
    m[8] * p[0] + m[9] * p[1] + m[10] * p[2] + m[11],
  ];
}

/**
 * The LPS point (mm) of a typed coordinate. An ijk coordinate needs the volume (its indexToPatient);
 * without one it is a UsageError.
 */
export function coordinateToLps(c: TypedCoordinate, volume?: Volume, what = 'coordinate'): [number, number, number] {
  if (c.form === 'lps') return [c.values[0], c.values[1], c.values[2]];
  if (c.form === 'ras') return lpsToRas(c.values);
  if (!volume) throw new UsageError('a voxel index (ijk:) needs an image to place it', what);
  return apply(volume.indexToPatient, c.values);
}

/** Parse text (see parseCoordinate) and return its LPS point in mm. */
export function parsePointLps(
  text: string,
  volume?: Volume,
  what = 'coordinate',
  bareForm: CoordinateForm = 'lps',
): [number, number, number] {
  return coordinateToLps(parseCoordinate(text, what, bareForm), volume, what);
}

/** The LPS, RAS and voxel-index forms of an LPS point (mm) in a volume. */
export function coordinateForms(volume: Volume, lps: ArrayLike<number>): CoordinateForms {
  const ijk = apply(volume.patientToIndex, lps);
  const r = ijk.map((x) => Math.round(x)) as [number, number, number];
  const inside = r.every((x, a) => x >= 0 && x < volume.dims[a]);
  return { lps: [lps[0], lps[1], lps[2]], ras: lpsToRas(lps), ijk, voxel: inside ? r : null };
}

/** Text of each form, as parseCoordinate reads it back: "lps:x,y,z" (0.1 mm), "ras:...", "ijk:i,j,k". */
export function formatCoordinateForms(f: CoordinateForms, digits = 1): Record<CoordinateForm, string> {
  const mm = (p: readonly number[]) => p.map((x) => (Object.is(x, -0) ? 0 : x).toFixed(digits)).join(', ');
  const ijk = f.voxel ? f.voxel.join(', ') : `${mm(f.ijk)} (outside the grid)`;
  return { lps: `lps:${mm(f.lps)}`, ras: `ras:${mm(f.ras)}`, ijk: `ijk:${ijk}` };
}

/**
 * The centre of the voxel nearest to an LPS point (mm), clamped into the grid: where a slice view's
 * crosshair starts, so that each of the three planes through it is an acquired slice, not a blend.
 */
export function nearestVoxelCentre(volume: Volume, lps: ArrayLike<number>): [number, number, number] {
  const ijk = apply(volume.patientToIndex, lps).map((x, a) => Math.min(volume.dims[a] - 1, Math.max(0, Math.round(x))));
  return apply(volume.indexToPatient, ijk);
}

/** Cosine above which a view normal counts as running along an index axis (0.06°). */
const ALIGNED_COS = 1 - 1e-6;

/**
 * Where a slice view's plane goes after `steps` wheel steps along the unit view normal `normal` (LPS),
 * from the point `p` (LPS mm) it passes through now. When the normal runs along one of the volume's
 * index axes (an axis-aligned view of an axis-aligned grid), the plane moves to the acquired slice
 * centres along that axis: one step from between two slices lands on the next slice centre in that
 * direction, one from a slice centre on its neighbour; the result keeps the other two components of p.
 * Otherwise (an oblique view) it moves by the slice spacing seen along the normal (the index step of
 * the axis that changes fastest along it). `aligned` says which case applied.
 */
export function stepAlongSlices(
  volume: Volume,
  p: ArrayLike<number>,
  normal: ArrayLike<number>,
  steps: number,
): { point: [number, number, number]; aligned: boolean } {
  const m = volume.patientToIndex;
  // Index change per mm along the normal.
  const g = [
    m[0] * normal[0] + m[1] * normal[1] + m[2] * normal[2],
    m[4] * normal[0] + m[5] * normal[1] + m[6] * normal[2],
    m[8] * normal[0] + m[9] * normal[1] + m[10] * normal[2],
  ];
  let axis = 0;
  for (let a = 1; a < 3; a++) if (Math.abs(g[a]) > Math.abs(g[axis])) axis = a;
  const M = volume.indexToPatient;
  const col = [M[axis], M[4 + axis], M[8 + axis]];
  const cos = Math.abs(col[0] * normal[0] + col[1] * normal[1] + col[2] * normal[2]) / Math.hypot(...col);
  const along = (mm: number): [number, number, number] => [
    p[0] + mm * normal[0],
    p[1] + mm * normal[1],
    p[2] + mm * normal[2],
  ];
  if (steps === 0) return { point: along(0), aligned: cos > ALIGNED_COS };
  if (!(cos > ALIGNED_COS) || !Number.isInteger(steps))
    return { point: along(steps / Math.abs(g[axis])), aligned: false };
  const f = m[axis * 4] * p[0] + m[axis * 4 + 1] * p[1] + m[axis * 4 + 2] * p[2] + m[axis * 4 + 3];
  // The index moves by g[axis] per mm along the normal: forward along the normal is +sign(g) in index.
  const dir = Math.sign(g[axis]) * Math.sign(steps);
  const n = Math.abs(steps);
  const eps = 1e-6;
  const target = dir > 0 ? Math.floor(f + eps) + n : Math.ceil(f - eps) - n;
  return { point: along((target - f) / g[axis]), aligned: true };
}
