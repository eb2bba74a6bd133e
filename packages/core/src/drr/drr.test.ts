import { describe, expect, it } from 'vitest';
import { createVolume, indexToPatientFrom } from '../volume/volume.js';
import { carmFrame, pixelToPatient, type CarmGeometry } from '../carm/geometry.js';
import { mat4TransformPoint } from '../math/mat4.js';
import {
  addDrrPlanesJCopy,
  addDrrTransposedCopy,
  drrParamFields,
  drrParams,
  prepareDrrVolume,
  renderLineIntegrals,
  type DrrVolume,
} from './drrVolume.js';
import {
  DRR_PARAM,
  DRR_PARAMS_LENGTH,
  drrKernel,
  drrKernelSource,
  drrRayKernel,
  drrSweepAxis,
  packDrrParams,
  type DrrParamFields,
} from './kernel.js';
import { DrrError } from './attenuation.js';
import { defined } from '../test-helpers/defined.js';
import { effectiveAttenuationPerMm, huToMu, linearAttenuationPerMm } from './attenuation.js';

type V = [number, number, number];
const sub = (a: V, b: V): V => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const dot = (a: V, b: V) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];

const SPHERE = { c: [12, -8, 1003] as V, r: 24, mu: 0.021 };
const CYL = { a: [-30, 20, 975] as V, axis: [0.6, 0, 0.8] as V, r: 9, len: 60, mu: 0.047 };

/** Chord length of the ray p + t w (t in R) through a sphere. */
function sphereChord(p: V, w: V): number {
  const q = sub(p, SPHERE.c);
  const A = dot(w, w),
    B = 2 * dot(q, w),
    C = dot(q, q) - SPHERE.r ** 2;
  const D = B * B - 4 * A * C;
  return D <= 0 ? 0 : (Math.sqrt(D) / A) * Math.sqrt(A);
}

/** Chord through the capped cylinder: infinite-cylinder interval intersected with the slab between caps. */
function cylinderChord(p: V, w: V): number {
  const ax = CYL.axis;
  const q = sub(p, CYL.a);
  const wp = sub(w, [ax[0] * dot(w, ax), ax[1] * dot(w, ax), ax[2] * dot(w, ax)] as V);
  const qp = sub(q, [ax[0] * dot(q, ax), ax[1] * dot(q, ax), ax[2] * dot(q, ax)] as V);
  const A = dot(wp, wp),
    B = 2 * dot(qp, wp),
    C = dot(qp, qp) - CYL.r ** 2;
  const D = B * B - 4 * A * C;
  if (D <= 0 || A < 1e-12) return 0;
  let t0 = (-B - Math.sqrt(D)) / (2 * A),
    t1 = (-B + Math.sqrt(D)) / (2 * A);
  const wa = dot(w, ax),
    qa = dot(q, ax);
  let s0 = (0 - qa) / wa,
    s1 = (CYL.len - qa) / wa;
  if (s0 > s1) [s0, s1] = [s1, s0];
  t0 = Math.max(t0, s0);
  t1 = Math.min(t1, s1);
  return t1 > t0 ? (t1 - t0) * Math.sqrt(dot(w, w)) : 0;
}

/**
 * A 110 x 100 x 90 grid, anisotropic (0.9, 1.0, 1.1 mm) and oblique (rotated 20 degrees about z), holding
 * the sphere and the cylinder with partial-volume voxels (fraction from the signed distance).
 */
