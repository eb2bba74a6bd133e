import { describe, expect, it } from 'vitest';
import { createVolume, type Volume } from '../volume/volume.js';
import { carmPreset } from '../carm/geometry.js';
import type { Point3 } from '../math/vec3.js';
import { cbctScan } from './scan.js';
import { prepareMaterialVolumes, simulateProjections } from './acquire.js';
import { cbctGrid, parkerWeight, reconstructFdk, type ReconGrid } from './fdk.js';
import { CancelledError } from '../errors.js';
import { Rng } from '../math/random.js';
import { linearAttenuationPerMm } from '../drr/attenuation.js';
import { beamSpectrum, polyWaterProjection } from './spectrum.js';
import { cropToContent, detectView, resolveAcquisition, transmissionTable, viewPhysics } from './acquire.js';
import { splitMaterials } from './spectrum.js';
import { drrParams, prepareDrrVolume, renderLineIntegrals } from '../drr/drrVolume.js';
import { drrRayKernel } from '../drr/kernel.js';
import { defined } from '../test-helpers/defined.js';

/** Rotation about a unit axis by an angle (Rodrigues), as a row-major 3x3 in a flat array. */
function rotation(axis: Point3, angleDeg: number): number[] {
  const n = Math.hypot(...axis);
  const [x, y, z] = axis.map((v) => v / n);
  const a = (angleDeg * Math.PI) / 180,
    c = Math.cos(a),
    s = Math.sin(a),
    t = 1 - c;
  return [
    t * x * x + c,
    t * x * y - s * z,
    t * x * z + s * y,
    t * x * y + s * z,
    t * y * y + c,
    t * y * z - s * x,
    t * x * z - s * y,
    t * y * z + s * x,
    t * z * z + c,
  ];
}

/** indexToPatient with rotation R (columns = axis directions), spacing and the grid's centre at `centre`. */
function obliqueMatrix(R: number[], spacing: Point3, dims: Point3, centre: Point3, flipJ = false): Float64Array {
  const m = new Float64Array(16);
  for (let r = 0; r < 3; r++)
    for (let c = 0; c < 3; c++) m[r * 4 + c] = R[r * 3 + c] * spacing[c] * (flipJ && c === 1 ? -1 : 1);
  for (let r = 0; r < 3; r++) {
    let off = 0;
    for (let c = 0; c < 3; c++) off += m[r * 4 + c] * ((dims[c] - 1) / 2);
    m[r * 4 + 3] = centre[r] - off;
  }
  m[15] = 1;
  return m;
}

/**
 * Spheres of HU `hu` in air (-1000) voxelized with 4^3 subsamples per voxel (partial volume), so that each
 * sphere's centroid in the grid is its true centre to well under 0.05 mm.
 */
function sphereVolume(m: Float64Array, dims: Point3, spheres: { c: Point3; r: number }[], hu: number): Volume {
  const [nx, ny, nz] = dims;
  const data = new Float32Array(nx * ny * nz).fill(-1000);
  const S = 4;
  const p: Point3 = [0, 0, 0];
  for (let k = 0; k < nz; k++)
    for (let j = 0; j < ny; j++)
      for (let i = 0; i < nx; i++) {
        const cx = m[0] * i + m[1] * j + m[2] * k + m[3],
          cy = m[4] * i + m[5] * j + m[6] * k + m[7],
          cz = m[8] * i + m[9] * j + m[10] * k + m[11];
        let near = false;
        for (const s of spheres) if (Math.hypot(cx - s.c[0], cy - s.c[1], cz - s.c[2]) < s.r + 3) near = true;
        if (!near) continue;
        let inside = 0;
        for (let a = 0; a < S; a++)
          for (let b = 0; b < S; b++)
            for (let c = 0; c < S; c++) {
              const di = (a + 0.5) / S - 0.5,
                dj = (b + 0.5) / S - 0.5,
                dk = (c + 0.5) / S - 0.5;
              for (let r = 0; r < 3; r++)
                p[r] = [cx, cy, cz][r] + m[r * 4] * di + m[r * 4 + 1] * dj + m[r * 4 + 2] * dk;
              for (const s of spheres) if (Math.hypot(p[0] - s.c[0], p[1] - s.c[1], p[2] - s.c[2]) <= s.r) inside++;
            }
        data[(k * ny + j) * nx + i] = -1000 + ((hu + 1000) * inside) / S ** 3;
      }
  return createVolume({ data, dims, indexToPatient: m, meta: { source: 'spheres' } });
}

