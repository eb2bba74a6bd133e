/**
 * Bounded decompression. A hostile gzip/zlib stream can expand a thousandfold or claim a 4 GB size in its
 * trailer, so readers never call fflate's one-shot functions (which allocate from the trailer): they stream,
 * and stop as soon as the output exceeds what the format's header can justify.
 */
import { Gunzip, Inflate, Unzlib } from 'fflate';
import { FormatError, LimitError } from '../errors.js';

/** Deflate's largest possible expansion is about 1032:1; anything claiming more is not a real stream. */
export const MAX_DEFLATE_RATIO = 1032;

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

export interface CappedInflateOptions {
  /** 'gzip' or 'zlib' container, or 'deflate' for a raw RFC 1951 stream. */
  container: 'gzip' | 'zlib' | 'deflate';
  /** Bytes of output needed before `limitFromHead` can be asked (e.g. a header's size). */
  headBytes?: number;
  /** Given the first headBytes of output (or all of it, if shorter), the most output the caller needs. */
  limitFromHead?: (head: Uint8Array) => number;
  /** A hard cap regardless of the header. */
  maxBytes?: number;
  source?: string;
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1 && chunks[0].length === total) return chunks[0];
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    const n = Math.min(c.length, total - o);
    out.set(n === c.length ? c : c.subarray(0, n), o);
    o += n;
    if (o >= total) break;
  }
  return out;
}

/**
 * Inflate at most what the caller needs. Output beyond the limit is discarded without being kept, so
 * memory stays within limit + one chunk. Corrupt streams give a FormatError naming the source.
 */
export function inflateCapped(bytes: Uint8Array, options: CappedInflateOptions): Uint8Array {
  const source = options.source;
  const headBytes = options.headBytes ?? 0;
  const ratioCap = bytes.length * MAX_DEFLATE_RATIO + 65536;
  let limit = Math.min(options.maxBytes ?? Infinity, ratioCap);
  const limitFromHead = options.limitFromHead;
  let limitKnown = !limitFromHead;
  const chunks: Uint8Array[] = [];
  let total = 0;
  let done = false;
  const onData = (chunk: Uint8Array) => {
    if (done) return;
    chunks.push(chunk);
    total += chunk.length;
    if (!limitKnown && limitFromHead && total >= headBytes) {
      const head = concat(chunks, Math.min(total, Math.max(headBytes, 1)));
      limit = Math.min(limit, limitFromHead(head));
      limitKnown = true;
    }
    if (total >= limit) done = true;
  };
  const container = options.container;
  const stream =
    container === 'gzip' ? new Gunzip(onData) : container === 'zlib' ? new Unzlib(onData) : new Inflate(onData);
  const CHUNK = 1 << 16;
  try {
    for (let off = 0; off < bytes.length && !done; off += CHUNK) {
      const end = Math.min(off + CHUNK, bytes.length);
      stream.push(bytes.subarray(off, end), end === bytes.length);
    }
  } catch (err) {
    if (err instanceof LimitError || err instanceof FormatError) throw err;
    // A stream cut short still yields what it decoded so far; the caller's size check reports truncation.
    if (total === 0) throw new FormatError(`corrupt ${options.container} data: ${(err as Error).message}`, source);
  }
  if (!limitKnown && options.limitFromHead) {
    limit = Math.min(limit, options.limitFromHead(concat(chunks, total)));
  }
  return concat(chunks, Math.min(total, limit));
}

/** Where inflateInto puts the payload: output bytes [skip, skip + dest.length) go into dest. */
export interface InflatePlan {
  skip: number;
  dest: Uint8Array;
}

export interface InflateIntoOptions {
  container: 'gzip' | 'zlib';
  /** Output bytes collected before `plan` is asked (fewer when the stream is shorter). */
  headBytes: number;
  /** Given the head, where the payload goes (e.g. into the final voxel array); may throw to refuse. */
  plan: (head: Uint8Array) => InflatePlan;
  source?: string;
}

