/**
 * Exact Euclidean distance transform (EDT) on a voxel grid with anisotropic spacing.
 *
 * Definition (the same as SciPy's `ndimage.distance_transform_edt(mask, sampling=spacing)`): for every
 * foreground voxel (mask value != 0) the distance in mm from its centre to the centre of the nearest
 * background voxel (mask value == 0); 0 for background voxels. Distances are measured on the voxel grid
 * axes scaled by `spacing` (the grid's own frame: an oblique or flipped indexToPatient does not change
 * distances between voxel centres). When the mask holds no background voxel at all every distance is
 * `Infinity` (there is nothing to be near; SciPy returns an undefined value there).
 *
 * Algorithm: Felzenszwalb & Huttenlocher, "Distance Transforms of Sampled Functions" (Theory of
 * Computing 8, 2012): the squared distance is separable, so one pass per axis computes the lower
 * envelope of parabolas of the previous pass's squared distances. Linear time in the voxel count, exact
 * (no chamfer or vector propagation errors), all arithmetic in float64 so that results agree with SciPy
 * (which computes the same distances from a feature transform) to round-off.
 */
import { UsageError } from '../errors.js';
import { voxelCount, type Dims3, type Volume } from './volume.js';

export interface EdtOptions {
  /** Return squared distances (mm^2) instead of distances: saves the square roots where a caller compares. */
  squared?: boolean;
  /** Output array type; float64 (default) keeps the full precision, float32 halves the memory. */
  output?: 'float64' | 'float32';
  /** Called with the fraction done (0..1) after each pass; returning false cancels with a UsageError. */
  onProgress?: (fraction: number) => boolean | void;
}

/** A mask: any array whose non-zero entries are foreground. i fastest, then j, then k. */
export type MaskArray = ArrayLike<number>;

function checkArgs(mask: MaskArray, dims: Dims3, spacing: ArrayLike<number>, source: string): number {
  const n = voxelCount(dims, source);
  if (mask.length !== n)
    throw new UsageError(`mask holds ${mask.length} values, dimensions ${dims.join(' x ')} need ${n}`, source);
  if (spacing.length !== 3) throw new UsageError('spacing needs three values', source);
  for (let a = 0; a < 3; a++) {
    if (!(spacing[a] > 0) || !Number.isFinite(spacing[a]))
      throw new UsageError(`spacing must be positive and finite, got ${spacing[a]}`, source);
  }
  return n;
}

/**
 * One axis of Felzenszwalb-Huttenlocher on `len` samples of f (squared mm, Infinity allowed) at
 * data[base + q*stride], replaced in place by min_q (f[q] + (w*(p-q))^2). Scratch: v (Int32, len),
 * z (Float64, len+1), f (Float64, len).
 *
 * A sample of 0 is a background voxel and stays 0; it also hides everything beyond it (a sample past
 * it is farther away and no smaller), so each run of non-zero samples is solved on its own, together
 * with the zero on either side. On a bone mask most of the volume is background and is never touched.
 */
function envelope1d(
  data: Float64Array,
  base: number,
  stride: number,
  len: number,
  w2: number,
  v: Int32Array,
  z: Float64Array,
  f: Float64Array,
): void {
  let q = 0;
  while (q < len) {
    if (data[base + q * stride] === 0) {
      q++;
      continue;
    }
    let end = q;
    while (end + 1 < len && data[base + (end + 1) * stride] !== 0) end++;
    const lo = q > 0 ? q - 1 : q;
    const hi = end + 1 < len ? end + 1 : end;
    envelopeSegment(data, base, stride, lo, hi, w2, v, z, f);
    q = end + 1;
  }
}

function envelopeSegment(
  data: Float64Array,
  base: number,
  stride: number,
  lo: number,
  hi: number,
  w2: number,
  v: Int32Array,
  z: Float64Array,
  f: Float64Array,
): void {
  let k = -1;
  for (let q = lo; q <= hi; q++) {
    const fq = data[base + q * stride];
    f[q] = fq;
    if (fq === Infinity) continue;
    if (k < 0) {
      k = 0;
      v[0] = q;
      z[0] = -Infinity;
      z[1] = Infinity;
      continue;
    }
    // Intersection (index units) of parabola q with the rightmost envelope parabola v[k]; z[0] = -Inf stops it.
    let s: number;
    for (;;) {
      const r = v[k];
      s = (fq - f[r] + w2 * (q * q - r * r)) / (2 * w2 * (q - r));
      if (s <= z[k]) k--;
      else break;
    }
    k++;
    v[k] = q;
    z[k] = s;
    z[k + 1] = Infinity;
  }
  if (k < 0) return; // no finite sample: the segment stays Infinity
  let j = 0;
  for (let q = lo; q <= hi; q++) {
    while (z[j + 1] < q) j++;
    const d = q - v[j];
    data[base + q * stride] = f[v[j]] + w2 * d * d;
  }
}

