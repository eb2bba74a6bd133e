/**
 * A DICOMweb client (PS3.18): QIDO-RS search, WADO-RS retrieve, STOW-RS store, over the platform's fetch
 * (browsers, workers and Node alike; no Node API). Retrieval streams: each instance of a multipart/related
 * response is handed over as soon as its last byte arrives. Every call takes an AbortSignal (a cancelled
 * call rejects with CancelledError) and reports progress; a failed request is a PacsError naming the URL
 * and the HTTP status.
 */
import { CancelledError, CorridorError, FormatError, UsageError } from '../errors.js';
import { MultipartParser, chooseBoundary, encodeMultipart, multipartBoundary } from './multipart.js';

/** A request that failed: the URL, the HTTP status (0 when no response came) and the server's words. */
export class PacsError extends CorridorError {
  override readonly name: string = 'PacsError';
  constructor(
    message: string,
    readonly url: string,
    readonly status: number,
    options?: { cause?: unknown },
  ) {
    super(status > 0 ? `HTTP ${status}: ${message}` : message, url, options);
  }
}

// --- the slice of fetch this client uses (typed here: core compiles without DOM or Node types) ---------

export interface FetchBodyReader {
  read(): Promise<{ done: boolean; value?: Uint8Array }>;
  cancel(reason?: unknown): Promise<void>;
}
export interface FetchResponse {
  readonly ok: boolean;
  readonly status: number;
  readonly statusText: string;
  readonly headers: { get(name: string): string | null };
  readonly body: { getReader(): FetchBodyReader } | null;
  text(): Promise<string>;
  arrayBuffer(): Promise<ArrayBuffer>;
}
export interface FetchInit {
  method?: string;
  headers?: Record<string, string>;
  body?: unknown;
  signal?: AbortSignal;
  duplex?: 'half';
}
export type FetchLike = (url: string, init?: FetchInit) => Promise<FetchResponse>;

interface BlobCtor {
  new (parts: Uint8Array[], options?: { type?: string }): unknown;
}

/** One DICOM JSON data set (PS3.18 F.2): tag (8 hex digits) -> { vr, Value?, ... }. */
export type DicomJson = Record<string, { vr: string; Value?: unknown[]; BulkDataURI?: string; InlineBinary?: string }>;

function valueText(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v === 'object') {
    const a = (v as { Alphabetic?: unknown }).Alphabetic;
    return typeof a === 'string' ? a : undefined;
  }
  return undefined;
}

/** The first value of a tag in a DICOM JSON data set, as text (PN: the alphabetic form), or undefined. */
export function jsonString(ds: DicomJson, tag: string): string | undefined {
  return valueText(ds[tag]?.Value?.[0]);
}

/** All values of a tag as text. */
export function jsonStrings(ds: DicomJson, tag: string): string[] {
  return (ds[tag]?.Value ?? []).map((v) => valueText(v) ?? '');
}

/** QIDO-RS query: attribute keyword or tag -> value (matching per PS3.18 8.3.4), plus the paging keys. */
export interface QidoQuery {
  [key: string]: string | number | boolean | string[] | undefined;
  limit?: number;
  offset?: number;
  fuzzymatching?: boolean;
  includefield?: string[];
}

export interface RequestOptions {
  signal?: AbortSignal;
}

export interface RetrieveProgress {
  /** Instances received so far. */
  instances: number;
  /** Body bytes received so far. */
  bytes: number;
  /** Expected instances, when the caller told (e.g. from a QIDO count). */
  totalInstances?: number;
  /** Expected bytes, when the server sent a Content-Length. */
  totalBytes?: number;
}

export interface RetrieveOptions extends RequestOptions {
  /** Each instance as it arrives (Part 10 bytes). May return a promise: reading pauses until it settles. */
  onInstance?: (bytes: Uint8Array, index: number) => void | Promise<void>;
  onProgress?: (p: RetrieveProgress) => void;
  totalInstances?: number;
  /** Transfer syntax to ask for; '*' (the default) takes the instances as stored. */
  transferSyntax?: string;
}

export interface StoreProgress {
  /** Instances whose request has completed. */
  instances: number;
  totalInstances: number;
  bytes: number;
  totalBytes: number;
}

export interface StoreOptions extends RequestOptions {
  onProgress?: (p: StoreProgress) => void;
  /** Instances are sent in requests of at most this many bytes (default 64 MiB; one instance at least). */
  batchBytes?: number;
  /** Store into this study (POST /studies/{uid}); every instance must belong to it. */
  studyInstanceUid?: string;
}

