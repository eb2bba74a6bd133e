/**
 * A private Orthanc for tests and benchmarks: Debian's `Orthanc` with its DICOMweb plugin, started on free
 * loopback ports with a throw-away storage folder and a generated configuration, stopped (and the folder
 * removed) after. Never the system service. scripts/ensure-orthanc.sh installs the packages.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { UsageError } from '@corridor/core';

export interface OrthancInstance {
  /** http://127.0.0.1:PORT */
  httpUrl: string;
  /** http://127.0.0.1:PORT/dicom-web */
  dicomWebUrl: string;
  port: number;
  /** The throw-away folder (storage, index, configuration, log). */
  dir: string;
  /** The last lines Orthanc printed (for a failure message). */
  log(): string;
  stop(): Promise<void>;
}

export interface OrthancAvailability {
  ok: boolean;
  /** The Orthanc binary and the DICOMweb plugin, when found. */
  binary?: string;
  plugin?: string;
  /** Why not, when not. */
  reason?: string;
}

function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).concat(['/usr/sbin', '/usr/bin'])) {
    const p = path.join(dir, cmd);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** Where the DICOMweb plugin is: $CORRIDOR_ORTHANC_DICOMWEB, else from `dpkg -L orthanc-dicomweb`. */
function findPlugin(): string | undefined {
  const env = process.env.CORRIDOR_ORTHANC_DICOMWEB;
  if (env) return existsSync(env) ? env : undefined;
  try {
    const files = execFileSync('dpkg', ['-L', 'orthanc-dicomweb'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const libs = files.split('\n').filter((f) => /libOrthancDicomWeb\.so/.test(f) && existsSync(f));
    // Prefer the real library over the plugins-folder symlink; either loads.
    return libs.find((f) => f.startsWith('/usr/lib/')) ?? libs[0];
  } catch {
    return undefined;
  }
}

export function orthancAvailability(): OrthancAvailability {
  const binary = process.env.CORRIDOR_ORTHANC ?? which('Orthanc');
  if (!binary || !existsSync(binary))
    return {
      ok: false,
      reason: "Orthanc is not installed (sh scripts/ensure-orthanc.sh installs Debian's orthanc and orthanc-dicomweb)",
    };
  const plugin = findPlugin();
  if (!plugin)
    return { ok: false, binary, reason: 'the Orthanc DICOMweb plugin is not installed (sh scripts/ensure-orthanc.sh)' };
  return { ok: true, binary, plugin };
}

/** A port nobody listens on now, on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface StartOrthancOptions {
  /** Orthanc HTTP worker threads (default 8). */
  httpThreads?: number;
  /** Give up when Orthanc does not answer within this many ms (default 30000). */
  timeoutMs?: number;
}

async function waitReady(url: string, child: ChildProcess, deadline: number): Promise<void> {
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`Orthanc exited (${child.exitCode ?? child.signalCode})`);
    try {
      const r = await fetch(`${url}/system`);
      if (r.ok) {
        await r.text();
        return;
      }
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error('Orthanc did not answer in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Start a private Orthanc; throws UsageError when it is not installed or does not come up. */
export async function startOrthanc(options: StartOrthancOptions = {}): Promise<OrthancInstance> {
  const avail = orthancAvailability();
  if (!avail.ok || !avail.binary || !avail.plugin) throw new UsageError(avail.reason ?? 'Orthanc is not available');
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-orthanc-'));
    const port = await freePort();
    const dicomPort = await freePort();
    const config = {
      Name: 'CORRIDOR_TEST',
      StorageDirectory: path.join(dir, 'storage'),
      IndexDirectory: path.join(dir, 'index'),
      HttpPort: port,
      // Loopback only: Orthanc's RemoteAccessAllowed=false refuses other hosts.
      RemoteAccessAllowed: false,
      AuthenticationEnabled: false,
      DicomServerEnabled: false,
      DicomPort: dicomPort,
      DicomAet: 'CORRIDORTEST',
      HttpThreadsCount: options.httpThreads ?? 8,
      StorageCompression: false,
      SaveJobs: false,
      StableAge: 1,
      Plugins: [avail.plugin],
      DicomWeb: { Enable: true, Root: '/dicom-web/', EnableWado: false, Ssl: false, StudiesMetadata: 'MainDicomTags' },
    };
    const configFile = path.join(dir, 'orthanc.json');
    await writeFile(configFile, JSON.stringify(config, null, 2));
    const lines: string[] = [];
    const child = spawn(avail.binary, [configFile], { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
    const keep = (d: Buffer) => {
      lines.push(...d.toString('utf8').split('\n').filter(Boolean));
      if (lines.length > 200) lines.splice(0, lines.length - 200);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const httpUrl = `http://127.0.0.1:${port}`;
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
      await rm(dir, { recursive: true, force: true });
    };
    try {
      await waitReady(httpUrl, child, Date.now() + (options.timeoutMs ?? 30000));
    } catch (e) {
      lastError = new UsageError(
        `${(e as Error).message}; its last lines:\n${lines.slice(-15).join('\n')}`,
        avail.binary,
      );
      await stop();
      continue; // a port taken between the probe and Orthanc's bind: try new ports
    }
    return { httpUrl, dicomWebUrl: `${httpUrl}/dicom-web`, port, dir, log: () => lines.join('\n'), stop };
  }
  throw lastError;
}
