import { describe, expect, it } from 'vitest';
import { UsageError } from '../errors.js';
import { createVolume, indexToPatientFrom } from './volume.js';
import {
  coordinateForms,
  formatCoordinateForms,
  lpsToRas,
  nearestVoxelCentre,
  parseCoordinate,
  parsePointLps,
  stepAlongSlices,
} from './coordinates.js';

/**
 * A CT-like grid that is hard to fool: anisotropic (0.7 x 0.8 mm in plane, 2 mm slices), origin far
 * from zero, i running to the patient's right (-x) and k from head to feet (-z), like many DICOM series.
 * Voxel (i, j, k) centre in LPS, by hand: x = 120 - 0.7 i, y = -80 + 0.8 j, z = -785.5 - 2 k.
 */
const vol = createVolume({
  data: new Int16Array(40 * 30 * 20),
  dims: [40, 30, 20],
  indexToPatient: indexToPatientFrom(
    [120, -80, -785.5],
    [0.7, 0.8, 2],
    [
      [-1, 0, 0],
      [0, 1, 0],
      [0, 0, -1],
    ],
  ),
  meta: { source: 'test grid' },
});

describe('parseCoordinate', () => {
  it('reads the three named forms and the bare form (LPS by default)', () => {
    expect(parseCoordinate('lps:1,-2.5,3e1')).toEqual({ form: 'lps', values: [1, -2.5, 30] });
    expect(parseCoordinate('RAS: 1, 2, 3')).toEqual({ form: 'ras', values: [1, 2, 3] });
    expect(parseCoordinate('ijk:4 5 6')).toEqual({ form: 'ijk', values: [4, 5, 6] });
    expect(parseCoordinate('-1,.5,+2')).toEqual({ form: 'lps', values: [-1, 0.5, 2] });
    expect(parseCoordinate('1,2,3', 'x', 'ras').form).toBe('ras');
  });

  it('refuses other text with a UsageError naming what was read', () => {
    for (const bad of ['', '1,2', '1,2,3,4', 'xyz:1,2,3', 'lps:1,2,a', '1,,2,3', 'ras:'])
      expect(() => parseCoordinate(bad, '--seed "s1"')).toThrow(UsageError);
    expect(() => parseCoordinate('xyz:1,2,3', '--seed "s1"')).toThrow(/--seed "s1": unknown coordinate form "xyz"/);
  });
});

describe('coordinate conversion', () => {
  it('RAS is (-x, -y, z) of LPS, as 3D Slicer shows it', () => {
    expect(lpsToRas([10, -20, 30])).toEqual([-10, 20, 30]);
    expect(parsePointLps('ras:10,-20,30')).toEqual([-10, 20, 30]);
  });

  it('ijk goes through the grid: voxel (10, 5, 3) is at (113, -76, -791.5) LPS mm (by hand above)', () => {
    const p = parsePointLps('ijk:10,5,3', vol);
    expect(p[0]).toBeCloseTo(113, 12);
    expect(p[1]).toBeCloseTo(-76, 12);
    expect(p[2]).toBeCloseTo(-791.5, 12);
    expect(() => parsePointLps('ijk:1,2,3')).toThrow(/needs an image/);
  });

  it('the three forms of a point round-trip through the parser', () => {
    const lps: [number, number, number] = [113.35, -75.6, -790.5];
    const f = coordinateForms(vol, lps);
    // Continuous index by hand: i = (120 - 113.35) / 0.7 = 9.5, j = (80 - 75.6) / 0.8 = 5.5, k = 2.5.
    expect(f.ijk[0]).toBeCloseTo(9.5, 12);
    expect(f.ijk[1]).toBeCloseTo(5.5, 12);
    expect(f.ijk[2]).toBeCloseTo(2.5, 12);
    expect(f.ras).toEqual([-113.35, 75.6, -790.5]);
    const text = formatCoordinateForms(f);
    expect(text.lps).toBe('lps:113.3, -75.6, -790.5');
    expect(text.ras).toBe('ras:-113.3, 75.6, -790.5');
    expect(text.ijk).toBe('ijk:10, 6, 3');
    for (const t of [text.lps, text.ras]) {
      const back = parsePointLps(t, vol);
      for (let a = 0; a < 3; a++) expect(Math.abs(back[a] - lps[a])).toBeLessThan(0.051);
    }
    expect(coordinateForms(vol, [0, 0, 0]).voxel).toBeNull();
  });
});

