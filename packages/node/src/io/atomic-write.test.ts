/**
 * The atomic writer and the guarded update: kill -9 during a burst of saves never leaves a torn file,
 * an injected ENOSPC leaves the old file and no temporary file, and concurrent updaters (in-process
 * and as real processes) each keep their change.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WriteError } from '@corridor/core';
import { bundleForNode } from '../test-helpers/bundle.js';
import { updateFileAtomic, withFileLock, writeFileAtomic } from './atomic-write.js';

const here = path.dirname(fileURLToPath(import.meta.url));
let dir: string;
let child: string;

beforeAll(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'corridor-atomic-'));
  child = await bundleForNode(path.join(here, '../test-helpers/atomic-child.ts'), path.join(dir, 'child.mjs'));
}, 60_000);

afterAll(async () => {
  if (dir) await fsp.rm(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function errno(code: string): NodeJS.ErrnoException {
  const e = new Error(`${code}: injected`) as NodeJS.ErrnoException;
  e.code = code;
  return e;
}

/** Names in `d` other than the files the test itself keeps there. */
async function leftovers(d: string, keep: string[]): Promise<string[]> {
  return (await fsp.readdir(d)).filter((n) => !keep.includes(n));
}

function run(args: string[]): Promise<{ code: number | null; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [child, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (b: Buffer) => (err += b.toString()));
    p.on('exit', (code) => resolve({ code, err }));
  });
}

