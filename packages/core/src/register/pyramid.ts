/**
 * The multi-resolution pyramid of registration: each level is an isotropic Float32 copy of an image on a
 * grid of the same orientation, NaN where the image has no data (outside a CBCT's field of view, or
 * beyond the grid). Levels are made fine to coarse, each from the previous one smoothed with binomial
 * passes against aliasing (variance (f/2)^2 voxels for a spacing ratio f, as ITK's pyramid), then
 * resampled. NaN spreads through smoothing and interpolation, so a level's field of view shrinks by about
 * its smoothing radius: samples near a field-of-view edge are dropped rather than biased by the fill value.
 */
import { smoothBinomial } from '../volume/morphology.js';
import { gridWithSpacing, resample } from '../volume/resample.js';
import { createVolume, type Volume, type VoxelArray } from '../volume/volume.js';

/**
 * The fill value a scanner writes outside its field of view, or null: the value of all eight corner
 * voxels when they agree exactly and either it is the image's minimum (a truncated cylinder of a CBCT, a
 * CT's reconstruction circle) or at least FILL_PLATEAU of the voxels hold exactly it (a C-arm CT whose
 * streaks and noise reach below its fill: the simulated C-arm CT of the 2 mm phantom has values down to
 * -1300 HU inside a -1024 field of view). A real image whose corners are air of varying values gives null.
 */
export function detectFillValue(volume: Volume): number | null {
  const [nx, ny, nz] = volume.dims;
  const d = volume.data;
  let v: number | null = null;
  for (const k of [0, nz - 1])
    for (const j of [0, ny - 1])
      for (const i of [0, nx - 1]) {
        const x = d[i + nx * (j + ny * k)];
        if (v === null) v = x;
        else if (x !== v) return null;
      }
  if (v === null) return null;
  let below = false,
    equal = 0;
  for (let o = 0; o < d.length; o++) {
    if (d[o] < v) below = true;
    else if (d[o] === v) equal++;
  }
  return !below || equal >= FILL_PLATEAU * d.length ? v : null;
}

/** The share of voxels that must hold a corners' value exactly, when data reach below it, to be a fill. */
export const FILL_PLATEAU = 0.05;

/** A Float32 copy of the volume with NaN where data equals `fill` (no NaN when fill is null). */
export function withNoDataAsNaN(volume: Volume, fill: number | null): Volume<Float32Array> {
  const src = volume.data;
  const out = new Float32Array(src.length);
  for (let o = 0; o < src.length; o++) {
    const v = src[o];
    out[o] = fill !== null && v === fill ? NaN : v;
  }
  return createVolume({ data: out, dims: volume.dims, indexToPatient: volume.indexToPatient, meta: volume.meta });
}

/** Binomial weights of order n (n + 1 taps, variance n / 4), normalized. */
function binomial(n: number): Float64Array {
  const w = new Float64Array(n + 1);
  w[0] = 1;
  for (let k = 1; k <= n; k++) for (let q = k; q > 0; q--) w[q] += w[q - 1];
  const sum = 2 ** n;
  for (let q = 0; q <= n; q++) w[q] /= sum;
  return w;
}

/**
 * Smooth and decimate by integer factors along each axis in one pass per axis: output voxel i' sits on
 * source voxel f i' (so the grid is gridWithSpacing's), filtered with a binomial of variance about
 * (f/2)^2 source voxels (order f^2 rounded to even, so the kernel is centred), edges clamped. Computes
 * only the output samples: the cost is the output's size times the taps, not the source's.
 */