function phantom() {
  const dims: V = [110, 100, 90];
  const c = Math.cos(0.35),
    s = Math.sin(0.35);
  const dirs: [V, V, V] = [
    [c, s, 0],
    [-s, c, 0],
    [0, 0, 1],
  ];
  const spacing: V = [0.9, 1.0, 1.1];
  const centre: V = [0, 0, 990];
  const half = [0, 1, 2].map((a) => ((dims[a] - 1) / 2) * spacing[a]);
  const origin: V = [0, 1, 2].map(
    (r) => centre[r] - half[0] * dirs[0][r] - half[1] * dirs[1][r] - half[2] * dirs[2][r],
  ) as V;
  const m = indexToPatientFrom(origin, spacing, dirs);
  const data = new Float32Array(dims[0] * dims[1] * dims[2]);
  const pos = (i: number, j: number, k: number): V =>
    [0, 1, 2].map((r) => m[r * 4] * i + m[r * 4 + 1] * j + m[r * 4 + 2] * k + m[r * 4 + 3]) as V;
  const dSphere = (p: V) => Math.hypot(...sub(p, SPHERE.c)) - SPHERE.r;
  const dCyl = (p: V) => {
    const q = sub(p, CYL.a);
    const along = dot(q, CYL.axis);
    const radial = Math.hypot(...sub(q, [CYL.axis[0] * along, CYL.axis[1] * along, CYL.axis[2] * along] as V)) - CYL.r;
    return Math.max(radial, -along, along - CYL.len);
  };
  // Partial volume: the inside fraction of each voxel from 5x5x5 sub-samples where a surface is near.
  const sub5 = [-0.4, -0.2, 0, 0.2, 0.4];
  for (let k = 0; k < dims[2]; k++)
    for (let j = 0; j < dims[1]; j++)
      for (let i = 0; i < dims[0]; i++) {
        const p = pos(i, j, k);
        let v = 0;
        for (const [dist, mu] of [
          [dSphere, SPHERE.mu],
          [dCyl, CYL.mu],
        ] as const) {
          const d0 = dist(p);
          if (d0 < -1) v += mu;
          else if (d0 <= 1) {
            let inside = 0;
            for (const a of sub5)
              for (const b of sub5) for (const c of sub5) if (dist(pos(i + a, j + b, k + c)) < 0) inside++;
            v += (mu * inside) / 125;
          }
        }
        data[i + dims[0] * (j + dims[1] * k)] = v;
      }
  return createVolume({ data, dims, indexToPatient: m, meta: { source: 'analytic phantom' } });
}