/** Centroid (LPS mm) of HU above half-way between air and the local peak, in a box of `radiusMm` around p. */
function centroidNear(v: Volume, p: Point3, radiusMm: number): Point3 {
  const A = v.patientToIndex,
    M = v.indexToPatient;
  const ci = [0, 1, 2].map((r) => A[r * 4] * p[0] + A[r * 4 + 1] * p[1] + A[r * 4 + 2] * p[2] + A[r * 4 + 3]);
  const h = [0, 1, 2].map((a) => Math.ceil(radiusMm / v.spacing[a]));
  const [nx, ny] = v.dims;
  let peak = -Infinity;
  const visit = (f: (i: number, j: number, k: number, val: number) => void) => {
    for (let k = Math.round(ci[2]) - h[2]; k <= Math.round(ci[2]) + h[2]; k++)
      for (let j = Math.round(ci[1]) - h[1]; j <= Math.round(ci[1]) + h[1]; j++)
        for (let i = Math.round(ci[0]) - h[0]; i <= Math.round(ci[0]) + h[0]; i++) {
          if (i < 0 || j < 0 || k < 0 || i >= nx || j >= ny || k >= v.dims[2]) continue;
          f(i, j, k, v.data[(k * ny + j) * nx + i]);
        }
  };
  visit((_i, _j, _k, val) => {
    if (val > peak) peak = val;
  });
  const t = (-1000 + peak) / 2;
  let sw = 0;
  const s = [0, 0, 0];
  visit((i, j, k, val) => {
    if (val <= t) return;
    const w = val - t;
    sw += w;
    for (let r = 0; r < 3; r++) s[r] += w * (M[r * 4] * i + M[r * 4 + 1] * j + M[r * 4 + 2] * k + M[r * 4 + 3]);
  });
  return [s[0] / sw, s[1] / sw, s[2] / sw];
}

const system = carmPreset('artis-zee-floor');
// A zoomed 160 mm field read out at 128 pixels: 1.25 mm pixels, 0.82 mm at the isocentre; FOV radius 51 mm.
const detector = { fieldMm: 160, size: 128 };

describe('Parker weights', () => {
  it('sum to 1 over each pair of conjugate rays (beta, gamma) and (beta + pi + 2 gamma, -gamma)', () => {
    // Independent identity of the short scan: the line seen at (beta, gamma) is seen again at
    // beta' = beta + pi + 2 gamma with fan angle -gamma (derived in scan.ts); over the short scan's
    // overlap the two weights share the ray.
    const delta = (10 * Math.PI) / 180;
    for (const gamma of [-0.12, -0.05, 0, 0.03, 0.1]) {
      for (let beta = 0; beta <= 2 * delta - 2 * gamma; beta += 0.01) {
        const w = parkerWeight(beta, gamma, delta) + parkerWeight(beta + Math.PI + 2 * gamma, -gamma, delta);
        expect(Math.abs(w - 1)).toBeLessThan(1e-9);
      }
      // In the middle of the scan, no conjugate: weight 1.
      expect(parkerWeight(Math.PI / 2, gamma, delta)).toBe(1);
    }
  });
});

