/**
 * The benchmark's elastix bridge (bench/elastix.ts): an image written as MetaImage, moved by a known
 * motion (core's rigidMotion, Rodrigues), registered by elastix, and its EulerTransform read back as our
 * fixedToMoving must give the motion. The grid is given flipped and permuted axes (as a CT read from
 * NIfTI has), so a wrong direction matrix, axis order or Euler order could not pass. Skips without elastix
 * (bench/setup-elastix.sh installs it).
 */
import { describe, expect, it } from 'vitest';
import {
  createVolume,
  generatePhantom,
  labelPoints,
  mat4MaxAbsDiff,
  mat4Multiply,
  meanPoint,
  meanTre,
  movedCopy,
  PHANTOM_LABELS as L,
  rigidMotion,
  type Volume,
} from '@corridor/core';
import { elastixAvailable, eulerFixedToMoving, runElastix } from './elastix.js';

describe('eulerFixedToMoving', () => {
  it('is a rotation about the centre then a translation, z after x after y', () => {
    const c = [10, -20, 30];
    const deg = Math.PI / 180;
    // A rotation about one axis alone is that axis' Rodrigues rotation about c.
    const ex = eulerFixedToMoving([5 * deg, 0, 0, 1, 2, 3], c);
    expect(mat4MaxAbsDiff(ex, rigidMotion([1, 0, 0], 5, [1, 2, 3], [10, -20, 30]))).toBeLessThan(1e-12);
    const ez = eulerFixedToMoving([0, 0, -7 * deg, 0, 0, 0], c);
    expect(mat4MaxAbsDiff(ez, rigidMotion([0, 0, 1], -7, [0, 0, 0], [10, -20, 30]))).toBeLessThan(1e-12);
    // Composed: Rz Rx Ry (ITK's default order).
    const about = (axis: [number, number, number], d: number) => rigidMotion(axis, d, [0, 0, 0], [10, -20, 30]);
    const want = mat4Multiply(
      new Float64Array(16),
      mat4Multiply(new Float64Array(16), about([0, 0, 1], 3), about([1, 0, 0], 4)),
      about([0, 1, 0], 5),
    );
    expect(mat4MaxAbsDiff(eulerFixedToMoving([4 * deg, 5 * deg, 3 * deg, 0, 0, 0], c), want)).toBeLessThan(1e-12);
  });
});

describe.skipIf(!elastixAvailable())('elastix through MetaImage', () => {
  const phantom = generatePhantom({ voxelMm: 3, seed: 5, noise: false });
  // Same voxels, other geometry: i runs along -y, j along +x, k along -z (det +1), origin moved.
  const g = new Float64Array([0, 3, 0, -150, -3, 0, 0, 200, 0, 0, -3, 120, 0, 0, 0, 1]);
  const relabel = (v: Volume) => createVolume({ data: v.data, dims: v.dims, indexToPatient: g });
  const fixed = relabel(phantom.ct);
  const sacrum = labelPoints(relabel(phantom.labels), [L.cortex, L.cancellous]);
  const c = meanPoint(sacrum);

  it('recovers a known translation', () => {
    const truth = rigidMotion([1, 0, 0], 0, [6, -4, 9], c);
    const r = runElastix(fixed, movedCopy(fixed, truth, 10, 1));
    expect(meanTre(sacrum, truth, r.movingToFixed)).toBeLessThan(0.5);
  });

  it('recovers a known rotation and translation', () => {
    const truth = rigidMotion([0.3, -0.5, 0.8], 6, [-5, 3, 7], c);
    const r = runElastix(fixed, movedCopy(fixed, truth, 10, 2));
    expect(meanTre(sacrum, truth, r.movingToFixed)).toBeLessThan(0.5);
  });
});
