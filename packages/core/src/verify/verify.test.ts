/**
 * Placement verification on the phantom's pins stage (1 mm voxels: the pins are under three voxels
 * across, a harder fit than the default 0.8 mm). Truth comes from truth.json (each instrument's tip and
 * hub, its seeded entry offset and angle, the foramen channels) and from the test's own geometry (the
 * pins it draws and erases); never from the code under test.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { generatePhantom, type GeneratedPhantom } from '../phantom/generate.js';
import type { ForamenTruth, InstrumentTruth, PhantomTruth } from '../phantom/types.js';
import { mat4FromRows, mat4Invert, mat4Multiply } from '../math/mat4.js';
import type { Point3 } from '../math/vec3.js';
import type { PlanPath } from '../plan/model.js';
import { createVolume, type Volume } from '../volume/volume.js';
import { defined } from '../test-helpers/defined.js';
import { phantomVerifyAnatomy } from './along.js';
import { findForamina, foraminaSourceOf } from './foramina.js';
import { verifyPlacement, type VerificationReport } from './verify.js';

const VOXEL_MM = 1;
/** The phantom's steel (truth.nominalHu) and CT blur, used to draw the test's own pins. */
let steelHu = 3000;
let blurMm = 0.6;

let pins: GeneratedPhantom;
let planStage: GeneratedPhantom;
let truth: PhantomTruth;
let plan: PlanPath[];

/** The phantom's planned paths: the corridor axes (entry to exit) and the alar paths. */
function phantomPlan(t: PhantomTruth): PlanPath[] {
  const d = (k: 'guidepin' | 'trocar') => (k === 'guidepin' ? 2.8 : 3.05);
  return [
    {
      id: 's1',
      name: 'S1',
      kind: 'guidepin',
      diameterMm: d('guidepin'),
      entry: t.corridors.S1.entry,
      target: t.corridors.S1.exit,
    },
    {
      id: 's2',
      name: 'S2',
      kind: 'guidepin',
      diameterMm: d('guidepin'),
      entry: t.corridors.S2.entry,
      target: t.corridors.S2.exit,
    },
    { id: 'alar-left', name: 'Alar left', kind: 'trocar', diameterMm: d('trocar'), ...t.alarPaths.left },
    { id: 'alar-right', name: 'Alar right', kind: 'trocar', diameterMm: d('trocar'), ...t.alarPaths.right },
  ];
}
const PATH_OF_INSTRUMENT: Record<string, string> = {
  'S1 guidepin': 's1',
  'S2 guidepin': 's2',
  'Alar trocar left': 'alar-left',
  'Alar trocar right': 'alar-right',
};

const sub = (a: ArrayLike<number>, b: ArrayLike<number>): Point3 => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const norm = (a: ArrayLike<number>) => Math.hypot(a[0], a[1], a[2]);
const unit = (a: ArrayLike<number>): Point3 => {
  const l = norm(a);
  return [a[0] / l, a[1] / l, a[2] / l];
};
const along = (p: Point3, v: Point3, t: number): Point3 => [p[0] + t * v[0], p[1] + t * v[1], p[2] + t * v[2]];

/** Distance from p to segment cd. */
function pointSegmentDistance(p: Point3, c: Point3, d: Point3): number {
  const w = unit(sub(d, c));
  const s = Math.min(norm(sub(d, c)), Math.max(0, dot(sub(p, c), w)));
  return norm(sub(p, along(c, w, s)));
}

/** Shortest distance between segments ab and cd (sampled every 0.05 mm on ab, exact on cd). */
function segmentDistance(a: Point3, b: Point3, c: Point3, d: Point3): number {
  const lab = norm(sub(b, a)),
    u = unit(sub(b, a));
  let best = Infinity;
  for (let t = 0; t <= lab; t += 0.05) {
    best = Math.min(best, pointSegmentDistance(along(a, u, t), c, d));
  }
  return best;
}

/** The test's own expectation of a shaft's foramen hits: its surface against each channel's capsule. */
function foramenClearance(f: ForamenTruth, hub: Point3, tip: Point3, radiusMm: number): number {
  const ant = segmentDistance(hub, tip, f.canalPoint, f.center) - f.radiusMm - radiusMm;
  const post = segmentDistance(hub, tip, f.canalPoint, f.posteriorCenter) - f.posteriorRadiusMm - radiusMm;
  return Math.min(ant, post);
}