describe('C-arm CT geometry', () => {
  // Seven spheres in a pattern with no symmetry (a flip or a swap of axes moves some of them by cm).
  const offsets: Point3[] = [
    [0, 0, 0],
    [20, 0, 0],
    [0, 14, 0],
    [0, 0, 18],
    [-12, -9, 5],
    [8, -15, -12],
    [-16, 10, -8],
  ];
  const centre: Point3 = [37.5, -212.25, 481.75];
  const dims: Point3 = [64, 56, 72];
  // Oblique and anisotropic, with a left-handed index frame (j flipped): spacing 1.1, 1.3, 0.9 mm.
  const m = obliqueMatrix(rotation([1, 2, 3], 23), [1.1, 1.3, 0.9], dims, centre, true);
  const spheres = offsets.map((o) => ({ c: [centre[0] + o[0], centre[1] + o[1], centre[2] + o[2]] as Point3, r: 2.5 }));
  const ct = sphereVolume(m, dims, spheres, 1500);
  const placements: { iso: Point3; oblique: boolean }[] = [
    { iso: centre, oblique: false },
    { iso: [centre[0] + 11, centre[1] - 8, centre[2] + 7], oblique: true },
    { iso: [centre[0] - 9, centre[1] + 12, centre[2] - 10], oblique: false },
  ];
  for (const { iso, oblique } of placements) {
    it(`puts every sphere within 0.3 mm of its true centre (isocentre ${iso.map((x) => x.toFixed(1)).join(', ')}${oblique ? ', oblique output grid' : ''})`, () => {
      const scan = cbctScan(system, { isocenter: iso, arcDeg: 200, views: 151, detector });
      // 151 views: pairs of views and a last single one (both backprojection paths) on the axial grids.
      const proj = simulateProjections(ct, scan, { blurSigmaPx: 0 });
      let grid: ReconGrid;
      if (oblique) {
        const gd: Point3 = [96, 96, 80];
        grid = { dims: gd, indexToPatient: obliqueMatrix(rotation([-2, 1, 0.5], 31), [0.9, 0.8, 1.0], gd, iso) };
      } else grid = cbctGrid(scan, { voxelMm: 0.8, fovMm: 90, heightMm: 70 });
      const rec = reconstructFdk(proj, scan, { grid });
      let worst = 0;
      for (const s of spheres) {
        const c = centroidNear(rec.volume, s.c, 6);
        const err = Math.hypot(c[0] - s.c[0], c[1] - s.c[1], c[2] - s.c[2]);
        worst = Math.max(worst, err);
        expect(err).toBeLessThan(0.3);
      }
      console.log(`recon geometry: worst sphere centroid error ${worst.toFixed(3)} mm (iso ${iso.join(', ')})`);
    });
  }
  it('prepares each material from the CT numbers as the split, the crop and prepareDrrVolume do', () => {
    // The spheres (1500 HU: bone, a little water) in soft tissue, with a steel bead, fractional CT numbers,
    // NaN and air: every branch of the split, whole and fractional numbers.
    const data = Float32Array.from(ct.data, (v, i) => (i % 3 === 0 ? v + 0.37 : v - 300 * ((i % 7) / 7)));
    data[1000] = 3000;
    data[1001] = 2600;
    data[2000] = NaN;
    data[2001] = -2000;
    for (const d of [data, Int16Array.from(data, (v) => (Number.isNaN(v) ? -1024 : Math.round(v)))]) {
      const v = createVolume({ data: d, dims, indexToPatient: m, meta: { source: 'phantom' } });
      const got = prepareMaterialVolumes(v).volumes;
      const split = splitMaterials(d);
      for (const mat of ['water', 'bone', 'metal'] as const) {
        const g = defined(got[mat], mat);
        const want = prepareDrrVolume(cropToContent(split.fractions[mat], v, `phantom (${mat})`), { values: 'mu' });
        expect(g.dims).toEqual(want.dims);
        expect(Array.from(g.indexToPatient)).toEqual(Array.from(want.indexToPatient));
        expect(g.muScale).toBe(want.muScale);
        expect(g.source).toBe(want.source);
        let diff = 0;
        for (let i = 0; i < want.mu.length; i++) if (g.mu[i] !== want.mu[i]) diff++;
        expect(diff).toBe(0);
        expect(Array.from(g.occupancy)).toEqual(Array.from(want.occupancy));
      }
    }
  });
  it('crops each material to its content: line integrals within the DRR resampling tolerance', () => {
    const split = splitMaterials(ct.data);
    const full = createVolume({ data: split.fractions.bone, dims, indexToPatient: m });
    const cropped = cropToContent(split.fractions.bone, ct, 'bone');
    // The spheres span about 48 x 35 x 40 mm of a 70 x 73 x 65 mm grid: the crop is smaller.
    expect(cropped.data.length).toBeLessThan(full.data.length / 2);
    const scan = cbctScan(system, { isocenter: centre, views: 5, detector });
    for (const g of scan.views) {
      const dvFull = prepareDrrVolume(full, { values: 'mu' });
      const a = renderLineIntegrals(dvFull, g);
      const b = renderLineIntegrals(prepareDrrVolume(cropped, { values: 'mu' }), g);
      // Reference: ray by ray through the full grid (Joseph's method without the plane sweep's resampling).
      const ref = new Float32Array(a.length);
      drrRayKernel(drrParams(dvFull, g), dvFull.mu, dvFull.occupancy, ref, 0, g.rows);
      let peak = 0,
        errFull = 0,
        errCrop = 0,
        sumCrop = 0;
      for (let i = 0; i < a.length; i++) {
        peak = Math.max(peak, ref[i]);
        errFull = Math.max(errFull, Math.abs(a[i] - ref[i]));
        errCrop = Math.max(errCrop, Math.abs(b[i] - ref[i]));
        sumCrop += Math.abs(b[i] - ref[i]);
      }
      // The plane sweep resamples on a virtual-ray grid that follows the volume's grid (drr/README.md:
      // mean < 0.2% of the image's largest value, largest < 8% at edges seen edge-on); the cropped grid
      // resamples differently but no worse than the full one.
      expect(peak).toBeGreaterThan(3);
      expect(sumCrop / a.length).toBeLessThan(0.002 * peak);
      expect(errCrop).toBeLessThan(Math.max(1.5 * errFull, 0.02 * peak));
    }
  });
  it('stops with CancelledError when the signal is aborted', () => {
    const scan = cbctScan(system, { isocenter: centre, views: 20, detector: { size: 32 } });
    const ac = new AbortController();
    ac.abort();
    expect(() => simulateProjections(ct, scan, { signal: ac.signal })).toThrow(CancelledError);
  });
});

