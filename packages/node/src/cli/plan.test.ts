/**
 * `corridor plan` and `corridor analyze` end to end on a phantom written by `corridor phantom` (1.5 mm):
 * the phantom's labels are recognized without label lists, the plan files are written, and the figures
 * are checked against the phantom's truth.json.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../test-helpers/run-cli.js';
import { sharedDataDir } from '../io/shared-data.js';
import { defined } from '../test-helpers/defined.js';
import { readNifti } from '@corridor/core';

type P3 = [number, number, number];
interface Truth {
  corridors: Record<'S1' | 'S2', { entry: P3; exit: P3; safeRadiusMm: number }>;
  foramina: { name: string; canalPoint: P3 }[];
}
interface Analysis {
  id: string;
  fits: boolean;
  minClearanceMm: number;
  diameterMm: number;
  breaches: { structure: string; depthMm: number }[];
}
/** The parts of a written plan.json these tests read. */
interface PlanFile {
  paths: { id: string; entry: P3; target: P3 }[];
}

/** Distance from p to the line through a and b. */
function distToLine(p: P3, a: P3, b: P3): number {
  const u = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
  const L = Math.hypot(u[0], u[1], u[2]);
  const w = [p[0] - a[0], p[1] - a[1], p[2] - a[2]];
  const t = (w[0] * u[0] + w[1] * u[1] + w[2] * u[2]) / L;
  return Math.sqrt(Math.max(0, w[0] ** 2 + w[1] ** 2 + w[2] ** 2 - t * t));
}

/** Where the segment a-b crosses the plane x = x0. */
function crossX(a: P3, b: P3, x0: number): P3 {
  const f = (x0 - a[0]) / (b[0] - a[0]);
  return [x0, a[1] + f * (b[1] - a[1]), a[2] + f * (b[2] - a[2])];
}

