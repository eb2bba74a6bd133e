/**
 * 26-connected components of a set of voxels on a grid: the one labeller of the cement segmentation
 * (cement.ts), the foramina (verify/foramina.ts) and the metal detector (verify/metal.ts).
 *
 * The set is a mask on the grid (any array, non-zero = in; positions are voxel indices) or a sorted
 * list of voxel indices (positions are indices into that list; neighbours found by binary search, so a
 * sparse set such as the metal of a 0.8 mm scan needs no grid-sized array). Components are numbered
 * 1, 2, ... in the order of their first (lowest) position; each one's positions are listed breadth-first
 * from that position, neighbours visited k, then j, then i ascending (the order cement.ts's region
 * growing relies on: the first component to reach a voxel takes it).
 */
import type { Dims3 } from './volume.js';

export interface Components26 {
  /** Per position: its component (1 .. count), 0 when not in the set. */
  labels: Int32Array;
  count: number;
  /** Per component c (id c + 1): its size ... */
  sizes: Int32Array;
  /** ... and where its positions start in `order`: order[starts[c] .. starts[c] + sizes[c]). */
  starts: Int32Array;
  /** Every position in the set, component by component, each breadth-first from its first position. */
  order: Int32Array;
}

export type VoxelSet = { mask: ArrayLike<number> } | { indices: Int32Array };

/** The 26-connected components of `set` on a grid of `dims`; see the module comment. */
export function components26(set: VoxelSet, dims: Dims3): Components26 {
  const [nx, ny, nz] = dims;
  const nxy = nx * ny;
  const sparse = 'indices' in set;
  const idx = sparse ? set.indices : new Int32Array(0);
  const mask = sparse ? new Uint8Array(0) : set.mask;
  const n = sparse ? idx.length : mask.length;
  const find = (v: number): number => {
    if (!sparse) return mask[v] ? v : -1;
    let lo = 0,
      hi = idx.length - 1;
    while (lo <= hi) {
      const m = (lo + hi) >> 1;
      const x = idx[m];
      if (x === v) return m;
      if (x < v) lo = m + 1;
      else hi = m - 1;
    }
    return -1;
  };
  const labels = new Int32Array(n);
  const order = new Int32Array(sparse ? n : countSet(mask));
  const sizes: number[] = [];
  const starts: number[] = [];
  let tail = 0;
  for (let s = 0; s < n; s++) {
    if (labels[s] || (!sparse && !mask[s])) continue;
    const id = sizes.length + 1;
    const start = tail;
    let head = tail;
    order[tail++] = s;
    labels[s] = id;
    while (head < tail) {
      const p = order[head++];
      const v = sparse ? idx[p] : p;
      const k = Math.floor(v / nxy),
        j = Math.floor((v - k * nxy) / nx),
        i = v - k * nxy - j * nx;
      for (let dk = -1; dk <= 1; dk++) {
        const kk = k + dk;
        if (kk < 0 || kk >= nz) continue;
        for (let dj = -1; dj <= 1; dj++) {
          const jj = j + dj;
          if (jj < 0 || jj >= ny) continue;
          for (let di = -1; di <= 1; di++) {
            const ii = i + di;
            if (ii < 0 || ii >= nx || (di === 0 && dj === 0 && dk === 0)) continue;
            const q = find(ii + nx * jj + nxy * kk);
            if (q >= 0 && !labels[q]) {
              labels[q] = id;
              order[tail++] = q;
            }
          }
        }
      }
    }
    sizes.push(tail - start);
    starts.push(start);
  }
  return { labels, count: sizes.length, sizes: Int32Array.from(sizes), starts: Int32Array.from(starts), order };
}

function countSet(mask: ArrayLike<number>): number {
  let c = 0;
  for (let v = 0; v < mask.length; v++) if (mask[v]) c++;
  return c;
}