describe('C-arm CT intensity', () => {
  // A water cylinder (0 HU), radius 40 mm, 80 mm long along the rotation axis, in air, on a 1.5 mm grid.
  const dims: Point3 = [64, 64, 64];
  const centre: Point3 = [-20.25, 35.5, -610.75];
  const m = obliqueMatrix(rotation([0, 0, 1], 0), [1.5, 1.5, 1.5], dims, centre);
  const data = new Float32Array(64 ** 3);
  const S = 4;
  for (let k = 0; k < 64; k++)
    for (let j = 0; j < 64; j++)
      for (let i = 0; i < 64; i++) {
        // Partial volume from 4 x 4 subsamples across the wall (the ends lie between slices: |z| <= 40 mm).
        const z = (k - 31.5) * 1.5;
        let inside = 0;
        for (let a = 0; a < S; a++)
          for (let b = 0; b < S; b++) {
            const x = (i - 31.5 + (a + 0.5) / S - 0.5) * 1.5,
              y = (j - 31.5 + (b + 0.5) / S - 0.5) * 1.5;
            if (x * x + y * y <= 40 * 40 && Math.abs(z) <= 40) inside++;
          }
        data[(k * 64 + j) * 64 + i] = -1000 + (1000 * inside) / (S * S);
      }
  const ct = createVolume({ data, dims, indexToPatient: m, meta: { source: 'water cylinder' } });
  const scan = cbctScan(system, { isocenter: centre, views: 160, detector });
  const grid = cbctGrid(scan, { voxelMm: 1, fovMm: 100, heightMm: 40 });

  /** Mean HU within radial band r0..r1 (mm) of the axis, |z - centre| <= 10 mm, inside the mask. */
  const band = (v: Volume, mask: Uint8Array, r0: number, r1: number): number => {
    const M = v.indexToPatient;
    const [nx, ny, nz] = v.dims;
    let s = 0,
      n = 0;
    for (let k = 0; k < nz; k++)
      for (let j = 0; j < ny; j++)
        for (let i = 0; i < nx; i++) {
          const x = M[0] * i + M[3] - centre[0],
            y = M[5] * j + M[7] - centre[1],
            z = M[10] * k + M[11] - centre[2];
          const r = Math.hypot(x, y);
          const o = (k * ny + j) * nx + i;
          if (r >= r0 && r <= r1 && Math.abs(z) <= 10 && mask[o]) {
            s += v.data[o];
            n++;
          }
        }
    return s / n;
  };

  it('reconstructs water to 0 +/- 30 HU at the centre without scatter (polychromatic, water-corrected)', () => {
    const proj = simulateProjections(ct, scan, { photonsPerPixel: 2e5, seed: 3 });
    const rec = reconstructFdk(proj, scan, { grid });
    const c = band(rec.volume, rec.mask, 0, 10),
      e = band(rec.volume, rec.mask, 30, 35),
      air = band(rec.volume, rec.mask, 45, 48);
    console.log(`water, no scatter: centre ${c.toFixed(1)} HU, edge ${e.toFixed(1)} HU, air ${air.toFixed(0)} HU`);
    expect(Math.abs(c)).toBeLessThan(30);
    expect(Math.abs(e)).toBeLessThan(30);
    // Air outside the cylinder (inside the FOV) is -1000 HU; the FDK's edge ringing stays within 60 HU.
    expect(Math.abs(air + 1000)).toBeLessThan(60);
    // The field of view: the voxels of the grid inside the 51 mm cylinder (no data beyond it).
    const R = scan.fovRadiusMm;
    expect(R).toBeGreaterThan(45);
    const [nx, ny] = rec.volume.dims;
    const corner = rec.volume.data[0],
      mid = rec.volume.data[((rec.volume.dims[2] >> 1) * ny + (ny >> 1)) * nx + (nx >> 1)];
    expect(corner).toBe(-1024);
    expect(rec.mask[0]).toBe(0);
    expect(Number.isFinite(mid)).toBe(true);
  });

  it('without the water correction, beam hardening cups the cylinder (centre darker than the edge)', () => {
    const proj = simulateProjections(ct, scan, { waterCorrection: false });
    const rec = reconstructFdk(proj, scan, { grid });
    const c = band(rec.volume, rec.mask, 0, 10),
      e = band(rec.volume, rec.mask, 30, 35);
    console.log(
      `water, no correction: centre ${c.toFixed(1)} HU, edge ${e.toFixed(1)} HU, cupping ${(e - c).toFixed(1)} HU`,
    );
    expect(e - c).toBeGreaterThan(5);
  });

  it('with scatter, measures the cupping (edge minus centre) and it is positive', () => {
    const proj = simulateProjections(ct, scan, { scatterFraction: 0.1, photonsPerPixel: 2e5, seed: 3 });
    const rec = reconstructFdk(proj, scan, { grid });
    const c = band(rec.volume, rec.mask, 0, 10),
      e = band(rec.volume, rec.mask, 30, 35);
    console.log(
      `water, scatter 0.1: centre ${c.toFixed(1)} HU, edge ${e.toFixed(1)} HU, cupping ${(e - c).toFixed(1)} HU`,
    );
    // Scatter adds a smooth signal that is largest, relative to the primary, behind the thickest water:
    // the centre reads low. The figure is reported, not bounded above (it is what CBCT looks like).
    expect(e - c).toBeGreaterThan(20);
    expect(c).toBeLessThan(0);
  });
});

