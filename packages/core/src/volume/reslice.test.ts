import { describe, expect, it } from 'vitest';
import { GeometryError, UsageError } from '../errors.js';
import { mat4TransformPoint } from '../math/mat4.js';
import { reslicePlane, type ReslicePlane } from './reslice.js';
import { sampleNearest, sampleTrilinear } from './sample.js';
import { createVolume, indexToPatientFrom, type Volume } from './volume.js';

/** Rotation matrix columns for an axis and angle (Rodrigues), as three unit vectors. */
function rotationColumns(axis: number[], angle: number): [number[], number[], number[]] {
  const n = Math.hypot(axis[0], axis[1], axis[2]);
  const [x, y, z] = [axis[0] / n, axis[1] / n, axis[2] / n];
  const c = Math.cos(angle),
    s = Math.sin(angle),
    t = 1 - c;
  const r = [
    [t * x * x + c, t * x * y - s * z, t * x * z + s * y],
    [t * x * y + s * z, t * y * y + c, t * y * z - s * x],
    [t * x * z - s * y, t * y * z + s * x, t * z * z + c],
  ];
  return [
    [r[0][0], r[1][0], r[2][0]],
    [r[0][1], r[1][1], r[2][1]],
    [r[0][2], r[1][2], r[2][2]],
  ];
}

/**
 * Oblique (rotated 0.5 rad about a tilted axis), anisotropic, flipped (k negated: left-handed index
 * frame), origin far from zero: the kind of grid on which an index-space shortcut would show.
 */
function obliqueGrid(spacing: number[], dims: [number, number, number]) {
  const [a, b, c] = rotationColumns([0.3, -0.5, 0.8], 0.5);
  const m = indexToPatientFrom([-300.25, 410.5, 1020], spacing, [a, b, [-c[0], -c[1], -c[2]]]);
  return { m, dims };
}

function volumeOf(m: Float64Array, dims: [number, number, number], f: (p: number[], n: number) => number) {
  const [nx, ny, nz] = dims;
  const data = new Float64Array(nx * ny * nz);
  for (let k = 0; k < nz; k++)
    for (let j = 0; j < ny; j++)
      for (let i = 0; i < nx; i++) {
        const n = i + nx * (j + ny * k);
        data[n] = f(mat4TransformPoint([0, 0, 0], m, [i, j, k]) as number[], n);
      }
  return createVolume({ data, dims, indexToPatient: m });
}

/** An oblique plane through the volume's centre, wider than the volume so that pixels fall outside too. */
function obliquePlane(vol: Volume): ReslicePlane {
  const [u, v] = rotationColumns([-0.7, 0.2, 0.4], 1.1);
  const [nx, ny, nz] = vol.dims;
  const centre = mat4TransformPoint([0, 0, 0], vol.indexToPatient, [(nx - 1) / 2, (ny - 1) / 2, (nz - 1) / 2]);
  const pixelSizeMm = 0.37,
    width = 61,
    height = 47;
  const origin = [0, 1, 2].map(
    (r) =>
      centre[r] - ((width - 1) / 2) * pixelSizeMm * u[r] - ((height - 1) / 2) * pixelSizeMm * v[r] + 0.113 * (r + 1),
  );
  return { origin, u, v, pixelSizeMm, width, height };
}

/** The patient point of pixel (x, y), computed directly from the plane's definition. */
function pixelPoint(pl: ReslicePlane, x: number, y: number): number[] {
  const s = pl.pixelSizeMm;
  return [0, 1, 2].map((r) => pl.origin[r] + x * s * pl.u[r] + y * s * pl.v[r]);
}

// A pseudo-random field (not linear, not smooth): any mismatch of index, weight or edge rule shows.
const noise = (_p: number[], n: number) => (Math.sin(n * 12.9898) * 43758.5453) % 1000;

