/**
 * 2D/3D registration (register2d.ts) on the 2 mm phantom, small frames so the file runs in seconds. The
 * seeded 50-trial statistics of issue 17 are in packages/node/src/register2d/. Here the truth is made by
 * another route than the module's: the moved patient is the phantom resampled through the motion
 * (test-helpers/motion.ts, volume/resample.ts) and projected at the nominal pose, so the way the module
 * moves the patient (through the DRR volume's patientToIndex) is checked against an independent one.
 */
import { describe, expect, it } from 'vitest';
import { UsageError } from '../errors.js';
import { generatePhantom } from '../phantom/generate.js';
import { PHANTOM_LABELS as L } from '../phantom/labels.js';
import { carmGeometry, carmPreset, projectPoint, projectionMatrix } from '../carm/geometry.js';
import { prepareDrrVolume, renderLineIntegrals } from '../drr/drrVolume.js';
import { fluoroscopyWithExposure } from '../drr/fluoro.js';
import { labelPoints, meanPoint, meanTre, movedCopy, rigidMotion } from '../test-helpers/motion.js';
import { prepareRegister2dVolume, register2d } from './register2d.js';
import type { Point3 } from '../math/vec3.js';

const phantom = generatePhantom({ voxelMm: 2, seed: 3 });
const sacrum = labelPoints(phantom.labels, [L.cortex, L.cancellous, L.fracture]);
const centre = meanPoint(sacrum);
// The patient seen now: value at y is the planning CT's at currentToPlanning(y) (4 degrees, 7 mm).
const currentToPlanning = rigidMotion([0.3, 0.8, -0.5], 4, [4, -3.5, 4.6], centre);
const moved = movedCopy(phantom.ct, currentToPlanning, 10, 3, -1000);
const movedDv = prepareDrrVolume(moved);
const system = carmPreset('artis-zee-floor');
const geometry = (primaryDeg: number) =>
  carmGeometry(system, { primaryDeg, secondaryDeg: 0, isocenter: centre }, { size: 128 });
const frame = (primaryDeg: number, seed: number) => {
  const g = geometry(primaryDeg);
  const li = renderLineIntegrals(movedDv, g);
  return { gray: fluoroscopyWithExposure(li, g, { seed, exposure: {} }).gray, geometry: g };
};
const prepared = prepareRegister2dVolume(phantom.ct, { levelsMm: [4, 2] });
const LEVELS = [
  { volumeMm: 4, imagePx: 64, stepMm: 4, minStepMm: 1 },
  { volumeMm: 2, imagePx: 128, stepMm: 1, minStepMm: 0.2 },
];
const path = {
  id: 's1',
  name: 'S1',
  diameterMm: 7,
  entry: [centre[0] - 40, centre[1] + 5, centre[2]] as Point3,
  target: [centre[0] + 40, centre[1] + 5, centre[2]] as Point3,
};

describe('register2d on the phantom (2 mm, 128-pixel frames)', () => {
  const views = [frame(0, 1), frame(65, 2)];
  const r = register2d(prepared, views, { levels: LEVELS, paths: [path] });

  it('two views: recovers a motion made by resampling the volume within 1 mm over the sacrum', () => {
    expect(r.verdict).toEqual({ status: 'ok', reasons: [] });
    expect(meanTre(sacrum, currentToPlanning, r.currentToPlanning.flat())).toBeLessThan(1);
    // Before: the motion moved the sacrum by several mm.
    expect(meanTre(sacrum, currentToPlanning, [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1])).toBeGreaterThan(5);
    expect(r.singleView).toBe(false);
    expect(r.similarity).toBeGreaterThan(r.nullSimilarity + 0.1);
    expect(r.views[1].similarity).toBeGreaterThan(r.views[1].similarityBefore);
    expect(r.renders).toBeGreaterThan(100);
  });

  it('moves the overlay with the patient: the path drawn after lands where the moved entry projects', () => {
    // Where the entry is now: currentToPlanning^-1 (entry), solved here (R orthonormal).
    const m = currentToPlanning;
    const d = [0, 1, 2].map((i) => path.entry[i] - m[i * 4 + 3]);
    const now = [0, 1, 2].map((c) => m[c] * d[0] + m[4 + c] * d[1] + m[8 + c] * d[2]);
    for (const [i, v] of r.views.entries()) {
      const want = projectPoint(projectionMatrix(views[i].geometry), now);
      const after = v.after[0].entryPx,
        before = v.before[0].entryPx;
      expect(Math.hypot(after[0] - want[0], after[1] - want[1])).toBeLessThan(1);
      expect(Math.hypot(before[0] - want[0], before[1] - want[1])).toBeGreaterThan(2);
    }
  });

  it('one view: reports the depth uncertainty along its central ray, larger than across it', () => {
    const one = register2d(prepared, [views[0]], { levels: LEVELS });
    expect(one.singleView).toBe(true);
    const u = one.uncertainty;
    expect(u.depthDirection[1]).toBeCloseTo(-1, 6); // AP: the ray runs from posterior to anterior (-y)
    expect(u.depthSdMm.jackknife).not.toBeNull();
    expect(u.depthUncertaintyMm).toBeGreaterThan(2 * Math.max(u.centerSdMm[0], u.centerSdMm[1]));
  });

  it('rejects bad input with a UsageError', () => {
    expect(() => register2d(prepared, [])).toThrow(UsageError);
    expect(() => register2d(prepared, [views[0], views[1], views[0]])).toThrow(UsageError);
    expect(() => register2d(prepared, [{ gray: new Uint8Array(10), geometry: views[0].geometry }])).toThrow(
      /frame holds 10 pixels/,
    );
    expect(() =>
      register2d(prepared, [{ gray: new Uint8Array(views[0].gray.length).fill(128), geometry: views[0].geometry }]),
    ).toThrow(/no gradients/);
  });
});
