/**
 * The workstation on the case store (issue 19), in Debian's Chromium against the real server with a
 * throw-away SQLite database:
 * - two pages editing the same case's plan: the second to save gets the conflict notice with both
 *   versions; "Keep mine" leaves the store holding mine at revision n+1, its history holding theirs at n;
 * - the verification result saved as a case document and shown in the timeline with its table's summary;
 *   a reload restores the plan and the timeline from the store (localStorage holds nothing), and the
 *   verification entry opens where it was left (procedure panel, its table, its crosshair);
 * - the verification scan's file is kept in the case (a blob): after the reload it is back in the case
 *   worker, so the placement is verified again without opening the file;
 * - a long operation (generating a finer phantom) shows progress and a Cancel that stops it, after which
 *   the open case still works;
 * - two pages changing the same path and each adding its own: "Merge as chosen" with theirs for the path
 *   both changed keeps that one from theirs and both added paths;
 * - a motion correction is saved in its fluoroscopy step and back after a reload;
 * - an XA frame opened in the C-arm panel is kept in its fluoroscopy step (a blob, the file's SHA-256):
 *   after a reload the same frame is shown again with its correction;
 * - a case opened from a file is reopened from the store's case list in a page with nothing in it (no
 *   file opened: the file comes from the store).
 * The phantom at 3 mm keeps every step short.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { carmGeometry, carmPreset, generatePhantom, readXaFrame, writeNifti, writeXaFrame } from '@corridor/core';
import { screenshot, shownErrors, startHarness, type Harness } from './harness.js';

const VOXEL = 3;
let h: Harness;
let dir: string;
let pageB: Page;

async function api<T>(p: string): Promise<{ status: number; body: T }> {
  const r = await fetch(`${h.server.url.replace(/\/$/, '')}${p}`);
  return { status: r.status, body: (await r.json()) as T };
}

interface PlanDoc {
  paths: { id: string; entry: number[]; target: number[] }[];
}

async function open(page: Page) {
  await page.goto(`${h.server.url}?renderer=cpu&voxel=${VOXEL}`);
  await page.waitForSelector('body[data-case-id]', { timeout: 60_000 });
  await page.waitForSelector('[data-testid=timeline] button[data-entry="series/planning"]', { timeout: 30_000 });
  return (await page.getAttribute('body', 'data-case-id')) ?? '';
}

/** Poll (from the test, over HTTP) until `ok` holds. */
async function until(what: string, ok: () => Promise<boolean>, ms = 20_000) {
  const t0 = Date.now();
  while (!(await ok())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function addPath(page: Page, entry: number[], target: number[]) {
  await page.evaluate(
    ([e, t]) => {
      const w = globalThis as unknown as { corridor: { app: { addPath(e: number[], t: number[]): void } } };
      w.corridor.app.addPath(e, t);
    },
    [entry, target],
  );
}

beforeAll(async () => {
  h = await startHarness({ store: true });
  dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-case-e2e-'));
  const g = generatePhantom({ voxelMm: VOXEL, seed: 1, stage: 'pins' });
  await writeFile(path.join(dir, 'pins.nii'), writeNifti(g.ct, { gzip: false }));
  const c = generatePhantom({ voxelMm: VOXEL, seed: 1, stage: 'cement' });
  await writeFile(path.join(dir, 'cement.nii'), writeNifti(c.ct, { gzip: false }));
}, 120_000);

afterAll(async () => {
  await h?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Hands the page's store a motion correction and tells its listeners, as "Correct for motion" does. */
const setMotionCorrection = (mc: unknown) =>
  h.page.evaluate((m) => {
    const st = (
      globalThis as unknown as { corridor: { app: { store: { motionCorrection: unknown; emit(t: string): void } } } }
    ).corridor.app.store;
    st.motionCorrection = m;
    st.emit('motion');
  }, mc);

describe('the workstation on the case store', () => {
  let caseId = '';
  const mine = { entry: [10, 20, -200], target: [12, 60, -198] };
  const theirs = { entry: [-10, 20, -200], target: [-12, 60, -198] };

  it('two pages on one plan: a conflict notice, "keep mine" saves mine at n+1 over theirs at n', async () => {
    caseId = await open(h.page);
    pageB = await h.context.newPage();
    expect(await open(pageB)).toBe(caseId);
    // Page A saves first (theirs, for page B).
    await addPath(h.page, theirs.entry, theirs.target);
    await until('page A to save', async () => {
      const r = await api<PlanDoc>(`/api/cases/${caseId}/plans/plan`);
      return r.status === 200 && r.body.paths.length === 1;
    });
    const head = await api<PlanDoc>(`/api/cases/${caseId}/plans/plan`);
    expect(head.body.paths.map((p) => p.entry)).toEqual([theirs.entry]);
    const n = Number(
      (await api<{ revisions: { revision: number }[] }>(`/api/cases/${caseId}/plans/plan/revisions`)).body.revisions
        .length,
    );
    // Page B, still on the revision before, saves: 409, the notice shows both versions.
    await addPath(pageB, mine.entry, mine.target);
    await pageB.waitForSelector('#case-conflict:not([hidden]) tr.differs[data-path-id="path-1"]', { timeout: 20_000 });
    const t = (await pageB.textContent('#case-conflict [data-side=theirs]')) ?? '';
    const m = (await pageB.textContent('#case-conflict [data-side=mine]')) ?? '';
    expect(t).toContain('-10.0');
    expect(m).not.toContain('-10.0');
    expect(m).toContain('10.0');
    // Nothing was overwritten by the refused save.
    expect((await api<PlanDoc>(`/api/cases/${caseId}/plans/plan`)).body.paths[0].entry).toEqual(theirs.entry);
    await screenshot(pageB, 'case-conflict');
    await pageB.click('#case-conflict button[data-keep=mine]');
    await pageB.waitForSelector('#case-conflict[hidden]', { state: 'attached', timeout: 20_000 });
    const revs = (await api<{ revisions: { revision: number }[] }>(`/api/cases/${caseId}/plans/plan/revisions`)).body
      .revisions;
    expect(revs.length).toBe(n + 1);
    const now = await api<PlanDoc>(`/api/cases/${caseId}/plans/plan`);
    expect(now.body.paths.map((p) => p.entry)).toEqual([mine.entry]);
    const old = await api<PlanDoc>(`/api/cases/${caseId}/plans/plan/revisions/${n}`);
    expect(old.body.paths.map((p) => p.entry)).toEqual([theirs.entry]);
    expect(await shownErrors(pageB)).toEqual([]);
    await pageB.close();
  }, 120_000);

  it('the verification is saved in the case; a reload restores plan and timeline from the store', async () => {
    // Page A is still on theirs; open the case again there (as a reload does) to get mine from the store.
    await open(h.page);
    expect(await h.page.evaluate('window.corridor.app.store.plan.paths[0].entry')).toEqual(mine.entry);
    await h.page.setInputFiles('input[data-field=verification-file]', path.join(dir, 'pins.nii'));
    await h.page.waitForSelector('[data-testid=timeline] button[data-entry="verifications/verification"]', {
      timeout: 60_000,
    });
    const summary = (await h.page.textContent('[data-kind=verification] [data-testid=entry-summary]')) ?? '';
    const shown = (await h.page.textContent('[data-testid=verify-summary]')) ?? '';
    expect(summary).toMatch(/PATHS PASS: \d of 1 pass/);
    expect(shown).toContain(summary.startsWith('ALL') ? 'ALL PATHS PASS' : 'NOT ALL PATHS PASS');
    // Leave the verification step at a crosshair of its own, go to the planning step, move elsewhere.
    const at = [5, 40, -190];
    await h.page.evaluate((p) => {
      const w = globalThis as unknown as { corridor: { app: { store: { setCrosshair(p: number[]): void } } } };
      w.corridor.app.store.setCrosshair(p);
    }, at);
    await h.page.click('[data-testid=timeline] button[data-entry="series/planning"]');
    await h.page.waitForSelector('body[data-timeline-entry="series/planning"]');
    await until('the view state of the verification step to be saved', async () => {
      const d = await api<{ view?: { crosshair: number[] } }>(`/api/cases/${caseId}/verifications/verification`);
      return d.body.view?.crosshair[0] === at[0];
    });
    // Reload: nothing of the plan in localStorage; plan and timeline come from the store.
    await h.page.reload();
    await h.page.waitForSelector('body[data-case-id]', { timeout: 60_000 });
    await h.page.waitForSelector('[data-testid=timeline] button[data-entry="verifications/verification"]', {
      timeout: 30_000,
    });
    expect(await h.page.evaluate('Object.keys(localStorage).filter((k) => k.startsWith("corridor.plan"))')).toEqual([]);
    expect(await h.page.evaluate('window.corridor.app.store.plan.paths.map((p) => p.entry)')).toEqual([mine.entry]);
    expect(await h.page.textContent('[data-kind=verification] [data-testid=entry-summary]')).toBe(summary);
    await h.page.click('[data-testid=timeline] button[data-entry="verifications/verification"]');
    await h.page.waitForSelector('body[data-procedure=open] [data-testid=verification] table', { timeout: 20_000 });
    expect(await h.page.evaluate('window.corridor.app.store.crosshair')).toEqual(at);
    // The scan's file is in the case: back in the case worker after the reload, verified again as it is.
    const scan = await api<{ blobs: { sha256: string; bytes: number }[]; scanRole: string }>(
      `/api/cases/${caseId}/series/scan-verification`,
    );
    expect(scan.body.scanRole).toBe('verification');
    expect(scan.body.blobs[0].bytes).toBe((await stat(path.join(dir, 'pins.nii'))).size);
    await h.page.waitForSelector(`body[data-case-restored="${caseId}"]`, { timeout: 30_000 });
    const again = await h.page.evaluate<number>('window.corridor.app.verify().then((o) => o.report.paths.length)');
    expect(again).toBe(1);
    await screenshot(h.page, 'case-timeline');
    expect(await shownErrors(h.page)).toEqual([]);
  }, 150_000);

  it('a long operation shows progress and Cancel stops it; the open case still works after', async () => {
    await h.page.evaluate(`window.corridor.run(() => window.corridor.app.openPhantom(1))`);
    await h.page.waitForSelector('body[data-state=busy] #cancel-op:not([hidden])', { timeout: 10_000 });
    await h.page.waitForSelector('#progress:not([hidden])', { state: 'attached' });
    await h.page.click('#cancel-op');
    await h.page.waitForSelector('body[data-cancelled][data-state=ready]', { timeout: 10_000 });
    expect(await h.page.isHidden('#cancel-op')).toBe(true);
    expect(await h.page.textContent('#messages')).toContain('cancelled');
    expect(await h.page.getAttribute('body', 'data-case-id')).toBe(caseId);
    // The case is loaded again into a fresh worker: the analysis of an edit runs.
    await addPath(h.page, [0, 20, -200], [2, 60, -198]);
    await h.page.waitForFunction(
      () => {
        const app = (
          globalThis as unknown as {
            corridor: { app: { store: { reports: Map<string, unknown> }; analysisCurrent: boolean } };
          }
        ).corridor.app;
        return app.store.reports.size === 2 && app.analysisCurrent;
      },
      null,
      { timeout: 30_000 },
    );
    expect(await shownErrors(h.page)).toEqual([]);
  }, 90_000);
  it('two pages changed one path and each added one: a merge takes theirs for that path and keeps both added', async () => {
    const A = h.page;
    const B = await h.context.newPage();
    expect(await open(B)).toBe(caseId);
    const first = await A.evaluate<string>('window.corridor.app.store.plan.paths[0].id');
    const edit = async (page: Page, entry: number[], extraId: string) =>
      page.evaluate(
        ([id, e, extra]) => {
          const st = (
            globalThis as unknown as {
              corridor: {
                app: { store: { plan: { paths: { id: string; entry: number[] }[] }; setPaths(p: unknown[]): void } };
              };
            }
          ).corridor.app.store;
          const ps = st.plan.paths.map((p) => (p.id === id ? { ...p, entry: e } : p));
          const one = ps.find((p) => p.id === id);
          st.setPaths([...ps, { ...one, id: extra, name: extra }]);
        },
        [first, entry, extraId] as const,
      );
    const before = (await api<{ revisions: unknown[] }>(`/api/cases/${caseId}/plans/plan/revisions`)).body.revisions
      .length;
    await edit(A, [1, 21, -201], 'a-only');
    await until('page A to save', async () => {
      const r = await api<PlanDoc>(`/api/cases/${caseId}/plans/plan`);
      return r.body.paths.some((p) => p.id === 'a-only');
    });
    await edit(B, [2, 22, -202], 'b-only');
    await B.waitForSelector(`#case-conflict:not([hidden]) tr.differs[data-path-id="${first}"]`, { timeout: 20_000 });
    // The defaults: the path both changed is mine, each added one from the side that has it.
    expect(await B.isChecked(`#case-conflict input[data-pick="${first}"][value=mine]`)).toBe(true);
    expect(await B.isChecked('#case-conflict input[data-pick="a-only"][value=theirs]')).toBe(true);
    expect(await B.isChecked('#case-conflict input[data-pick="b-only"][value=mine]')).toBe(true);
    await B.check(`#case-conflict input[data-pick="${first}"][value=theirs]`);
    await B.click('#case-conflict button[data-keep=merge]');
    await B.waitForSelector('#case-conflict[hidden]', { state: 'attached', timeout: 20_000 });
    const now = await api<PlanDoc>(`/api/cases/${caseId}/plans/plan`);
    const byId = new Map(now.body.paths.map((p) => [p.id, p]));
    expect(byId.get(first)?.entry).toEqual([1, 21, -201]);
    expect(byId.has('a-only') && byId.has('b-only')).toBe(true);
    expect(byId.get('b-only')?.entry).toEqual([2, 22, -202]);
    // One revision for A's save, one for the merge (B's refused save made none).
    const revs = (await api<{ revisions: unknown[] }>(`/api/cases/${caseId}/plans/plan/revisions`)).body.revisions;
    expect(revs.length).toBe(before + 2);
    expect(await B.evaluate('window.corridor.app.store.plan.paths.map((p) => p.id)')).toEqual(
      now.body.paths.map((p) => p.id),
    );
    expect(await shownErrors(B)).toEqual([]);
    await B.close();
  }, 90_000);

  it('a motion correction is kept in its fluoroscopy step and restored after a reload', async () => {
    const mc = {
      planningToCurrent: [
        [1, 0, 0, 3],
        [0, 1, 0, -2],
        [0, 0, 1, 1],
        [0, 0, 0, 1],
      ],
      status: 'ok',
      reasons: [],
      singleView: true,
      depthUncertaintyMm: 4,
      similarity: 0.9,
      frameName: 'virtual frame (DRR view)',
      ms: 1000,
    };
    await setMotionCorrection(mc);
    const key = 'series/fluoro-virtual-frame-DRR-view';
    await until('the correction to be saved', async () => {
      const r = await api<{ motion?: { planningToCurrent: number[][] } }>(`/api/cases/${caseId}/${key}`);
      return r.status === 200 && r.body.motion?.planningToCurrent[0][3] === 3;
    });
    await h.page.reload();
    await h.page.waitForSelector(`body[data-case-restored="${caseId}"]`, { timeout: 60_000 });
    expect(await h.page.evaluate('window.corridor.app.store.motionCorrection')).toEqual(mc);
    expect(await h.page.textContent(`[data-kind=fluoroscopy] [data-testid=entry-summary]`)).toContain(
      'motion correction applied',
    );
    expect(await shownErrors(h.page)).toEqual([]);
  }, 90_000);

  it('an XA frame opened is kept in its fluoroscopy step and shown again with its correction after a reload', async () => {
    const iso = await h.page.evaluate<[number, number, number]>('[...window.corridor.app.store.carm.isocenter]');
    const system = carmPreset(await h.page.evaluate<string>('window.corridor.fluoro.system.id'));
    const g = carmGeometry(system, { primaryDeg: 12, secondaryDeg: -4, isocenter: iso }, { size: 64, fieldMm: 290 });
    const gray = Uint8Array.from({ length: 64 * 64 }, (_, i) => (i * 7 + (i >> 6) * 13) & 255);
    const bytes = writeXaFrame({ geometry: g, gray });
    const file = path.join(dir, 'xa-frame.dcm');
    await writeFile(file, bytes);
    const key = `/api/cases/${caseId}/series/fluoro-xa-frame-dcm`;
    type FluoroDoc = { blobs?: { sha256: string; bytes: number; name: string }[]; motion?: { frameName: string } };
    const mc = {
      planningToCurrent: [
        [1, 0, 0, -5],
        [0, 1, 0, 1],
        [0, 0, 1, 2],
        [0, 0, 0, 1],
      ],
      status: 'ok',
      reasons: [],
      singleView: true,
      depthUncertaintyMm: 6,
      similarity: 0.8,
      frameName: 'xa-frame.dcm',
      ms: 900,
    };
    // The frame's upload held until a correction has been made on it: both write the one step, and
    // neither may drop the other's part.
    let release = () => {};
    const held = new Promise<void>((r) => (release = r));
    let puts = 0;
    await h.page.route('**/api/blobs/**', async (route) => {
      if (route.request().method() === 'PUT') {
        puts++;
        await held;
      }
      await route.continue();
    });
    await h.page.setInputFiles('input[data-field=xa]', file);
    await h.page.waitForSelector('[data-view=fluoro][data-xa-frame="xa-frame.dcm"]', { timeout: 20_000 });
    await until('the upload to start', () => Promise.resolve(puts > 0));
    await setMotionCorrection(mc);
    release();
    await until('the frame and the correction to be kept in its step', async () => {
      const d = (await api<FluoroDoc>(key)).body;
      return !!d.blobs && d.motion?.frameName === 'xa-frame.dcm';
    });
    await h.page.unroute('**/api/blobs/**');
    const kept = (await api<FluoroDoc>(key)).body.blobs ?? [];
    expect(kept.map((b) => [b.name, b.bytes, b.sha256])).toEqual([
      ['xa-frame.dcm', bytes.length, createHash('sha256').update(bytes).digest('hex')],
    ]);
    // A reload keeps nothing in the page: the frame comes from the store.
    await h.page.reload();
    await h.page.waitForSelector(`body[data-case-restored="${caseId}"]`, { timeout: 60_000 });
    await h.page.waitForSelector('[data-view=fluoro][data-xa-frame="xa-frame.dcm"]', { timeout: 20_000 });
    const shown = await h.page.evaluate<{ gray: number[]; primary: number }>(
      '({ gray: Array.from(window.corridor.app.store.xa.frame.gray), primary: window.corridor.app.store.carm.primaryDeg })',
    );
    const frame = await readXaFrame(bytes, 'xa-frame.dcm', { system, isocenter: iso });
    expect(shown.gray).toEqual(Array.from(frame.gray));
    expect(shown.gray).toEqual(Array.from(gray));
    expect(shown.primary).toBeCloseTo(12, 6);
    expect(await h.page.evaluate('window.corridor.app.store.motionCorrection')).toEqual(mc);
    expect(await shownErrors(h.page)).toEqual([]);
  }, 60_000);

  it('the cement scans are kept in the case; a reload draws their overlay again', async () => {
    await h.page.setInputFiles('input[data-field=cement-baseline-file]', path.join(dir, 'pins.nii'));
    await h.page.waitForSelector('[data-testid=cement] p', { timeout: 30_000 });
    await h.page.setInputFiles('input[data-field=cement-file]', path.join(dir, 'cement.nii'));
    await h.page.waitForSelector('#cement-banner[data-verdict]', { timeout: 60_000 });
    const overlay = () =>
      h.page.evaluate<number>(
        '(() => { const o = window.corridor.app.store.cementOverlay; let n = 0; if (o) for (const v of o.data) if (v) n++; return n; })()',
      );
    const before = await overlay();
    expect(before).toBeGreaterThan(0);
    type CementDoc = { baselineSeries?: string | null; scanSeries?: string[]; report?: { verdict: string } };
    await until('the cement step to name its kept scans', async () => {
      const d = (await api<CementDoc>(`/api/cases/${caseId}/cement/cement`)).body;
      return typeof d.baselineSeries === 'string' && d.scanSeries?.length === 1;
    });
    const verdict = (await api<CementDoc>(`/api/cases/${caseId}/cement/cement`)).body.report?.verdict;
    await h.page.reload();
    await h.page.waitForSelector(`body[data-case-restored="${caseId}"]`, { timeout: 60_000 });
    await until('the cement overlay to be drawn again', async () => (await overlay()) === before, 30_000);
    expect(await h.page.getAttribute('#cement-banner', 'data-verdict')).toBe(verdict);
    expect(await shownErrors(h.page)).toEqual([]);
  }, 120_000);

  it('a case opened from a file is reopened from the store in a page with nothing opened', async () => {
    await h.page.setInputFiles('input[data-field=images]', path.join(dir, 'pins.nii'));
    await h.page.waitForFunction(
      (id) => !!document.body.dataset.caseRestored && document.body.dataset.caseRestored !== id,
      caseId,
      { timeout: 60_000 },
    );
    const fileCase = (await h.page.getAttribute('body', 'data-case-id')) ?? '';
    expect(fileCase).not.toBe(caseId);
    await addPath(h.page, [3, 30, -190], [4, 60, -190]);
    await until('its plan to be saved', async () => (await api(`/api/cases/${fileCase}/plans/plan`)).status === 200);
    const planning = await api<{ blobs: { bytes: number }[] }>(`/api/cases/${fileCase}/series/planning`);
    expect(planning.body.blobs[0].bytes).toBe((await stat(path.join(dir, 'pins.nii'))).size);
    const dims = await h.page.evaluate('window.corridor.app.store.volume.dims.join("x")');
    // Another page, nothing in its storage: the phantom opens; the file case comes from the list.
    const C = await h.context.newPage();
    await C.goto(`${h.server.url}?renderer=cpu&voxel=${VOXEL}`);
    await C.evaluate('localStorage.clear()');
    await C.waitForSelector('body[data-case-id]', { timeout: 60_000 });
    await C.click('[data-action=list-cases]');
    await C.click(`[data-testid=stored-cases] button[data-open-case="${fileCase}"]`);
    await C.waitForSelector(`body[data-case-restored="${fileCase}"]`, { timeout: 60_000 });
    expect(await C.evaluate('window.corridor.app.store.volume.dims.join("x")')).toBe(dims);
    expect(await C.evaluate('window.corridor.app.store.plan.paths.map((p) => p.entry)')).toEqual([[3, 30, -190]]);
    expect(await shownErrors(C)).toEqual([]);
    await C.close();
  }, 120_000);
});
