/**
 * Bounded decompression. A hostile gzip/zlib stream can expand a thousandfold or claim a 4 GB size in its
 * trailer, so readers never call fflate's one-shot functions (which allocate from the trailer): they stream,
 * and stop as soon as the output exceeds what the format's header can justify.
 */
import { Gunzip, Inflate, Unzlib, gunzipSync } from 'fflate';
import { FormatError, LimitError } from '../errors.js';
import { Adler32, Crc32, crc32 } from './checksum.js';

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
  /**
   * Check the trailer (gzip CRC-32 and ISIZE, zlib Adler-32) when the whole stream inflates, inflating up
   * to 1 MiB past the limit to reach it (default true); false for a peek at the head (sniffing).
   */
  verify?: boolean;
  source?: string;
}

const hex = (x: number) => `0x${x.toString(16).padStart(8, '0')}`;
const u32le = (b: Uint8Array, o: number) => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
const u32be = (b: Uint8Array, o: number) => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;

/**
 * The checks of a container's trailers over the output as it streams: each gzip member's CRC-32 and ISIZE
 * (RFC 1952), a zlib stream's Adler-32 (RFC 1950). A member's trailer is the 8 bytes before the next
 * member (fflate's onmember gives its offset) or the last 8 bytes of the input; call end() only once the
 * whole input was inflated. Raw deflate carries no checksum.
 */
class TrailerCheck {
  private crc = new Crc32();
  private adler = new Adler32();
  private size = 0;
  private member = 0;
  constructor(
    private readonly container: 'gzip' | 'zlib' | 'deflate',
    private readonly bytes: Uint8Array,
    private readonly source: string | undefined,
  ) {}
  data(chunk: Uint8Array): void {
    if (this.container === 'gzip') this.crc.update(chunk);
    else if (this.container === 'zlib') this.adler.update(chunk);
    this.size += chunk.length;
  }
  /** A new gzip member starts at input offset `offset`: the previous one's trailer lies just before it. */
  nextMember(offset: number): void {
    this.verifyGzip(offset - 8);
    this.crc = new Crc32();
    this.size = 0;
    this.member++;
  }
  end(): void {
    const n = this.bytes.length;
    if (this.container === 'gzip') this.verifyGzip(n - 8);
    else if (this.container === 'zlib' && n >= 6) {
      const stored = u32be(this.bytes, n - 4),
        computed = this.adler.value();
      if (stored !== computed) {
        throw new FormatError(
          `corrupt zlib data: Adler-32 mismatch (trailer ${hex(stored)}, data ${hex(computed)})`,
          this.source,
        );
      }
    }
  }
  private verifyGzip(at: number): void {
    if (at < 10) return; // no room for a header and a trailer: fflate has refused such a stream already
    const which = this.member > 0 ? ` of member ${this.member + 1}` : '';
    const isize = u32le(this.bytes, at + 4);
    if (this.size % 2 ** 32 !== isize) {
      throw new FormatError(
        `truncated gzip data: the stream gives ${this.size} bytes, its trailer${which} says ${isize}`,
        this.source,
      );
    }
    const stored = u32le(this.bytes, at),
      computed = this.crc.value();
    if (stored !== computed) {
      throw new FormatError(
        `corrupt gzip data: CRC mismatch${which} (trailer ${hex(stored)}, data ${hex(computed)})`,
        this.source,
      );
    }
  }
}

/**
 * Output a stream may give beyond what the caller keeps (trailing data after a payload), still inflated so
 * that the trailer can be checked; a longer tail is discarded unchecked.
 */