export interface StoreResult {
  /** SOP Instance UIDs the server reported stored (ReferencedSOPSequence). */
  stored: string[];
  /** Failures (FailedSOPSequence) with their reason codes. */
  failed: { sopInstanceUid: string; reason: number }[];
  /** Warnings the server reported (WarningReason in a ReferencedSOPSequence item). */
  warnings: string[];
}

export interface DicomWebClientOptions {
  /** The DICOMweb root, e.g. http://127.0.0.1:8042/dicom-web. */
  url: string;
  /** fetch to use (default: the platform's). */
  fetch?: FetchLike;
  /** Extra headers sent with every request (e.g. Authorization). */
  headers?: Record<string, string>;
}

const UID_RE = /^[0-9]+(\.[0-9]+)*$/;

/** Whether text is a DICOM UID (PS3.5 9.1: digits and dots, at most 64 characters). */
export function isDicomUid(text: string): boolean {
  return UID_RE.test(text) && text.length <= 64;
}

function checkUid(uid: string, what: string): string {
  if (!isDicomUid(uid)) throw new UsageError(`${what} "${uid}" is not a DICOM UID`);
  return uid;
}

function abortError(signal: AbortSignal | undefined, url: string): CancelledError {
  const reason = signal?.reason;
  return new CancelledError(
    `request cancelled${reason instanceof Error && reason.message ? ` (${reason.message})` : ''}`,
    url,
  );
}

export class DicomWebClient {
  readonly url: string;
  private readonly fetchFn: FetchLike;
  private readonly headers: Record<string, string>;

  constructor(options: DicomWebClientOptions) {
    let u = options.url.trim();
    if (!/^https?:\/\//i.test(u) && !u.startsWith('/'))
      throw new UsageError(`DICOMweb URL "${options.url}" must start with http:// or https:// (or / in a browser)`);
    while (u.endsWith('/')) u = u.slice(0, -1);
    this.url = u;
    const platform = (globalThis as unknown as { fetch?: FetchLike }).fetch;
    // The platform's fetch must be called on globalThis: a browser throws "Illegal invocation" otherwise.
    const f = options.fetch ?? platform?.bind(globalThis);
    if (!f) throw new UsageError('no fetch in this environment: pass one to DicomWebClient');
    this.fetchFn = f;
    this.headers = { ...(options.headers ?? {}) };
  }

  // --- QIDO-RS ---------------------------------------------------------------------------------------

  /** Studies matching the query (GET /studies). */
  async searchStudies(query: QidoQuery = {}, options: RequestOptions = {}): Promise<DicomJson[]> {
    return this.qido('/studies', query, options);
  }

  /** Series of a study, or of all studies when studyInstanceUid is omitted. */
  async searchSeries(
    studyInstanceUid?: string,
    query: QidoQuery = {},
    options: RequestOptions = {},
  ): Promise<DicomJson[]> {
    const p = studyInstanceUid ? `/studies/${checkUid(studyInstanceUid, 'StudyInstanceUID')}/series` : '/series';
    return this.qido(p, query, options);
  }

  /** Instances of a series, a study, or of everything. */
  async searchInstances(
    studyInstanceUid?: string,
    seriesInstanceUid?: string,
    query: QidoQuery = {},
    options: RequestOptions = {},
  ): Promise<DicomJson[]> {
    let p = '/instances';
    if (studyInstanceUid) {
      p = `/studies/${checkUid(studyInstanceUid, 'StudyInstanceUID')}`;
      if (seriesInstanceUid) p += `/series/${checkUid(seriesInstanceUid, 'SeriesInstanceUID')}`;
      p += '/instances';
    } else if (seriesInstanceUid) throw new UsageError('a series search by SeriesInstanceUID needs its study');
    return this.qido(p, query, options);
  }

  private async qido(path: string, query: QidoQuery, options: RequestOptions): Promise<DicomJson[]> {
    const url = this.url + path + queryString(query);
    const res = await this.request(url, { method: 'GET', headers: { Accept: 'application/dicom+json' } }, options);
    if (res.status === 204) return [];
    const text = await this.readText(res, url, options);
    if (text.trim() === '') return [];
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new PacsError(`the search answer is not JSON (${(e as Error).message})`, url, 0);
    }
    if (!Array.isArray(parsed)) throw new PacsError('the search answer is not a JSON array of data sets', url, 0);
    return parsed as DicomJson[];
  }

  // --- WADO-RS ---------------------------------------------------------------------------------------

