/**
 * Cement monitoring on the phantom's cement stage against its pins stage (the same instruments, no
 * cement) at 1 mm voxels. Truth: truth.json's cement and leak volumes, and the test's own planted leaks
 * (a set of foramen voxels, so their volume is the voxel count times the voxel volume); never the code
 * under test.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { generatePhantom, type GeneratedPhantom } from '../phantom/generate.js';
import { FORAMEN_NAMES } from '../phantom/anatomy.js';
import { PHANTOM_LABELS } from '../phantom/labels.js';
import type { PlanPath } from '../plan/model.js';
import { createVolume, type Volume } from '../volume/volume.js';
import { phantomVerifyAnatomy } from '../verify/along.js';
import { analyzeCement, type CementOptions } from './cement.js';

const VOXEL_MM = 1;
let base: GeneratedPhantom;
let cement: GeneratedPhantom;
let plan: PlanPath[];

function alarPlan(t: GeneratedPhantom['truth']): PlanPath[] {
  return [
    { id: 'alar-left', name: 'Alar left', kind: 'trocar', diameterMm: 3.05, ...t.alarPaths.left },
    { id: 'alar-right', name: 'Alar right', kind: 'trocar', diameterMm: 3.05, ...t.alarPaths.right },
    // A guidepin is no injection site: the cement must not be given to it.
    {
      id: 's1',
      name: 'S1',
      kind: 'guidepin',
      diameterMm: 2.8,
      entry: t.corridors.S1.entry,
      target: t.corridors.S1.exit,
    },
  ];
}

const run = (scans: Volume[], extra: Partial<CementOptions> = {}) =>
  analyzeCement({
    plan,
    baseline: base.ct,
    scans,
    labels: { volume: base.labels, anatomy: phantomVerifyAnatomy(base.truth.labels) },
    ...extra,
  });

/** The cement scan with `ml` of cement HU written into the foramen's voxels nearest a point 4 mm inside its
 * anterior opening (along the channel towards the canal); returns the scan and the planted volume (ml). */
function plantLeak(name: string, ml: number): { scan: Volume; plantedMl: number; center: number[] } {
  const t = base.truth;
  const f = t.foramina.find((x) => x.name === name);
  if (!f) throw new Error(`no foramen ${name}`);
  const dir = f.canalPoint.map((v, a) => v - f.center[a]);
  const len = Math.hypot(...dir);
  const c = f.center.map((v, a) => v + (4 * dir[a]) / len);
  const id = (PHANTOM_LABELS as Record<string, number>)[name];
  const { dims, indexToPatient: m } = base.labels;
  const cand: { v: number; d: number }[] = [];
  const lab = base.labels.data;
  for (let k = 0, v = 0; k < dims[2]; k++)
    for (let j = 0; j < dims[1]; j++)
      for (let i = 0; i < dims[0]; i++, v++) {
        if (lab[v] !== id) continue;
        const x = m[0] * i + m[1] * j + m[2] * k + m[3] - c[0];
        const y = m[4] * i + m[5] * j + m[6] * k + m[7] - c[1];
        const z = m[8] * i + m[9] * j + m[10] * k + m[11] - c[2];
        cand.push({ v, d: x * x + y * y + z * z });
      }
  cand.sort((a, b) => a.d - b.d);
  const n = Math.round((ml * 1000) / VOXEL_MM ** 3);
  const data = Int16Array.from(cement.ct.data);
  const hu = t.nominalHu.cement ?? 2400;
  for (let q = 0; q < n; q++) data[cand[q].v] = hu;
  return {
    scan: createVolume({ data, dims, indexToPatient: m, meta: { ...cement.ct.meta, source: `leak ${name}` } }),
    plantedMl: (n * VOXEL_MM ** 3) / 1000,
    center: c,
  };
}

beforeAll(() => {
  base = generatePhantom({ stage: 'pins', voxelMm: VOXEL_MM, seed: 1 });
  cement = generatePhantom({ stage: 'cement', voxelMm: VOXEL_MM, seed: 1 });
  plan = alarPlan(base.truth);
}, 60_000);

