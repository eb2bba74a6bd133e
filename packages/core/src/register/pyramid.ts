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
