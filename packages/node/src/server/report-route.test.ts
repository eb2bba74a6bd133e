/**
 * POST /api/report (report-route.ts): the workstation's report through node's makeReport. A plan and the
 * planning image's DICOM attributes give a PDF and the two DICOM objects, which carry that patient, study
 * and Frame of Reference; bad input is refused with a clear 4xx and the server goes on serving.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PDFDocument, PDFName, PDFRawStream } from 'pdf-lib';
import { encodePng, parseDicom, parsePlan, reportRequest } from '@corridor/core';
import { startServer, type RunningServer } from './server.js';

let webRoot: string;
let server: RunningServer;

beforeAll(async () => {
  webRoot = await mkdtemp(path.join(os.tmpdir(), 'corridor-report-web-'));
  await writeFile(path.join(webRoot, 'index.html'), '<!doctype html><title>t</title>');
  server = await startServer({ webRoot, port: 0 });
});
afterAll(async () => {
  await server?.close();
  await rm(webRoot, { recursive: true, force: true });
});

const plan = {
  schemaVersion: 1,
  volume: {},
  paths: [{ id: 's1', name: 'S1', kind: 'guidepin', diameterMm: 2.8, entry: [-60, 10, 5], target: [60, 12, 6] }],
};
const image = {
  patientName: 'ROUTE^TEST',
  patientId: 'ROUTE-1',
  studyInstanceUid: '1.2.826.0.1.3680043.8.498.11',
  frameOfReferenceUid: '1.2.826.0.1.3680043.8.498.12',
};
const post = (body: unknown, type = 'application/json') =>
  fetch(`${server.url}api/report`, {
    method: 'POST',
    headers: { 'Content-Type': type },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

describe('POST /api/report', () => {
  it('makes the PDF and DICOM objects in the planning image study', async () => {
    const res = await post({ plan, image, procedure: { title: 'Route test' } });
    expect(res.status).toBe(200);
    const r = (await res.json()) as {
      report: { paths: { id: string; lengthMm: number }[]; patient: { id?: string } };
      pdf: string;
      dicom: { pdf: string; sr: string; frameOfReferenceFrom: string };
    };
    expect(r.report.paths.map((p) => p.id)).toEqual(['s1']);
    expect(r.report.paths[0].lengthMm).toBeCloseTo(Math.hypot(120, 2, 1), 6);
    expect(r.report.patient.id).toBe('ROUTE-1');
    const pdf = Buffer.from(r.pdf, 'base64');
    expect((await PDFDocument.load(pdf)).getPageCount()).toBeGreaterThan(0);
    expect(r.dicom.frameOfReferenceFrom).toBe('planning image');
    for (const [name, modality] of [
      ['pdf', 'DOC'],
      ['sr', 'SR'],
    ] as const) {
      const ds = parseDicom(new Uint8Array(Buffer.from(r.dicom[name], 'base64')), name);
      expect(ds.string('x00080060')).toBe(modality);
      expect(ds.string('x0020000d')).toBe(image.studyInstanceUid);
      expect(ds.string('x00100020')).toBe('ROUTE-1');
      expect(ds.string('x00100010')).toBe('ROUTE^TEST');
    }
    expect(Buffer.from(r.dicom.sr, 'base64').toString('latin1')).toContain(image.frameOfReferenceUid);
  });

  it('puts the key images the request carries in the PDF, as they came', async () => {
    const rgba = new Uint8ClampedArray(8 * 6 * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * 13) & 255));
    const img = {
      image: { id: 'plan-s1', title: 'S1', caption: 'c', width: 8, height: 6 },
      png: encodePng(rgba, 8, 6),
    };
    const res = await post(reportRequest({ plan: parsePlan(plan), image, images: [img] }));
    expect(res.status).toBe(200);
    const r = (await res.json()) as { images: { id: string }[]; pdf: string; notes: string[] };
    expect(r.images.map((i) => i.id)).toEqual(['plan-s1']);
    expect(r.notes.join(' ')).not.toMatch(/no key images/);
    // The PDF's one image XObject is 8 x 6 pixels.
    const doc = await PDFDocument.load(Buffer.from(r.pdf, 'base64'));
    const sizes = doc.context
      .enumerateIndirectObjects()
      .map(([, o]) => o)
      .filter(
        (o): o is PDFRawStream =>
          o instanceof PDFRawStream && o.dict.get(PDFName.of('Subtype')) === PDFName.of('Image'),
      )
      .map((o) => [String(o.dict.get(PDFName.of('Width'))), String(o.dict.get(PDFName.of('Height')))]);
    expect(sizes).toEqual([['8', '6']]);
    // A PNG whose header does not say what the request says is refused.
    const req = reportRequest({ plan: parsePlan(plan), images: [img] });
    const lying = { ...req, images: [{ ...req.images?.[0], width: 9 }] };
    const bad = await post(lying);
    expect(bad.status).toBe(422);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/8 x 6/);
  });

  it('refuses bad input with a 4xx naming the problem, and keeps serving', async () => {
    const bad = await post({ plan: { paths: 'no' } });
    expect(bad.status).toBe(422);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/plan/);
    const foreign = await post({
      plan,
      verification: { kind: 'corridor-verification', paths: [{ pathId: 'nope', status: 'pass' }], unplanned: [] },
    });
    expect(foreign.status).toBe(422);
    expect((await post({ plan, verification: { kind: 'other' } })).status).toBe(422);
    expect((await post({ plan, image: { patientId: 5 } })).status).toBe(422);
    expect((await post('{not json')).status).toBe(400);
    expect((await post('{}', 'text/plain')).status).toBe(415);
    expect((await fetch(`${server.url}api/report`)).status).toBe(405);
    expect((await post({ plan, image })).status).toBe(200);
  });
});
