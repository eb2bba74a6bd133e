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
import { createVolume, type Volume } from '../volume/volume.js';

/**
 * The fill value a scanner writes outside its field of view, or null: the value of all eight corner
 * voxels when they agree exactly and it is the image's minimum (a truncated cylinder of a CBCT, a CT's
 * reconstruction circle). A real image whose corners are air of varying values gives null.
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
  for (let o = 0; o < d.length; o++) if (d[o] < v) return null;
  return v;
}

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
function decimate(src: Volume<Float32Array>, f: readonly number[], s: number): Volume<Float32Array> {
  let data: Float32Array = src.data;
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
          if (centre >= half && centre + half <= n - 1) {
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
    dims[a] = m;
  }
  const grid = gridWithSpacing(src, [s, s, s]);
  return createVolume({ data, dims: grid.dims, indexToPatient: grid.indexToPatient, meta: src.meta });
}

/** Levels at the given isotropic spacings (mm), returned in the order given; made fine to coarse. */
export function buildPyramid(base: Volume<Float32Array>, spacingsMm: readonly number[]): Volume<Float32Array>[] {
  const order = spacingsMm.map((s, n) => [s, n] as const).sort((a, b) => a[0] - b[0]);
  const out: Volume<Float32Array>[] = new Array<Volume<Float32Array>>(spacingsMm.length);
  let prev: Volume<Float32Array> = base;
  for (const [s, n] of order) {
    const f = s / Math.min(...prev.spacing);
    const passes = f > 1.2 ? Math.max(1, Math.round((f * f) / 2)) : 0;
    const grid = gridWithSpacing(prev, [s, s, s]);
    if (passes === 0 && prev.spacing.every((x) => Math.abs(x - s) < 1e-9 * s)) {
      // Already isotropic at this spacing: the level is the image itself (gridWithSpacing keeps the grid).
      out[n] = prev;
      continue;
    }
    const factors = prev.spacing.map((x) => s / x);
    if (factors.every((x) => Math.abs(x - Math.round(x)) < 1e-6 && Math.round(x) >= 1)) {
      out[n] = prev = decimate(
        prev,
        factors.map((x) => Math.round(x)),
        s,
      );
      continue;
    }
    const smoothed = passes > 0 ? createVolume({ ...prev, data: smoothBinomial(prev.data, prev.dims, passes) }) : prev;
    const level = resample(smoothed, grid, {
      type: 'float32',
      outside: NaN,
    }) as Volume<Float32Array>;
    out[n] = level;
    prev = level;
  }
  return out;
}
