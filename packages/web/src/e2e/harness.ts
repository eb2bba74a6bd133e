/**
 * End-to-end harness: builds the app when needed, serves it with the real server on a free port, and
 * drives Debian's Chromium (/usr/bin/chromium, installed by scripts/ensure-chromium.sh) through
 * playwright-core. Everything runs on this machine; the browser is started with no network features.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { ensureWebBuild } from '../../../node/src/server/build.js';
import { startServer, type RunningServer } from '../../../node/src/server/server.js';
import { CaseStore } from '../../../node/src/server/case-store.js';
import { startOrthanc, type OrthancInstance } from '../../../node/src/pacs/orthanc.js';

export const WEB_DIR = fileURLToPath(new URL('../../', import.meta.url));
export const ARTIFACTS = path.join(WEB_DIR, 'test-artifacts');
export const CHROMIUM = process.env.CORRIDOR_CHROMIUM ?? '/usr/bin/chromium';

export interface Harness {
  server: RunningServer;
  context: BrowserContext;
  page: Page;
  /** Messages the page logged as errors, and uncaught page errors. */
  pageErrors: string[];
  /** The browser's profile folder (its --user-data-dir: tells this browser's processes from others'). */
  profile: string;
  /** The case store behind /api/cases (with `store: true`: a throw-away database, removed on close). */
  store: CaseStore | null;
  /** The private Orthanc the server forwards /api/pacs/dicom-web to (with `pacs: true`). */
  orthanc?: OrthancInstance;
  close(): Promise<void>;
}

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-extensions',
  '--disable-default-apps',
];

export async function startHarness(
  opts: {
    viewport?: { width: number; height: number };
    extraArgs?: string[];
    store?: boolean;
    /** Start a private Orthanc (pacs/orthanc.ts) and serve with `--pacs` to it. */
    pacs?: boolean;
  } = {},
): Promise<Harness> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: run scripts/ensure-chromium.sh (npm test does) or set CORRIDOR_CHROMIUM`);
  }
  await ensureWebBuild(WEB_DIR);
  await mkdir(ARTIFACTS, { recursive: true });
  // Without `store` the server has no case store (/api/cases answers 503): the app keeps plans in
  // localStorage, as on static hosting. With it, a fresh SQLite file in a temporary folder.
  const dbDir = opts.store ? await mkdtemp(path.join(os.tmpdir(), 'corridor-e2e-db-')) : null;
  const store = dbDir ? CaseStore.open(path.join(dbDir, 'cases.sqlite')) : null;
  const orthanc = opts.pacs ? await startOrthanc() : undefined;
  const server = await startServer({
    webRoot: path.join(WEB_DIR, 'dist'),
    port: 0,
    ...(store ? { store } : {}),
    ...(orthanc ? { pacsUrl: orthanc.dicomWebUrl } : {}),
  });
  const profile = await mkdtemp(path.join(os.tmpdir(), 'corridor-chromium-'));
  // A new, empty profile each run (playwright passes it as --user-data-dir).
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: [...CHROMIUM_ARGS, ...(opts.extraArgs ?? [])],
    viewport: opts.viewport ?? { width: 1600, height: 1000 },
    acceptDownloads: true,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(`console: ${m.text()}`);
  });
  // Nothing may be fetched from anywhere but this server.
  await context.route(/.*/, (route) => {
    const u = route.request().url();
    if (u.startsWith(server.url) || u.startsWith('blob:') || u.startsWith('data:')) return route.continue();
    pageErrors.push(`blocked request to ${u}`);
    return route.abort();
  });
  return {
    server,
    context,
    page,
    pageErrors,
    profile,
    store,
    ...(orthanc ? { orthanc } : {}),
    async close() {
      await context.close();
      await server.close();
      store?.close();
      if (dbDir) await rm(dbDir, { recursive: true, force: true });
      await orthanc?.stop();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  const p = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: p });
  return p;
}

/** Error messages the workstation shows to the user. */
export async function shownErrors(page: Page): Promise<string[]> {
  return page.locator('.message.error').allTextContents();
}

/**
 * Peak resident memory (VmHWM, bytes) of this harness's browser processes, from /proc (Linux): the
 * browser process and each descendant (renderers, whose page and dedicated workers share one process).
 */
export async function browserPeakMemory(h: Harness): Promise<{ pid: number; type: string; peakBytes: number }[]> {
  const procs: { pid: number; ppid: number; cmd: string }[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = (await readFile(`/proc/${name}/cmdline`, 'utf8')).split('\0').join(' ');
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      procs.push({ pid: Number(name), ppid, cmd });
    } catch {
      // The process ended while being listed.
    }
  }
  const root = procs.find((p) => p.cmd.includes(`--user-data-dir=${h.profile}`) && !p.cmd.includes('--type='));
  if (!root) return [];
  const mine = new Set([root.pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of procs)
      if (!mine.has(p.pid) && mine.has(p.ppid)) {
        mine.add(p.pid);
        grew = true;
      }
  }
  const out: { pid: number; type: string; peakBytes: number }[] = [];
  for (const p of procs) {
    if (!mine.has(p.pid)) continue;
    try {
      const status = await readFile(`/proc/${p.pid}/status`, 'utf8');
      const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
      out.push({ pid: p.pid, type: /--type=(\S+)/.exec(p.cmd)?.[1] ?? 'browser', peakBytes: kb * 1024 });
    } catch {
      // Ended meanwhile.
    }
  }
  return out;
}
