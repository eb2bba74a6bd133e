/**
 * The workstation's report carries the key images (issue 19), end to end in Debian's Chromium: the
 * phantom case, a plan of S1 and S2 (from the generator's truth), the pins stage verified and the cement
 * stage analysed, then "Report (PDF)". The case worker draws the key images from its volumes (core's
 * reportKeyImages, as `corridor report` does) and sends them with core's ReportRequest; the test checks
 * - the downloaded PDF holds every key image (pdfimages -list, sizes in order), pixel for pixel as sent;
 * - each shows what it claims: the planned path's pixels (green) at the entry and target positions
 *   computed here from the plan and the slice's geometry; the fluoroscopy frame is the one the
 *   fluoroscopy view shows, the plan's entry and target marks where the view's SVG marks are; the cement
 *   image's yellow and red discs where the model's nearest cement and foramen points fall;
 * - the slice of S1 is the one `corridor report` draws: core's planSliceImage here, on the same scan;
 * - the Encapsulated PDF (holding the downloaded PDF) and the SR validate in dciodvfy with no error.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { decode } from 'fast-png';
import {
  base64ToBytes,
  generatePhantom,
  planSliceImage,
  readNifti,
  writeNifti,
  type ProcedureReport,
  type ReportRequest,
} from '@corridor/core';
import { ARTIFACTS, shownErrors, startHarness, type Harness } from './harness.js';
import { dciodvfy, hasTool, runTool } from '../../../node/src/test-helpers/dicom-tools.js';

/** The workstation's phantom voxel (app.ts PHANTOM_VOXEL_MM). */
const VOXEL_MM = 1.5;

let h: Harness;
let dir: string;
const file = (n: string) => path.join(dir, n);
type P3 = [number, number, number];

beforeAll(async () => {
  h = await startHarness();
  dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-report-e2e-'));
  let truth: ReturnType<typeof generatePhantom>['truth'] | null = null;
  for (const [name, stage] of [
    ['pins.nii', 'pins'],
    ['cement.nii', 'cement'],
  ] as const) {
    const g = generatePhantom({ voxelMm: VOXEL_MM, seed: 1, stage });
    truth ??= g.truth;
    await writeFile(file(name), writeNifti(g.ct, { gzip: false }));
  }
  const t = truth as NonNullable<typeof truth>;
  const p = (id: string, name: string, c: { entry: number[]; exit: number[] }) => ({
    id,
    name,
    kind: 'guidepin',
    diameterMm: 2.8,
    entry: c.entry,
    target: c.exit,
  });
  await writeFile(
    file('plan.json'),
    JSON.stringify({
      schemaVersion: 1,
      volume: {},
      paths: [p('s1', 'S1', t.corridors.S1), p('s2', 'S2', t.corridors.S2)],
    }),
  );
}, 180_000);

