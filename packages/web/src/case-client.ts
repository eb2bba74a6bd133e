/**
 * The workstation's client of the case server (`corridor start`, packages/node/src/server): one case per
 * opened study/series, documents saved with If-Match / If-None-Match, a 409 answered with the winning
 * document so the page can show both versions. Same-origin fetch carries the token cookie by itself.
 * Served without the API (static hosting, `vite preview`): detect() answers null and the app keeps its
 * plan in localStorage as before.
 */

import { sha256 } from '@corridor/core';

export type DocKind = 'series' | 'plans' | 'registrations' | 'verifications' | 'cement';

/** A file of a series kept in the case store (PUT /api/blobs/{sha256}). */
export interface BlobRef {
  sha256: string;
  name: string;
  bytes: number;
}

/** SHA-256 of bytes, hex: the browser's digest where there is one (secure contexts), else core's. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const subtle = (globalThis as { crypto?: { subtle?: SubtleCrypto } }).crypto?.subtle;
  const d = subtle ? new Uint8Array(await subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>)) : sha256(bytes);
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Store files in the case store (each once: a HEAD says whether it is there); their references. */
export async function putBlobs(
  files: { name: string; bytes: Uint8Array }[],
  base = '/api',
  onProgress?: (done: number, total: number) => void,
): Promise<BlobRef[]> {
  const out: BlobRef[] = [];
  for (const [i, f] of files.entries()) {
    const sha = await sha256Hex(f.bytes);
    const url = `${base}/blobs/${sha}`;
    const h = await fetch(url, { method: 'HEAD', cache: 'no-store' });
    if (!h.ok) {
      const r = await fetch(url, {
        method: 'PUT',
        headers: { 'Content-Type': 'application/octet-stream' },
        body: f.bytes as Uint8Array<ArrayBuffer>,
      });
      if (!r.ok) await fail(r, `store ${f.name}`);
    }
    out.push({ sha256: sha, name: f.name, bytes: f.bytes.length });
    onProgress?.(i + 1, files.length);
  }
  return out;
}

/** Read stored files back, each checked against its SHA-256. */
export async function getBlobs(
  refs: BlobRef[],
  base = '/api',
  onProgress?: (done: number, total: number) => void,
): Promise<{ name: string; bytes: Uint8Array }[]> {
  const out: { name: string; bytes: Uint8Array }[] = [];
  for (const [i, b] of refs.entries()) {
    const r = await fetch(`${base}/blobs/${b.sha256}`);
    if (!r.ok) await fail(r, `read ${b.name}`);
    const bytes = new Uint8Array(await r.arrayBuffer());
    if (bytes.length !== b.bytes || (await sha256Hex(bytes)) !== b.sha256)
      throw new CaseApiError(500, `case store: ${b.name}: the stored file does not match its checksum`);
    out.push({ name: b.name, bytes });
    onProgress?.(i + 1, refs.length);
  }
  return out;
}

export interface DocHead {
  name: string;
  revision: number;
  etag: string;
  updatedAt: string;
}

export interface CaseDoc {
  text: string;
  etag: string;
  revision: number;
}

export type SaveResult =
  | { ok: true; etag: string; revision: number }
  | { ok: false; current: { etag: string; revision: number; document: unknown } };

/** Case and document names the server accepts: letters, digits, `_`, `-`, parts joined by single dots. */
export function safeName(s: string, max = 40): string {
  const t = s
    .replace(/[^A-Za-z0-9_-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, max);
  return t || 'x';
}

/** FNV-1a (32 bit), hex: a short stable tag for a case key. */
export function shortHash(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/** The case id of an opened series: its name (readable) and a hash of name, grid and spacing (unique). */
export function caseIdFor(caseKey: string, name: string): string {
  return `${safeName(name, 48)}.${shortHash(caseKey)}`;
}

export class CaseApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'CaseApiError';
  }
}

