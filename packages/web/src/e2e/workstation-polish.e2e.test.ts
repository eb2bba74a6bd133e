/**
 * The workstation's finish (issue 15), in Chromium at a 1280 x 800 laptop window, CPU fallback: what is
 * hidden stays hidden, notices stay out of the controls' way and close, the wheel lands on acquired
 * slices, coordinates in LPS / RAS / voxel index both ways, a 2D image is refused with one message,
 * path labels do not overlap, the plan table fits, the tip clearance says what it is, the 3D view has an
 * orientation cue and no stripes. Screenshots in test-artifacts/polish-*.png.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createVolume, encodeDicomSeries, generatePhantom, indexToPatientFrom, writeNifti } from '@corridor/core';
import { ARTIFACTS, screenshot, shownErrors, startHarness, type Harness } from './harness.js';

let h: Harness;
let dir: string;

/** Just enough of the page's types for these checks (this file is type-checked without DOM types). */
interface Rect {
  left: number;
  top: number;
  right: number;
  bottom: number;
  width: number;
  height: number;
}
interface El {
  getBoundingClientRect(): Rect;
  contains(e: El | null): boolean;
  scrollWidth: number;
  clientWidth: number;
  scrollTop: number;
  textContent: string | null;
  dataset: Record<string, string | undefined>;
}
interface Doc {
  body: { dataset: Record<string, string | undefined> };
  querySelector(s: string): El | null;
  querySelectorAll(s: string): ArrayLike<El>;
  elementFromPoint(x: number, y: number): El | null;
}
interface Corridor {
  app: {
    store: {
      crosshair: number[];
      volume: { indexToPatient: Float64Array; dims: number[] } | null;
      setCrosshair(p: number[]): void;
      plan: { paths: { id: string; entry: number[]; target: number[] }[] };
    };
    addPath(entry: number[], target: number[]): void;
  };
  view3d: { hitDepthMm: Float32Array; rayStepMm: number };
}

const settled = () =>
  h.page.waitForFunction(
    () => {
      const d = (globalThis as unknown as { document: Doc }).document;
      return d.body.dataset.analysis === 'done' && d.body.dataset.state === 'ready';
    },
    null,
    { timeout: 120_000 },
  );

const crosshair = () =>
  h.page.evaluate(() => (globalThis as unknown as { corridor: Corridor }).corridor.app.store.crosshair);

/** Boxes of the elements matching a selector (client px). */
const boxes = (sel: string) =>
  h.page.evaluate(
    (s) =>
      [...((globalThis as unknown as { document: Doc }).document.querySelectorAll(s) as unknown as El[])].map((e) =>
        e.getBoundingClientRect(),
      ),
    sel,
  );

const overlap = (a: Rect, b: Rect) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-polish-'));
  h = await startHarness({ viewport: { width: 1280, height: 800 } });
}, 180_000);

