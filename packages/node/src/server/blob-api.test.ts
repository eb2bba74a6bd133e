/**
 * A case holds its series' files (issue 19): PUT /api/blobs/{sha256} streams a file past the 16 MiB JSON
 * limit to disk, keeps it only when its bytes have the SHA-256 it was sent under and the announced
 * length, under its own limit (413 on the claim, before reading); GET gives the same bytes back and cuts
 * off a file changed on disk; a series document names only blobs that are there; an upload broken off
 * (or killed) leaves nothing under a name.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { request, type IncomingMessage } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { BlobStore } from './blob-store.js';
import { CaseStore } from './case-store.js';
import { DEFAULT_LIMITS, requestDeadlineMs, startServer, type RunningServer } from './server.js';
import { http, json, rawRequest } from '../test-helpers/http.js';
import { stopServed } from '../test-helpers/case-fixtures.js';

const hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const LIMIT = 24 * 2 ** 20;

let dir: string;
let s: { srv: RunningServer; store: CaseStore };
let port: number;

/** GET a blob as bytes; `ok` false when the transfer broke off. */
function getBytes(p: string): Promise<{ status: number; bytes: Buffer; ok: boolean }> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: p, headers: { host: `127.0.0.1:${port}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes: Buffer.concat(chunks), ok: res.complete }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, bytes: Buffer.concat(chunks), ok: false }));
      res.on('aborted', () => resolve({ status: res.statusCode ?? 0, bytes: Buffer.concat(chunks), ok: false }));
    });
    req.on('error', () => resolve({ status: 0, bytes: Buffer.alloc(0), ok: false }));
    req.end();
  });
}

const put = (sha: string, body: Buffer, headers: Record<string, string> = {}) =>
  http(port, {
    method: 'PUT',
    path: `/api/blobs/${sha}`,
    headers: { 'content-type': 'application/octet-stream', ...headers },
    body,
  });

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-blob-api-'));
  const webRoot = path.join(dir, 'web');
  await mkdir(webRoot, { recursive: true });
  await writeFile(path.join(webRoot, 'index.html'), '<!doctype html>');
  const store = CaseStore.open(path.join(dir, 'db', 'cases.sqlite'));
  const srv = await startServer({ webRoot, port: 0, store, limits: { uploadBytes: LIMIT } });
  s = { srv, store };
  port = srv.port;
});

afterAll(async () => {
  await stopServed(s);
  await rm(dir, { recursive: true, force: true });
});

describe('series files in the case store', () => {
  const big = randomBytes(20 * 2 ** 20); // past the 16 MiB JSON limit
  const bigSha = hex(big);

  it('a 20 MiB file goes in under its SHA-256 and comes back byte for byte; again: 200, not written twice', async () => {
    const r = await put(bigSha, big);
    expect(r.status, r.body).toBe(201);
    expect(json(r)).toEqual({ sha256: bigSha, bytes: big.length, created: true });
    const g = await getBytes(`/api/blobs/${bigSha}`);
    expect(g.status).toBe(200);
    expect(g.ok).toBe(true);
    expect(hex(g.bytes)).toBe(bigSha);
    const head = await http(port, { method: 'HEAD', path: `/api/blobs/${bigSha}` });
    expect(head.headers['content-length']).toBe(String(big.length));
    expect(head.headers.etag).toBe(`"${bigSha}"`);
    const again = await put(bigSha, Buffer.from('ignored'));
    expect(again.status).toBe(200);
    expect(json<{ created: boolean; bytes: number }>(again)).toEqual({
      sha256: bigSha,
      bytes: big.length,
      created: false,
    });
  });

  it('wrong checksum 422, wrong length, over the limit 413 (a 4 GB claim unread), no length 411: nothing kept', async () => {
    const b = randomBytes(4096);
    const other = hex(Buffer.from('something else'));
    const r = await put(other, b);
    expect(r.status).toBe(422);
    expect(json<{ error: { code: string } }>(r).error.code).toBe('checksum-mismatch');
    expect((await http(port, { path: `/api/blobs/${other}` })).status).toBe(404);
    // Announced 8192, sent 4096 and the connection closed: aborted, nothing under the name.
    const sha = hex(b);
    const short = await rawRequest(
      port,
      Buffer.concat([
        Buffer.from(
          `PUT /api/blobs/${sha} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/octet-stream\r\nContent-Length: 8192\r\n\r\n`,
        ),
        b,
      ]),
      300,
    );
    expect(short.status).toBe(0); // no answer before the client gave up
    const claim = await rawRequest(
      port,
      `PUT /api/blobs/${sha} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/octet-stream\r\nContent-Length: 4000000000\r\n\r\n`,
    );
    expect(claim.status).toBe(413);
    expect(claim.closed).toBe(true);
    const over = randomBytes(LIMIT + 1);
    expect((await put(hex(over), over)).status).toBe(413);
    const chunked = await rawRequest(
      port,
      `PUT /api/blobs/${sha} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n`,
    );
    expect(chunked.status).toBe(411);
    expect((await put(sha, b, { 'content-type': 'application/json' })).status).toBe(415);
    expect((await put(sha.toUpperCase(), b)).status).toBe(400);
    expect((await put('..%2F..%2Fcases.sqlite', b)).status).toBe(400);
    await new Promise((r) => setTimeout(r, 200));
    expect((await http(port, { path: `/api/blobs/${sha}` })).status).toBe(404);
    // Only the one good blob is in the folder: no temporary file stayed behind.
    expect(await readdir(s.store.blobs.dir)).toEqual([bigSha]);
  });

  it('a series names only blobs that are there, with their size; a blob changed on disk is cut off', async () => {
    await http(port, { method: 'POST', path: '/api/cases', body: '{"id":"c"}' });
    const doc = (sha: string, bytes: number) =>
      JSON.stringify({ blobs: [{ sha256: sha, name: 'ct.nii', bytes }], role: 'planning' });
    const missing = hex(Buffer.from('not uploaded'));
    const at = '/api/cases/c/series/planning';
    const bad = await http(port, { method: 'PUT', path: at, headers: { 'if-none-match': '*' }, body: doc(missing, 3) });
    expect(bad.status).toBe(422);
    expect(bad.body).toContain('not in the store');
    const size = await http(port, { method: 'PUT', path: at, headers: { 'if-none-match': '*' }, body: doc(bigSha, 5) });
    expect(size.status).toBe(422);
    const both = JSON.stringify({ blobs: [{ sha256: bigSha, name: 'x', bytes: big.length }], files: ['/x'] });
    expect((await http(port, { method: 'PUT', path: at, headers: { 'if-none-match': '*' }, body: both })).status).toBe(
      422,
    );
    const ok = await http(port, {
      method: 'PUT',
      path: at,
      headers: { 'if-none-match': '*' },
      body: doc(bigSha, big.length),
    });
    expect(ok.status, ok.body).toBe(201);
    // Flip one byte of the stored file: the transfer breaks off before its end; check() names it.
    const file = path.join(s.store.blobs.dir, bigSha);
    const changed = Buffer.from(big);
    changed[12345] ^= 1;
    await writeFile(file, changed);
    const g = await getBytes(`/api/blobs/${bigSha}`);
    expect(g.ok).toBe(false);
    expect(g.bytes.length).toBeLessThan(big.length);
    expect(await s.store.blobs.check()).toEqual([`blob ${bigSha}: its bytes do not match its checksum`]);
    await writeFile(file, big);
    expect(await s.store.blobs.check()).toEqual([]);
  });

  it('a temporary file of an upload a kill broke off is removed on open; an upload gets time by its size', async () => {
    const d = path.join(dir, 'killed.blobs');
    await mkdir(d);
    await writeFile(path.join(d, 'tmp-1234'), 'half');
    await writeFile(path.join(d, hex(Buffer.from('whole'))), 'whole');
    const b = new BlobStore(d);
    expect(await readdir(d)).toEqual([hex(Buffer.from('whole'))]);
    expect(await b.size(hex(Buffer.from('whole')))).toBe(5);
    const req = (method: string, url: string, length: number) =>
      ({ method, url, headers: { 'content-length': String(length) } }) as unknown as IncomingMessage;
    const l = DEFAULT_LIMITS;
    expect(requestDeadlineMs(req('PUT', `/api/blobs/${'a'.repeat(64)}`, 2 ** 31), l)).toBe(
      l.requestTimeoutMs + 2048 * 1000,
    );
    expect(requestDeadlineMs(req('PUT', '/api/cases/c/plans/p', 2 ** 20), l)).toBe(l.requestTimeoutMs);
  });
});