describe('polychromatic beam', () => {
  it('tabulated water-bone transmission matches the sum over energy bins to 1e-4', () => {
    const sp = beamSpectrum({ kvp: 90, bins: 8 });
    const T = transmissionTable(sp);
    const rng = new Rng(5);
    for (let n = 0; n < 200; n++) {
      const lw = rng.range(0, 600),
        lb = rng.range(0, 120);
      let t = 0;
      for (let b = 0; b < 8; b++) t += sp.weights[b] * Math.exp(-sp.muPerMm.water[b] * lw - sp.muPerMm.bone[b] * lb);
      const x = lw / T.stepW,
        y = lb / T.stepB;
      const ix = Math.floor(x),
        iy = Math.floor(y);
      const g = (i: number, j: number) => T.p[j * T.nW + i];
      const p =
        (1 - (y - iy)) * (g(ix, iy) + (g(ix + 1, iy) - g(ix, iy)) * (x - ix)) +
        (y - iy) * (g(ix, iy + 1) + (g(ix + 1, iy + 1) - g(ix, iy + 1)) * (x - ix));
      expect(Math.abs(p + Math.log(t))).toBeLessThan(1e-4);
    }
  });
  it('detects a view as -ln of its transmission (no noise, blur or correction): the table, or every bin', () => {
    const scan = cbctScan(carmPreset('artis-zee-floor'), { isocenter: [0, 0, 0], views: 2, detector: { size: 64 } });
    const settings = resolveAcquisition({ kvp: 90, blurSigmaPx: 0, waterCorrection: false });
    const ph = viewPhysics(scan, settings, 'steel');
    const n = scan.columns * scan.rows;
    const water = new Float32Array(n),
      bone = new Float32Array(n),
      metal = new Float32Array(n);
    const rng = new Rng(11);
    for (let p = 0; p < n; p++) {
      water[p] = p & 1 ? rng.range(0, 20) : rng.range(0, 1500); // beyond the table (1024 mm) too
      bone[p] = p & 2 ? rng.range(0, 5) : rng.range(0, 150);
      if (p % 7 === 0) metal[p] = rng.range(0, 3);
    }
    const out = new Float32Array(n);
    detectView(ph, { water, bone, metal }, out);
    const sp = ph.spectrum,
      T = ph.table;
    for (let p = 0; p < n; p++) {
      let want: number;
      if (metal[p] === 0 && water[p] < 1024) {
        // The table's bilinear value (its own accuracy is the test above).
        const x = water[p] / T.stepW,
          y = bone[p] / T.stepB;
        const ix = Math.floor(x),
          iy = Math.floor(y);
        const g = (i: number, j: number) => T.p[j * T.nW + i];
        want =
          (1 - (y - iy)) * (g(ix, iy) + (g(ix + 1, iy) - g(ix, iy)) * (x - ix)) +
          (y - iy) * (g(ix, iy + 1) + (g(ix + 1, iy + 1) - g(ix, iy + 1)) * (x - ix));
      } else {
        let t = 0;
        for (let b = 0; b < sp.weights.length; b++)
          t +=
            sp.weights[b] *
            Math.exp(-sp.muPerMm.water[b] * water[p] - sp.muPerMm.bone[b] * bone[p] - sp.muPerMm.metal[b] * metal[p]);
        want = -Math.log(Math.max(t, 1e-30));
      }
      // Float32 intensities and projections: about 1e-7 relative.
      expect(Math.abs(out[p] - want)).toBeLessThan(1e-6 * Math.max(1, want));
    }
  });
  it('hardens: the effective attenuation of water falls with its thickness, and the energy lies inside the spectrum', () => {
    const sp = beamSpectrum({ kvp: 90 });
    expect(polyWaterProjection(sp, 300) / 300).toBeLessThan(polyWaterProjection(sp, 20) / 20);
    expect(sp.effectiveEnergyKeV).toBeGreaterThan(40);
    expect(sp.effectiveEnergyKeV).toBeLessThan(70);
    // Monochromatic water at the effective energy has the reference attenuation (by the NIST table).
    expect(Math.abs(linearAttenuationPerMm('water', sp.effectiveEnergyKeV) - sp.muReferencePerMm)).toBeLessThan(1e-6);
  });
});

