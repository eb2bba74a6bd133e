/**
 * Inlet and outlet views on the phantom (1.5 mm), checked against views computed here from the phantom's
 * own geometry: the sacrum's midsagittal plane from the truth's patient rotation, the S1 and S2 levels
 * from the truth's corridors, and the anterior cortex at each level found in the label volume by a finder
 * written for this test (nearest-voxel scans along the direction perpendicular to the S1-S2 line, averaged
 * over 6 mm of the surface so that the voxel staircase cancels). The code under test finds the line
 * tangent to both bodies instead; on the phantom's nearly flat anterior surface the two agree closely. Expected: both views within 1 degree of these, the inlet
 * superimposing the two cortex points (< 2 px), the outlet separating them more than 5 degrees either side.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { generatePhantom, type GeneratedPhantom } from '../phantom/generate.js';
import { phantomAnatomy } from '../plan/anatomy.js';
import { openPlanningCase, planSacralPaths } from '../plan/procedure.js';
import type { PlanPath } from '../plan/model.js';
import { CarmError, carmGeometry, carmPreset, projectPoint, projectionMatrix } from './geometry.js';
import { pelvicViews, type PelvicViews } from './pelvic-views.js';
import type { CarmView } from './views.js';

type P3 = [number, number, number];
const DEG = Math.PI / 180;
const sys = carmPreset('artis-zee-floor');

let ph: GeneratedPhantom;
let planned: PlanPath[];
/** The test's own answer: anterior cortex points and the two views' detector directions. */
let want: { a1: P3; a2: P3; inlet: { primaryDeg: number; secondaryDeg: number }; outlet: typeof want.inlet };

const sub = (a: ArrayLike<number>, b: ArrayLike<number>): P3 => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const norm = (a: P3): P3 => {
  const n = Math.hypot(...a);
  return [a[0] / n, a[1] / n, a[2] / n];
};
const crossP = (a: P3, b: P3): P3 => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
/** DICOM angles of a detector direction, written out again (d = (sin a cos b, -cos a cos b, sin b)). */
const angles = (d: P3) => ({ primaryDeg: Math.atan2(d[0], -d[1]) / DEG, secondaryDeg: Math.asin(d[2]) / DEG });

function independentViews(g: GeneratedPhantom) {
  const t = g.truth;
  // The design frame's x axis in LPS: Rz(aboutZ) Ry(aboutY) (1, 0, 0).
  const az = t.patientRotationDeg.aboutZ * DEG,
    ay = t.patientRotationDeg.aboutY * DEG;
  const n: P3 = [Math.cos(az) * Math.cos(ay), Math.sin(az) * Math.cos(ay), -Math.sin(ay)];
  const o = t.landmarks.s1EndplateCenter;
  const onPlane = (q: P3): P3 => {
    const w = dot(sub(q, o), n);
    return [q[0] - w * n[0], q[1] - w * n[1], q[2] - w * n[2]];
  };
  const mid = (c: { entry: P3; exit: P3 }): P3 => [
    (c.entry[0] + c.exit[0]) / 2,
    (c.entry[1] + c.exit[1]) / 2,
    (c.entry[2] + c.exit[2]) / 2,
  ];
  const l1 = onPlane(mid(t.corridors.S1)),
    l2 = onPlane(mid(t.corridors.S2));
  const c = norm(sub(l2, l1));
  let a = crossP(n, c);
  if (a[1] > 0) a = [-a[0], -a[1], -a[2]];
  const sacrum = new Set(t.boneGroups.sacrum);
  const lab = g.labels;
  const m = lab.patientToIndex;
  const [nx, ny, nz] = lab.dims;
  const isSacrum = (p: P3) => {
    const i = Math.round(m[0] * p[0] + m[1] * p[1] + m[2] * p[2] + m[3]);
    const j = Math.round(m[4] * p[0] + m[5] * p[1] + m[6] * p[2] + m[7]);
    const k = Math.round(m[8] * p[0] + m[9] * p[1] + m[10] * p[2] + m[11]);
    return i >= 0 && j >= 0 && k >= 0 && i < nx && j < ny && k < nz && sacrum.has(lab.data[i + nx * (j + ny * k)]);
  };
  // Most anterior sacrum voxel on each line parallel to a, 0..3 mm either side of the level along the
  // sacral axis; the mean of those points is the cortex at the level.
  const cortex = (l: P3): P3 => {
    const s: P3 = [0, 0, 0];
    let count = 0;
    for (let off = -3; off <= 3 + 1e-9; off += 0.25) {
      let last = -1;
      for (let u = 0; u < 60; u += 0.05) {
        const p: P3 = [0, 1, 2].map((r) => l[r] + off * c[r] + u * a[r]) as P3;
        if (isSacrum(p)) last = u;
        else if (last >= 0 && u - last > 3) break;
      }
      expect(last).toBeGreaterThan(0);
      for (let r = 0; r < 3; r++) s[r] += l[r] + off * c[r] + last * a[r];
      count++;
    }
    return [s[0] / count, s[1] / count, s[2] / count];
  };
  const a1 = cortex(l1),
    a2 = cortex(l2);
  const inlet = norm(sub(a1, a2));
  let outlet = crossP(n, inlet);
  if (outlet[1] > 0) outlet = [-outlet[0], -outlet[1], -outlet[2]];
  return { a1, a2, inlet: angles(inlet), outlet: angles(outlet) };
}

/** Distance (px, 512-pixel image) between the projections of the test's two cortex points. */
function separationPx(v: Pick<CarmView, 'isocenter'>, primaryDeg: number, secondaryDeg: number): number {
  const g = carmGeometry(sys, { primaryDeg, secondaryDeg, isocenter: v.isocenter }, { size: 512 });
  const P = projectionMatrix(g);
  const q1 = projectPoint(P, want.a1),
    q2 = projectPoint(P, want.a2);
  return Math.hypot(q1[0] - q2[0], q1[1] - q2[1]);
}