describe('analyzeCement on the phantom (1 mm)', () => {
  it('measures each site within 5% of truth, says continue, and grows from scan to scan', () => {
    const r = run([cement.ct, cement.ct]);
    const truth = cement.truth.cement ?? [];
    expect(truth.length).toBe(2);
    for (const tc of truth) {
      const site = r.scans[0].sites.find((s) => s.pathId === `alar-${tc.site}`);
      expect(site).toBeDefined();
      // 5%: the accuracy; truth.volumeMl is the deposit's exact volume (4 ml by default).
      expect(Math.abs((site?.volumeMl ?? 0) - tc.volumeMl) / tc.volumeMl).toBeLessThan(0.05);
      expect(site?.growthMl).toBeCloseTo(site?.volumeMl ?? NaN, 6);
      // The second scan is the same: no growth.
      expect(r.scans[1].sites.find((s) => s.pathId === `alar-${tc.site}`)?.growthMl).toBe(0);
    }
    expect(r.scans[0].sites.find((s) => s.pathId === 's1')).toBeUndefined();
    expect(r.scans[0].leaks).toEqual([]);
    expect(r.scans[0].verdict).toBe('continue');
    expect(r.verdict).toBe('continue');
    // Every foramen is farther than the warning distance (3 mm); the nearest, S1L, is measured.
    const s1l = r.scans[0].distances.find((d) => d.name === 'S1L');
    expect(s1l?.distanceMm).toBeGreaterThan(3);
  });

  it('follows the growth from 2 and 3 ml to 4 ml per site', () => {
    const early = generatePhantom({ stage: 'cement', voxelMm: VOXEL_MM, seed: 1, cementMl: [2, 3] });
    const r = run([early.ct, cement.ct]);
    // Truth: 2 and 3 ml in the first scan (truth.json), 4 ml in the second: growth 2 and 1 ml.
    const want = { 'alar-left': [2, 2], 'alar-right': [3, 1] } as Record<string, [number, number]>;
    for (const [id, [v1, g2]] of Object.entries(want)) {
      const s1 = r.scans[0].sites.find((x) => x.pathId === id);
      const s2 = r.scans[1].sites.find((x) => x.pathId === id);
      expect(Math.abs((s1?.volumeMl ?? 0) - v1) / v1, id).toBeLessThan(0.05);
      expect(Math.abs((s2?.growthMl ?? 0) - g2), id).toBeLessThan(0.1);
    }
    expect(r.scans.map((x) => x.verdict)).toEqual(['continue', 'continue']);
  }, 30_000);

  it("finds the phantom's own 0.2 ml leak in S1L and stops", () => {
    const leaky = generatePhantom({ stage: 'cement', voxelMm: VOXEL_MM, seed: 1, leak: 'S1L', leakMl: 0.2 });
    const r = run([leaky.ct]);
    const s = r.scans[0];
    expect(s.verdict).toBe('stop');
    expect(s.leaks.map((l) => l.name)).toEqual(['S1L']);
    // Volume of the leak in the foramen: within 30% of truth (its voxels near the cortex are partial).
    expect(Math.abs(s.leaks[0].volumeMl - 0.2) / 0.2).toBeLessThan(0.3);
    const where = leaky.truth.leak?.center ?? [0, 0, 0];
    expect(Math.hypot(...s.leaks[0].at.map((v, a) => v - where[a]))).toBeLessThan(4);
    expect(s.reasons[0].name).toBe('S1L');
    console.log(`phantom leak S1L: ${s.leaks[0].volumeMl} of 0.2 ml, ${s.leaks[0].site}`);
  }, 30_000);

  it('finds a planted 0.1 ml leak in whichever foramen it is put', () => {
    const rows: string[] = [];
    for (const name of FORAMEN_NAMES) {
      const { scan, plantedMl, center } = plantLeak(name, 0.1);
      const s = run([scan]).scans[0];
      expect(s.verdict, name).toBe('stop');
      expect(
        s.leaks.map((l) => l.name),
        name,
      ).toEqual([name]);
      // All of the planted voxels lie in the foramen: the measured volume is close to the planted one.
      expect(Math.abs(s.leaks[0].volumeMl - plantedMl) / plantedMl, name).toBeLessThan(0.15);
      expect(Math.hypot(...s.leaks[0].at.map((v, a) => v - center[a])), name).toBeLessThan(3);
      expect(s.distances.find((d) => d.name === name)?.distanceMm, name).toBe(0);
      rows.push(`${name}: ${s.leaks[0].volumeMl} of ${plantedMl} ml, site ${s.leaks[0].site}`);
    }
    console.log(rows.join('\n'));
  }, 40_000);

  it('names a leak into a vein when the labels carry one, and calls it outside bone when they do not', () => {
    // A lateral sacral vein as the test paints it: a 3 mm ball of soft tissue 5 mm in front of S2L's
    // anterior opening, along its channel (the veins run over the anterior foramina). 0.1 ml of cement
    // HU planted in its voxels nearest the centre; truth is the test's own voxel count.
    const t = base.truth;
    const f = t.foramina.find((x) => x.name === 'S2L');
    if (!f) throw new Error('no S2L');
    const out = f.center.map((v, a) => v - f.canalPoint[a]);
    const len = Math.hypot(...out);
    const c = f.center.map((v, a) => v + (5 * out[a]) / len);
    const VEIN = 40;
    const soft = new Set<number>([PHANTOM_LABELS.fat, PHANTOM_LABELS.muscle, PHANTOM_LABELS.viscera]);
    const { dims, indexToPatient: m } = base.labels;
    const lab = Uint8Array.from(base.labels.data);
    const cand: { v: number; d: number }[] = [];
    for (let k = 0, v = 0; k < dims[2]; k++)
      for (let j = 0; j < dims[1]; j++)
        for (let i = 0; i < dims[0]; i++, v++) {
          const x = m[0] * i + m[1] * j + m[2] * k + m[3] - c[0];
          const y = m[4] * i + m[5] * j + m[6] * k + m[7] - c[1];
          const z = m[8] * i + m[9] * j + m[10] * k + m[11] - c[2];
          const d = x * x + y * y + z * z;
          if (d <= 9 && soft.has(lab[v])) {
            lab[v] = VEIN;
            cand.push({ v, d });
          }
        }
    cand.sort((a, b) => a.d - b.d);
    const n = Math.round(100 / VOXEL_MM ** 3);
    expect(cand.length).toBeGreaterThan(n);
    const data = Int16Array.from(cement.ct.data);
    for (let q = 0; q < n; q++) data[cand[q].v] = t.nominalHu.cement ?? 2400;
    const scan = createVolume({ data, dims, indexToPatient: m, meta: { ...cement.ct.meta, source: 'vein leak' } });
    const anatomy = phantomVerifyAnatomy(t.labels);
    const withVein = analyzeCement({
      plan,
      baseline: base.ct,
      scans: [scan],
      labels: {
        volume: createVolume({ data: lab, dims, indexToPatient: m, meta: base.labels.meta }),
        anatomy: {
          ...anatomy,
          critical: [...anatomy.critical, { label: VEIN, structure: 'vein', name: 'lateral sacral vein' }],
        },
      },
    });
    const s = withVein.scans[0];
    expect(s.verdict).toBe('stop');
    expect(s.leaks.map((l) => [l.structure, l.name])).toEqual([['vein', 'lateral sacral vein']]);
    expect(Math.abs(s.leaks[0].volumeMl - 0.1) / 0.1).toBeLessThan(0.15);
    expect(withVein.notes.some((x) => x.startsWith('no vein labels'))).toBe(false);
    // The phantom's own labels have no vein: the same cement is a leak outside the bone, and the report says
    // that veins were not checked.
    const without = run([scan]);
    expect(without.scans[0].leaks.map((l) => l.structure)).toEqual(['outside bone']);
    expect(without.notes.some((x) => x.startsWith('no vein labels'))).toBe(true);
  }, 40_000);

  it('cautions when the warning distance is larger than the front-to-foramen distance', () => {
    const r0 = run([cement.ct]);
    const d = r0.scans[0].distances.find((x) => x.name === 'S1L')?.distanceMm ?? NaN;
    const r = run([cement.ct], { warningMm: d + 0.5 });
    expect(r.scans[0].verdict).toBe('caution');
    expect(r.scans[0].reasons.map((x) => x.name)).toContain('S1L');
  });

  it('leaves out a new metal pin that the baseline does not have', () => {
    // A 60 mm, 3 mm steel pin drawn by the test along x through the S2 body, away from both deposits
    // (their centres lie at |x| = 40 mm, 25 mm higher): without the exclusion it would be ~0.4 ml of "cement".
    const t = base.truth;
    const c = t.landmarks.s2BodyCenter;
    const a: number[] = [c[0] - 30, c[1], c[2] - 12],
      b: number[] = [c[0] + 30, c[1], c[2] - 12];
    const data = Int16Array.from(cement.ct.data);
    const { dims, indexToPatient: m } = cement.ct;
    let drawn = 0;
    for (let k = 0, v = 0; k < dims[2]; k++)
      for (let j = 0; j < dims[1]; j++)
        for (let i = 0; i < dims[0]; i++, v++) {
          const x = m[0] * i + m[1] * j + m[2] * k + m[3];
          if (x < a[0] || x > b[0]) continue;
          const y = m[4] * i + m[5] * j + m[6] * k + m[7] - a[1];
          const z = m[8] * i + m[9] * j + m[10] * k + m[11] - a[2];
          if (y * y + z * z <= 1.5 * 1.5) {
            data[v] = 3000;
            drawn++;
          }
        }
    expect(drawn * VOXEL_MM ** 3).toBeGreaterThan(300);
    const withPin = createVolume({ data, dims, indexToPatient: m, meta: cement.ct.meta });
    const plain = run([cement.ct]).scans[0];
    const s = run([withPin]).scans[0];
    expect(s.newMetal.length).toBe(1);
    expect(Math.abs(s.totalMl - plain.totalMl)).toBeLessThan(0.01);
    expect(s.verdict).toBe('continue');
  });

  it("hands the cement it counted to onMask, where the phantom's cement label lies", () => {
    const masks: Parameters<NonNullable<CementOptions['onMask']>>[1][] = [];
    const r = run([cement.ct], { onMask: (i, m) => (masks[i] = m) });
    expect(masks.length).toBe(1);
    const m = masks[0];
    const [nx, ny] = cement.labels.dims;
    const lab = cement.labels.data;
    const id = PHANTOM_LABELS.cement;
    let inMask = 0,
      both = 0,
      labelled = 0;
    for (let v = 0; v < lab.length; v++) if (lab[v] === id) labelled++;
    for (let k = 0, q = 0; k < m.dims[2]; k++)
      for (let j = 0; j < m.dims[1]; j++)
        for (let i = 0; i < m.dims[0]; i++, q++) {
          if (!m.data[q]) continue;
          inMask++;
          if (lab[m.origin[0] + i + nx * (m.origin[1] + j + ny * (m.origin[2] + k))] === id) both++;
        }
    // The mask is the counted components: their voxels are the sites' voxel counts.
    expect(inMask).toBe(r.scans[0].sites.reduce((a, s) => a + s.voxelCount, 0));
    // Truth from the phantom's labels: most mask voxels are cement, most cement voxels are in the mask.
    expect(both / inMask).toBeGreaterThan(0.85);
    expect(both / labelled).toBeGreaterThan(0.85);
  });

  it('finds nothing in the baseline itself', () => {
    const r = run([base.ct]);
    expect(r.scans[0].totalMl).toBe(0);
    expect(r.scans[0].verdict).toBe('continue');
  });
});
