/**
 * The rigid transform that registration optimises, and its conversions.
 *
 * Parameters (6): Euler angles `rotationRad = [alpha, beta, gamma]` and `translationMm = [tx, ty, tz]`
 * about a fixed centre `centerMm` (LPS mm, in the fixed image's patient frame). Convention, named once:
 *
 *   fixedToMoving(x) = R (x - c) + c + t,   R = Rz(gamma) * Ry(beta) * Rx(alpha)
 *
 * (x is rotated about the LPS x axis first, then y, then z; right-handed, angles counter-clockwise when
 * looking down the axis towards the origin.) `fixedToMoving` maps a point given in the fixed image's
 * patient coordinates (LPS mm) to the same anatomical point in the moving image's patient coordinates:
 * the direction in which one resamples the moving image onto the fixed grid, and the direction ITK's
 * .tfm files store. `movingToFixed` is its inverse: it carries a point measured on the moving image (a
 * plan's entry) into the fixed image's frame.
 */
import { GeometryError } from '../errors.js';
import { mat4Invert, type Mat4, type ReadonlyMat4 } from '../math/mat4.js';

export interface RigidParameters {
  /** Euler angles alpha, beta, gamma (radians) of R = Rz(gamma) Ry(beta) Rx(alpha). */
  rotationRad: [number, number, number];
  /** t in fixedToMoving(x) = R (x - c) + c + t, mm. */
  translationMm: [number, number, number];
  /** c: the centre of rotation, LPS mm in the fixed frame. */
  centerMm: [number, number, number];
}

/** R = Rz(g) Ry(b) Rx(a), row-major 3x3 into out (9 numbers). */
export function eulerToRotation(out: Float64Array | number[], a: number, b: number, g: number) {
  const ca = Math.cos(a),
    sa = Math.sin(a),
    cb = Math.cos(b),
    sb = Math.sin(b),
    cg = Math.cos(g),
    sg = Math.sin(g);
  out[0] = cg * cb;
  out[1] = cg * sb * sa - sg * ca;
  out[2] = cg * sb * ca + sg * sa;
  out[3] = sg * cb;
  out[4] = sg * sb * sa + cg * ca;
  out[5] = sg * sb * ca - cg * sa;
  out[6] = -sb;
  out[7] = cb * sa;
  out[8] = cb * ca;
  return out;
}

function mul3(out: Float64Array, a: ArrayLike<number>, b: ArrayLike<number>) {
  for (let r = 0; r < 3; r++)
    for (let c = 0; c < 3; c++) out[r * 3 + c] = a[r * 3] * b[c] + a[r * 3 + 1] * b[3 + c] + a[r * 3 + 2] * b[6 + c];
  return out;
}

/**
 * dR/dalpha, dR/dbeta, dR/dgamma (row-major 3x3 each) into out[0..26]: the Jacobian of the rotation with
 * respect to its Euler angles, analytic.
 */
export function eulerRotationDerivatives(out: Float64Array, a: number, b: number, g: number) {
  const ca = Math.cos(a),
    sa = Math.sin(a),
    cb = Math.cos(b),
    sb = Math.sin(b),
    cg = Math.cos(g),
    sg = Math.sin(g);
  const rx = [1, 0, 0, 0, ca, -sa, 0, sa, ca];
  const ry = [cb, 0, sb, 0, 1, 0, -sb, 0, cb];
  const rz = [cg, -sg, 0, sg, cg, 0, 0, 0, 1];
  const drx = [0, 0, 0, 0, -sa, -ca, 0, ca, -sa];
  const dry = [-sb, 0, cb, 0, 0, 0, -cb, 0, -sb];
  const drz = [-sg, -cg, 0, cg, -sg, 0, 0, 0, 0];
  const t = new Float64Array(9);
  const u = new Float64Array(9);
  out.set(mul3(u, rz, mul3(t, ry, drx)), 0);
  out.set(mul3(u, rz, mul3(t, dry, rx)), 9);
  out.set(mul3(u, drz, mul3(t, ry, rx)), 18);
  return out;
}

