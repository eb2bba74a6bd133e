/**
 * Cement scans from another frame (issue 18): the phantom's cement stage (with its 0.2 ml S1L leak, and
 * without one) placed in another scanner's frame by a known rigid motion, registered to the baseline
 * (the pins stage) with the metal and the cement left out, resampled onto the baseline's grid, must give
 * the answers of the same scan in the baseline's frame. 1.5 mm voxels keep the file to seconds.
 * Truth: the unmoved scan's own report (the same voxels), truth.json's volumes and leak, the motion.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { generatePhantom, type GeneratedPhantom } from '../phantom/generate.js';
import { mat4FromRows, mat4Multiply, mat4TransformPoint, type Mat4 } from '../math/mat4.js';
import type { Point3 } from '../math/vec3.js';
import type { PlanPath } from '../plan/model.js';
import { createVolume, type Volume } from '../volume/volume.js';
import { phantomVerifyAnatomy } from '../verify/along.js';
import { registerScanToReference } from '../verify/register-scan.js';
import { resampleOntoFixed } from '../register/apply.js';
import { defined } from '../test-helpers/defined.js';
import { analyzeCement, type CementReport } from './cement.js';

const VOXEL_MM = 1.5;
let base: GeneratedPhantom;
let leak: GeneratedPhantom;
let clean: GeneratedPhantom;
let plan: PlanPath[];

function motion(deg: number, axis: Point3, t: Point3): Mat4 {
  const a = (deg * Math.PI) / 180;
  const l = Math.hypot(...axis);
  const [x, y, z] = [axis[0] / l, axis[1] / l, axis[2] / l];
  const c = Math.cos(a),
    s = Math.sin(a),
    C = 1 - c;
  return mat4FromRows([
    [c + x * x * C, x * y * C - z * s, x * z * C + y * s, t[0]],
    [y * x * C + z * s, c + y * y * C, y * z * C - x * s, t[1]],
    [z * x * C - y * s, z * y * C + x * s, c + z * z * C, t[2]],
    [0, 0, 0, 1],
  ]);
}

const moved = (v: Volume, M: Mat4): Volume =>
  createVolume({
    data: v.data,
    dims: v.dims,
    indexToPatient: mat4Multiply(new Float64Array(16), M, v.indexToPatient),
    meta: { source: 'moved scan' },
  });

const analyze = (scan: Volume, scanToBaseline?: Mat4): CementReport =>
  analyzeCement({
    plan,
    baseline: base.ct,
    scans: [scan],
    labels: { volume: base.labels, anatomy: phantomVerifyAnatomy(base.truth.labels) },
    ...(scanToBaseline ? { scanToBaseline: [scanToBaseline] } : {}),
  });

beforeAll(() => {
  base = generatePhantom({ stage: 'pins', voxelMm: VOXEL_MM });
  leak = generatePhantom({ stage: 'cement', voxelMm: VOXEL_MM, leak: 'S1L' });
  clean = generatePhantom({ stage: 'cement', voxelMm: VOXEL_MM });
  const t = base.truth;
  plan = [
    { id: 'alar-left', name: 'Alar left', kind: 'trocar', diameterMm: 3.05, ...t.alarPaths.left },
    { id: 'alar-right', name: 'Alar right', kind: 'trocar', diameterMm: 3.05, ...t.alarPaths.right },
  ];
});

describe('cement scans in another frame', () => {
  const M = motion(7, [2, 1, -1], [-12, 9, 15]);

  it('refuses a moved scan without a transform', () => {
    expect(() => analyze(moved(leak.ct, M))).toThrow(/baseline grid/);
  });

  it('gives the same volumes, leak and verdict once registered', () => {
    const own = analyze(leak.ct).scans[0];
    const scan = moved(leak.ct, M);
    const reg = registerScanToReference(base.ct, scan);
    expect(reg.summary.status).toBe('ok');
    // The cement and the trocars are left out of the match: 4 ml per side is about 1200 voxels each.
    expect(reg.summary.excludedVoxels.scan).toBeGreaterThan(reg.summary.excludedVoxels.reference + 1000);
    // Registration error at the cement (the trocar tips): under a fifth of a voxel.
    for (const p of plan) {
      const back = mat4TransformPoint([0, 0, 0], reg.scanToPlan, mat4TransformPoint([0, 0, 0], M, p.target));
      expect(Math.hypot(back[0] - p.target[0], back[1] - p.target[1], back[2] - p.target[2])).toBeLessThan(0.3);
    }
    const r = analyzeCement({
      plan,
      baseline: base.ct,
      scans: [scan],
      labels: { volume: base.labels, anatomy: phantomVerifyAnatomy(base.truth.labels) },
      scanToBaseline: [reg.scanToPlan],
      registrations: [reg.summary],
    }).scans[0];
    expect(r.registration?.status).toBe('ok');
    expect(r.scanToBaseline).not.toBeNull();
    // analyzeCement resamples only the box where cement can be: the same report as the whole scan
    // resampled onto the baseline's grid by register/'s resampleOntoFixed and analysed on that grid.
    const whole = analyze(resampleOntoFixed(scan, base.ct, reg.scanToPlan, { outside: -1024, type: 'float32' }))
      .scans[0];
    expect(r.sites).toEqual(whole.sites);
    expect(r.leaks).toEqual(whole.leaks);
    expect(r.distances).toEqual(whole.distances);
    expect(r.reasons).toEqual(whole.reasons);
    expect(r.verdict).toBe(own.verdict);
    expect(r.verdict).toBe('stop');
    for (const s of own.sites) {
      const q = defined(
        r.sites.find((x) => x.pathId === s.pathId),
        s.pathId,
      );
      // Trilinear resampling keeps the summed rise: the same volume within 2%.
      expect(Math.abs(q.volumeMl - s.volumeMl) / s.volumeMl, s.pathId).toBeLessThan(0.02);
    }
    expect(r.leaks.map((l) => l.name)).toEqual(own.leaks.map((l) => l.name));
    expect(r.leaks.map((l) => l.name)).toContain('S1L');
    const a = defined(
      own.leaks.find((l) => l.name === 'S1L'),
      'S1L',
    );
    const b = defined(
      r.leaks.find((l) => l.name === 'S1L'),
      'S1L',
    );
    expect(Math.abs(a.volumeMl - b.volumeMl)).toBeLessThan(0.03);
    // Distances of the front: the same to one voxel.
    for (const d of own.distances) {
      const e = defined(
        r.distances.find((x) => x.name === d.name),
        d.name,
      );
      if (d.distanceMm === null || e.distanceMm === null) expect(e.distanceMm).toBe(d.distanceMm);
      else expect(Math.abs(e.distanceMm - d.distanceMm), d.name).toBeLessThanOrEqual(VOXEL_MM + 1e-6);
    }
  });

  it('raises no leak and no caution on a moved scan without a leak', () => {
    const own = analyze(clean.ct).scans[0];
    expect(own.verdict).toBe('continue');
    const scan = moved(clean.ct, M);
    const reg = registerScanToReference(base.ct, scan);
    expect(reg.summary.status).toBe('ok');
    const r = analyze(scan, reg.scanToPlan).scans[0];
    expect(r.leaks).toEqual([]);
    expect(r.reasons).toEqual([]);
    expect(r.verdict).toBe('continue');
    for (const tc of defined(clean.truth.cement, 'cement')) {
      const v = r.sites.find((x) => x.pathId === `alar-${tc.site}`)?.volumeMl ?? 0;
      expect(Math.abs(v - tc.volumeMl) / tc.volumeMl, tc.site).toBeLessThan(0.05);
    }
  });
});