describe('nearestVoxelCentre', () => {
  it('rounds the index and clamps it into the grid (centres by hand: x = 120 - 0.7 i, z = -785.5 - 2 k)', () => {
    // i = 9.4 -> 9 (x = 113.7); j = 5.5 -> 6 (y = -75.2); k = 2.6 -> 3 (z = -791.5).
    const p = nearestVoxelCentre(vol, [120 - 0.7 * 9.4, -80 + 0.8 * 5.5, -785.5 - 2 * 2.6]);
    expect(p[0]).toBeCloseTo(113.7, 9);
    expect(p[1]).toBeCloseTo(-75.2, 9);
    expect(p[2]).toBeCloseTo(-791.5, 9);
    // Beyond the last slice (k = 25 of 20) and before the first column: the grid's edge voxels.
    const q = nearestVoxelCentre(vol, [500, -80, -785.5 - 2 * 25]);
    expect(q[0]).toBeCloseTo(120, 9);
    expect(q[2]).toBeCloseTo(-785.5 - 2 * 19, 9);
  });
});

describe('stepAlongSlices', () => {
  // Slice centres along z: -785.5 - 2k; the axial view's normal is +z (u = +x, v = +y: u x v = +z).
  it('from between slices lands on the next acquired slice centre, then steps slice by slice', () => {
    const start: [number, number, number] = [100, -70, -804.5 + 0.3]; // between k = 9 (-803.5) and 10 (-805.5)
    const up = stepAlongSlices(vol, start, [0, 0, 1], 1);
    expect(up.aligned).toBe(true);
    expect(Math.abs(up.point[2] - -803.5)).toBeLessThan(1e-9);
    expect(up.point[0]).toBe(100);
    expect(up.point[1]).toBe(-70);
    const up2 = stepAlongSlices(vol, up.point, [0, 0, 1], 1);
    expect(Math.abs(up2.point[2] - -801.5)).toBeLessThan(1e-9);
    const down = stepAlongSlices(vol, start, [0, 0, 1], -1);
    expect(Math.abs(down.point[2] - -805.5)).toBeLessThan(1e-9);
    const down5 = stepAlongSlices(vol, up.point, [0, 0, 1], -5);
    expect(Math.abs(down5.point[2] - -813.5)).toBeLessThan(1e-9);
    // A normal pointing the other way (-z) moves the other way.
    expect(Math.abs(stepAlongSlices(vol, start, [0, 0, -1], 1).point[2] - -805.5)).toBeLessThan(1e-9);
  });

  it('in plane (sagittal normal x, 0.7 mm columns) it lands on column centres 120 - 0.7 i', () => {
    const r = stepAlongSlices(vol, [100.05, 0, 0], [1, 0, 0], 1);
    // x = 100.05 is i = 28.5; +x is -i, so the next centre toward +x is i = 28: x = 100.4.
    expect(Math.abs(r.point[0] - 100.4)).toBeLessThan(1e-9);
  });

  it('an oblique normal moves by the spacing seen along it', () => {
    const n = [0, Math.sin(0.3), Math.cos(0.3)];
    const r = stepAlongSlices(vol, [0, 0, 0], n, 1);
    expect(r.aligned).toBe(false);
    // k changes fastest: 1 / (cos 0.3 / 2 mm) = 2.0934 mm; j: sin 0.3 / 0.8 = 0.369 per mm, slower.
    expect(Math.hypot(...r.point)).toBeCloseTo(2 / Math.cos(0.3), 9);
  });
});
