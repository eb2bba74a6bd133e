/**
 * kill -9 during a burst of saves by the full CLI (`corridor plan --append`, issue 14): after each kill
 * the plan file is either a version a save had completed (its SHA-256 was printed after the save
 * returned) or the version being saved, complete: valid JSON that core's parsePlan accepts, with at least
 * the paths of the last complete version. Never absent once a save completed, never torn.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePlan } from '@corridor/core';
import { bundleForNode } from '../test-helpers/bundle.js';
import { runCli } from '../test-helpers/run-cli.js';

const here = path.dirname(fileURLToPath(import.meta.url));
let dir: string;
let child: string;

beforeAll(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'corridor-plan-kill-'));
  child = await bundleForNode(path.join(here, '../test-helpers/plan-burst-child.ts'), path.join(dir, 'child.mjs'));
  const r = await runCli('phantom', '--out', path.join(dir, 'ph'), '--voxel', '3', '--quiet');
  expect(r.code, r.err).toBe(0);
}, 120_000);

afterAll(async () => {
  if (dir) await fsp.rm(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('kill -9 during corridor plan --append saves', () => {
  it('after each of the kills the plan is the previous or the new version, complete', async () => {
    const ct = path.join(dir, 'ph', 'ct.nii.gz');
    const labels = path.join(dir, 'ph', 'labels.nii.gz');
    const out = path.join(dir, 'ph', 'plan.json');
    const saved = new Set<string>();
    let lastCount = 0;
    let lastIds: string[] = [];
    let completed = 0;
    let kills = 0,
      inFlight = 0,
      absent = 0;
    const t0 = Date.now();
    // About 20 s of kills: each run starts node, loads the CT and plans a path per save (~0.3-1 s here).
    while (Date.now() - t0 < 20_000 || kills < 8) {
      const p = spawn(process.execPath, [child, ct, labels, out], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '',
        stderr = '';
      p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
      p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      await sleep(300 + Math.random() * 2200);
      p.kill('SIGKILL');
      const code = await new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
      kills++;
      expect(code, stderr).toBe(null); // killed, not exited with an error
      for (const m of stdout.matchAll(/^SAVED ([0-9a-f]{64})$/gm)) {
        saved.add(m[1]);
        completed++;
      }
      let bytes: Buffer;
      try {
        bytes = await fsp.readFile(out);
      } catch {
        expect(saved.size).toBe(0); // absent only before any save completed
        absent++;
        continue;
      }
      const text = bytes.toString('utf8');
      const plan = parsePlan(text, out); // complete: valid JSON and a valid plan, or this throws
      const sha = createHash('sha256').update(bytes).digest('hex');
      if (!saved.has(sha)) inFlight++; // the save under way when killed (or done, its line not printed)
      expect(plan.paths.length).toBeGreaterThanOrEqual(lastCount);
      expect(plan.paths.length).toBeLessThanOrEqual(4);
      lastCount = plan.paths.length;
      lastIds = plan.paths.map((x) => x.id);
    }
    expect(saved.size).toBeGreaterThan(0);
    expect(lastCount).toBeGreaterThanOrEqual(2); // it grew: the restarted bursts went on from the file
    const temps = (await fsp.readdir(path.dirname(out))).filter((n) => /\.tmp$|\.lock$/.test(n));
    console.log(
      `plan --append kill -9: ${kills} kills in ${((Date.now() - t0) / 1000).toFixed(1)} s, ${completed} ` +
        `saves completed (${saved.size} distinct versions), ${inFlight} kills found a version not yet reported, ${absent} before the first save, ` +
        `${temps.length} temporary/lock files of killed writers`,
    );
    // A later save after all those kills works (a dead writer's lock is broken) and keeps every path.
    const r = await runCli('plan', ct, '--labels', labels, '--auto', 's1', '--out', out, '--append');
    expect(r.code, r.err).toBe(0);
    const final = parsePlan(await fsp.readFile(out, 'utf8'), out).paths.map((x) => x.id);
    expect(final.sort()).toEqual([...new Set([...lastIds, 's1'])].sort());
  }, 90_000);
});