describe('DRR line integrals', () => {
  const vol = phantom();
  const dv = prepareDrrVolume(vol, { values: 'mu' });
  const dvJs = prepareDrrVolume(vol, { values: 'mu', wasm: false });

  it('run the row loops in WebAssembly by default, in JavaScript on request', () => {
    expect(dv.simd).toBeDefined();
    expect(dvJs.simd).toBeUndefined();
  });

  const poses: [number, number][] = [
    [0, 0],
    [90, 0],
    [-35, 20],
    [60, -40],
    [170, 10],
    [-120, 75],
  ];
  for (const [a, b] of poses)
    for (const [loops, d] of [
      ['WebAssembly', dv],
      ['JavaScript', dvJs],
    ] as const) {
      it(`equal analytic sphere + cylinder integrals to 1% (primary ${a}, secondary ${b}; ${loops} row loops)`, () => {
        const g: CarmGeometry = {
          sidMm: 1100,
          sodMm: 700,
          columns: 160,
          rows: 160,
          columnSpacingMm: 1.2,
          rowSpacingMm: 1.2,
          primaryDeg: a,
          secondaryDeg: b,
          isocenter: [0, 0, 990],
        };
        const img = renderLineIntegrals(d, g);
        const f = carmFrame(g);
        const want = new Float64Array(img.length);
        let maxWant = 0;
        for (let r = 0; r < g.rows; r++)
          for (let c = 0; c < g.columns; c++) {
            const w = sub(pixelToPatient(g, f, c, r), f.source);
            const v = SPHERE.mu * sphereChord(f.source, w) + CYL.mu * cylinderChord(f.source, w);
            want[r * g.columns + c] = v;
            maxWant = Math.max(maxWant, v);
          }
        expect(maxWant).toBeGreaterThan(0.5); // the objects are in view
        // Where a surface is seen edge-on (the cylinder's caps, the silhouettes) the projection has a step,
        // which voxels blur over a voxel's width: compare only where the analytic image is smooth, i.e.
        // within 5% of its values 2 pixels (1.5 mm at the isocentre) away on every side.
        const smooth = (i: number) => {
          const c = i % g.columns,
            r = Math.floor(i / g.columns);
          for (const [dc, dr] of [
            [-2, 0],
            [2, 0],
            [0, -2],
            [0, 2],
            [-2, -2],
            [2, 2],
            [-2, 2],
            [2, -2],
          ]) {
            const cc = c + dc,
              rr = r + dr;
            if (cc < 0 || rr < 0 || cc >= g.columns || rr >= g.rows) return false;
            if (Math.abs(want[rr * g.columns + cc] / want[i] - 1) > 0.05) return false;
          }
          return true;
        };
        let checked = 0,
          worst = 0,
          sumGot = 0,
          sumWant = 0;
        for (let i = 0; i < img.length; i++) {
          sumGot += img[i];
          sumWant += want[i];
          if (want[i] >= 0.3 * maxWant && smooth(i)) {
            checked++;
            worst = Math.max(worst, Math.abs(img[i] / want[i] - 1));
          }
        }
        expect(checked).toBeGreaterThan(200);
        expect(worst).toBeLessThan(0.01);
        expect(Math.abs(sumGot / sumWant - 1)).toBeLessThan(0.01);
      });
    }

  /** The ray-by-ray kernel (each ray followed on its own; the former default) on the whole image. */
  const byRay = (d: DrrVolume, g: CarmGeometry) => {
    const out = new Float32Array(g.columns * g.rows);
    drrRayKernel(drrParams(d, g), d.mu, d.occupancy, out, 0, g.rows);
    return out;
  };

  it('ray by ray, skipping empty blocks changes nothing: same image as with every block marked occupied', () => {
    const g: CarmGeometry = {
      sidMm: 1100,
      sodMm: 700,
      columns: 120,
      rows: 100,
      columnSpacingMm: 1.3,
      rowSpacingMm: 1.3,
      primaryDeg: 23,
      secondaryDeg: -12,
      isocenter: [5, 5, 990],
    };
    const skipped = byRay(dv, g);
    const full = { ...dv, occupancy: new Uint8Array(dv.occupancy.length).fill(1) };
    const all = byRay(full, g);
    expect(dv.occupancy.some((x) => x === 0)).toBe(true);
    expect(Math.max(...all)).toBeGreaterThan(0.5);
    let d = 0;
    for (let i = 0; i < all.length; i++) d = Math.max(d, Math.abs(all[i] - skipped[i]));
    expect(d).toBe(0);
  });

  it('plane sweep vs ray by ray: equal with the detector parallel to voxel planes, else within 0.2% on average', () => {
    // An axis-aligned copy of the phantom's grid: AP and lateral views then have detector rows and
    // columns along voxel axes.
    const straight = createVolume({
      data: vol.data,
      dims: vol.dims,
      indexToPatient: indexToPatientFrom([-50, -45, 940], [0.9, 1.0, 1.1]),
    });
    const ds = prepareDrrVolume(straight, { values: 'mu', wasm: false });
    const cases: [DrrVolume, number, number, boolean][] = [
      [ds, 0, 0, true],
      [ds, 90, 0, true],
      [ds, 0, -30, false],
      [ds, 25, 35, false],
      [dvJs, 0, 0, false],
      [dvJs, -70, 15, false],
    ];
    for (const [d, a, b, aligned] of cases) {
      const g: CarmGeometry = {
        sidMm: 1100,
        sodMm: 700,
        columns: 150,
        rows: 140,
        columnSpacingMm: 1.1,
        rowSpacingMm: 1.1,
        primaryDeg: a,
        secondaryDeg: b,
        isocenter: [0, 0, 990],
      };
      const want = byRay(d, g);
      const got = renderLineIntegrals(d, g);
      let max = 0,
        worst = 0,
        sum = 0;
      for (let i = 0; i < want.length; i++) max = Math.max(max, want[i]);
      expect(max).toBeGreaterThan(0.5);
      for (let i = 0; i < want.length; i++) {
        worst = Math.max(worst, Math.abs(got[i] - want[i]));
        sum += Math.abs(got[i] - want[i]);
      }
      if (aligned) {
        expect(worst / max).toBeLessThan(1e-6);
      } else {
        // The pixels interpolate a grid of rays at the detector's own density: near edges seen edge-on
        // that is a fraction of a pixel's blur, elsewhere nothing.
        expect(sum / want.length / max).toBeLessThan(0.002);
        expect(worst / max).toBeLessThan(0.08);
      }
    }
  });

  it('WebAssembly and JavaScript row loops agree to float32 rounding (one and several samples per plane)', () => {
    for (const [a, b, spacing] of [
      [0, 0, 1.5],
      [-35, 20, 1.5],
      [40, 30, 0.6],
    ]) {
      const g: CarmGeometry = {
        sidMm: 1100,
        sodMm: 700,
        columns: 130,
        rows: 110,
        columnSpacingMm: 1.3,
        rowSpacingMm: 1.3,
        primaryDeg: a,
        secondaryDeg: b,
        isocenter: [0, 0, 990],
      };
      const x = renderLineIntegrals(dv, g, undefined, 0, g.rows, { maxSampleSpacingVoxels: spacing });
      const y = renderLineIntegrals(dvJs, g, undefined, 0, g.rows, { maxSampleSpacingVoxels: spacing });
      let max = 0,
        worst = 0;
      for (let i = 0; i < y.length; i++) {
        max = Math.max(max, y[i]);
        worst = Math.max(worst, Math.abs(x[i] - y[i]));
      }
      expect(max).toBeGreaterThan(0.5);
      expect(worst / max).toBeLessThan(1e-5);
    }
  });

  it('a lateral view gives the same image from the j-fastest copy of a shared volume', () => {
    const sh = prepareDrrVolume(vol, { values: 'mu', wasm: 'shared' });
    const g: CarmGeometry = {
      sidMm: 1100,
      sodMm: 700,
      columns: 120,
      rows: 100,
      columnSpacingMm: 1.3,
      rowSpacingMm: 1.3,
      primaryDeg: 100,
      secondaryDeg: 5,
      isocenter: [0, 0, 990],
    };
    expect(drrSweepAxis(drrParams(sh, g))).toBe(0);
    const before = renderLineIntegrals(sh, g);
    expect(addDrrTransposedCopy(sh)).toBe(true);
    expect(drrParams(sh, g)[DRR_PARAM.transposedJAddress]).toBe(defined(sh.simd, 'shared SIMD memory').transposedJ);
    const after = renderLineIntegrals(sh, g);
    expect(Math.max(...after)).toBeGreaterThan(0.5);
    expect(Array.from(after)).toEqual(Array.from(before));
    // Not for a volume in unshared memory: growing it would detach mu.
    expect(addDrrTransposedCopy(dv)).toBe(false);
  });

  it('an AP view gives the same image from the copy of a shared volume with contiguous planes of j', () => {
    const sh = prepareDrrVolume(vol, { values: 'mu', wasm: 'shared' });
    // Tilted and oblique, so that the virtual rays are not the pixels, and one not between planes (sub 1).
    for (const [a, b] of [
      [8, 6],
      [-20, 25],
    ]) {
      const g: CarmGeometry = {
        sidMm: 1100,
        sodMm: 700,
        columns: 120,
        rows: 100,
        columnSpacingMm: 1.3,
        rowSpacingMm: 1.3,
        primaryDeg: a,
        secondaryDeg: b,
        isocenter: [0, 0, 990],
      };
      const fresh = prepareDrrVolume(vol, { values: 'mu', wasm: 'shared' });
      expect(drrSweepAxis(drrParams(fresh, g))).toBe(1);
      const before = renderLineIntegrals(fresh, g);
      expect(addDrrPlanesJCopy(sh)).toBe(true);
      const sm = defined(sh.simd, 'shared SIMD memory');
      expect(drrParams(sh, g)[DRR_PARAM.planesJAddress]).toBe(sm.planesJ);
      // The copy holds each voxel (i, j, k) at i + nx (k + nz j).
      const [nx, ny, nz] = sh.dims;
      const copy = new Uint16Array(sm.memory.buffer, defined(sm.planesJ, 'copy'), nx * ny * nz);
      expect(copy[3 + nx * (nz - 2 + nz * (ny - 3))]).toBe(sh.mu[3 + nx * (ny - 3 + ny * (nz - 2))]);
      const after = renderLineIntegrals(sh, g);
      expect(Math.max(...after)).toBeGreaterThan(0.5);
      expect(Array.from(after)).toEqual(Array.from(before));
    }
    // Not for a volume in unshared memory.
    expect(addDrrPlanesJCopy(dv)).toBe(false);
  });

  it('a row has the same value whatever band it is rendered in', () => {
    const g: CarmGeometry = {
      sidMm: 1100,
      sodMm: 700,
      columns: 97,
      rows: 83,
      columnSpacingMm: 1.5,
      rowSpacingMm: 1.5,
      primaryDeg: -35,
      secondaryDeg: 20,
      isocenter: [3, -2, 992],
    };
    const whole = renderLineIntegrals(dv, g);
    const banded = new Float32Array(whole.length);
    for (const [r0, r1] of [
      [0, 1],
      [1, 30],
      [30, 31],
      [31, 83],
    ])
      renderLineIntegrals(dv, g, banded, r0, r1);
    expect(Math.max(...whole)).toBeGreaterThan(0.5);
    expect(Array.from(banded)).toEqual(Array.from(whole));
  });

  it('a fan too wide for one plane axis falls back to ray-by-ray casting', () => {
    // 2 m of detector 150 mm from the focal spot: edge rays at 80 degrees from the central one.
    const g: CarmGeometry = {
      sidMm: 180,
      sodMm: 100,
      columns: 100,
      rows: 20,
      columnSpacingMm: 20,
      rowSpacingMm: 2,
      primaryDeg: 10,
      secondaryDeg: 0,
      isocenter: [0, 0, 990],
    };
    const want = byRay(dv, g);
    expect(Math.max(...want)).toBeGreaterThan(0.5);
    expect(Array.from(renderLineIntegrals(dv, g))).toEqual(Array.from(want));
  });

  it('a ray that misses the grid reads 0, and a band render leaves other rows untouched', () => {
    const g: CarmGeometry = {
      sidMm: 1100,
      sodMm: 700,
      columns: 40,
      rows: 40,
      columnSpacingMm: 1,
      rowSpacingMm: 1,
      primaryDeg: 0,
      secondaryDeg: 0,
      isocenter: [500, 0, 990], // grid far to the side
    };
    const out = renderLineIntegrals(dv, g);
    expect(Math.max(...out)).toBe(0);
    const g2 = { ...g, isocenter: [12, -8, 1003] as V };
    const band = new Float32Array(1600).fill(-1);
    renderLineIntegrals(dv, g2, band, 10, 20);
    expect(band[0]).toBe(-1);
    expect(band[39 * 40]).toBe(-1);
    expect(band[15 * 40 + 20]).toBeGreaterThan(0.5);
  });
});

