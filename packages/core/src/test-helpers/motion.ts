/**
 * Test-only helpers of the registration tests (imported by *.test.ts only, never by the module): the
 * truth is built here and in volume/rigid-motion.ts, independently of the code under test. A rigid motion
 * is made from an axis and an angle (Rodrigues' formula, not the module's Euler angles), the moving image
 * is the fixed one resampled through it (volume/resample.ts, a separate, tested module), and the target
 * registration error is measured over label voxel centres.
 */
import { mat4TransformPoint } from '../math/mat4.js';
import { createVolume, type Volume } from '../volume/volume.js';

export { labelPoints, meanPoint, meanTre, movedCopy, rigidMotion } from '../volume/rigid-motion.js';

/**
 * A CBCT-like copy (in place): outside a cylinder of radius radiusMm about the LPS z axis through
 * `centerMm` (moving frame) and beyond +-halfLengthMm along z, the scanner's fill value; inside,
 * HU * scale + offset plus a radial cupping of cuppingHu at the rim.
 */
export function cbctLike(
  v: Volume<Float32Array>,
  centerMm: readonly number[],
  radiusMm: number,
  halfLengthMm: number,
  scale: number,
  offset: number,
  cuppingHu: number,
  fill: number,
): Volume<Float32Array> {
  const [nx, ny, nz] = v.dims;
  const p = [0, 0, 0];
  for (let k = 0, o = 0; k < nz; k++)
    for (let j = 0; j < ny; j++)
      for (let i = 0; i < nx; i++, o++) {
        mat4TransformPoint(p, v.indexToPatient, [i, j, k]);
        const r = Math.hypot(p[0] - centerMm[0], p[1] - centerMm[1]);
        if (r > radiusMm || Math.abs(p[2] - centerMm[2]) > halfLengthMm) v.data[o] = fill;
        else v.data[o] = v.data[o] * scale + offset + cuppingHu * (r / radiusMm) ** 2;
      }
  return v;
}

/** A mask of the voxels within `mm` of a voxel whose label is in `ids` (brute force over a box, test only). */
export function dilatedLabelMask(labels: Volume, ids: readonly number[], mm: number): Volume<Uint8Array> {
  const [nx, ny, nz] = labels.dims;
  const out = new Uint8Array(nx * ny * nz);
  const r = [0, 1, 2].map((a) => Math.ceil(mm / labels.spacing[a]));
  for (let k = 0, o = 0; k < nz; k++)
    for (let j = 0; j < ny; j++)
      for (let i = 0; i < nx; i++, o++) {
        if (!ids.includes(labels.data[o])) continue;
        for (let c = Math.max(0, k - r[2]); c <= Math.min(nz - 1, k + r[2]); c++)
          for (let b = Math.max(0, j - r[1]); b <= Math.min(ny - 1, j + r[1]); b++)
            for (let a = Math.max(0, i - r[0]); a <= Math.min(nx - 1, i + r[0]); a++) {
              const d = Math.hypot(
                (a - i) * labels.spacing[0],
                (b - j) * labels.spacing[1],
                (c - k) * labels.spacing[2],
              );
              if (d <= mm) out[a + nx * (b + ny * c)] = 1;
            }
      }
  return createVolume({ data: out, dims: labels.dims, indexToPatient: labels.indexToPatient });
}
