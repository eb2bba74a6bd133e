/**
 * The C-arm panel's Inlet and Outlet buttons, end to end in Debian's Chromium: open the phantom, plan
 * S1 and S2 automatically, press Inlet and Outlet; the angles the panel shows are the CLI's
 * (`corridor views PLAN --labels L --json` on the same plan and the same phantom labels), rounded to the
 * panel's 0.1 degree. One core function (pelvicViews) behind both, so they must agree to that rounding.
 * Screenshots in test-artifacts/ (pelvic-inlet.png, pelvic-outlet.png). CPU renderer (?renderer=cpu).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeNifti, type PelvicViews } from '@corridor/core';
import { screenshot, shownErrors, startHarness, type Harness } from './harness.js';
import { runCli } from '../../../node/src/test-helpers/run-cli.js';
// The phantom case exactly as the case worker builds it (its labels go to the CLI).
import { phantomCase } from '../worker/sources.js';

/** The workstation's phantom voxel (app.ts PHANTOM_VOXEL_MM; app.ts is not imported here: it needs a DOM). */
const PHANTOM_VOXEL_MM = 1.5;

let h: Harness;
let cli: PelvicViews;

interface PageDoc {
  body: { dataset: Record<string, string | undefined> };
  querySelectorAll(selector: string): { length: number };
}

beforeAll(async () => {
  h = await startHarness();
}, 180_000);

afterAll(async () => {
  await h?.close();
});

const shownAngles = async () => ({
  primaryDeg: Number(await h.page.inputValue('[data-field=primary]')),
  secondaryDeg: Number(await h.page.inputValue('[data-field=secondary]')),
});

describe('Inlet and Outlet buttons (Chromium, CPU fallback)', () => {
  it('opens the phantom and plans S1 and S2; the CLI computes the views on the same plan and labels', async () => {
    await h.page.goto(`${h.server.url}?renderer=cpu`);
    await h.page.waitForSelector('body[data-first-image-ms]', { timeout: 90_000 });
    await h.page.click('button[data-action=auto]');
    await h.page.waitForFunction(
      () =>
        (globalThis as unknown as { document: PageDoc }).document.querySelectorAll('#plan-panel tr[data-path-id]')
          .length === 4,
      null,
      { timeout: 120_000 },
    );
    const planText = await h.page.evaluate<string>('window.corridor.app.planJsonText()');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-pelvic-e2e-'));
    const planFile = path.join(dir, 'plan.json'),
      labelsFile = path.join(dir, 'labels.nii.gz');
    await writeFile(planFile, planText);
    await writeFile(labelsFile, writeNifti(phantomCase(PHANTOM_VOXEL_MM).labels));
    const r = await runCli('views', planFile, '--labels', labelsFile, '--json');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    cli = (JSON.parse(r.out) as { pelvic: PelvicViews }).pelvic;
    expect(cli.levelsFrom).toBe('paths');
    expect(cli.cortexFrom).toBe('labels');
  }, 240_000);

  for (const which of ['inlet', 'outlet'] as const) {
    it(`${which}: the panel shows the CLI's angles (0.1 degree), ${which === 'inlet' ? 'cranial' : 'caudal'}`, async () => {
      await h.page.click(`button[data-action=${which}]`);
      await h.page.waitForSelector(`#fluoro-panel[data-last-view=${which}]`, { timeout: 30_000 });
      await h.page.waitForSelector('.fluoro-view[data-last-frame-size="512"]', { timeout: 60_000 });
      const shown = await shownAngles();
      const want = cli[which];
      // The panel rounds to 0.1 degree: within half of that, plus float noise.
      expect(Math.abs(shown.primaryDeg - want.primaryDeg)).toBeLessThanOrEqual(0.051);
      expect(Math.abs(shown.secondaryDeg - want.secondaryDeg)).toBeLessThanOrEqual(0.051);
      // Inlet cranial (detector toward the head), outlet caudal: about 45 degrees on the phantom.
      if (which === 'inlet') expect(shown.secondaryDeg).toBeGreaterThan(35);
      else expect(shown.secondaryDeg).toBeLessThan(-35);
      expect(await h.page.locator('[data-field=secondary-name]').textContent()).toBe(
        which === 'inlet' ? 'CRAN' : 'CAUD',
      );
      await h.page.evaluate(`document.getElementById('side').scrollTop = 0`);
      await screenshot(h.page, `pelvic-${which}`);
      expect(await shownErrors(h.page)).toEqual([]);
    }, 90_000);
  }
});