  /** Every instance of a study (GET /studies/{uid}); resolves with the number of instances received. */
  async retrieveStudy(studyInstanceUid: string, options: RetrieveOptions = {}): Promise<number> {
    return this.wado(`/studies/${checkUid(studyInstanceUid, 'StudyInstanceUID')}`, options);
  }

  async retrieveSeries(
    studyInstanceUid: string,
    seriesInstanceUid: string,
    options: RetrieveOptions = {},
  ): Promise<number> {
    return this.wado(
      `/studies/${checkUid(studyInstanceUid, 'StudyInstanceUID')}/series/${checkUid(seriesInstanceUid, 'SeriesInstanceUID')}`,
      options,
    );
  }

  /** One instance's Part 10 bytes. */
  async retrieveInstance(
    studyInstanceUid: string,
    seriesInstanceUid: string,
    sopInstanceUid: string,
    options: RequestOptions = {},
  ): Promise<Uint8Array> {
    let out: Uint8Array | undefined;
    const n = await this.wado(
      `/studies/${checkUid(studyInstanceUid, 'StudyInstanceUID')}/series/${checkUid(seriesInstanceUid, 'SeriesInstanceUID')}/instances/${checkUid(sopInstanceUid, 'SOPInstanceUID')}`,
      { ...options, onInstance: (b) => void (out = b) },
    );
    if (n !== 1 || !out) throw new PacsError(`expected one instance, got ${n}`, this.url, 0);
    return out;
  }

  private async wado(path: string, options: RetrieveOptions): Promise<number> {
    const url = this.url + path;
    const ts = options.transferSyntax ?? '*';
    const accept = `multipart/related; type="application/dicom"; transfer-syntax=${ts}`;
    const res = await this.request(url, { method: 'GET', headers: { Accept: accept } }, options);
    const boundary = multipartBoundary(res.headers.get('content-type'));
    if (!boundary)
      throw new PacsError(
        `the answer is not multipart/related (Content-Type: ${res.headers.get('content-type') ?? 'none'})`,
        url,
        0,
      );
    const cl = res.headers.get('content-length');
    const totalBytes = cl !== null && /^\d+$/.test(cl) ? Number(cl) : undefined;
    const pending: Uint8Array[] = [];
    let count = 0;
    const parser = new MultipartParser(
      boundary,
      (part) => {
        const type = (part.headers['content-type'] ?? 'application/dicom').toLowerCase();
        if (!type.startsWith('application/dicom'))
          throw new PacsError(`part ${count + 1} is ${type}, not application/dicom`, url, 0);
        pending.push(part.body);
      },
      { source: url },
    );
    let bytes = 0;
    const reader = res.body?.getReader();
    if (!reader) throw new PacsError('the answer has no body', url, 0);
    const progress = () =>
      options.onProgress?.({ instances: count, bytes, totalInstances: options.totalInstances, totalBytes });
    try {
      for (;;) {
        let r: { done: boolean; value?: Uint8Array };
        try {
          r = await reader.read();
        } catch (e) {
          if (options.signal?.aborted) throw abortError(options.signal, url);
          throw new PacsError(`the answer broke off after ${bytes} bytes (${(e as Error).message})`, url, 0, {
            cause: e,
          });
        }
        if (r.done) break;
        const chunk = r.value;
        if (!chunk) continue;
        bytes += chunk.length;
        parser.push(chunk);
        while (pending.length > 0) {
          const b = pending.shift() as Uint8Array;
          const index = count++;
          if (options.onInstance) {
            const p = options.onInstance(b, index);
            if (p) await p;
          }
        }
        progress();
        if (options.signal?.aborted) throw abortError(options.signal, url);
      }
      parser.end();
    } catch (e) {
      await reader.cancel().catch(() => undefined);
      throw e;
    }
    return count;
  }

  // --- STOW-RS ---------------------------------------------------------------------------------------

