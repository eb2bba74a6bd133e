/**
 * The HTTP API for cases (routes, headers and errors: README.md beside this file). Every document route
 * answers JSON; every update names the revision it was made on (If-Match with the ETag it read), and the
 * store compares it inside its write transaction: a stale ETag gets 409, a missing one 428.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CorridorError, parsePlan } from '@corridor/core';
import {
  CASE_DOC,
  CASE_KIND,
  CaseStoreError,
  DOCUMENT_KINDS,
  isDocumentKind,
  isValidName,
  type CaseStore,
  type DocumentHead,
  type DocumentKind,
  type SaveExpectation,
} from './case-store.js';
import { isBlobName } from './blob-store.js';
import { handleExport } from './export-route.js';
import { HttpError, readJsonObject } from './http-body.js';

export interface CaseApiOptions {
  store: CaseStore | undefined;
  /** Largest request body, bytes (after gzip inflation too). */
  bodyLimit: number;
  /** Headers every response carries (the security headers of server.ts). */
  headers: () => Record<string, string>;
  /** The PACS an export may be sent to (`corridor start --pacs`). */
  pacsUrl?: string;
}

/**
 * The decoded path segments after `/api/`, from the raw request target (never a normalised URL, which
 * would fold `..` away): each must be a valid name (case-store.ts NAME_RE) after percent-decoding once, so
 * an encoded slash, backslash, NUL, dot segment or any non-ASCII character is refused with 400.
 */
export function apiSegments(rawTarget: string): string[] {
  const q = rawTarget.search(/[?#]/);
  const p = q < 0 ? rawTarget : rawTarget.slice(0, q);
  const rest = p.slice('/api/'.length);
  const out: string[] = [];
  for (const [i, raw] of rest.split('/').entries()) {
    let seg: string;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      throw new HttpError(400, 'bad-name', `path segment ${i + 1} is not valid percent-encoding`);
    }
    if (!isValidName(seg)) {
      throw new HttpError(
        400,
        'bad-name',
        `path segment ${i + 1} is not a valid name (1-64 ASCII letters, digits, '_', '-', single inner dots)`,
      );
    }
    out.push(seg);
  }
  return out;
}

export function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string>,
  method = 'GET',
): void {
  const body = status === 304 ? '' : JSON.stringify(value) + '\n';
  res.writeHead(status, {
    ...headers,
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
    ...(status === 304 ? {} : { 'Content-Length': String(Buffer.byteLength(body)) }),
  });
  res.end(method === 'HEAD' ? undefined : body);
}

/** A JSON error answer; `close` ends the connection after it without reading the rest of the body. */
export function sendError(
  req: IncomingMessage,
  res: ServerResponse,
  err: HttpError,
  headers: Record<string, string>,
): void {
  const extraHeaders: Record<string, string> = { ...headers };
  if (err.close) extraHeaders.Connection = 'close';
  if (err.status === 405 && typeof err.extra?.allow === 'string') extraHeaders.Allow = err.extra.allow;
  if (err.status === 401) extraHeaders['WWW-Authenticate'] = 'Bearer realm="corridor"';
  const current = err.extra?.current as DocumentHead | undefined;
  if (current) extraHeaders.ETag = current.etag;
  const error: Record<string, unknown> = { status: err.status, code: err.code, message: err.message };
  if (current) error.current = { revision: current.revision, etag: current.etag, updatedAt: current.updatedAt };
  if (current && err.extra?.document !== undefined) {
    (error.current as Record<string, unknown>).document = err.extra.document;
  }
  sendJson(res, err.status, { error }, extraHeaders, req.method);
  if (err.close) {
    // Stop reading the body (a 4 GB claim is never read): half-close once answered, drop soon after.
    res.once('finish', () => {
      req.socket.end();
      setTimeout(() => req.socket.destroy(), 1000).unref();
    });
  }
}

/** The ETags an If-Match header lists; throws 400 for a malformed one, 428 for `*`. */
export function parseIfMatch(value: string): string[] {
  const v = value.trim();
  if (v === '*') {
    throw new HttpError(
      428,
      'precondition-required',
      'If-Match: * would overwrite whatever revision is there; name the ETag of the revision you edited',
    );
  }
  const tags = v.split(',').map((t) => t.trim());
  for (const t of tags) {
    if (!/^"[^"\s]{1,80}"$/.test(t)) {
      throw new HttpError(
        400,
        'bad-if-match',
        `If-Match must list strong ETags such as "3:0123456789abcdef", got ${JSON.stringify(t.slice(0, 90))}`,
      );
    }
  }
  return tags;
}

