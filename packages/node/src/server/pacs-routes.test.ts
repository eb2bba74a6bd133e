/**
 * The workstation server forwards DICOMweb to the PACS it was started with: the browser-side client (the
 * platform's fetch, as in a browser) finds and retrieves through /api/pacs/dicom-web what is in a real
 * Orthanc, byte for byte; closing the connection mid-retrieve aborts the server's request to the PACS;
 * anything outside the forwarded set is refused without reaching the PACS.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CancelledError, DicomWebClient, PacsError, createVolume, parseDicom, writeDicomSeries } from '@corridor/core';
import { describeOrthanc } from '../test-helpers/orthanc.js';
import { pacsClient } from '../cli/pacs.js';
import { freePort } from '../pacs/orthanc.js';
import { startServer, type RunningServer } from './server.js';
import { PACS_PREFIX, classifyPacsPath, pacsProxyStats } from './pacs-routes.js';

let webRoot: string;
const n = 256;
const data = new Int16Array(n * n * 12).map((_, i) => ((i * 2654435761) >>> 20) - 2048);
const files = writeDicomSeries(
  createVolume({
    data,
    dims: [n, n, 12],
    indexToPatient: new Float64Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1]),
    meta: { source: 't' },
  }),
  { patientId: 'PROXY-1', uidSeed: 'proxy' },
);
const studyUid = parseDicom(files[0].bytes, 'f').string('x0020000d') ?? '';

beforeAll(async () => {
  webRoot = await mkdtemp(path.join(os.tmpdir(), 'corridor-pacs-web-'));
  await writeFile(path.join(webRoot, 'index.html'), '<!doctype html><title>t</title>');
});
afterAll(async () => {
  await rm(webRoot, { recursive: true, force: true });
});

describe('forwarded DICOMweb paths', () => {
  it('takes only the DICOMweb layout with real UIDs', () => {
    expect(classifyPacsPath('/studies', 'GET')).toBe('qido');
    expect(classifyPacsPath('/studies/1.2.3', 'GET')).toBe('wado');
    expect(classifyPacsPath('/studies/1.2.3/series', 'GET')).toBe('qido');
    expect(classifyPacsPath('/studies/1.2.3/series/4.5/instances/6.7', 'GET')).toBe('wado');
    expect(classifyPacsPath('/studies/1.2.3/series/4.5/metadata', 'GET')).toBe('metadata');
    expect(classifyPacsPath('/studies', 'POST')).toBe('stow');
    for (const bad of [
      '/studies/..',
      '/studies/1.2.3/../../x',
      '/studies/abc',
      '/studies//series',
      '/system',
      '/studies/1.2/series/4.5/rendered',
      '/tools/find',
    ])
      expect(classifyPacsPath(bad, 'GET'), bad).toBeNull();
    expect(classifyPacsPath('/studies/1.2.3', 'DELETE')).toBeNull();
    expect(classifyPacsPath('/studies/1.2.3', 'POST')).toBeNull();
  });
});

describeOrthanc("the server as the browser's way to the PACS", (orthanc) => {
  let server: RunningServer;
  beforeAll(async () => {
    await pacsClient(orthanc().dicomWebUrl).store(files.map((f) => f.bytes));
    server = await startServer({ webRoot, pacsUrl: orthanc().dicomWebUrl });
  });
  afterAll(async () => {
    await server?.close();
  });
  // The browser's client: relative URLs need a base outside a browser, so the server's address is given.
  const browser = () => new DicomWebClient({ url: `${server.url.replace(/\/$/, '')}${PACS_PREFIX}` });

  it('finds and retrieves through the server, byte for byte, with progress', async () => {
    const studies = await browser().searchStudies({ PatientID: 'PROXY-*' });
    expect(studies.map((s) => s['0020000D']?.Value?.[0])).toEqual([studyUid]);
    const got: Uint8Array[] = [];
    const seen: number[] = [];
    const count = await browser().retrieveStudy(studyUid, {
      onInstance: (b) => void got.push(b.slice()),
      onProgress: (p) => seen.push(p.instances),
      totalInstances: files.length,
    });
    expect(count).toBe(files.length);
    expect(seen.at(-1)).toBe(files.length);
    const sent = new Set(files.map((f) => Buffer.from(f.bytes).toString('base64')));
    for (const g of got) expect(sent.has(Buffer.from(g).toString('base64'))).toBe(true);
  });

  it('a cancelled retrieve aborts the request to the PACS; the server keeps serving', async () => {
    const before = { ...pacsProxyStats };
    const ac = new AbortController();
    const run = browser().retrieveStudy(studyUid, {
      signal: ac.signal,
      onInstance: (_b, i) => {
        if (i === 1) ac.abort();
      },
    });
    await expect(run).rejects.toBeInstanceOf(CancelledError);
    for (let t = 0; t < 50 && pacsProxyStats.finished === before.finished; t++)
      await new Promise((r) => setTimeout(r, 20));
    expect(pacsProxyStats.started).toBe(before.started + 1);
    expect(pacsProxyStats.finished).toBe(before.finished + 1);
    expect((await browser().searchSeries(studyUid)).length).toBe(1);
  });

  it('stores through the server (STOW-RS forwarded)', async () => {
    const extra = writeDicomSeries(
      createVolume({
        data: new Int16Array(32 * 32 * 3).fill(7),
        dims: [32, 32, 3],
        indexToPatient: new Float64Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]),
        meta: { source: 'extra' },
      }),
      { patientId: 'PROXY-STOW', uidSeed: 'proxy-stow' },
    );
    const r = await browser().store(extra.map((f) => f.bytes));
    expect(r.failed).toEqual([]);
    expect(r.stored).toHaveLength(3);
    const direct = await pacsClient(orthanc().dicomWebUrl).searchStudies({ PatientID: 'PROXY-STOW' });
    expect(direct).toHaveLength(1);
    const notMultipart = await fetch(`${server.url}api/pacs/dicom-web/studies`, { method: 'POST', body: 'x' });
    expect(notMultipart.status).toBe(415);
  });

  it('refuses what it does not forward, and says when the PACS is missing or down', async () => {
    const r = await fetch(`${server.url}api/pacs/dicom-web/tools/find`);
    expect(r.status).toBe(404);
    const bad = await fetch(`${server.url}api/pacs/dicom-web/studies?bad%20key=1`);
    expect(bad.status).toBe(400);
    const none = await startServer({ webRoot });
    const dead = await startServer({ webRoot, pacsUrl: `http://127.0.0.1:${await freePort()}/dicom-web` });
    try {
      const e = await new DicomWebClient({ url: `${none.url}api/pacs/dicom-web` })
        .searchStudies()
        .catch((x: unknown) => x);
      expect(e).toBeInstanceOf(PacsError);
      expect((e as PacsError).status).toBe(503);
      const d = await new DicomWebClient({ url: `${dead.url}api/pacs/dicom-web` })
        .searchStudies()
        .catch((x: unknown) => x);
      expect((d as PacsError).status).toBe(502);
      expect((d as PacsError).message).toContain('the PACS did not answer');
    } finally {
      await none.close();
      await dead.close();
    }
  });
});
