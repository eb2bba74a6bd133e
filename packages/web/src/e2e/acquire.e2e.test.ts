/**
 * "Acquire 3D run" end to end in Debian's Chromium (issue 16): on the phantom case, a run shows its
 * progress and is cancelled (no series added); a completed run opens as a new series of the case whose
 * voxels are core's simulateCbct of the same CT with the same options, computed here in Node (the
 * phantom is deterministic, so the page's CT is the test's).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulateCbct } from '@corridor/core';
import { screenshot, shownErrors, startHarness, type Harness } from './harness.js';
import { phantomCase } from '../worker/sources.js';
import { cbctCoreOptions, type ReconOptions } from '../worker/recon-options.js';

/** The workstation's phantom voxel (app.ts PHANTOM_VOXEL_MM; app.ts needs a DOM). */
const VOXEL_MM = 1.5;

let h: Harness;

interface PageDoc {
  querySelector(s: string): { dataset: Record<string, string | undefined> } | null;
}
interface PageVolume {
  dims: number[];
  indexToPatient: ArrayLike<number>;
  data: ArrayLike<number>;
}
interface PageShell {
  app: { store: { series: { id: string; volume: PageVolume }[]; shownSeries: string; volume: PageVolume } };
}

beforeAll(async () => {
  h = await startHarness();
}, 180_000);

afterAll(async () => {
  await h?.close();
});

async function setOptions(o: ReconOptions) {
  await h.page.fill('[data-field=run-views]', String(o.views));
  await h.page.fill('[data-field=run-voxel]', String(o.voxelMm));
  await h.page.fill('[data-field=run-binning]', String(o.binning));
  await h.page.fill('[data-field=run-dose]', String(o.dose));
  await h.page.fill('[data-field=run-seed]', String(o.seed));
}

const seriesCount = () =>
  h.page.evaluate(() => (globalThis as unknown as { corridor: PageShell }).corridor.app.store.series.length);

describe('Acquire 3D run (Chromium)', () => {
  it('opens the phantom', async () => {
    await h.page.goto(`${h.server.url}?renderer=cpu`);
    await h.page.waitForSelector('body[data-first-image-ms]', { timeout: 90_000 });
    expect(await seriesCount()).toBe(1);
  }, 120_000);

  it('shows the progress of a run and cancels it: no series added', async () => {
    await setOptions({ views: 400, voxelMm: 2, binning: 4, dose: 5000, seed: 1 });
    await h.page.click('button[data-action=acquire]');
    await h.page.waitForFunction(
      () => {
        const p = (globalThis as unknown as { document: PageDoc }).document.querySelector('#procedure-panel');
        return Number(p?.dataset.runProgress ?? 0) > 0;
      },
      null,
      { timeout: 60_000 },
    );
    expect(await h.page.isVisible('[data-testid=run-progress]')).toBe(true);
    expect(await h.page.textContent('[data-testid=run-phase]')).toMatch(/\d+%/);
    await h.page.click('button[data-action=cancel-run]');
    await h.page.waitForSelector('.message.info:has-text("3D run cancelled")', { timeout: 10_000 });
    expect(await h.page.isVisible('[data-testid=run-progress]')).toBe(false);
    expect(await h.page.isEnabled('button[data-action=acquire]')).toBe(true);
    // Nothing comes later either: the run's worker is gone.
    await h.page.waitForTimeout(1500);
    expect(await seriesCount()).toBe(1);
    expect(await shownErrors(h.page)).toEqual([]);
  }, 90_000);

  it("a completed run opens as a new series whose voxels are core's simulateCbct output", async () => {
    const o: ReconOptions = { views: 30, voxelMm: 3, binning: 8, dose: 5000, seed: 3 };
    await setOptions(o);
    await h.page.click('button[data-action=acquire]');
    await h.page.waitForFunction(
      () => (globalThis as unknown as { corridor: PageShell }).corridor.app.store.series.length === 2,
      null,
      { timeout: 120_000, polling: 500 },
    );
    const page = await h.page.evaluate(() => {
      const st = (globalThis as unknown as { corridor: PageShell }).corridor.app.store;
      const v = st.series[1].volume;
      return {
        shown: st.shownSeries,
        id: st.series[1].id,
        dims: [...v.dims],
        indexToPatient: Array.from(v.indexToPatient),
        data: Array.from(v.data),
        viewsShowIt: st.volume === v,
      };
    });
    const want = simulateCbct(phantomCase(VOXEL_MM).ct, cbctCoreOptions(o)).reconstruction.volume;
    expect(page.id).toBe('run-1');
    expect(page.shown).toBe('run-1');
    expect(page.viewsShowIt).toBe(true);
    expect(page.dims).toEqual([...want.dims]);
    for (let q = 0; q < 16; q++) expect(page.indexToPatient[q]).toBeCloseTo(want.indexToPatient[q], 9);
    expect(page.data.length).toBe(want.data.length);
    let maxDiff = 0,
      sum = 0;
    for (let q = 0; q < want.data.length; q++) {
      maxDiff = Math.max(maxDiff, Math.abs(page.data[q] - want.data[q]));
      sum += want.data[q];
    }
    console.log(
      `3D run: ${page.dims.join(' x ')} voxels, mean ${(sum / want.data.length).toFixed(2)} HU, max |page - core| ${maxDiff} HU`,
    );
    // The same function on the same input: equal to float rounding (the page and Node run one V8 family).
    expect(maxDiff).toBeLessThan(1e-3);
    // Not a blank: the reconstruction holds bone and air.
    let hi = 0;
    for (const x of page.data) if (x > 300) hi++;
    expect(hi).toBeGreaterThan(100);
    await screenshot(h.page, 'acquire-3d-run');
    expect(await shownErrors(h.page)).toEqual([]);
  }, 180_000);
});