const UID_RE = /^[0-9]+(?:\.[0-9]+)*$/;

/** Check a document of a kind; throws 422 naming the problem. */
export function validateDocument(
  kind: DocumentKind | typeof CASE_KIND,
  value: Record<string, unknown>,
  where: string,
): void {
  const bad = (message: string) => new HttpError(422, 'invalid-document', `${where}: ${message}`);
  if (value.schemaVersion !== undefined && !Number.isInteger(value.schemaVersion)) {
    throw bad('schemaVersion must be an integer');
  }
  if (kind === 'plans') {
    try {
      parsePlan(value, where);
    } catch (err) {
      if (err instanceof CorridorError) throw new HttpError(422, 'invalid-document', err.message);
      throw err;
    }
  } else if (kind === 'series') {
    const given = (['files', 'blobs', 'pacs'] as const).filter((k) => value[k] !== undefined);
    if (given.length !== 1) {
      throw bad(
        'a series has exactly one of "files" (paths on this machine), "blobs" (files kept in the store) or "pacs" (a reference)',
      );
    }
    if (given[0] === 'files') {
      const f = value.files;
      if (!Array.isArray(f) || f.length === 0 || f.length > 100_000)
        throw bad('files must be a list of 1-100000 paths');
      for (const p of f) {
        if (typeof p !== 'string' || p.length === 0 || p.length > 4096 || p.includes('\0')) {
          throw bad('each file must be a path of 1-4096 characters without NUL');
        }
      }
    } else if (given[0] === 'blobs') {
      const b = value.blobs;
      if (!Array.isArray(b) || b.length === 0 || b.length > 100_000)
        throw bad('blobs must be a list of 1-100000 files');
      for (const [i, x] of (b as unknown[]).entries()) {
        const o = x as Record<string, unknown> | null;
        if (typeof o !== 'object' || o === null || Array.isArray(o)) throw bad(`blobs[${i}] must be an object`);
        if (typeof o.sha256 !== 'string' || !isBlobName(o.sha256))
          throw bad(`blobs[${i}].sha256 must be 64 lower-case hex digits`);
        if (typeof o.bytes !== 'number' || !Number.isSafeInteger(o.bytes) || o.bytes < 0)
          throw bad(`blobs[${i}].bytes must be a byte count`);
        if (typeof o.name !== 'string' || o.name.length === 0 || o.name.length > 1024 || o.name.includes('\0'))
          throw bad(`blobs[${i}].name must be a file name of 1-1024 characters without NUL`);
      }
    } else {
      const r = value.pacs as Record<string, unknown> | null;
      if (typeof r !== 'object' || r === null || Array.isArray(r)) throw bad('pacs must be an object');
      for (const k of ['studyInstanceUid', 'seriesInstanceUid']) {
        const u = r[k];
        if (typeof u !== 'string' || u.length > 64 || !UID_RE.test(u)) throw bad(`pacs.${k} must be a DICOM UID`);
      }
      if (r.url !== undefined && (typeof r.url !== 'string' || !/^https?:\/\/[^\s]+$/.test(r.url))) {
        throw bad('pacs.url must be an http(s) URL');
      }
      if (r.segmentations !== undefined) {
        const g = r.segmentations;
        if (
          !Array.isArray(g) ||
          g.length > 100 ||
          g.some((u) => typeof u !== 'string' || u.length > 64 || !UID_RE.test(u))
        )
          throw bad('pacs.segmentations must be a list of at most 100 series UIDs');
      }
    }
  } else if (kind === CASE_KIND) {
    if (value.title !== undefined && (typeof value.title !== 'string' || value.title.length > 200)) {
      throw bad('title must be a string of at most 200 characters');
    }
  }
}

function requireStore(store: CaseStore | undefined): CaseStore {
  if (!store) throw new HttpError(503, 'no-store', 'this server was started without a case store');
  return store;
}

function notAllowed(allow: string): HttpError {
  return new HttpError(405, 'method-not-allowed', `method not allowed here (allowed: ${allow})`, { extra: { allow } });
}

function fromStoreError(err: unknown): never {
  if (err instanceof CaseStoreError) {
    const extra = err.current ? { current: err.current } : undefined;
    switch (err.code) {
      case 'not-found':
        throw new HttpError(404, 'not-found', err.message, { extra });
      case 'exists':
        throw new HttpError(409, 'exists', err.message, { extra });
      case 'stale':
        throw new HttpError(409, 'stale-revision', err.message, { extra });
      case 'invalid':
        throw new HttpError(400, 'bad-name', err.message);
      case 'corrupt':
      case 'io':
        throw new HttpError(500, err.code, err.message);
    }
  }
  throw err;
}

