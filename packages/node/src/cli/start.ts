/**
 * `corridor start`: build the browser workstation when needed and serve it on the loopback interface.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '@corridor/core';
import { ensureWebBuild, findWebDir } from '../server/build.js';
import { startServer, type RunningServer } from '../server/server.js';

export interface StartOptions {
  port?: string;
  host?: string;
  build?: boolean;
  rebuild?: boolean;
  webDir?: string;
  quiet?: boolean;
  pacs?: string;
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

/** Build (if needed) and start; resolves with the running server. */
export async function start(opts: StartOptions, log: (line: string) => void = console.log): Promise<RunningServer> {
  if (opts.pacs !== undefined && !/^https?:\/\/[^/\s]+/i.test(opts.pacs))
    throw new UsageError(`--pacs "${opts.pacs}" is not an http:// or https:// DICOMweb root`);
  const webDir = opts.webDir ? path.resolve(opts.webDir) : findWebDir();
  if (opts.build !== false) {
    log('corridor: checking the web app build...');
    const did = await ensureWebBuild(webDir, { force: opts.rebuild, log: (l) => log(`  ${l}`) });
    log(did === 'built' ? 'corridor: web app built' : 'corridor: web app is up to date');
  }
  const port = resolvePort(opts.port, process.env.PORT);
  const running = await startServer({
    webRoot: path.join(webDir, 'dist'),
    host: opts.host ?? '127.0.0.1',
    port,
    ...(opts.pacs ? { pacsUrl: opts.pacs } : {}),
  });
  return running;
}

export function register(program: Command): void {
  program
    .command('start')
    .description('serve the browser workstation on this machine (opens the phantom case); PORT sets the port')
    .option('--port <port>', 'port to listen on (default: $PORT or 8080; 0 picks a free one)')
    .option('--host <host>', 'interface to bind (loopback only unless you mean it)', '127.0.0.1')
    .option('--no-build', 'serve the existing build without checking it')
    .option('--rebuild', 'build the web app even when it looks up to date')
    .option(
      '--pacs <url>',
      'DICOMweb root of a PACS the workstation may search and retrieve from (e.g. http://127.0.0.1:8042/dicom-web)',
    )
    .option('--web-dir <dir>', 'the web package folder (default: packages/web of this checkout)')
    .action(async (opts: StartOptions) => {
      const running = await start(opts);
      console.log(`corridor: serving the workstation at ${running.url}`);
      console.log('corridor: open that address in a browser; press Ctrl+C to stop');
      await new Promise<void>((resolve) => {
        const stop = () => {
          console.log('corridor: stopping');
          running.close().then(resolve, resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
