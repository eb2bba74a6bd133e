/**
 * DicomWebClient against a scripted fetch (no server): the requests it makes (URL, query, Accept,
 * multipart body), how it reads answers streamed in tiny chunks, and its errors. The Orthanc tests in
 * packages/node cover a real server.
 */
import { describe, expect, it } from 'vitest';
import { CancelledError, FormatError, UsageError } from '../errors.js';
import {
  DicomWebClient,
  PacsError,
  queryString,
  type FetchInit,
  type FetchResponse,
  type RetrieveProgress,
} from './dicomweb.js';
import { MultipartParser, encodeMultipart, multipartBoundary } from './multipart.js';

const enc = (s: string) => new TextEncoder().encode(s);
function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
function response(status: number, body: Uint8Array, headers: Record<string, string> = {}, chunk = 3): FetchResponse {
  let at = 0;
  return {
    ok: status >= 200 && status < 300,
    status,
    statusText: status === 200 ? 'OK' : 'Bad',
    headers: { get: (n: string) => headers[n.toLowerCase()] ?? null },
    body: {
      getReader: () => ({
        read: () => {
          if (at >= body.length) return Promise.resolve({ done: true });
          const value = body.subarray(at, (at += chunk));
          return Promise.resolve({ done: false, value });
        },
        cancel: () => Promise.resolve(),
      }),
    },
    text: () => Promise.resolve(new TextDecoder().decode(body)),
    arrayBuffer: () => Promise.resolve(body.slice().buffer),
  };
}

