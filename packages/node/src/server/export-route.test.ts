/**
 * De-identified export of a case (issue 19): a CT series and a SEG made on it, kept in the case as
 * blobs, plus an object sent with the request, come out of POST /api/cases/{case}/export with no
 * identifying value of the sources anywhere in their bytes (names, IDs, birth date, descriptions, every
 * original UID), one new Study and Frame of Reference for all, the SEG's references pointing at the new
 * CT series and instances, the same new UIDs on a second export, unrelated ones in another case.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createVolume, parseDicom, writeDicomSeg, writeDicomSeries, type DicomDataset } from '@corridor/core';
import { CaseStore } from './case-store.js';
import { startServer, type RunningServer } from './server.js';
import { http, json } from '../test-helpers/http.js';
import { stopServed } from '../test-helpers/case-fixtures.js';

const hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const SECRETS = ['SMITH^JOHN', 'MRN-4711', '19450317', 'SECRET-STUDY', 'SECRET-SERIES', 'ACC-99'];

let dir: string;
let s: { srv: RunningServer; store: CaseStore };
let port: number;
let ct: Uint8Array[];
let seg: Uint8Array;
let originalUids: string[];

/** The parts of a multipart/related answer: DICOM instances and the closing JSON summary. */
async function exportCase(caseId: string, body: Record<string, unknown>) {
  const r = await fetch(`http://127.0.0.1:${port}/api/cases/${caseId}/export`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(r.status).toBe(200);
  const boundary = /boundary=([^;\s]+)/.exec(r.headers.get('content-type') ?? '')?.[1] ?? '';
  const all = Buffer.from(await r.arrayBuffer());
  const parts: Buffer[] = [];
  let summary: { skipped: { name: string }[]; profile: string } = { skipped: [], profile: '' };
  let at = all.indexOf(`--${boundary}\r\n`);
  while (at >= 0) {
    const headEnd = all.indexOf('\r\n\r\n', at);
    const head = all.subarray(at, headEnd).toString('latin1');
    const n = Number(/Content-Length: (\d+)/.exec(head)?.[1]);
    const bytes = all.subarray(headEnd + 4, headEnd + 4 + n);
    if (head.includes('application/json')) summary = JSON.parse(bytes.toString('utf8')) as typeof summary;
    else parts.push(bytes);
    at = all.indexOf(`--${boundary}\r\n`, headEnd + 4 + n);
  }
  return { all, parts: parts.map((p) => parseDicom(new Uint8Array(p), 'export')), summary };
}

const uid = (d: DicomDataset, tag: string) => d.string(tag) ?? '';

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-export-'));
  const webRoot = path.join(dir, 'web');
  await mkdir(webRoot, { recursive: true });
  await writeFile(path.join(webRoot, 'index.html'), '<!doctype html>');
  const store = CaseStore.open(path.join(dir, 'db', 'cases.sqlite'));
  const srv = await startServer({ webRoot, port: 0, store });
  s = { srv, store };
  port = srv.port;
  // A 6-slice CT and a SEG on it, both naming the patient.
  const m = new Float64Array([2, 0, 0, -10, 0, 2, 0, -10, 0, 0, 3, 50, 0, 0, 0, 1]);
  const vol = createVolume({
    data: new Float32Array(8 * 8 * 6).fill(40),
    dims: [8, 8, 6],
    indexToPatient: m,
    meta: { source: 'ct' },
  });
  const who = {
    patientName: 'SMITH^JOHN',
    patientId: 'MRN-4711',
    patientBirthDate: '19450317',
    studyDescription: 'SECRET-STUDY',
    seriesDescription: 'SECRET-SERIES',
    studyId: 'ACC-99',
  };
  ct = writeDicomSeries(vol, who).map((f) => f.bytes);
  const first = parseDicom(ct[0], 'ct');
  const labels = createVolume({
    data: new Uint8Array(8 * 8 * 6).fill(1),
    dims: [8, 8, 6],
    indexToPatient: m,
    meta: { source: 'labels' },
  });
  seg = writeDicomSeg(labels, {
    segments: [{ number: 1, label: 'bone', values: [1] }],
    referencedSeriesUid: uid(first, 'x0020000e'),
    frameOfReferenceUid: uid(first, 'x00200052'),
    studyInstanceUid: uid(first, 'x0020000d'),
    referencedInstances: ct.map((b) => ({
      sopClassUid: uid(parseDicom(b, 'ct'), 'x00080016'),
      sopInstanceUid: uid(parseDicom(b, 'ct'), 'x00080018'),
    })),
    patientName: who.patientName,
    patientId: who.patientId,
  });
  originalUids = [
    uid(first, 'x0020000d'),
    uid(first, 'x0020000e'),
    uid(first, 'x00200052'),
    uid(parseDicom(seg, 'seg'), 'x0020000e'),
    uid(parseDicom(seg, 'seg'), 'x00080018'),
    ...ct.map((b) => uid(parseDicom(b, 'ct'), 'x00080018')),
  ];
  // Two cases holding the same files.
  for (const id of ['c1', 'c2']) {
    await http(port, { method: 'POST', path: '/api/cases', body: JSON.stringify({ id }) });
    const blobs = [];
    for (const [i, b] of ct.entries()) {
      const sha = hex(b);
      const r = await http(port, {
        method: 'PUT',
        path: `/api/blobs/${sha}`,
        headers: { 'content-type': 'application/octet-stream' },
        body: Buffer.from(b),
      });
      expect([200, 201]).toContain(r.status);
      blobs.push({ sha256: sha, name: `SMITH^JOHN-${i}.dcm`, bytes: b.length }); // a name that names the patient
    }
    const nifti = Buffer.from('not a DICOM file, a NIfTI of a 3D run say');
    await http(port, {
      method: 'PUT',
      path: `/api/blobs/${hex(nifti)}`,
      headers: { 'content-type': 'application/octet-stream' },
      body: nifti,
    });
    for (const [name, doc] of [
      ['planning', { blobs, role: 'planning' }],
      ['run-1', { blobs: [{ sha256: hex(nifti), name: 'run-1.nii', bytes: nifti.length }], role: 'run' }],
    ] as const) {
      const r = await http(port, {
        method: 'PUT',
        path: `/api/cases/${id}/series/${name}`,
        headers: { 'if-none-match': '*' },
        body: JSON.stringify(doc),
      });
      expect(r.status, r.body).toBe(201);
    }
  }
});