beforeAll(() => {
  ph = generatePhantom({ voxelMm: 1.5 });
  want = independentViews(ph);
  const pc = openPlanningCase({ ct: ph.ct, labels: ph.labels, anatomy: phantomAnatomy() });
  planned = planSacralPaths(pc, { paths: ['s1', 's2'] }).paths.map((p) => p.path);
}, 120_000);

function expectViews(r: PelvicViews) {
  // The inlet is cranial (detector toward the head), the outlet caudal: about 45 degrees each here
  // (sacral slope 40 deg, anterior cortex of S1-S2 5 deg steeper than the S1 endplate's normal).
  expect(want.inlet.secondaryDeg).toBeGreaterThan(35);
  expect(want.outlet.secondaryDeg).toBeLessThan(-35);
  expect(Math.abs(r.inlet.secondaryDeg - want.inlet.secondaryDeg)).toBeLessThan(1);
  expect(Math.abs(r.inlet.primaryDeg - want.inlet.primaryDeg)).toBeLessThan(1);
  expect(Math.abs(r.outlet.secondaryDeg - want.outlet.secondaryDeg)).toBeLessThan(1);
  expect(Math.abs(r.outlet.primaryDeg - want.outlet.primaryDeg)).toBeLessThan(1);
  expect(r.inlet.reachable && r.outlet.reachable).toBe(true);
  // Inlet: the two anterior cortex points (the test's) project within 2 px of each other.
  expect(separationPx(r.inlet, r.inlet.primaryDeg, r.inlet.secondaryDeg)).toBeLessThan(2);
  // Outlet: they lie farther apart than in the views 5 degrees more cranial or caudal.
  const o = r.outlet;
  const here = separationPx(o, o.primaryDeg, o.secondaryDeg);
  expect(here).toBeGreaterThan(separationPx(o, o.primaryDeg, o.secondaryDeg + 5));
  expect(here).toBeGreaterThan(separationPx(o, o.primaryDeg, o.secondaryDeg - 5));
  // The isocentre lies on the anterior cortex line (within 1 mm of the test's), between S1 and S2.
  const u = norm(sub(want.a1, want.a2));
  const w = sub(r.inlet.isocenter, want.a2);
  const along = dot(w, u);
  expect(Math.hypot(...sub(w, [along * u[0], along * u[1], along * u[2]]))).toBeLessThan(1);
  expect(along).toBeGreaterThan(0);
  expect(along).toBeLessThan(Math.hypot(...sub(want.a1, want.a2)));
}

describe('pelvicViews: CT-predicted inlet and outlet of the phantom', () => {
  it('from the segmentation (phantom anatomy): within 1 degree of the independent views', () => {
    const r = pelvicViews({ labels: ph.labels, anatomy: phantomAnatomy() }, sys);
    expect(r.levelsFrom).toBe('labels');
    expect(r.cortexFrom).toBe('labels');
    expectViews(r);
  });

  it('from the auto-planned S1/S2 paths and the labels: within 1 degree', () => {
    const r = pelvicViews({ paths: planned, labels: ph.labels, anatomy: phantomAnatomy() }, sys);
    expect(r.levelsFrom).toBe('paths');
    expectViews(r);
  });

  it('from the plan alone (auto-planned S1/S2 paths, cortex found in the plan CT): within 1 degree', () => {
    const r = pelvicViews({ paths: planned, ct: ph.ct }, sys);
    expect(r.levelsFrom).toBe('paths');
    expect(r.cortexFrom).toBe('ct');
    expectViews(r);
  });

  it('paths without any image: the bodies axis, flagged as approximate (degrees off)', () => {
    const r = pelvicViews({ paths: planned }, sys);
    expect(r.cortexFrom).toBe('none');
    expect(r.notes.join(' ')).toMatch(/not the anterior cortex/);
    // The S1 and S2 paths run through the bodies, not along the anterior cortex: the truth's corridor axes
    // give a line about 5 degrees steeper (body depth 14.0 mm at S1, 12.3 mm at S2, 19 mm apart), the
    // auto-planned paths (placed for clearance, not depth) 9.5 degrees here. Hence the note.
    const off = r.inlet.secondaryDeg - want.inlet.secondaryDeg;
    expect(off).toBeGreaterThan(2);
    expect(off).toBeLessThan(15);
  });

  it('without S1/S2 paths or a segmentation: a CarmError saying what is needed', () => {
    expect(() => pelvicViews({ paths: planned.filter((p) => p.id === 's1') }, sys)).toThrow(CarmError);
    expect(() => pelvicViews({}, sys)).toThrow(/S1 and S2 paths or give a segmentation/);
  });

  it('a C-arm that cannot tilt 45 degrees: unreachable, with the nearest reachable angles', () => {
    const small = carmPreset('artis-zee-floor', { secondaryLimitsDeg: [-30, 30] });
    const r = pelvicViews({ labels: ph.labels, anatomy: phantomAnatomy() }, small);
    expect(r.inlet.reachable).toBe(false);
    // The nearest reachable inlet is the cranial limit, (45.4 - 30) degrees off the line, within 1.
    expect(r.inlet.alternative?.secondaryDeg).toBeCloseTo(30, 3);
    expect(Math.abs((r.inlet.alternative?.errorDeg ?? 0) - (r.inlet.secondaryDeg - 30))).toBeLessThan(1);
    expect(r.outlet.alternative?.secondaryDeg).toBeCloseTo(-30, 3);
  });
});