afterAll(async () => {
  await h?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface PageDoc {
  document: { querySelectorAll(s: string): { length: number } };
}

interface Reply {
  report: ProcedureReport;
  notes: string[];
  images: { id: string; width: number; height: number }[];
  pdf: string;
  dicom: { pdf: string; sr: string };
}

/** RGB at (col, row) of a decoded PNG. */
function rgbAt(img: ReturnType<typeof decode>, c: number, r: number): [number, number, number] {
  const o = (Math.round(r) * img.width + Math.round(c)) * img.channels;
  return [img.data[o], img.data[o + 1], img.data[o + 2]];
}
/** Whether any pixel within 1 of (c, r) satisfies `test` (lines are anti-aliased across pixel centres). */
function near(img: ReturnType<typeof decode>, c: number, r: number, test: (p: [number, number, number]) => boolean) {
  for (let dr = -1; dr <= 1; dr++) for (let dc = -1; dc <= 1; dc++) if (test(rgbAt(img, c + dc, r + dr))) return true;
  return false;
}
const isGreen = ([r, g, b]: number[]) => g > 150 && g > r + 60 && g > b + 60;
const isYellow = ([r, g, b]: number[]) => r > 200 && g > 170 && b < 120;
const isRed = ([r, g, b]: number[]) => r > 180 && g < 130 && b < 130;
const sub = (a: number[], b: number[]) => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const norm = (a: number[]) => Math.hypot(a[0], a[1], a[2]);

describe('the workstation report holds the key images (Chromium, CPU fallback)', () => {
  it('opens the phantom with a plan, verifies the pins, analyses the cement', async () => {
    await h.page.goto(`${h.server.url}?renderer=cpu`);
    await h.page.waitForSelector('body[data-first-image-ms]', { timeout: 90_000 });
    await h.page.setInputFiles('input[data-field=plan]', file('plan.json'));
    await h.page.waitForFunction(
      () => (globalThis as unknown as PageDoc).document.querySelectorAll('#plan-panel tr[data-path-id]').length === 2,
      null,
      { timeout: 30_000 },
    );
    await h.page.setInputFiles('input[data-field=verification-file]', file('pins.nii'));
    await h.page.waitForSelector('[data-testid=verification] table', { timeout: 60_000 });
    await h.page.setInputFiles('input[data-field=cement-baseline-file]', file('pins.nii'));
    await h.page.waitForSelector('[data-testid=cement] p', { timeout: 30_000 });
    await h.page.setInputFiles('input[data-field=cement-file]', file('cement.nii'));
    await h.page.waitForSelector('#cement-banner[data-verdict]', { timeout: 60_000 });
    await h.page.waitForSelector('.fluoro-view[data-last-frame-size="512"]', { timeout: 60_000 });
    expect(await shownErrors(h.page)).toEqual([]);
  }, 180_000);

  let req: ReportRequest;
  let reply: Reply;
  let pdfPath = '';
  let marks: { id: string; end: string; col: number; row: number }[] = [];
  let shown: number[] = [];

  it('Report (PDF): the request carries the key images drawn in the case worker', async () => {
    // What the fluoroscopy view shows now, and where it marks the path ends.
    marks = await h.page.$$eval('.fluoro-view svg g.path[data-path-id] .mark', (els) =>
      els.map((e) => ({
        id: (e.closest('g.path') as SVGElement).dataset.pathId ?? '',
        end: e.classList.contains('entry') ? 'entry' : 'target',
        col: Number(e.getAttribute('data-col')),
        row: Number(e.getAttribute('data-row')),
      })),
    );
    expect(marks.length).toBe(4);
    shown = await h.page.evaluate<number[]>('Array.from(window.corridor.fluoro.shownGray())');
    const response = h.page.waitForResponse((r) => r.url().endsWith('/api/report'), { timeout: 120_000 });
    const download = h.page.waitForEvent('download', { timeout: 120_000 });
    await h.page.click('[data-action=report-make]');
    const res = await response;
    expect(res.status()).toBe(200);
    req = res.request().postDataJSON() as ReportRequest;
    reply = (await res.json()) as Reply;
    pdfPath = file('report.pdf');
    await (await download).saveAs(pdfPath);
    const ids = (req.images ?? []).map((i) => i.id);
    expect(ids.slice(0, 5)).toEqual(['plan-s1', 'plan-s2', 'drr-inlet', 'drr-outlet', 'fluoro-1']);
    expect(ids[5]).toMatch(/^cement-/);
    expect(ids).toHaveLength(6);
    expect(reply.images.map((i) => i.id)).toEqual(ids);
    expect(await h.page.getAttribute('#report-panel', 'data-images')).toBe(ids.join(' '));
    expect(reply.report.pelvicViews.map((v) => v.label)).toEqual(['inlet', 'outlet']);
    // The same report as HTML: one page, every key image inline, as sent.
    const htmlDownload = h.page.waitForEvent('download', { timeout: 30_000 });
    await h.page.click('[data-action=report-html]');
    const hd = await htmlDownload;
    expect(hd.suggestedFilename()).toBe('report.html');
    await hd.saveAs(file('report.html'));
    const html = await readFile(file('report.html'), 'utf8');
    const inline = [...html.matchAll(/src="data:image\/png;base64,([^"]+)"/g)].map((m) => m[1]);
    expect(inline).toEqual((req.images ?? []).map((i) => i.png));
  }, 180_000);

  let fromPdf: ReturnType<typeof decode>[] = [];

  it.skipIf(!hasTool('pdfimages'))(
    'the PDF holds every key image, pixel for pixel as drawn',
    async () => {
      const list = runTool('pdfimages', ['-list', pdfPath])
        .split('\n')
        .slice(2)
        .filter((l) => l.trim())
        .map((l) => l.trim().split(/\s+/));
      // page num type width height color comp bpc ...
      const sent = req.images ?? [];
      expect(list.map((c) => [c[2], Number(c[3]), Number(c[4]), c[5]])).toEqual(
        sent.map((i) => ['image', i.width, i.height, 'rgb']),
      );
      const out = file('img');
      await mkdir(out);
      runTool('pdfimages', ['-png', pdfPath, path.join(out, 'k')]);
      const files = (await readdir(out)).sort();
      expect(files).toHaveLength(sent.length);
      fromPdf = await Promise.all(files.map(async (f) => decode(await readFile(path.join(out, f)))));
      // Kept for a look: test-artifacts/report-ID.png, as the PDF holds them.
      for (const [i, f] of files.entries())
        await writeFile(path.join(ARTIFACTS, `report-${sent[i].id}.png`), await readFile(path.join(out, f)));
      sent.forEach((s, i) => {
        const a = decode(base64ToBytes(s.png));
        const b = fromPdf[i];
        expect([b.width, b.height]).toEqual([a.width, a.height]);
        let diff = 0;
        for (let p = 0; p < a.width * a.height; p++)
          for (let c = 0; c < 3; c++) diff += a.data[p * a.channels + c] !== b.data[p * b.channels + c] ? 1 : 0;
        expect(diff, s.id).toBe(0);
      });
    },
    60_000,
  );

  it.skipIf(!hasTool('pdfimages'))(
    'each key image shows what it claims',
    () => {
      // The plan slices: the path along the image's middle row, centred, over 1.3 x its length + 30 mm.
      for (const [k, id] of [
        [0, 's1'],
        [1, 's2'],
      ] as const) {
        const img = fromPdf[k];
        const p = req.plan.paths as { id: string; entry: P3; target: P3 }[];
        const path1 = p.find((x) => x.id === id) as { entry: P3; target: P3 };
        const len = norm(sub(path1.target, path1.entry));
        const px = (len * 1.3 + 30) / img.width;
        const c = (img.width - 1) / 2;
        const half = len / 2 / px;
        for (let t = 0; t <= 1.0001; t += 0.125)
          expect(near(img, c - half + 2 * half * t, c, isGreen), `${id} at ${t}`).toBe(true);
        // Off the path (a quarter of the image across it): not the plan's green.
        expect(isGreen(rgbAt(img, c, c + img.width / 4)), id).toBe(false);
      }
      // The fluoroscopy frame: the frame the view shows, the path ends where the view marks them.
      const fl = fromPdf[4];
      expect(fl.width * fl.height).toBe(shown.length);
      let same = 0;
      for (let i = 0; i < shown.length; i++) if (Math.abs(fl.data[i * fl.channels] - shown[i]) <= 1) same++;
      expect(same / shown.length).toBeGreaterThan(0.9);
      for (const m of marks) {
        const want = m.end === 'entry' ? isGreen : isRed;
        expect(near(fl, m.col, m.row, want), `${m.id} ${m.end} at ${m.col.toFixed(1)}, ${m.row.toFixed(1)}`).toBe(true);
      }
      // The cement: the slice through the nearest cement point and the nearest foramen point (70 mm field).
      const scans = reply.report.cement?.scans ?? [];
      const last = scans[scans.length - 1];
      const fr = last.nearest
        .filter((n) => n.structure === 'foramen' && n.distanceMm !== null)
        .sort((a, b) => (a.distanceMm ?? 0) - (b.distanceMm ?? 0))[0];
      expect(fr?.cementAt && fr.at, JSON.stringify(last.nearest)).toBeTruthy();
      const cm = fromPdf[5];
      const gap = norm(sub(fr.at as P3, fr.cementAt as P3));
      expect(gap).toBeCloseTo(fr.distanceMm ?? NaN, 0);
      const cc = (cm.width - 1) / 2;
      const off = gap / 2 / (70 / cm.width);
      expect(near(cm, cc - off, cc, isYellow), 'cement point').toBe(true);
      expect(near(cm, cc + off, cc, isRed), 'foramen point').toBe(true);
    },
    60_000,
  );

  it("S1's slice is the one `corridor report` draws on the same scan (core's planSliceImage)", async () => {
    const pins = readNifti(new Uint8Array(await readFile(file('pins.nii'))), 'pins.nii').volume;
    const s1 = reply.report.paths.find((p) => p.id === 's1');
    if (!s1?.achieved?.outerEnd || !s1.achieved.tip) throw new Error('S1 not verified');
    const k = planSliceImage(pins, s1, {
      label: 'verification CBCT',
      achieved: { outerEnd: s1.achieved.outerEnd, tip: s1.achieved.tip },
    });
    const a = decode(base64ToBytes(req.images?.[0].png ?? ''));
    expect([a.width, a.height]).toEqual([k.width, k.height]);
    let diff = 0;
    for (let p = 0; p < k.width * k.height; p++)
      for (let c = 0; c < 3; c++) diff += Math.abs(a.data[p * a.channels + c] - k.rgba[p * 4 + c]);
    expect(diff).toBe(0);
  }, 60_000);

  it.skipIf(!hasTool('dciodvfy'))(
    'the Encapsulated PDF and the SR validate in dciodvfy',
    async () => {
      const known = [/needed to build DICOMDIR/, /Unrecognized defined term <99CORRIDOR>/];
      const pdf = await readFile(pdfPath);
      for (const [name, b64, iod] of [
        ['report-pdf.dcm', reply.dicom.pdf, 'EncapsulatedPDF'],
        ['plan-sr.dcm', reply.dicom.sr, 'Comprehensive3DSR'],
      ] as const) {
        const bytes = Buffer.from(b64, 'base64');
        if (iod === 'EncapsulatedPDF') expect(bytes.indexOf(pdf)).toBeGreaterThan(0);
        await writeFile(file(name), bytes);
        const r = dciodvfy(file(name));
        expect(r.iod, r.output).toBe(iod);
        expect(r.errors, r.output).toEqual([]);
        expect(
          r.warnings.filter((w) => !known.some((k) => k.test(w))),
          r.output,
        ).toEqual([]);
      }
      expect(h.pageErrors).toEqual([]);
    },
    60_000,
  );
});
