/**
 * Building the browser app on demand: `corridor start` builds packages/web when its dist folder is
 * missing or older than any source it bundles (the web sources and core's sources), so `npm start`
 * always serves the code in the checkout.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '@corridor/core';

/** packages/web, found by walking up from this file to the repository's packages folder. */
export function findWebDir(from = path.dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (let n = 0; n < 8; n++) {
    const candidate = path.join(dir, 'packages', 'web');
    if (existsSync(path.join(candidate, 'package.json'))) return candidate;
    dir = path.dirname(dir);
  }
  throw new UsageError('cannot find packages/web above this installation; pass --web-dir', from);
}

async function newestMtime(p: string): Promise<number> {
  let s;
  try {
    s = await stat(p);
  } catch {
    return 0;
  }
  if (!s.isDirectory()) return s.mtimeMs;
  let newest = s.mtimeMs;
  for (const e of await readdir(p, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name === 'dist' || e.name.startsWith('.')) continue;
    newest = Math.max(newest, await newestMtime(path.join(p, e.name)));
  }
  return newest;
}

export interface BuildState {
  distIndex: string;
  built: boolean;
  /** Built, and no source is newer than the build. */
  fresh: boolean;
  /** The newest source's mtime (ms since epoch) and the build's. */
  newestSourceMs: number;
  builtMs: number;
}

/** The sources a build depends on: the web app's own files and core's sources it bundles. */
export function buildInputs(webDir: string): string[] {
  return [
    path.join(webDir, 'src'),
    path.join(webDir, 'index.html'),
    path.join(webDir, 'vite.config.ts'),
    path.join(webDir, 'package.json'),
    path.join(webDir, 'public'),
    path.join(webDir, '..', 'core', 'src'),
  ];
}

export async function webBuildState(webDir: string): Promise<BuildState> {
  const distIndex = path.join(webDir, 'dist', 'index.html');
  const builtMs = await newestMtime(distIndex);
  let newestSourceMs = 0;
  for (const p of buildInputs(webDir)) newestSourceMs = Math.max(newestSourceMs, await newestMtime(p));
  return { distIndex, built: builtMs > 0, fresh: builtMs > 0 && builtMs >= newestSourceMs, newestSourceMs, builtMs };
}

/** Run `vite build` in webDir (Vite is a devDependency of packages/web); rejects with its output on failure. */
export async function buildWeb(webDir: string, log: (line: string) => void = () => {}): Promise<void> {
  let viteBin: string;
  try {
    const req = createRequire(path.join(webDir, 'package.json'));
    const pkgPath = req.resolve('vite/package.json');
    viteBin = path.join(path.dirname(pkgPath), 'bin', 'vite.js');
  } catch {
    throw new UsageError(
      'Vite is not installed, so the web app cannot be built: run `npm install` at the repository root',
      webDir,
    );
  }
  const output: string[] = [];
  const code = await new Promise<number>((resolve, reject) => {
    const child = spawn(process.execPath, [viteBin, 'build', '--logLevel', 'warn'], {
      cwd: webDir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const collect = (b: Buffer) => {
      for (const line of b.toString().split('\n')) {
        if (!line.trim()) continue;
        output.push(line);
        log(line);
      }
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', reject);
    child.on('close', (c) => resolve(c ?? 1));
  });
  if (code !== 0) throw new UsageError(`vite build failed (exit ${code}):\n${output.slice(-30).join('\n')}`, webDir);
}

/** Build when dist is missing or stale (or always with force); says what it did. */
export async function ensureWebBuild(
  webDir: string,
  opts: { force?: boolean; log?: (line: string) => void } = {},
): Promise<'built' | 'fresh'> {
  const state = await webBuildState(webDir);
  if (state.fresh && !opts.force) return 'fresh';
  await buildWeb(webDir, opts.log);
  return 'built';
}