  /** Store Part 10 instances (POST /studies, multipart/related), in batches; failures are reported, not thrown. */
  async store(instances: readonly Uint8Array[], options: StoreOptions = {}): Promise<StoreResult> {
    const url =
      this.url +
      (options.studyInstanceUid ? `/studies/${checkUid(options.studyInstanceUid, 'StudyInstanceUID')}` : '/studies');
    const Blob = (globalThis as unknown as { Blob?: BlobCtor }).Blob;
    const batchBytes = Math.max(1, options.batchBytes ?? 64 * 1024 * 1024);
    const totalBytes = instances.reduce((s, b) => s + b.length, 0);
    const result: StoreResult = { stored: [], failed: [], warnings: [] };
    let done = 0;
    let doneBytes = 0;
    for (let i = 0; i < instances.length;) {
      const batch: Uint8Array[] = [];
      let size = 0;
      while (i < instances.length && (batch.length === 0 || size + instances[i].length <= batchBytes)) {
        batch.push(instances[i]);
        size += instances[i++].length;
      }
      const boundary = chooseBoundary(batch);
      const pieces = encodeMultipart(batch, 'application/dicom', boundary);
      let body: unknown;
      if (Blob) body = new Blob(pieces, { type: 'multipart/related' });
      else {
        const all = new Uint8Array(pieces.reduce((s, p) => s + p.length, 0));
        let o = 0;
        for (const p of pieces) {
          all.set(p, o);
          o += p.length;
        }
        body = all;
      }
      const res = await this.request(
        url,
        {
          method: 'POST',
          headers: {
            Accept: 'application/dicom+json',
            'Content-Type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
          },
          body,
        },
        options,
        true,
      );
      const text = await this.readText(res, url, options);
      const answer = parseStoreAnswer(text, url);
      result.stored.push(...answer.stored);
      result.failed.push(...answer.failed);
      result.warnings.push(...answer.warnings);
      if (!res.ok && answer.failed.length === 0)
        throw new PacsError(`${res.statusText || 'store failed'}${excerpt(text)}`, url, res.status);
      done += batch.length;
      doneBytes += size;
      options.onProgress?.({ instances: done, totalInstances: instances.length, bytes: doneBytes, totalBytes });
    }
    return result;
  }

  // --- plumbing ----------------------------------------------------------------------------------------

  private async request(
    url: string,
    init: FetchInit,
    options: RequestOptions,
    allowFailureBody = false,
  ): Promise<FetchResponse> {
    if (options.signal?.aborted) throw abortError(options.signal, url);
    let res: FetchResponse;
    try {
      res = await this.fetchFn(url, {
        ...init,
        headers: { ...this.headers, ...(init.headers ?? {}) },
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (e) {
      if (options.signal?.aborted) throw abortError(options.signal, url);
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (e as Error).message;
      throw new PacsError(`could not reach the DICOMweb server (${why})`, url, 0, { cause: e });
    }
    if (!res.ok && !(allowFailureBody && (res.status === 409 || res.status === 202 || res.status === 400))) {
      const text = await res.text().catch(() => '');
      throw new PacsError(`${res.statusText || 'request failed'}${excerpt(text)}`, url, res.status);
    }
    return res;
  }

  private async readText(res: FetchResponse, url: string, options: RequestOptions): Promise<string> {
    try {
      return await res.text();
    } catch (e) {
      if (options.signal?.aborted) throw abortError(options.signal, url);
      throw new PacsError(`the answer broke off (${(e as Error).message})`, url, 0, { cause: e });
    }
  }
}

function excerpt(text: string): string {
  const t = text.replace(/\s+/g, ' ').trim();
  if (!t) return '';
  return `: ${t.length > 300 ? t.slice(0, 300) + '...' : t}`;
}

/** ?key=value&... with repeated keys for arrays; keys and values percent-encoded. */
export function queryString(query: QidoQuery): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === '') continue;
    const values = Array.isArray(v) ? v : [v];
    for (const one of values) parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(one))}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

function parseStoreAnswer(text: string, url: string): StoreResult {
  const out: StoreResult = { stored: [], failed: [], warnings: [] };
  if (text.trim() === '') return out;
  let ds: unknown;
  try {
    ds = JSON.parse(text);
  } catch {
    if (/^\s*</.test(text)) throw new FormatError('the store answer is XML; this client asks for and reads JSON', url);
    throw new FormatError(`the store answer is not JSON${excerpt(text)}`, url);
  }
  const top = (Array.isArray(ds) ? ds[0] : ds) as DicomJson | undefined;
  if (!top || typeof top !== 'object') return out;
  for (const item of (top['00081199']?.Value ?? []) as DicomJson[]) {
    const uid = jsonString(item, '00081155');
    if (uid) out.stored.push(uid);
    const w = jsonString(item, '00081196');
    if (w) out.warnings.push(`${uid ?? '?'}: warning reason ${w}`);
  }
  for (const item of (top['00081198']?.Value ?? []) as DicomJson[]) {
    out.failed.push({
      sopInstanceUid: jsonString(item, '00081155') ?? '',
      reason: Number(jsonString(item, '00081197') ?? 0),
    });
  }
  return out;
}
