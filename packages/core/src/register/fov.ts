/**
 * A cone-beam CT's field of view, from the image alone: the part of the data (non-NaN voxels of a
 * registration level) that the scanner reconstructs reliably. A C-arm CT's data region is a cylinder about
 * the rotation axis with conical ends; towards those ends FDK's cone-beam approximation degrades with the
 * cone angle (and the patient continues beyond the rows the detector saw), so the end slabs carry shading
 * and streaks that are not anatomy. On the real 3 mm CT against its simulated C-arm CT (no scatter), the fit
 * with the whole field of view ended 0.86 mm off; leaving out the outer 20 mm of its +-94 mm along the axis
 * gave 0.20 mm, while 20 mm off the radius alone gave 0.80 mm (the rim is not the cause).
 */
import type { Volume } from '../volume/volume.js';

/** The data region's axis and the slab along it kept for registration (patient mm along `direction`). */
export interface ConeBeamFieldOfView {
  /** Grid axis (0, 1, 2) of the level along which the data region is a cylinder. */
  axis: 0 | 1 | 2;
  /** Unit vector of that axis in patient coordinates (LPS). */
  direction: [number, number, number];
  /** The data's extent along the axis: min and max of direction . x over data voxel centres, mm. */
  extentMm: [number, number];
  /** Share of the data's lines along the axis whose data ends inside the grid (a cone end or a cap). */
  cappedFraction: number;
  /** The slab kept: direction . x within [keep[0], keep[1]] mm. */
  keepMm: [number, number];
}

/**
 * The share of the half length about the centre that is kept: voxels whose cone angle is at most 3/4 of
 * the scan's largest (the cone angle grows in proportion to the distance from the central plane).
 */
export const CONE_KEEP_FRACTION = 0.75;
/** A data region counts as a cone-beam field of view when at least this share of its lines ends inside the grid. */
export const MIN_CAPPED_FRACTION = 0.2;

/**
 * The cone-beam field of view of a level (NaN = no data), or null when its data region does not end inside
 * the grid along its axis (a CT, whose reconstruction circle runs through every slice, or an image without
 * a fill value). The axis is the grid axis whose cross-sections keep the same area along it (a cylinder's;
 * across a cylinder the area follows the chord).
 */
export function detectConeBeamFov(level: Volume<Float32Array>): ConeBeamFieldOfView | null {
  const [nx, ny, nz] = level.dims;
  const d = level.data;
  const n = [nx, ny, nz];
  const area = [new Float64Array(nx), new Float64Array(ny), new Float64Array(nz)];
  let any = 0;
  for (let k = 0, o = 0; k < nz; k++)
    for (let j = 0; j < ny; j++)
      for (let i = 0; i < nx; i++, o++) {
        if (d[o] !== d[o]) continue;
        area[0][i]++;
        area[1][j]++;
        area[2][k]++;
        any++;
      }
  if (!any) return null;
  // Flatness: the share of an axis's slices with data whose area is within 10% of its largest.
  let axis: 0 | 1 | 2 = 2,
    best = -1;
  for (const a of [0, 1, 2] as const) {
    let max = 0,
      withData = 0,
      flat = 0;
    for (const x of area[a]) if (x > max) max = x;
    for (const x of area[a]) {
      if (x > 0) withData++;
      if (x >= 0.9 * max) flat++;
    }
    const f = flat / withData;
    if (f > best + 1e-9) {
      best = f;
      axis = a;
    }
  }
  // Lines along the axis: how many hold data, and how many of those end inside the grid.
  const stride = axis === 0 ? 1 : axis === 1 ? nx : nx * ny;
  const [b, c] = axis === 0 ? [1, 2] : axis === 1 ? [0, 2] : [0, 1];
  const sb = b === 0 ? 1 : b === 1 ? nx : nx * ny;
  const sc = c === 0 ? 1 : c === 1 ? nx : nx * ny;
  const len = n[axis];
  let lines = 0,
    capped = 0;
  for (let y = 0; y < n[c]; y++)
    for (let x = 0; x < n[b]; x++) {
      const base = x * sb + y * sc;
      let first = -1,
        last = -1;
      for (let q = 0, o = base; q < len; q++, o += stride) {
        if (d[o] === d[o]) {
          if (first < 0) first = q;
          last = q;
        }
      }
      if (first < 0) continue;
      lines++;
      if (first > 0 || last < len - 1) capped++;
    }
  const cappedFraction = lines ? capped / lines : 0;
  if (cappedFraction < MIN_CAPPED_FRACTION) return null;
  const m = level.indexToPatient;
  const col = [m[axis], m[4 + axis], m[8 + axis]];
  const s = Math.hypot(col[0], col[1], col[2]);
  const direction: [number, number, number] = [col[0] / s, col[1] / s, col[2] / s];
  // Extent along the axis in mm: the slices with data (the position along the axis of slice q is
  // offset + q * s along `direction`, the same for every voxel of the slice).
  const offset = direction[0] * m[3] + direction[1] * m[7] + direction[2] * m[11];
  let qMin = -1,
    qMax = -1;
  for (let q = 0; q < len; q++)
    if (area[axis][q] > 0) {
      if (qMin < 0) qMin = q;
      qMax = q;
    }
  const t0 = offset + qMin * s,
    t1 = offset + qMax * s;
  const lo = Math.min(t0, t1),
    hi = Math.max(t0, t1);
  const mid = (lo + hi) / 2,
    half = (CONE_KEEP_FRACTION * (hi - lo)) / 2;
  return { axis, direction, extentMm: [lo, hi], cappedFraction, keepMm: [mid - half, mid + half] };
}

