/**
 * The pyramid. A linear ramp is kept exactly by any symmetric smoothing away from the edges, so each
 * level's interior voxel must hold the ramp's value at its own centre (computed here from the level's
 * geometry); NaN (no data) must spread to the neighbours, never be averaged away; the fill value is
 * the corners' when they agree and are the minimum.
 */
import { describe, expect, it } from 'vitest';
import { mat4TransformPoint } from '../math/mat4.js';
import { createVolume, indexToPatientFrom } from '../volume/volume.js';
import { buildPyramid, detectFillValue, withNoDataAsNaN } from './pyramid.js';

const dims = [40, 36, 30] as const;
const g = indexToPatientFrom(
  [-20, 35, 900],
  [1, 1, 1],
  [
    [0, 1, 0],
    [-1, 0, 0],
    [0, 0, 1],
  ],
); // rotated axes, origin far from zero
const ramp = (p: ArrayLike<number>) => 2 * p[0] - 3 * p[1] + 0.5 * p[2];

describe('buildPyramid', () => {
  it('keeps a linear ramp at every level (integer and non-integer factors)', () => {
    const data = new Float32Array(dims[0] * dims[1] * dims[2]);
    const p = [0, 0, 0];
    for (let k = 0, o = 0; k < dims[2]; k++)
      for (let j = 0; j < dims[1]; j++)
        for (let i = 0; i < dims[0]; i++, o++) data[o] = ramp(mat4TransformPoint(p, g, [i, j, k]));
    const levels = buildPyramid(createVolume({ data, dims, indexToPatient: g }), [8, 4, 2.5, 2]);
    expect(levels.map((l) => l.spacing[0])).toEqual([8, 4, 2.5, 2]);
    for (const l of levels) {
      const [nx, ny, nz] = l.dims;
      // interior voxels (two level voxels from every face: beyond the kernel's reach of the edge)
      for (let k = 2; k < nz - 2; k++)
        for (let j = 2; j < ny - 2; j++)
          for (let i = 2; i < nx - 2; i++) {
            const want = ramp(mat4TransformPoint(p, l.indexToPatient, [i, j, k]));
            expect(Math.abs(l.data[i + nx * (j + ny * k)] - want)).toBeLessThan(1e-3);
          }
    }
  });

  it('spreads no-data (NaN) rather than averaging it, and finds the fill value', () => {
    const data = new Int16Array(dims[0] * dims[1] * dims[2]).fill(100);
    for (let o = 0; o < data.length; o++) if (o % dims[0] < 10 || o % dims[0] >= 30) data[o] = -3024; // no data at the sides
    const v = createVolume({ data, dims, indexToPatient: g });
    expect(detectFillValue(v)).toBe(-3024);
    const levels = buildPyramid(withNoDataAsNaN(v, -3024), [4, 2]);
    const direct = buildPyramid(v, [4, 2], -3024); // read in place, the fill read as no data
    for (let q = 0; q < 2; q++) expect(Array.from(direct[q].data)).toEqual(Array.from(levels[q].data));
    for (const l of levels) {
      for (const x of l.data) expect(Number.isNaN(x) || x === 100).toBe(true);
      expect(l.data.some(Number.isNaN)).toBe(true);
      expect(l.data.some((x) => x === 100)).toBe(true);
    }
    data[6] = -4000; // data below the fill (a C-arm CT's streaks): still the fill, half the voxels hold it
    expect(detectFillValue(v)).toBe(-3024);
    // The corners' value neither the minimum nor a plateau (under 5% of the voxels): not a fill value.
    data.fill(100);
    const edge = (i: number, n: number) => i === 0 || i === n - 1;
    for (let o = 0; o < data.length; o++)
      if (edge(o % dims[0], dims[0]) && edge(Math.floor(o / dims[0]) % dims[1], dims[1])) data[o] = -3024; // 4 lines
    expect(detectFillValue(v)).toBe(-3024);
    data[6] = -4000;
    expect(detectFillValue(v)).toBeNull();
  });
});
