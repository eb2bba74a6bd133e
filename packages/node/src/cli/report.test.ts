/**
 * `corridor report` end to end on the phantom: a plan made by `corridor plan` on the pins stage (2 mm,
 * written as DICOM too, so the planning image has a Frame of Reference), its verification by
 * `corridor verify` and a cement check by `corridor cement` (cement stage with a 0.3 ml leak into S2R).
 * The report's figures are checked against those inputs (the plan, verification and cement JSON, read
 * here), in the model (--json), the PDF's text (pdftotext) and the HTML; the PDF loads in pdf-lib and
 * renders with pdftoppm; the DICOM objects validate in dciodvfy, dsrdump reads the SR, its SCOORD3D points
 * are the plan's entry and target points and reference the CT's Frame of Reference, and the .mrk.json reads
 * back to the plan.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PDFDocument } from 'pdf-lib';
import { decode } from 'fast-png';
import {
  carmPreset,
  mat4FromRows,
  projectionMatrix,
  projectPoint,
  readXaFrame,
  slicerMarkupsToPlan,
  transformFileText,
} from '@corridor/core';
import { runCli } from '../test-helpers/run-cli.js';
import { dciodvfy, hasTool, missingToolsNote, runTool } from '../test-helpers/dicom-tools.js';

type P3 = [number, number, number];
interface PlanFile {
  paths: { id: string; name: string; kind: string; diameterMm: number; entry: P3; target: P3 }[];
}
interface VerFile {
  allPass: boolean;
  paths: { pathId: string; status: string; deviation: { entryOffsetMm: number; tipOffsetMm: number } | null }[];
}
interface CemFile {
  verdict: string;
  scans: { totalMl: number; sites: { pathId: string; volumeMl: number }[]; leaks: { name: string }[] }[];
}
interface Model {
  kind: string;
  patient: { name?: string; id?: string };
  paths: {
    id: string;
    entry: P3;
    target: P3;
    lengthMm: number;
    views: { label: string }[];
    achieved?: { status: string; entryOffsetMm?: number; tipOffsetMm?: number };
  }[];
  pelvicViews: { label: string }[];
  cement?: { verdict: string; scans: { totalMl: number; sites: { pathId: string; volumeMl: number }[] }[] };
  alerts: { severity: string; text: string }[];
}

const MOTION = [
  [1, 0, 0, 0],
  [0, 1, 0, 0],
  [0, 0, 1, 12],
  [0, 0, 0, 1],
];

const readJson = async <T>(f: string) => JSON.parse(await readFile(f, 'utf8')) as T;

describe('corridor report on the phantom', () => {
  let dir: string;
  let plan: PlanFile, ver: VerFile, cem: CemFile, model: Model;
  const f = (n: string) => path.join(dir, n);

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-report-'));
    const common = ['--voxel', '2', '--quiet'];
    let r = await runCli('phantom', '--out', f('pins'), '--stage', 'pins', '--dicom', ...common);
    expect(r.code, r.err).toBe(0);
    r = await runCli('phantom', '--out', f('cem'), '--stage', 'cement', '--leak', 'S2R', '--leak-ml', '0.3', ...common);
    expect(r.code, r.err).toBe(0);
    const ct = f('pins/ct.nii.gz'),
      labels = f('pins/labels.nii.gz');
    r = await runCli('plan', ct, '--labels', labels, '--auto', 's1,s2,alar-left,alar-right', '--out', f('plan.json'));
    expect(r.code, r.err).toBe(0);
    r = await runCli('verify', f('plan.json'), ct, '--labels', labels, '--out', f('ver.json'));
    expect(r.code, r.err).toBe(0);
    r = await runCli(
      ...['cement', '--plan', f('plan.json'), '--baseline', ct, '--scan', f('cem/ct.nii.gz'), '--labels', labels],
      ...['--out', f('cem.json')],
    );
    expect(r.code, r.err).toBe(0);
    [plan, ver, cem] = [await readJson(f('plan.json')), await readJson(f('ver.json')), await readJson(f('cem.json'))];
    // A fluoroscopy frame of the pins stage (Corridor's XA, its isocentre in a private tag) and a motion
    // correction of 12 mm toward the head (as `corridor register2d --out` writes it).
    r = await runCli('drr', ct, '--size', '256', '--threads', '1', '--dicom', f('xa.dcm'));
    expect(r.code, r.err).toBe(0);
    await writeFile(f('motion.json'), transformFileText(mat4FromRows(MOTION), 'motion.json'));
    const args = [
      ...['report', '--plan', f('plan.json'), '--verification', f('ver.json'), '--cement', f('cem.json')],
      ...['--ct', f('pins/dicom'), '--verification-scan', ct, '--cement-scan', f('cem/ct.nii.gz')],
      ...['--labels', labels, '--image-size', '128', '--out', f('report.pdf'), '--html', f('report.html')],
      ...['--dicom', f('dicom-out'), '--images', f('images'), '--fluoro', f('xa.dcm'), '--motion', f('motion.json')],
    ];
    // --json prints the model instead of the summary; the files are written all the same.
    r = await runCli(...args, '--json');
    expect(r.code, r.err).toBe(0);
    model = JSON.parse(r.out) as Model;
  }, 240_000);
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("holds the plan's paths, the verification's deviations and the cement volumes", () => {
    expect(model.kind).toBe('corridor-procedure-report');
    // Patient from the DICOM planning image (the phantom's).
    expect(model.patient.id).toMatch(/^PHANTOM-/);
    expect(model.paths.map((p) => p.id)).toEqual(plan.paths.map((p) => p.id));
    for (const p of plan.paths) {
      const m = model.paths.find((x) => x.id === p.id);
      expect(m?.entry).toEqual(p.entry);
      expect(m?.target).toEqual(p.target);
      expect(m?.lengthMm).toBeCloseTo(Math.hypot(...p.target.map((t, i) => t - p.entry[i])), 9);
      expect(m?.views.map((v) => v.label)).toEqual(["bull's-eye", 'progress']);
      const v = ver.paths.find((x) => x.pathId === p.id);
      expect(m?.achieved?.status).toBe(v?.status);
      expect(m?.achieved?.entryOffsetMm).toBe(v?.deviation?.entryOffsetMm);
      expect(m?.achieved?.tipOffsetMm).toBe(v?.deviation?.tipOffsetMm);
    }
    expect(model.pelvicViews.map((v) => v.label)).toEqual(['inlet', 'outlet']);
    expect(model.cement?.verdict).toBe(cem.verdict);
    expect(model.cement?.scans[0].totalMl).toBe(cem.scans[0].totalMl);
    expect(model.cement?.scans[0].sites).toEqual(
      cem.scans[0].sites.map((s) => expect.objectContaining({ pathId: s.pathId, volumeMl: s.volumeMl }) as unknown),
    );
    // Every failed path and the leak is a STOP alert, and STOP alerts come first.
    const failed = ver.paths.filter((p) => p.status !== 'pass');
    const stops = model.alerts.filter((a) => a.severity === 'stop');
    expect(stops.length).toBeGreaterThanOrEqual(failed.length + cem.scans[0].leaks.length);
    expect(model.alerts.slice(0, stops.length).every((a) => a.severity === 'stop')).toBe(true);
    expect(cem.scans[0].leaks.map((l) => l.name)).toEqual(['S2R']);
    expect(stops.some((a) => /leaked into S2R/.test(a.text))).toBe(true);
  });

  it('writes a PDF that pdf-lib loads, with the figures in its text, and the key images', async () => {
    const bytes = await readFile(f('report.pdf'));
    const doc = await PDFDocument.load(bytes);
    expect(doc.getPageCount()).toBeGreaterThanOrEqual(2);
    expect(doc.getTitle()).toMatch(/^Procedure report: /);
    const images = (await readdir(f('images'))).sort();
    // One slice per path, inlet and outlet DRRs, the cement against S2R.
    expect(images).toEqual(
      [
        ...plan.paths.map((p) => `plan-${p.id}.png`),
        ...['drr-inlet.png', 'drr-outlet.png', 'fluoro-1.png', 'cement-s2r.png'],
      ].sort(),
    );
    const html = await readFile(f('report.html'), 'utf8');
    expect(html.match(/<img /g)?.length).toBe(images.length);
    // Self-contained: nothing loaded from elsewhere.
    expect(html).not.toMatch(/(src|href)\s*=\s*["']?(https?:|\/\/)/i);
    const texts = [html];
    if (hasTool('pdftotext')) texts.push(runTool('pdftotext', ['-layout', f('report.pdf'), '-']));
    for (const text of texts) {
      for (const p of plan.paths) expect(text).toContain(p.name);
      for (const v of ver.paths) if (v.deviation) expect(text).toContain(v.deviation.entryOffsetMm.toFixed(1));
      expect(text).toContain(cem.scans[0].totalMl.toFixed(2));
      for (const s of cem.scans[0].sites) expect(text).toContain(s.volumeMl.toFixed(2));
      expect(text).toContain(`latest verdict ${cem.verdict.toUpperCase()}`);
    }
  });

  it('draws the plan over the fluoroscopy frame where the motion correction moves it', async () => {
    const xa = await readXaFrame(new Uint8Array(await readFile(f('xa.dcm'))), 'xa.dcm', {
      system: carmPreset('artis-zee-floor'),
    });
    const img = decode(await readFile(f('images/fluoro-1.png')));
    expect([img.width, img.height]).toEqual([xa.geometry.columns, xa.geometry.rows]);
    const P = projectionMatrix(xa.geometry);
    type Rgb = [number, number, number];
    const isGreen = ([R, G, B]: Rgb) => G > 150 && G > R + 60 && G > B + 60; // the entry disc
    const isRed = ([R, G, B]: Rgb) => R > 200 && G < 100 && B < 100; // the target cross
    const seen = (q: number[], test: (x: Rgb) => boolean) => {
      const [c, r] = projectPoint(P, q);
      let hit = false;
      for (let dr = -1; dr <= 1; dr++)
        for (let dc = -1; dc <= 1; dc++) {
          const o = (Math.round(r + dr) * img.width + Math.round(c + dc)) * img.channels;
          hit ||= test([img.data[o], img.data[o + 1], img.data[o + 2]]);
        }
      return hit;
    };
    // Ends clear of the image's edges (the orientation letters are drawn over them), moved and planned.
    const inside = (q: number[]) => {
      const [c, r] = projectPoint(P, q);
      return Math.min(c, r, img.width - c, img.height - r) > 24;
    };
    let checked = 0;
    for (const p of plan.paths)
      for (const [end, test] of [
        [p.entry, isGreen],
        [p.target, isRed],
      ] as const) {
        const moved = [end[0], end[1], end[2] + 12];
        if (!inside(moved) || !inside(end)) continue;
        checked++;
        expect(seen(moved, test), `${p.id} moved`).toBe(true);
        expect(seen(end, test), `${p.id} planned`).toBe(false);
      }
    expect(checked).toBeGreaterThanOrEqual(4);
  });

  it.skipIf(!hasTool('pdftoppm'))('renders with pdftoppm', async () => {
    runTool('pdftoppm', ['-r', '30', '-png', '-f', '1', '-l', '1', f('report.pdf'), f('page')]);
    const page = (await readdir(dir)).find((n) => /^page-0*1\.png$/.test(n));
    expect(page).toBeDefined();
    const b = await readFile(f(String(page)));
    expect(b.subarray(1, 4).toString('latin1')).toBe('PNG');
    // Its fonts are embedded (DejaVu from the dejavu-fonts-ttf package), not left to the viewer.
    if (hasTool('pdffonts')) {
      const rows = runTool('pdffonts', [f('report.pdf')])
        .split('\n')
        .slice(2)
        .filter(Boolean);
      expect(rows.length).toBeGreaterThanOrEqual(2);
      for (const row of rows) expect(row).toMatch(/^DejaVuSansCondensed\S*\s+CID TrueType\s+Identity-H\s+yes/);
    }
  });

  it(`writes DICOM that dciodvfy validates and dsrdump reads, with the plan's points${missingToolsNote('dciodvfy', 'dsrdump', 'dcmdump')}`, async (ctx) => {
    if (missingToolsNote('dciodvfy', 'dsrdump', 'dcmdump')) ctx.skip();
    const pdfDcm = f('dicom-out/report-pdf.dcm'),
      srDcm = f('dicom-out/plan-sr.dcm');
    for (const [file, iod] of [
      [pdfDcm, 'EncapsulatedPDF'],
      [srDcm, 'Comprehensive3DSR'],
    ]) {
      const r = dciodvfy(file);
      expect(r.iod, r.output).toBe(iod);
      expect(r.errors, r.output).toEqual([]);
    }
    // The SR's points, as dsrdump reads them, are the plan's entry and target (float32 in the SR).
    const dump = runTool('dsrdump', [srDcm]);
    const groups = dump.split('"Measurement Group"').slice(1);
    expect(groups.length).toBe(plan.paths.length);
    const point = (g: string, concept: string): P3 => {
      const m = new RegExp(`"${concept}"\\)=\\(POINT,,([^)]*)\\)`).exec(g);
      expect(m, `${concept} in\n${g}`).not.toBeNull();
      return String(m?.[1]).split('/').map(Number) as P3;
    };
    for (const p of plan.paths) {
      const g = groups.find((x) => x.includes(`"Tracking Identifier")="${p.name} (${p.id})"`));
      expect(g, p.id).toBeDefined();
      const entry = point(String(g), 'Planned entry point'),
        target = point(String(g), 'Planned target point');
      for (let i = 0; i < 3; i++) {
        expect(Math.abs(entry[i] - p.entry[i])).toBeLessThan(1e-4 * Math.max(1, Math.abs(p.entry[i])));
        expect(Math.abs(target[i] - p.target[i])).toBeLessThan(1e-4 * Math.max(1, Math.abs(p.target[i])));
      }
    }
    // Every SCOORD3D references the planning CT's Frame of Reference (read from a slice by dcmdump).
    const slice = (await readdir(f('pins/dicom'))).sort()[0];
    const forOf = (out: string) => [...out.matchAll(/UI \[([0-9.]+)\]/g)].map((m) => m[1]);
    const [ctFor] = forOf(runTool('dcmdump', ['+P', '0020,0052', f(`pins/dicom/${slice}`)]));
    const srFors = forOf(runTool('dcmdump', ['+P', '3006,0024', srDcm]));
    expect(srFors.length).toBeGreaterThanOrEqual(3 * plan.paths.length);
    expect(new Set(srFors)).toEqual(new Set([ctFor]));
    // The Encapsulated PDF holds the very PDF.
    const pdf = await readFile(f('report.pdf'));
    const enc = await readFile(pdfDcm);
    expect(Buffer.from(enc).indexOf(pdf.subarray(0, 4096))).toBeGreaterThan(0);
  });

  it('writes the plan as 3D Slicer markups that read back to the plan', async () => {
    const file = f('dicom-out/plan.mrk.json');
    expect(existsSync(file)).toBe(true);
    const back = slicerMarkupsToPlan(await readFile(file, 'utf8'), file).plan;
    expect(back.paths.map((p) => ({ ...p }))).toEqual(
      plan.paths.map(
        (p) =>
          expect.objectContaining({
            id: p.id,
            kind: p.kind,
            diameterMm: p.diameterMm,
            entry: p.entry,
            target: p.target,
          }) as unknown,
      ),
    );
    const doc = await readJson<{ markups: { coordinateSystem: string }[] }>(file);
    expect(doc.markups.every((m) => m.coordinateSystem === 'LPS')).toBe(true);
  });

  it('refuses a verification report of another plan, a file that is not one, and writing over an input', async () => {
    const other = await runCli(
      'report',
      '--plan',
      f('plan.json'),
      '--verification',
      f('cem.json'),
      '--out',
      f('x.pdf'),
    );
    expect(other.code).toBe(2);
    expect(other.err).toMatch(/is not a verification report/);
    const foreign = { ...ver, paths: [{ ...ver.paths[0], pathId: 'l5-pedicle' }] };
    await writeFile(f('foreign.json'), JSON.stringify(foreign));
    const mismatch = await runCli(
      'report',
      '--plan',
      f('plan.json'),
      '--verification',
      f('foreign.json'),
      '--out',
      f('x.pdf'),
    );
    expect(mismatch.code).toBe(2);
    expect(mismatch.err).toMatch(/checks path "l5-pedicle", which the plan does not have/);
    expect(existsSync(f('x.pdf'))).toBe(false);
    const notDir = await runCli('report', '--plan', f('plan.json'), '--out', f('x.pdf'), '--dicom', f('ver.json'));
    expect(notDir.code).toBe(2);
    expect(notDir.err).toMatch(/WriteError: .*ver\.json: is a file, not a folder/);
    const over = await runCli('report', '--plan', f('plan.json'), '--out', f('plan.json'));
    expect(over.code).toBe(2);
    expect(over.err).toMatch(/WriteError.*input/);
  });
});