/** Sets to NaN (in place) the voxels of `level` outside the field of view's kept slab. */
export function dropConeEnds(level: Volume<Float32Array>, fov: ConeBeamFieldOfView): void {
  const [nx, ny, nz] = level.dims;
  const m = level.indexToPatient;
  const u = fov.direction;
  // t(i, j, k) = u . (M [i j k 1]) is linear in the indices.
  const ti = u[0] * m[0] + u[1] * m[4] + u[2] * m[8];
  const tj = u[0] * m[1] + u[1] * m[5] + u[2] * m[9];
  const tk = u[0] * m[2] + u[1] * m[6] + u[2] * m[10];
  const t0 = u[0] * m[3] + u[1] * m[7] + u[2] * m[11];
  const [lo, hi] = fov.keepMm;
  const d = level.data;
  for (let k = 0, o = 0; k < nz; k++)
    for (let j = 0; j < ny; j++) {
      const row = t0 + tj * j + tk * k;
      for (let i = 0; i < nx; i++, o++) {
        const t = row + ti * i;
        if (t < lo || t > hi) d[o] = NaN;
      }
    }
}

/** Scratch of boxPass: one line of prefix sums, one plane of running sums, a copy of one block. */
interface BoxScratch {
  line: Float64Array;
  acc: Float64Array;
  copy: Float32Array;
}

/**
 * One pass of a centred box of 2r + 1 voxels along axis a, clipped at the ends (in place on `v`). Along
 * i, prefix sums of each line; along j and k, running sums over whole rows or planes at once, so the
 * inner loop reads memory in order.
 */
function boxPass(v: Float32Array, dims: readonly number[], a: number, r: number, t: BoxScratch): void {
  const [nx, ny, nz] = dims;
  if (a === 0) {
    const tmp = t.line;
    for (let base = 0; base < v.length; base += nx) {
      // Prefix sums of the line, then each voxel the sum over its window (clipped at the ends).
      let run = 0;
      tmp[0] = 0;
      for (let q = 0; q < nx; q++) tmp[q + 1] = run += v[base + q];
      const mid = nx - r - 1;
      for (let q = 0; q < nx; q++) {
        const lo = q - r < 0 ? 0 : q - r,
          hi = q < mid ? q + r + 1 : nx;
        v[base + q] = tmp[hi] - tmp[lo];
      }
    }
    return;
  }
  // Blocks of n planes of S voxels each: (j, i) within one k for a = 1, the whole image for a = 2.
  const n = a === 1 ? ny : nz;
  const S = a === 1 ? nx : nx * ny;
  const blocks = a === 1 ? nz : 1;
  const acc = t.acc.subarray(0, S);
  const copy = t.copy;
  for (let blk = 0; blk < blocks; blk++) {
    const base = blk * n * S;
    copy.set(v.subarray(base, base + n * S));
    acc.fill(0);
    for (let q = 0; q <= r && q < n; q++) {
      const o = q * S;
      for (let s = 0; s < S; s++) acc[s] += copy[o + s];
    }
    for (let q = 0; q < n; q++) {
      // Write the window's sum, then move it on by one plane (in one loop where both ends move).
      const out = base + q * S;
      const add = q + r + 1 < n ? (q + r + 1) * S : -1;
      const sub = q - r >= 0 ? (q - r) * S : -1;
      if (add >= 0 && sub >= 0) {
        for (let s = 0; s < S; s++) {
          const x = acc[s];
          v[out + s] = x;
          acc[s] = x + copy[add + s] - copy[sub + s];
        }
      } else {
        for (let s = 0; s < S; s++) v[out + s] = acc[s];
        if (add >= 0) for (let s = 0; s < S; s++) acc[s] += copy[add + s];
        if (sub >= 0) for (let s = 0; s < S; s++) acc[s] -= copy[sub + s];
      }
    }
  }
}