describe('C-arm CT with metal', () => {
  it('keeps a steel pin where it is (axis within 0.3 mm) while it blooms and starves the detector', () => {
    // Water cylinder (radius 35 mm) with a steel pin of radius 1.5 mm through it, tilted in x and z.
    const n = 64,
      s = 1.25;
    const centre: Point3 = [12.5, -40.25, 300.5];
    const m = obliqueMatrix(rotation([0, 0, 1], 0), [s, s, s], [n, n, n], centre);
    const axis = [0.35, 0.2, 1].map((x) => x / Math.hypot(0.35, 0.2, 1)) as Point3;
    const through: Point3 = [centre[0] + 6, centre[1] - 4, centre[2]];
    const distToAxis = (p: number[]) => {
      const d = [p[0] - through[0], p[1] - through[1], p[2] - through[2]];
      const t = d[0] * axis[0] + d[1] * axis[1] + d[2] * axis[2];
      return Math.hypot(d[0] - t * axis[0], d[1] - t * axis[1], d[2] - t * axis[2]);
    };
    const data = new Float32Array(n ** 3);
    const S = 3;
    for (let k = 0; k < n; k++)
      for (let j = 0; j < n; j++)
        for (let i = 0; i < n; i++) {
          const p = [m[3] + i * s, m[7] + j * s, m[11] + k * s];
          const r = Math.hypot(p[0] - centre[0], p[1] - centre[1]);
          let v = r <= 35 && Math.abs(p[2] - centre[2]) <= 35 ? 0 : -1000;
          if (distToAxis(p) < 1.5 + s && Math.abs(p[2] - centre[2]) <= 30) {
            // Partial volume of the pin: 3^3 subsamples; the steel part at 3000 HU (the CT's metal clip).
            let inside = 0;
            for (let a = 0; a < S; a++)
              for (let b = 0; b < S; b++)
                for (let c = 0; c < S; c++) {
                  const q = [
                    p[0] + ((a + 0.5) / S - 0.5) * s,
                    p[1] + ((b + 0.5) / S - 0.5) * s,
                    p[2] + ((c + 0.5) / S - 0.5) * s,
                  ];
                  if (distToAxis(q) <= 1.5) inside++;
                }
            // Below half the voxel in steel it stays water: the CT's metal is the voxels mostly metal.
            if (inside > S ** 3 / 2) v = 3000;
          }
          data[(k * n + j) * n + i] = v;
        }
    const ct = createVolume({ data, dims: [n, n, n], indexToPatient: m, meta: { source: 'pin' } });
    const scan = cbctScan(system, { isocenter: centre, views: 160, detector });
    const proj = simulateProjections(ct, scan, { photonsPerPixel: 2000, seed: 9 });
    // Steel (1.5 mm radius, up to about 10 mm of path along the tilted pin) starves some pixels.
    expect(proj.minCounts).not.toBeNull();
    expect(proj.minCounts as number).toBeLessThan(50);
    const grid = cbctGrid(scan, { voxelMm: 0.5, fovMm: 40, heightMm: 40 });
    const rec = reconstructFdk(proj, scan, { grid });
    const v = rec.volume;
    const M = v.indexToPatient;
    const [gx, gy, gz] = v.dims;
    // Metal voxels: above 2000 HU. Fit the axis: centroid and principal direction (power iteration).
    const pts: number[][] = [];
    let metalVoxels = 0;
    for (let k = 0; k < gz; k++)
      for (let j = 0; j < gy; j++)
        for (let i = 0; i < gx; i++) {
          const val = v.data[(k * gy + j) * gx + i];
          const p = [M[3] + i * M[0], M[7] + j * M[5], M[11] + k * M[10]];
          if (val > 2000 && Math.abs(p[2] - centre[2]) <= 15) {
            pts.push(p);
            metalVoxels++;
          }
        }
    const c = [0, 1, 2].map((a) => pts.reduce((t, p) => t + p[a], 0) / pts.length);
    const C3 = [0, 1, 2].map((a) => [0, 1, 2].map((b) => pts.reduce((t, p) => t + (p[a] - c[a]) * (p[b] - c[b]), 0)));
    let dir = [0, 0, 1];
    for (let it = 0; it < 50; it++) {
      const nd = [0, 1, 2].map((a) => C3[a][0] * dir[0] + C3[a][1] * dir[1] + C3[a][2] * dir[2]);
      const nn = Math.hypot(nd[0], nd[1], nd[2]);
      dir = nd.map((x) => x / nn);
    }
    // Distance of the fitted axis from the true one at the ends of the 30 mm fitted stretch.
    let worst = 0;
    for (const t of [-15, 15]) {
      const p = [0, 1, 2].map((a) => c[a] + (t * dir[a]) / dir[2]);
      worst = Math.max(worst, distToAxis(p));
    }
    // Blooming: the apparent cross-section (metal voxels per mm of pin length, 0.125 mm^3 each) against
    // the true pi r^2 = 7.07 mm^2 per mm.
    const lengthMm = 30 / Math.abs(axis[2]);
    const apparentMm2 = (metalVoxels * 0.125) / lengthMm;
    console.log(
      `pin: axis within ${worst.toFixed(3)} mm; apparent cross-section ${apparentMm2.toFixed(1)} mm^2 ` +
        `(true 7.1, blooming ${(apparentMm2 / 7.07).toFixed(2)}x); fewest counts ${String(proj.minCounts)}`,
    );
    expect(worst).toBeLessThan(0.3);
    expect(apparentMm2).toBeGreaterThan(7.07);
  });
});

