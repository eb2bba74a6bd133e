import { describe, expect, it } from 'vitest';
import {
  CARM_PRESETS,
  CarmError,
  anglesForDetectorDirection,
  carmFrame,
  carmGeometry,
  carmPreset,
  detectorDirection,
  projectPoint,
  projectionMatrix,
  type CarmGeometry,
} from './geometry.js';
import { bullseyeForIsocenter, bullseyeView, progressView, type PathLike } from './views.js';
import { uniformSource as rng } from '../math/random.js';
import { defined } from '../test-helpers/defined.js';

type V = [number, number, number];
const mul = (M: number[][], x: V): V => [0, 1, 2].map((r) => M[r][0] * x[0] + M[r][1] * x[1] + M[r][2] * x[2]) as V;
const mm = (A: number[][], B: number[][]) =>
  A.map((row) => [0, 1, 2].map((c) => row[0] * B[0][c] + row[1] * B[1][c] + row[2] * B[2][c]));

/**
 * Independent pinhole: rotation matrices written out from docs/conventions.md (R = Rz(a) Rx(-b)),
 * the detector as a plane with a corner pixel, and a ray-plane intersection.
 */
function pinhole(g: CarmGeometry, p: V): [number, number] {
  const a = (g.primaryDeg * Math.PI) / 180,
    b = (g.secondaryDeg * Math.PI) / 180;
  const Rz = [
    [Math.cos(a), -Math.sin(a), 0],
    [Math.sin(a), Math.cos(a), 0],
    [0, 0, 1],
  ];
  const Rx = [
    [1, 0, 0],
    [0, Math.cos(-b), -Math.sin(-b)],
    [0, Math.sin(-b), Math.cos(-b)],
  ];
  const R = mm(Rz, Rx);
  const d = mul(R, [0, -1, 0]);
  const u = mul(R, [1, 0, 0]);
  const v = mul(R, [0, 0, -1]);
  const S: V = [0, 1, 2].map((i) => g.isocenter[i] - g.sodMm * d[i]) as V;
  const C: V = [0, 1, 2].map((i) => S[i] + g.sidMm * d[i]) as V;
  // Centre of pixel (0,0): half the image back along u and v from the detector centre.
  const corner: V = [0, 1, 2].map(
    (i) => C[i] - ((g.columns - 1) / 2) * g.columnSpacingMm * u[i] - ((g.rows - 1) / 2) * g.rowSpacingMm * v[i],
  ) as V;
  const ray: V = [p[0] - S[0], p[1] - S[1], p[2] - S[2]];
  // Plane through C with normal d: S + t ray, (S + t ray - C).d = 0.
  const t =
    ((C[0] - S[0]) * d[0] + (C[1] - S[1]) * d[1] + (C[2] - S[2]) * d[2]) /
    (ray[0] * d[0] + ray[1] * d[1] + ray[2] * d[2]);
  const hit: V = [S[0] + t * ray[0] - corner[0], S[1] + t * ray[1] - corner[1], S[2] + t * ray[2] - corner[2]];
  return [
    (hit[0] * u[0] + hit[1] * u[1] + hit[2] * u[2]) / g.columnSpacingMm,
    (hit[0] * v[0] + hit[1] * v[1] + hit[2] * v[2]) / g.rowSpacingMm,
  ];
}

function geom(over: Partial<CarmGeometry> = {}): CarmGeometry {
  return {
    sidMm: 1200,
    sodMm: 785,
    columns: 640,
    rows: 480,
    columnSpacingMm: 0.6,
    rowSpacingMm: 0.6,
    primaryDeg: 0,
    secondaryDeg: 0,
    isocenter: [10, -20, 950],
    ...over,
  };
}