describe('reslicePlane', () => {
  const { m, dims } = obliqueGrid([0.8, 1.1, 2.5], [13, 11, 9]);
  const vol = volumeOf(m, dims, noise);
  const plane = obliquePlane(vol);

  it('equals sampleTrilinear and sampleNearest at every pixel of an oblique plane, inside and outside', () => {
    const lin = reslicePlane(new Float64Array(plane.width * plane.height), vol, plane, { outside: -7 });
    const near = reslicePlane(new Float64Array(plane.width * plane.height), vol, plane, {
      interpolation: 'nearest',
      outside: -7,
    });
    let worst = 0,
      inside = 0,
      insideNearest = 0;
    for (let y = 0; y < plane.height; y++)
      for (let x = 0; x < plane.width; x++) {
        const p = pixelPoint(plane, x, y),
          o = x + plane.width * y;
        const t = sampleTrilinear(vol, p, -7),
          q = sampleNearest(vol, p, -7);
        // Same index within round-off (~1e-13 voxel): with voxel differences below 2000, values agree to 1e-9.
        worst = Math.max(worst, Math.abs(lin[o] - t));
        expect(near[o]).toBe(q); // nearest voxel: the same voxel, so exactly the same value
        if (t !== -7) inside++;
        if (q !== -7) insideNearest++;
      }
    expect(worst).toBeLessThan(1e-9);
    // Both regimes are exercised: the plane (22.2 x 17.0 mm) crosses a 9.6 x 11 x 20 mm volume, so some
    // of its 2867 pixels are inside and some outside; nearest reaches half a voxel further, so it has more.
    expect(inside).toBeGreaterThan(300);
    expect(inside).toBeLessThan(2867);
    expect(insideNearest).toBeGreaterThan(inside);
  });

  it('reproduces a linear function of LPS position exactly (trilinear is exact for linear fields)', () => {
    const f = (p: number[]) => 2 * p[0] - 3 * p[1] + 0.5 * p[2] + 11;
    const lv = volumeOf(m, dims, f);
    const out = reslicePlane(null, lv, plane, { outside: NaN });
    let worst = 0,
      inside = 0;
    for (let y = 0; y < plane.height; y++)
      for (let x = 0; x < plane.width; x++) {
        const v = out[x + plane.width * y];
        if (Number.isNaN(v)) continue;
        inside++;
        // Float32 output: values of about 2000 are held to 2000 * 2^-24 = 1.2e-4; 2e-4 allows for that.
        worst = Math.max(worst, Math.abs(v - f(pixelPoint(plane, x, y))));
      }
    expect(out).toBeInstanceOf(Float32Array);
    expect(inside).toBeGreaterThan(300);
    expect(worst).toBeLessThan(2e-4);
    const exact = reslicePlane(new Float64Array(plane.width * plane.height), lv, plane, { outside: NaN });
    let worst64 = 0;
    for (let y = 0; y < plane.height; y++)
      for (let x = 0; x < plane.width; x++) {
        const v = exact[x + plane.width * y];
        if (!Number.isNaN(v)) worst64 = Math.max(worst64, Math.abs(v - f(pixelPoint(plane, x, y))));
      }
    // Float64 output: only double round-off of values about 2000 (2000 * 2^-52 = 4e-13, a few operations).
    expect(worst64).toBeLessThan(1e-9);
  });

  it('keeps the outermost voxel centres inside (EDGE tolerance) and the next pixel beyond them outside', () => {
    // In-plane spacing equal along i and j so the pixel raster lands on voxel centres of a face.
    const g = obliqueGrid([0.7, 0.7, 2.5], [6, 5, 4]);
    const ev = volumeOf(g.m, g.dims, noise);
    const [nx, ny, nz] = g.dims;
    for (const k of [0, nz - 1]) {
      // One pixel of border around the face: pixel (x, y) = voxel (x - 1, y - 1, k).
      const c = mat4TransformPoint([0, 0, 0], g.m, [-1, -1, k]);
      const u = [g.m[0] / 0.7, g.m[4] / 0.7, g.m[8] / 0.7],
        v = [g.m[1] / 0.7, g.m[5] / 0.7, g.m[9] / 0.7];
      const pl: ReslicePlane = { origin: c, u, v, pixelSizeMm: 0.7, width: nx + 2, height: ny + 2 };
      for (const interpolation of ['linear', 'nearest'] as const) {
        const out = reslicePlane(new Float64Array(pl.width * pl.height), ev, pl, { interpolation, outside: -1 });
        for (let y = 0; y < pl.height; y++)
          for (let x = 0; x < pl.width; x++) {
            const i = x - 1,
              j = y - 1;
            const inside = i >= 0 && j >= 0 && i < nx && j < ny;
            // On a voxel centre both samplers return that voxel's value (to round-off of the index, ~1e-13
            // voxel, times voxel differences below 2000); a whole voxel beyond the grid is outside for both.
            if (inside) expect(Math.abs(out[x + pl.width * y] - ev.data[i + nx * (j + ny * k)])).toBeLessThan(1e-9);
            else expect(out[x + pl.width * y]).toBe(-1);
          }
      }
    }
  });

  it('writes into the given output and returns it; refuses a wrong size or axes that are not unit', () => {
    const buf = new Float32Array(plane.width * plane.height);
    expect(reslicePlane(buf, vol, plane)).toBe(buf);
    // Float32 output holds the sampler's value rounded to float32: values below 1000 to 1000 * 2^-24 = 6e-5.
    const p = pixelPoint(plane, 30, 23);
    expect(Math.abs(buf[30 + plane.width * 23] - sampleTrilinear(vol, p))).toBeLessThan(6.1e-5);
    expect(() => reslicePlane(new Float32Array(10), vol, plane)).toThrow(UsageError);
    expect(() => reslicePlane(null, vol, { ...plane, u: [2, 0, 0] })).toThrow(GeometryError);
    expect(() => reslicePlane(null, vol, { ...plane, v: plane.u })).toThrow(GeometryError);
    expect(() => reslicePlane(null, vol, { ...plane, width: 0 })).toThrow(UsageError);
  });
});
