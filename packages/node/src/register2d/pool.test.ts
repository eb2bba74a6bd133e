/**
 * Register2dPool (pool.ts): core's register2dAsync with its batches of DRRs on two worker threads gives
 * the fit of register2d on one thread, step for step (the same images, so the same pose, renders and
 * similarity), for one view and for two (an oblique view, swept along i: the pool's transposed copy). The
 * truth of the fit itself is tested elsewhere (trials.ts, core's register2d.test.ts); here the answer to
 * match is the single-threaded path's.
 */
import { afterAll, describe, expect, it } from 'vitest';
import {
  carmGeometry,
  carmPreset,
  generatePhantom,
  labelPoints,
  prepareDrrVolume,
  prepareRegister2dVolume,
  register2d,
  register2dAsync,
  Rng,
} from '@corridor/core';
import { movedFrame, randomMotion, SACRUM_BONE_LABELS } from './trials.js';
import { prepareSharedRegister2dVolume, Register2dPool } from './pool.js';

const phantom = generatePhantom({ voxelMm: 3, seed: 3 });
const pts = labelPoints(phantom.labels, SACRUM_BONE_LABELS);
const center: [number, number, number] = [0, 0, 0];
for (let q = 0; q < pts.length / 3; q++) for (let a = 0; a < 3; a++) center[a] += (3 * pts[3 * q + a]) / pts.length;
const LEVELS = [
  { volumeMm: 6, imagePx: 32, stepMm: 4, minStepMm: 1 },
  { volumeMm: 4, imagePx: 64, stepMm: 1, minStepMm: 0.25 },
];
const shared = prepareSharedRegister2dVolume(phantom.ct, { levelsMm: [6, 4] });
const pool = Register2dPool.create(shared, { threads: 2 });
afterAll(() => pool.close());

describe('Register2dPool', () => {
  const truth = prepareDrrVolume(phantom.ct);
  const motion = randomMotion(new Rng(5), 4, 8, center);
  const system = carmPreset('artis-zee-floor');
  const views = [0, 60].map((primaryDeg, i) => {
    const geometry = carmGeometry(system, { primaryDeg, secondaryDeg: 0, isocenter: center }, { size: 64 });
    return { gray: movedFrame(truth, motion, geometry, 20 + i), geometry };
  });

  it('gives register2d single-threaded result, one view and two', async () => {
    expect(pool.threads).toBe(2);
    const plain = prepareRegister2dVolume(phantom.ct, { levelsMm: [6, 4] });
    for (const v of [views.slice(0, 1), views]) {
      const opts = { centerMm: center, levels: LEVELS };
      const one = register2d(plain, v, opts);
      const many = await register2dAsync(shared, v, opts, pool);
      expect(many.renders).toBe(one.renders);
      expect(many.planningToCurrent).toEqual(one.planningToCurrent);
      expect(many.similarity).toBe(one.similarity);
      expect(many.uncertainty.depthUncertaintyMm).toBe(one.uncertainty.depthUncertaintyMm);
      expect(many.verdict).toEqual(one.verdict);
    }
  }, 120_000);

  it('refuses a volume that is not in shared memory, and a second batch while one runs', async () => {
    expect(() => Register2dPool.create(prepareRegister2dVolume(phantom.ct, { levelsMm: [6] }))).toThrow(
      /shared memory/,
    );
    const g = views[0].geometry;
    const job = () => ({
      level: 0,
      patientToIndex: shared.levels[0].dv.patientToIndex,
      geometry: g,
      out: new Float32Array(g.columns * g.rows),
    });
    const first = pool.render([job()]);
    await expect(pool.render([job()])).rejects.toThrow(/already rendering/);
    await first;
  });
});