describe('projection matrix', () => {
  it('agrees with a direct pinhole computation within 0.05 px for 500 random poses and points', () => {
    const r = rng(7);
    let worst = 0;
    for (let n = 0; n < 500; n++) {
      const g = geom({
        primaryDeg: -180 + 360 * r(),
        secondaryDeg: -89 + 178 * r(),
        sodMm: 500 + 400 * r(),
        columns: 100 + Math.floor(900 * r()),
        rows: 100 + Math.floor(900 * r()),
        columnSpacingMm: 0.1 + r(),
        rowSpacingMm: 0.1 + r(),
        isocenter: [-300 + 600 * r(), -300 + 600 * r(), 500 + 1000 * r()],
      });
      g.sidMm = g.sodMm + 200 + 500 * r();
      const P = projectionMatrix(g);
      for (let k = 0; k < 5; k++) {
        // Points within 150 mm of the isocentre: always between source and detector.
        const p: V = [0, 1, 2].map((i) => g.isocenter[i] - 150 + 300 * r()) as V;
        const got = projectPoint(P, p);
        const want = pinhole(g, p);
        worst = Math.max(worst, Math.abs(got[0] - want[0]), Math.abs(got[1] - want[1]));
      }
    }
    expect(worst).toBeLessThan(0.05);
  });

  it('maps the isocentre to the detector centre and the source plane to infinity', () => {
    const g = geom({ primaryDeg: 33, secondaryDeg: -21 });
    const P = projectionMatrix(g);
    const c = projectPoint(P, g.isocenter);
    expect(c[0]).toBeCloseTo(319.5, 9);
    expect(c[1]).toBeCloseTo(239.5, 9);
    const f = carmFrame(g);
    expect(Number.isNaN(projectPoint(P, f.source)[0])).toBe(true);
  });

  it('images 10 mm at the isocentre, parallel to the detector, as 10 * SID/SOD mm', () => {
    const g = geom({ primaryDeg: -40, secondaryDeg: 25 });
    const f = carmFrame(g);
    const P = projectionMatrix(g);
    const a = projectPoint(P, g.isocenter);
    const b = projectPoint(P, [
      g.isocenter[0] + 10 * f.u[0],
      g.isocenter[1] + 10 * f.u[1],
      g.isocenter[2] + 10 * f.u[2],
    ]);
    expect((b[0] - a[0]) * g.columnSpacingMm).toBeCloseTo((10 * 1200) / 785, 9);
    expect(b[1] - a[1]).toBeCloseTo(0, 9);
  });
});