describe('corridor plan / analyze on the phantom', () => {
  let dir: string;
  let truth: Truth;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-plan-'));
    const r = await runCli('phantom', '--out', dir, '--voxel', '1.5', '--quiet');
    expect(r.code, r.err).toBe(0);
    truth = JSON.parse(await readFile(path.join(dir, 'truth.json'), 'utf8')) as Truth;
  }, 60_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('plans all four paths from the phantom labels, no label lists; S1 and S2 lie on the truth corridors', async () => {
    const out = path.join(dir, 'plan.json');
    const r = await runCli(
      'plan',
      path.join(dir, 'ct.nii.gz'),
      '--labels',
      path.join(dir, 'labels.nii.gz'),
      '--auto',
      's1,s2,alar-left,alar-right',
      '--out',
      out,
      '--json',
    );
    expect(r.code, r.err).toBe(0);
    const res = JSON.parse(r.out) as {
      anatomy: { name: string; levelsFrom: string };
      results: { id: string; analysis: Analysis }[];
    };
    expect(res.anatomy).toEqual({ name: 'phantom', levelsFrom: 'foramina' });
    const plan = JSON.parse(await readFile(out, 'utf8')) as {
      volume: { file: string; indexToPatient: number[][] };
      paths: { id: string; entry: P3; target: P3; diameterMm: number }[];
    };
    expect(plan.paths.map((p) => p.id)).toEqual(['s1', 's2', 'alar-left', 'alar-right']);
    expect(plan.volume.file).toBe('ct.nii.gz');
    expect(plan.volume.indexToPatient[0][0]).toBeCloseTo(1.5 * Math.cos((2 * Math.PI) / 180), 0);
    for (const level of ['S1', 'S2'] as const) {
      const p = defined(
        plan.paths.find((x) => x.id === level.toLowerCase()),
        `plan path ${level}`,
      );
      const c = truth.corridors[level];
      // From the right ilium (entry, x < -60) to the left one, and where it crosses the midline it is
      // within 3 mm of the truth axis (the axis may slide a-p a little without narrowing, see the phantom README).
      expect(p.entry[0]).toBeLessThan(-60);
      expect(p.target[0]).toBeGreaterThan(60);
      const midX = (c.entry[0] + c.exit[0]) / 2;
      expect(distToLine(crossX(p.entry, p.target, midX), c.entry, c.exit)).toBeLessThan(3);
      // The tool's clearance radius cannot beat the truth's widest radius by more than a voxel.
      const a = defined(
        res.results.find((x) => x.id === level.toLowerCase()),
        `result ${level}`,
      ).analysis;
      expect(a.minClearanceMm + a.diameterMm / 2).toBeLessThan(c.safeRadiusMm + 1.5);
      expect(a.breaches).toEqual([]);
    }
  }, 60_000);

  it(
    'writes 3D Slicer markups (phantom named explicitly); analyze --json on plan.json ' +
      '(labels without truth.json) finds S2 fits and a path through the canal breaches',
    async () => {
      const mrk = path.join(dir, 'plan.mrk.json');
      let r = await runCli(
        'plan',
        path.join(dir, 'ct.nii.gz'),
        '--labels',
        path.join(dir, 'labels.nii.gz'),
        '--anatomy',
        'phantom',
        '--auto',
        's2',
        '--out',
        mrk,
      );
      expect(r.code, r.err).toBe(0);
      const doc = JSON.parse(await readFile(mrk, 'utf8')) as {
        markups: { type: string; controlPoints: { position: P3 }[] }[];
      };
      expect(doc.markups[0].type).toBe('Line');
      expect(doc.markups[0].controlPoints).toHaveLength(2);

      // Labels alone in another folder: the phantom is recognized from its label values.
      const alone = path.join(dir, 'alone');
      await mkdir(alone);
      await copyFile(path.join(dir, 'labels.nii.gz'), path.join(alone, 'labels.nii.gz'));
      // A path through the spinal canal: level, through the midpoint of the S1 foramina's canal points.
      const s1l = defined(
        truth.foramina.find((f) => f.name === 'S1L'),
        'foramen S1L',
      ).canalPoint;
      const s1r = defined(
        truth.foramina.find((f) => f.name === 'S1R'),
        'foramen S1R',
      ).canalPoint;
      const c: P3 = [(s1l[0] + s1r[0]) / 2, (s1l[1] + s1r[1]) / 2, (s1l[2] + s1r[2]) / 2];
      const handPlan = {
        schemaVersion: 1,
        volume: { file: 'ct.nii.gz' },
        paths: [
          {
            id: 'bad',
            name: 'through the canal',
            kind: 'screw',
            diameterMm: 7.3,
            entry: [c[0] - 90, c[1], c[2]],
            target: [c[0] + 90, c[1], c[2]],
          },
        ],
      };
      const badFile = path.join(dir, 'bad.json');
      await writeFile(badFile, JSON.stringify(handPlan));
      r = await runCli(
        'analyze',
        path.join(dir, 'plan.json'),
        path.join(dir, 'ct.nii.gz'),
        '--labels',
        path.join(alone, 'labels.nii.gz'),
        '--json',
      );
      expect(r.code, r.err).toBe(0);
      const s2 = defined(
        (JSON.parse(r.out) as { paths: Analysis[] }).paths.find((p) => p.id === 's2'),
        'analysis of s2',
      );
      expect(s2.fits).toBe(true);
      // S2's truth radius is 5 mm: a 7.3 mm screw has at most 5 - 3.65 mm (+ a voxel) of clearance.
      expect(s2.minClearanceMm).toBeGreaterThanOrEqual(1);
      expect(s2.minClearanceMm).toBeLessThan(truth.corridors.S2.safeRadiusMm - 3.65 + 1.5);

      r = await runCli(
        'analyze',
        badFile,
        path.join(dir, 'ct.nii.gz'),
        '--labels',
        path.join(alone, 'labels.nii.gz'),
        '--json',
      );
      expect(r.code, r.err).toBe(0);
      const bad = (JSON.parse(r.out) as { paths: Analysis[] }).paths[0];
      expect(bad.fits).toBe(false);
      const canal = bad.breaches.find((b) => b.structure === 'spinal canal');
      expect(canal).toBeDefined();
      // The axis runs through the canal (about 15 mm deep at S1): the tool reaches well past its wall.
      expect(defined(canal, 'the spinal canal breach').depthMm).toBeGreaterThan(3.65);
    },
    60_000,
  );

  it('analyze with no options gives each path the fit, clearance and widest tool it was planned with', async () => {
    const out = path.join(dir, 'plan-defaults.json');
    let r = await runCli(
      'plan',
      path.join(dir, 'ct.nii.gz'),
      '--labels',
      path.join(dir, 'labels.nii.gz'),
      '--auto',
      's1,s2,alar-left,alar-right',
      '--out',
      out,
      '--json',
    );
    expect(r.code, r.err).toBe(0);
    const planned = (
      JSON.parse(r.out) as {
        results: { id: string; analysis: Analysis & { maxDiameterMm: number; marginMm: number } }[];
      }
    ).results;
    r = await runCli(
      'analyze',
      out,
      path.join(dir, 'ct.nii.gz'),
      '--labels',
      path.join(dir, 'labels.nii.gz'),
      '--json',
    );
    expect(r.code, r.err).toBe(0);
    const again = (JSON.parse(r.out) as { paths: (Analysis & { maxDiameterMm: number; marginMm: number })[] }).paths;
    expect(again.map((a) => a.id)).toEqual(planned.map((p) => p.id));
    planned.forEach(({ analysis: p }, i) => {
      // Alar paths are planned at 2 mm: analyze must not fall back to 1 mm (it did: 17.1 vs 19.1 mm).
      expect(again[i].marginMm).toBe(p.id.startsWith('alar') ? 2 : 1);
      expect(again[i].fits).toBe(p.fits);
      expect(again[i].minClearanceMm).toBeCloseTo(p.minClearanceMm, 9);
      expect(again[i].maxDiameterMm).toBeCloseTo(p.maxDiameterMm, 9);
    });
  }, 60_000);

  it('refuses labels of another grid, a plan on another volume, a seed outside the CT, writing nothing', async () => {
    const other = path.join(dir, 'other-2mm');
    let r = await runCli('phantom', '--out', other, '--voxel', '2', '--quiet');
    expect(r.code, r.err).toBe(0);
    const dims = (d: string) =>
      readFile(path.join(d, 'truth.json'), 'utf8').then((t) => (JSON.parse(t) as { dims: number[] }).dims.join(' x '));
    const out = path.join(dir, 'refused.json');
    r = await runCli(
      'plan',
      path.join(dir, 'ct.nii.gz'),
      '--labels',
      path.join(other, 'labels.nii.gz'),
      '--anatomy',
      'phantom',
      '--auto',
      's1',
      '--out',
      out,
    );
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/the segmentation is not on the CT's grid/);
    // Both grids, by their voxel counts (from each phantom's truth.json, 1.5 and 2 mm).
    expect(r.err).toContain(await dims(dir));
    expect(r.err).toContain(await dims(other));
    expect(existsSync(out)).toBe(false);

    r = await runCli(
      'analyze',
      path.join(dir, 'plan.json'),
      path.join(other, 'ct.nii.gz'),
      '--labels',
      path.join(other, 'labels.nii.gz'),
    );
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/plan\.json: the plan was made on another grid/);
    expect(r.out).not.toMatch(/Infinity|NaN/);

    r = await runCli(
      'plan',
      path.join(dir, 'ct.nii.gz'),
      '--labels',
      path.join(dir, 'labels.nii.gz'),
      '--auto',
      's1',
      '--seed',
      's1=900,0,0',
      '--out',
      out,
    );
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/the s1 seed \(900\.0, 0\.0, 0\.0\) mm LPS lies outside the CT/);
    expect(existsSync(out)).toBe(false);
  }, 60_000);

  it('reads a --seed in LPS, RAS or voxel-index form (named) to the same plan; bare means LPS', async () => {
    // The S1 truth corridor's middle, LPS mm; its RAS form is (-x, -y, z) and its voxel index comes from
    // the CT's own header, read here with core's reader (not the CLI's code path).
    const c = truth.corridors.S1;
    const mid: P3 = [0, 1, 2].map((a) => (c.entry[a] + c.exit[a]) / 2) as P3;
    const ct = readNifti(new Uint8Array(await readFile(path.join(dir, 'ct.nii.gz'))), 'ct.nii.gz').volume;
    const m = ct.patientToIndex;
    const ijk = [0, 1, 2].map((r) => m[r * 4] * mid[0] + m[r * 4 + 1] * mid[1] + m[r * 4 + 2] * mid[2] + m[r * 4 + 3]);
    const forms = [
      `s1=${mid.join(',')}`,
      `s1=lps:${mid.join(',')}`,
      `s1=ras:${-mid[0]},${-mid[1]},${mid[2]}`,
      `s1=ijk:${ijk.join(',')}`,
    ];
    const planned: PlanFile[] = [];
    for (const [n, seed] of forms.entries()) {
      const out = path.join(dir, `seed-${n}.json`);
      const r = await runCli(
        'plan',
        path.join(dir, 'ct.nii.gz'),
        '--labels',
        path.join(dir, 'labels.nii.gz'),
        '--auto',
        's1',
        '--seed',
        seed,
        '--out',
        out,
      );
      expect(r.code, r.err).toBe(0);
      planned.push(JSON.parse(await readFile(out, 'utf8')) as PlanFile);
    }
    const s1 = planned.map((p) =>
      defined(
        p.paths.find((q) => q.id === 's1'),
        's1 path',
      ),
    );
    for (const p of s1.slice(1))
      for (let a = 0; a < 3; a++) {
        expect(Math.abs(p.entry[a] - s1[0].entry[a])).toBeLessThan(1e-6);
        expect(Math.abs(p.target[a] - s1[0].target[a])).toBeLessThan(1e-6);
      }
    const bad = await runCli(
      'plan',
      path.join(dir, 'ct.nii.gz'),
      '--labels',
      path.join(dir, 'labels.nii.gz'),
      '--auto',
      's1',
      '--seed',
      's1=xyz:1,2,3',
      '--out',
      path.join(dir, 'bad.json'),
    );
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/--seed "s1=xyz:1,2,3": unknown coordinate form "xyz"/);
  }, 120_000);

  it('rejects an unknown anatomy, naming the option', async () => {
    const r = await runCli(
      'plan',
      path.join(dir, 'ct.nii.gz'),
      '--labels',
      path.join(dir, 'labels.nii.gz'),
      '--anatomy',
      'atlas',
      '--auto',
      's1',
      '--out',
      path.join(dir, 'x.json'),
    );
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/--anatomy "atlas"/);
  });
});

