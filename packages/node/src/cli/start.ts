/**
 * `corridor start`: build the browser workstation when needed and serve it, with the case API over the
 * SQLite case store, on the loopback interface (elsewhere only with a generated access token).
 */
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '@corridor/core';
import { ensureWebBuild, findWebDir } from '../server/build.js';
import { CaseStore } from '../server/case-store.js';
import { generateToken, isLoopbackHost, startServer, type RunningServer } from '../server/server.js';

export interface StartOptions {
  port?: string;
  host?: string;
  build?: boolean;
  rebuild?: boolean;
  webDir?: string;
  quiet?: boolean;
  /** DICOMweb root of the PACS the browser searches through the server (server/pacs-routes.ts). */
  pacs?: string;
  /** The case store's database file. */
  db?: string;
  /** Extra Host names to answer to (comma-separated). */
  allowHost?: string;
}

/**
 * The case store's file: --db, else $CORRIDOR_DB, else cases.sqlite in $CORRIDOR_DATA_DIR, else in
 * $XDG_DATA_HOME/corridor, else in ~/.local/share/corridor.
 */
export function resolveDbPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (flag) return path.resolve(flag);
  if (env.CORRIDOR_DB) return path.resolve(env.CORRIDOR_DB);
  const dir =
    env.CORRIDOR_DATA_DIR ?? path.join(env.XDG_DATA_HOME ?? path.join(os.homedir(), '.local', 'share'), 'corridor');
  return path.resolve(dir, 'cases.sqlite');
}

/** The port to use: --port, else the PORT environment variable, else 8080 (0 picks a free port). */
export function resolvePort(flag: string | undefined, env: string | undefined): number {
  const text = flag ?? env ?? '8080';
  const port = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isInteger(port) || port > 65535) {
    throw new UsageError(`port "${text}" is not a number from 0 to 65535`, flag !== undefined ? '--port' : 'PORT');
  }
  return port;
}

/** Build (if needed) and start; resolves with the running server (its token when one was generated). */
export async function start(
  opts: StartOptions,
  log: (line: string) => void = console.log,
): Promise<RunningServer & { token?: string; store: CaseStore }> {
  if (opts.pacs !== undefined && !/^https?:\/\/[^/\s]+/i.test(opts.pacs))
    throw new UsageError(`--pacs "${opts.pacs}" is not an http:// or https:// DICOMweb root`);
  const webDir = opts.webDir ? path.resolve(opts.webDir) : findWebDir();
  if (opts.build !== false) {
    log('corridor: checking the web app build...');
    const did = await ensureWebBuild(webDir, { force: opts.rebuild, log: (l) => log(`  ${l}`) });
    log(did === 'built' ? 'corridor: web app built' : 'corridor: web app is up to date');
  }
  const port = resolvePort(opts.port, process.env.PORT);
  const host = opts.host ?? '127.0.0.1';
  const token = isLoopbackHost(host) ? undefined : generateToken();
  const store = CaseStore.open(resolveDbPath(opts.db));
  let running: RunningServer;
  try {
    running = await startServer({
      webRoot: path.join(webDir, 'dist'),
      host,
      port,
      store,
      token,
      allowedHosts: opts.allowHost ? opts.allowHost.split(',').map((h) => h.trim()) : undefined,
      ...(opts.pacs ? { pacsUrl: opts.pacs } : {}),
    });
  } catch (err) {
    store.close();
    throw err;
  }
  return {
    ...running,
    token,
    store,
    close: async () => {
      await running.close();
      store.close();
    },
  };
}

export function register(program: Command): void {
  program
    .command('start')
    .description(
      'serve the browser workstation and the case API (SQLite case store) on this machine; PORT sets the port',
    )
    .option('--port <port>', 'port to listen on (default: $PORT or 8080; 0 picks a free one)')
    .option(
      '--host <host>',
      'interface to bind; beyond loopback an access token is generated and required',
      '127.0.0.1',
    )
    .option('--no-build', 'serve the existing build without checking it')
    .option('--rebuild', 'build the web app even when it looks up to date')
    .option(
      '--pacs <url>',
      'DICOMweb root of a PACS the workstation may search and retrieve from (e.g. http://127.0.0.1:8042/dicom-web)',
    )
    .option('--web-dir <dir>', 'the web package folder (default: packages/web of this checkout)')
    .option('--db <file>', 'the case store (default: $CORRIDOR_DB, else ~/.local/share/corridor/cases.sqlite)')
    .option('--allow-host <names>', 'more Host names to answer to, comma-separated (a proxy or DNS name)')
    .action(async (opts: StartOptions) => {
      const running = await start(opts);
      console.log(`corridor: case store ${running.store.file}`);
      if (running.token) {
        // Shown once: it is not stored anywhere; a restart makes a new one.
        console.log(`corridor: access token (shown once): ${running.token}`);
        console.log(`corridor: serving the workstation at ${running.url}?token=${running.token}`);
      } else console.log(`corridor: serving the workstation at ${running.url}`);
      console.log('corridor: open that address in a browser; press Ctrl+C to stop');
      await new Promise<void>((resolve) => {
        // Idempotent: a relaunching parent (bin/corridor.js) may pass on a signal the terminal sent too.
        let stopping = false;
        const stop = () => {
          if (stopping) return;
          stopping = true;
          console.log('corridor: stopping');
          running.close().then(resolve, resolve);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
        process.on('SIGHUP', stop);
      });
    });
}
