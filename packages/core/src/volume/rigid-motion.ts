/**
 * Known rigid motions and their target registration error, for the registration tests and benchmarks that
 * need truth independent of the registration itself: a motion is made from an axis and an angle
 * (Rodrigues' formula, not the register module's Euler angles), the moved image is resampled through it
 * (resample.ts), and the error is measured over points (label voxel centres) with the 3x3 inverted as R^T.
 * The tests (test-helpers/motion.ts) and the register benchmark (packages/node) use this one copy.
 */
import { mat4Multiply, mat4TransformPoint, type Mat4 } from '../math/mat4.js';
import { Rng } from '../math/random.js';
import { resample } from './resample.js';
import { createVolume, type Volume } from './volume.js';

/** movingToFixed of a motion: rotation of angleDeg about unit axis through `center`, then translation. */
export function rigidMotion(
  axis: readonly [number, number, number],
  angleDeg: number,
  translationMm: readonly [number, number, number],
  center: readonly [number, number, number],
): Mat4 {
  const n = Math.hypot(axis[0], axis[1], axis[2]);
  const [x, y, z] = [axis[0] / n, axis[1] / n, axis[2] / n];
  const a = (angleDeg * Math.PI) / 180;
  const c = Math.cos(a),
    s = Math.sin(a),
    C = 1 - c;
  const r = [
    c + x * x * C,
    x * y * C - z * s,
    x * z * C + y * s,
    y * x * C + z * s,
    c + y * y * C,
    y * z * C - x * s,
    z * x * C - y * s,
    z * y * C + x * s,
    c + z * z * C,
  ];
  const m = new Float64Array(16);
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) m[i * 4 + j] = r[i * 3 + j];
    m[i * 4 + 3] =
      center[i] + translationMm[i] - (r[i * 3] * center[0] + r[i * 3 + 1] * center[1] + r[i * 3 + 2] * center[2]);
  }
  m[15] = 1;
  return m;
}

/** Standard normal deviates from a seeded uniform source (Box-Muller). */
export function gaussianDeviate(rng: Rng): number {
  const u1 = rng.next() || 1e-12;
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * rng.next());
}

/**
 * The fixed image seen after the patient moved by `movingToFixed`: on the fixed image's own grid, the
 * value at moving point y is the fixed value at movingToFixed(y). Float32, plus Gaussian noise.
 */
export function movedCopy(
  fixed: Volume,
  movingToFixed: Mat4,
  noiseSd: number,
  seed: number,
  outside = -1000,
): Volume<Float32Array> {
  const grid = {
    dims: fixed.dims,
    indexToPatient: mat4Multiply(new Float64Array(16), movingToFixed, fixed.indexToPatient),
  };
  const r = resample(fixed, grid, { type: 'float32', outside });
  const d = r.data as Float32Array;
  const rng = new Rng(seed);
  for (let o = 0; o < d.length; o++) d[o] += noiseSd * gaussianDeviate(rng);
  return createVolume({
    data: d,
    dims: fixed.dims,
    indexToPatient: fixed.indexToPatient,
    meta: { source: 'moved copy' },
  });
}

/** LPS centres of the voxels whose label is in `ids`. */
export function labelPoints(labels: Volume, ids: readonly number[]): Float64Array {
  const [nx, ny, nz] = labels.dims;
  const pts: number[] = [];
  const p = [0, 0, 0];
  for (let k = 0, o = 0; k < nz; k++)
    for (let j = 0; j < ny; j++)
      for (let i = 0; i < nx; i++, o++) {
        if (!ids.includes(labels.data[o])) continue;
        mat4TransformPoint(p, labels.indexToPatient, [i, j, k]);
        pts.push(p[0], p[1], p[2]);
      }
  return Float64Array.from(pts);
}

export function meanPoint(pts: Float64Array): [number, number, number] {
  const n = pts.length / 3;
  let x = 0,
    y = 0,
    z = 0;
  for (let q = 0; q < n; q++) {
    x += pts[3 * q];
    y += pts[3 * q + 1];
    z += pts[3 * q + 2];
  }
  return [x / n, y / n, z / n];
}

/**
 * Mean target registration error (mm) over fixed points p: the true moving position of p is
 * trueMovingToFixed^-1 (p); the estimate carries it back with estMovingToFixed; the error is how far
 * from p it lands. The inverse is solved here by Gaussian elimination of the 3x3, not by the module.
 */
export function meanTre(pts: Float64Array, trueMovingToFixed: Mat4, estMovingToFixed: ArrayLike<number>): number {
  const t = trueMovingToFixed;
  let sum = 0;
  const n = pts.length / 3;
  const q = [0, 0, 0];
  for (let s = 0; s < n; s++) {
    // Solve R y + t = p for y (R orthonormal: y = R^T (p - t)).
    const dx = pts[3 * s] - t[3],
      dy = pts[3 * s + 1] - t[7],
      dz = pts[3 * s + 2] - t[11];
    const y = [
      t[0] * dx + t[4] * dy + t[8] * dz,
      t[1] * dx + t[5] * dy + t[9] * dz,
      t[2] * dx + t[6] * dy + t[10] * dz,
    ];
    const e = estMovingToFixed;
    q[0] = e[0] * y[0] + e[1] * y[1] + e[2] * y[2] + e[3];
    q[1] = e[4] * y[0] + e[5] * y[1] + e[6] * y[2] + e[7];
    q[2] = e[8] * y[0] + e[9] * y[1] + e[10] * y[2] + e[11];
    sum += Math.hypot(q[0] - pts[3 * s], q[1] - pts[3 * s + 1], q[2] - pts[3 * s + 2]);
  }
  return sum / n;
}
