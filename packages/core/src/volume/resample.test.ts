/**
 * Resampling and cropping checked on every voxel. The source holds an exact linear function of LPS
 * position, f(p) = a . p + b, on an oblique (rotated about a tilted axis), anisotropic, left-handed grid
 * far from the origin. Trilinear interpolation reproduces an affine function exactly, so every target
 * voxel inside the source must hold f of its own centre (float64 round-off only, ~1e-13 relative), and
 * every voxel outside must hold the outside value. Which voxels are inside is decided here from the
 * geometry (dot products with the unit directions), not by the code under test.
 */
import { describe, expect, it } from 'vitest';
import { mat4Det3, mat4MaxAbsDiff } from '../math/mat4.js';
import { crop, gridWithSpacing, resample, resampleToSpacing } from './resample.js';
import { createVolume, indexToPatientFrom, type Dims3 } from './volume.js';

type V3 = [number, number, number];

/** Columns of the rotation by `angle` about `axis` (Rodrigues), as three unit vectors. */
function rotationColumns(axis: V3, angle: number): [V3, V3, V3] {
  const n = Math.hypot(...axis);
  const [x, y, z] = axis.map((v) => v / n);
  const c = Math.cos(angle),
    s = Math.sin(angle),
    t = 1 - c;
  return [
    [t * x * x + c, t * x * y + s * z, t * x * z - s * y],
    [t * x * y - s * z, t * y * y + c, t * y * z + s * x],
    [t * x * z + s * y, t * y * z - s * x, t * z * z + c],
  ];
}

/** A grid described by its parts, with positions and indices computed from them (not from matrices). */
function grid(origin: V3, spacing: V3, dirs: [V3, V3, V3], dims: Dims3) {
  const indexToPatient = indexToPatientFrom(origin, spacing, dirs);
  const position = (i: number, j: number, k: number): V3 => {
    const idx = [i, j, k];
    return [0, 1, 2].map((r) => origin[r] + idx.reduce((sum, f, a) => sum + f * spacing[a] * dirs[a][r], 0)) as V3;
  };
  /** Continuous index of p: the directions are orthonormal, so index_a = dirs[a] . (p - origin) / spacing[a]. */
  const index = (p: V3): V3 =>
    [0, 1, 2].map((a) => dirs[a].reduce((sum, d, r) => sum + d * (p[r] - origin[r]), 0) / spacing[a]) as V3;
  const det =
    spacing[0] *
    spacing[1] *
    spacing[2] *
    Math.sign(
      dirs[0][0] * (dirs[1][1] * dirs[2][2] - dirs[2][1] * dirs[1][2]) -
        dirs[1][0] * (dirs[0][1] * dirs[2][2] - dirs[2][1] * dirs[0][2]) +
        dirs[2][0] * (dirs[0][1] * dirs[1][2] - dirs[1][1] * dirs[0][2]),
    );
  return { origin, spacing, dirs, dims, indexToPatient, position, index, det };
}

const A: V3 = [0.37, -1.21, 0.83];
const B = 250.5;
const f = (p: V3) => A[0] * p[0] + A[1] * p[1] + A[2] * p[2] + B;
const OUT = -7777.5;

// Source: rotated 0.7 rad about (1, 2, 3), spacing 0.7 x 1.3 x 2.1 mm, k flipped (left-handed), far origin.
const [s0, s1, s2] = rotationColumns([1, 2, 3], 0.7);
const SRC = grid([-312.4, 187.9, 1043.2], [0.7, 1.3, 2.1], [s0, s1, [-s2[0], -s2[1], -s2[2]]], [9, 8, 7]);

function sourceVolume() {
  const [nx, ny, nz] = SRC.dims;
  const data = new Float64Array(nx * ny * nz);
  for (let k = 0; k < nz; k++)
    for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) data[i + nx * (j + ny * k)] = f(SRC.position(i, j, k));
  return createVolume({ data, dims: SRC.dims, indexToPatient: SRC.indexToPatient });
}

/**
 * Target: rotated 1.1 rad about (-2, 1, 0.5), spacing 0.9 x 0.6 x 1.1 mm, j flipped (left-handed too),
 * 14 x 15 x 12 voxels centred near the source's centre: it reaches beyond the source on every side, so
 * both inside and outside voxels occur.
 */
