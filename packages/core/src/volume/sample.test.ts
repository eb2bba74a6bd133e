/**
 * Pins where a volume ends for each sampler (sample.ts header): trilinear accepts EDGE_EPS (1e-6 voxel)
 * beyond the outermost voxel centres and clamps onto them; nearest accepts up to half a voxel
 * (Math.round: [-0.5, n - 0.5)); NaN is outside for both.
 */
import { describe, expect, it } from 'vitest';
import { defined } from '../test-helpers/defined.js';
import {
  EDGE_EPS,
  patientToIndexContinuous,
  patientToIndexRounded,
  sampleIndexNearest,
  sampleIndexTrilinear,
  sampleNearest,
  sampleTrilinear,
} from './sample.js';
import { createVolume, indexToPatientFrom } from './volume.js';

const DIMS = [3, 4, 5] as const;
const OUT = -999;
/** Voxel (i, j, k) holds 100 + offset: every voxel has its own value, and the value names the voxel. */
const valueAt = (i: number, j: number, k: number) => 100 + i + DIMS[0] * (j + DIMS[1] * k);

function volume() {
  const data = new Float32Array(DIMS[0] * DIMS[1] * DIMS[2]).map((_, n) => 100 + n);
  // Oblique (0.6 rad about z), anisotropic, k flipped, far origin: patient-point tests go through it.
  const c = Math.cos(0.6),
    s = Math.sin(0.6);
  const m = indexToPatientFrom(
    [-312.4, 187.9, 1043.2],
    [0.7, 1.3, 2.1],
    [
      [c, s, 0],
      [-s, c, 0],
      [0, 0, -1],
    ],
  );
  return createVolume({ data, dims: DIMS, indexToPatient: m });
}

/** (1, 2, 3) with component `axis` replaced by `f`. */
const at = (axis: number, f: number): [number, number, number] => {
  const p: [number, number, number] = [1, 2, 3];
  p[axis] = f;
  return p;
};