describe('DRR parameter block', () => {
  const keys = Object.keys(DRR_PARAM) as (keyof DrrParamFields)[];
  /** Fields with a distinct value in every slot: field n holds 100 n + component. */
  const distinct = (): DrrParamFields => {
    const f = {} as Record<string, number | number[]>;
    keys.forEach((k, n) => {
      f[k] = [
        'columns',
        'rows',
        'blockShift',
        'samplesPerPlane',
        'muScale',
        'maxSampleSpacingVoxels',
        'transposedJAddress',
        'planesJAddress',
      ].includes(k)
        ? 100 * n
        : [100 * n, 100 * n + 1, 100 * n + 2];
    });
    return f as unknown as DrrParamFields;
  };

  it('names every one of the 35 slots exactly once (9 vector fields of 3, 8 scalars)', () => {
    const f = distinct();
    const owner = new Array<string | undefined>(DRR_PARAMS_LENGTH);
    for (const k of keys) {
      const size = typeof f[k] === 'number' ? 1 : 3;
      for (let a = 0; a < size; a++) {
        expect(owner[DRR_PARAM[k] + a]).toBeUndefined();
        owner[DRR_PARAM[k] + a] = k;
      }
    }
    expect(DRR_PARAMS_LENGTH).toBe(35);
    expect(owner.filter((o) => o !== undefined).length).toBe(35);
    expect(keys.filter((k) => typeof f[k] !== 'number').length).toBe(9);
  });

  it('packs each field at the slots its name gives, and refuses a block with too few slots', () => {
    const f = distinct();
    const p = packDrrParams(f, new Float64Array(DRR_PARAMS_LENGTH).fill(NaN));
    expect(p.every(Number.isFinite)).toBe(true);
    keys.forEach((k, n) => {
      const v = f[k];
      if (typeof v === 'number') expect(p[DRR_PARAM[k]]).toBe(100 * n);
      else for (let a = 0; a < 3; a++) expect(p[DRR_PARAM[k] + a]).toBe(100 * n + a);
    });
    expect(() => packDrrParams(f, new Float64Array(33))).toThrow(DrrError);
  });

  it('describe the focal spot and the rays as the C-arm frame does (independent pinhole, < 1e-9 mm)', () => {
    const vol = createVolume({
      data: new Float32Array(40 * 30 * 20),
      dims: [40, 30, 20],
      indexToPatient: indexToPatientFrom(
        [-20, 10, 950],
        [0.8, 1.1, 1.7],
        [
          [0.6, 0.8, 0],
          [-0.8, 0.6, 0],
          [0, 0, -1],
        ],
      ),
    });
    const d = prepareDrrVolume(vol, { values: 'mu', wasm: false });
    const g: CarmGeometry = {
      sidMm: 1150,
      sodMm: 720,
      columns: 31,
      rows: 23,
      columnSpacingMm: 1.7,
      rowSpacingMm: 1.3,
      primaryDeg: -28,
      secondaryDeg: 33,
      isocenter: [4, -6, 960],
    };
    const fr = carmFrame(g);
    const f = drrParamFields(d, g);
    const toIndex = (p: V): V => mat4TransformPoint([0, 0, 0], vol.patientToIndex, p) as V;
    const src = toIndex(fr.source);
    for (let a = 0; a < 3; a++) expect(Math.abs(f.sourceIndex[a] - src[a])).toBeLessThan(1e-9);
    // The ray to pixel (c, r), in mm and in index space, ends on the pixel's centre on the detector.
    for (const [c, r] of [
      [0, 0],
      [30, 0],
      [0, 22],
      [17, 9],
    ]) {
      const want = sub(pixelToPatient(g, fr, c, r), fr.source);
      const wantIndex = sub(toIndex(pixelToPatient(g, fr, c, r)), src);
      for (let a = 0; a < 3; a++) {
        expect(Math.abs(f.rayMm[a] + c * f.rayMmPerColumn[a] + r * f.rayMmPerRow[a] - want[a])).toBeLessThan(1e-9);
        const got = f.rayIndex[a] + c * f.rayIndexPerColumn[a] + r * f.rayIndexPerRow[a];
        expect(Math.abs(got - wantIndex[a])).toBeLessThan(1e-9);
      }
    }
    expect(f.dims).toEqual([40, 30, 20]);
    expect([f.columns, f.rows]).toEqual([31, 23]);
    expect(f.transposedJAddress).toBe(-1); // no WebAssembly memory, so no j-fastest copy
    expect(f.planesJAddress).toBe(-1);
    expect(Array.from(drrParams(d, g))).toEqual(Array.from(packDrrParams(f)));
  });

  it("the kernels' source text alone renders the same image as the module (what workers run)", () => {
    const vol = phantom();
    const d = prepareDrrVolume(vol, { values: 'mu', wasm: false });
    const g: CarmGeometry = {
      sidMm: 1100,
      sodMm: 700,
      columns: 64,
      rows: 48,
      columnSpacingMm: 2.5,
      rowSpacingMm: 2.5,
      primaryDeg: -35,
      secondaryDeg: 20,
      isocenter: [0, 0, 990],
    };
    // The point is to run the kernel source text alone, as workers do: the Function constructor is intended.
    // eslint-disable-next-line @typescript-eslint/no-implied-eval, @typescript-eslint/no-unsafe-call
    const kernel = new Function(
      `var __name = (f) => f;\n${drrKernelSource()}\nreturn drrKernel;`,
    )() as typeof drrKernel;
    const want = renderLineIntegrals(d, g);
    const got = new Float32Array(want.length);
    kernel(drrParams(d, g), d.mu, d.occupancy, got, 0, g.rows);
    expect(Math.max(...want)).toBeGreaterThan(0.5);
    expect(Array.from(got)).toEqual(Array.from(want));
  });
});

