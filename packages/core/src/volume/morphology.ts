/**
 * Binary mask morphology on voxel grids: floods from the grid's border, slice-wise hole filling and a
 * binomial smoothing, on typed arrays with no per-voxel allocation. Masks are Uint8Array in the
 * Volume's voxel order (i fastest, then j, then k); dims are [nx, ny, nz]. Distances (closing by a
 * radius in mm) come from the exact distance transform in edt.ts, used by the callers.
 */

/** Scratch buffers a caller may pass to flood many masks of one size without allocating each time. */
export interface FloodScratch {
  /** Length >= the padded grid: (nx + 2) * (ny + 2) * (nz + 2), or (nx + 2) * (ny + 2) when planar. */
  state?: Uint8Array;
  /** Length >= nx * ny * nz. */
  stack?: Int32Array;
}

/**
 * Marks the voxels that can be reached from the grid's border through passable voxels (passable[v] != 0),
 * 6-connected, or 4-connected within the one slice when `planar` (then nz must be 1). Returns `out`
 * (allocated when not given) holding 1 where reached, 0 elsewhere.
 *
 * The flood runs on a copy padded with one blocked voxel on every side, so that the inner loop needs
 * neither bounds checks nor index arithmetic: a neighbour is q +- a stride.
 */
export function floodFromBorder(
  passable: ArrayLike<number>,
  dims: readonly number[],
  planar = false,
  out?: Uint8Array,
  scratch: FloodScratch = {},
): Uint8Array {
  const [nx, ny, nz] = dims;
  const px = nx + 2,
    py = ny + 2,
    pxy = px * py;
  const pz = planar ? 1 : nz + 2;
  const size = pxy * pz;
  const state = scratch.state && scratch.state.length >= size ? scratch.state : new Uint8Array(size);
  const stack = scratch.stack && scratch.stack.length >= nx * ny * nz ? scratch.stack : new Int32Array(nx * ny * nz);
  // 0: passable, not reached yet; 1: blocked (or padding); 2: reached.
  state.fill(1, 0, size);
  const k0 = planar ? 0 : 1;
  let top = 0;
  for (let k = 0, o = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      const edgeRow = j === 0 || j === ny - 1 || (!planar && (k === 0 || k === nz - 1));
      let q = 1 + px * (j + 1) + pxy * (k + k0);
      for (let i = 0; i < nx; i++, o++, q++) {
        if (!passable[o]) continue;
        if (edgeRow || i === 0 || i === nx - 1) {
          state[q] = 2;
          stack[top++] = q;
        } else state[q] = 0;
      }
    }
  }
  // Planar: the k stride points into padding rows of the same slice, which are blocked (never 0).
  const sk = planar ? px : pxy;
  while (top > 0) {
    const q = stack[--top];
    if (state[q - 1] === 0) {
      state[q - 1] = 2;
      stack[top++] = q - 1;
    }
    if (state[q + 1] === 0) {
      state[q + 1] = 2;
      stack[top++] = q + 1;
    }
    if (state[q - px] === 0) {
      state[q - px] = 2;
      stack[top++] = q - px;
    }
    if (state[q + px] === 0) {
      state[q + px] = 2;
      stack[top++] = q + px;
    }
    if (state[q - sk] === 0) {
      state[q - sk] = 2;
      stack[top++] = q - sk;
    }
    if (state[q + sk] === 0) {
      state[q + sk] = 2;
      stack[top++] = q + sk;
    }
  }
  const reached = out ?? new Uint8Array(nx * ny * nz);
  for (let k = 0, o = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      let q = 1 + px * (j + 1) + pxy * (k + k0);
      for (let i = 0; i < nx; i++, o++, q++) reached[o] = state[q] === 2 ? 1 : 0;
    }
  }
  return reached;
}