/** fixedToMoving as a row-major 4x4 (LPS mm, fixed frame -> moving frame). Allocates the matrix. */
export function parametersToFixedToMoving(p: RigidParameters): Mat4 {
  const r = eulerToRotation(new Float64Array(9), p.rotationRad[0], p.rotationRad[1], p.rotationRad[2]);
  const c = p.centerMm,
    t = p.translationMm;
  const m = new Float64Array(16);
  for (let i = 0; i < 3; i++) {
    m[i * 4] = r[i * 3];
    m[i * 4 + 1] = r[i * 3 + 1];
    m[i * 4 + 2] = r[i * 3 + 2];
    m[i * 4 + 3] = c[i] + t[i] - (r[i * 3] * c[0] + r[i * 3 + 1] * c[1] + r[i * 3 + 2] * c[2]);
  }
  m[15] = 1;
  return m;
}

/** The inverse of a rigid 4x4 (R^T, -R^T t), exact for rotations. Allocates the result. */
export function invertRigid(m: ReadonlyMat4): Mat4 {
  const out = new Float64Array(16);
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) out[i * 4 + j] = m[j * 4 + i];
    out[i * 4 + 3] = -(m[i] * m[3] + m[4 + i] * m[7] + m[8 + i] * m[11]);
  }
  out[15] = 1;
  return out;
}

/** Largest deviation of the 3x3 part from a proper rotation (|R^T R - I|, det - 1) and of the bottom row. */
export function rigidityError(m: ReadonlyMat4): number {
  let e = Math.max(Math.abs(m[12]), Math.abs(m[13]), Math.abs(m[14]), Math.abs(m[15] - 1));
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 3; j++) {
      const d = m[i] * m[j] + m[4 + i] * m[4 + j] + m[8 + i] * m[8 + j] - (i === j ? 1 : 0);
      e = Math.max(e, Math.abs(d));
    }
  const det =
    m[0] * (m[5] * m[10] - m[6] * m[9]) - m[1] * (m[4] * m[10] - m[6] * m[8]) + m[2] * (m[4] * m[9] - m[5] * m[8]);
  return Math.max(e, Math.abs(det - 1));
}

/** Tolerance of `rigidityError` for a matrix given as rigid (text round-off of 6+ digits passes). */
export const RIGID_TOLERANCE = 1e-4;

/**
 * The parameters (about `center`) of a rigid fixedToMoving matrix. Throws GeometryError when the matrix is
 * not rigid (scaling, shear, reflection) within RIGID_TOLERANCE.
 */
export function fixedToMovingToParameters(
  m: ReadonlyMat4,
  center: readonly [number, number, number],
  source = 'transform',
): RigidParameters {
  const err = rigidityError(m);
  if (!(err <= RIGID_TOLERANCE)) {
    throw new GeometryError(`not a rigid transform (rotation off by ${err.toExponential(2)})`, source);
  }
  // R = Rz Ry Rx: R20 = -sin b, R21 = cos b sin a, R22 = cos b cos a, R10 = sin g cos b, R00 = cos g cos b.
  const b = Math.asin(Math.max(-1, Math.min(1, -m[8])));
  const a = Math.atan2(m[9], m[10]);
  const g = Math.atan2(m[4], m[0]);
  const t: [number, number, number] = [0, 0, 0];
  for (let i = 0; i < 3; i++) {
    // m translation = c + t - R c  =>  t = m_t - c + R c
    t[i] = m[i * 4 + 3] - center[i] + m[i * 4] * center[0] + m[i * 4 + 1] * center[1] + m[i * 4 + 2] * center[2];
  }
  return { rotationRad: [a, b, g], translationMm: t, centerMm: [center[0], center[1], center[2]] };
}

/** Inverse of a general affine, with a typed error when singular. */
export function invertAffine(m: ReadonlyMat4, source = 'transform'): Mat4 {
  const inv = mat4Invert(new Float64Array(16), m);
  if (!inv) throw new GeometryError('transform is singular', source);
  return inv;
}
