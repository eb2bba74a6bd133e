/**
 * The workstation's way to the PACS: the server forwards a fixed set of DICOMweb requests to the PACS it
 * was started with (`corridor start --pacs URL`), under /api/pacs/dicom-web/, laid out as DICOMweb itself
 * so that the browser uses core's DicomWebClient with url '/api/pacs/dicom-web' (progress and cancel are
 * the client's: it counts the parts as they stream through; aborting its request closes the connection,
 * and the server then aborts its request to the PACS).
 *
 * Forwarded: QIDO-RS searches (GET /studies, /series, /instances and those under a study or series,
 * with their query keys), WADO-RS retrieval of a study, series or instance and their /metadata, and
 * STOW-RS (POST /studies, multipart/related, at most MAX_STOW_BYTES). Every UID in the path must be a
 * DICOM UID; anything else is 404 without a request to the PACS. The PACS's status and Content-Type come
 * back as they are; the body streams with back-pressure.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isDicomUid } from '@corridor/core';
import { nodeFetch } from '../pacs/http-fetch.js';

export const PACS_PREFIX = '/api/pacs/dicom-web';
export const MAX_STOW_BYTES = 1024 * 1024 * 1024;

/** Counters for tests and a log: upstream requests started, finished, and aborted because the browser left. */
export const pacsProxyStats = { started: 0, finished: 0, aborted: 0 };

type Kind = 'qido' | 'wado' | 'metadata' | 'stow';

/** What a path under the prefix asks for, or null when it is not one of the forwarded requests. */
export function classifyPacsPath(rest: string, method: string): Kind | null {
  const parts = rest.split('/').filter((p, i) => i > 0 || p !== '');
  if (parts.some((p) => p === '')) return null;
  const uidAt = (i: number) => parts[i] !== undefined && isDicomUid(parts[i]);
  const n = parts.length;
  if (method === 'POST') return n === 1 && parts[0] === 'studies' ? 'stow' : null;
  if (method !== 'GET' && method !== 'HEAD') return null;
  if (n === 1 && ['studies', 'series', 'instances'].includes(parts[0])) return 'qido';
  if (parts[0] !== 'studies' || !uidAt(1)) return null;
  if (n === 2) return 'wado';
  if (n === 3)
    return parts[2] === 'series' || parts[2] === 'instances' ? 'qido' : parts[2] === 'metadata' ? 'metadata' : null;
  if (parts[2] !== 'series' || !uidAt(3)) return null;
  if (n === 4) return 'wado';
  if (n === 5) return parts[4] === 'instances' ? 'qido' : parts[4] === 'metadata' ? 'metadata' : null;
  if (parts[4] !== 'instances' || !uidAt(5)) return null;
  if (n === 6) return 'wado';
  if (n === 7 && parts[6] === 'metadata') return 'metadata';
  return null;
}

const QUERY_KEY = /^[A-Za-z0-9_.]{1,64}$/;

function json(res: ServerResponse, status: number, body: object, headers: Record<string, string>) {
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/**
 * Handle a request under PACS_PREFIX; resolves with the status sent. `pacsUrl` is the PACS's DICOMweb
 * root (undefined: none configured, 503); `headers` are the server's security headers.
 */
export async function handlePacsRequest(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  pacsUrl: string | undefined,
  headers: Record<string, string>,
): Promise<number> {
  const method = req.method ?? 'GET';
  const rest = url.pathname.slice(PACS_PREFIX.length);
  const kind = classifyPacsPath(rest, method);
  if (!kind) {
    json(res, 404, { error: `not a forwarded DICOMweb request: ${method} ${url.pathname}` }, headers);
    return 404;
  }
  if (!pacsUrl) {
    json(res, 503, { error: 'no PACS configured: start the server with --pacs URL (a DICOMweb root)' }, headers);
    return 503;
  }
  let query = '';
  if (kind === 'qido') {
    const q: string[] = [];
    for (const [k, v] of url.searchParams) {
      if (!QUERY_KEY.test(k)) {
        json(res, 400, { error: `query key "${k.slice(0, 64)}" is not a DICOMweb search key` }, headers);
        return 400;
      }
      q.push(`${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
    }
    query = q.length ? `?${q.join('&')}` : '';
  }
  const accept =
    typeof req.headers.accept === 'string' && req.headers.accept.length < 512
      ? req.headers.accept
      : kind === 'wado'
        ? 'multipart/related; type="application/dicom"; transfer-syntax=*'
        : 'application/dicom+json';
  const upstreamHeaders: Record<string, string> = { Accept: accept };
  let body: Uint8Array | undefined;
  if (kind === 'stow') {
    const type = req.headers['content-type'] ?? '';
    if (!/^multipart\/related\s*;/i.test(type)) {
      json(res, 415, { error: 'STOW-RS takes multipart/related' }, headers);
      return 415;
    }
    const claimed = Number(req.headers['content-length'] ?? NaN);
    if (Number.isFinite(claimed) && claimed > MAX_STOW_BYTES) {
      json(res, 413, { error: `over ${MAX_STOW_BYTES} bytes` }, headers);
      req.resume();
      return 413;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > MAX_STOW_BYTES) {
        json(res, 413, { error: `over ${MAX_STOW_BYTES} bytes` }, headers);
        req.destroy();
        return 413;
      }
      chunks.push(c as Buffer);
    }
    body = Buffer.concat(chunks);
    upstreamHeaders['Content-Type'] = type;
  }
  const target = pacsUrl.replace(/\/+$/, '') + rest + query;
  const ac = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) {
      pacsProxyStats.aborted++;
      ac.abort(new Error('the browser closed the connection'));
    }
  };
  res.once('close', onClose);
  pacsProxyStats.started++;
  try {
    let up;
    try {
      up = await nodeFetch(target, {
        method: method === 'HEAD' ? 'HEAD' : method,
        headers: upstreamHeaders,
        body,
        signal: ac.signal,
      });
    } catch (e) {
      if (ac.signal.aborted) return 499;
      json(res, 502, { error: `the PACS did not answer: ${(e as Error).message}`, url: target }, headers);
      return 502;
    }
    const out: Record<string, string> = { ...headers, 'Cache-Control': 'no-store' };
    const type = up.headers.get('content-type');
    if (type) out['Content-Type'] = type;
    const length = up.headers.get('content-length');
    if (length && /^\d+$/.test(length)) out['Content-Length'] = length;
    res.writeHead(up.status, out);
    if (method === 'HEAD' || !up.body) {
      res.end();
      return up.status;
    }
    const reader = up.body.getReader();
    try {
      for (;;) {
        const r = await reader.read();
        if (r.done) break;
        if (r.value && !res.write(r.value)) {
          await new Promise<void>((resolve) => {
            const go = () => {
              res.off('drain', go);
              res.off('close', go);
              resolve();
            };
            res.on('drain', go);
            res.on('close', go);
          });
        }
        if (ac.signal.aborted) break;
      }
    } catch {
      // the PACS broke off, or the browser left: the connection is closed either way
      res.destroy();
      await reader.cancel().catch(() => undefined);
      return up.status;
    }
    if (ac.signal.aborted) await reader.cancel().catch(() => undefined);
    res.end();
    return up.status;
  } finally {
    pacsProxyStats.finished++;
    res.off('close', onClose);
  }
}