describe('C-arm angle conventions (docs/conventions.md)', () => {
  const iso: V = [0, 0, 0];
  it('AP (0, 0): source posterior, detector anterior, patient right on the image left, head at the top', () => {
    const g = geom({ isocenter: iso });
    const f = carmFrame(g);
    expect(f.source[1]).toBeCloseTo(785, 9); // +y = posterior: below the table
    expect(f.detectorCenter[1]).toBeCloseTo(-415, 9);
    const P = projectionMatrix(g);
    const right = projectPoint(P, [-50, 0, 0]); // LPS: -x = patient right
    const head = projectPoint(P, [0, 0, 50]);
    expect(right[0]).toBeLessThan(319.5);
    expect(head[1]).toBeLessThan(239.5);
  });
  it('LAO 90 puts the detector on the patient left, RAO 90 on the right', () => {
    expect(carmFrame(geom({ isocenter: iso, primaryDeg: 90 })).detectorCenter[0]).toBeCloseTo(415, 9);
    expect(carmFrame(geom({ isocenter: iso, primaryDeg: -90 })).detectorCenter[0]).toBeCloseTo(-415, 9);
  });
  it('cranial 30 tilts the detector toward the head, caudal toward the feet', () => {
    const cr = carmFrame(geom({ isocenter: iso, secondaryDeg: 30 }));
    expect(cr.detectorCenter[2]).toBeCloseTo(415 * 0.5, 9);
    expect(cr.detectorCenter[1]).toBeCloseTo(-415 * Math.cos(Math.PI / 6), 9);
    expect(carmFrame(geom({ isocenter: iso, secondaryDeg: -30 })).detectorCenter[2]).toBeCloseTo(-207.5, 9);
  });
  it('at LAO 90 the head stays at the top and the image left is anterior', () => {
    const P = projectionMatrix(geom({ isocenter: iso, primaryDeg: 90 }));
    expect(projectPoint(P, [0, 0, 40])[1]).toBeLessThan(239.5);
    expect(projectPoint(P, [0, -40, 0])[0]).toBeLessThan(319.5); // -y = anterior
  });
  it('detector frame: u, v, d orthonormal, u x v = -d (toward the source)', () => {
    const f = carmFrame(geom({ primaryDeg: 17, secondaryDeg: 41 }));
    const c = [f.u[1] * f.v[2] - f.u[2] * f.v[1], f.u[2] * f.v[0] - f.u[0] * f.v[2], f.u[0] * f.v[1] - f.u[1] * f.v[0]];
    for (let i = 0; i < 3; i++) expect(c[i]).toBeCloseTo(-f.d[i], 12);
  });
  it('angles <-> detector direction round trip', () => {
    const r = rng(3);
    for (let n = 0; n < 200; n++) {
      const a = -179 + 358 * r(),
        b = -89 + 178 * r();
      const back = anglesForDetectorDirection(detectorDirection(a, b));
      expect(back.primaryDeg).toBeCloseTo(a, 9);
      expect(back.secondaryDeg).toBeCloseTo(b, 9);
    }
    expect(anglesForDetectorDirection([1, 0, 0])).toEqual({ primaryDeg: 90, secondaryDeg: 0 });
  });
  it('rejects impossible geometry with a typed error', () => {
    expect(() => projectionMatrix(geom({ sidMm: 700 }))).toThrow(CarmError);
    expect(() => projectionMatrix(geom({ secondaryDeg: 95 }))).toThrow(CarmError);
    expect(() => carmPreset('nope')).toThrow(/unknown C-arm preset "nope"/);
  });
  it('presets: detector of the Artis preset is 1920 x 2480 at 0.154 mm; size resamples the width', () => {
    const s = carmPreset('artis-zee-floor');
    const g = carmGeometry(s, { primaryDeg: 0, secondaryDeg: 0, isocenter: iso }, { size: 512 });
    expect(g.columns).toBe(512);
    expect(g.columnSpacingMm).toBeCloseTo((1920 * 0.154) / 512, 12);
    expect(g.rows).toBe(Math.round((2480 * 0.154) / g.columnSpacingMm));
    expect(carmPreset('artis-zee-floor', { sidMm: 1000 }).sidMm).toBe(1000);
    expect(Object.keys(CARM_PRESETS).length).toBeGreaterThanOrEqual(2);
  });
});

