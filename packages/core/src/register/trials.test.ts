/**
 * Seeded trials on the real 3 mm CT (../shared/data/abdomen-pelvis-ct): 8 random motions at the issue's
 * limits (10 degrees about a random axis, 20 mm in a random direction, noise 25 HU), each also as a
 * CBCT-like copy (cylindrical field of view, HU x 0.85 + 120, cupping). Truth from the test
 * (test-helpers/motion.ts). Every trial must end ok within 0.5 mm mean TRE over sacrum and S1 (the
 * issue's bound), and the mean over trials below 0.3 mm (elastix's 0.30 mm on this CT, issue 17).
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readNifti } from '../io/nifti.js';
import { Rng } from '../math/random.js';
import { sharedData } from '../test-helpers/data.js';
import { cbctLike, labelPoints, meanPoint, meanTre, movedCopy, rigidMotion } from '../test-helpers/motion.js';
import { registerRigid } from './rigid.js';

const ctFile = sharedData('abdomen-pelvis-ct', 'ct.nii.gz');
const labelFile = sharedData('abdomen-pelvis-ct', 'labels.nii.gz');

describe.skipIf(!existsSync(ctFile) || !existsSync(labelFile))('seeded trials on the real 3 mm CT', () => {
  const fixed = readNifti(new Uint8Array(readFileSync(ctFile)), ctFile).volume;
  const sacrum = labelPoints(readNifti(new Uint8Array(readFileSync(labelFile)), labelFile).volume, [25, 26]);
  const c = meanPoint(sacrum);

  async function trials(cbct: boolean): Promise<number[]> {
    const rng = new Rng(77);
    const tres: number[] = [];
    for (let t = 0; t < 8; t++) {
      // A macrotask between trials lets vitest's worker read its runner's replies (fixed 60 s RPC timeout).
      await new Promise<void>((resolve) => setTimeout(resolve, 0));
      const axis: [number, number, number] = [rng.range(-1, 1), rng.range(-1, 1), rng.range(-1, 1)];
      const dir = [rng.range(-1, 1), rng.range(-1, 1), rng.range(-1, 1)];
      const n = Math.hypot(dir[0], dir[1], dir[2]);
      const m = rigidMotion(axis, 10, [(20 * dir[0]) / n, (20 * dir[1]) / n, (20 * dir[2]) / n], c);
      let moving = movedCopy(fixed, m, 25, 100 + t);
      if (cbct) {
        const d = [c[0] - m[3], c[1] - m[7], c[2] - m[11]];
        const seen = [0, 1, 2].map((q) => m[q] * d[0] + m[4 + q] * d[1] + m[8 + q] * d[2]);
        moving = cbctLike(moving, seen, 110, 80, 0.85, 120, 60, -1024);
      }
      const r = registerRigid(fixed, moving);
      expect(r.verdict).toEqual({ status: 'ok', reasons: [] });
      tres.push(meanTre(sacrum, m, r.movingToFixed.flat()));
    }
    return tres;
  }

  it('CT to CT: every trial within 0.5 mm, mean below 0.3 mm', async () => {
    const tres = await trials(false);
    expect(Math.max(...tres)).toBeLessThan(0.5);
    expect(tres.reduce((a, b) => a + b, 0) / tres.length).toBeLessThan(0.3);
  });

  it('CT to CBCT-like: every trial within 0.5 mm, mean below 0.3 mm', async () => {
    const tres = await trials(true);
    expect(Math.max(...tres)).toBeLessThan(0.5);
    expect(tres.reduce((a, b) => a + b, 0) / tres.length).toBeLessThan(0.3);
  });
});
