/**
 * The reference case end to end in Debian's Chromium with a real Orthanc behind the server (issue 19):
 * the phantom's planning CT (3 mm, a DICOM series) and its segmentation (DICOM SEG) are stored to a
 * private Orthanc; in the workstation the PACS panel searches it (QIDO through /api/pacs/dicom-web),
 * lists the study's series and retrieves the CT with a progress bar, opening it as the case (the SEG comes
 * with it); the automatic plan, a bull's-eye view (core's bullseyeView angles, computed here too), the
 * pins stage verified, the pins stage as the cement baseline and the cement stage analysed; the report
 * (POST /api/report, node's makeReport) is downloaded as a PDF and stored back to the PACS, and QIDO on
 * Orthanc itself then finds the Encapsulated PDF (DOC) and the SR in the CT's study, with its patient.
 * Scans are written by the test with core's phantom generator (as `corridor phantom` does).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  bullseyeView,
  carmPreset,
  generatePhantom,
  jsonString,
  parseDicom,
  writeDicomSeg,
  writeDicomSeries,
  writeNifti,
  type PlanPath,
} from '@corridor/core';
import { WEB_DIR, screenshot, shownErrors, startHarness, type Harness } from './harness.js';
import { startServer } from '../../../node/src/server/server.js';
import { orthancAvailability } from '../../../node/src/pacs/orthanc.js';
import { pacsClient } from '../../../node/src/cli/pacs.js';

const VOXEL_MM = 3;
const PATIENT_ID = 'REFCASE-0001';

let h: Harness;
let dir: string;
let studyUid = '';
let ctInstances = 0;
const file = (n: string) => path.join(dir, n);

const avail = orthancAvailability();
const describePacs = avail.ok || process.env.CI === 'true' ? describe : describe.skip;

beforeAll(async () => {
  if (!avail.ok && process.env.CI !== 'true') return;
  h = await startHarness({ pacs: true });
  dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-reference-e2e-'));
  const plan = generatePhantom({ voxelMm: VOXEL_MM, seed: 1 });
  const ct = writeDicomSeries(plan.ct, {
    patientName: 'REFERENCE^CASE',
    patientId: PATIENT_ID,
    studyDescription: 'Corridor reference case',
    seriesDescription: 'planning CT',
    uidSeed: 'reference-case-e2e',
  });
  ctInstances = ct.length;
  const first = parseDicom(ct[0].bytes, ct[0].name);
  studyUid = first.string('x0020000d') ?? '';
  const present = [...new Set(plan.labels.data)].filter((v) => v > 0).sort((a, b) => a - b);
  const seg = writeDicomSeg(plan.labels, {
    segments: present.map((v) => ({ number: v, label: `label ${v}`, values: [v] })),
    patientName: 'REFERENCE^CASE',
    patientId: PATIENT_ID,
    studyInstanceUid: studyUid,
    referencedSeriesUid: first.string('x0020000e') ?? '',
    frameOfReferenceUid: first.string('x00200052') ?? '',
  });
  const orthanc = h.orthanc;
  if (!orthanc) throw new Error('no Orthanc');
  const stored = await pacsClient(orthanc.dicomWebUrl).store([...ct.map((f) => f.bytes), seg]);
  expect(stored.failed).toEqual([]);
  for (const [name, o] of [
    ['pins.nii', { stage: 'pins' as const }],
    ['cement.nii', { stage: 'cement' as const }],
  ] as const)
    await writeFile(file(name), writeNifti(generatePhantom({ voxelMm: VOXEL_MM, seed: 1, ...o }).ct, { gzip: false }));
}, 120_000);

afterAll(async () => {
  await h?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface PageDoc {
  document: {
    querySelector(s: string): { hidden: boolean; value: number } | null;
    querySelectorAll(s: string): { length: number };
  };
}

const dataset = (sel: string, key: string) => h.page.$eval(sel, (el, k) => (el as HTMLElement).dataset[k] ?? '', key);

describePacs(`the reference case from the PACS to the report${avail.ok ? '' : ` (skipped: ${avail.reason})`}`, () => {
  it('PACS panel: search, series, retrieve with progress, open as the case', async () => {
    await h.page.goto(`${h.server.url}?renderer=cpu`);
    // The workstation opens its own phantom at start: let it, then replace it with the case from the PACS.
    await h.page.waitForSelector('body[data-first-image-ms]', { timeout: 90_000 });
    await h.page.waitForSelector('#pacs-panel[data-pacs=ready]', { timeout: 30_000 });
    await h.page.fill('[data-field=pacs-patient-id]', 'REFCASE-*');
    await h.page.click('[data-action=pacs-search]');
    await h.page.waitForSelector(`[data-testid=pacs-studies] tr[data-study="${studyUid}"]`, { timeout: 20_000 });
    expect(await dataset('[data-testid=pacs-studies]', 'count')).toBe('1');
    await h.page.click(`[data-action=pacs-study][data-study="${studyUid}"]`);
    await h.page.waitForSelector('[data-testid=pacs-series] tr[data-modality=CT]', { timeout: 20_000 });
    expect(await h.page.locator('[data-testid=pacs-series] tr[data-modality=SEG]').count()).toBe(1);
    // Cancel: a retrieval the PACS does not answer (held here) is cancelled, the open case stays.
    const held = /\/api\/pacs\/dicom-web\/studies\/[0-9.]+\/series\/[0-9.]+$/;
    await h.page.route(held, () => undefined);
    const before = await dataset('body', 'case');
    await h.page.click('[data-testid=pacs-series] tr[data-modality=CT] [data-action=pacs-open]');
    await h.page.waitForSelector('[data-action=pacs-cancel]:not([hidden])', { timeout: 10_000 });
    await h.page.click('[data-action=pacs-cancel]');
    await h.page.waitForSelector('#pacs-panel[data-retrieve=cancelled]', { timeout: 10_000 });
    expect(await dataset('body', 'case')).toBe(before);
    await h.page.unroute(held);
    // The progress bar shows while the instances stream in.
    const sawProgress = h.page.waitForFunction(
      () => {
        const b = (globalThis as unknown as PageDoc).document.querySelector('[data-testid=pacs-progress]');
        return !!b && !b.hidden && b.value > 0;
      },
      null,
      { timeout: 30_000, polling: 'raf' },
    );
    await h.page.click('[data-testid=pacs-series] tr[data-modality=CT] [data-action=pacs-open]');
    await sawProgress;
    await h.page.waitForSelector('body[data-case="planning CT"]', { timeout: 60_000 });
    expect(await dataset('#pacs-panel', 'retrieve')).toBe('done');
    const info = await h.page.evaluate<string>(
      'JSON.stringify({ dims: window.corridor.app.store.volume.dims, meta: window.corridor.app.store.volume.meta })',
    );
    const v = JSON.parse(info) as { dims: number[]; meta: { studyInstanceUid?: string; patientId?: string } };
    expect(v.dims[2]).toBe(ctInstances);
    expect(v.meta.studyInstanceUid).toBe(studyUid);
    expect(v.meta.patientId).toBe(PATIENT_ID);
    expect(await shownErrors(h.page)).toEqual([]);
  }, 90_000);

  it("plan automatically, then the bull's-eye view of S1 (core's angles)", async () => {
    await h.page.click('button[data-action=auto]');
    await h.page.waitForFunction(
      () => (globalThis as unknown as PageDoc).document.querySelectorAll('#plan-panel tr[data-path-id]').length >= 2,
      null,
      { timeout: 60_000 },
    );
    await h.page.click('button[data-action=bullseye][data-path-id=s1]');
    const got = JSON.parse(
      await h.page.evaluate<string>(
        'JSON.stringify({ carm: window.corridor.app.store.carm, plan: window.corridor.app.currentPlan(), system: window.corridor.fluoro.system.id })',
      ),
    ) as { carm: { primaryDeg: number; secondaryDeg: number }; plan: { paths: PlanPath[] }; system: string };
    const s1 = got.plan.paths.find((p) => p.id === 's1');
    expect(s1).toBeDefined();
    const want = bullseyeView(s1 as PlanPath, carmPreset(got.system));
    expect(got.carm.primaryDeg).toBeCloseTo(want.primaryDeg, 6);
    expect(got.carm.secondaryDeg).toBeCloseTo(want.secondaryDeg, 6);
    expect(await dataset('#fluoro-panel', 'lastView')).toBe('bullseye:s1');
  }, 90_000);

  it('verify with the pins stage, cement with the cement stage', async () => {
    await h.page.setInputFiles('input[data-field=verification-file]', file('pins.nii'));
    await h.page.waitForSelector('[data-testid=verification] table', { timeout: 60_000 });
    const rows = await h.page.locator('[data-testid=verification] tr[data-path-id]').count();
    expect(rows).toBeGreaterThanOrEqual(2);
    await h.page.setInputFiles('input[data-field=cement-baseline-file]', file('pins.nii'));
    await h.page.setInputFiles('input[data-field=cement-file]', file('cement.nii'));
    await h.page.waitForFunction(
      () => (globalThis as unknown as { corridor: { app: { store: { cement: unknown } } } }).corridor.app.store.cement,
      null,
      { timeout: 60_000 },
    );
  }, 120_000);

  it('report: the PDF downloads; stored to the PACS, Orthanc holds DOC and SR in the CT study', async () => {
    const download = h.page.waitForEvent('download', { timeout: 60_000 });
    await h.page.click('[data-action=report-make]');
    const d = await download;
    expect(d.suggestedFilename()).toBe('report.pdf');
    const pdfPath = file('report.pdf');
    await d.saveAs(pdfPath);
    const pdf = await readFile(pdfPath);
    expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    expect(await dataset('#report-panel', 'report')).toBe('done');
    const paths = Number(await dataset('#report-panel', 'paths'));
    expect(paths).toBe(await h.page.locator('#plan-panel tr[data-path-id]').count());
    // The report holds the workstation's own verification and cement results.
    const results = JSON.parse(
      await h.page.evaluate<string>(
        'JSON.stringify({ allPass: window.corridor.app.store.verification.report.allPass, verdict: window.corridor.app.store.cement.verdict })',
      ),
    ) as { allPass: boolean; verdict: string };
    expect(await dataset('#report-panel', 'verification')).toBe(String(results.allPass));
    expect(await dataset('#report-panel', 'cement')).toBe(results.verdict);
    await h.page.click('[data-action=report-store]');
    await h.page.waitForSelector('#report-panel[data-stored="2"]', { timeout: 30_000 });
    await screenshot(h.page, 'reference-case');

    const orthanc = h.orthanc;
    if (!orthanc) throw new Error('no Orthanc');
    const client = pacsClient(orthanc.dicomWebUrl);
    const series = await client.searchSeries(studyUid);
    expect(series.map((s) => jsonString(s, '00080060')).sort()).toEqual(['CT', 'DOC', 'SEG', 'SR']);
    for (const m of ['DOC', 'SR']) {
      const inst = await client.searchInstances(studyUid, undefined, { Modality: m, includefield: ['00100020'] });
      expect(inst, m).toHaveLength(1);
    }
    const studies = await client.searchStudies({ PatientID: PATIENT_ID });
    expect(studies).toHaveLength(1);
    expect(await shownErrors(h.page)).toEqual([]);
    expect(h.pageErrors).toEqual([]);
  }, 90_000);

  it('a server without a PACS: the panel says so and stays disabled', async () => {
    const bare = await startServer({ webRoot: path.join(WEB_DIR, 'dist'), port: 0 });
    const page = await h.context.newPage();
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    try {
      // This page talks to the second server only (the harness's context lets only its own through).
      await page.route(/.*/, (route) =>
        route.request().url().startsWith(bare.url) ? route.continue() : route.abort(),
      );
      await page.goto(`${bare.url}?renderer=cpu`);
      await page.waitForSelector('#pacs-panel[data-pacs=none]', { timeout: 30_000 });
      expect(await page.textContent('[data-testid=pacs-note]')).toContain('No PACS');
      expect(await page.isDisabled('[data-action=pacs-search]')).toBe(true);
      // Nothing failed on the way (the other e2e tests, without a PACS, check the console stays clean).
      expect(errors).toEqual([]);
    } finally {
      await page.close();
      await bare.close();
    }
  }, 60_000);
});
