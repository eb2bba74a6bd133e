/**
 * /api/blobs/{sha256}: the image files of the cases' series (blob-store.ts), outside the JSON routes and
 * their 16 MiB body limit. PUT streams the body (application/octet-stream, a Content-Length of at most
 * the upload limit, 2 GiB by default) to disk while hashing it and keeps it only when its SHA-256 is the
 * name it was sent under; GET and HEAD give it back (immutable: the name is the digest).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { BlobError, isBlobName } from './blob-store.js';
import type { CaseStore } from './case-store.js';
import { sendJson } from './case-api.js';
import { HttpError } from './http-body.js';

export const DEFAULT_UPLOAD_BYTES = 2 * 2 ** 30;

export interface BlobApiOptions {
  store: CaseStore | undefined;
  /** Largest blob, bytes. */
  uploadLimit: number;
  headers: () => Record<string, string>;
}

/** Handle /api/blobs[/...]; `segs` from apiSegments (segs[0] === 'blobs'). */
export async function handleBlobApi(
  req: IncomingMessage,
  res: ServerResponse,
  segs: string[],
  opts: BlobApiOptions,
): Promise<number> {
  const method = req.method ?? 'GET';
  if (segs.length !== 2) throw new HttpError(404, 'not-found', 'a blob is /api/blobs/{sha256}', { close: true });
  const sha = segs[1];
  if (!isBlobName(sha)) {
    throw new HttpError(400, 'bad-name', 'a blob is named by the SHA-256 of its bytes: 64 lower-case hex digits', {
      close: true,
    });
  }
  if (!opts.store)
    throw new HttpError(503, 'no-store', 'this server was started without a case store', { close: true });
  const blobs = opts.store.blobs;
  const h = opts.headers();
  if (method === 'GET' || method === 'HEAD') {
    const size = await blobs.size(sha);
    if (size === undefined) throw new HttpError(404, 'not-found', `no blob ${sha}`);
    const etag = `"${sha}"`;
    const common = { ...h, ETag: etag, 'Cache-Control': 'private, max-age=31536000, immutable' };
    const inm = req.headers['if-none-match'];
    if (inm !== undefined && inm.split(',').some((t) => t.trim() === etag)) {
      res.writeHead(304, common);
      res.end();
      return 304;
    }
    res.writeHead(200, { ...common, 'Content-Type': 'application/octet-stream', 'Content-Length': String(size) });
    if (method === 'HEAD') {
      res.end();
      return 200;
    }
    try {
      await pipeline(blobs.read(sha), res);
    } catch {
      // The file changed on disk (or the client left): the transfer is cut off, never ended as whole.
      res.destroy();
    }
    return 200;
  }
  if (method !== 'PUT') {
    throw new HttpError(405, 'method-not-allowed', 'method not allowed here (allowed: GET, HEAD, PUT)', {
      extra: { allow: 'GET, HEAD, PUT' },
      close: true,
    });
  }
  const type = (req.headers['content-type'] ?? '').trim().toLowerCase();
  if (type !== 'application/octet-stream') {
    throw new HttpError(415, 'unsupported-media-type', 'a blob is sent as Content-Type: application/octet-stream', {
      close: true,
    });
  }
  const enc = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (enc !== 'identity') {
    throw new HttpError(415, 'unsupported-encoding', 'a blob is sent as it is (no Content-Encoding)', { close: true });
  }
  const claimed = req.headers['content-length'];
  if (claimed === undefined) {
    throw new HttpError(411, 'length-required', 'a blob upload needs a Content-Length', { close: true });
  }
  const n = Number(claimed);
  if (!/^\d+$/.test(claimed) || !Number.isSafeInteger(n)) {
    throw new HttpError(400, 'bad-content-length', 'Content-Length is not a number', { close: true });
  }
  if (n > opts.uploadLimit) {
    throw new HttpError(
      413,
      'too-large',
      `the blob (${n} bytes claimed) is over the limit of ${(opts.uploadLimit / 2 ** 20).toFixed(0)} MiB`,
      { close: true },
    );
  }
  const existing = await blobs.size(sha);
  if (existing !== undefined) {
    // Already here (its name is its digest): nothing to read; the body is not drained.
    const r = { sha256: sha, bytes: existing, created: false };
    res.once('finish', () => {
      req.socket.end();
      setTimeout(() => req.socket.destroy(), 1000).unref();
    });
    sendJson(res, 200, r, { ...h, ETag: `"${sha}"`, Connection: 'close' }, method);
    return 200;
  }
  try {
    await blobs.write(req, sha, n);
  } catch (err) {
    if (!(err instanceof BlobError)) throw err;
    const status = err.code === 'io' ? 500 : err.code === 'aborted' ? 400 : 422;
    throw new HttpError(status, err.code, err.message, { close: true });
  }
  sendJson(
    res,
    201,
    { sha256: sha, bytes: n, created: true },
    { ...h, ETag: `"${sha}"`, Location: `/api/blobs/${sha}` },
    method,
  );
  return 201;
}