describe('sample: edge of the grid', () => {
  const vol = volume();

  it('EDGE_EPS is 1e-6 voxel', () => {
    expect(EDGE_EPS).toBe(1e-6);
  });

  for (const axis of [0, 1, 2]) {
    const last = DIMS[axis] - 1;
    it(`trilinear along axis ${axis}: inside within EDGE_EPS of the outer centres, clamped onto them`, () => {
      // Inside: -1e-9 and -1e-7 (round-off sized), and exactly -EDGE_EPS (the bound is inclusive).
      // Clamping puts the point on the first centre, so the value is that voxel's value exactly.
      const first = valueAt(...at(axis, 0));
      for (const f of [-1e-9, -1e-7, -EDGE_EPS]) {
        expect(sampleIndexTrilinear(vol, ...at(axis, f), OUT)).toBe(first);
      }
      // Outside: -1e-5 (ten times EDGE_EPS) and just beyond EDGE_EPS.
      for (const f of [-1e-5, -1.01e-6, -0.5]) expect(sampleIndexTrilinear(vol, ...at(axis, f), OUT)).toBe(OUT);
      // Far side: n - 1 + 1e-9 is the last centre; n - 1 + 1e-5 is outside.
      expect(sampleIndexTrilinear(vol, ...at(axis, last + 1e-9), OUT)).toBe(valueAt(...at(axis, last)));
      expect(sampleIndexTrilinear(vol, ...at(axis, last + EDGE_EPS), OUT)).toBe(valueAt(...at(axis, last)));
      expect(sampleIndexTrilinear(vol, ...at(axis, last + 1e-5), OUT)).toBe(OUT);
      // Halfway between the last two centres: the mean of their values (interpolation still runs there).
      const mid = (valueAt(...at(axis, last - 1)) + valueAt(...at(axis, last))) / 2;
      expect(sampleIndexTrilinear(vol, ...at(axis, last - 0.5), OUT)).toBe(mid);
    });

    it(`nearest along axis ${axis}: inside up to half a voxel, [-0.5, n - 0.5)`, () => {
      expect(sampleIndexNearest(vol, ...at(axis, -0.49), OUT)).toBe(valueAt(...at(axis, 0)));
      expect(sampleIndexNearest(vol, ...at(axis, -0.5), OUT)).toBe(valueAt(...at(axis, 0))); // tie rounds up
      expect(sampleIndexNearest(vol, ...at(axis, -0.51), OUT)).toBe(OUT);
      expect(sampleIndexNearest(vol, ...at(axis, last + 0.49), OUT)).toBe(valueAt(...at(axis, last)));
      expect(sampleIndexNearest(vol, ...at(axis, last + 0.5), OUT)).toBe(OUT); // rounds to n: outside
      expect(sampleIndexNearest(vol, ...at(axis, last + 0.51), OUT)).toBe(OUT);
    });
  }

  it('NaN is outside for both samplers and for patientToIndexRounded', () => {
    expect(sampleIndexTrilinear(vol, NaN, 1, 1, OUT)).toBe(OUT);
    expect(sampleIndexNearest(vol, 1, NaN, 1, OUT)).toBe(OUT);
    expect(sampleTrilinear(vol, [NaN, 0, 0], OUT)).toBe(OUT);
    expect(sampleNearest(vol, [0, 0, NaN], OUT)).toBe(OUT);
    // Before issue 13 this returned [NaN, NaN, NaN]: "i < 0 || ..." is false for NaN.
    expect(patientToIndexRounded(vol, [NaN, 0, 0])).toBeNull();
  });

  it('patient points: same bounds through the oblique, flipped geometry', () => {
    const m = vol.indexToPatient;
    const toPatient = (i: number, j: number, k: number) => [
      m[0] * i + m[1] * j + m[2] * k + m[3],
      m[4] * i + m[5] * j + m[6] * k + m[7],
      m[8] * i + m[9] * j + m[10] * k + m[11],
    ];
    // Index -1e-7 survives the round trip through the matrices: inside, value of (0, 2, 3) = 142. The trip
    // moves j and k by ~1e-13 voxel, and neighbours differ by 3 and 12, so 142 holds to ~1e-12, not exactly.
    expect(sampleTrilinear(vol, toPatient(-1e-7, 2, 3), OUT)).toBeCloseTo(valueAt(0, 2, 3), 9);
    expect(sampleTrilinear(vol, toPatient(-1e-5, 2, 3), OUT)).toBe(OUT);
    expect(sampleNearest(vol, toPatient(1, 2, 4.49), OUT)).toBe(valueAt(1, 2, 4));
    expect(sampleNearest(vol, toPatient(1, 2, 4.51), OUT)).toBe(OUT);
    const r = defined(patientToIndexRounded(vol, toPatient(-0.49, 3.4, 0.2)), 'the rounded index');
    expect(r).toEqual([0, 3, 0]);
    expect(Object.is(r[0], 0)).toBe(true); // not -0 (Math.round(-0.49) is -0)
    expect(patientToIndexRounded(vol, toPatient(-0.51, 3, 0))).toBeNull();
    expect(patientToIndexRounded(vol, toPatient(2.49, 3.49, 4.49))).toEqual([2, 3, 4]);
    expect(patientToIndexRounded(vol, toPatient(2, 3.51, 4))).toBeNull();
  });

  it('patientToIndexContinuous gives the same index when out is the point itself', () => {
    const p = [-310.5, 190.25, 1040.75];
    const want = patientToIndexContinuous([0, 0, 0], vol, p);
    const q = [...p];
    expect(patientToIndexContinuous(q, vol, q)).toBe(q);
    expect(q).toEqual(want);
    // And it is the inverse of indexToPatient: back to p within 1e-9 mm (float64 at ~1000 mm is ~1e-13).
    const m = vol.indexToPatient;
    for (let r = 0; r < 3; r++) {
      const back = m[r * 4] * want[0] + m[r * 4 + 1] * want[1] + m[r * 4 + 2] * want[2] + m[r * 4 + 3];
      expect(Math.abs(back - p[r])).toBeLessThan(1e-9);
    }
  });

  it('a single-slice volume (nz = 1) samples its one slice and keeps the same k tolerance', () => {
    const data = new Float64Array([10, 20, 30, 40]); // 2 x 2 x 1
    const one = createVolume({ data, dims: [2, 2, 1], indexToPatient: indexToPatientFrom([0, 0, 0], [1, 1, 1]) });
    // Centre of the four voxels: the mean, (10 + 20 + 30 + 40) / 4 = 25.
    expect(sampleIndexTrilinear(one, 0.5, 0.5, 0, OUT)).toBe(25);
    expect(sampleIndexTrilinear(one, 0.5, 0.5, 1e-7, OUT)).toBe(25);
    expect(sampleIndexTrilinear(one, 0.5, 0.5, -1e-5, OUT)).toBe(OUT);
    expect(sampleIndexNearest(one, 1, 1, 0.49, OUT)).toBe(40);
  });
});
