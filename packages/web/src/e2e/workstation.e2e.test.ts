/**
 * The workstation, end to end, in Debian's Chromium: open the phantom, plan automatically, go to a
 * bull's-eye view, drag a path end, save, reload. Each step saves a screenshot in test-artifacts/.
 *
 * The CPU fallback is forced (?renderer=cpu): this machine has no GPU and that path must work headless.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  DEFAULT_TOOLS,
  boneMaskPresetOptions,
  corridorMapFromIntensity,
  generatePhantom,
  planTransSacral,
  readNifti,
  writeDicomSeg,
  type Point3,
} from '@corridor/core';
import { analyzePlanPaths, openPlanningCase, type PlanPath } from '@corridor/core';
import { ARTIFACTS, screenshot, shownErrors, startHarness, type Harness } from './harness.js';
import { runCli } from '../../../node/src/test-helpers/run-cli.js';
import { defined } from '../../../core/src/test-helpers/defined.js';
// The phantom case exactly as the case worker builds it (CT, labels, anatomy), for core's own analysis.
import { phantomCase } from '../worker/sources.js';

let h: Harness;

/** The canvases of the three slice views and the fluoroscopy view (the shown one). */
const VIEW_CANVASES =
  '.view-axial canvas, .view-sagittal canvas, .view-coronal canvas, .fluoro-view canvas:not([hidden])';

interface PlanJson {
  schemaVersion: number;
  paths: { id: string; name: string; kind: string; diameterMm: number; entry: number[]; target: number[] }[];
}

const planText = () => h.page.evaluate<string>('window.corridor.app.planJsonText()');
const plan = async (): Promise<PlanJson> => JSON.parse(await planText()) as PlanJson;
const rows = () => h.page.locator('#plan-panel tr[data-path-id]').count();
/** Analysis of the current plan finished (no edit pending) and no long task running. */
/** The page's document, typed just enough for these checks (this file is type-checked without DOM types). */
interface PageDoc {
  body: { dataset: Record<string, string | undefined> };
  querySelectorAll(selector: string): { length: number };
}
// waitForFunction takes functions, not strings: the app's CSP forbids eval, and the tests keep it on.
const settled = () =>
  h.page.waitForFunction(
    () => {
      const d = (globalThis as unknown as { document: PageDoc }).document;
      return d.body.dataset.analysis === 'done' && d.body.dataset.state === 'ready';
    },
    null,
    { timeout: 90_000 },
  );
const waitRows = (n: number, timeout = 30_000) =>
  h.page.waitForFunction(
    (k) =>
      (globalThis as unknown as { document: PageDoc }).document.querySelectorAll('#plan-panel tr[data-path-id]')
        .length === k,
    n,
    { timeout },
  );
const selectedClearance = async () =>
  Number(await h.page.locator('[data-testid=analysis]').getAttribute('data-min-clearance-mm'));

async function openedCase() {
  await h.page.waitForSelector('body[data-first-image-ms]', { timeout: 90_000 });
  for (const v of ['axial', 'sagittal', 'coronal'])
    await h.page.waitForSelector(`.view-${v}[data-render-ms]`, { timeout: 30_000 });
}

beforeAll(async () => {
  h = await startHarness();
}, 180_000);

afterAll(async () => {
  await h?.close();
});

