/**
 * Sampling a Volume at patient points. Index = voxel centre (docs/conventions.md): a point exactly at a
 * voxel centre returns that voxel's value in both modes. Points outside the grid (beyond the outermost
 * voxel centres for trilinear, beyond half a voxel for nearest) return `outside`.
 */
import type { Volume } from './volume.js';

/** Tolerance, in voxels, for a point on the outermost voxel centres to count as inside. */
const EDGE_EPS = 1e-6;

/** Continuous voxel index of a patient point, written into out. */
export function patientToIndexContinuous(out: number[] | Float64Array, volume: Volume, p: ArrayLike<number>) {
  const m = volume.patientToIndex;
  const x = p[0], y = p[1], z = p[2];
  out[0] = m[0] * x + m[1] * y + m[2] * z + m[3];
  out[1] = m[4] * x + m[5] * y + m[6] * z + m[7];
  out[2] = m[8] * x + m[9] * y + m[10] * z + m[11];
  return out;
}

/** Nearest voxel index of a patient point, or null outside the grid. */
export function patientToIndexRounded(volume: Volume, p: ArrayLike<number>): [number, number, number] | null {
  const c = patientToIndexContinuous([0, 0, 0], volume, p);
  const i = Math.round(c[0]), j = Math.round(c[1]), k = Math.round(c[2]);
  const [nx, ny, nz] = volume.dims;
  if (i < 0 || j < 0 || k < 0 || i >= nx || j >= ny || k >= nz) return null;
  return [i, j, k];
}

/** Value at a continuous index with trilinear interpolation; `outside` beyond the voxel centres. */
export function sampleIndexTrilinear(volume: Volume, fi: number, fj: number, fk: number, outside = 0): number {
  const [nx, ny, nz] = volume.dims;
  // Round-off from composing affines puts an edge voxel centre at -1e-13: accept EDGE_EPS and clamp.
  if (!(fi >= -EDGE_EPS && fj >= -EDGE_EPS && fk >= -EDGE_EPS && fi <= nx - 1 + EDGE_EPS && fj <= ny - 1 + EDGE_EPS && fk <= nz - 1 + EDGE_EPS)) {
    return outside;
  }
  fi = fi < 0 ? 0 : fi > nx - 1 ? nx - 1 : fi;
  fj = fj < 0 ? 0 : fj > ny - 1 ? ny - 1 : fj;
  fk = fk < 0 ? 0 : fk > nz - 1 ? nz - 1 : fk;
  let i0 = Math.floor(fi), j0 = Math.floor(fj), k0 = Math.floor(fk);
  // On the far face, step back one cell so the weight of the missing neighbour is zero.
  if (i0 === nx - 1 && nx > 1) i0--;
  if (j0 === ny - 1 && ny > 1) j0--;
  if (k0 === nz - 1 && nz > 1) k0--;
  const ti = fi - i0, tj = fj - j0, tk = fk - k0;
  const sx = nx > 1 ? 1 : 0, sy = ny > 1 ? nx : 0, sz = nz > 1 ? nx * ny : 0;
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
  const i = Math.round(fi), j = Math.round(fj), k = Math.round(fk);
  const [nx, ny, nz] = volume.dims;
  if (!(i >= 0 && j >= 0 && k >= 0 && i < nx && j < ny && k < nz)) return outside;
  return volume.data[i + nx * (j + ny * k)];
}

const scratch = [0, 0, 0];

export function sampleTrilinear(volume: Volume, p: ArrayLike<number>, outside = 0): number {
  const c = patientToIndexContinuous(scratch, volume, p);
  return sampleIndexTrilinear(volume, c[0], c[1], c[2], outside);
}

export function sampleNearest(volume: Volume, p: ArrayLike<number>, outside = 0): number {
  const c = patientToIndexContinuous(scratch, volume, p);
  return sampleIndexNearest(volume, c[0], c[1], c[2], outside);
}