describe('writeFileAtomic', () => {
  it('replaces the file and leaves no temporary file: 1 entry in the folder, the new content', async () => {
    const d = await fsp.mkdtemp(path.join(dir, 'plain-'));
    const f = path.join(d, 'plan.json');
    await writeFileAtomic(f, 'old\n');
    await writeFileAtomic(f, 'new\n');
    expect(await fsp.readFile(f, 'utf8')).toBe('new\n');
    expect(await fsp.readdir(d)).toEqual(['plan.json']);
  });

  it('writes through a symbolic link: the link stays a link, its target gets the content', async () => {
    const d = await fsp.mkdtemp(path.join(dir, 'link-'));
    await fsp.writeFile(path.join(d, 'real.json'), 'old');
    await fsp.symlink('real.json', path.join(d, 'plan.json'));
    await writeFileAtomic(path.join(d, 'plan.json'), 'new');
    expect((await fsp.lstat(path.join(d, 'plan.json'))).isSymbolicLink()).toBe(true);
    expect(await fsp.readFile(path.join(d, 'real.json'), 'utf8')).toBe('new');
  });

  it('injected ENOSPC: WriteError ENOSPC naming the file; old file intact, no temp file', async () => {
    const d = await fsp.mkdtemp(path.join(dir, 'enospc-'));
    const f = path.join(d, 'plan.json');
    await fsp.writeFile(f, 'the previous version\n');
    // The device fills after the first 10 bytes: a real temp file exists with part of the data when it fails.
    const open = async (p: string, flags: string, mode?: number) => {
      const h = await fsp.open(p, flags, mode);
      return new Proxy(h, {
        get(t, k) {
          if (k === 'writeFile')
            return async (data: string) => {
              await t.writeFile(data.slice(0, 10));
              throw errno('ENOSPC');
            };
          const v = Reflect.get(t, k) as unknown;
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
        },
      });
    };
    const err = await writeFileAtomic(f, 'x'.repeat(1000), { fs: { open } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WriteError);
    expect((err as WriteError).code).toBe('ENOSPC');
    expect((err as WriteError).message).toBe(
      `${f}: no space left on the device while writing; the previous version is unchanged`,
    );
    expect(await fsp.readFile(f, 'utf8')).toBe('the previous version\n');
    expect(await leftovers(d, ['plan.json'])).toEqual([]); // the 10-byte temp file was removed
  });

  it('EACCES at open, EIO at rename: typed errors naming the file, 0 extra files left', async () => {
    const d = await fsp.mkdtemp(path.join(dir, 'eacces-'));
    const f = path.join(d, 'out.png');
    const e1 = await writeFileAtomic(f, 'x', { fs: { open: () => Promise.reject(errno('EACCES')) } }).catch(
      (e: unknown) => e,
    );
    expect(e1).toBeInstanceOf(WriteError);
    expect((e1 as WriteError).code).toBe('EACCES');
    expect((e1 as Error).message).toMatch(new RegExp(`^${f}: permission denied.*nothing was written$`));
    await fsp.writeFile(f, 'old');
    const e2 = await writeFileAtomic(f, 'new', { fs: { rename: () => Promise.reject(errno('EIO')) } }).catch(
      (e: unknown) => e,
    );
    expect((e2 as WriteError).code).toBe('EIO');
    expect(await fsp.readFile(f, 'utf8')).toBe('old');
    expect(await leftovers(d, ['out.png'])).toEqual([]);
  });

  it('kill -9 at 30 random moments of growing saves: the file is always a complete version', async () => {
    const d = await fsp.mkdtemp(path.join(dir, 'kill-'));
    const f = path.join(d, 'plan.json');
    const KILLS = 30;
    let last = 0;
    let absent = 0;
    for (let k = 0; k < KILLS; k++) {
      const p = spawn(process.execPath, [child, 'burst', f], { stdio: 'ignore' });
      await sleep(60 + Math.random() * 240); // node starts in ~50 ms: some kills land before the first save
      p.kill('SIGKILL');
      await new Promise((r) => p.once('exit', r));
      let text: string;
      try {
        text = await fsp.readFile(f, 'utf8');
      } catch {
        // Absent is only right before any save completed.
        expect(last).toBe(0);
        absent++;
        continue;
      }
      const doc = JSON.parse(text) as { n: number; sha: string; paths: unknown[] };
      expect(doc.paths.length).toBe(doc.n);
      expect(createHash('sha256').update(JSON.stringify(doc.paths)).digest('hex')).toBe(doc.sha);
      expect(doc.n).toBeGreaterThanOrEqual(last); // never an older version than one already seen
      last = doc.n;
    }
    // Every kill was checked; at least one save completed over 30 runs of 60-300 ms.
    expect(last).toBeGreaterThan(0);
    const temps = (await fsp.readdir(d)).filter((n) => n.endsWith('.tmp'));
    console.log(
      `kill -9: ${KILLS} kills, ${absent} before the first save, last version ${last} ` +
        `(${((last * 4011) / 1e6).toFixed(1)} MB), ${temps.length} temporary files left by killed writers`,
    );
    // Those temp files (pid dead) are removed by the next save once over a minute old: aged here, 0 remain.
    const old = new Date(Date.now() - 120_000);
    for (const t of temps) await fsp.utimes(path.join(d, t), old, old);
    await writeFileAtomic(f, JSON.stringify({ n: last, sha: '', paths: [] }));
    expect(await fsp.readdir(d)).toEqual(['plan.json']);
  }, 120_000);
});

describe('updateFileAtomic', () => {
  const add = (id: string) => (cur: Uint8Array | null) => {
    const list = cur ? (JSON.parse(new TextDecoder().decode(cur)) as string[]) : [];
    return JSON.stringify([...list, id]);
  };

  it('10 in-process updaters, each held 20 ms between read and write, keep all 10 ids', async () => {
    const f = path.join(await fsp.mkdtemp(path.join(dir, 'upd-')), 'list.json');
    const ids = Array.from({ length: 10 }, (_, i) => `w${i}`);
    await Promise.all(ids.map((id) => updateFileAtomic(f, add(id), { afterRead: () => sleep(20) })));
    expect((JSON.parse(await fsp.readFile(f, 'utf8')) as string[]).sort()).toEqual(ids.sort());
  });

  it('control: the same 10 updaters unguarded keep fewer than 10 ids (the test above can fail)', async () => {
    const f = path.join(await fsp.mkdtemp(path.join(dir, 'naive-')), 'list.json');
    await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const cur = await fsp.readFile(f).catch(() => null);
        await sleep(20);
        await writeFileAtomic(f, add(`w${i}`)(cur));
      }),
    );
    expect((JSON.parse(await fsp.readFile(f, 'utf8')) as string[]).length).toBeLessThan(10);
  });

  it('a writer ignoring the lock changes the file before the rename: the update is redone (2 ids)', async () => {
    const f = path.join(await fsp.mkdtemp(path.join(dir, 'cmp-')), 'list.json');
    await fsp.writeFile(f, '[]');
    let calls = 0;
    await updateFileAtomic(f, add('mine'), {
      afterRead: async () => {
        if (calls++ === 0) await fsp.writeFile(f, JSON.stringify(['theirs'])); // outside the lock
      },
    });
    expect(JSON.parse(await fsp.readFile(f, 'utf8'))).toEqual(['theirs', 'mine']);
    expect(calls).toBe(2); // one attempt discarded, one written
  });

  it("a file changing on every attempt: WriteError conflict after 3, the other writer's content kept", async () => {
    const f = path.join(await fsp.mkdtemp(path.join(dir, 'conf-')), 'list.json');
    await fsp.writeFile(f, '[]');
    let n = 0;
    const err = await updateFileAtomic(f, add('mine'), {
      attempts: 3,
      afterRead: () => fsp.writeFile(f, JSON.stringify([`theirs${n++}`])),
    }).catch((e: unknown) => e);
    expect((err as WriteError).code).toBe('conflict');
    expect((err as Error).message).toContain(f);
    expect(JSON.parse(await fsp.readFile(f, 'utf8'))).toEqual(['theirs2']);
  });

  it('a lock left by a killed process (dead pid) is broken; a live one times out with WriteError locked', async () => {
    const d = await fsp.mkdtemp(path.join(dir, 'lock-'));
    const f = path.join(d, 'plan.json');
    const dead = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => dead.once('exit', r));
    await fsp.writeFile(`${f}.lock`, JSON.stringify({ pid: dead.pid, host: os.hostname(), token: 'x', since: '' }));
    expect(await withFileLock(f, () => Promise.resolve(42))).toBe(42);
    expect(await leftovers(d, [])).toEqual([]); // lock and breaker removed
    await fsp.writeFile(
      `${f}.lock`,
      JSON.stringify({ pid: process.pid, host: 'another-host', token: 'y', since: 'now' }),
    );
    const err = await withFileLock(f, () => Promise.resolve(1), { timeoutMs: 200 }).catch((e: unknown) => e);
    expect((err as WriteError).code).toBe('locked');
    expect((err as Error).message).toContain(`remove ${f}.lock`);
  });

  it('an empty lock (its writer killed before writing its pid) is broken once 5 s old, not before', async () => {
    const d = await fsp.mkdtemp(path.join(dir, 'lock-empty-'));
    const f = path.join(d, 'plan.json');
    await fsp.writeFile(`${f}.lock`, '');
    const err = await withFileLock(f, () => Promise.resolve(1), { timeoutMs: 200 }).catch((e: unknown) => e);
    expect((err as WriteError).code).toBe('locked'); // fresh: maybe a writer about to write its pid
    const old = new Date(Date.now() - 6_000);
    await fsp.utimes(`${f}.lock`, old, old);
    const t0 = Date.now();
    expect(await withFileLock(f, () => Promise.resolve(42), { timeoutMs: 2_000 })).toBe(42);
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(await leftovers(d, [])).toEqual([]);
  });

  it("10 processes appending a path each through plan --append's update: all 10 paths kept", async () => {
    const f = path.join(await fsp.mkdtemp(path.join(dir, 'procs-')), 'plan.json');
    const ids = Array.from({ length: 10 }, (_, i) => `w${i}`);
    const results = await Promise.all(ids.map((id) => run(['append', f, id, String(Math.floor(Math.random() * 50))])));
    for (const r of results) expect(r.code, r.err).toBe(0);
    const plan = JSON.parse(await fsp.readFile(f, 'utf8')) as { paths: { id: string }[] };
    expect(plan.paths.map((p) => p.id).sort()).toEqual(ids.sort());
  }, 60_000);
});