/** The little-endian uint32 at the end of a gzip member: its uncompressed size mod 2^32 (RFC 1952 ISIZE). */
export function gzipDeclaredSize(bytes: Uint8Array): number | undefined {
  if (!isGzip(bytes) || bytes.length < 18) return undefined;
  const n = bytes.length;
  return (bytes[n - 4] | (bytes[n - 3] << 8) | (bytes[n - 2] << 16) | (bytes[n - 1] << 24)) >>> 0;
}

/**
 * Inflate straight into the caller's array: the head is kept, then only the bytes `plan` asks for are
 * copied as they stream out, and inflation stops once dest is full. Peak memory is dest plus one chunk.
 * Returns how many bytes of dest were filled. A stream that ends early (no gzip end) is "truncated gzip
 * data" when the head or the payload is incomplete; bytes that are not a stream are "not gzip data".
 */
export function inflateInto(bytes: Uint8Array, options: InflateIntoOptions): { head: Uint8Array; filled: number } {
  const { source, container } = options;
  if (bytes.length === 0) throw new FormatError('empty file', source);
  if (container === 'gzip' && !isGzip(bytes)) throw new FormatError('not gzip data (no 1f 8b magic)', source);
  const head = new Uint8Array(options.headBytes);
  let headLen = 0;
  let plan: InflatePlan | undefined;
  let filled = 0;
  let done = false;
  let ended = false;
  let pos = 0;
  const copy = (src: Uint8Array, at: number) => {
    if (!plan) return;
    const from = Math.max(at, plan.skip),
      to = Math.min(at + src.length, plan.skip + plan.dest.length);
    if (to > from) {
      plan.dest.set(src.subarray(from - at, to - at), from - plan.skip);
      filled += to - from;
    }
    if (filled === plan.dest.length) done = true;
  };
  const makePlan = () => {
    plan = options.plan(head.subarray(0, headLen));
    copy(head.subarray(0, headLen), 0);
  };
  const onData = (chunk: Uint8Array, final: boolean) => {
    if (final) ended = true;
    const at0 = pos;
    pos += chunk.length;
    if (done) return;
    let rest = chunk;
    let at = at0;
    if (headLen < head.length) {
      const n = Math.min(head.length - headLen, rest.length);
      head.set(rest.subarray(0, n), headLen);
      headLen += n;
      rest = rest.subarray(n);
      at += n;
      if (headLen === head.length) makePlan();
    }
    if (plan && rest.length > 0) copy(rest, at);
  };
  if (head.length === 0) makePlan();
  const stream = container === 'gzip' ? new Gunzip(onData) : new Unzlib(onData);
  let members = 0;
  if (stream instanceof Gunzip) stream.onmember = () => void members++;
  // Small input chunks: 4 KB of deflate inflates to 4 MB at most, so no output chunk is large.
  const CHUNK = 1 << 12;
  let consumed = false;
  try {
    for (let off = 0; off < bytes.length && !done; off += CHUNK) {
      const end = Math.min(off + CHUNK, bytes.length);
      stream.push(bytes.subarray(off, end), end === bytes.length);
      consumed = end === bytes.length;
    }
  } catch (err) {
    if (err instanceof LimitError || err instanceof FormatError) throw err;
    const msg = (err as Error).message;
    if (!/unexpected EOF/i.test(msg)) throw new FormatError(`corrupt ${container} data: ${msg}`, source);
    ended = false;
  }
  // fflate does not check a gzip end: a stream cut inside a stored block "ends" with made-up output.
  // With all of it inflated, the output must match the trailer's ISIZE (one member only: ISIZE is per member).
  const isize = gzipDeclaredSize(bytes);
  if (consumed && ended && container === 'gzip' && members <= 1 && isize !== undefined && pos % 2 ** 32 !== isize) {
    throw new FormatError(`truncated gzip data: the stream gives ${pos} bytes, its trailer says ${isize}`, source);
  }
  if (!plan && !ended && headLen < head.length) {
    throw new FormatError(`truncated ${container} data: the stream ends after ${pos} bytes of output`, source);
  }
  if (!plan) makePlan();
  const want = plan?.dest.length ?? 0;
  if (filled < want && !ended) {
    const why = `${filled} of ${want} payload bytes before the stream ends`;
    throw new FormatError(`truncated ${container} data: ${why}`, source);
  }
  return { head: head.subarray(0, headLen), filled };
}