function headJson(h: DocumentHead) {
  return { name: h.name, revision: h.revision, etag: h.etag, sha256: h.sha256, updatedAt: h.updatedAt };
}

/** Handle a request under /api/ other than /api/health; `segs` from apiSegments. */
export async function handleCaseApi(
  req: IncomingMessage,
  res: ServerResponse,
  segs: string[],
  opts: CaseApiOptions,
): Promise<number> {
  const method = req.method ?? 'GET';
  const h = opts.headers();
  const json = (status: number, value: unknown, extra: Record<string, string> = {}) => {
    sendJson(res, status, value, { ...h, ...extra }, method);
    return status;
  };
  const isRead = method === 'GET' || method === 'HEAD';
  if (segs[0] !== 'cases') throw new HttpError(404, 'not-found', 'no such API route');
  const store = requireStore(opts.store);

  // /api/cases
  if (segs.length === 1) {
    if (isRead) return json(200, { cases: store.listCases() });
    if (method !== 'POST') throw notAllowed('GET, HEAD, POST');
    const { text, value } = await readJsonObject(req, opts.bodyLimit);
    const id = value.id;
    if (id !== undefined && (typeof id !== 'string' || !isValidName(id))) {
      throw new HttpError(400, 'bad-name', 'id must be a valid name (1-64 ASCII letters, digits, _, -, inner dots)');
    }
    validateDocument(CASE_KIND, value, 'case');
    let head: DocumentHead;
    try {
      head = store.createCase(id, text, typeof value.title === 'string' ? value.title : null);
    } catch (err) {
      fromStoreError(err);
    }
    return json(
      201,
      { id: head.caseId, meta: headJson(head) },
      { Location: `/api/cases/${head.caseId}`, ETag: head.etag },
    );
  }

  const caseId = segs[1];
  // /api/cases/{case}
  if (segs.length === 2) {
    if (!isRead) throw notAllowed('GET, HEAD');
    const c = store.getCase(caseId);
    if (!c) throw new HttpError(404, 'not-found', `no case "${caseId}"`);
    const documents = Object.fromEntries(DOCUMENT_KINDS.map((k) => [k, c.documentsByKind[k].map(headJson)]));
    return json(200, {
      id: c.id,
      title: c.title,
      createdAt: c.createdAt,
      updatedAt: c.updatedAt,
      meta: headJson(c.meta),
      documents,
    });
  }

  // /api/cases/{case}/export: the case's DICOM objects, de-identified (export-route.ts).
  if (segs[2] === 'export' && segs.length === 3) {
    return handleExport(req, res, store, caseId, { bodyLimit: opts.bodyLimit, headers: h, pacsUrl: opts.pacsUrl });
  }

  // /api/cases/{case}/meta[/revisions[/{n}]] and /api/cases/{case}/{kind}[/{name}[/revisions[/{n}]]]
  const isMeta = segs[2] === 'meta';
  if (!isMeta && !isDocumentKind(segs[2])) {
    throw new HttpError(404, 'not-found', `no such document kind (have: meta, ${DOCUMENT_KINDS.join(', ')})`);
  }
  const kind: DocumentKind | typeof CASE_KIND = isMeta ? CASE_KIND : (segs[2] as DocumentKind);
  let rest = segs.slice(3);
  let name: string;
  if (isMeta) name = CASE_DOC;
  else {
    if (rest.length === 0) {
      if (!isRead) throw notAllowed('GET, HEAD');
      if (!store.hasCase(caseId)) throw new HttpError(404, 'not-found', `no case "${caseId}"`);
      return json(200, { kind, documents: store.listDocuments(caseId, kind).map(headJson) });
    }
    name = rest[0];
    rest = rest.slice(1);
  }
  const where = isMeta ? `${caseId}/meta` : `${caseId}/${kind}/${name}`;
  if (rest.length > 2 || (rest.length >= 1 && rest[0] !== 'revisions')) {
    throw new HttpError(404, 'not-found', 'no such API route');
  }
  if (rest.length >= 1) {
    if (!isRead) throw notAllowed('GET, HEAD');
    if (rest.length === 1) {
      const history = store.history(caseId, kind, name);
      if (history.length === 0) throw new HttpError(404, 'not-found', `no document ${where}`);
      return json(200, { revisions: history });
    }
    if (!/^[1-9][0-9]{0,9}$/.test(rest[1])) throw new HttpError(400, 'bad-revision', 'a revision is a number from 1');
    let doc;
    try {
      doc = store.read(caseId, kind, name, Number(rest[1]));
    } catch (err) {
      fromStoreError(err);
    }
    if (!doc) throw new HttpError(404, 'not-found', `no revision ${rest[1]} of ${where}`);
    return sendDocument(res, method, doc.body, doc.info.etag, doc.info.revision, h, req);
  }

  if (isRead) {
    let doc;
    try {
      doc = store.read(caseId, kind, name);
    } catch (err) {
      fromStoreError(err);
    }
    if (!doc) throw new HttpError(404, 'not-found', `no document ${where}`);
    return sendDocument(res, method, doc.body, doc.head.etag, doc.head.revision, h, req);
  }
  if (method !== 'PUT') throw notAllowed('GET, HEAD, PUT');
  const ifMatch = req.headers['if-match'];
  const ifNoneMatch = req.headers['if-none-match'];
  let expect: SaveExpectation;
  if (ifMatch !== undefined && ifNoneMatch !== undefined) {
    throw new HttpError(400, 'bad-precondition', 'send If-Match (update) or If-None-Match: * (create), not both', {
      close: true,
    });
  } else if (ifMatch !== undefined) {
    expect = { ifMatch: parseIfMatch(ifMatch) };
  } else if (ifNoneMatch !== undefined) {
    if (ifNoneMatch.trim() !== '*' || isMeta) {
      throw new HttpError(400, 'bad-precondition', 'to create a document send If-None-Match: *', { close: true });
    }
    expect = { create: true };
  } else {
    throw new HttpError(
      428,
      'precondition-required',
      'an update must name the revision it was made on: If-Match with the ETag you read (If-None-Match: * to create)',
      { close: true },
    );
  }
  const { text, value } = await readJsonObject(req, opts.bodyLimit);
  // The version an edit collides with comes along in the 409, so the client can merge without a GET.
  const conflict = (message: string) => {
    const cur = store.read(caseId, kind, name);
    return cur
      ? new HttpError(409, 'stale-revision', message, {
          extra: { current: cur.head, document: JSON.parse(cur.body) as unknown },
        })
      : new HttpError(404, 'not-found', `no document ${where}`);
  };
  // A stale edit is refused before its document is checked (the store checks again when it commits).
  const now = store.head(caseId, kind, name);
  if (now && ('create' in expect || !expect.ifMatch.includes(now.etag))) {
    throw conflict(
      'create' in expect
        ? 'the document exists already'
        : `the document is at revision ${now.revision}, not the one this edit was made on`,
    );
  }
  validateDocument(kind, value, where);
  if (kind === 'series' && Array.isArray(value.blobs)) {
    // A series names only blobs that are here, whole: it never points at bytes the store lacks.
    for (const [i, b] of (value.blobs as { sha256: string; bytes: number }[]).entries()) {
      const size = await store.blobs.size(b.sha256);
      if (size !== b.bytes) {
        throw new HttpError(
          422,
          'invalid-document',
          `${where}: blobs[${i}] (${b.sha256}) ${size === undefined ? 'is not in the store: PUT /api/blobs/{sha256} first' : `has ${size} bytes, not ${b.bytes}`}`,
        );
      }
    }
  }
  let head: DocumentHead;
  try {
    head = await store.saveQueued(caseId, kind, name, text, expect);
  } catch (err) {
    if (err instanceof CaseStoreError && err.code === 'stale') throw conflict(err.message);
    fromStoreError(err);
  }
  const created = head.revision === 1;
  return json(created ? 201 : 200, headJson(head), {
    ETag: head.etag,
    ...(created ? { Location: `/api/cases/${caseId}/${isMeta ? 'meta' : `${kind}/${name}`}` } : {}),
  });
}

function sendDocument(
  res: ServerResponse,
  method: string,
  body: string,
  etag: string,
  revision: number,
  headers: Record<string, string>,
  req: IncomingMessage,
): number {
  const inm = req.headers['if-none-match'];
  const common = { ...headers, ETag: etag, 'Corridor-Revision': String(revision), 'Cache-Control': 'no-cache' };
  if (inm !== undefined && inm.split(',').some((t) => t.trim() === etag)) {
    res.writeHead(304, common);
    res.end();
    return 304;
  }
  res.writeHead(200, {
    ...common,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
  });
  res.end(method === 'HEAD' ? undefined : body);
  return 200;
}
