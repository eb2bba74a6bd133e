import { describe, expect, it } from 'vitest';
import { carmPreset } from '../carm/geometry.js';
import { cbctScan } from './scan.js';
import { backprojectionSetup, cbctGrid, fdkBackprojectKernel } from './fdk.js';
import { createFdkSimdMemory, fdkSimdAvailable, fdkSimdContext } from './fdkWasm.js';
import { defined } from '../test-helpers/defined.js';

describe('FDK WebAssembly backprojection', () => {
  it('adds what the JavaScript loop adds, flags the same voxels and touches nothing outside its slab', () => {
    expect(fdkSimdAvailable()).toBe(true);
    const scan = cbctScan(carmPreset('artis-zee-floor'), {
      isocenter: [12, -30, 7],
      views: 24,
      detector: { size: 64 },
    });
    // 39 voxels a row (not a multiple of 4: the last group of each row is moved back), a grid wider than
    // the field of view so that row ranges start and end anywhere, and tall enough that the cone cuts it.
    const grid = cbctGrid(scan, { voxelMm: 9, fovMm: 39 * 9, heightMm: 30 * 9 });
    grid.dims = [39, 37, 30];
    const setup = backprojectionSetup(scan, grid);
    const [nx, ny, nz] = setup.dims;
    const n = nx * ny * nz;
    const sm = defined(createFdkSimdMemory(24 * scan.columns * scan.rows, n, false), 'the SIMD memory');
    for (let i = 0; i < sm.q.length; i++) sm.q[i] = Math.sin(i * 0.37) + ((i * 7919) % 101) / 101;
    const ref = new Float32Array(n),
      flagsRef = new Uint8Array(n),
      flags = new Uint8Array(n);
    // Slices 1..8 of 30 (the lower ones reach beyond the cone), all views; the others hold a sentinel.
    sm.out.fill(-7);
    ref.fill(-7);
    const [k0, k1] = [1, 9];
    for (let o = k0 * nx * ny; o < k1 * nx * ny; o++) sm.out[o] = ref[o] = 0;
    const run = (out: Float32Array, f: Uint8Array, simd: ReturnType<typeof fdkSimdContext> | null) =>
      fdkBackprojectKernel(
        sm.q,
        setup.matrices,
        setup.rowRanges,
        nx,
        ny,
        scan.columns,
        scan.rows,
        out,
        f,
        k0,
        k1,
        0,
        24,
        simd,
      );
    run(ref, flagsRef, null);
    run(sm.out, flags, fdkSimdContext(sm));
    let seen = 0,
      unseen = 0,
      maxDiff = 0,
      maxRef = 0;
    for (let o = 0; o < n; o++) {
      const k = Math.floor(o / (nx * ny));
      if (k < k0 || k >= k1) {
        expect(sm.out[o]).toBe(-7);
        continue;
      }
      expect(flags[o]).toBe(flagsRef[o]);
      const j = Math.floor(o / nx) % ny,
        i = o % nx;
      const inRange = i >= setup.rowRanges[2 * (k * ny + j)] && i <= setup.rowRanges[2 * (k * ny + j) + 1];
      if (inRange) {
        // The flag is the voxel's own projections: some view puts it behind the source or off the detector
        // (the kernels skip rows that the cone's ends cut off; this checks every voxel).
        let missed = false;
        for (let v = 0; v < 24; v++) {
          const M = setup.matrices.subarray(12 * v, 12 * v + 12);
          const w = M[8] * i + M[9] * j + M[10] * k + M[11];
          const c = (M[0] * i + M[1] * j + M[2] * k + M[3]) / w,
            r = (M[4] * i + M[5] * j + M[6] * k + M[7]) / w;
          if (!(w > 0 && c >= 0 && c < scan.columns - 1 && r >= 0 && r < scan.rows - 1)) missed = true;
        }
        expect(flagsRef[o]).toBe(missed ? 1 : 0);
      }
      if (!inRange) {
        expect(sm.out[o]).toBe(0); // outside the FOV cylinder: not touched
      } else if (flagsRef[o]) unseen++;
      else {
        seen++;
        maxDiff = Math.max(maxDiff, Math.abs(sm.out[o] - ref[o]));
        maxRef = Math.max(maxRef, Math.abs(ref[o]));
      }
    }
    // Both kinds of voxels occur. Float32 positions (c, r to about 1e-5 pixel) on this deliberately rough
    // projection (neighbouring pixels differ by about 1) put the sums within 1e-4 of the float64 loop's.
    console.log(
      `SIMD backprojection: ${seen} voxels seen, ${unseen} unseen; largest difference ${maxDiff.toExponential(2)} (values up to ${maxRef.toExponential(2)})`,
    );
    expect(seen).toBeGreaterThan(1000);
    expect(unseen).toBeGreaterThan(100);
    expect(maxDiff).toBeLessThan(1e-4 * maxRef);
  });
});