/**
 * Intensities only, on the real 1 mm CT (Visible Human female pelvis; core's vhf.test.ts checks the same
 * paths against the CT itself): what that test does through the core, a user does with the CLI's seeds
 * and --fill-planes. Without the sagittal and coronal fill this demineralized sacrum's mask leaks into
 * the foramina and S1 narrows to nothing. S2 takes the bone mask preset demineralized-faint-cortex (the
 * fill, a wider seal, a stricter soft-tissue threshold), in a second run that --append adds to the plan.
 */
const vhf = path.join(sharedDataDir(), 'vhf-pelvis-ct', 'ct.nii.gz');
describe.skipIf(!existsSync(vhf))('corridor plan from intensities (real CT, seeds, --fill-planes)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-plan-vhf-'));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it(
    'plans S1 ilium to ilium fitting a 7.3 mm screw and the left alar path in the left ala; ' +
      'adds S2 (its own map settings) with --append',
    async () => {
      const out = path.join(dir, 'plan.json');
      const r = await runCli(
        'plan',
        vhf,
        '--auto',
        's1,alar-left',
        '--seed',
        's1=246,284,982',
        '--seed',
        'alar-left=300,292,972',
        '--fill-planes',
        'x,y',
        '--out',
        out,
        '--json',
      );
      expect(r.code, r.err).toBe(0);
      const res = JSON.parse(r.out) as {
        results: { id: string; analysis: Analysis & { cortexEntry: P3; cortexExit: P3 } }[];
      };
      const s1 = defined(
        res.results.find((x) => x.id === 's1'),
        'result s1',
      ).analysis;
      const ends = [s1.cortexEntry, s1.cortexExit].sort((p, q) => p[0] - q[0]);
      // The sacroiliac joints lie at x = 189 and 309 mm at this level (vhf.test.ts): both ends beyond them.
      expect(ends[0][0]).toBeLessThan(179);
      expect(ends[1][0]).toBeGreaterThan(319);
      expect(s1.fits).toBe(true);
      expect(s1.breaches).toEqual([]);
      const planned = JSON.parse(await readFile(out, 'utf8')) as PlanFile;
      const alar = defined(
        planned.paths.find((p) => p.id === 'alar-left'),
        'plan path alar-left',
      );
      for (const p of [alar.entry, alar.target]) expect(p[0]).toBeGreaterThan(246 + 25);
      // The same seed on the 3D fill alone: the leaking mask leaves no S1 corridor at all.
      const plain = await runCli(
        'plan',
        vhf,
        '--auto',
        's1',
        '--seed',
        's1=246,284,982',
        '--out',
        path.join(dir, 'plain.json'),
        '--json',
      );
      expect(plain.code, plain.err).toBe(0);
      expect((JSON.parse(plain.out) as { results: { analysis: Analysis }[] }).results[0].analysis.fits).toBe(false);
      // S2 needs a map of its own (vhf.test.ts: a wider seal for its faint lateral masses, a stricter
      // soft-tissue threshold): planned with those settings and added to the same plan.
      const before = JSON.parse(await readFile(out, 'utf8')) as { paths: { id: string }[] };
      const s2run = await runCli(
        'plan',
        vhf,
        '--auto',
        's2',
        '--seed',
        's2=246,316,961',
        '--bone-mask',
        'demineralized-faint-cortex',
        '--out',
        out,
        '--append',
        '--json',
      );
      expect(s2run.code, s2run.err).toBe(0);
      const after = JSON.parse(await readFile(out, 'utf8')) as { paths: { id: string }[] };
      expect(after.paths.map((p) => p.id)).toEqual(['s1', 'alar-left', 's2']);
      expect(after.paths.slice(0, 2)).toEqual(before.paths);
      const s2res = (
        JSON.parse(s2run.out) as {
          results: { id: string; analysis: Analysis & { cortexEntry: P3; cortexExit: P3 }; notes: string[] }[];
        }
      ).results[0];
      const e2 = [s2res.analysis.cortexEntry, s2res.analysis.cortexExit].sort((p, q) => p[0] - q[0]);
      expect(e2[0][0]).toBeLessThan(184);
      expect(e2[1][0]).toBeGreaterThan(314);
      const zAtMidline = (e: P3[]) => e[0][2] + ((246 - e[0][0]) / (e[1][0] - e[0][0])) * (e[1][2] - e[0][2]);
      expect(zAtMidline(ends) - zAtMidline(e2)).toBeGreaterThan(12);
      expect(s2res.analysis.fits).toBe(false);
      expect(s2res.notes.join(' ')).toMatch(/no corridor fits a 7\.3 mm screw/);
    },
    180_000,
  );

  it('--append refuses a plan made on another volume and leaves that file as it was', async () => {
    const other = path.join(dir, 'other.json');
    const text = JSON.stringify({
      schemaVersion: 1,
      volume: {
        file: 'x.nii.gz',
        indexToPatient: [
          [1, 0, 0, 0],
          [0, 1, 0, 0],
          [0, 0, 1, 0],
          [0, 0, 0, 1],
        ],
      },
      paths: [],
    });
    await writeFile(other, text);
    const r = await runCli('plan', vhf, '--auto', 's1', '--seed', 's1=246,284,982', '--out', other, '--append');
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/other\.json: .*another geometry/);
    expect(await readFile(other, 'utf8')).toBe(text);
  }, 60_000);

  it('refuses a bad --fill-planes, --search-mm, --seal-mm, --soft-tissue-hu or --bone-mask and names it', async () => {
    const base = ['plan', vhf, '--auto', 's2', '--seed', 's2=246,301,965', '--out', path.join(dir, 'x.json')];
    const a = await runCli(...base, '--fill-planes', 'x,q');
    expect(a.code).not.toBe(0);
    expect(a.err).toMatch(/--fill-planes "x,q"/);
    const b = await runCli(...base, '--search-mm', '-3');
    expect(b.code).not.toBe(0);
    expect(b.err).toMatch(/--search-mm "-3"/);
    const c = await runCli(...base, '--seal-mm', '-1');
    expect(c.code).not.toBe(0);
    expect(c.err).toMatch(/--seal-mm "-1"/);
    const d = await runCli(...base, '--soft-tissue-hu', 'fat');
    expect(d.code).not.toBe(0);
    expect(d.err).toMatch(/--soft-tissue-hu "fat"/);
    const e = await runCli(...base, '--bone-mask', 'osteoporotic');
    expect(e.code).not.toBe(0);
    expect(e.err).toMatch(/--bone-mask: bone mask "osteoporotic" is not one of standard, demineralized/);
  });
});