function targetGrid() {
  const [t0, t1, t2] = rotationColumns([-2, 1, 0.5], 1.1);
  const spacing: V3 = [0.9, 0.6, 1.1];
  const dims: Dims3 = [14, 15, 12];
  const dirs: [V3, V3, V3] = [t0, [-t1[0], -t1[1], -t1[2]], t2];
  const centre = SRC.position(4, 3.5, 3);
  const origin = [0, 1, 2].map(
    (r) => centre[r] - [0, 1, 2].reduce((sum, a) => sum + ((dims[a] - 1) / 2) * spacing[a] * dirs[a][r], 0),
  ) as V3;
  origin[0] += 0.123;
  origin[1] -= 0.071;
  origin[2] += 0.05; // off-centre: no symmetric coincidences
  return grid(origin, spacing, dirs, dims);
}

/** -1: clearly outside, 1: clearly inside, 0: within `band` voxel of the boundary (ambiguous). */
function where(idx: V3, lo: number, hi: (a: number) => number, band: number) {
  let d = Infinity;
  for (let a = 0; a < 3; a++) d = Math.min(d, idx[a] - lo, hi(a) - idx[a]);
  return d >= band ? 1 : d <= -band ? -1 : 0;
}

describe('resample: every voxel against a linear field', () => {
  const src = sourceVolume();
  const tgt = targetGrid();

  it('the source grid is what the test meant: left-handed, det = -(0.7 * 1.3 * 2.1) = -1.911', () => {
    expect(mat4Det3(src.indexToPatient)).toBeCloseTo(-1.911, 12);
    expect(SRC.det).toBeCloseTo(-1.911, 12);
    expect(src.spacing[2]).toBeCloseTo(2.1, 12);
  });

  it('linear: inside voxels hold a.p + b of their own centre (1e-12 relative), outside ones the outside value', () => {
    const r = resample(src, tgt, { interpolation: 'linear', outside: OUT });
    const [nx, ny, nz] = tgt.dims;
    expect(r.dims).toEqual([14, 15, 12]);
    expect(r.data).toBeInstanceOf(Float64Array); // source's type by default
    let inside = 0,
      outside = 0,
      ambiguous = 0,
      worst = 0;
    for (let k = 0; k < nz; k++) {
      for (let j = 0; j < ny; j++) {
        for (let i = 0; i < nx; i++) {
          const p = tgt.position(i, j, k);
          const v = r.data[i + nx * (j + ny * k)];
          const w = where(SRC.index(p), 0, (a) => SRC.dims[a] - 1, 1e-4);
          if (w === 1) {
            inside++;
            const want = f(p);
            worst = Math.max(worst, Math.abs(v - want) / Math.max(1, Math.abs(want)));
          } else if (w === -1) {
            outside++;
            expect(v).toBe(OUT);
          } else ambiguous++;
        }
      }
    }
    // An affine field is reproduced up to float64 round-off (measured: 4.5e-16 relative), so 1e-12 relative
    // holds with a margin of 2000 (the issue asks for 1e-6). 1e-12 still catches an index step off by 1e-7.
    expect(worst).toBeLessThan(1e-12);
    // All 2520 voxels are decided, no centre lies within 1e-4 voxel of the source's hull, and both kinds
    // occur in quantity (otherwise this test would check little).
    expect(inside + outside).toBe(14 * 15 * 12);
    expect(ambiguous).toBe(0);
    // Counted from the geometry above (by the test's own index computation): 856 inside, 1664 outside.
    expect(inside).toBe(856);
    expect(outside).toBe(1664);
  });

  it('nearest: inside voxels hold the value of the source voxel whose centre is nearest, in index terms', () => {
    const r = resample(src, tgt, { interpolation: 'nearest', outside: OUT });
    const [nx, ny, nz] = tgt.dims;
    let inside = 0,
      outside = 0,
      ties = 0;
    for (let k = 0; k < nz; k++) {
      for (let j = 0; j < ny; j++) {
        for (let i = 0; i < nx; i++) {
          const idx = SRC.index(tgt.position(i, j, k));
          const v = r.data[i + nx * (j + ny * k)];
          if (idx.some((x) => Math.abs(x - Math.floor(x) - 0.5) < 1e-6)) {
            ties++;
            continue;
          }
          const w = where(idx, -0.5, (a) => SRC.dims[a] - 0.5, 1e-6);
          if (w === 1) {
            inside++;
            const [ri, rj, rk] = idx.map(Math.round);
            // The stored value, and (independently) f at that source centre.
            expect(v).toBe(src.data[ri + SRC.dims[0] * (rj + SRC.dims[1] * rk)]);
            expect(v).toBeCloseTo(f(SRC.position(ri, rj, rk)), 9);
          } else if (w === -1) {
            outside++;
            expect(v).toBe(OUT);
          }
        }
      }
    }
    expect(ties).toBe(0);
    expect(inside + outside).toBe(14 * 15 * 12);
    // Nearest's hull is half a voxel wider on every face than the linear one: 1106 inside (vs 856), 1414 out.
    expect(inside).toBe(1106);
    expect(outside).toBe(1414);
  });

  it('the result has the target geometry exactly, so its handedness (det = -(0.9 * 0.6 * 1.1) = -0.594)', () => {
    const r = resample(src, tgt, { outside: OUT });
    expect(mat4MaxAbsDiff(r.indexToPatient, tgt.indexToPatient)).toBe(0);
    expect(mat4Det3(r.indexToPatient)).toBeCloseTo(-0.594, 12);
    expect(tgt.det).toBeCloseTo(-0.594, 12);
    // A right-handed target (the same one with k reversed too: two flips) gives a right-handed result.
    const flippedK = tgt.dirs[2].map((x) => -x) as V3;
    const right = grid(tgt.origin, tgt.spacing, [tgt.dirs[0], tgt.dirs[1], flippedK], [3, 3, 3]);
    const rr = resample(src, right, { outside: OUT });
    expect(mat4Det3(rr.indexToPatient)).toBeCloseTo(0.594, 12);
  });

  it('resampleToSpacing keeps orientation and handedness, and every voxel lands inside the source', () => {
    // Spacings that divide the extents exactly (5.6 / 0.35 = 16, 9.1 / 0.65 = 14, 12.6 / 1.05 = 12): the last
    // centres fall on the source's last centres, up to round-off; EDGE_EPS must keep them inside.
    const g = gridWithSpacing(src, [0.35, 0.65, 1.05]);
    expect(g.dims).toEqual([17, 15, 13]);
    expect(mat4Det3(g.indexToPatient)).toBeCloseTo(-(0.35 * 0.65 * 1.05), 12);
    const r = resampleToSpacing(src, [0.35, 0.65, 1.05], { outside: OUT });
    let worst = 0;
    for (let k = 0; k < 13; k++) {
      for (let j = 0; j < 15; j++) {
        for (let i = 0; i < 17; i++) {
          const v = r.data[i + 17 * (j + 15 * k)];
          expect(v).not.toBe(OUT);
          // Target centre (i, j, k) is the source's continuous index (i / 2, j / 2, k / 2).
          const want = f(SRC.position(i / 2, j / 2, k / 2));
          worst = Math.max(worst, Math.abs(v - want) / Math.abs(want));
        }
      }
    }
    expect(worst).toBeLessThan(1e-12); // round-off only, as above
  });
});