async function fail(r: Response, what: string): Promise<never> {
  let msg = `${r.status} ${r.statusText}`;
  try {
    const j = (await r.json()) as { error?: { message?: string } };
    if (j.error?.message) msg = `${r.status}: ${j.error.message}`;
  } catch {
    // Not JSON: the status says enough.
  }
  throw new CaseApiError(r.status, `case store: ${what}: ${msg}`);
}

export class CaseClient {
  private constructor(private base: string) {}

  /** The case API of the server that served this page, or null when there is none (or it has no store). */
  static async detect(base = '/api'): Promise<CaseClient | null> {
    try {
      const h = await fetch(`${base}/health`, { cache: 'no-store' });
      if (!h.ok) return null;
      // `cases`: the server has a store (asking /api/cases instead would log a 503 in the console).
      const j = (await h.json()) as { app?: string; cases?: boolean };
      return j.app === 'corridor' && j.cases === true ? new CaseClient(base) : null;
    } catch {
      return null;
    }
  }

  private url(...parts: string[]): string {
    return [this.base, 'cases', ...parts.map(encodeURIComponent)].join('/');
  }

  /** Open a case (created with this id and title when new); its document heads by kind. */
  async openCase(id: string, title: string): Promise<{ created: boolean; documents: Record<string, DocHead[]> }> {
    let r = await fetch(this.url(id), { cache: 'no-store' });
    let created = false;
    if (r.status === 404) {
      const c = await fetch(`${this.base}/cases`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ id, title: title.slice(0, 200) }),
      });
      // 409: another page created it meanwhile; read it like any existing case.
      if (!c.ok && c.status !== 409) await fail(c, `create case ${id}`);
      created = c.ok;
      r = await fetch(this.url(id), { cache: 'no-store' });
    }
    if (!r.ok) await fail(r, `open case ${id}`);
    const j = (await r.json()) as { documents: Record<string, DocHead[]> };
    return { created, documents: j.documents };
  }

  /** The cases in the store. */
  async listCases(): Promise<{ id: string; title: string | null; updatedAt: string; documents: number }[]> {
    const r = await fetch(`${this.base}/cases`, { cache: 'no-store' });
    if (!r.ok) await fail(r, 'list cases');
    return ((await r.json()) as { cases: { id: string; title: string | null; updatedAt: string; documents: number }[] })
      .cases;
  }

  async get(caseId: string, kind: DocKind, name: string): Promise<CaseDoc | null> {
    const r = await fetch(this.url(caseId, kind, name), { cache: 'no-store' });
    if (r.status === 404) return null;
    if (!r.ok) await fail(r, `read ${kind}/${name}`);
    return {
      text: await r.text(),
      etag: r.headers.get('ETag') ?? '',
      revision: Number(r.headers.get('Corridor-Revision') ?? NaN),
    };
  }

  /** Save a revision made on `etag` (null: create). A 409 comes back with the document that won. */
  async put(caseId: string, kind: DocKind, name: string, text: string, etag: string | null): Promise<SaveResult> {
    const r = await fetch(this.url(caseId, kind, name), {
      method: 'PUT',
      headers: { 'Content-Type': 'application/json', ...(etag ? { 'If-Match': etag } : { 'If-None-Match': '*' }) },
      body: text,
    });
    if (r.status === 409) {
      const j = (await r.json()) as {
        error: { current?: { etag: string; revision: number; document: unknown } };
      };
      const cur = j.error.current;
      if (!cur) throw new CaseApiError(409, `case store: ${kind}/${name}: conflict without the current version`);
      return { ok: false, current: cur };
    }
    if (!r.ok) await fail(r, `save ${kind}/${name}`);
    const j = (await r.json()) as { revision: number; etag: string };
    return { ok: true, etag: r.headers.get('ETag') ?? j.etag, revision: j.revision };
  }

  async revisions(caseId: string, kind: DocKind, name: string): Promise<{ revision: number; etag: string }[]> {
    const r = await fetch(`${this.url(caseId, kind, name)}/revisions`, { cache: 'no-store' });
    if (!r.ok) await fail(r, `history of ${kind}/${name}`);
    return ((await r.json()) as { revisions: { revision: number; etag: string }[] }).revisions;
  }
}
