/**
 * Plane reslice: a Volume sampled on a regular raster of points in one plane, the image of every slice
 * view (axial, sagittal, coronal, oblique, along or across a path).
 *
 * The raster: pixel (x, y), x = column 0..width-1, y = row 0..height-1, has its centre at the LPS point
 * `origin + x * pixelSizeMm * u + y * pixelSizeMm * v` (origin = centre of the first pixel, as for DICOM
 * and detector images, docs/conventions.md). Each pixel's value is exactly what `sampleTrilinear` (or
 * `sampleNearest`) returns at that patient point: the same voxel-centre index and the same edge rules
 * (trilinear inside up to the outermost voxel centres, nearest within half a voxel beyond them,
 * `outside` elsewhere), because the loop calls the same index samplers. The continuous index is stepped
 * incrementally along each row (one affine, patientToIndex applied to the row start and to the two pixel
 * steps), so the loop allocates nothing.
 */
import { GeometryError, UsageError } from '../errors.js';
import type { Interpolation } from './resample.js';
import { sampleIndexNearest, sampleIndexTrilinear } from './sample.js';
import type { Volume } from './volume.js';

/** A raster of points in a plane, in patient space. */
export interface ReslicePlane {
  /** Centre of pixel (0, 0), LPS mm. */
  readonly origin: ArrayLike<number>;
  /** Unit vector (LPS) along which the column index x increases. */
  readonly u: ArrayLike<number>;
  /** Unit vector (LPS), perpendicular to u, along which the row index y increases. */
  readonly v: ArrayLike<number>;
  /** Distance between neighbouring pixel centres along u and along v, mm. */
  readonly pixelSizeMm: number;
  /** Pixels per row. */
  readonly width: number;
  /** Rows. */
  readonly height: number;
}

export interface ResliceOptions {
  /** 'linear' = core's trilinear sampler (default), 'nearest' = nearest voxel centre. */
  readonly interpolation?: Interpolation;
  /** Value of pixels outside the volume (default 0, as sampleTrilinear). */
  readonly outside?: number;
}

/** |u|, |v| may differ from 1 and u . v from 0 by this much (round-off of normalize and rotations). */
const AXIS_TOLERANCE = 1e-6;

function checkPlane(plane: ReslicePlane): void {
  const { u, v, pixelSizeMm, width, height } = plane;
  const nu = Math.hypot(u[0], u[1], u[2]),
    nv = Math.hypot(v[0], v[1], v[2]);
  const uv = u[0] * v[0] + u[1] * v[1] + u[2] * v[2];
  if (!(Math.abs(nu - 1) <= AXIS_TOLERANCE && Math.abs(nv - 1) <= AXIS_TOLERANCE && Math.abs(uv) <= AXIS_TOLERANCE)) {
    throw new GeometryError(
      `reslice plane: u and v must be perpendicular unit vectors (|u| = ${nu}, |v| = ${nv}, ` + `u . v = ${uv})`,
    );
  }
  if (!(pixelSizeMm > 0 && Number.isFinite(pixelSizeMm))) {
    throw new UsageError(`reslice plane: pixelSizeMm must be a positive number, not ${pixelSizeMm}`);
  }
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new UsageError(`reslice plane: width and height must be positive integers, not ${width} x ${height}`);
  }
  const o = plane.origin;
  if (!(Number.isFinite(o[0]) && Number.isFinite(o[1]) && Number.isFinite(o[2]))) {
    throw new GeometryError(`reslice plane: origin must be finite, not (${o[0]}, ${o[1]}, ${o[2]})`);
  }
}

/**
 * Sample `volume` on `plane` into `out` (row-major, x fastest: out[x + width * y]) and return `out`.
 * With `out` null, a Float32Array of width * height is allocated; given one, it must have exactly
 * width * height elements and nothing is allocated. A Float64Array output keeps the samplers' values
 * exactly; a Float32Array holds them rounded to float32.
 */
export function reslicePlane<T extends Float32Array | Float64Array = Float32Array>(
  out: T | null,
  volume: Volume,
  plane: ReslicePlane,
  options: ResliceOptions = {},
): T {
  checkPlane(plane);
  const { width: W, height: H, u, v, origin: p } = plane;
  const n = W * H;
  const dst = (out ?? new Float32Array(n)) as T;
  if (dst.length !== n) {
    throw new UsageError(`reslice: output has ${dst.length} elements, the plane ${W} x ${H} = ${n}`);
  }
  const outside = options.outside ?? 0;
  const nearest = (options.interpolation ?? 'linear') === 'nearest';
  const m = volume.patientToIndex;
  const s = plane.pixelSizeMm;
  // Continuous index of pixel (0, 0) (same operation order as patientToIndexContinuous) and its change per
  // pixel along a row (a) and down a column (b).
  const b0i = m[0] * p[0] + m[1] * p[1] + m[2] * p[2] + m[3];
  const b0j = m[4] * p[0] + m[5] * p[1] + m[6] * p[2] + m[7];
  const b0k = m[8] * p[0] + m[9] * p[1] + m[10] * p[2] + m[11];
  const ai = (m[0] * u[0] + m[1] * u[1] + m[2] * u[2]) * s;
  const aj = (m[4] * u[0] + m[5] * u[1] + m[6] * u[2]) * s;
  const ak = (m[8] * u[0] + m[9] * u[1] + m[10] * u[2]) * s;
  const bi = (m[0] * v[0] + m[1] * v[1] + m[2] * v[2]) * s;
  const bj = (m[4] * v[0] + m[5] * v[1] + m[6] * v[2]) * s;
  const bk = (m[8] * v[0] + m[9] * v[1] + m[10] * v[2]) * s;
  let o = 0;
  for (let y = 0; y < H; y++) {
    // Each row starts from pixel (0, 0) by a multiplication, so round-off does not build up down the image.
    let fi = b0i + y * bi,
      fj = b0j + y * bj,
      fk = b0k + y * bk;
    if (nearest) {
      for (let x = 0; x < W; x++, fi += ai, fj += aj, fk += ak) {
        dst[o++] = sampleIndexNearest(volume, fi, fj, fk, outside);
      }
    } else {
      for (let x = 0; x < W; x++, fi += ai, fj += aj, fk += ak) {
        dst[o++] = sampleIndexTrilinear(volume, fi, fj, fk, outside);
      }
    }
  }
  return dst;
}
