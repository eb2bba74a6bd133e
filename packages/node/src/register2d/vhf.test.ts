/**
 * 2D/3D registration on the real 1 mm pelvis CT (../shared/data/vhf-pelvis-ct, the Visible Human female):
 * seeded trials as on the phantom (trials.ts: moved by up to 10 mm and 5 degrees, frames from the 1 mm
 * CT with the fluoroscopy model and noise). That CT has no labels: the targets are a 5 mm lattice within
 * 40 mm of the S1 body centre (246, 284, 975 LPS mm, read off its slices; see plan/vhf.test.ts), i.e. the
 * upper sacrum and the sacroiliac joints. The CT is 150 mm long, so the detector is collimated to 180 mm
 * (118 mm at the isocentre) to keep its cut ends out of the frames. CI runs 10 trials per case (the
 * benchmark `register2d` runs 50); the phantom's 50-trial files are beside this one.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { prepareRegister2dVolume, readNifti } from '@corridor/core';
import { sharedDataDir } from '../io/shared-data.js';
import { runTrials, s1Lattice, type TrialSetup } from './trials.js';

const file = path.join(sharedDataDir(), 'vhf-pelvis-ct', 'ct.nii.gz');
const TRIALS = 10;

describe.skipIf(!existsSync(file))('2D/3D registration on the real 1 mm pelvis CT, seeded trials', () => {
  const ct = existsSync(file) ? readNifti(new Uint8Array(readFileSync(file)), file).volume : undefined;
  const setup = (primaryDeg: number[]): TrialSetup => {
    if (!ct) throw new Error('no CT');
    return {
      truth: ct,
      prepared: prepareRegister2dVolume(ct, { levelsMm: [4, 3, 2] }),
      points: s1Lattice(),
      primaryDeg,
      sizePx: 128,
      fieldMm: 180,
      levels: [
        { volumeMm: 4, imagePx: 64, stepMm: 4, minStepMm: 1 },
        { volumeMm: 2, imagePx: 128, stepMm: 1, minStepMm: 0.2 },
      ],
    };
  };

  it('two views 60 degrees apart: every trial ok within 1 mm mean TRE', async () => {
    const r = await runTrials(setup([0, 60]), TRIALS, 500);
    const tres = r.map((t) => t.tre).sort((a, b) => a - b);
    console.log(
      `vhf two views: TRE median ${tres[TRIALS >> 1].toFixed(2)} max ${tres[TRIALS - 1].toFixed(2)} mm; ` +
        `${r.filter((t) => t.result.verdict.status !== 'ok').length} failed; GC ` +
        `${Math.min(...r.map((t) => t.result.similarity)).toFixed(3)}+`,
    );
    // 95% of 10 is 10: every trial.
    for (const t of r) {
      expect(t.result.verdict.status).toBe('ok');
      expect(t.tre).toBeLessThan(1);
    }
  }, 900_000);

  it('one view: across the central ray within 1 mm, the reported depth uncertainty covering the depth error', async () => {
    const r = await runTrials(setup([0]), TRIALS, 700);
    const depth = r.map((t) => `${t.depth.toFixed(2)}/${t.result.uncertainty.depthUncertaintyMm.toFixed(2)}`);
    console.log(
      `vhf one view: across max ${Math.max(...r.map((t) => t.across)).toFixed(2)} mm; depth error/bound ${depth.join(' ')}`,
    );
    for (const t of r) {
      expect(t.result.verdict.status).toBe('ok');
      expect(t.across).toBeLessThan(1);
      expect(Math.abs(t.depth)).toBeLessThanOrEqual(t.result.uncertainty.depthUncertaintyMm);
    }
  }, 900_000);
});
