/**
 * `corridor start` as a user runs it (bin/corridor.js, built output): with the case store, relaunched under
 * the bundled Node 24 when the Node it was started by has no node:sqlite (simulated by Node 24's own
 * --no-experimental-sqlite), a typed error when there is no Node to relaunch on, and the one-time token
 * when bound beyond loopback.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { http } from '../test-helpers/http.js';
import { resolveDbPath } from './start.js';

const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/corridor.js');
let dir: string;
let web: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-start-'));
  web = path.join(dir, 'web');
  await mkdir(path.join(web, 'dist'), { recursive: true });
  await writeFile(path.join(web, 'dist', 'index.html'), '<!doctype html><title>app</title>');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function launch(
  nodeArgs: string[],
  args: string[],
  env: Record<string, string> = {},
): { child: ChildProcessWithoutNullStreams; output: () => string; line: (re: RegExp) => Promise<RegExpExecArray> } {
  const child = spawn(process.execPath, [...nodeArgs, bin, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let out = '';
  const waiters: (() => void)[] = [];
  const onData = (b: Buffer) => {
    out += b.toString();
    for (const w of waiters) w();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const line = (re: RegExp) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re}; output: ${out}`)), 30_000);
      const check = () => {
        const m = re.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m);
        }
      };
      waiters.push(check);
      child.once('exit', () => setTimeout(check, 10));
      check();
    });
  return { child, output: () => out, line };
}

const exitCode = (c: ChildProcessWithoutNullStreams) =>
  new Promise<number | null>((r) => (c.exitCode !== null ? r(c.exitCode) : c.once('exit', (code) => r(code))));

describe('corridor start', () => {
  it('relaunches itself on a Node with node:sqlite and serves the case API; stops on SIGTERM', async () => {
    const db = path.join(dir, 'relaunch', 'cases.sqlite');
    const p = launch(
      ['--no-experimental-sqlite'],
      ['start', '--no-build', '--web-dir', web, '--db', db, '--port', '0'],
    );
    const m = await p.line(/serving the workstation at http:\/\/127\.0\.0\.1:(\d+)\//);
    expect(p.output()).toContain(`case store ${db}`);
    const port = Number(m[1]);
    const made = await http(port, { method: 'POST', path: '/api/cases', body: '{"id":"c1"}' });
    expect(made.status).toBe(201);
    expect((await http(port, { path: '/api/cases/c1' })).status).toBe(200);
    p.child.kill('SIGTERM');
    expect(await exitCode(p.child)).toBe(0);
    expect(p.output()).toContain('corridor: stopping');
  });

  it('without a Node to relaunch on, says how to run it (exit 2)', async () => {
    const p = launch(['--no-experimental-sqlite'], ['start', '--no-build', '--web-dir', web, '--port', '0'], {
      CORRIDOR_REEXEC: '1',
    });
    expect(await exitCode(p.child)).toBe(2);
    expect(p.output()).toMatch(/UsageError: corridor start needs node:sqlite .*npm start/);
  });

  it('bound beyond loopback, prints a token once and requires it', async () => {
    const db = path.join(dir, 'token', 'cases.sqlite');
    const p = launch([], ['start', '--no-build', '--web-dir', web, '--db', db, '--port', '0', '--host', '0.0.0.0']);
    const m = await p.line(/serving the workstation at http:\/\/0\.0\.0\.0:(\d+)\/\?token=([A-Za-z0-9_-]{43})\n/);
    const [, port, token] = m;
    expect(p.output()).toContain(`access token (shown once): ${token}`);
    expect(p.output().split(token).length - 1).toBe(2); // the token line and the address, nothing else
    expect((await http(Number(port), { path: '/api/cases' })).status).toBe(401);
    const ok = await http(Number(port), { path: '/api/cases', headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    p.child.kill('SIGTERM');
    expect(await exitCode(p.child)).toBe(0);
  });

  it('finds the store in --db, $CORRIDOR_DB, $CORRIDOR_DATA_DIR, $XDG_DATA_HOME, ~/.local/share', () => {
    expect(resolveDbPath('x.sqlite', {})).toBe(path.resolve('x.sqlite'));
    expect(resolveDbPath(undefined, { CORRIDOR_DB: '/a/b.sqlite' })).toBe('/a/b.sqlite');
    expect(resolveDbPath(undefined, { CORRIDOR_DATA_DIR: '/d' })).toBe('/d/cases.sqlite');
    expect(resolveDbPath(undefined, { XDG_DATA_HOME: '/x' })).toBe('/x/corridor/cases.sqlite');
    expect(resolveDbPath(undefined, {})).toBe(path.join(os.homedir(), '.local', 'share', 'corridor', 'cases.sqlite'));
  });
});