describe("bull's-eye and progress views", () => {
  const system = carmPreset('artis-zee-floor');
  const r = rng(11);
  const paths: PathLike[] = [];
  for (let n = 0; n < 60; n++) {
    const entry: V = [-150 + 300 * r(), -100 + 200 * r(), 900 + 100 * r()];
    // Directions within 50 degrees of some horizontal/oblique axis so most views are reachable.
    const th = 2 * Math.PI * r(),
      ph = (-45 + 90 * r()) * (Math.PI / 180);
    const len = 30 + 120 * r();
    const target: V = [
      entry[0] + len * Math.cos(ph) * Math.cos(th),
      entry[1] + len * Math.cos(ph) * Math.sin(th),
      entry[2] + len * Math.sin(ph),
    ];
    paths.push({ id: `p${n}`, diameterMm: 7.3, entry, target });
  }

  it("bull's-eye: entry and target project within 0.5 px of each other (any reachable or not)", () => {
    for (const p of paths) {
      const v = bullseyeView(p, system);
      const g = geom({
        ...v,
        sidMm: system.sidMm,
        sodMm: system.sodMm,
        columnSpacingMm: 0.154,
        rowSpacingMm: 0.154,
        columns: 1920,
        rows: 2480,
      });
      const P = projectionMatrix(g);
      const a = projectPoint(P, p.entry),
        b = projectPoint(P, p.target);
      expect(Math.hypot(a[0] - b[0], a[1] - b[1])).toBeLessThan(0.5);
    }
  });

  it("bull's-eye with a fixed isocentre puts the focal spot on the path line", () => {
    let solved = 0;
    for (const p of paths) {
      const iso: V = [p.target[0] + 40, p.target[1] - 30, p.target[2] + 20];
      const v = bullseyeForIsocenter(p, system, iso);
      if (!v) continue;
      solved++;
      expect(v.isocenter).toEqual(iso);
      const P = projectionMatrix(
        geom({ ...v, sidMm: system.sidMm, sodMm: system.sodMm, columnSpacingMm: 0.154, rowSpacingMm: 0.154 }),
      );
      const a = projectPoint(P, p.entry),
        b = projectPoint(P, p.target);
      expect(Math.hypot(a[0] - b[0], a[1] - b[1])).toBeLessThan(0.5);
    }
    expect(solved).toBe(paths.length); // iso 54 mm from the target: the line always reaches SOD
  });

  it('progress: projected length = true length x SID/SOD within 1%', () => {
    let reachable = 0;
    for (const p of paths) {
      const v = progressView(p, system);
      if (v.reachable) reachable++;
      const g = geom({
        ...v,
        sidMm: system.sidMm,
        sodMm: system.sodMm,
        columnSpacingMm: 0.3,
        rowSpacingMm: 0.3,
        columns: 1500,
        rows: 1500,
      });
      const P = projectionMatrix(g);
      const a = projectPoint(P, p.entry),
        b = projectPoint(P, p.target);
      const len = Math.hypot(p.target[0] - p.entry[0], p.target[1] - p.entry[1], p.target[2] - p.entry[2]);
      const projMm = Math.hypot(a[0] - b[0], a[1] - b[1]) * 0.3;
      expect(Math.abs(projMm / (len * (system.sidMm / system.sodMm)) - 1)).toBeLessThan(0.01);
      // Central ray perpendicular to the path.
      const d = detectorDirection(v.primaryDeg, v.secondaryDeg);
      expect(
        Math.abs(
          d[0] * (p.target[0] - p.entry[0]) + d[1] * (p.target[1] - p.entry[1]) + d[2] * (p.target[2] - p.entry[2]),
        ) / len,
      ).toBeLessThan(1e-9);
    }
    expect(reachable).toBe(paths.length);
  });

  it("a cranio-caudal path has no reachable bull's-eye on a +-55 degree secondary: nearest is 35 degrees off", () => {
    const p: PathLike = { id: 'cc', diameterMm: 3, entry: [0, 0, 1000], target: [0, 0, 900] };
    const v = bullseyeView(p, system);
    expect(v.reachable).toBe(false);
    expect(v.secondaryDeg).toBeCloseTo(90, 9); // detector toward the entry, i.e. the head
    const alt = defined(v.alternative, 'the nearest reachable alternative view');
    expect(alt.errorDeg).toBeCloseTo(90 - 55, 4);
    expect(Math.abs(alt.secondaryDeg)).toBeCloseTo(55, 6);
  });

  it("a left-right path (trans-sacral) gets a lateral bull's-eye and an AP progress view", () => {
    const p: PathLike = { id: 's1', diameterMm: 7.3, entry: [-70, 20, 980], target: [70, 20, 980] };
    const b = bullseyeView(p, system);
    expect(b.primaryDeg).toBeCloseTo(-90, 9); // entry on the right: detector on the right = RAO 90
    expect(b.secondaryDeg).toBeCloseTo(0, 9);
    expect(b.isocenter).toEqual([70, 20, 980]);
    const pr = progressView(p, system);
    expect(pr.primaryDeg).toBeCloseTo(0, 9);
    expect(pr.secondaryDeg).toBeCloseTo(0, 9);
    expect(pr.isocenter).toEqual([0, 20, 980]);
  });

  it('an AP path: progress view nearest AP is lateral (90 degrees), limited to the reachable side', () => {
    const p: PathLike = { id: 'ap', diameterMm: 3, entry: [0, -100, 950], target: [0, 0, 950] };
    const narrow = carmPreset('artis-zee-floor', { primaryLimitsDeg: [-100, 60] });
    const v = progressView(p, narrow);
    expect(v.reachable).toBe(true);
    expect(Math.abs(v.primaryDeg)).toBeCloseTo(90, 9);
    expect(v.primaryDeg).toBeLessThan(0);
    expect(v.secondaryDeg).toBeCloseTo(0, 9);
  });
});
