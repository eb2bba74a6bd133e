/**
 * components26 against an independent answer: union-find over every pair of set voxels whose indices
 * differ by at most one on each axis (brute force on small random grids), compared as partitions; the
 * order property (breadth-first from the lowest voxel: each voxel after the first touches one listed
 * before it, and lies no deeper in the 26-neighbour graph than the one after it); the mask and the
 * sorted-index forms give the same components.
 */
import { describe, expect, it } from 'vitest';
import type { Dims3 } from './volume.js';
import { components26 } from './components.js';

function rng(seed: number) {
  let s = seed >>> 0;
  return () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
}

const ijk = (v: number, d: Dims3) => [v % d[0], Math.floor(v / d[0]) % d[1], Math.floor(v / (d[0] * d[1]))];
const touch = (a: number, b: number, d: Dims3) => {
  const p = ijk(a, d),
    q = ijk(b, d);
  return a !== b && Math.abs(p[0] - q[0]) <= 1 && Math.abs(p[1] - q[1]) <= 1 && Math.abs(p[2] - q[2]) <= 1;
};

/** Brute-force partition: per set voxel its root's smallest member. */
function unionFind(voxels: number[], d: Dims3): Map<number, number> {
  const parent = new Map(voxels.map((v) => [v, v]));
  const root = (v: number): number => {
    let r = v;
    while (parent.get(r) !== r) r = parent.get(r) as number;
    return r;
  };
  for (let a = 0; a < voxels.length; a++)
    for (let b = a + 1; b < voxels.length; b++)
      if (touch(voxels[a], voxels[b], d)) {
        const ra = root(voxels[a]),
          rb = root(voxels[b]);
        if (ra !== rb) parent.set(Math.max(ra, rb), Math.min(ra, rb));
      }
  return new Map(voxels.map((v) => [v, root(v)]));
}

describe('components26', () => {
  for (const [seed, dims, fill] of [
    [1, [7, 5, 4], 0.3],
    [2, [9, 6, 5], 0.2],
    [3, [4, 11, 3], 0.45],
    [4, [1, 8, 9], 0.5],
  ] as [number, Dims3, number][]) {
    it(`matches union-find on a random ${dims.join(' x ')} mask (fill ${fill})`, () => {
      const r = rng(seed);
      const n = dims[0] * dims[1] * dims[2];
      const mask = Uint8Array.from({ length: n }, () => (r() < fill ? 1 : 0));
      const voxels = [...mask.keys()].filter((v) => mask[v]);
      const uf = unionFind(voxels, dims);
      const cc = components26({ mask }, dims);
      // Same partition: two voxels share a label exactly when union-find gives them one root.
      for (const a of voxels)
        for (const b of voxels) expect(cc.labels[a] === cc.labels[b], `${a} ${b}`).toBe(uf.get(a) === uf.get(b));
      for (let v = 0; v < n; v++) expect(cc.labels[v] > 0).toBe(mask[v] === 1);
      expect(cc.count).toBe(new Set(uf.values()).size);
      // Numbered by first voxel; each listed breadth-first from it.
      const roots = [...new Set(uf.values())].sort((a, b) => a - b);
      expect(cc.order.length).toBe(voxels.length);
      for (let c = 0; c < cc.count; c++) {
        const list = Array.from(cc.order.subarray(cc.starts[c], cc.starts[c] + cc.sizes[c]));
        expect(list[0]).toBe(roots[c]);
        expect(new Set(list).size).toBe(list.length);
        for (const v of list) expect(cc.labels[v]).toBe(c + 1);
        // Graph depth from the first voxel (by its own BFS over the list) never decreases along the list.
        const depth = new Map<number, number>([[list[0], 0]]);
        for (let t = 1; t < list.length; t++) {
          const parents = list.slice(0, t).filter((u) => touch(u, list[t], dims));
          expect(parents.length, `voxel ${list[t]} touches an earlier one`).toBeGreaterThan(0);
          depth.set(list[t], Math.min(...parents.map((u) => depth.get(u) as number)) + 1);
          expect(depth.get(list[t]) as number).toBeGreaterThanOrEqual(depth.get(list[t - 1]) as number);
        }
      }
      // The sorted-index form: positions into the list, the same components.
      const idx = Int32Array.from(voxels);
      const sp = components26({ indices: idx }, dims);
      expect(sp.count).toBe(cc.count);
      for (let p = 0; p < idx.length; p++) expect(sp.labels[p]).toBe(cc.labels[idx[p]]);
      expect(Array.from(sp.order, (p) => idx[p])).toEqual(Array.from(cc.order));
    });
  }

  it('joins across a corner only (26-, not 6-connected) and keeps a gap apart', () => {
    const dims: Dims3 = [3, 3, 3];
    const mask = new Uint8Array(27);
    mask[0] = 1; // (0,0,0)
    mask[13] = 1; // (1,1,1): touches (0,0,0) by a corner
    mask[2] = 1; // (2,0,0): touches (1,1,1) by a corner, not (0,0,0)
    mask[24] = 1; // (0,2,2): touches (1,1,1) by a corner
    const cc = components26({ mask }, dims);
    expect(cc.count).toBe(1);
    const apart = new Uint8Array(27);
    apart[0] = 1;
    apart[2] = 1;
    expect(components26({ mask: apart }, dims).count).toBe(2);
  });
});