describe('attenuation model', () => {
  it('interpolates the NIST table: water at 60 keV is 0.2059 cm2/g', () => {
    expect(linearAttenuationPerMm('water', 60)).toBeCloseTo(0.02059, 6);
    // log-log between 50 (0.2269) and 60 keV (0.2059): 55 keV
    const want =
      Math.exp(Math.log(0.2269) + (Math.log(55 / 50) / Math.log(60 / 50)) * (Math.log(0.2059) - Math.log(0.2269))) / 10;
    expect(linearAttenuationPerMm('water', 55)).toBeCloseTo(want, 9);
  });
  it('bone gains on water at lower tube voltage; cortical bone lands near +1500..2000 HU at 120 kV', () => {
    const r70 = effectiveAttenuationPerMm('bone', { kvp: 70 }) / effectiveAttenuationPerMm('water', { kvp: 70 });
    const r120 = effectiveAttenuationPerMm('bone', { kvp: 120 }) / effectiveAttenuationPerMm('water', { kvp: 120 });
    expect(r70).toBeGreaterThan(r120);
    const h = huToMu({ kvp: 75 });
    expect(h.boneHuAtCt).toBeGreaterThan(1300);
    expect(h.boneHuAtCt).toBeLessThan(2200);
    // 0 HU is water; -1000 is air (below airHu: 0); the bone HU maps to bone.
    expect(h.lut[0 - h.hu0]).toBeCloseTo(h.muWater, 7);
    expect(h.lut[-1000 - h.hu0]).toBe(0);
    expect(h.lut[Math.round(h.boneHuAtCt) - h.hu0]).toBeCloseTo(h.muBone, 4);
    expect(h.lut[h.lut.length - 1]).toBeCloseTo(h.muMetal, 6);
    expect(h.muMetal).toBeGreaterThan(5 * h.muBone);
  });
});
