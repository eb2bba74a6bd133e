/**
 * A case opened from the PACS keeps its series by reference (issue 19), in Debian's Chromium against the
 * server with a throw-away case store and a private Orthanc: the CT retrieved through the PACS panel is
 * named in the case by its study and series UIDs and the PACS's address (no copy of it in the store), and
 * a page that opened nothing reopens the case from the case list: the series is retrieved from the PACS
 * again, with the plan saved on it; the case exported de-identified takes the series from the PACS and
 * leaves nothing of the patient's name, ID or UIDs in the bytes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatePhantom, parseDicom, writeDicomSeries } from '@corridor/core';
import { shownErrors, startHarness, type Harness } from './harness.js';
import { orthancAvailability } from '../../../node/src/pacs/orthanc.js';
import { pacsClient } from '../../../node/src/cli/pacs.js';

const VOXEL_MM = 4;
let h: Harness;
let studyUid = '';
let seriesUid = '';
let slices = 0;

const avail = orthancAvailability();
const describePacs = avail.ok || process.env.CI === 'true' ? describe : describe.skip;

beforeAll(async () => {
  if (!avail.ok && process.env.CI !== 'true') return;
  h = await startHarness({ store: true, pacs: true });
  const ct = writeDicomSeries(generatePhantom({ voxelMm: VOXEL_MM, seed: 1 }).ct, {
    patientName: 'PACS^CASE',
    patientId: 'PACSCASE-1',
    seriesDescription: 'pacs CT',
    uidSeed: 'case-pacs-e2e',
  });
  slices = ct.length;
  const first = parseDicom(ct[0].bytes, ct[0].name);
  studyUid = first.string('x0020000d') ?? '';
  seriesUid = first.string('x0020000e') ?? '';
  const orthanc = h.orthanc;
  if (!orthanc) throw new Error('no Orthanc');
  expect((await pacsClient(orthanc.dicomWebUrl).store(ct.map((f) => f.bytes))).failed).toEqual([]);
}, 120_000);

afterAll(async () => {
  await h?.close();
});

async function api<T>(p: string): Promise<{ status: number; body: T }> {
  const r = await fetch(`${h.server.url.replace(/\/$/, '')}${p}`);
  return { status: r.status, body: (await r.json()) as T };
}

describePacs(`a case from the PACS, by reference${avail.ok ? '' : ` (skipped: ${avail.reason})`}`, () => {
  it('opened from the PACS panel, named by its UIDs; reopened in another page from the PACS again', async () => {
    const page = h.page;
    await page.goto(`${h.server.url}?renderer=cpu&voxel=${VOXEL_MM}`);
    await page.waitForSelector('body[data-case-restored]', { timeout: 90_000 });
    await page.waitForSelector('#pacs-panel[data-pacs=ready]', { timeout: 30_000 });
    await page.fill('[data-field=pacs-patient-id]', 'PACSCASE-*');
    await page.click('[data-action=pacs-search]');
    await page.click(`[data-action=pacs-study][data-study="${studyUid}"]`);
    await page.click('[data-testid=pacs-series] tr[data-modality=CT] [data-action=pacs-open]');
    await page.waitForSelector('body[data-case="pacs CT"]', { timeout: 60_000 });
    await page.waitForFunction(() => (document.body.dataset.caseRestored ?? '').startsWith('pacs-CT.'), null, {
      timeout: 30_000,
    });
    const id = (await page.getAttribute('body', 'data-case-id')) ?? '';
    const doc = await api<{
      pacs: { studyInstanceUid: string; seriesInstanceUid: string; url: string };
      blobs?: unknown;
    }>(`/api/cases/${id}/series/planning`);
    expect(doc.body.pacs.studyInstanceUid).toBe(studyUid);
    expect(doc.body.pacs.seriesInstanceUid).toBe(seriesUid);
    expect(doc.body.pacs.url.replace(/\/$/, '')).toBe((h.orthanc?.dicomWebUrl ?? '').replace(/\/$/, ''));
    expect(doc.body.blobs).toBeUndefined();
    await page.evaluate('window.corridor.app.addPath([0, 20, -200], [2, 60, -198])');
    const saved = async () => (await api(`/api/cases/${id}/plans/plan`)).status === 200;
    for (let t = 0; !(await saved()); t++) {
      if (t > 200) throw new Error('the plan was not saved');
      await new Promise((r) => setTimeout(r, 100));
    }
    // Another page: the phantom opens; the case from the list is retrieved from the PACS again.
    const other = await h.context.newPage();
    await other.goto(`${h.server.url}?renderer=cpu&voxel=${VOXEL_MM}`);
    await other.waitForSelector('body[data-case-restored]', { timeout: 90_000 });
    await other.click('[data-action=list-cases]');
    await other.click(`[data-testid=stored-cases] button[data-open-case="${id}"]`);
    await other.waitForSelector(`body[data-case-restored="${id}"]`, { timeout: 60_000 });
    expect(await other.evaluate('window.corridor.app.store.volume.dims[2]')).toBe(slices);
    expect(await other.evaluate('window.corridor.app.store.volume.meta.seriesInstanceUid')).toBe(seriesUid);
    expect(await other.evaluate('window.corridor.app.store.plan.paths.map((p) => p.entry)')).toEqual([[0, 20, -200]]);
    // Exported de-identified: the series comes from the PACS again, nothing of the patient or its UIDs left.
    const ex = await fetch(`${h.server.url}api/cases/${id}/export`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ deidentify: true }),
    });
    expect(ex.status).toBe(200);
    const text = Buffer.from(await ex.arrayBuffer()).toString('latin1');
    expect(text.split('Content-Type: application/dicom\r\n').length - 1).toBe(slices);
    for (const secret of ['PACS^CASE', 'PACSCASE-1', studyUid, seriesUid]) {
      const at = text.indexOf(secret);
      expect(at < 0 ? '' : `${secret} at ${at}: ${JSON.stringify(text.slice(Math.max(0, at - 300), at + 80))}`).toBe(
        '',
      );
    }
    expect(await shownErrors(other)).toEqual([]);
    expect(await shownErrors(page)).toEqual([]);
    await other.close();
  }, 180_000);
});
