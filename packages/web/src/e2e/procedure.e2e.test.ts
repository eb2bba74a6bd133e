/**
 * The checks that close the procedure, end to end in Debian's Chromium (issue 18): the phantom case,
 * a plan of its four paths (from truth.json), then
 * - the pins stage loaded as the verification scan: the table's figures are `corridor verify --json`'s
 *   on the same plan, scan and labels (one core function behind both: equal to 1e-9), the instruments
 *   are drawn in every view, and "jump to" moves the crosshair to the point the table names;
 * - the pins stage as the cement baseline, then the cement stage and the cement stage with a 0.3 ml leak
 *   planted into S2R by the generator: volumes, growth and front distances are `corridor cement --json`'s,
 *   and the banner says STOP, naming S2R, after the leak; the cement shows in the slice views.
 * Scans are written by the test with core's phantom generator (the CLI's `corridor phantom` does the same).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { generatePhantom, writeNifti } from '@corridor/core';
import { screenshot, shownErrors, startHarness, type Harness } from './harness.js';
import { runCli } from '../../../node/src/test-helpers/run-cli.js';
import { phantomCase } from '../worker/sources.js';

/** The workstation's phantom voxel (app.ts PHANTOM_VOXEL_MM; app.ts needs a DOM). */
const VOXEL_MM = 1.5;

let h: Harness;
let dir: string;
const file = (n: string) => path.join(dir, n);

interface PageDoc {
  body: { dataset: Record<string, string | undefined> };
  querySelector(s: string): { dataset: Record<string, string | undefined> } | null;
  querySelectorAll(s: string): { length: number };
}

beforeAll(async () => {
  h = await startHarness();
  dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-procedure-e2e-'));
  const ph = phantomCase(VOXEL_MM);
  await writeFile(file('labels.nii'), writeNifti(ph.labels, { gzip: false }));
  // Beside the labels, as `corridor phantom` writes it: the CLI names the foramina from it.
  await writeFile(file('truth.json'), JSON.stringify({ labels: ph.truthLabels }));
  const stages = [
    ['pins.nii', { stage: 'pins' as const }],
    ['cement1.nii', { stage: 'cement' as const }],
    ['cement2.nii', { stage: 'cement' as const, leak: 'S2R', leakMl: 0.3 }],
  ] as const;
  let truth: ReturnType<typeof generatePhantom>['truth'] | null = null;
  for (const [name, o] of stages) {
    const g = generatePhantom({ voxelMm: VOXEL_MM, seed: 1, ...o });
    truth ??= g.truth;
    await writeFile(file(name), writeNifti(g.ct, { gzip: false }));
  }
  const t = truth as NonNullable<typeof truth>;
  const path4 = (id: string, name: string, kind: string, d: number, e: number[], x: number[]) => ({
    id,
    name,
    kind,
    diameterMm: d,
    entry: e,
    target: x,
  });
  await writeFile(
    file('plan.json'),
    JSON.stringify({
      schemaVersion: 1,
      volume: {},
      paths: [
        path4('s1', 'S1', 'guidepin', 2.8, t.corridors.S1.entry, t.corridors.S1.exit),
        path4('s2', 'S2', 'guidepin', 2.8, t.corridors.S2.entry, t.corridors.S2.exit),
        path4('alar-left', 'Alar left', 'trocar', 3.05, t.alarPaths.left.entry, t.alarPaths.left.target),
        path4('alar-right', 'Alar right', 'trocar', 3.05, t.alarPaths.right.entry, t.alarPaths.right.target),
      ],
    }),
  );
}, 180_000);