describe('workstation end to end (Chromium, CPU fallback)', () => {
  it('opens the phantom: three slice views, the 3D view and the virtual fluoroscopy show images', async () => {
    await h.page.goto(`${h.server.url}?renderer=cpu`);
    await openedCase();
    await h.page.waitForSelector('.fluoro-view[data-last-frame-size="512"]', { timeout: 60_000 });
    expect(await h.page.locator('.fluoro-view').getAttribute('data-renderer')).toBe('cpu');
    // Each view's canvas holds an image, not a blank: the grey values vary (standard deviation > 10 of 255).
    const spread = await h.page.evaluate<number[]>(`[...document.querySelectorAll('${VIEW_CANVASES}')].map((c) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let s = 0, s2 = 0, n = 0;
      for (let i = 0; i < d.length; i += 4 * 7) { s += d[i]; s2 += d[i] * d[i]; n++; }
      return Math.sqrt(s2 / n - (s / n) ** 2);
    })`);
    expect(spread).toHaveLength(4);
    for (const s of spread) expect(s).toBeGreaterThan(10);
    expect(await h.page.locator('.case-name').textContent()).toContain('phantom');
    await screenshot(h.page, '1-open-phantom');
    expect(await shownErrors(h.page)).toEqual([]);
  }, 120_000);

  it(
    'plans automatically: S1, S2 and both alar paths, each analysed, ' + 'S1 from right to left across the midline',
    async () => {
      await h.page.click('button[data-action=auto]');
      await waitRows(4, 120_000);
      await settled();
      const p = await plan();
      expect(p.paths.map((x) => x.id).sort()).toEqual(['alar-left', 'alar-right', 's1', 's2']);
      const s1 = defined(
        p.paths.find((x) => x.id === 's1'),
        'plan path s1',
      );
      // Entry on the patient's right (LPS: smaller x), target on the left, crossing the midline (x of the
      // phantom's S1 corridor middle, where the crosshair starts).
      const coords = defined(await h.page.locator('#coords').textContent(), 'the #coords text');
      const midX = Number(defined(coords.match(/crosshair (-?[\d.]+)/), `a crosshair x in "${coords}"`)[1]);
      expect(s1.entry[0]).toBeLessThan(midX - 40);
      expect(s1.target[0]).toBeGreaterThan(midX + 40);
      expect(s1.kind).toBe('screw');
      // Every path has a reported minimum clearance in mm.
      const cells = await h.page.locator('#plan-panel [data-testid=min-clearance]').allTextContents();
      expect(cells).toHaveLength(4);
      for (const c of cells) expect(c).toMatch(/^-?\d+\.\d mm$/);
      await screenshot(h.page, '2-auto-plan');
      expect(await shownErrors(h.page)).toEqual([]);
    },
    180_000,
  );

  it('plans S1 again, seed at the crosshair (in the S1 body): it fits, within what the phantom allows', async () => {
    // Ground truth: the phantom's S1 corridor admits a cylinder of safeRadiusMm; a 7.3 mm screw then has at
    // most safeRadiusMm - 3.65 mm of clearance (plus up to a voxel, 1.5 mm, of discretisation).
    const truth = generatePhantom({ voxelMm: 1.5 }).truth.corridors.S1;
    await h.page.selectOption('[data-field=plan-at]', 's1');
    await h.page.click('button[data-action=plan-at]');
    await h.page
      .waitForFunction(
        () => (globalThis as unknown as { document: PageDoc }).document.body.dataset.state === 'busy',
        null,
        { timeout: 5_000 },
      )
      .catch(() => {});
    await settled();
    await h.page.click('#plan-panel tr[data-path-id=s1]');
    expect(await rows()).toBe(4);
    const c = await selectedClearance();
    expect(c).toBeGreaterThanOrEqual(1);
    expect(c).toBeLessThanOrEqual(truth.safeRadiusMm - 7.3 / 2 + 1.5);
    expect(await h.page.locator('[data-testid=analysis] td.ok').count()).toBeGreaterThan(0);
    expect(await shownErrors(h.page)).toEqual([]);
  }, 120_000);

  it("goes to S1's bull's-eye: the overlay's entry and target marks lie within 1 px of each other", async () => {
    await h.page.click('button[data-action=bullseye][data-path-id=s1]');
    await h.page.waitForSelector('.fluoro-view[data-last-frame-size="512"]');
    const mark = async (end: string) => {
      const m = h.page.locator(`.fluoro-view g.path[data-path-id=s1] .mark.${end}`);
      return [Number(await m.getAttribute('data-col')), Number(await m.getAttribute('data-row'))];
    };
    const e = await mark('entry'),
      t = await mark('target');
    expect(e.every(Number.isFinite) && t.every(Number.isFinite)).toBe(true);
    expect(Math.hypot(e[0] - t[0], e[1] - t[1])).toBeLessThanOrEqual(1);
    // Independently of the projection code: the panel's angles put the detector direction
    // d = (sin a cos b, -cos a cos b, sin b) (docs/conventions.md) along the path (within 0.1 degrees).
    const a = (Number(await h.page.inputValue('[data-field=primary]')) * Math.PI) / 180;
    const b = (Number(await h.page.inputValue('[data-field=secondary]')) * Math.PI) / 180;
    const d = [Math.sin(a) * Math.cos(b), -Math.cos(a) * Math.cos(b), Math.sin(b)];
    const s1 = defined(
      (await plan()).paths.find((x) => x.id === 's1'),
      'plan path s1',
    );
    const u = [0, 1, 2].map((i) => s1.entry[i] - s1.target[i]);
    const cos = Math.abs(d[0] * u[0] + d[1] * u[1] + d[2] * u[2]) / Math.hypot(u[0], u[1], u[2]);
    // The typed values are rounded to 0.1 degree, so allow that much.
    expect((Math.acos(Math.min(1, cos)) * 180) / Math.PI).toBeLessThan(0.15);
    // The side panel shows the fluoroscopy at its top.
    await h.page.evaluate(`document.getElementById('side').scrollTop = 0`);
    await screenshot(h.page, '3-bullseye-s1');
    expect(await shownErrors(h.page)).toEqual([]);
  }, 60_000);

  it(
    'drags the S1 target in the axial view: the target moves in the plane and the reported clearance changes; ' +
      'undo restores it',
    async () => {
      const before = await plan();
      const t0 = defined(
        before.paths.find((x) => x.id === 's1'),
        'plan path s1 before the drag',
      ).target;
      const c0 = await selectedClearance();
      const handle = h.page.locator('.view-axial g.path[data-path-id=s1] .handle.target');
      const box = defined(await handle.boundingBox(), "the S1 target handle's bounding box");
      const x = box.x + box.width / 2,
        y = box.y + box.height / 2;
      await h.page.mouse.move(x, y);
      await h.page.mouse.down();
      for (let i = 1; i <= 5; i++) await h.page.mouse.move(x, y + i * 5);
      await h.page.mouse.up();
      await settled();
      const after = await plan();
      const t1 = defined(
        after.paths.find((x) => x.id === 's1'),
        'plan path s1 after the drag',
      ).target;
      // The axial view's screen down is +y (posterior) and its plane is z = const: z must not change.
      expect(t1[1] - t0[1]).toBeGreaterThan(5);
      expect(Math.abs(t1[0] - t0[0])).toBeLessThan(1e-6);
      expect(Math.abs(t1[2] - t0[2])).toBeLessThan(1e-6);
      const c1 = await selectedClearance();
      expect(Number.isFinite(c1)).toBe(true);
      expect(Math.abs(c1 - c0)).toBeGreaterThan(0.1);
      expect(await h.page.locator('[data-testid=selected-min-clearance]').textContent()).toBe(`${c1.toFixed(1)} mm`);
      await screenshot(h.page, '4-dragged-target');

      // Core's analysis of the dragged path (analyzePath, through analyzePlanPaths, core's one entry point that
      // the case worker calls, so on the same corridor map) on the phantom the worker opens (1.5 mm voxels,
      // PHANTOM_VOXEL_MM; CT, labels and anatomy from its phantomCase) with the panel's margin: the page must
      // show the same numbers. Both run core on identical inputs, so they agree to 1e-6 mm (measured: 0);
      // the text shows each to 0.1 mm.
      const pc = phantomCase(1.5);
      const planning = openPlanningCase({ ct: pc.ct, labels: pc.labels, anatomy: pc.anatomy });
      const marginMm = await h.page.evaluate<number>('window.corridor.app.store.marginMm');
      expect(marginMm).toBe(1); // the panel's default margin (core's DEFAULT_MARGIN_MM)
      const dragged = defined(
        after.paths.find((x) => x.id === 's1'),
        'plan path s1',
      ) as unknown as PlanPath;
      const [coreReport] = analyzePlanPaths(planning, [dragged], { defaultMarginMm: marginMm });
      const core = coreReport.analysis;
      const cells: [string, number | null][] = [
        ['length', core.lengthMm],
        ['in-bone', core.inBoneMm],
        ['bone-to-bone', core.boneToBoneMm],
        ['widest-tool', core.maxDiameterMm],
        ['selected-min-clearance', core.minClearanceMm],
        ['tip-clearance', core.tipClearanceMm],
      ];
      let worst = 0;
      for (const [id, want] of cells) {
        const cell = h.page.locator(`[data-testid=analysis] [data-testid=${id}]`);
        const shown = Number(await cell.getAttribute('data-value-mm'));
        expect(want).not.toBeNull();
        const w = defined(want, `core's ${id}`);
        expect(Math.abs(shown - w), id).toBeLessThan(1e-6);
        worst = Math.max(worst, Math.abs(shown - w));
        // The tip's signed clearance is said in words (inside bone / beyond the bone boundary).
        const text =
          id !== 'tip-clearance'
            ? `${w.toFixed(1)} mm`
            : w >= 0
              ? `${w.toFixed(1)} mm inside bone`
              : `${(-w).toFixed(1)} mm beyond the bone boundary`;
        expect(await cell.textContent(), id).toBe(text);
      }
      console.log(
        `drag: page vs core analyzePath, largest difference ${worst} mm; min clearance ${core.minClearanceMm} mm`,
      );
      expect(await h.page.locator('[data-testid=verdict]').getAttribute('data-fits')).toBe(String(core.fits));
      // The clearance colours along the path come from core's profile: the page holds the same one.
      const shownProfile = await h.page.evaluate<{ stepMm: number; clearanceMm: (number | null)[] }>(
        `window.corridor.app.store.reports.get('s1').profile`,
      );
      expect(shownProfile.stepMm).toBe(coreReport.profile.stepMm);
      expect(shownProfile.clearanceMm).toEqual(coreReport.profile.clearanceMm);
      // Each of core's breaches is a warning button with its depth and extent to 0.1 mm.
      const f1 = (x: number) => x.toFixed(1);
      expect(await h.page.locator('[data-testid=report] button.breach').allTextContents()).toEqual(
        core.breaches.map(
          (b) =>
            `⚠ ${b.structure}: ${f1(b.depthMm)} mm deep, ` +
            `${f1(b.fromMm)}–${f1(b.toMm)} mm from the entry (click to go there)`,
        ),
      );
      // One drag is one undo step.
      await h.page.keyboard.press('Control+z');
      await settled();
      expect(
        defined(
          (await plan()).paths.find((x) => x.id === 's1'),
          'plan path s1 after undo',
        ).target,
      ).toEqual(t0);
      expect(await selectedClearance()).toBeCloseTo(c0, 9);
      await h.page.keyboard.press('Control+y');
      await settled();
      expect(
        defined(
          (await plan()).paths.find((x) => x.id === 's1'),
          'plan path s1 after redo',
        ).target,
      ).toEqual(t1);
      expect(await shownErrors(h.page)).toEqual([]);
    },
    90_000,
  );

  it('saves the plan (JSON and Slicer .mrk.json), reloads, and finds it unchanged', async () => {
    await settled();
    const download = async (action: string) => {
      const [dl] = await Promise.all([h.page.waitForEvent('download'), h.page.click(`button[data-action=${action}]`)]);
      const file = path.join(ARTIFACTS, dl.suggestedFilename());
      await dl.saveAs(file);
      return file;
    };
    const jsonFile = await download('save-json');
    const mrkFile = await download('save-mrk');
    const saved = await readFile(jsonFile, 'utf8');
    const savedPlan = JSON.parse(saved) as PlanJson;
    expect(savedPlan.paths).toHaveLength(4);
    expect(saved).toBe(await planText());

    // Reload: the plan kept in the browser comes back exactly.
    await h.page.reload();
    await openedCase();
    await waitRows(4);
    await settled();
    expect(await planText()).toBe(saved);

    // Opening the saved file after deleting a path restores it exactly too.
    await h.page.click('#plan-panel tr[data-path-id=s2]');
    await h.page.click('button[data-action=delete]');
    expect(await rows()).toBe(3);
    await h.page.setInputFiles('input[data-field=plan]', jsonFile);
    await waitRows(4);
    expect(await planText()).toBe(saved);

    // The Slicer markups file carries the same paths (ids, names, tools, coordinates).
    await h.page.setInputFiles('input[data-field=plan]', mrkFile);
    await settled();
    const fromMrk = await plan();
    expect(fromMrk.paths.map((p) => p.id)).toEqual(savedPlan.paths.map((p) => p.id));
    for (const [i, p] of fromMrk.paths.entries()) {
      const q = savedPlan.paths[i];
      expect([p.name, p.kind, p.diameterMm]).toEqual([q.name, q.kind, q.diameterMm]);
      for (let k = 0; k < 3; k++) {
        expect(p.entry[k]).toBeCloseTo(q.entry[k], 6);
        expect(p.target[k]).toBeCloseTo(q.target[k], 6);
      }
    }
    await screenshot(h.page, '5-reloaded-plan');
    expect(await shownErrors(h.page)).toEqual([]);
    expect(h.pageErrors).toEqual([]);
    await writeFile(
      path.join(ARTIFACTS, 'timings.json'),
      JSON.stringify({ firstImageMs: Number(await h.page.getAttribute('body', 'data-first-image-ms')) }, null, 2),
    );
  }, 120_000);

  it(
    'the CLI and the workstation plan the same: four paths from the phantom labels, ' +
      'S1 on each bone mask preset (1e-6 mm)',
    async () => {
      // One phantom on disk, as a user has it: the CLI plans on the files, the workstation opens the same files.
      const dir = path.join(ARTIFACTS, 'parity');
      let r = await runCli('phantom', '--out', dir, '--voxel', '1.5', '--quiet');
      expect(r.code, r.err).toBe(0);
      const ct = path.join(dir, 'ct.nii.gz'),
        labels = path.join(dir, 'labels.nii.gz');
      interface CliAnalysis {
        minClearanceMm: number | null;
        maxDiameterMm: number;
        boneToBoneMm: number;
        fits: boolean;
        marginMm: number;
      }
      interface CliPlan {
        plan: { paths: { id: string; entry: number[]; target: number[] }[] };
        results: { id: string; analysis: CliAnalysis; profile: { clearanceMm: (number | null)[] } }[];
      }
      interface PageReport {
        analysis: CliAnalysis;
        profile: { clearanceMm: (number | null)[] };
      }
      const pageReports = async () =>
        JSON.parse(
          await h.page.evaluate<string>('JSON.stringify([...window.corridor.app.store.reports.entries()])'),
        ) as [string, PageReport][];
      const same = async (cli: CliPlan, ids: string[]) => {
        const page = await plan();
        const reports = new Map(await pageReports());
        for (const id of ids) {
          const c = cli.plan.paths.find((p) => p.id === id),
            w = page.paths.find((p) => p.id === id);
          const ca = cli.results.find((x) => x.id === id),
            wa = reports.get(id);
          if (!c || !w || !ca || !wa)
            throw new Error(`path ${id} missing: CLI ${!!c}, workstation ${!!w}, reports ${!!ca}/${!!wa}`);
          for (let k = 0; k < 3; k++) {
            expect(
              Math.abs(w.entry[k] - c.entry[k]),
              `${id} entry ${w.entry.join()} vs ${c.entry.join()}`,
            ).toBeLessThan(1e-6);
            expect(
              Math.abs(w.target[k] - c.target[k]),
              `${id} target ${w.target.join()} vs ${c.target.join()}`,
            ).toBeLessThan(1e-6);
          }
          expect(wa.analysis.fits).toBe(ca.analysis.fits);
          expect(wa.analysis.marginMm).toBe(ca.analysis.marginMm);
          expect(Math.abs((wa.analysis.minClearanceMm ?? NaN) - (ca.analysis.minClearanceMm ?? NaN))).toBeLessThan(
            1e-6,
          );
          expect(Math.abs(wa.analysis.maxDiameterMm - ca.analysis.maxDiameterMm)).toBeLessThan(1e-6);
          expect(Math.abs(wa.analysis.boneToBoneMm - ca.analysis.boneToBoneMm)).toBeLessThan(1e-6);
          expect(wa.profile.clearanceMm.length).toBe(ca.profile.clearanceMm.length);
        }
      };
      const open = async (files: string[], name: string) => {
        // The cases share a name: clear it first, or the wait below would see the previous case.
        await h.page.evaluate("document.body.dataset.case = ''");
        await h.page.setInputFiles('input[data-field=images]', files);
        await h.page.waitForFunction(
          (n) => (globalThis as unknown as { document: PageDoc }).document.body.dataset.case === n,
          name,
          { timeout: 60_000 },
        );
        await settled();
      };
      // With labels: all four paths from the segmentation's seeds.
      r = await runCli(
        'plan',
        ct,
        '--labels',
        labels,
        '--auto',
        's1,s2,alar-left,alar-right',
        '--out',
        path.join(dir, 'plan.json'),
        '--json',
      );
      expect(r.code, r.err).toBe(0);
      const withLabels = JSON.parse(r.out) as CliPlan;
      const caseName =
        readNifti(await readFile(ct), ct).volume.meta.seriesDescription ??
        readNifti(await readFile(ct), ct).volume.meta.source ??
        'case';
      await open([ct, labels], caseName);
      await h.page.click('button[data-action=auto]');
      await waitRows(4, 120_000);
      await settled();
      await same(withLabels, ['s1', 's2', 'alar-left', 'alar-right']);
      // The same labels as a DICOM SEG (as a PACS holds them, written here by core's SEG writer, segment
      // number = label id): the worker reads it onto the CT's grid and plans exactly what the CLI planned.
      const labelVolume = readNifti(await readFile(labels), labels).volume;
      const present = [...new Set(labelVolume.data)].filter((v) => v > 0).sort((a, b) => a - b);
      const segFile = path.join(dir, 'labels-seg.dcm');
      await writeFile(
        segFile,
        writeDicomSeg(labelVolume, { segments: present.map((v) => ({ number: v, label: `label ${v}`, values: [v] })) }),
      );
      await open([ct, segFile], caseName);
      await h.page.click('button[data-action=auto]');
      await waitRows(4, 120_000);
      await settled();
      await same(withLabels, ['s1', 's2', 'alar-left', 'alar-right']);
      expect(await h.page.locator('[data-testid=bone-mask-row]').isVisible()).toBe(false);
      // CT alone, S1 seeded at the same point, on each preset.
      const seed = withLabels.plan.paths.find((p) => p.id === 's1');
      if (!seed) throw new Error('no S1');
      const mid = [0, 1, 2].map((k) => (seed.entry[k] + seed.target[k]) / 2);
      await open([ct], caseName);
      expect(await h.page.locator('[data-testid=bone-mask-row]').isVisible()).toBe(true);
      await h.page.evaluate(`window.corridor.app.store.setCrosshair(${JSON.stringify(mid)})`);
      const ctVolume = readNifti(await readFile(ct), ct).volume;
      const shownS1 = new Map<string, { entry: number[]; target: number[] }>();
      for (const preset of ['standard', 'demineralized', 'demineralized-faint-cortex'] as const) {
        r = await runCli(
          'plan',
          ct,
          '--auto',
          's1',
          '--seed',
          `s1=${mid.join(',')}`,
          '--bone-mask',
          preset,
          '--out',
          path.join(dir, `s1-${preset}.json`),
          '--json',
        );
        expect(r.code, r.err).toBe(0);
        await h.page.selectOption('[data-field=bone-mask]', preset);
        // A new preset re-analyses every path: a click while that runs would be refused as busy.
        await h.page
          .waitForFunction(
            () => (globalThis as unknown as { document: PageDoc }).document.body.dataset.state === 'busy',
            null,
            { timeout: 2_000 },
          )
          .catch(() => {});
        await settled();
        await h.page.selectOption('[data-field=plan-at]', 's1');
        // The plan keeps the earlier S1 until this one is back: wait for the planner's notes to be replaced.
        await h.page.evaluate('window.corridor.app.autoPlanNotes = null');
        await h.page.click('button[data-action=plan-at]');
        // Done when the notes are back, or when the page shows an error (reported below by name).
        await h.page.waitForFunction(
          () => {
            const g = globalThis as unknown as {
              corridor: { app: { autoPlanNotes: unknown } };
              document: { querySelectorAll(s: string): { length: number } };
            };
            return g.corridor.app.autoPlanNotes !== null || g.document.querySelectorAll('.message.error').length > 0;
          },
          null,
          { timeout: 90_000 },
        );
        expect(await shownErrors(h.page), `planning S1 on ${preset}`).toEqual([]);
        await settled();
        await same(JSON.parse(r.out) as CliPlan, ['s1']);
        // Besides the CLI: core's intensity bone mask with this preset and its trans-sacral planner, called
        // here directly, seeded at the crosshair, give the S1 the page shows.
        const pageS1 = defined(
          (await plan()).paths.find((p) => p.id === 's1'),
          `plan path s1 (${preset})`,
        );
        shownS1.set(preset, pageS1);
        if (preset === 'demineralized-faint-cortex') continue;
        const map = corridorMapFromIntensity(ctVolume, {
          ...boneMaskPresetOptions(preset),
          seeds: [mid as Point3],
          seedRadiusMm: 120,
        });
        const core = planTransSacral(map, {
          id: 's1',
          tool: DEFAULT_TOOLS.screw,
          seed: mid as Point3,
          midlineX: mid[0],
          marginMm: 1,
        }).path;
        for (let k = 0; k < 3; k++) {
          expect(pageS1.entry[k]).toBeCloseTo(core.entry[k], 6);
          expect(pageS1.target[k]).toBeCloseTo(core.target[k], 6);
        }
        if (preset === 'standard') await screenshot(h.page, '6-intensity-plan');
      }
      // The phantom's foramina hold water, not fat: the sagittal and coronal fill of "demineralized" fills
      // them, so its map, and the S1 axis found on it, differ; the workstation follows the choice.
      const standard = defined(shownS1.get('standard'), 'S1 on standard');
      const demineralized = defined(shownS1.get('demineralized'), 'S1 on demineralized');
      const moved = Math.max(
        ...[0, 1, 2].map((k) => Math.abs(standard.entry[k] - demineralized.entry[k])),
        ...[0, 1, 2].map((k) => Math.abs(standard.target[k] - demineralized.target[k])),
      );
      expect(moved).toBeGreaterThan(0.1);
      expect(await shownErrors(h.page)).toEqual([]);
      // A segmentation of another grid dropped with the CT: set aside, and the user is told which grids.
      const other = path.join(dir, 'other-2mm');
      r = await runCli('phantom', '--out', other, '--voxel', '2', '--quiet');
      expect(r.code, r.err).toBe(0);
      await open([ct, path.join(other, 'labels.nii.gz')], caseName);
      const warnings = (await h.page.locator('.message.warning').allTextContents()).join(' ');
      expect(warnings).toMatch(/labels\.nii\.gz is not on the image's grid/);
      expect(await h.page.locator('[data-testid=bone-mask-row]').isVisible()).toBe(true);
    },
    300_000,
  );
});
