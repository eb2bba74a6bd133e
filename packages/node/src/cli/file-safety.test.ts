/**
 * Nothing saved is lost (issue 14), end to end on a 3 mm phantom: concurrent `plan --append` writers
 * (real processes) each keep their path; a command never writes over its own input or over a file of
 * another kind unless --force; `phantom --dicom` never deletes a user's file in DIR/dicom.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../test-helpers/run-cli.js';
import { bundleForNode } from '../test-helpers/bundle.js';

const here = path.dirname(fileURLToPath(import.meta.url));
let dir: string;
let cli: string;
let ct: string;
let labels: string;

const sha = async (f: string) =>
  createHash('sha256')
    .update(await fsp.readFile(f))
    .digest('hex');

function corridor(args: string[]): Promise<{ code: number | null; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (b: Buffer) => (err += b.toString()));
    p.on('exit', (code) => resolve({ code, err }));
  });
}

beforeAll(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'corridor-safety-'));
  cli = await bundleForNode(path.join(here, '../test-helpers/cli-entry.ts'), path.join(dir, 'corridor.mjs'));
  const r = await runCli('phantom', '--out', path.join(dir, 'ph'), '--voxel', '3', '--quiet');
  expect(r.code, r.err).toBe(0);
  ct = path.join(dir, 'ph', 'ct.nii.gz');
  labels = path.join(dir, 'ph', 'labels.nii.gz');
}, 120_000);

afterAll(async () => {
  if (dir) await fsp.rm(dir, { recursive: true, force: true });
});

const planArgs = (id: string, out: string) => ['plan', ct, '--labels', labels, '--auto', id, '--out', out, '--append'];

describe('concurrent plan --append (real corridor processes)', () => {
  const four = ['s1', 's2', 'alar-left', 'alar-right'];
  // Ten writers cycle through the four path ids there are: each id must be in the plan, once.
  const ten = Array.from({ length: 10 }, (_, i) => four[i % 4]);
  for (const ids of [['s1', 's2'], four, ten]) {
    const distinct = [...new Set(ids)].sort();
    it(`${ids.length} writers at once: all ${distinct.length} path ids in the final plan, once each`, async () => {
      const out = path.join(await fsp.mkdtemp(path.join(dir, 'append-')), 'plan.json');
      const results = await Promise.all(ids.map((id) => corridor(planArgs(id, out))));
      for (const r of results) expect(r.code, r.err).toBe(0);
      const plan = JSON.parse(await fsp.readFile(out, 'utf8')) as { paths: { id: string }[] };
      expect(plan.paths.map((p) => p.id).sort()).toEqual(distinct);
      expect(await fsp.readdir(path.dirname(out))).toEqual(['plan.json']); // no lock or temp file left
    }, 120_000);
  }
});

describe('refusals to overwrite', () => {
  it('plan --out the CT (or the labels, spelt otherwise): exit 2, WriteError naming it, unchanged', async () => {
    const before = await sha(ct);
    const r = await runCli('plan', ct, '--labels', labels, '--auto', 's1', '--out', ct);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`WriteError: ${ct}: is the input ${ct} of this command`);
    const other = path.join(dir, 'ph', '..', 'ph', 'labels.nii.gz');
    const r2 = await runCli('plan', ct, '--labels', labels, '--auto', 's1', '--out', other);
    expect(r2.code).toBe(2);
    expect(r2.err).toContain('is the input');
    expect(await sha(ct)).toBe(before);
  });

  it('plan --out an existing .nii.gz or a non-plan JSON: refused (exit 2); --force writes', async () => {
    const d = await fsp.mkdtemp(path.join(dir, 'kind-'));
    const vol = path.join(d, 'copy.nii.gz');
    await fsp.copyFile(ct, vol);
    const notPlan = path.join(d, 'settings.json');
    await fsp.writeFile(notPlan, '{"theme": "dark"}\n');
    for (const f of [vol, notPlan]) {
      const before = await sha(f);
      const r = await runCli('plan', ct, '--labels', labels, '--auto', 's1', '--out', f);
      expect(r.code).toBe(2);
      expect(r.err).toContain(`${f}: exists and is not a plan`);
      expect(await sha(f)).toBe(before);
    }
    const r = await runCli('plan', ct, '--labels', labels, '--auto', 's1', '--out', notPlan, '--force');
    expect(r.code, r.err).toBe(0);
    expect((JSON.parse(await fsp.readFile(notPlan, 'utf8')) as { paths: unknown[] }).paths.length).toBe(1);
    // An existing plan is the same kind: overwritten without --force (1 path, s2 now).
    const r3 = await runCli('plan', ct, '--labels', labels, '--auto', 's2', '--out', notPlan);
    expect(r3.code, r3.err).toBe(0);
    expect((JSON.parse(await fsp.readFile(notPlan, 'utf8')) as { paths: { id: string }[] }).paths[0].id).toBe('s2');
  });

  it('convert IN IN and convert onto a PNG: refused (exit 2); convert IN IN --force rewrites', async () => {
    const d = await fsp.mkdtemp(path.join(dir, 'convert-'));
    const f = path.join(d, 'ct.nii.gz');
    await fsp.copyFile(ct, f);
    const png = path.join(d, 'picture.nii');
    await fsp.writeFile(png, Buffer.from([0x89, 0x50, 0x4e, 0x47, 13, 10, 26, 10]));
    const before = await sha(f);
    expect((await runCli('convert', f, f)).code).toBe(2);
    const r = await runCli('convert', f, png);
    expect(r.code).toBe(2);
    expect(r.err).toContain('exists and is not an image volume');
    expect(await sha(f)).toBe(before);
    expect((await fsp.readFile(png)).length).toBe(8);
    const r2 = await runCli('convert', f, f, '--force');
    expect(r2.code, r2.err).toBe(0);
    expect((await runCli('info', f)).code).toBe(0); // still a readable volume
  });

  it('drr --out onto the plan it overlays: refused (exit 2), the plan unchanged', async () => {
    const d = await fsp.mkdtemp(path.join(dir, 'drr-'));
    const plan = path.join(d, 'plan.json');
    expect((await runCli('plan', ct, '--labels', labels, '--auto', 's1', '--out', plan)).code).toBe(0);
    const before = await sha(plan);
    const r = await runCli('drr', ct, '--plan', plan, '--size', '16', '--out', plan);
    expect(r.code).toBe(2);
    expect(r.err).toContain('is the input');
    expect(await sha(plan)).toBe(before);
  });
});

describe("phantom --dicom and a user's files", () => {
  it("leaves a user's file in DIR/dicom alone: refused without --force; with --force written beside it", async () => {
    const out = path.join(dir, 'phd');
    const base = ['phantom', '--out', out, '--voxel', '3', '--quiet', '--dicom'];
    expect((await runCli(...base)).code).toBe(0);
    const slices = (await fsp.readdir(path.join(out, 'dicom'))).sort();
    expect(slices.length).toBeGreaterThan(1);
    // A second run replaces its own series: the same slice names, nothing refused.
    expect((await runCli(...base)).code).toBe(0);
    expect((await fsp.readdir(path.join(out, 'dicom'))).sort()).toEqual(slices);
    const mine = path.join(out, 'dicom', 'my-notes.txt');
    await fsp.writeFile(mine, 'do not delete\n');
    const r = await runCli(...base);
    expect(r.code).toBe(2);
    expect(r.err).toContain('holds files that are not a phantom series (my-notes.txt)');
    expect(await fsp.readFile(mine, 'utf8')).toBe('do not delete\n');
    const r2 = await runCli(...base, '--force');
    expect(r2.code, r2.err).toBe(0);
    expect(await fsp.readFile(mine, 'utf8')).toBe('do not delete\n');
    expect((await fsp.readdir(path.join(out, 'dicom'))).length).toBe(slices.length + 1); // its series + the note
  }, 120_000);

  it("an own stale slice is removed; a truth.json that is not the phantom's is refused", async () => {
    const out = path.join(dir, 'phs');
    const base = ['phantom', '--out', out, '--voxel', '3', '--quiet', '--dicom'];
    expect((await runCli(...base)).code).toBe(0);
    const slices = (await fsp.readdir(path.join(out, 'dicom'))).sort();
    // A copy of an own slice under another name stands for a slice of an earlier, longer series.
    await fsp.copyFile(path.join(out, 'dicom', slices[0]), path.join(out, 'dicom', 'slice9999.dcm'));
    expect((await runCli(...base)).code).toBe(0);
    expect((await fsp.readdir(path.join(out, 'dicom'))).sort()).toEqual(slices);
    await fsp.writeFile(path.join(out, 'truth.json'), '{"mine": true}\n');
    const r = await runCli(...base);
    expect(r.code).toBe(2);
    expect(r.err).toContain("exists and is not a phantom's truth.json");
  }, 120_000);
});
