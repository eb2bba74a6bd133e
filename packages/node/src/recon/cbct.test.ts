import { describe, expect, it } from 'vitest';
import { simulateCbct } from '@corridor/core';
import { simulateCbctParallel } from './cbct.js';
import { smallCt } from '../test-helpers/small-ct.js';

const fast = { views: 60, detector: { binning: 16 }, voxelMm: 3, photonsPerPixel: 5000, seed: 4 };

describe('parallel C-arm CT', () => {
  it('gives the same volume as core single-threaded run (same views, same order of sums)', async () => {
    const { ct } = smallCt();
    const a = simulateCbct(ct, fast);
    const b = await simulateCbctParallel(ct, { ...fast, threads: 2 });
    expect(b.reconstruction.volume.dims).toEqual(a.reconstruction.volume.dims);
    let maxDiff = 0;
    const va = a.reconstruction.volume.data,
      vb = b.reconstruction.volume.data;
    for (let i = 0; i < va.length; i++) maxDiff = Math.max(maxDiff, Math.abs(va[i] - vb[i]));
    // The DRR pool renders exactly the single-threaded image, and each voxel adds its views in order.
    expect(maxDiff).toBeLessThan(1e-3);
    expect(Array.from(b.reconstruction.mask)).toEqual(Array.from(a.reconstruction.mask));
  });
});