afterAll(async () => {
  await h?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const cellValues = (sel: string, attr = 'data-value') =>
  h.page.$$eval(sel, (els, a) => els.map((e) => Number(e.getAttribute(a))), attr);

describe('verification and cement in the workstation (Chromium, CPU fallback)', () => {
  it('opens the phantom with the plan of its four paths', async () => {
    await h.page.goto(`${h.server.url}?renderer=cpu`);
    await h.page.waitForSelector('body[data-first-image-ms]', { timeout: 90_000 });
    await h.page.setInputFiles('input[data-field=plan]', file('plan.json'));
    await h.page.waitForFunction(
      () =>
        (globalThis as unknown as { document: PageDoc }).document.querySelectorAll('#plan-panel tr[data-path-id]')
          .length === 4,
      null,
      {
        timeout: 30_000,
      },
    );
  }, 120_000);

  it("verification: the table is `corridor verify --json`'s; instruments in every view; jump moves the views", async () => {
    await h.page.setInputFiles('input[data-field=verification-file]', file('pins.nii'));
    await h.page.waitForSelector('[data-testid=verification] table', { timeout: 60_000 });
    const r = await runCli('verify', file('plan.json'), file('pins.nii'), '--labels', file('labels.nii'), '--json');
    expect(r.code, r.err).toBe(0);
    const cli = JSON.parse(r.out) as {
      allPass: boolean;
      unplanned: unknown[];
      paths: {
        pathId: string;
        status: string;
        deviation: Record<string, number> | null;
        instrument: { structures: { name: string }[] } | null;
      }[];
    };
    expect(cli.paths.length).toBe(4);
    for (const p of cli.paths) {
      const row = `[data-testid=verification] tr[data-path-id="${p.pathId}"]`;
      expect(await h.page.getAttribute(row, 'data-status')).toBe(p.status);
      const d = p.deviation;
      expect(d, p.pathId).not.toBeNull();
      const shown = await Promise.all(
        ['entry', 'tip', 'angle', 'depth', 'lateral'].map((k) => cellValues(`${row} [data-testid=${k}]`)),
      );
      const want = ['entryOffsetMm', 'tipOffsetMm', 'angleDeg', 'depthDifferenceMm', 'lateralAtTargetMm'].map(
        (k) => d?.[k] ?? NaN,
      );
      for (let k = 0; k < 5; k++) expect(shown[k][0], `${p.pathId} ${k}`).toBeCloseTo(want[k], 9);
      // The structures along the shaft, by name, in the flags cell.
      const flags = (await h.page.textContent(`${row} [data-testid=flags]`)) ?? '';
      for (const s of p.instrument?.structures ?? []) expect(flags).toContain(s.name);
    }
    expect(await h.page.locator('[data-testid=verification] tr[data-unplanned]').count()).toBe(cli.unplanned.length);
    expect(await h.page.textContent('[data-testid=verify-summary]')).toContain(
      cli.allPass ? 'ALL PATHS PASS' : 'NOT ALL PATHS PASS',
    );
    // The four placed instruments beside the planned paths in every view (slices, path views, 3D, fluoro).
    await h.page.waitForSelector('.fluoro-view[data-last-frame-size="512"]', { timeout: 60_000 });
    for (const v of [
      '.view-axial',
      '.view-sagittal',
      '.view-coronal',
      '.view-along',
      '.view-across',
      '.view3d',
      '.fluoro-view',
    ])
      await h.page.waitForFunction(
        (sel) =>
          (globalThis as unknown as { document: PageDoc }).document.querySelectorAll(`${sel} [data-instrument-id]`)
            .length === 4,
        v,
        {
          timeout: 20_000,
        },
      );
    // Jump to the S2 pin's tip: the crosshair goes to the point the button names.
    const jump = h.page.locator('[data-testid=verification] tr[data-path-id="s2"] button[data-action=jump]').last();
    const at = ((await jump.getAttribute('data-at')) ?? '').split(',').map(Number);
    await jump.click();
    const cross = await h.page.evaluate<number[]>('window.corridor.app.store.crosshair');
    for (let a = 0; a < 3; a++) expect(cross[a]).toBeCloseTo(at[a], 9);
    expect(await h.page.evaluate<string | null>('window.corridor.app.store.selectedId')).toBe('s2');
    await screenshot(h.page, 'procedure-verification');
    expect(await shownErrors(h.page)).toEqual([]);
  }, 120_000);

  it("cement: each scan as it comes; the figures are `corridor cement --json`'s; STOP in S2R after the leak", async () => {
    await h.page.setInputFiles('input[data-field=cement-baseline-file]', file('pins.nii'));
    await h.page.waitForSelector('[data-testid=cement] p', { timeout: 30_000 });
    await h.page.setInputFiles('input[data-field=cement-file]', file('cement1.nii'));
    await h.page.waitForSelector('#cement-banner[data-verdict]', { timeout: 60_000 });
    expect(await h.page.getAttribute('#cement-banner', 'data-verdict')).toBe('continue');
    await h.page.setInputFiles('input[data-field=cement-file]', file('cement2.nii'));
    await h.page.waitForFunction(
      () =>
        (globalThis as unknown as { document: PageDoc }).document.querySelectorAll('.cement-table tr[data-scan]')
          .length === 2,
      null,
      {
        timeout: 60_000,
      },
    );
    const args = ['--plan', file('plan.json'), '--baseline', file('pins.nii')];
    const r = await runCli(
      'cement',
      ...args,
      '--scan',
      file('cement1.nii'),
      '--scan',
      file('cement2.nii'),
      '--labels',
      file('labels.nii'),
      '--json',
    );
    expect(r.code, r.err).toBe(0);
    const cli = JSON.parse(r.out) as {
      verdict: string;
      scans: {
        index: number;
        verdict: string;
        totalMl: number;
        sites: { pathId: string; volumeMl: number; growthMl: number }[];
        distances: { name: string; distanceMm: number | null }[];
        reasons: { name: string }[];
      }[];
    };
    expect(cli.verdict).toBe('stop');
    for (const s of cli.scans) {
      const row = `.cement-table tr[data-scan="${s.index}"]`;
      expect((await h.page.textContent(`${row} [data-testid=scan-verdict]`))?.toLowerCase()).toBe(s.verdict);
      expect((await cellValues(`${row} [data-testid=total-ml]`))[0]).toBe(s.totalMl);
      for (const x of s.sites) {
        const cell = `${row} [data-testid=site-ml][data-site="${x.pathId}"]`;
        expect((await cellValues(cell))[0], x.pathId).toBe(x.volumeMl);
        expect((await cellValues(cell, 'data-growth'))[0], x.pathId).toBe(x.growthMl);
      }
      for (const d of s.distances) {
        const cell = `.cement-distances tr[data-structure="${d.name}"] [data-testid=distance][data-scan="${s.index}"]`;
        const shown = await h.page.getAttribute(cell, 'data-value');
        expect(shown === null ? null : Number(shown), `${d.name} scan ${s.index + 1}`).toBe(d.distanceMm);
      }
    }
    // The alarm: STOP in words (not colour alone), naming the foramen the leak went into.
    expect(await h.page.getAttribute('#cement-banner', 'data-verdict')).toBe('stop');
    expect(await h.page.getAttribute('#cement-banner', 'role')).toBe('alert');
    const banner = (await h.page.textContent('#cement-banner')) ?? '';
    expect(banner).toContain('STOP');
    expect(banner).toContain('S2R');
    expect(cli.scans[1].reasons.map((x) => x.name)).toContain('S2R');
    // Show the leak: the slice views through it carry the cement overlay.
    await h.page.locator('#cement-banner button[data-action=jump]').first().click();
    await h.page.waitForFunction(
      () =>
        Number(
          (globalThis as unknown as { document: PageDoc }).document.querySelector('.view-axial')?.dataset.cementPx ?? 0,
        ) > 0,
      null,
      {
        timeout: 20_000,
      },
    );
    await screenshot(h.page, 'procedure-cement-stop');
    expect(await shownErrors(h.page)).toEqual([]);
  }, 150_000);
});