describe('C-arm CT of a patient wider than the field of view', () => {
  it('continuing truncated rows keeps the water level nearer 0 HU than zero padding does', () => {
    // Water cylinder of radius 75 mm (the field of view: 51 mm), 2.5 mm grid, in air.
    const n = 72,
      s = 2.5;
    const centre: Point3 = [3.25, -7.5, 150.25];
    const m = obliqueMatrix(rotation([0, 0, 1], 0), [s, s, s], [n, n, 32], centre);
    const data = new Float32Array(n * n * 32);
    for (let k = 0; k < 32; k++)
      for (let j = 0; j < n; j++)
        for (let i = 0; i < n; i++) data[(k * n + j) * n + i] = Math.hypot(i - 35.5, j - 35.5) * s <= 75 ? 0 : -1000;
    const ct = createVolume({ data, dims: [n, n, 32], indexToPatient: m });
    const scan = cbctScan(system, { isocenter: centre, views: 120, detector });
    const proj = simulateProjections(ct, scan, { energyBins: 1 });
    const grid = cbctGrid(scan, { voxelMm: 2, fovMm: 100, heightMm: 20 });
    const centreHu = (padding: 'zero' | 'edge' | 'continue') => {
      const v = reconstructFdk(proj, scan, { grid, padding }).volume;
      const [gx, gy, gz] = v.dims;
      let sum = 0,
        cnt = 0;
      for (let k = 0; k < gz; k++)
        for (let j = 0; j < gy; j++)
          for (let i = 0; i < gx; i++)
            if (Math.hypot(i - (gx - 1) / 2, j - (gy - 1) / 2) * 2 <= 30) {
              sum += v.data[(k * gy + j) * gx + i];
              cnt++;
            }
      return sum / cnt;
    };
    const zero = centreHu('zero'),
      edge = centreHu('edge'),
      cont = centreHu('continue');
    console.log(
      `truncated water (radius 75 mm, FOV 51 mm), centre: zero ${zero.toFixed(0)} HU, edge ${edge.toFixed(0)} HU, ` +
        `continue ${cont.toFixed(0)} HU`,
    );
    // Water is 0 HU; without data beyond the detector each padding errs, the continuation least.
    expect(Math.abs(cont)).toBeLessThan(Math.abs(zero));
    expect(Math.abs(cont)).toBeLessThan(Math.abs(edge));
    expect(Math.abs(cont)).toBeLessThan(150);
  });
});
