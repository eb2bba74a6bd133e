/**
 * fitIntensityMap is equivariant to a linear grey transform of the baseline (an uncalibrated C-arm): a
 * synthetic pair (the scan a smooth field from -200 to 1500 HU with a steel rod; the baseline 1.05 x the
 * scan + 30 with noise and the rod bloomed to twice its width) fitted as it is and as 0.8 x + 120 must give
 * the same map at the transformed values and the same thresholds. Truth: the transform itself.
 */
import { describe, expect, it } from 'vitest';
import { evalMap, fitIntensityMap, UNKNOWN_HU } from './modality.js';

const N = 40;
const dims: [number, number, number] = [N, N, N];
const spacing: [number, number, number] = [1, 1, 1];
const scan = new Float32Array(N ** 3);
const baseline = new Float32Array(N ** 3);
let seed = 12345;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
for (let k = 0, q = 0; k < N; k++)
  for (let j = 0; j < N; j++)
    for (let i = 0; i < N; i++, q++) {
      const r = Math.hypot(i - 20, j - 20);
      const field = 650 + 850 * Math.sin(i / 6) * Math.cos(j / 7 + k / 9);
      scan[q] = r < 1.5 ? 3000 : field + 10 * rand();
      baseline[q] = r < 3 ? 3500 : 1.05 * field + 30 + 40 * rand();
    }
const box = { origin: [0, 0, 0], dims: [N, N, N] };

describe('fitIntensityMap under a linear grey transform of the baseline', () => {
  it('gives the same map at a x + b, the same bloom threshold and the same fit voxels', () => {
    const a = fitIntensityMap(baseline, scan, dims, spacing, box);
    const grey = Float32Array.from(baseline, (v) => 0.8 * v + 120);
    const b = fitIntensityMap(grey, scan, dims, spacing, box);
    expect(a.voxels).toBeGreaterThan(10000);
    expect(b.voxels).toBe(a.voxels);
    expect(b.metalVoxels).toEqual(a.metalVoxels);
    expect(b.linear.scale).toBeCloseTo(a.linear.scale / 0.8, 3);
    expect(Math.abs(b.unknownFrom - (0.8 * a.unknownFrom + 120))).toBeLessThan(0.5);
    // The bloom threshold lies in the scan's units: the baseline's 1800 HU is its UNKNOWN_HU after the map.
    expect(Math.abs(evalMap(a, a.unknownFrom) - UNKNOWN_HU)).toBeLessThan(150);
    for (let x = -300; x <= 2500; x += 50)
      expect(Math.abs(evalMap(b, 0.8 * x + 120) - evalMap(a, x)), `at ${x}`).toBeLessThan(1);
  });
});