afterAll(async () => {
  await stopServed(s);
  await rm(dir, { recursive: true, force: true });
});

describe('de-identified export of a case', () => {
  it('no identifying value left in the bytes; one study; the SEG references resolve; same UIDs again', async () => {
    const body = {
      deidentify: true,
      patientId: 'PSEUDO-1',
      objects: [{ name: 'seg.dcm', base64: Buffer.from(seg).toString('base64') }],
    };
    const a = await exportCase('c1', body);
    expect(a.parts).toHaveLength(ct.length + 1);
    expect(a.summary.skipped.map((x) => x.name)).toEqual(['run-1/1']);
    expect(a.summary.profile).toMatch(/PS3\.15 \d{4}[a-e] Basic/);
    // Every value looked for is in the sources (else its absence below would prove nothing).
    const source = Buffer.concat([...ct, seg]).toString('latin1');
    for (const secret of [...SECRETS, ...originalUids]) expect(source, secret).toContain(secret);
    const text = a.all.toString('latin1');
    for (const secret of [...SECRETS, ...originalUids]) expect(text, secret).not.toContain(secret);
    const cts = a.parts.filter((d) => uid(d, 'x00080060') === 'CT');
    const [segOut] = a.parts.filter((d) => uid(d, 'x00080060') === 'SEG');
    expect(cts).toHaveLength(ct.length);
    expect(uid(cts[0], 'x00100020')).toBe('PSEUDO-1');
    expect(uid(cts[0], 'x00120062')).toBe('YES');
    // One new study, series and frame of reference for the CT; the SEG in the same study and frame.
    const study = new Set(a.parts.map((d) => uid(d, 'x0020000d')));
    expect(study.size).toBe(1);
    expect(new Set(cts.map((d) => uid(d, 'x0020000e'))).size).toBe(1);
    expect(uid(segOut, 'x00200052')).toBe(uid(cts[0], 'x00200052'));
    // The SEG's references resolve to the exported CT series and its instances.
    const ref = segOut.sequence('x00081115')[0];
    expect(uid(ref, 'x0020000e')).toBe(uid(cts[0], 'x0020000e'));
    const refd = ref.sequence('x0008114a').map((d) => uid(d, 'x00081155'));
    expect(refd.sort()).toEqual(cts.map((d) => uid(d, 'x00080018')).sort());
    // Again: the same UIDs (the case's key is kept); another case: none in common.
    const b = await exportCase('c1', body);
    expect(b.parts.map((d) => uid(d, 'x00080018'))).toEqual(a.parts.map((d) => uid(d, 'x00080018')));
    const c = await exportCase('c2', body);
    const other = new Set(c.parts.flatMap((d) => [uid(d, 'x00080018'), uid(d, 'x0020000d')]));
    for (const d of a.parts) expect(other.has(uid(d, 'x00080018'))).toBe(false);
    expect(other.has([...study][0])).toBe(false);
  });

  it('refused: not de-identified, an unknown case, a bad pseudonym, GET, no PACS to send to', async () => {
    const post = (p: string, body: unknown) => http(port, { method: 'POST', path: p, body: JSON.stringify(body) });
    expect((await post('/api/cases/c1/export', {})).status).toBe(422);
    expect((await post('/api/cases/nope/export', { deidentify: true })).status).toBe(404);
    expect((await post('/api/cases/c1/export', { deidentify: true, patientName: 'A\\B' })).status).toBe(422);
    expect((await post('/api/cases/c1/export', { deidentify: true, to: 'pacs' })).status).toBe(503);
    expect((await http(port, { path: '/api/cases/c1/export' })).status).toBe(405);
    expect(
      json<{ error: { code: string } }>(await post('/api/cases/c1/export', { deidentify: true, objects: 'x' })).error
        .code,
    ).toBe('bad-export');
  });
});
