/**
 * Where the patient lies in the scanner, and the CT grid around it. The analytic anatomy is built in the
 * design frame (anatomy.ts); this module places that frame in LPS (world = R * design + OFFSET, a small
 * rotation so that no corridor runs along a grid axis) and lays the axis-aligned voxel grid over the field
 * of view. Exists so that the truth, the instruments and the rasterizer share one transform.
 * Limits: one placement for every case (HFS, 2 deg about z, 1 deg about y, a fixed table position); the
 * field of view does not adapt to the anatomy; the grid is isotropic.
 */
import type { Mat4 } from '../math/mat4.js';
import type { Point3 } from '../math/vec3.js';
import { indexToPatientFrom, voxelCount } from '../volume/volume.js';

/** The patient lies slightly rotated on the table, so no corridor runs along a grid axis. */
export const ROT_Z_DEG = 2.0;
export const ROT_Y_DEG = 1.0;
/** Where the design frame's origin (S1 endplate centre) lies in LPS mm: a plausible table position. */
export const OFFSET: Point3 = [1.5, 4.0, -168.0];
/** Field of view about OFFSET (mm): both ilia, L5 to the coccyx, the table top. */
const FOV_MIN: Point3 = [-180, -150, -120];
const FOV_MAX: Point3 = [180, 100, 66];
/** Design y of the table top (mm); the table is world-flat, it does not turn with the patient. */
export const TABLE_TOP_Y = 87;

/**
 * The design frame in LPS: R (row-major 3x3, design -> world) and the conversions it defines. The
 * conversions are plain functions (no `this`), so they can be taken off the object and passed around.
 */
export interface Placement {
  R: number[];
  /** Design point -> LPS mm. */
  toWorld: (q: ArrayLike<number>) => Point3;
  /** Design direction -> LPS direction. */
  dirToWorld: (v: ArrayLike<number>) => Point3;
  /** LPS mm -> design point (the inverse of toWorld). */
  fromWorld: (p: ArrayLike<number>) => Point3;
}

export function patientPlacement(): Placement {
  const a = (ROT_Z_DEG * Math.PI) / 180,
    b = (ROT_Y_DEG * Math.PI) / 180;
  const ca = Math.cos(a),
    sa = Math.sin(a),
    cb = Math.cos(b),
    sb = Math.sin(b);
  // Rz(a) * Ry(b), row-major 3x3.
  const R = [ca * cb, -sa, ca * sb, sa * cb, ca, sa * sb, -sb, 0, cb];
  return {
    R,
    toWorld: (q) => [
      R[0] * q[0] + R[1] * q[1] + R[2] * q[2] + OFFSET[0],
      R[3] * q[0] + R[4] * q[1] + R[5] * q[2] + OFFSET[1],
      R[6] * q[0] + R[7] * q[1] + R[8] * q[2] + OFFSET[2],
    ],
    dirToWorld: (v) => [
      R[0] * v[0] + R[1] * v[1] + R[2] * v[2],
      R[3] * v[0] + R[4] * v[1] + R[5] * v[2],
      R[6] * v[0] + R[7] * v[1] + R[8] * v[2],
    ],
    fromWorld: (p) => {
      const x = p[0] - OFFSET[0],
        y = p[1] - OFFSET[1],
        z = p[2] - OFFSET[2];
      return [R[0] * x + R[3] * y + R[6] * z, R[1] * x + R[4] * y + R[7] * z, R[2] * x + R[5] * y + R[8] * z];
    },
  };
}

/** The CT grid: axis aligned, centred on the field of view, isotropic voxelMm. */
export interface PhantomGrid {
  dims: [number, number, number];
  /** Voxel size (mm), the same along i, j and k. */
  voxelMm: number;
  /** Voxel count. */
  n: number;
  /** LPS mm of the centre of voxel (0, 0, 0). */
  origin: Point3;
  indexToPatient: Mat4;
}

/** Throws the volume module's LimitError when the grid would be too large. */
export function phantomGrid(voxelMm: number): PhantomGrid {
  const v = voxelMm;
  const axes = [0, 1, 2];
  const dims = axes.map((a) => Math.max(1, Math.round((FOV_MAX[a] - FOV_MIN[a]) / v))) as [number, number, number];
  const n = voxelCount(dims, 'phantom');
  const origin = axes.map((a) => OFFSET[a] + (FOV_MIN[a] + FOV_MAX[a]) / 2 - ((dims[a] - 1) * v) / 2) as Point3;
  return { dims, voxelMm, n, origin, indexToPatient: indexToPatientFrom(origin, [v, v, v]) };
}
