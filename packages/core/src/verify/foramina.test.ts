/**
 * findForamina on the phantom (1 mm, seed 1): the foramina it finds against the phantom's own foramen
 * labels (the truth: which voxels are which foramen), and a cement leak planted in a foramen found by
 * analyzeCement with the found anatomy instead of labels.
 */
import { describe, expect, it } from 'vitest';
import { analyzeCement } from '../cement/cement.js';
import { CancelledError } from '../errors.js';
import { mat4FromRows } from '../math/mat4.js';
import { createVolume } from '../volume/volume.js';
import { generatePhantom, type GeneratedPhantom } from '../phantom/generate.js';
import { PHANTOM_LABELS } from '../phantom/labels.js';
import type { PlanPath } from '../plan/model.js';
import { findForamina, foraminaSourceOf, type FoundForamina } from './foramina.js';

const NAMES = ['S1L', 'S1R', 'S2L', 'S2R', 'S3L', 'S3R', 'S4L', 'S4R'] as const;

/** Per truth foramen: centroid of its label voxels (LPS mm), from the label volume itself. */
function truthCentroids(g: GeneratedPhantom): Map<string, [number, number, number]> {
  const { data, dims } = g.labels;
  const m = g.labels.indexToPatient;
  const acc = NAMES.map(() => [0, 0, 0, 0]);
  for (let k = 0, v = 0; k < dims[2]; k++)
    for (let j = 0; j < dims[1]; j++)
      for (let i = 0; i < dims[0]; i++, v++) {
        const f = data[v] - PHANTOM_LABELS.S1L;
        if (f < 0 || f > 7) continue;
        acc[f][0] += m[0] * i + m[1] * j + m[2] * k + m[3];
        acc[f][1] += m[4] * i + m[5] * j + m[6] * k + m[7];
        acc[f][2] += m[8] * i + m[9] * j + m[10] * k + m[11];
        acc[f][3]++;
      }
  return new Map(NAMES.map((n, f) => [n, [acc[f][0] / acc[f][3], acc[f][1] / acc[f][3], acc[f][2] / acc[f][3]]]));
}

interface Scored {
  name: string;
  purity: number;
  dice: number;
  centroidMm: number;
  /** Found centroid to the truth's anterior channel axis (canal point to anterior opening), mm. */
  axisMm: number;
  /** Found principal axis against that channel's, degrees. */
  angleDeg: number;
}

function toSegment(p: readonly number[], a: readonly number[], b: readonly number[]): number {
  const d = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
  const l2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
  const t = Math.max(0, Math.min(1, ((p[0] - a[0]) * d[0] + (p[1] - a[1]) * d[1] + (p[2] - a[2]) * d[2]) / l2));
  return Math.hypot(p[0] - a[0] - t * d[0], p[1] - a[1] - t * d[1], p[2] - a[2] - t * d[2]);
}

/** Each found foramen against the truth label of the same name. */
function score(g: GeneratedPhantom, found: FoundForamina): Scored[] {
  const truth = truthCentroids(g);
  return found.foramina.map((f) => {
    const tl = PHANTOM_LABELS[f.name as (typeof NAMES)[number]];
    let both = 0,
      inTruth = 0;
    for (let v = 0; v < g.labels.data.length; v++) {
      const a = g.labels.data[v] === tl,
        b = found.labels.data[v] === f.label;
      if (a) inTruth++;
      if (a && b) both++;
    }
    const c = truth.get(f.name);
    const t = g.truth.foramina.find((x) => x.name === f.name);
    if (!c || !t) throw new Error(`no truth foramen ${f.name}`);
    const d = [t.center[0] - t.canalPoint[0], t.center[1] - t.canalPoint[1], t.center[2] - t.canalPoint[2]];
    const cos = Math.abs(d[0] * f.axis[0] + d[1] * f.axis[1] + d[2] * f.axis[2]) / Math.hypot(d[0], d[1], d[2]);
    return {
      axisMm: toSegment(f.centroid, t.canalPoint, t.center),
      angleDeg: (Math.acos(Math.min(1, cos)) * 180) / Math.PI,
      name: f.name,
      purity: both / f.voxelCount,
      dice: (2 * both) / (inTruth + f.voxelCount),
      centroidMm: Math.hypot(f.centroid[0] - c[0], f.centroid[1] - c[1], f.centroid[2] - c[2]),
    };
  });
}

