/**
 * `corridor cement` end to end on phantoms written by `corridor phantom` (1.5 mm, to keep the file
 * short): the pins stage as the baseline, the cement stage (4 ml per side) and the cement stage with a
 * 0.3 ml leak into S2R as two injection scans. Expected figures come from truth.json (the 4 ml per site,
 * the leak's foramen), never from the code under test.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mat4FromRows, mat4Multiply, writeNifti, createVolume } from '@corridor/core';
import { runCli } from '../test-helpers/run-cli.js';
import { loadVolume } from './verify.js';
import { parseWarningMm } from './cement.js';

type P3 = [number, number, number];
interface Truth {
  alarPaths: Record<'left' | 'right', { entry: P3; target: P3 }>;
  cement: { site: string; volumeMl: number }[];
}
interface Report {
  kind: string;
  verdict: string;
  structureSource: string;
  foramina: { source: string; method?: string; warnings?: string[] };
  scans: {
    verdict: string;
    sites: { pathId: string; volumeMl: number; growthMl: number }[];
    leaks: { name: string; site: string }[];
    reasons: unknown[];
    registration: { status: string; rotationDeg: number[]; translationMm: number[] } | null;
  }[];
}

describe('corridor cement on the phantom', () => {
  let dir: string, planFile: string;
  const stage = (n: string) => path.join(dir, n, 'ct.nii.gz');
  let truth: Truth;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-cement-'));
    const common = ['--voxel', '1.5', '--quiet'];
    for (const [name, extra] of [
      ['base', ['--stage', 'pins']],
      ['c1', ['--stage', 'cement']],
      ['c2', ['--stage', 'cement', '--leak', 'S2R', '--leak-ml', '0.3']],
    ] as const) {
      const r = await runCli('phantom', '--out', path.join(dir, name), ...extra, ...common);
      expect(r.code, r.err).toBe(0);
    }
    truth = JSON.parse(await readFile(path.join(dir, 'c1', 'truth.json'), 'utf8')) as Truth;
    const a = truth.alarPaths;
    const trocar = (id: string, p: { entry: P3; target: P3 }) => ({ id, kind: 'trocar', diameterMm: 3.05, ...p });
    planFile = path.join(dir, 'plan.json');
    await writeFile(
      planFile,
      JSON.stringify({
        schemaVersion: 1,
        volume: {},
        paths: [trocar('alar-left', a.left), trocar('alar-right', a.right)],
      }),
    );
  }, 120_000);
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('prints a table per scan, stops on the S2R leak and writes the report', async () => {
    const out = path.join(dir, 'cement.json');
    const labels = path.join(dir, 'base', 'labels.nii.gz');
    const args = ['--plan', planFile, '--baseline', stage('base'), '--scan', stage('c1'), '--scan', stage('c2')];
    const r = await runCli('cement', ...args, '--labels', labels, '--out', out);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^scan 1 .*: CONTINUE/m);
    expect(r.out).toMatch(/^scan 2 .*: STOP/m);
    expect(r.out).toMatch(/STOP: .* in S2R/);
    expect(r.out).toMatch(/^LATEST SCAN: STOP/m);
    const rep = JSON.parse(await readFile(out, 'utf8')) as Report;
    expect(rep.kind).toBe('corridor-cement');
    expect(rep.structureSource).toBe('labels');
    for (const tc of truth.cement) {
      const s = rep.scans[0].sites.find((x) => x.pathId === `alar-${tc.site}`);
      expect(Math.abs((s?.volumeMl ?? 0) - tc.volumeMl) / tc.volumeMl).toBeLessThan(0.05);
    }
    expect(rep.scans[1].leaks.map((l) => l.name)).toEqual(['S2R']);
    // --json prints the same report; without labels no leak can be seen (and the notes say so).
    const j = await runCli('cement', ...args, '--json');
    expect(j.code, j.err).toBe(0);
    const rep2 = JSON.parse(j.out) as Report;
    expect(rep2.structureSource).toBe('none');
    // At 1.5 mm the foramina are not looked for in the image, and the report says why.
    expect(rep2.foramina.source).toBe('none');
    expect(rep2.foramina.warnings?.join(' ')).toMatch(/coarser than 1\.2 mm/);
    expect(rep2.scans[0].sites).toEqual(rep.scans[0].sites);
  });

  it('registers a scan from another frame to the baseline (and refuses it with --register never)', async () => {
    // The first cement scan placed 5 deg about z and 14 mm away: another scanner's frame.
    const c = Math.cos((5 * Math.PI) / 180),
      sn = Math.sin((5 * Math.PI) / 180);
    const M = mat4FromRows([c, -sn, 0, 10, sn, c, 0, -8, 0, 0, 1, 6, 0, 0, 0, 1]);
    const v = await loadVolume(stage('c1'));
    const movedFile = path.join(dir, 'c1-moved.nii');
    const moved = createVolume({
      data: v.data,
      dims: v.dims,
      indexToPatient: mat4Multiply(new Float64Array(16), M, v.indexToPatient),
    });
    await writeFile(movedFile, writeNifti(moved));
    const labels = path.join(dir, 'base', 'labels.nii.gz');
    const args = ['--plan', planFile, '--baseline', stage('base'), '--scan', movedFile, '--labels', labels];
    const out = path.join(dir, 'registered.json');
    const r = await runCli('cement', ...args, '--out', out);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/registered to the baseline/);
    const rep = JSON.parse(await readFile(out, 'utf8')) as Report;
    const s = rep.scans[0];
    expect(s.registration?.status).toBe('ok');
    // The registration's rotation undoes the 5 deg about z (its sign convention: fixed -> moving).
    expect(Math.abs(Math.abs(s.registration?.rotationDeg[2] ?? 0) - 5)).toBeLessThan(0.1);
    expect(s.verdict).toBe('continue');
    expect(s.reasons).toEqual([]);
    for (const tc of truth.cement) {
      const x = s.sites.find((y) => y.pathId === `alar-${tc.site}`);
      expect(Math.abs((x?.volumeMl ?? 0) - tc.volumeMl) / tc.volumeMl).toBeLessThan(0.05);
    }
    const n = await runCli('cement', ...args, '--register', 'never');
    expect(n.code).toBe(2);
    expect(n.err).toMatch(/baseline grid/);
  });

  it('refuses to write over an input or a file of another kind, and a bad --warning-mm', async () => {
    const args = ['--plan', planFile, '--baseline', stage('base'), '--scan', stage('c1')];
    const r = await runCli('cement', ...args, '--out', planFile);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/WriteError.*input/);
    const r2 = await runCli('cement', ...args, '--out', path.join(dir, 'c1', 'truth.json'));
    expect(r2.code).toBe(2);
    expect(r2.err).toMatch(/not a cement report/);
    expect(() => parseWarningMm('-1')).toThrow(/warning-mm/);
    expect(parseWarningMm(undefined)).toBe(3);
  });
});