/** The three passes; `root` takes square roots while the last pass writes its results. */
function edtCore(
  mask: MaskArray,
  dims: Dims3,
  spacing: ArrayLike<number>,
  root: boolean,
  source: string,
  onProgress: EdtOptions['onProgress'],
): Float64Array {
  const n = checkArgs(mask, dims, spacing, source);
  const [nx, ny, nz] = dims;
  const sx2 = spacing[0] * spacing[0],
    sy2 = spacing[1] * spacing[1],
    sz2 = spacing[2] * spacing[2];
  const out = new Float64Array(n);
  const progress = (fr: number) => {
    if (onProgress && onProgress(fr) === false) throw new UsageError('cancelled', source);
  };
  const maxLen = Math.max(nx, ny, nz);
  const v = new Int32Array(maxLen);
  const z = new Float64Array(maxLen + 1);
  const f = new Float64Array(maxLen);
  const sliceSize = nx * ny;

  // Passes along i and j slice by slice, while the slice is in cache. The i pass writes the slice
  // transposed (j contiguous) so that the j pass reads contiguous lines.
  const rowLeft = new Int32Array(nx);
  const block = new Float64Array(nx * Math.max(ny, nz));
  for (let k = 0; k < nz; k++) {
    const plane = sliceSize * k;
    for (let j = 0; j < ny; j++) {
      // Along i: nearest background in the row by two sweeps (integer voxel counts, exact).
      const base = plane + nx * j;
      let last = -2 * nx;
      for (let i = 0; i < nx; i++) {
        if (mask[base + i] === 0) last = i;
        rowLeft[i] = i - last;
      }
      last = 3 * nx;
      for (let i = nx - 1; i >= 0; i--) {
        if (mask[base + i] === 0) last = i;
        const l = rowLeft[i];
        const d = l < last - i ? l : last - i;
        block[i * ny + j] = d >= nx ? Infinity : d * d * sx2;
      }
    }
    if (ny > 1) for (let i = 0; i < nx; i++) envelope1d(block, i * ny, 1, ny, sy2, v, z, f);
    const rootHere = root && nz === 1;
    for (let j = 0; j < ny; j++) {
      const row = plane + nx * j;
      if (rootHere) for (let i = 0; i < nx; i++) out[row + i] = Math.sqrt(block[i * ny + j]);
      else for (let i = 0; i < nx; i++) out[row + i] = block[i * ny + j];
    }
    if ((k & 31) === 31) progress((0.5 * (k + 1)) / nz);
  }
  progress(0.5);

  if (nz > 1) {
    // Along k: gather a j-plane with k contiguous so the strided reads walk whole rows of memory.
    for (let j = 0; j < ny; j++) {
      for (let k = 0; k < nz; k++) {
        const row = sliceSize * k + nx * j;
        for (let i = 0; i < nx; i++) block[i * nz + k] = out[row + i];
      }
      for (let i = 0; i < nx; i++) envelope1d(block, i * nz, 1, nz, sz2, v, z, f);
      for (let k = 0; k < nz; k++) {
        const row = sliceSize * k + nx * j;
        if (root) for (let i = 0; i < nx; i++) out[row + i] = Math.sqrt(block[i * nz + k]);
        else for (let i = 0; i < nx; i++) out[row + i] = block[i * nz + k];
      }
      if ((j & 31) === 31) progress(0.5 + (0.5 * (j + 1)) / ny);
    }
  }
  progress(1);
  return out;
}

/**
 * Squared EDT (mm^2) in a Float64Array: for callers that only compare against a squared radius.
 */
export function squaredDistanceTransform(
  mask: MaskArray,
  dims: Dims3,
  spacing: ArrayLike<number>,
  options: Pick<EdtOptions, 'onProgress'> & { source?: string } = {},
): Float64Array {
  return edtCore(mask, dims, spacing, false, options.source ?? 'distance transform', options.onProgress);
}

/**
 * Distance (mm) from each foreground voxel's centre to the nearest background voxel's centre; 0 on
 * background. See the module comment for the exact definition.
 */
export function distanceTransform(
  mask: MaskArray,
  dims: Dims3,
  spacing: ArrayLike<number>,
  options: EdtOptions & { source?: string } = {},
): Float64Array | Float32Array {
  const d = edtCore(mask, dims, spacing, !options.squared, options.source ?? 'distance transform', options.onProgress);
  return options.output === 'float32' ? Float32Array.from(d) : d;
}

/**
 * Clearance map: distance (mm) from every voxel's centre to the centre of the nearest *forbidden* voxel,
 * 0 on forbidden voxels. `forbidden(value)` decides per voxel of `volume` (e.g. not bone, or a critical
 * label). The result is on the same grid as `volume` (i fastest).
 */
export function clearanceMap(
  volume: Volume,
  forbidden: (value: number) => boolean,
  options: Pick<EdtOptions, 'onProgress'> = {},
): Float64Array {
  const d = volume.data;
  const allowed = new Uint8Array(d.length);
  for (let i = 0; i < d.length; i++) allowed[i] = forbidden(d[i]) ? 0 : 1;
  return edtCore(allowed, volume.dims, volume.spacing, true, volume.meta.source ?? 'clearance map', options.onProgress);
}

/**
 * Signed distance (mm) to the boundary between foreground and background: positive inside the
 * foreground (distance to the nearest background centre), negative inside the background (minus the
 * distance to the nearest foreground centre). Neither side is ever 0 unless one side is empty.
 */
export function signedDistanceTransform(
  mask: MaskArray,
  dims: Dims3,
  spacing: ArrayLike<number>,
  options: Pick<EdtOptions, 'onProgress'> & { source?: string } = {},
): Float64Array {
  const n = checkArgs(mask, dims, spacing, options.source ?? 'distance transform');
  const inside = squaredDistanceTransform(mask, dims, spacing, options);
  const inverted = new Uint8Array(n);
  for (let i = 0; i < n; i++) inverted[i] = mask[i] === 0 ? 1 : 0;
  const outside = squaredDistanceTransform(inverted, dims, spacing, options);
  for (let i = 0; i < n; i++) inside[i] = mask[i] !== 0 ? Math.sqrt(inside[i]) : -Math.sqrt(outside[i]);
  return inside;
}
