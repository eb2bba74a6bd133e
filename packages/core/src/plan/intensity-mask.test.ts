/**
 * boneMaskFromIntensity on synthetic demineralized bone whose truth is known by construction: a thin
 * cortical shell around marrow as dense as the muscle outside it, a gap in the cortex, a fat-filled canal
 * with a cortical wall, and a box whose marrow opens without a wall into a fat channel (a sacral foramen).
 */
import { describe, expect, it } from 'vitest';
import { createVolume, type Volume } from '../volume/volume.js';
import { boneMaskFromIntensity } from './corridor-map.js';

const MUSCLE = 40,
  MARROW = 40,
  FAT = -90,
  CORTEX = 500;
const N = 64;

interface Phantom {
  ct: Volume<Int16Array>;
  /** 1 where the construction put bone (cortex or marrow). */
  truth: Uint8Array;
}

/**
 * Box A (x 8-28): shell 1 voxel thick, a 2 x 2 voxel gap in its x = 8 face. Through it runs a canal
 * along z (centre x 18, y 40, radius 3.5 mm, fat), with a 1-voxel cortical wall, open at both ends.
 * Box B (x 36-56): shell with a 9 x 9 voxel opening in its y = 50 face, continued by a fat channel to the
 * volume's border (no wall between the marrow and the fat).
 */
function makePhantom(): Phantom {
  const data = new Int16Array(N * N * N).fill(MUSCLE);
  const truth = new Uint8Array(N * N * N);
  const at = (i: number, j: number, k: number) => i + N * (j + N * k);
  const box = (x0: number, x1: number, y0: number, y1: number, z0: number, z1: number) => {
    for (let k = z0; k <= z1; k++)
      for (let j = y0; j <= y1; j++)
        for (let i = x0; i <= x1; i++) {
          const shell = i === x0 || i === x1 || j === y0 || j === y1 || k === z0 || k === z1;
          data[at(i, j, k)] = shell ? CORTEX : MARROW;
          truth[at(i, j, k)] = 1;
        }
  };
  box(8, 28, 12, 50, 12, 50);
  box(36, 56, 12, 50, 12, 50);
  // Gap in box A's x = 8 face: marrow density where the cortex should be.
  for (let k = 30; k < 32; k++) for (let j = 30; j < 32; j++) data[at(8, j, k)] = MARROW;
  // Canal through box A along z: fat inside radius 3.5, cortex in the ring 3.5-4.5 (inside the box).
  for (let k = 0; k < N; k++)
    for (let j = 0; j < N; j++)
      for (let i = 0; i < N; i++) {
        const r = Math.hypot(i - 18, j - 40);
        if (r < 3.5) {
          data[at(i, j, k)] = FAT;
          truth[at(i, j, k)] = 0;
        } else if (r < 4.5 && k >= 12 && k <= 50) {
          data[at(i, j, k)] = CORTEX;
          truth[at(i, j, k)] = 1;
        }
      }
  // Box B: opening in the y = 50 face, and a fat channel from there to the border (y = 63).
  for (let k = 27; k < 36; k++)
    for (let i = 42; i < 51; i++) {
      data[at(i, 50, k)] = MARROW;
      for (let j = 51; j < N; j++) data[at(i, j, k)] = FAT;
    }
  const ct = createVolume({
    data,
    dims: [N, N, N],
    indexToPatient: Float64Array.from([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]),
    meta: { source: 'synthetic' },
  });
  return { ct, truth };
}

/** Agreement of a mask with the truth inside a region given by a predicate on indices. */
function agreement(mask: Uint8Array, truth: Uint8Array, keep: (i: number, j: number, k: number) => boolean) {
  let same = 0,
    total = 0;
  for (let k = 0; k < N; k++)
    for (let j = 0; j < N; j++)
      for (let i = 0; i < N; i++) {
        if (!keep(i, j, k)) continue;
        const o = i + N * (j + N * k);
        total++;
        if (mask[o] === truth[o]) same++;
      }
  return same / total;
}

/** Box A without the gap's own voxels (a notch in the cortex, which a closing leaves open on the outside). */
const inA = (i: number, j: number, k: number) =>
  i >= 8 && i <= 28 && j >= 12 && j <= 50 && k >= 12 && k <= 50 && !(i === 8 && j >= 30 && j < 32 && k >= 30 && k < 32);
const inB = (i: number, j: number, k: number) => i >= 36 && i <= 56 && j >= 12 && j <= 50 && k >= 12 && k <= 50;
const at = (i: number, j: number, k: number) => i + N * (j + N * k);

describe('boneMaskFromIntensity', () => {
  const { ct, truth } = makePhantom();
  const before = ct.data.slice();

  it('a plain threshold keeps only the cortex; the mask fills marrow behind a sealed gap, not the canal', () => {
    let plainMarrow = 0,
      marrow = 0;
    for (let o = 0; o < truth.length; o++) {
      if (!truth[o] || ct.data[o] !== MARROW) continue;
      marrow++;
      if (ct.data[o] >= 200) plainMarrow++;
    }
    expect(marrow).toBeGreaterThan(10000);
    expect(plainMarrow).toBe(0);
    const mask = boneMaskFromIntensity(ct);
    expect(ct.data).toEqual(before);
    expect(agreement(mask, truth, inA)).toBe(1);
    // The marrow right behind the gap, and the canal's fat, and the muscle around the boxes.
    expect(mask[at(9, 30, 30)]).toBe(1);
    expect(mask[at(18, 40, 31)]).toBe(0);
    expect(mask[at(18, 40, 5)]).toBe(0);
    expect(mask[at(3, 31, 31)]).toBe(0);
    expect(mask[at(32, 31, 31)]).toBe(0);
  });

  it('marrow opening into a fat channel: the 3D fill leaks, the coronal slice fill seals it, the fat stays out', () => {
    const leaky = boneMaskFromIntensity(ct);
    // Without slice filling box B's marrow is reached from outside through the fat channel.
    expect(leaky[at(46, 30, 31)]).toBe(0);
    expect(agreement(leaky, truth, inB)).toBeLessThan(0.5);
    const sealed = boneMaskFromIntensity(ct, { slicePlaneNormals: ['y'] });
    expect(agreement(sealed, truth, inB)).toBe(1);
    // The fat channel (outside the box) is not bone; box A and the canal are as before.
    for (let j = 51; j < N; j++) expect(sealed[at(46, j, 31)]).toBe(0);
    expect(agreement(sealed, truth, inA)).toBe(1);
    expect(sealed[at(18, 40, 31)]).toBe(0);
  });

  it('rejects options that are not numbers', () => {
    expect(() => boneMaskFromIntensity(ct, { sealMm: -1 })).toThrow(/sealMm/);
    expect(() => boneMaskFromIntensity(ct, { cortexHu: Number.NaN })).toThrow(/finite/);
  });
});