describe('crop keeps every voxel at its patient position', () => {
  it('each of the 6 x 6 x 3 voxels: same value and same LPS centre (to 1e-9 mm) as in the source', () => {
    const src = sourceVolume();
    const min = [2, 1, 3],
      max = [7, 6, 5];
    const c = crop(src, min, max);
    expect(c.dims).toEqual([6, 6, 3]);
    const m = c.indexToPatient;
    let worstMm = 0;
    for (let k = 0; k < 3; k++) {
      for (let j = 0; j < 6; j++) {
        for (let i = 0; i < 6; i++) {
          const si = i + min[0],
            sj = j + min[1],
            sk = k + min[2];
          expect(c.data[i + 6 * (j + 6 * k)]).toBe(src.data[si + 9 * (sj + 8 * sk)]);
          const want = SRC.position(si, sj, sk);
          for (let r = 0; r < 3; r++) {
            const got = m[r * 4] * i + m[r * 4 + 1] * j + m[r * 4 + 2] * k + m[r * 4 + 3];
            worstMm = Math.max(worstMm, Math.abs(got - want[r]));
          }
        }
      }
    }
    expect(worstMm).toBeLessThan(1e-9);
    // Same directions and spacing, so the same handedness: det -1.911.
    expect(mat4Det3(c.indexToPatient)).toBeCloseTo(-1.911, 12);
  });
});
