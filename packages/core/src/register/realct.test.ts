/**
 * Rigid registration on the real 3 mm CT (../shared/data/abdomen-pelvis-ct, TotalSegmentator's example:
 * sacrum 25, S1 26, hips 77/78). Truth comes from the test (test-helpers/motion.ts): the moving image is
 * the CT moved by a motion built here, with noise; the error is measured over the sacrum's voxel centres
 * (labels 25 and 26). 0.5 mm (a sixth of a voxel) is the bound.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readNifti } from '../io/nifti.js';
import { Rng } from '../math/random.js';
import { mat4TransformPoint } from '../math/mat4.js';
import { sharedData } from '../test-helpers/data.js';
import {
  cbctLike,
  dilatedLabelMask,
  labelPoints,
  meanPoint,
  meanTre,
  movedCopy,
  rigidMotion,
} from '../test-helpers/motion.js';
import { registerRigid, SCATTER_LOCAL_MEAN_SIGMA_MM } from './rigid.js';

const ctFile = sharedData('abdomen-pelvis-ct', 'ct.nii.gz');
const labelFile = sharedData('abdomen-pelvis-ct', 'labels.nii.gz');

describe.skipIf(!existsSync(ctFile) || !existsSync(labelFile))('rigid registration on the real 3 mm CT', () => {
  const fixed = readNifti(new Uint8Array(readFileSync(ctFile)), ctFile).volume;
  const labels = readNifti(new Uint8Array(readFileSync(labelFile)), labelFile).volume;
  const sacrum = labelPoints(labels, [25, 26]);
  const centre = meanPoint(sacrum);
  // 10 degrees about an oblique axis, 20 mm: the largest motion.
  const motion = rigidMotion([-0.6, 0.2, 0.77], 10, [-8, 14.8, 11.9], centre);
  /** The sacrum's centre where the moving scanner saw it: motion^-1 (centre), R orthonormal. */
  const d = [centre[0] - motion[3], centre[1] - motion[7], centre[2] - motion[11]];
  const movingCentre = [0, 1, 2].map((c) => motion[c] * d[0] + motion[4 + c] * d[1] + motion[8 + c] * d[2]);

  it('recovers 10 degrees and 20 mm within 0.5 mm over the sacrum (MI, whole image)', () => {
    const r = registerRigid(fixed, movedCopy(fixed, motion, 20, 21));
    expect(r.verdict).toEqual({ status: 'ok', reasons: [] });
    expect(meanTre(sacrum, motion, r.movingToFixed.flat())).toBeLessThan(0.5);
  });

  it('recovers it from a CBCT-like moving image, its field of view found from the fill value alone', () => {
    const moving = cbctLike(movedCopy(fixed, motion, 30, 22), movingCentre, 110, 80, 0.85, 120, 60, -1024);
    const r = registerRigid(fixed, moving);
    expect(r.movingFill).toBe(-1024);
    expect(r.verdict).toEqual({ status: 'ok', reasons: [] });
    expect(meanTre(sacrum, motion, r.movingToFixed.flat())).toBeLessThan(0.5);
  });

  it('recovers it from the CBCT-like image within a mask of sacrum and ilia', () => {
    const moving = cbctLike(movedCopy(fixed, motion, 30, 23), movingCentre, 110, 80, 0.85, 120, 60, -1024);
    const r = registerRigid(fixed, moving, { fixedMask: dilatedLabelMask(labels, [25, 26, 77, 78], 6) });
    expect(r.verdict).toEqual({ status: 'ok', reasons: [] });
    expect(meanTre(sacrum, motion, r.movingToFixed.flat())).toBeLessThan(0.5);
  });

  it('reports a pair whose sacrum is replaced by noise as failed, within a sacral mask', () => {
    const moving = movedCopy(fixed, motion, 20, 24);
    const mask = dilatedLabelMask(labels, [25, 26], 6);
    const rng = new Rng(9);
    const [nx, ny, nz] = moving.dims;
    const p = [0, 0, 0],
      q = [0, 0, 0];
    const a = mask.patientToIndex;
    for (let k = 0, o = 0; k < nz; k++)
      for (let j = 0; j < ny; j++)
        for (let i = 0; i < nx; i++, o++) {
          mat4TransformPoint(p, moving.indexToPatient, [i, j, k]);
          mat4TransformPoint(q, motion, p);
          const mi = Math.round(a[0] * q[0] + a[1] * q[1] + a[2] * q[2] + a[3]);
          const mj = Math.round(a[4] * q[0] + a[5] * q[1] + a[6] * q[2] + a[7]);
          const mk = Math.round(a[8] * q[0] + a[9] * q[1] + a[10] * q[2] + a[11]);
          if (mi >= 0 && mj >= 0 && mk >= 0 && mi < nx && mj < ny && mk < nz && mask.data[mi + nx * (mj + ny * mk)])
            moving.data[o] = rng.range(-1000, 1500);
        }
    const r = registerRigid(fixed, moving, { fixedMask: mask });
    expect(r.verdict.status).toBe('failed');
    expect(r.verdict.reasons.join(' ')).toMatch(/no structure matches/);
    // The same with the local normalisation a C-arm CT pair gets by default (MI 0.011 nats).
    const n = registerRigid(fixed, moving, { fixedMask: mask, localMeanSigmaMm: SCATTER_LOCAL_MEAN_SIGMA_MM });
    expect(n.localStdSigmaMm).toBeGreaterThan(0);
    expect(n.verdict.status).toBe('failed');
    expect(n.verdict.reasons.join(' ')).toMatch(/no structure matches/);
  });
});
