#!/usr/bin/env node
/**
 * Workstation benchmark in headless Chromium (built code: run `npm run build` first, which builds the
 * node package; the web app is built here when stale):
 *  - time to first image after opening the phantom (page load to the first drawn slice views, which
 *    includes generating the phantom in a worker), median of 3 page loads;
 *  - virtual fluoroscopy frame time on the CPU fallback (core's DRR kernel in web workers), coarse
 *    (128 x 128, shown while the C-arm moves) and full (512 x 512, shown when it stops), request to
 *    painted image, median over 9 poses;
 *  - one axial slice view redraw (resample + window), median of 9;
 *  - with CORRIDOR_BENCH_GPU=1: the WebGL2 path at 512 x 512 (needs a GPU; frames per second).
 *
 * Usage: node packages/web/bench/workstation.mjs [--json]. Exports workstationBench() -> BenchRow[].
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const WEB_DIR = fileURLToPath(new URL('..', import.meta.url));
const REPO = path.resolve(WEB_DIR, '..', '..');
const CHROMIUM = process.env.CORRIDOR_CHROMIUM ?? '/usr/bin/chromium';

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

export async function workstationBench(opts = {}) {
  const { ensureWebBuild } = await import(path.join(REPO, 'packages/node/dist/server/build.js'));
  const { startServer } = await import(path.join(REPO, 'packages/node/dist/server/server.js'));
  const { chromium } = await import('playwright-core');
  await ensureWebBuild(WEB_DIR);
  const server = await startServer({ webRoot: path.join(WEB_DIR, 'dist'), port: 0 });
  const profile = await mkdtemp(path.join(os.tmpdir(), 'corridor-bench-'));
  const gpu = opts.gpu ?? process.env.CORRIDOR_BENCH_GPU === '1';
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ];
  if (gpu) args.push('--enable-gpu', '--use-angle=vulkan', '--enable-features=Vulkan', '--ignore-gpu-blocklist');
  else args.push('--disable-gpu');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args,
    viewport: { width: 1600, height: 1000 },
  });
  const rows = [];
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    const url = `${server.url}?renderer=${gpu ? 'auto' : 'cpu'}`;
    const first = [],
      wall = [];
    for (let i = 0; i < 3; i++) {
      const t0 = Date.now();
      await page.goto(url);
      await page.waitForSelector('body[data-first-image-ms]', { timeout: 120_000 });
      wall.push(Date.now() - t0);
      first.push(Number(await page.getAttribute('body', 'data-first-image-ms')));
    }
    const voxel = (await page.locator('.case-name').textContent()).match(/([\d.]+) mm/)?.[1] ?? '?';
    const dims = await page.evaluate(() => window.corridor.app.store.volume.dims.join(' x '));
    rows.push({
      name: 'workstation: first image after opening the phantom',
      value: median(first),
      unit: 'ms',
      notes: `phantom ${voxel} mm (${dims} voxels) generated in a worker, then 3 slice views drawn; median of 3 loads; page load to first image ${median(wall)} ms`,
    });
    await page.waitForSelector('.fluoro-view[data-last-frame-size="512"]', { timeout: 60_000 });
    const timeFrames = async (size) => {
      const times = [];
      let renderer = '';
      for (let i = 0; i < 10; i++) {
        const r = await page.evaluate(
          async ([k, s]) => {
            const c = window.corridor;
            c.app.store.carm = { ...c.app.store.carm, primaryDeg: -40 + 9 * k, secondaryDeg: -10 + 2 * k };
            return c.fluoro.timeFrame(s);
          },
          [i, size],
        );
        renderer = r.renderer;
        if (i > 0) times.push(r.ms); // the first one warms the workers
      }
      return { ms: median(times), renderer };
    };
    const workers = await page.evaluate(() => Math.max(1, Math.min(4, navigator.hardwareConcurrency || 2)));
    const drrDims = await page.evaluate(() => window.corridor.fluoro.pool?.dims.join(' x ') ?? 'GPU');
    if (!gpu) {
      const coarse = await timeFrames(128);
      const full = await timeFrames(512);
      rows.push({
        name: 'workstation: virtual fluoroscopy, CPU fallback, coarse 128 x 128',
        value: coarse.ms,
        unit: 'ms',
        notes: `core DRR kernel in ${workers} web worker(s) on a ${drrDims} copy of the CT (2 mm voxels), request to painted frame, median of 9 poses; goal < 150 ms`,
      });
      rows.push({
        name: 'workstation: virtual fluoroscopy, CPU fallback, full 512 x 512',
        value: full.ms,
        unit: 'ms',
        notes: `same, full frame shown when the C-arm stops; goal < 500 ms`,
      });
    } else {
      const g = await timeFrames(512);
      rows.push({
        name: `workstation: virtual fluoroscopy, ${g.renderer.toUpperCase()} 512 x 512`,
        value: g.ms,
        unit: 'ms',
        notes: `WebGL2 ray casting (render + readback sync), median of 9 poses: ${(1000 / g.ms).toFixed(0)} frames/s; goal >= 60 frames/s`,
      });
    }
    const slice = [];
    for (let i = 0; i < 10; i++) {
      const ms = await page.evaluate(async (k) => {
        const c = window.corridor;
        const p = c.app.store.crosshair;
        c.app.store.setCrosshair([p[0], p[1], p[2] + (k % 2 ? 1.5 : -1.5)]);
        await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
        return c.views[0].lastRenderMs;
      }, i);
      if (i > 0) slice.push(ms);
    }
    const size = await page.evaluate(
      () =>
        `${document.querySelector('.view-axial').clientWidth} x ${document.querySelector('.view-axial').clientHeight}`,
    );
    rows.push({
      name: 'workstation: axial slice view redraw',
      value: median(slice),
      unit: 'ms',
      notes: `${size} px, trilinear resampling on the page's thread, median of 9`,
    });
  } finally {
    await context.close();
    await server.close();
    await rm(profile, { recursive: true, force: true });
  }
  return rows.map((r) => ({ ...r, value: Math.round(r.value * 10) / 10 }));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const rows = await workstationBench();
  if (process.argv.includes('--json')) console.log(JSON.stringify(rows, null, 2));
  else {
    console.log(`| benchmark | value | notes |\n| --- | --- | --- |`);
    for (const r of rows) console.log(`| ${r.name} | ${r.value} ${r.unit} | ${r.notes} |`);
    console.log(
      `\nmachine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${CHROMIUM}`,
    );
  }
}