const CHECKED_TAIL_BYTES = 1 << 20;

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
  let ended = false;
  const check = new TrailerCheck(options.container, bytes, source);
  let tail = 0;
  let stop = false;
  const verify = (options.verify ?? true) && options.container !== 'deflate'; // raw deflate has no trailer
  const onData = (chunk: Uint8Array, final: boolean) => {
    if (final) ended = true;
    if (done) {
      // Past the limit: inflated only to reach the trailer (verify), never kept.
      tail += chunk.length;
      if (!verify || tail > CHECKED_TAIL_BYTES) stop = true;
      else check.data(chunk);
      return;
    }
    check.data(chunk);
    chunks.push(chunk);
    total += chunk.length;
    if (!limitKnown && limitFromHead && total >= headBytes) {
      const head = concat(chunks, Math.min(total, Math.max(headBytes, 1)));
      limit = Math.min(limit, limitFromHead(head));
      limitKnown = true;
    }
    if (total >= limit) {
      done = true;
      if (!verify) stop = true;
    }
  };
  const container = options.container;
  const stream =
    container === 'gzip' ? new Gunzip(onData) : container === 'zlib' ? new Unzlib(onData) : new Inflate(onData);
  if (stream instanceof Gunzip) stream.onmember = (offset) => check.nextMember(offset);
  // 4 KB of input inflates to 4 MB at most, so no output chunk (garbage once copied) is large.
  const CHUNK = 1 << 12;
  let consumed = false;
  try {
    for (let off = 0; off < bytes.length && !stop; off += CHUNK) {
      const end = Math.min(off + CHUNK, bytes.length);
      stream.push(bytes.subarray(off, end), end === bytes.length);
      consumed = end === bytes.length;
    }
  } catch (err) {
    if (err instanceof LimitError || err instanceof FormatError) throw err;
    // A stream cut short still yields what it decoded so far; the caller's size check reports truncation.
    if (total === 0) throw new FormatError(`corrupt ${options.container} data: ${(err as Error).message}`, source);
    consumed = false;
  }
  // All of it inflated: the trailer must match what came out.
  if (verify && consumed && ended && !stop) check.end();
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
  let payloadEnd = 0;
  let done = false;
  let ended = false;
  let stop = false;
  let pos = 0;
  const check = new TrailerCheck(container, bytes, source);
  const copy = (src: Uint8Array, at: number) => {
    if (!plan) return;
    const from = Math.max(at, plan.skip),
      to = Math.min(at + src.length, plan.skip + plan.dest.length);
    if (to > from) {
      plan.dest.set(src.subarray(from - at, to - at), from - plan.skip);
      filled += to - from;
    }
    if (filled === plan.dest.length) {
      done = true;
      payloadEnd = plan.skip + plan.dest.length;
    }
  };
  const makePlan = () => {
    plan = options.plan(head.subarray(0, headLen));
    copy(head.subarray(0, headLen), 0);
  };
  const onData = (chunk: Uint8Array, final: boolean) => {
    if (final) ended = true;
    const at0 = pos;
    pos += chunk.length;
    if (done) {
      // The payload is complete: what follows is inflated only to reach the trailer, and not kept.
      if (pos - payloadEnd > CHECKED_TAIL_BYTES) stop = true;
      else check.data(chunk);
      return;
    }
    check.data(chunk);
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
  if (stream instanceof Gunzip) stream.onmember = (offset) => (stop ? undefined : check.nextMember(offset));
  // Small input chunks: 4 KB of deflate inflates to 4 MB at most, so no output chunk is large.
  const CHUNK = 1 << 12;
  let consumed = false;
  try {
    for (let off = 0; off < bytes.length && !stop; off += CHUNK) {
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
  // fflate checks neither a gzip end nor a checksum: a stream cut inside a stored block "ends" with made-up
  // output, and a flipped bit may still inflate. With all of it inflated, each member's ISIZE and CRC-32
  // (gzip) or the Adler-32 (zlib) must match what came out.
  if (consumed && ended && !stop) check.end();
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

/**
 * A one-member gzip stream whose trailer says it holds exactly `size` bytes, inflated in one pass straight
 * into a new array of that size (no output chunks, no garbage: peak memory is the input plus the array),
 * its CRC-32 then checked. Null when the stream does not give exactly that (several members, a trailer
 * that does not match, a stream that ends early or breaks): the caller then streams with inflateInto,
 * which reports each of those with its own error, so nothing is lost by falling back.
 */
export function gunzipExact(bytes: Uint8Array, size: number, source?: string): Uint8Array | null {
  if (!isGzip(bytes) || size >= 2 ** 32 || gzipDeclaredSize(bytes) !== size) return null;
  const out = new Uint8Array(size);
  let got: Uint8Array;
  try {
    got = gunzipSync(bytes, { out });
  } catch {
    return null; // a broken stream: inflateInto says how
  }
  if (got.length !== size || got.buffer !== out.buffer) return null;
  const stored = u32le(bytes, bytes.length - 8),
    computed = crc32(out);
  if (stored !== computed) {
    throw new FormatError(`corrupt gzip data: CRC mismatch (trailer ${hex(stored)}, data ${hex(computed)})`, source);
  }
  return out;
}