/** Standard normal CDF (Abramowitz-Stegun 7.1.26 erf, error < 1.5e-7). */
function phi(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * z);
  const erf =
    1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-z * z);
  return x >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

/** Visit each voxel within `reach` mm of segment hub-tip: callback(offset, radial mm, axial mm from hub). */
function forShaft(
  v: Volume,
  hub: Point3,
  tip: Point3,
  reach: number,
  fn: (o: number, rho: number, t: number, p: Point3) => void,
) {
  const u = unit(sub(tip, hub)),
    L = norm(sub(tip, hub));
  const [nx, ny, nz] = v.dims;
  const lo = [0, 1, 2].map((a) => Math.min(hub[a], tip[a]) - reach),
    hi = [0, 1, 2].map((a) => Math.max(hub[a], tip[a]) + reach);
  // Axis-aligned phantom grid: index = (p - origin) / spacing.
  const m = v.indexToPatient;
  const i0 = Math.max(0, Math.floor((lo[0] - m[3]) / m[0])),
    i1 = Math.min(nx - 1, Math.ceil((hi[0] - m[3]) / m[0]));
  const j0 = Math.max(0, Math.floor((lo[1] - m[7]) / m[5])),
    j1 = Math.min(ny - 1, Math.ceil((hi[1] - m[7]) / m[5]));
  const k0 = Math.max(0, Math.floor((lo[2] - m[11]) / m[10])),
    k1 = Math.min(nz - 1, Math.ceil((hi[2] - m[11]) / m[10]));
  for (let k = k0; k <= k1; k++)
    for (let j = j0; j <= j1; j++)
      for (let i = i0; i <= i1; i++) {
        const p: Point3 = [m[3] + i * m[0], m[7] + j * m[5], m[11] + k * m[10]];
        const d = sub(p, hub);
        const t = dot(d, u);
        const rho = norm(sub(d, [t * u[0], t * u[1], t * u[2]]));
        if (rho <= reach && t >= -reach && t <= L + reach) fn(i + nx * (j + ny * k), rho, t, p);
      }
}

/** Replace an instrument by the plan stage's voxels (same seed and grid: the same anatomy and noise). */
function erase(ct: Int16Array, ins: { hub: Point3; tip: Point3; diameterMm: number }) {
  forShaft(pins.ct, ins.hub, ins.tip, ins.diameterMm / 2 + 3, (o) => {
    ct[o] = planStage.ct.data[o];
  });
}

/** Draw a blurred flat-ended steel cylinder (the test's own model of the phantom's pins). */
function drawPin(ct: Int16Array, hub: Point3, tip: Point3, diameterMm: number) {
  const r = diameterMm / 2,
    L = norm(sub(tip, hub)),
    s = blurMm;
  forShaft(pins.ct, hub, tip, r + 4 * s, (o, rho, t) => {
    const f = phi((r - rho) / s) * phi(t / s) * phi((L - t) / s);
    if (f > 1e-3) ct[o] = Math.round(ct[o] + (steelHu - ct[o]) * f);
  });
}

function scanWith(data: Int16Array, indexToPatient = pins.ct.indexToPatient): Volume<Int16Array> {
  return createVolume({ data, dims: pins.ct.dims, indexToPatient, meta: { source: 'test scan' } });
}

beforeAll(() => {
  pins = generatePhantom({ stage: 'pins', voxelMm: VOXEL_MM });
  planStage = generatePhantom({ stage: 'plan', voxelMm: VOXEL_MM });
  truth = pins.truth;
  steelHu = truth.nominalHu.steel;
  blurMm = truth.blurSigmaMm;
  plan = phantomPlan(truth);
});

