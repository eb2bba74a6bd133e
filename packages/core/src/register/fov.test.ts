/**
 * The cone-beam field of view and the local normalisation on small synthetic levels whose answers are
 * known by construction: a cylinder about a chosen grid axis, on a grid with a non-trivial orientation.
 */
import { describe, expect, it } from 'vitest';
import { createVolume, type Volume } from '../volume/volume.js';
import {
  CONE_KEEP_FRACTION,
  detectConeBeamFov,
  divideByLocalRms,
  dropConeEnds,
  LOCAL_RMS_FLOOR,
  subtractLocalMean,
} from './fov.js';

/** A level of dims with 2 mm voxels, axes permuted (i along -z, j along x, k along y), NaN outside `inside`. */
function level(dims: [number, number, number], inside: (i: number, j: number, k: number) => boolean, value = 100) {
  const m = Float64Array.from([0, 2, 0, 10, 0, 0, 2, -20, -2, 0, 0, 300, 0, 0, 0, 1]);
  const data = new Float32Array(dims[0] * dims[1] * dims[2]);
  for (let k = 0, o = 0; k < dims[2]; k++)
    for (let j = 0; j < dims[1]; j++) for (let i = 0; i < dims[0]; i++, o++) data[o] = inside(i, j, k) ? value : NaN;
  return createVolume({ data, dims, indexToPatient: m }) as Volume<Float32Array>;
}

describe('cone-beam field of view', () => {
  it('finds a capped cylinder about grid axis 0 (patient -z) and keeps the middle 3/4 of its length', () => {
    // Cylinder of radius 10 voxels about (j, k) = (15, 14), along i from 8 to 39 (of 48).
    const v = level([48, 30, 28], (i, j, k) => i >= 8 && i <= 39 && (j - 15) ** 2 + (k - 14) ** 2 <= 100);
    const fov = detectConeBeamFov(v);
    expect(fov?.axis).toBe(0);
    // Axis 0 is patient -z: t = -z; slices i = 8 and 39 are at z = 300 - 16 and 300 - 78.
    expect(fov?.direction).toEqual([0, 0, -1]);
    expect(fov?.extentMm[0]).toBeCloseTo(-284, 6);
    expect(fov?.extentMm[1]).toBeCloseTo(-222, 6);
    expect(fov?.cappedFraction).toBe(1);
    const half = (CONE_KEEP_FRACTION * 62) / 2;
    expect(fov?.keepMm[0]).toBeCloseTo(-253 - half, 6);
    expect(fov?.keepMm[1]).toBeCloseTo(-253 + half, 6);
    if (!fov) return;
    dropConeEnds(v, fov);
    // Slices whose t lies outside the slab lost their data; the middle kept all of it.
    const nx = v.dims[0];
    const count = (i: number) => {
      let c = 0;
      for (let o = i; o < v.data.length; o += nx) if (v.data[o] === v.data[o]) c++;
      return c;
    };
    expect(count(10)).toBe(0); // t = -280
    expect(count(23)).toBeGreaterThan(300); // the middle, t = -254: the disk's area
    expect(count(36)).toBe(0); // t = -228
  });

  it('leaves a CT alone: its reconstruction circle runs through every slice', () => {
    const v = level([48, 30, 28], (i, j, k) => (j - 15) ** 2 + (k - 14) ** 2 <= 100);
    expect(detectConeBeamFov(v)).toBeNull();
  });
});

describe('local normalisation', () => {
  it('removes an offset and a smooth ramp, keeps an edge, and leaves no-data as it is', () => {
    const v = level([40, 40, 40], (i) => i < 36);
    for (let k = 0, o = 0; k < 40; k++)
      for (let j = 0; j < 40; j++)
        for (let i = 0; i < 40; i++, o++) if (i < 36) v.data[o] = 500 + 3 * k + (j >= 20 ? 200 : 0);
    subtractLocalMean(v, 5);
    const at = (i: number, j: number, k: number) => v.data[i + 40 * (j + 40 * k)];
    // Far from the edge, the offset and the (linear) ramp are gone.
    expect(Math.abs(at(15, 8, 20))).toBeLessThan(1e-3);
    // Across the edge at j = 20: negative on the low side, positive on the high side.
    expect(at(15, 19, 20)).toBeLessThan(-50);
    expect(at(15, 20, 20)).toBeGreaterThan(50);
    expect(Number.isNaN(at(37, 8, 20))).toBe(true);
  });

  it('divides out a local contrast: amplitudes 10 and 100 both near one, with the floor of its definition', () => {
    // +-a alternating along j (zero mean, local RMS a): a = 10 for k < 20, 100 beyond; no data at i >= 36.
    const v = level([40, 40, 40], (i) => i < 36);
    for (let k = 0, o = 0; k < 40; k++)
      for (let j = 0; j < 40; j++)
        for (let i = 0; i < 40; i++, o++) if (i < 36) v.data[o] = (k < 20 ? 10 : 100) * (j % 2 ? 1 : -1);
    divideByLocalRms(v, 6);
    const at = (i: number, j: number, k: number) => v.data[i + 40 * (j + 40 * k)];
    const floor = (LOCAL_RMS_FLOOR * (10 ** 2 + 100 ** 2)) / 2; // of the image's mean square
    expect(at(15, 9, 4)).toBeCloseTo(10 / Math.sqrt(10 ** 2 + floor), 3);
    expect(at(15, 8, 35)).toBeCloseTo(-100 / Math.sqrt(100 ** 2 + floor), 3);
    expect(Number.isNaN(at(37, 8, 20))).toBe(true);
  });
});