function decimate(src: Volume, f: readonly number[], fill: number | null = null): Volume<Float32Array> {
  // The first pass reads the source as it is (any voxel type; `fill` read as NaN), so a full-size scan
  // is never copied: only the decimated output of each pass is allocated.
  let data: VoxelArray = src.data;
  let noData = fill;
  const dims = [src.dims[0], src.dims[1], src.dims[2]];
  for (let a = 0; a < 3; a++) {
    if (f[a] === 1) continue;
    const order = 2 * Math.round((f[a] * f[a]) / 2);
    const w = binomial(order);
    const half = order / 2;
    const n = dims[a];
    const m = Math.floor((n - 1) / f[a]) + 1;
    const outDims = dims.slice();
    outDims[a] = m;
    const out = new Float32Array(outDims[0] * outDims[1] * outDims[2]);
    const stride = a === 0 ? 1 : a === 1 ? dims[0] : dims[0] * dims[1];
    const outStride = a === 0 ? 1 : a === 1 ? outDims[0] : outDims[0] * outDims[1];
    // Lines along axis a: iterate over the other two axes.
    const [b, c] = a === 0 ? [1, 2] : a === 1 ? [0, 2] : [0, 1];
    const sb = b === 0 ? 1 : b === 1 ? dims[0] : dims[0] * dims[1];
    const sc = c === 0 ? 1 : c === 1 ? dims[0] : dims[0] * dims[1];
    const ob = b === 0 ? 1 : b === 1 ? outDims[0] : outDims[0] * outDims[1];
    const oc = c === 0 ? 1 : c === 1 ? outDims[0] : outDims[0] * outDims[1];
    for (let y = 0; y < dims[c]; y++)
      for (let x = 0; x < dims[b]; x++) {
        const base = x * sb + y * sc;
        const obase = x * ob + y * oc;
        for (let q = 0; q < m; q++) {
          const centre = q * f[a];
          let v = 0;
          if (noData !== null) {
            for (let t = 0; t <= order; t++) {
              let idx = centre + t - half;
              idx = idx < 0 ? 0 : idx > n - 1 ? n - 1 : idx;
              const x = data[base + idx * stride];
              v += x === noData ? NaN : w[t] * x;
            }
          } else if (centre >= half && centre + half <= n - 1) {
            // Interior: no clamping (the common case).
            let o = base + (centre - half) * stride;
            for (let t = 0; t <= order; t++, o += stride) v += w[t] * data[o];
          } else {
            for (let t = 0; t <= order; t++) {
              let idx = centre + t - half;
              idx = idx < 0 ? 0 : idx > n - 1 ? n - 1 : idx;
              v += w[t] * data[base + idx * stride];
            }
          }
          out[obase + q * outStride] = v;
        }
      }
    data = out;
    noData = null;
    dims[a] = m;
  }
  const grid = gridWithSpacing(src, [src.spacing[0] * f[0], src.spacing[1] * f[1], src.spacing[2] * f[2]]);
  // No pass ran only when every factor is 1, which callers never ask: then the source is copied.
  const f32 = data instanceof Float32Array && data !== src.data ? data : withNoDataAsNaN(src, noData).data;
  return createVolume({ data: f32, dims: grid.dims, indexToPatient: grid.indexToPatient, meta: src.meta });
}

/**
 * One level at isotropic spacing s (mm) from `prev` (any voxel type; `fill` = no data): first an integer
 * decimation by floor(s / spacing) per axis (the source read in place), then, when the ratio was not an
 * integer, trilinear resampling onto the isotropic grid (one binomial pass first when the remaining ratio
 * exceeds 1.2).
 */
function toLevel(prev: Volume, fill: number | null, s: number): Volume<Float32Array> {
  const f = prev.spacing.map((x) => s / x);
  const near = (x: number) => Math.abs(x - Math.round(x)) < 1e-6;
  if (f.every((x) => near(x) && Math.round(x) === 1)) {
    return prev.data instanceof Float32Array && fill === null
      ? (prev as Volume<Float32Array>)
      : withNoDataAsNaN(prev, fill);
  }
  const k = f.map((x) => Math.max(1, near(x) ? Math.round(x) : Math.floor(x)));
  let cur: Volume<Float32Array>;
  if (k.some((x) => x >= 2)) {
    cur = decimate(prev, k, fill);
    if (f.every(near)) return cur;
  } else {
    cur = withNoDataAsNaN(prev, fill);
  }
  const r = s / Math.min(...cur.spacing);
  const smoothed = r > 1.2 ? createVolume({ ...cur, data: smoothBinomial(cur.data, cur.dims, 1) }) : cur;
  return resample(smoothed, gridWithSpacing(cur, [s, s, s]), { type: 'float32', outside: NaN }) as Volume<Float32Array>;
}

/**
 * Levels at the given isotropic spacings (mm), returned in the order given; made fine to coarse from
 * `source` (any voxel type), whose voxels equal to `fill` (when not null) have no data. The source is
 * read in place by the first decimation (a full-size CBCT is not copied) unless the finest level is
 * less than twice its spacing on every axis (then one Float32 copy is made).
 */
export function buildPyramid(
  source: Volume,
  spacingsMm: readonly number[],
  fill: number | null = null,
): Volume<Float32Array>[] {
  const order = spacingsMm.map((s, n) => [s, n] as const).sort((a, b) => a[0] - b[0]);
  const out: Volume<Float32Array>[] = new Array<Volume<Float32Array>>(spacingsMm.length);
  let prev: Volume = source;
  let prevFill = fill;
  for (const [s, n] of order) {
    const level = toLevel(prev, prevFill, s);
    out[n] = level;
    prev = level;
    prevFill = null;
  }
  return out;
}