describe('findForamina (phantom, 1 mm)', () => {
  it('a cancelled search throws CancelledError, as every long core step does', () => {
    const n = 24;
    const ct = createVolume({
      data: new Float32Array(n * n * n).fill(-1000),
      dims: [n, n, n],
      indexToPatient: mat4FromRows([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]),
    });
    const ac = new AbortController();
    ac.abort();
    expect(() => findForamina(ct, { signal: ac.signal })).toThrow(CancelledError);
  });

  it('refuses voxels coarser than 1.2 mm (where it does not hold)', () => {
    const g = generatePhantom({ stage: 'pins', voxelMm: 2, seed: 1, anatomy: 'fracture' });
    expect(() => findForamina(g.ct)).toThrow(/coarser than 1.2 mm/);
  });

  const base = generatePhantom({ stage: 'pins', voxelMm: 1, seed: 1, anatomy: 'fracture' });
  const found = findForamina(base.ct);

  it.each(['fracture', 'dysmorphic'] as const)('finds S1-S3 on both sides, each in its own foramen (%s)', (anatomy) => {
    const g = anatomy === 'fracture' ? base : generatePhantom({ stage: 'pins', voxelMm: 1, seed: 1, anatomy });
    const f = anatomy === 'fracture' ? found : findForamina(g.ct);
    const s = score(g, f);
    // Measured (seed 1, fracture and dysmorphic): S1-S3 both sides, S4 not paired; purity 0.81-1.00,
    // Dice 0.24-0.61, centroid 0.1-1.9 mm from the anterior channel's axis, axis within 1-12 deg.
    expect(f.source).toBe('image');
    expect(f.method).toMatch(/image/);
    for (const name of ['S1L', 'S1R', 'S2L', 'S2R', 'S3L', 'S3R']) {
      const x = s.find((y) => y.name === name);
      if (!x) throw new Error(`${name} not found`);
      expect(x.purity, name).toBeGreaterThan(0.75);
      expect(x.dice, name).toBeGreaterThan(0.2);
      expect(x.axisMm, name).toBeLessThan(3);
      expect(x.angleDeg, name).toBeLessThan(20);
    }
    // Whatever is named S4 is S4's (or nothing, and then the warning says so).
    for (const x of s.filter((y) => y.name.startsWith('S4'))) expect(x.purity, x.name).toBeGreaterThan(0.75);
    if (f.foramina.length < 8) expect(f.warnings.join(' ')).toMatch(/pairs of foramina found \(4 expected\)/);
  });

  it('a leak planted into S1L is found in S1L by analyzeCement with the found foramina', () => {
    const paths: PlanPath[] = [
      { id: 'alar-left', name: 'Alar left', kind: 'trocar', diameterMm: 3.05, ...base.truth.alarPaths.left },
      { id: 'alar-right', name: 'Alar right', kind: 'trocar', diameterMm: 3.05, ...base.truth.alarPaths.right },
    ] as PlanPath[];
    const clean = generatePhantom({ stage: 'cement', voxelMm: 1, seed: 1, anatomy: 'fracture' });
    const leak = generatePhantom({ stage: 'cement', voxelMm: 1, seed: 1, anatomy: 'fracture', leak: 'S1L' });
    const labels = { volume: found.labels, anatomy: found.anatomy };
    const r = analyzeCement({
      plan: paths,
      baseline: base.ct,
      scans: [clean.ct, leak.ct],
      labels,
      foramina: foraminaSourceOf(found),
    });
    expect(r.foramina.source).toBe('image');
    expect(r.foramina.found?.map((f) => f.name)).toContain('S1L');
    expect(r.notes.join(' ')).toMatch(/found in the image/);
    expect(r.scans[0].leaks).toEqual([]);
    expect(r.scans[0].verdict).not.toBe('stop');
    expect(r.scans[1].verdict).toBe('stop');
    expect(r.scans[1].leaks.map((l) => l.name)).toEqual(['S1L']);
  });
});