/** Three boxes of 2r + 1 voxels have variance r (r + 1): r from sigma in voxels (at least 1). */
function boxRadius(sigmaMm: number, spacingMm: number): number {
  const s = sigmaMm / spacingMm;
  return Math.max(1, Math.round((-1 + Math.sqrt(1 + 4 * s * s)) / 2));
}

/** Normalized convolution of `sum` and `wt` (in place): three box passes per axis of about sigma mm. */
function smoothWeighted(
  level: Volume<Float32Array>,
  sum: Float32Array,
  wt: Float32Array | null,
  sigmaMm: number,
): void {
  const dims = level.dims;
  const [nx, ny, nz] = dims;
  const tmp: BoxScratch = {
    line: new Float64Array(nx + 1),
    acc: new Float64Array(nx * ny),
    copy: new Float32Array(nx * ny * nz),
  };
  for (let a = 0; a < 3; a++) {
    // Three boxes of 2r + 1 voxels have variance r (r + 1): r from sigma in voxels.
    const r = boxRadius(sigmaMm, level.spacing[a]);
    for (let p = 0; p < 3; p++) {
      boxPass(sum, dims, a, r, tmp);
      if (wt) boxPass(wt, dims, a, r, tmp);
    }
  }
}

/**
 * Local normalisation of a level (in place): each data voxel less the mean of the data about it (three box
 * passes per axis, about a Gaussian of sigma `sigmaMm`, over the data only: normalized convolution, so the
 * field of view's edge adds nothing). What remains is the structure; smooth shading (a C-arm CT's cupping
 * from scatter and truncation, a Hounsfield offset) is gone. With `stdSigmaMm` > 0 the result is then
 * divided by its local root mean square over that sigma (plus 5% of its mean square over the image, so
 * that flat regions stay flat): a local contrast that varies smoothly (scatter lowers the bone's contrast
 * most where the patient is thickest) no longer counts either. `meanOnly`, when given (the level's
 * length), receives the level less its local mean, before the contrast is divided out.
 */
export function subtractLocalMean(
  level: Volume<Float32Array>,
  sigmaMm: number,
  stdSigmaMm = 0,
  meanOnly?: Float32Array,
): void {
  const d = level.data;
  const sum = new Float32Array(d.length);
  const wt = new Float32Array(d.length);
  for (let o = 0; o < d.length; o++) {
    const x = d[o];
    if (x === x) {
      sum[o] = x;
      wt[o] = 1;
    }
  }
  smoothWeighted(level, sum, wt, sigmaMm);
  for (let o = 0; o < d.length; o++) {
    const x = d[o];
    if (x === x) d[o] = x - sum[o] / wt[o];
  }
  meanOnly?.set(d);
  if (!(stdSigmaMm > 0)) return;
  // The same boxes on every axis give the same smoothed weights: keep them.
  const sameBoxes = [0, 1, 2].every(
    (a) => boxRadius(sigmaMm, level.spacing[a]) === boxRadius(stdSigmaMm, level.spacing[a]),
  );
  divideLocalRms(level, stdSigmaMm, sum, wt, sameBoxes);
}

/**
 * A level that is already less its local mean (in place) divided by its local root mean square over
 * `sigmaMm` (plus LOCAL_RMS_FLOOR of its mean square over the image), as subtractLocalMean's contrast
 * step: the C-arm CT cross-check's images, a local contrast at another scale than the fit's.
 */
export function divideByLocalRms(level: Volume<Float32Array>, sigmaMm: number): void {
  const n = level.data.length;
  divideLocalRms(level, sigmaMm, new Float32Array(n), new Float32Array(n), false);
}

function divideLocalRms(
  level: Volume<Float32Array>,
  stdSigmaMm: number,
  sum: Float32Array,
  wt: Float32Array,
  keepWeights: boolean,
): void {
  const d = level.data;
  let total = 0,
    count = 0;
  for (let o = 0; o < d.length; o++) {
    const x = d[o];
    if (x === x) {
      sum[o] = x * x;
      if (!keepWeights) wt[o] = 1;
      total += x * x;
      count++;
    } else {
      sum[o] = 0;
      if (!keepWeights) wt[o] = 0;
    }
  }
  smoothWeighted(level, sum, keepWeights ? null : wt, stdSigmaMm);
  const floor = (LOCAL_RMS_FLOOR * total) / Math.max(1, count);
  for (let o = 0; o < d.length; o++) {
    const x = d[o];
    if (x === x) d[o] = x / Math.sqrt(sum[o] / wt[o] + floor);
  }
}

/** subtractLocalMean's floor on the local mean square, as a share of the image's. */
export const LOCAL_RMS_FLOOR = 0.05;
