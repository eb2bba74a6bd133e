/**
 * Bounded decompression. A hostile gzip/zlib stream can expand a thousandfold or claim a 4 GB size in its
 * trailer, so readers never call fflate's one-shot functions (which allocate from the trailer): they stream,
 * and stop as soon as the output exceeds what the format's header can justify.
 */
import { Gunzip, Unzlib } from 'fflate';
import { FormatError, LimitError } from '../errors.js';

/** Deflate's largest possible expansion is about 1032:1; anything claiming more is not a real stream. */
export const MAX_DEFLATE_RATIO = 1032;

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

export interface CappedInflateOptions {
  /** 'gzip' or 'zlib' container. */
  container: 'gzip' | 'zlib';
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
  let limitKnown = !options.limitFromHead;
  const chunks: Uint8Array[] = [];
  let total = 0;
  let done = false;
  const onData = (chunk: Uint8Array) => {
    if (done) return;
    chunks.push(chunk);
    total += chunk.length;
    if (!limitKnown && total >= headBytes) {
      const head = concat(chunks, Math.min(total, Math.max(headBytes, 1)));
      limit = Math.min(limit, options.limitFromHead!(head));
      limitKnown = true;
    }
    if (total >= limit) done = true;
  };
  const stream = options.container === 'gzip' ? new Gunzip(onData) : new Unzlib(onData);
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
