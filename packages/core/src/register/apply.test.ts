/** Using a registration: a plan carried by a known motion, and a moved image resampled back. */
import { describe, expect, it } from 'vitest';
import { GeometryError } from '../errors.js';
import type { Plan } from '../plan/model.js';
import { rigidMotion } from '../test-helpers/motion.js';
import { createVolume, indexToPatientFrom } from '../volume/volume.js';
import { resampleOntoFixed, transformPlan } from './apply.js';

describe('transformPlan', () => {
  it('moves entry and target by movingToFixed and takes the fixed volume reference', () => {
    // 90 degrees about z through the origin, then +10 mm in x: (1, 2, 3) -> (-2, 1, 3) -> (8, 1, 3).
    const m2f = rigidMotion([0, 0, 1], 90, [10, 0, 0], [0, 0, 0]);
    const plan: Plan = {
      schemaVersion: 1,
      volume: { file: 'ct.nii.gz' },
      paths: [{ id: 's1', name: 'S1', kind: 'screw', diameterMm: 7.3, entry: [1, 2, 3], target: [1, 2, 83] }],
    };
    const out = transformPlan(plan, m2f, { file: 'cbct.nii.gz' });
    out.paths[0].entry.forEach((v, i) => expect(v).toBeCloseTo([8, 1, 3][i], 12));
    out.paths[0].target.forEach((v, i) => expect(v).toBeCloseTo([8, 1, 83][i], 12));
    expect(out.volume).toEqual({ file: 'cbct.nii.gz' });
    expect(plan.paths[0].entry).toEqual([1, 2, 3]); // the input is not changed
    const scaled = Float64Array.from(m2f);
    scaled[1] *= 1.1; // m[1] is -sin 90: a stretch
    expect(() => transformPlan(plan, scaled, {})).toThrow(GeometryError);
  });
});

describe('resampleOntoFixed', () => {
  it('puts a translated copy back on the fixed grid', () => {
    // A linear ramp f(x) = x on a 20^3 grid of 1 mm; the moving image is f seen after a +3 mm shift
    // in x (moving point y holds f(y + 3)); resampled with movingToFixed = +3 mm it gives f back.
    const dims = [20, 20, 20] as const;
    const g = indexToPatientFrom([0, 0, 0], [1, 1, 1]);
    const mov = new Float32Array(8000);
    for (let o = 0; o < 8000; o++) mov[o] = (o % 20) + 3;
    const moving = createVolume({ data: mov, dims, indexToPatient: g });
    const m2f = rigidMotion([0, 0, 1], 0, [3, 0, 0], [0, 0, 0]);
    const back = resampleOntoFixed(moving, { dims, indexToPatient: g }, m2f, { outside: -1 });
    expect(back.data[5 + 20 * (7 + 20 * 9)]).toBeCloseTo(5, 5);
    expect(back.data[1]).toBe(-1); // x = 1 maps to moving x = -2: outside
  });
});
