/**
 * Sampling a Volume at patient points. Index = voxel centre (docs/conventions.md): a point exactly at a
 * voxel centre returns that voxel's value in both modes. Points outside the grid (beyond the outermost
 * voxel centres for trilinear, beyond half a voxel for nearest) return `outside`. Nothing here
 * allocates except patientToIndexRounded's result. Use these (or resample) rather than a loop of one's
 * own, so every module agrees on where a volume ends.
 *
 * Along each axis of n voxels, a continuous index f is inside when
 * - trilinear: -EDGE_EPS <= f <= n - 1 + EDGE_EPS (then clamped to [0, n - 1]);
 * - nearest:   -0.5 <= f < n - 0.5 (Math.round: a tie goes up, so -0.5 is voxel 0, n - 0.5 is outside).
 * NaN is outside in both. sample.test.ts pins each bound.
 */
import type { Volume } from './volume.js';

/**
 * How far, in voxels, a continuous index may lie beyond the outermost voxel centres and still be
 * sampled by trilinear interpolation (it is then clamped onto them). Composing affines puts an edge
 * centre at about -1e-13 instead of 0; 1e-6 voxel (under a nanometre at CT spacings) absorbs that
 * while a point a thousandth of a voxel out stays outside.
 */
export const EDGE_EPS = 1e-6;

/** Continuous voxel index of a patient point, written into out (out may be p itself). */
export function patientToIndexContinuous(out: number[] | Float64Array, volume: Volume, p: ArrayLike<number>) {
  const m = volume.patientToIndex;
  const x = p[0],
    y = p[1],
    z = p[2];
  out[0] = m[0] * x + m[1] * y + m[2] * z + m[3];
  out[1] = m[4] * x + m[5] * y + m[6] * z + m[7];
  out[2] = m[8] * x + m[9] * y + m[10] * z + m[11];
  return out;
}

/** Nearest voxel index of a patient point, or null outside the grid (same bounds as sampleIndexNearest). */
export function patientToIndexRounded(volume: Volume, p: ArrayLike<number>): [number, number, number] | null {
  const c = patientToIndexContinuous([0, 0, 0], volume, p);
  const i = Math.round(c[0]),
    j = Math.round(c[1]),
    k = Math.round(c[2]);
  const [nx, ny, nz] = volume.dims;
  // "not inside" rather than "outside": a NaN point (NaN index) must give null, not [NaN, NaN, NaN].
  if (!(i >= 0 && j >= 0 && k >= 0 && i < nx && j < ny && k < nz)) return null;
  return [i + 0, j + 0, k + 0]; // + 0: Math.round(-0.4) is -0
}

/** Value at a continuous index with trilinear interpolation; `outside` beyond the voxel centres. */
export function sampleIndexTrilinear(volume: Volume, fi: number, fj: number, fk: number, outside = 0): number {
  const [nx, ny, nz] = volume.dims;
  // Round-off from composing affines puts an edge voxel centre at -1e-13: accept EDGE_EPS and clamp.
  const inside =
    fi >= -EDGE_EPS &&
    fj >= -EDGE_EPS &&
    fk >= -EDGE_EPS &&
    fi <= nx - 1 + EDGE_EPS &&
    fj <= ny - 1 + EDGE_EPS &&
    fk <= nz - 1 + EDGE_EPS;
  if (!inside) return outside; // written as "not inside" so that NaN is outside too
  fi = fi < 0 ? 0 : fi > nx - 1 ? nx - 1 : fi;
  fj = fj < 0 ? 0 : fj > ny - 1 ? ny - 1 : fj;
  fk = fk < 0 ? 0 : fk > nz - 1 ? nz - 1 : fk;
  let i0 = Math.floor(fi),
    j0 = Math.floor(fj),
    k0 = Math.floor(fk);
  // On the far face, step back one cell so the weight of the missing neighbour is zero.
  if (i0 === nx - 1 && nx > 1) i0--;
  if (j0 === ny - 1 && ny > 1) j0--;
  if (k0 === nz - 1 && nz > 1) k0--;
  const ti = fi - i0,
    tj = fj - j0,
    tk = fk - k0;
  const sx = nx > 1 ? 1 : 0,
    sy = ny > 1 ? nx : 0,
    sz = nz > 1 ? nx * ny : 0;
  const d = volume.data;
  const b = i0 + nx * (j0 + ny * k0);
  const c00 = d[b] + (d[b + sx] - d[b]) * ti;
  const c10 = d[b + sy] + (d[b + sy + sx] - d[b + sy]) * ti;
  const c01 = d[b + sz] + (d[b + sz + sx] - d[b + sz]) * ti;
  const c11 = d[b + sz + sy] + (d[b + sz + sy + sx] - d[b + sz + sy]) * ti;
  const c0 = c00 + (c10 - c00) * tj;
  const c1 = c01 + (c11 - c01) * tj;
  return c0 + (c1 - c0) * tk;
}

/** Value at a continuous index, nearest voxel; `outside` more than half a voxel beyond the grid. */
export function sampleIndexNearest(volume: Volume, fi: number, fj: number, fk: number, outside = 0): number {
  const i = Math.round(fi),
    j = Math.round(fj),
    k = Math.round(fk);
  const [nx, ny, nz] = volume.dims;
  if (!(i >= 0 && j >= 0 && k >= 0 && i < nx && j < ny && k < nz)) return outside;
  return volume.data[i + nx * (j + ny * k)];
}

const scratch = [0, 0, 0];

/** Trilinear value at an LPS point (mm); `outside` beyond the outermost voxel centres (+ EDGE_EPS). */
export function sampleTrilinear(volume: Volume, p: ArrayLike<number>, outside = 0): number {
  const c = patientToIndexContinuous(scratch, volume, p);
  return sampleIndexTrilinear(volume, c[0], c[1], c[2], outside);
}

/** Value of the voxel containing an LPS point (mm); `outside` more than half a voxel beyond the grid. */
export function sampleNearest(volume: Volume, p: ArrayLike<number>, outside = 0): number {
  const c = patientToIndexContinuous(scratch, volume, p);
  return sampleIndexNearest(volume, c[0], c[1], c[2], outside);
}