afterAll(async () => {
  await h?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('workstation polish (Chromium, 1280 x 800, CPU fallback)', () => {
  it('opens the phantom: "Bone from intensities" is not shown on a case with labels', async () => {
    await h.page.goto(`${h.server.url}?renderer=cpu`);
    await h.page.waitForSelector('body[data-first-image-ms]', { timeout: 90_000 });
    const row = h.page.locator('[data-testid=bone-mask-row]');
    expect(await row.getAttribute('hidden')).not.toBeNull();
    // Hidden for the eye too, not only by attribute: the .row's display: flex no longer overrides it.
    expect(await row.isVisible()).toBe(false);
    expect(await row.evaluate((e) => getComputedStyle(e as never).display)).toBe('none');
    // The C-arm system selector stays inside the side panel.
    const side = (await boxes('#side'))[0];
    const sel = (await boxes('#fluoro-panel select[data-field=preset]'))[0];
    expect(sel.right).toBeLessThanOrEqual(side.right + 0.5);
    await screenshot(h.page, 'polish-1-phantom-1280x800');
  }, 120_000);

  it('plans automatically; at 1280 x 800 the plan table and the selected figures show without scrolling', async () => {
    await h.page.click('button[data-action=auto]');
    await h.page.waitForFunction(
      () =>
        (globalThis as unknown as { document: Doc }).document.querySelectorAll('#plan-panel tr[data-path-id]')
          .length === 4,
      null,
      { timeout: 150_000 },
    );
    await settled();
    // S1 is selected (the first automatic path); the panel's own scroll is at the top.
    const panel = h.page.locator('#plan-panel');
    const pr = defined1(await panel.boundingBox());
    expect(await panel.evaluate((e) => (e as unknown as El).scrollTop)).toBe(0);
    const bottom = pr.y + pr.height;
    for (const sel of ['#plan-panel table.path-list', '#plan-panel [data-testid=analysis]']) {
      const b = defined1(await h.page.locator(sel).boundingBox());
      expect(b.y, sel).toBeGreaterThanOrEqual(pr.y - 0.5);
      expect(b.y + b.height, `${sel} bottom within the panel (${bottom} px)`).toBeLessThanOrEqual(bottom + 0.5);
      expect(b.y + b.height, `${sel} within the window`).toBeLessThanOrEqual(800);
    }
    // The tip's signed clearance is said in words, consistent with its sign.
    const tip = h.page.locator('[data-testid=analysis] [data-testid=tip-clearance]');
    const tipMm = Number(await tip.getAttribute('data-value-mm'));
    const text = defined1(await tip.textContent());
    expect(text).toBe(
      tipMm >= 0 ? `${tipMm.toFixed(1)} mm inside bone` : `${(-tipMm).toFixed(1)} mm beyond the bone boundary`,
    );
    expect(text).not.toMatch(/-/);
    await screenshot(h.page, 'polish-2-auto-plan-1280x800');
  }, 240_000);

  it('lays out path labels so that none overlap (axial, coronal, sagittal)', async () => {
    for (const v of ['axial', 'coronal', 'sagittal']) {
      const b = await boxes(`.view-${v} .path-label`);
      expect(b.length, v).toBe(4);
      for (let i = 0; i < b.length; i++)
        for (let j = i + 1; j < b.length; j++) expect(overlap(b[i], b[j]), `${v}: labels ${i} and ${j}`).toBe(false);
    }
    await h.page.locator('.view-axial').screenshot({ path: path.join(ARTIFACTS, 'polish-3-axial-labels.png') });
    await h.page.locator('.view-coronal').screenshot({ path: path.join(ARTIFACTS, 'polish-3-coronal-labels.png') });
  });

  it('3D view: an orientation triad, and a surface not snapped to the ray steps (no stripes)', async () => {
    await h.page.waitForFunction(
      () => (globalThis as unknown as { corridor: Corridor }).corridor.view3d.hitDepthMm.length > 0,
      null,
      { timeout: 60_000 },
    );
    const letters = await h.page.evaluate((): Record<string, [number, number]> =>
      Object.fromEntries(
        [
          ...((globalThis as unknown as { document: Doc }).document.querySelectorAll(
            '.view3d .triad-letter',
          ) as unknown as El[]),
        ].map((e) => {
          const r = e.getBoundingClientRect();
          return [e.dataset.axis ?? '', [r.left + r.width / 2, r.top + r.height / 2]] as [string, [number, number]];
        }),
      ),
    );
    expect(Object.keys(letters).sort()).toEqual(['A', 'I', 'L', 'P', 'R', 'S']);
    // Default pose: seen from the front (azimuth 30°, elevation 15°): head up, the patient's left on the right.
    expect(letters.S[1]).toBeLessThan(letters.I[1]);
    expect(letters.L[0]).toBeGreaterThan(letters.R[0]);
    // Striping came from every ray's surface snapping to the same sample planes: the hit depths were all
    // whole ray steps. With the crossing interpolated, few are (by chance, about 2% within 1% of a step).
    const { onStep, hits } = await h.page.evaluate(() => {
      const v = (globalThis as unknown as { corridor: Corridor }).corridor.view3d;
      let hits = 0,
        onStep = 0;
      for (const d of v.hitDepthMm) {
        if (!Number.isFinite(d)) continue;
        hits++;
        const f = d / v.rayStepMm;
        if (Math.abs(f - Math.round(f)) < 0.01) onStep++;
      }
      return { onStep, hits };
    });
    console.log(`3D view: ${onStep} of ${hits} surface hits within 1% of a whole ray step`);
    expect(hits).toBeGreaterThan(1000);
    expect(onStep / hits).toBeLessThan(0.1);
    await h.page.locator('.view3d').screenshot({ path: path.join(ARTIFACTS, 'polish-4-3d-view.png') });
  }, 90_000);

  it('shows the crosshair in LPS, RAS and voxel index, and moves it to a point typed in any form', async () => {
    const grid = await h.page.evaluate(() => [
      ...((globalThis as unknown as { corridor: Corridor }).corridor.app.store.volume?.indexToPatient ?? []),
    ]);
    // Voxel (40, 30, 20) by the grid's matrix, computed here.
    const ijk = [40, 30, 20];
    const want = [0, 1, 2].map(
      (r) => grid[r * 4] * ijk[0] + grid[r * 4 + 1] * ijk[1] + grid[r * 4 + 2] * ijk[2] + grid[r * 4 + 3],
    );
    const go = h.page.locator('input[data-field=goto]');
    await go.fill('ijk:40,30,20');
    await go.press('Enter');
    let c = await crosshair();
    for (let a = 0; a < 3; a++) expect(Math.abs(c[a] - want[a])).toBeLessThan(1e-9);
    const coords = defined1(await h.page.locator('#coords').textContent());
    expect(coords).toContain('voxel 40, 30, 20');
    expect(coords).toContain(`RAS ${(-want[0]).toFixed(1)}, ${(-want[1]).toFixed(1)}, ${want[2].toFixed(1)} mm`);
    expect(coords).toMatch(/^crosshair -?\d+\.\d, -?\d+\.\d, -?\d+\.\d mm \(LPS\)/);
    // RAS as 3D Slicer shows it: R = -x, A = -y, S = z of LPS.
    await go.fill('ras:-12.5, 30, 7');
    await go.press('Enter');
    c = await crosshair();
    expect(c).toEqual([12.5, -30, 7]);
    await go.fill('lps:1,2,3');
    await go.press('Enter');
    expect(await crosshair()).toEqual([1, 2, 3]);
    await go.fill('4,5,6');
    await go.press('Enter');
    expect(await crosshair()).toEqual([4, 5, 6]);
    expect(await shownErrors(h.page)).toEqual([]);
    await go.fill('xyz:1,2,3');
    await go.press('Enter');
    const errs = await shownErrors(h.page);
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(/unknown coordinate form "xyz"/);
    await h.page.click('.message.error button[data-action=dismiss]');
    expect(await shownErrors(h.page)).toEqual([]);
    await go.fill('ijk:40,30,20');
    await go.press('Enter');
    await screenshot(h.page, 'polish-5-coordinates');
  }, 60_000);

  it('a notice about a long file name wraps, covers no control, and closes; information fades', async () => {
    // Something to click in the panel: the selected path's breach buttons (S1 runs through the canal on
    // the phantom) or, without breaches, the analysis table.
    // A path from S1's entry into the spinal canal (where the phantom's first foramen joins it, from its
    // truth, extended 15 mm on) breaches: its breach buttons are the controls a notice used to cover.
    const canal = generatePhantom({ voxelMm: 1.5 }).truth.foramina[0].canalPoint;
    await h.page.evaluate((c) => {
      const app = (globalThis as unknown as { corridor: Corridor }).corridor.app;
      const s1 = app.store.plan.paths.find((p) => p.id === 's1');
      if (!s1) throw new Error('no S1 path');
      const d = [0, 1, 2].map((a) => c[a] - s1.entry[a]);
      const L = Math.hypot(d[0], d[1], d[2]);
      app.addPath(
        s1.entry,
        [0, 1, 2].map((a) => c[a] + (15 * d[a]) / L),
      );
    }, canal);
    await h.page.waitForFunction(
      () =>
        (globalThis as unknown as { document: Doc }).document.querySelectorAll('#plan-panel [data-testid=breach]')
          .length > 0,
      null,
      { timeout: 60_000 },
    );
    await settled();
    const longName = `${'a-very-long-file-name-from-the-archive-'.repeat(4)}without-any-spaces.txt`;
    const file = path.join(dir, longName.slice(0, 200));
    await writeFile(file, 'not an image');
    // The first breach button scrolled into the plan half's view (at 1280 x 800 it lies below the fold).
    await h.page.locator('#plan-panel [data-testid=breach]').first().scrollIntoViewIfNeeded();
    await h.page.setInputFiles('input[data-field=images]', file);
    await h.page.waitForSelector('.message.error', { timeout: 30_000 });
    const errs = await shownErrors(h.page);
    expect(errs).toHaveLength(1);
    expect(errs[0]).toContain('a-very-long-file-name');
    // The case stays open.
    expect(await h.page.locator('.case-name').textContent()).toContain('phantom');
    const check = await h.page.evaluate(() => {
      const d = (globalThis as unknown as { document: Doc }).document;
      const note = d.querySelector('.message.error') as El;
      const text = d.querySelector('.message.error .message-text') as El;
      const r = note.getBoundingClientRect();
      // Every control of the side panel (breach buttons included) and the status bar's field is what the
      // pointer reaches at its centre: no notice above it.
      const controls = [
        ...(d.querySelectorAll(
          '#side button, #side select, #side input, #side tr[data-path-id], #statusbar input',
        ) as unknown as El[]),
      ];
      const covered: string[] = [];
      for (const c of controls) {
        const b = c.getBoundingClientRect();
        if (!b.width || !b.height || b.bottom < 0 || b.top > 800) continue;
        const hit = d.elementFromPoint(b.left + b.width / 2, b.top + b.height / 2);
        if (hit && !c.contains(hit) && !hit.contains(c) && note.contains(hit)) covered.push(c.textContent ?? '');
      }
      const side = (d.querySelector('#side') as El).getBoundingClientRect();
      return {
        covered,
        noteRight: r.right,
        sideLeft: side.left,
        overflow: text.scrollWidth - text.clientWidth,
        breaches: d.querySelectorAll('#plan-panel [data-testid=breach]').length,
      };
    });
    expect(check.covered).toEqual([]);
    expect(check.noteRight).toBeLessThanOrEqual(check.sideLeft);
    expect(check.overflow).toBeLessThanOrEqual(0);
    expect(check.breaches).toBeGreaterThan(0);
    {
      const b = defined1(await h.page.locator('#plan-panel [data-testid=breach]').first().boundingBox());
      const reached = await h.page.evaluate(
        ([x, y]) =>
          (globalThis as unknown as { document: Doc }).document.elementFromPoint(x, y)?.dataset.testid ?? null,
        [b.x + b.width / 2, b.y + b.height / 2],
      );
      expect(reached).toBe('breach');
    }
    await screenshot(h.page, 'polish-6-long-name-notice');
    await h.page.click('.message.error button[data-action=dismiss]');
    expect(await h.page.locator('.message.error').count()).toBe(0);
    // An information notice (a saved plan) goes by itself.
    await h.page.click('button[data-action=save-json]');
    await h.page.waitForSelector('.message.info');
    await h.page.waitForSelector('.message.info', { state: 'detached', timeout: 10_000 });
  }, 60_000);

  it('refuses a single 2D image (one DICOM image, a one-slice NIfTI) with one message; the case stays', async () => {
    const flat = createVolume({
      data: new Int16Array(64 * 48).fill(100),
      dims: [64, 48, 1],
      indexToPatient: indexToPatientFrom([-50, -40, 0], [0.2, 0.2, 1]),
      meta: { source: 'radiograph' },
    });
    const dcm = encodeDicomSeries(flat, { seriesDescription: 'single radiograph', fileNamePrefix: 'xray' }).files;
    const dcmFile = path.join(dir, 'xray.dcm');
    await writeFile(dcmFile, dcm[0].bytes);
    const niiFile = path.join(dir, 'one-slice.nii');
    await writeFile(niiFile, writeNifti(flat));
    for (const f of [dcmFile, niiFile]) {
      await h.page.setInputFiles('input[data-field=images]', f);
      await h.page.waitForSelector('.message.error', { timeout: 30_000 });
      await h.page.waitForFunction(
        () => (globalThis as unknown as { document: Doc }).document.body.dataset.state === 'ready',
      );
      await h.page.waitForTimeout(1000); // any later error (a DRR of nothing) would show by now
      const errs = await shownErrors(h.page);
      expect(errs, f).toHaveLength(1);
      expect(errs[0]).toMatch(/is a single 2D image \(64 × 48 × 1 voxels\), not a 3D image to plan on/);
      expect(await h.page.locator('.case-name').textContent()).toContain('phantom');
      expect(await h.page.locator('#plan-panel tr[data-path-id]').count()).toBe(5);
      if (f === dcmFile) await screenshot(h.page, 'polish-7-2d-image-refused');
      await h.page.click('.message.error button[data-action=dismiss]');
    }
  }, 60_000);

  it('the wheel steps through acquired slices: 2 mm slices, centre between two, 0.8 x 0.9 mm pixels', async () => {
    // 60 x 50 x 31 voxels; slice centres z = -785.5 - 2k (k head to feet), columns x = 60 - 0.8 i
    // (i toward the patient's right), rows y = -20 + 0.9 j. The grid's centre (z = -815.5) is slice 15;
    // a crosshair typed between slices (z = -804.5) is what the old 0.8 mm step from the centre gave.
    const dims = [60, 50, 31] as const;
    const data = new Int16Array(dims[0] * dims[1] * dims[2]);
    for (let k = 0; k < dims[2]; k++)
      for (let j = 0; j < dims[1]; j++)
        for (let i = 0; i < dims[0]; i++) data[i + dims[0] * (j + dims[1] * k)] = ((i + j + k) % 7) * 100 - 300;
    const vol = createVolume({
      data,
      dims,
      indexToPatient: indexToPatientFrom(
        [60, -20, -785.5],
        [0.8, 0.9, 2],
        [
          [-1, 0, 0],
          [0, 1, 0],
          [0, 0, -1],
        ],
      ),
      meta: { source: 'slices' },
    });
    const file = path.join(dir, `${'long-series-name-'.repeat(6)}2mm.nii`);
    await writeFile(file, writeNifti(vol));
    await h.page.setInputFiles('input[data-field=images]', file);
    await h.page.waitForFunction(
      () => (globalThis as unknown as { corridor: Corridor }).corridor.app.store.volume?.dims.join('x') === '60x50x31',
      null,
      { timeout: 60_000 },
    );
    await h.page.waitForSelector('.view-axial[data-render-ms]');
    // The crosshair starts on a voxel centre: the grid's middle row (j = 24.5 of 50) is not one, so it moves
    // to j = 25 (y = 2.5) or 24 (y = 1.6); columns (i = 29.5) likewise, to x = 36.0 or 36.8; slice 15
    // (z = -815.5) already is.
    const start = await crosshair();
    expect(Math.abs(start[2] - -815.5)).toBeLessThan(1e-6);
    expect(Math.min(Math.abs(start[1] - 2.5), Math.abs(start[1] - 1.6))).toBeLessThan(1e-6);
    expect(Math.min(Math.abs(start[0] - 36.0), Math.abs(start[0] - 36.8))).toBeLessThan(1e-6);
    const go = h.page.locator('input[data-field=goto]');
    await go.fill('lps:30.3,0.35,-804.5');
    await go.press('Enter');
    const zAt = (k: number) => -785.5 - 2 * k;
    const xAt = (i: number) => 60 - 0.8 * i;
    const yAt = (j: number) => -20 + 0.9 * j;
    const wheel = async (view: string, dy: number) => {
      const b = defined1(await h.page.locator(`.view-${view}`).boundingBox());
      await h.page.mouse.move(b.x + b.width / 2, b.y + b.height / 2);
      await h.page.mouse.wheel(0, dy);
      await h.page.waitForTimeout(50);
      return crosshair();
    };
    // Axial: the normal is +z (head): wheel down (+) goes toward the head, to k = 9 (-803.5), then k = 8.
    const visited: number[] = [];
    for (const dy of [100, 100, -100, -100, -100]) {
      const c = await wheel('axial', dy);
      const k = (-785.5 - c[2]) / 2;
      expect(Math.abs(c[2] - zAt(Math.round(k))), `z ${c[2]}`).toBeLessThan(1e-6);
      visited.push(Math.round(k));
      expect(c[0]).toBeCloseTo(30.3, 9);
    }
    expect(visited).toEqual([9, 8, 9, 10, 11]);
    // Sagittal (normal +y... the sagittal view's u = +y, v = -z: normal u x v = -x) steps x on column centres.
    for (const dy of [100, 100, -100]) {
      const c = await wheel('sagittal', dy);
      const i = (60 - c[0]) / 0.8;
      expect(Math.abs(c[0] - xAt(Math.round(i))), `x ${c[0]}`).toBeLessThan(1e-6);
    }
    // Coronal steps y on row centres.
    for (const dy of [100, -100, -100]) {
      const c = await wheel('coronal', dy);
      const j = (c[1] + 20) / 0.9;
      expect(Math.abs(c[1] - yAt(Math.round(j))), `y ${c[1]}`).toBeLessThan(1e-6);
    }
    await screenshot(h.page, 'polish-8-slice-steps');
    expect(await shownErrors(h.page)).toEqual([]);
  }, 90_000);
});

function defined1<T>(x: T | null | undefined): T {
  if (x === null || x === undefined) throw new Error('missing value in the page');
  return x;
}