describe('DicomWebClient', () => {
  it("calls the platform's fetch on globalThis, as browsers require", async () => {
    const g = globalThis as unknown as { fetch: unknown };
    const saved = g.fetch;
    // A browser's fetch called on anything but the global object throws "Illegal invocation".
    g.fetch = function (this: unknown) {
      if (this !== globalThis) throw new TypeError('Illegal invocation');
      return Promise.resolve(response(204, new Uint8Array(0)));
    };
    try {
      expect(await new DicomWebClient({ url: 'http://pacs.example/dicom-web' }).searchStudies()).toEqual([]);
    } finally {
      g.fetch = saved;
    }
  });

  it('QIDO: URL, encoded query with repeated keys, Accept; 204 is no match', async () => {
    const calls: { url: string; init?: FetchInit }[] = [];
    const client = new DicomWebClient({
      url: 'http://pacs.example/dicom-web///',
      fetch: (url, init) => {
        calls.push({ url, init });
        return Promise.resolve(
          calls.length === 1
            ? response(200, enc('[{"0020000D":{"vr":"UI","Value":["1.2.3"]}}]'))
            : response(204, new Uint8Array(0)),
        );
      },
    });
    const r = await client.searchStudies({
      PatientName: 'DOE^J*',
      includefield: ['00081030', 'ModalitiesInStudy'],
      limit: 5,
      StudyDate: '',
    });
    expect(r).toHaveLength(1);
    expect(calls[0].url).toBe(
      'http://pacs.example/dicom-web/studies?PatientName=DOE%5EJ*&includefield=00081030&includefield=ModalitiesInStudy&limit=5',
    );
    expect(calls[0].init?.headers?.Accept).toBe('application/dicom+json');
    expect(await client.searchInstances('1.2.3', '4.5')).toEqual([]);
    expect(calls[1].url).toBe('http://pacs.example/dicom-web/studies/1.2.3/series/4.5/instances');
    expect(queryString({ a: 'x&y=z' })).toBe('?a=x%26y%3Dz');
    await expect(client.searchSeries('1.2.x')).rejects.toBeInstanceOf(UsageError);
  });

  it('WADO: parts handed over in order from 3-byte chunks, with progress', async () => {
    const parts = [enc('DICM one'), new Uint8Array(1000).fill(13), enc('three\r\n--')];
    const body = concat(encodeMultipart(parts, 'application/dicom', 'BOUNDARY42'));
    let accept = '';
    const client = new DicomWebClient({
      url: 'http://p/dw',
      fetch: (_u, init) => {
        accept = init?.headers?.Accept ?? '';
        return Promise.resolve(
          response(200, body, {
            'content-type': 'multipart/related; type="application/dicom"; boundary=BOUNDARY42',
            'content-length': String(body.length),
          }),
        );
      },
    });
    const got: number[][] = [];
    let last: RetrieveProgress = { instances: 0, bytes: 0 };
    const n = await client.retrieveStudy('1.2.3', {
      onInstance: (b) => void got.push(Array.from(b)),
      onProgress: (p) => void (last = p),
    });
    expect(n).toBe(3);
    expect(got).toEqual(parts.map((p) => Array.from(p)));
    expect(last).toMatchObject({ instances: 3, bytes: body.length, totalBytes: body.length });
    expect(accept).toBe('multipart/related; type="application/dicom"; transfer-syntax=*');
  });

  it('errors: status and URL, unreachable server, non-multipart answer, truncated stream, cancel', async () => {
    const fail = new DicomWebClient({
      url: 'http://p/dw',
      fetch: () => Promise.resolve(response(500, enc('  internal\n trouble '))),
    });
    const e = (await fail.retrieveStudy('1.2').catch((x: unknown) => x)) as PacsError;
    expect(e).toBeInstanceOf(PacsError);
    expect(e.status).toBe(500);
    expect(e.url).toBe('http://p/dw/studies/1.2');
    expect(e.message).toBe('http://p/dw/studies/1.2: HTTP 500: Bad: internal trouble');
    const down = new DicomWebClient({
      url: 'http://p/dw',
      fetch: () => Promise.reject(Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } })),
    });
    await expect(down.searchStudies()).rejects.toThrow(/could not reach the DICOMweb server \(ECONNREFUSED\)/);
    const json = new DicomWebClient({
      url: 'http://p/dw',
      fetch: () => Promise.resolve(response(200, enc('{}'), { 'content-type': 'application/json' })),
    });
    await expect(json.retrieveStudy('1.2')).rejects.toThrow(/not multipart\/related/);
    const body = concat(encodeMultipart([enc('abc')], 'application/dicom', 'B'));
    const cut = new DicomWebClient({
      url: 'http://p/dw',
      fetch: () =>
        Promise.resolve(
          response(200, body.subarray(0, body.length - 4), { 'content-type': 'multipart/related; boundary=B' }),
        ),
    });
    await expect(cut.retrieveStudy('1.2')).rejects.toBeInstanceOf(FormatError);
    const ac = new AbortController();
    ac.abort();
    await expect(json.searchStudies({}, { signal: ac.signal })).rejects.toBeInstanceOf(CancelledError);
  });

  it('STOW: one multipart/related request per batch, failures reported', async () => {
    const bodies: { type: string; bytes: Uint8Array }[] = [];
    const client = new DicomWebClient({
      url: 'http://p/dw',
      fetch: async (_u, init) => {
        const blob = init?.body as Blob;
        bodies.push({ type: init?.headers?.['Content-Type'] ?? '', bytes: new Uint8Array(await blob.arrayBuffer()) });
        const answer =
          bodies.length === 1
            ? {
                '00081199': {
                  vr: 'SQ',
                  Value: [{ '00081155': { vr: 'UI', Value: ['1.1'] } }, { '00081155': { vr: 'UI', Value: ['1.2'] } }],
                },
              }
            : {
                '00081198': {
                  vr: 'SQ',
                  Value: [{ '00081155': { vr: 'UI', Value: ['1.3'] }, '00081197': { vr: 'US', Value: [0xc000] } }],
                },
              };
        return response(bodies.length === 1 ? 200 : 409, enc(JSON.stringify(answer)));
      },
    });
    const instances = [new Uint8Array(60).fill(1), new Uint8Array(30).fill(2), new Uint8Array(80).fill(3)];
    const seen: number[] = [];
    const r = await client.store(instances, { batchBytes: 100, onProgress: (p) => seen.push(p.instances) });
    expect(r.stored).toEqual(['1.1', '1.2']);
    expect(r.failed).toEqual([{ sopInstanceUid: '1.3', reason: 0xc000 }]);
    expect(seen).toEqual([2, 3]);
    expect(bodies).toHaveLength(2);
    // Each request parses back to its batch with the boundary it announced.
    const back: number[][] = [];
    for (const b of bodies) {
      expect(b.type).toMatch(/^multipart\/related; type="application\/dicom"; boundary=/);
      const p = new MultipartParser(multipartBoundary(b.type) ?? '', (part) => void back.push(Array.from(part.body)));
      p.push(b.bytes);
      p.end();
    }
    expect(back).toEqual(instances.map((i) => Array.from(i)));
  });
});