/**
 * Sets out[v] = 1 for voxels that are not solid and that, within their slice perpendicular to index axis
 * `axis`, cannot reach the slice's border through non-solid voxels (4-connected): the slice's holes.
 * Each slice is copied out, flooded with floodFromBorder (planar) and its holes written back.
 */
export function fillSliceHoles(solid: Uint8Array, dims: readonly number[], axis: 0 | 1 | 2, out: Uint8Array): void {
  const strides = [1, dims[0], dims[0] * dims[1]];
  const [ua, va] = axis === 0 ? [1, 2] : axis === 1 ? [0, 2] : [0, 1];
  const nu = dims[ua],
    nv = dims[va],
    su = strides[ua],
    sv = strides[va];
  const open = new Uint8Array(nu * nv);
  const reached = new Uint8Array(nu * nv);
  const scratch: FloodScratch = { state: new Uint8Array((nu + 2) * (nv + 2)), stack: new Int32Array(nu * nv) };
  const sliceDims = [nu, nv, 1];
  for (let w = 0; w < dims[axis]; w++) {
    const base = w * strides[axis];
    for (let v = 0, s = 0; v < nv; v++) {
      for (let u = 0, o = base + v * sv; u < nu; u++, o += su, s++) open[s] = solid[o] ? 0 : 1;
    }
    floodFromBorder(open, sliceDims, true, reached, scratch);
    for (let v = 0, s = 0; v < nv; v++) {
      for (let u = 0, o = base + v * sv; u < nu; u++, o += su, s++) if (open[s] && !reached[s]) out[o] = 1;
    }
  }
}

/** Binomial [1 2 1]/4 smoothing along each axis, `passes` times, edges clamped. Returns a new array. */
export function smoothBinomial(data: ArrayLike<number>, dims: readonly number[], passes: number): Float32Array {
  const [nx, ny, nz] = dims;
  const n = nx * ny * nz;
  let a = Float32Array.from(data);
  if (passes <= 0) return a;
  let b = new Float32Array(n);
  const sxy = nx * ny;
  for (let p = 0; p < passes; p++) {
    for (let axis = 0; axis < 3; axis++) {
      const st = axis === 0 ? 1 : axis === 1 ? nx : sxy,
        len = dims[axis];
      if (len < 2) continue;
      // Lines along `axis`: start offsets o0, then len samples st apart.
      const lines = n / len;
      for (let l = 0; l < lines; l++) {
        const o0 = axis === 0 ? l * nx : axis === 1 ? (l % nx) + Math.floor(l / nx) * sxy : l;
        let prev = a[o0],
          cur = prev;
        for (let c = 0, o = o0; c < len; c++, o += st) {
          const next = c < len - 1 ? a[o + st] : cur;
          b[o] = 0.25 * (prev + next) + 0.5 * cur;
          prev = cur;
          cur = next;
        }
      }
      const t = a;
      a = b;
      b = t;
    }
  }
  return a;
}

/** Bounding box (voxel indices, inclusive) of voxels for which `keep` is true, grown by margin voxels. */
export function maskBoundingBox(
  data: ArrayLike<number>,
  dims: readonly number[],
  keep: (v: number) => boolean,
  marginVox: readonly number[],
) {
  const [nx, ny, nz] = dims;
  const min = [nx, ny, nz],
    max = [-1, -1, -1];
  for (let k = 0, o = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++, o++) {
        if (!keep(data[o])) continue;
        if (i < min[0]) min[0] = i;
        if (i > max[0]) max[0] = i;
        if (j < min[1]) min[1] = j;
        if (j > max[1]) max[1] = j;
        if (k < min[2]) min[2] = k;
        if (k > max[2]) max[2] = k;
      }
    }
  }
  if (max[0] < 0) return null;
  for (let a = 0; a < 3; a++) {
    min[a] = Math.max(0, min[a] - marginVox[a]);
    max[a] = Math.min(dims[a] - 1, max[a] + marginVox[a]);
  }
  return { min, max };
}