describe('verifyPlacement on the phantom pins stage', () => {
  let rep: VerificationReport;
  const labels = () => ({ volume: planStage.labels, anatomy: phantomVerifyAnatomy(truth.labels) });

  it('finds every instrument within 0.5 mm and 0.5 deg of its truth', () => {
    rep = verifyPlacement(plan, pins.ct, { labels: labels() });
    expect(rep.unplanned).toEqual([]);
    expect(rep.paths).toHaveLength(4);
    for (const ins of truth.instruments as InstrumentTruth[]) {
      const r = defined(
        rep.paths.find((p) => p.pathId === PATH_OF_INSTRUMENT[ins.name]),
        'match',
      );
      expect(r.status, ins.name).not.toBe('missing');
      const dev = defined(r.deviation, 'deviation');
      // The truth's own deviation figures (instruments.ts draws them; truth.json records them).
      expect(Math.abs(dev.entryOffsetMm - ins.entryOffsetMm), `${ins.name} entry`).toBeLessThan(0.5);
      expect(Math.abs(dev.angleDeg - ins.angleDeg), `${ins.name} angle`).toBeLessThan(0.5);
      expect(Math.abs(dev.tipOffsetMm - ins.tipOffsetMm), `${ins.name} tip offset`).toBeLessThan(0.5);
      // The tip itself, and depth / lateral split computed here from the truth's tip and the plan.
      expect(norm(sub(defined(r.instrument, 'instrument').tip, ins.tip)), `${ins.name} tip`).toBeLessThan(0.5);
      const u = unit(sub(ins.idealTarget, ins.idealEntry));
      const dT = sub(ins.tip, ins.idealTarget);
      const depth = dot(dT, u);
      expect(Math.abs(dev.depthDifferenceMm - depth)).toBeLessThan(0.5);
      expect(Math.abs(dev.lateralAtTargetMm - Math.sqrt(Math.max(0, dot(dT, dT) - depth * depth)))).toBeLessThan(0.5);
      // Verdict from the truth's numbers where they are clear of the tolerance (2 mm, 2 deg).
      const over = ins.entryOffsetMm > 2.5 || ins.tipOffsetMm > 2.5 || ins.angleDeg > 2.5;
      if (over) expect(r.status, ins.name).toBe('fail');
      // Foramen hits: expected from the truth's channels (capsules), where clear of the boundary by 0.5 mm.
      for (const f of truth.foramina) {
        const c = foramenClearance(f, ins.hub, ins.tip, ins.diameterMm / 2);
        const hit = defined(r.instrument, 'instrument').structures.some((h) => h.name === f.name);
        if (c < -0.5) expect(hit, `${ins.name} in ${f.name}`).toBe(true);
        if (c > 0.5) expect(hit, `${ins.name} not in ${f.name}`).toBe(false);
      }
    }
  });

  it('holds to 0.5 mm and 0.5 deg under synthetic metal artifacts', () => {
    // The test's own artifact model around each shaft (axis u, side e1, across e2): a bloom on one side
    // (+600 HU, 1.5 mm wide, just outside the shaft), bright and dark streak bands (+-200 HU, 6 mm
    // period, fading over 4 mm) and a photon-starvation cut through the S1 pin (-1500 HU over 2.5 mm),
    // which splits its metal in two.
    const data = Int16Array.from(pins.ct.data);
    for (const ins of truth.instruments as InstrumentTruth[]) {
      const u = unit(sub(ins.tip, ins.hub)),
        L = norm(sub(ins.tip, ins.hub)),
        r = ins.diameterMm / 2;
      const e1 = unit([u[1], -u[0], 0]);
      const e2: Point3 = [u[1] * e1[2] - u[2] * e1[1], u[2] * e1[0] - u[0] * e1[2], u[0] * e1[1] - u[1] * e1[0]];
      forShaft(pins.ct, ins.hub, ins.tip, 25, (o, rho, t, p) => {
        if (t < -3 || t > L + 3) return;
        const d = sub(p, ins.hub);
        const a1 = dot(d, e1),
          a2 = dot(d, e2);
        let add = 0;
        if (ins.name === 'S1 guidepin' && t > 60 && t < 62.5 && rho < 6) add -= 1500;
        if (rho > r + 0.5) {
          add += 600 * Math.exp(-((rho - r) ** 2) / (2 * 1.5 ** 2)) * Math.max(0, a1 / rho);
          add += 200 * Math.cos((2 * Math.PI * a2) / 6) * Math.exp(-Math.abs(a1) / 4);
        }
        data[o] = Math.max(-1024, Math.min(3071, Math.round(data[o] + add)));
      });
    }
    const r = verifyPlacement(plan, scanWith(data));
    expect(r.unplanned).toEqual([]);
    for (const ins of truth.instruments as InstrumentTruth[]) {
      const p = defined(
        r.paths.find((x) => x.pathId === PATH_OF_INSTRUMENT[ins.name]),
        ins.name,
      );
      const dev = defined(p.deviation, 'deviation');
      expect(norm(sub(defined(p.instrument, 'instrument').tip, ins.tip)), `${ins.name} tip`).toBeLessThan(0.5);
      expect(Math.abs(dev.angleDeg - ins.angleDeg), `${ins.name} angle`).toBeLessThan(0.5);
      expect(Math.abs(dev.entryOffsetMm - ins.entryOffsetMm), `${ins.name} entry`).toBeLessThan(0.5);
    }
  });

  it('names the foramen a pin was moved into', () => {
    const data = Int16Array.from(pins.ct.data);
    const s2 = defined(
      (truth.instruments as InstrumentTruth[]).find((i) => i.name === 'S2 guidepin'),
      'match',
    );
    erase(data, s2);
    // A pin from the S2 entry aimed through the middle of the S2L anterior channel.
    const f = defined(
      truth.foramina.find((x) => x.name === 'S2L'),
      'match',
    );
    const mid: Point3 = [
      (f.canalPoint[0] + f.center[0]) / 2,
      (f.canalPoint[1] + f.center[1]) / 2,
      (f.canalPoint[2] + f.center[2]) / 2,
    ];
    const E = truth.corridors.S2.entry;
    const v = unit(sub(mid, E));
    const hub = along(E, v, -30),
      tip = along(E, v, 150);
    drawPin(data, hub, tip, 2.8);
    const r = defined(
      verifyPlacement(plan, scanWith(data), { labels: labels() }).paths.find((p) => p.pathId === 's2'),
      'match',
    );
    expect(r.status).toBe('fail');
    const hit = defined(r.instrument, 'instrument').structures.find((h) => h.name === 'S2L');
    expect(hit?.structure).toBe('foramen');
    // Where: on the channel (its axis within its radius + 2 mm of the reported point).
    expect(pointSegmentDistance(defined(hit, 'S2L hit').at, f.canalPoint, f.center)).toBeLessThan(f.radiusMm + 2);
    expect(r.reasons.some((s) => s.includes('S2L'))).toBe(true);
    // The same without labels: the foramina found in the planning CT (findForamina) name it too. (Found
    // in this scan itself they would not: the pin's metal fills the channel's core.)
    const scan = scanWith(data);
    const found = findForamina(planStage.ct);
    const r2 = defined(
      verifyPlacement(plan, scan, {
        labels: { volume: found.labels, anatomy: found.anatomy, frame: 'plan' },
        foramina: foraminaSourceOf(found),
      }).paths.find((p) => p.pathId === 's2'),
      'match',
    );
    const hit2 = defined(r2.instrument, 'instrument').structures.find((h) => h.name === 'S2L');
    expect(hit2?.structure).toBe('foramen');
    expect(pointSegmentDistance(defined(hit2, 'S2L hit').at, f.canalPoint, f.center)).toBeLessThan(f.radiusMm + 2);
    expect(r2.status).toBe('fail');
    // Its angle to the plan, from the test's own geometry.
    const u = unit(sub(truth.corridors.S2.exit, E));
    expect(Math.abs(defined(r.deviation, 'deviation').angleDeg - (Math.acos(dot(u, v)) * 180) / Math.PI)).toBeLessThan(
      0.5,
    );
  });

  it('finds a trocar pushed through the anterior cortex: 15 mm too deep, 6 mm out of bone', () => {
    // The alar target lies 9 mm short of the anterior sacral surface along the path (truth.ts): a trocar on
    // the ideal path pushed 15 mm past the target leaves the bone for its last 15 - 9 = 6 mm.
    const data = Int16Array.from(pins.ct.data);
    const left = defined(
      (truth.instruments as InstrumentTruth[]).find((i) => i.name === 'Alar trocar left'),
      'left trocar',
    );
    erase(data, left);
    const { entry, target } = truth.alarPaths.left;
    const u = unit(sub(target, entry));
    const hub = along(entry, u, -30),
      tip = along(target, u, 15);
    drawPin(data, hub, tip, 3.05);
    const r = defined(
      verifyPlacement(plan, scanWith(data), { labels: labels() }).paths.find((p) => p.pathId === 'alar-left'),
      'alar-left',
    );
    const dev = defined(r.deviation, 'deviation');
    expect(Math.abs(dev.depthDifferenceMm - 15)).toBeLessThan(0.5);
    expect(dev.entryOffsetMm).toBeLessThan(0.5);
    expect(dev.angleDeg).toBeLessThan(0.5);
    expect(r.status).toBe('fail');
    const out = defined(r.instrument, 'instrument').structures.filter((h) => h.structure === 'outside bone');
    expect(out).toHaveLength(1);
    // 6 mm, to within a 1 mm voxel and the 2 mm cortex's rounded edge around the shaft.
    expect(Math.abs(out[0].fromTipMm - 6)).toBeLessThan(1.5);
    expect(out[0].toTipMm).toBeLessThan(0.5);
  });

  it('says when an instrument enters the spinal canal', () => {
    // A trocar from the left alar entry aimed at the canal's middle at S2 (half way between the two S2
    // foramina's canal points) instead of the left trocar: far off every plan (unplanned), and through
    // the canal. (Two shafts from one entry would be one component, not an instrument: see README.)
    const data = Int16Array.from(pins.ct.data);
    erase(
      data,
      defined(
        (truth.instruments as InstrumentTruth[]).find((i) => i.name === 'Alar trocar left'),
        'left trocar',
      ),
    );
    const f = (n: string) =>
      defined(
        truth.foramina.find((x) => x.name === n),
        n,
      ).canalPoint;
    const a = f('S2L'),
      b = f('S2R');
    const mid: Point3 = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2, (a[2] + b[2]) / 2];
    const entry = truth.alarPaths.left.entry;
    const v = unit(sub(mid, entry));
    drawPin(data, along(entry, v, -20), along(mid, v, 3), 3.05);
    const rep2 = verifyPlacement(plan, scanWith(data), { labels: labels() });
    const extra = rep2.unplanned.filter((u) => u.structures.some((h) => h.structure === 'canal'));
    expect(extra).toHaveLength(1);
    const hit = defined(
      extra[0].structures.find((h) => h.structure === 'canal'),
      'canal hit',
    );
    expect(hit.name).toBe('spinal canal');
    // It reaches the canal's middle (the tip, 3 mm past it) from its lateral edge: the hit ends at the tip.
    expect(hit.toTipMm).toBeLessThan(0.5);
  });

  it('bridges unlabelled SI joints only when told to', () => {
    // The trans-sacral pins cross both SI joints by design (phantom README). Without joint labels (as in
    // TotalSegmentator's), each crossing is a 2.5 mm gap out of bone: two false exits per pin unless
    // bridged (bridgeMm 4, what verifyAnatomyFromLabels sets).
    const base = phantomVerifyAnatomy(truth.labels);
    const joints = [truth.labels.sacroiliacJointLeft, truth.labels.sacroiliacJointRight];
    const bone = base.bone.filter((l) => !joints.includes(l));
    const exits = (bridgeMm: number) =>
      verifyPlacement(plan, pins.ct, {
        labels: { volume: planStage.labels, anatomy: { ...base, bone, bridgeMm } },
      })
        .paths.filter((p) => p.pathId === 's1' || p.pathId === 's2')
        .map((p) => defined(p.instrument, p.pathId).structures.filter((h) => h.structure === 'outside bone').length);
    expect(exits(0)).toEqual([2, 2]);
    expect(exits(4)).toEqual([0, 0]);
  });

  it('screws: the length in bone and whether the thread crosses each fracture line', () => {
    // A 7.3 mm screw drawn by the test on the S1 corridor axis in place of the S1 pin: from 20 mm outside
    // the entry (soft tissue) to the exit. The corridor is bone from entry to exit by design (phantom
    // README: corridor bone, the SI joints counted as bone), so 160 mm of it lie in bone. The fracture
    // lines: truth.json's two clefts (a point and a normal each); the test crosses the axis with them.
    const data = Int16Array.from(pins.ct.data);
    erase(
      data,
      defined(
        (truth.instruments as InstrumentTruth[]).find((i) => i.name === 'S1 guidepin'),
        'S1 pin',
      ),
    );
    const E = truth.corridors.S1.entry,
      X = truth.corridors.S1.exit;
    const u = unit(sub(X, E));
    drawPin(data, along(E, u, -20), X, 7.3);
    const screwPlan = plan.map((p) => (p.id === 's1' ? { ...p, kind: 'screw' as const, diameterMm: 7.3 } : p));
    const fractures = truth.fractures.map((f) => ({ name: f.side, point: f.pointOnCleft, normal: f.normal }));
    expect(fractures.map((f) => f.name)).toEqual(['left', 'right']);
    // Where the axis crosses each cleft plane, mm back from the tip (the exit).
    const back = (f: (typeof fractures)[number]) => dot(sub(X, f.point), f.normal) / dot(u, f.normal);
    const [bl, br] = fractures.map(back);
    expect(bl).toBeGreaterThan(30); // left cleft nearer the left exit
    expect(br).toBeGreaterThan(bl + 50);
    const scan = scanWith(data);
    const screwOf = (threadLengthMm?: number) => {
      const r = defined(
        verifyPlacement(screwPlan, scan, { labels: labels(), fractures, threadLengthMm }).paths.find(
          (p) => p.pathId === 's1',
        ),
        's1',
      );
      return defined(r.screw, 'screw report');
    };
    const full = screwOf();
    expect(full.threadLengthFrom).toBe('fully threaded (none given)');
    expect(Math.abs(full.lengthMm - 180)).toBeLessThan(0.5);
    expect(Math.abs(defined(full.lengthInBoneMm, 'in bone') - 160)).toBeLessThan(1);
    for (const [k, f] of full.fractures.entries()) {
      const b = k === 0 ? bl : br;
      expect(f.crossed, f.name).toBe(true);
      expect(Math.abs(defined(f.fromTipMm, 'fromTip') - b), f.name).toBeLessThan(0.5);
      expect(Math.abs(f.boneTipSideMm - b), f.name).toBeLessThan(1);
      expect(Math.abs(f.boneOuterSideMm - (160 - b)), f.name).toBeLessThan(1);
      expect(f.threadCrosses, f.name).toBe(true);
    }
    expect(full.threadCrossesAll).toBe(true);
    // A thread ending 10 mm short of the left cleft crosses neither; one 10 mm past it, the left only;
    // one 10 mm past the right cleft, both.
    const cases: [number, boolean, boolean][] = [
      [bl - 10, false, false],
      [bl + 10, true, false],
      [br + 10, true, true],
    ];
    for (const [thread, left, right] of cases) {
      const r = screwOf(thread);
      expect(r.threadLengthFrom).toBe('given');
      expect(
        r.fractures.map((f) => f.threadCrosses),
        `thread ${thread.toFixed(0)} mm`,
      ).toEqual([left, right]);
      expect(r.threadCrossesAll).toBe(left && right);
      if (left) expect(Math.abs(r.fractures[0].threadOuterSideMm - (thread - bl))).toBeLessThan(1);
    }
    // A guidepin gets no screw report.
    expect(verifyPlacement(plan, scan, { fractures }).paths.every((p) => p.screw === null)).toBe(true);
  });

  it('reports a missing instrument and an unplanned one', () => {
    const data = Int16Array.from(pins.ct.data);
    const left = defined(
      (truth.instruments as InstrumentTruth[]).find((i) => i.name === 'Alar trocar left'),
      'match',
    );
    erase(data, left);
    // An unplanned pin in the soft tissue behind the sacrum, running head to feet (no path is near that).
    const hub: Point3 = along(truth.alarPaths.left.entry, [0, 0, 1], 0);
    const start: Point3 = [hub[0] + 25, hub[1] + 20, hub[2] + 25];
    const end: Point3 = [start[0], start[1], start[2] - 40];
    drawPin(data, start, end, 2.8);
    const rep2 = verifyPlacement(plan, scanWith(data));
    expect(
      defined(
        rep2.paths.find((p) => p.pathId === 'alar-left'),
        'match',
      ).status,
    ).toBe('missing');
    expect(rep2.allPass).toBe(false);
    expect(rep2.unplanned).toHaveLength(1);
    const u = rep2.unplanned[0];
    const e = Math.min(
      norm(sub(u.tip, start)) + norm(sub(u.outerEnd, end)),
      norm(sub(u.tip, end)) + norm(sub(u.outerEnd, start)),
    );
    expect(e).toBeLessThan(1); // both ends within about 0.5 mm
    expect(Math.abs(u.lengthMm - 40)).toBeLessThan(0.5);
    // The other three paths keep their instruments.
    for (const id of ['s1', 's2', 'alar-right'])
      expect(
        defined(
          rep2.paths.find((p) => p.pathId === id),
          'match',
        ).instrument,
      ).not.toBeNull();
  });

  it('gives the same answers on a scan moved by a known rigid transform, verified with it', () => {
    // Move the scan: the same voxels placed by M * indexToPatient; so scanToPlan = M^-1.
    const a = (12 * Math.PI) / 180;
    const [x, y, z] = unit([1, 2, 3]);
    const c = Math.cos(a),
      s = Math.sin(a),
      C = 1 - c;
    const M = mat4FromRows([
      [c + x * x * C, x * y * C - z * s, x * z * C + y * s, 15],
      [y * x * C + z * s, c + y * y * C, y * z * C - x * s, -20],
      [z * x * C - y * s, z * y * C + x * s, c + z * z * C, 30],
      [0, 0, 0, 1],
    ]);
    const moved = scanWith(pins.ct.data, mat4Multiply(new Float64Array(16), M, pins.ct.indexToPatient));
    const scanToPlan = defined(mat4Invert(new Float64Array(16), M), 'inverse');
    const base = verifyPlacement(plan, pins.ct, { labels: labels() });
    const back = verifyPlacement(plan, moved, { labels: labels(), scanToPlan });
    expect(back.scanToPlan).not.toBeNull();
    for (let p = 0; p < 4; p++) {
      const A = base.paths[p],
        B = back.paths[p];
      expect(B.status).toBe(A.status);
      for (const k of ['entryOffsetMm', 'tipOffsetMm', 'angleDeg', 'depthDifferenceMm', 'lateralAtTargetMm'] as const)
        expect(
          Math.abs(defined(B.deviation, 'deviation')[k] - defined(A.deviation, 'deviation')[k]),
          `${A.pathId} ${k}`,
        ).toBeLessThan(1e-6);
      expect(norm(sub(defined(B.instrument, 'instrument').tip, defined(A.instrument, 'instrument').tip))).toBeLessThan(
        1e-6,
      );
      expect(defined(B.instrument, 'instrument').structures.map((h) => h.name)).toEqual(
        defined(A.instrument, 'instrument').structures.map((h) => h.name),
      );
    }
    // Labels of the moved scan itself (frame 'scan', reached through the inverse transform) name the
    // same structures as the same labels unmoved.
    const anatomy = phantomVerifyAnatomy(truth.labels);
    const movedLabels = createVolume({
      data: pins.labels.data,
      dims: pins.labels.dims,
      indexToPatient: moved.indexToPatient,
    });
    const own = verifyPlacement(plan, pins.ct, { labels: { volume: pins.labels, anatomy } });
    const ownMoved = verifyPlacement(plan, moved, {
      labels: { volume: movedLabels, anatomy, frame: 'scan' },
      scanToPlan,
    });
    for (let p = 0; p < 4; p++) {
      const A = defined(own.paths[p].instrument, 'instrument').structures;
      const B = defined(ownMoved.paths[p].instrument, 'instrument').structures;
      expect(B.map((h) => h.name)).toEqual(A.map((h) => h.name));
      for (let h = 0; h < A.length; h++) expect(norm(sub(B[h].at, A[h].at))).toBeLessThan(1e-6);
    }
    // Without the transform the moved scan does not verify: the instruments are 12 deg and cm away.
    const wrong = verifyPlacement(plan, moved);
    expect(wrong.paths.every((p) => p.status !== 'pass')).toBe(true);
  });
});
