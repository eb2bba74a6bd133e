import { describe, expect, it } from 'vitest';
import { distanceTransform, signedDistanceTransform, squaredDistanceTransform, clearanceMap } from './edt.js';
import { createVolume, indexToPatientFrom, type Dims3 } from './volume.js';
import { UsageError } from '../errors.js';
import { uniformSource as rng } from '../math/random.js';

/** The definition itself: every foreground voxel against every background voxel. */
function bruteForce(mask: Uint8Array, dims: Dims3, sp: number[]): Float64Array {
  const [nx, ny, nz] = dims;
  const bg: number[][] = [];
  for (let k = 0; k < nz; k++)
    for (let j = 0; j < ny; j++)
      for (let i = 0; i < nx; i++) {
        if (mask[i + nx * (j + ny * k)] === 0) bg.push([i * sp[0], j * sp[1], k * sp[2]]);
      }
  const out = new Float64Array(mask.length);
  for (let k = 0; k < nz; k++)
    for (let j = 0; j < ny; j++)
      for (let i = 0; i < nx; i++) {
        const o = i + nx * (j + ny * k);
        if (mask[o] === 0) continue;
        let best = Infinity;
        for (const b of bg) best = Math.min(best, Math.hypot(i * sp[0] - b[0], j * sp[1] - b[1], k * sp[2] - b[2]));
        out[o] = best;
      }
  return out;
}

describe('distanceTransform (exact EDT)', () => {
  it('matches the brute-force definition on random masks with anisotropic spacing', () => {
    const r = rng(7);
    let cases = 0;
    for (let t = 0; t < 60; t++) {
      const dims: Dims3 = [1 + Math.floor(r() * 13), 1 + Math.floor(r() * 11), 1 + Math.floor(r() * 9)];
      const sp = [0.3 + r() * 2, 0.3 + r() * 2, 0.3 + r() * 3];
      // Densities from sparse background (large distances, long envelopes) to mostly background.
      const pBg = [0.01, 0.05, 0.2, 0.6][t % 4];
      const mask = new Uint8Array(dims[0] * dims[1] * dims[2]);
      for (let i = 0; i < mask.length; i++) mask[i] = r() < pBg ? 0 : 1 + Math.floor(r() * 3);
      if (!mask.includes(0)) mask[Math.floor(r() * mask.length)] = 0;
      const got = distanceTransform(mask, dims, sp);
      const want = bruteForce(mask, dims, sp);
      for (let i = 0; i < mask.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThan(1e-9);
      cases++;
    }
    expect(cases).toBe(60);
  });

  it('gives the analytic distance to a single background voxel (corner to corner)', () => {
    const dims: Dims3 = [5, 4, 3];
    const mask = new Uint8Array(60).fill(1);
    mask[0] = 0;
    const d = distanceTransform(mask, dims, [0.5, 1.25, 2]);
    // Far corner (4,3,2): sqrt((4*0.5)^2 + (3*1.25)^2 + (2*2)^2) = sqrt(4 + 14.0625 + 16).
    expect(d[59]).toBeCloseTo(Math.sqrt(34.0625), 12);
    expect(d[0]).toBe(0);
  });

  it('returns Infinity everywhere when there is no background, and 0 when all is background', () => {
    const dims: Dims3 = [3, 3, 3];
    expect([...distanceTransform(new Uint8Array(27).fill(1), dims, [1, 1, 1])].every((x) => x === Infinity)).toBe(true);
    expect([...distanceTransform(new Uint8Array(27), dims, [1, 1, 1])].every((x) => x === 0)).toBe(true);
  });

  it('squared and float32 variants agree with the float64 distances', () => {
    const r = rng(3);
    const dims: Dims3 = [9, 8, 7];
    const mask = new Uint8Array(9 * 8 * 7);
    for (let i = 0; i < mask.length; i++) mask[i] = r() < 0.1 ? 0 : 1;
    const sp = [0.7, 0.9, 1.6];
    const want = bruteForce(mask, dims, sp);
    const sq = squaredDistanceTransform(mask, dims, sp);
    const f32 = distanceTransform(mask, dims, sp, { output: 'float32' });
    expect(f32).toBeInstanceOf(Float32Array);
    for (let i = 0; i < mask.length; i++) {
      expect(Math.abs(sq[i] - want[i] * want[i])).toBeLessThan(1e-9);
      expect(Math.abs(f32[i] - want[i])).toBeLessThan(1e-5 * Math.max(1, want[i]));
    }
  });

  it('signed variant: + distance to background inside, - distance to foreground outside', () => {
    const r = rng(11);
    const dims: Dims3 = [8, 6, 5];
    const sp = [1.1, 0.6, 2.2];
    const mask = new Uint8Array(240);
    for (let i = 0; i < mask.length; i++) mask[i] = r() < 0.5 ? 0 : 1;
    const inv = mask.map((m) => (m ? 0 : 1));
    const pos = bruteForce(mask, dims, sp);
    const neg = bruteForce(inv, dims, sp);
    const s = signedDistanceTransform(mask, dims, sp);
    for (let i = 0; i < mask.length; i++) {
      expect(s[i]).toBeCloseTo(mask[i] ? pos[i] : -neg[i], 9);
    }
  });

  it('clearanceMap: distance to the nearest forbidden voxel of a label volume', () => {
    const dims: Dims3 = [7, 1, 1];
    const data = new Uint8Array([9, 1, 1, 1, 1, 1, 3]);
    const vol = createVolume({ data, dims, indexToPatient: indexToPatientFrom([10, 20, 30], [0.5, 1, 1]) });
    const c = clearanceMap(vol, (v) => v === 9 || v === 3);
    // Voxel i lies 0.5*i mm from the forbidden voxel 0 and 0.5*(6-i) mm from voxel 6.
    expect([...c]).toEqual([0, 0.5, 1, 1.5, 1, 0.5, 0]);
  });

  it('rejects a mask whose size does not match the dimensions, and bad spacing', () => {
    expect(() => distanceTransform(new Uint8Array(5), [2, 2, 2], [1, 1, 1])).toThrow(UsageError);
    expect(() => distanceTransform(new Uint8Array(8), [2, 2, 2], [1, 0, 1])).toThrow(/spacing/);
  });

  it('can be cancelled through the progress callback', () => {
    expect(() => distanceTransform(new Uint8Array(8), [2, 2, 2], [1, 1, 1], { onProgress: () => false })).toThrow(
      /cancelled/,
    );
  });
});
