/**
 * multipart/related (RFC 2387 over RFC 2046 multipart syntax), as DICOMweb uses it: a streaming parser
 * that takes the body in chunks of any size, boundaries split across chunks included, and hands each part
 * over as soon as it is complete; and the encoder STOW-RS sends.
 *
 * The parser does not copy the stream: a part that lies within one chunk is a view on it, one that spans
 * chunks is joined once. A part with a Content-Length header is taken by length (then the delimiter must
 * follow); otherwise the delimiter is searched for, scanning for its first byte with the engine's native
 * indexOf.
 */
import { FormatError, LimitError } from '../errors.js';

export interface MultipartPart {
  /** Header names in lower case. */
  headers: Record<string, string>;
  body: Uint8Array;
}

export interface MultipartParserOptions {
  /** Largest part accepted (bytes); a bigger one is a LimitError. Default 2 GiB. */
  maxPartBytes?: number;
  /** Largest header block of a part (bytes). Default 16 KiB. */
  maxHeaderBytes?: number;
  /** Names the stream in errors (e.g. the URL). */
  source?: string;
}

const CR = 13;
const LF = 10;
const DASH = 45;

function ascii(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0x7f;
  return out;
}

function boundaryBytes(s: string, source?: string): Uint8Array {
  if (!/^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/.test(s))
    throw new FormatError(`multipart boundary "${s}" is not 1-70 of the characters RFC 2046 allows`, source);
  return ascii(s);
}

/** The boundary parameter of a multipart Content-Type header (quoted or not), or undefined. */
export function multipartBoundary(contentType: string | null | undefined): string | undefined {
  if (!contentType || !/^\s*multipart\//i.test(contentType)) return undefined;
  const m = /;\s*boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return m ? (m[1] ?? m[2]) : undefined;
}

type State = 'preamble' | 'afterDelimiter' | 'headers' | 'body' | 'done';

/**
 * Streaming multipart parser. push(chunk) as bytes arrive (parts are handed to onPart synchronously,
 * in order), end() when the stream ends (throws if the closing delimiter was not seen).
 */
export class MultipartParser {
  private readonly delimiter: Uint8Array; // CRLF "--" boundary
  private readonly maxPart: number;
  private readonly maxHeader: number;
  private readonly source: string | undefined;
  private state: State = 'preamble';
  /** Bytes not yet consumed: a list of chunks (views), the first starting at `offset`. */
  private chunks: Uint8Array[] = [];
  private offset = 0;
  private buffered = 0;
  private headers: Record<string, string> = {};
  private expectLength = -1;
  private partsSeen = 0;
  /** Buffered position from which the delimiter search resumes (earlier bytes start no delimiter). */
  private searchFrom = 0;

  constructor(
    boundary: string,
    private readonly onPart: (part: MultipartPart) => void,
    options: MultipartParserOptions = {},
  ) {
    boundaryBytes(boundary, options.source);
    this.delimiter = ascii(`\r\n--${boundary}`);
    this.maxPart = options.maxPartBytes ?? 2 ** 31;
    this.maxHeader = options.maxHeaderBytes ?? 16384;
    this.source = options.source;
    // The first delimiter may open the body without a CRLF before it: act as if one were there.
    this.append(new Uint8Array([CR, LF]));
  }

  /** Parts handed over so far. */
  get parts(): number {
    return this.partsSeen;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (this.state === 'done') return; // epilogue: ignored
    this.append(chunk);
    this.run();
  }

  end(): void {
    if (this.state !== 'done')
      throw new FormatError(
        `multipart body ended before its closing boundary (${this.partsSeen} complete parts)`,
        this.source,
      );
  }

  private append(chunk: Uint8Array) {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** Byte at position p of the buffered bytes. */
  private byteAt(p: number): number {
    let i = 0;
    p += this.offset;
    while (p >= this.chunks[i].length) p -= this.chunks[i++].length;
    return this.chunks[i][p];
  }

  /** Copy (or view, when within one chunk) of buffered bytes [from, to). */
  private slice(from: number, to: number): Uint8Array {
    let i = 0;
    let p = from + this.offset;
    while (i < this.chunks.length && p >= this.chunks[i].length) p -= this.chunks[i++].length;
    const len = to - from;
    if (len === 0) return new Uint8Array(0);
    if (p + len <= this.chunks[i].length) return this.chunks[i].subarray(p, p + len);
    const out = new Uint8Array(len);
    let o = 0;
    while (o < len) {
      const c = this.chunks[i++];
      const n = Math.min(c.length - p, len - o);
      out.set(c.subarray(p, p + n), o);
      o += n;
      p = 0;
    }
    return out;
  }

  /** Drop the first n buffered bytes. */
  private consume(n: number) {
    this.buffered -= n;
    this.searchFrom = Math.max(0, this.searchFrom - n);
    n += this.offset;
    let i = 0;
    while (i < this.chunks.length && n >= this.chunks[i].length) n -= this.chunks[i++].length;
    this.chunks = i > 0 ? this.chunks.slice(i) : this.chunks;
    this.offset = n;
  }

  /** Index of the first delimiter at or after `from`, or -1 when absent from the buffered bytes. */
  private findDelimiter(from: number): number {
    const d = this.delimiter;
    const dl = d.length;
    // Walk the chunks, scanning each for CR natively, and compare the rest across chunk joins.
    let base = -this.offset; // buffered position of the current chunk's byte 0
    for (let ci = 0; ci < this.chunks.length; ci++) {
      const c = this.chunks[ci];
      let start = Math.max(0, from - base);
      while (start < c.length) {
        const k = c.indexOf(CR, start);
        if (k < 0) break;
        const pos = base + k;
        if (pos + dl > this.buffered) {
          this.searchFrom = pos; // possibly a partial delimiter at the end: wait for more
          return -1;
        }
        let ok = true;
        if (k + dl <= c.length) {
          for (let t = 1; t < dl; t++)
            if (c[k + t] !== d[t]) {
              ok = false;
              break;
            }
        } else {
          for (let t = 1; t < dl; t++)
            if (this.byteAt(pos + t) !== d[t]) {
              ok = false;
              break;
            }
        }
        if (ok) return pos;
        start = k + 1;
      }
      base += c.length;
    }
    this.searchFrom = this.buffered;
    return -1;
  }

  private run() {
    for (;;) {
      if (this.state === 'preamble' || this.state === 'body') {
        let at: number;
        if (this.state === 'body' && this.expectLength >= 0) {
          if (this.buffered < this.expectLength + this.delimiter.length) {
            this.checkPartSize(this.buffered);
            return;
          }
          at = this.expectLength;
          for (let t = 0; t < this.delimiter.length; t++)
            if (this.byteAt(at + t) !== this.delimiter[t])
              throw new FormatError(
                `multipart part ${this.partsSeen + 1}: its Content-Length (${at}) is not followed by the boundary`,
                this.source,
              );
        } else {
          at = this.findDelimiter(this.searchFrom);
          if (at < 0) {
            if (this.state === 'body') this.checkPartSize(this.buffered - this.delimiter.length);
            else if (this.buffered > 1 << 20) this.consume(this.searchFrom); // a long preamble: drop what is searched
            return;
          }
        }
        if (this.state === 'body') {
          this.checkPartSize(at);
          const body = this.slice(0, at);
          const headers = this.headers;
          this.partsSeen++;
          this.consume(at + this.delimiter.length);
          this.headers = {};
          this.expectLength = -1;
          this.state = 'afterDelimiter';
          this.onPart({ headers, body });
        } else {
          this.consume(at + this.delimiter.length);
          this.state = 'afterDelimiter';
        }
      } else if (this.state === 'afterDelimiter') {
        // "--" closes; otherwise optional transport padding (spaces, tabs) then CRLF.
        if (this.buffered < 2) return;
        if (this.byteAt(0) === DASH && this.byteAt(1) === DASH) {
          this.state = 'done';
          this.chunks = [];
          this.buffered = 0;
          this.offset = 0;
          return;
        }
        let p = 0;
        while (p < this.buffered && (this.byteAt(p) === 32 || this.byteAt(p) === 9)) p++;
        if (p + 2 > this.buffered) {
          if (p > 1024) throw new FormatError('multipart: padding after a boundary is too long', this.source);
          return;
        }
        if (this.byteAt(p) !== CR || this.byteAt(p + 1) !== LF)
          throw new FormatError(
            `multipart: the boundary before part ${this.partsSeen + 1} is not followed by a line break`,
            this.source,
          );
        this.consume(p + 2);
        this.state = 'headers';
      } else if (this.state === 'headers') {
        const end = this.findHeaderEnd();
        if (end < 0) {
          if (this.buffered > this.maxHeader)
            throw new LimitError(
              `multipart part ${this.partsSeen + 1}: header block over ${this.maxHeader} bytes`,
              this.source,
            );
          return;
        }
        const text = String.fromCharCode(...this.slice(0, end));
        this.consume(end + 2);
        this.headers = parseHeaders(text);
        const cl = this.headers['content-length'];
        this.expectLength = -1;
        if (cl !== undefined) {
          if (!/^\d+$/.test(cl.trim()))
            throw new FormatError(
              `multipart part ${this.partsSeen + 1}: Content-Length "${cl}" is not a number`,
              this.source,
            );
          this.expectLength = Number(cl);
          this.checkPartSize(this.expectLength);
        }
        this.searchFrom = 0;
        this.state = 'body';
      } else {
        return;
      }
    }
  }

  /**
   * Position of the empty line that ends the headers: the index of the CRLF that follows the last header
   * line's CRLF (so headers are [0, end) and the body starts at end + 2), or -1.
   */
  private findHeaderEnd(): number {
    const n = Math.min(this.buffered, this.maxHeader + 4);
    // An empty header block: the body starts right after one CRLF.
    if (n >= 2 && this.byteAt(0) === CR && this.byteAt(1) === LF) return 0;
    for (let p = 0; p + 3 < n; p++) {
      if (this.byteAt(p) === CR && this.byteAt(p + 1) === LF && this.byteAt(p + 2) === CR && this.byteAt(p + 3) === LF)
        return p + 2;
    }
    return -1;
  }

  private checkPartSize(n: number) {
    if (n > this.maxPart)
      throw new LimitError(`multipart part ${this.partsSeen + 1} is over ${this.maxPart} bytes`, this.source);
  }
}

function parseHeaders(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\r\n')) {
    if (line === '') continue;
    const c = line.indexOf(':');
    if (c <= 0) continue;
    out[line.slice(0, c).trim().toLowerCase()] = line.slice(c + 1).trim();
  }
  return out;
}

/** A boundary of 32 random hex digits that occurs in none of the given parts. */
export function chooseBoundary(parts: readonly Uint8Array[], random: () => number = Math.random): string {
  for (;;) {
    let b = 'corridor-';
    for (let i = 0; i < 32; i++) b += Math.floor(random() * 16).toString(16);
    const needle = ascii(`--${b}`);
    if (!parts.some((p) => contains(p, needle))) return b;
  }
}

function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  const first = needle[0];
  let k = hay.indexOf(first);
  while (k >= 0 && k + needle.length <= hay.length) {
    let ok = true;
    for (let t = 1; t < needle.length; t++)
      if (hay[k + t] !== needle[t]) {
        ok = false;
        break;
      }
    if (ok) return true;
    k = hay.indexOf(first, k + 1);
  }
  return false;
}

/**
 * The pieces of a multipart/related body (to be sent as a Blob or concatenated): each part with its
 * Content-Type (and Content-Length), the closing delimiter last.
 */
export function encodeMultipart(parts: readonly Uint8Array[], contentType: string, boundary: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const p of parts) {
    out.push(ascii(`--${boundary}\r\nContent-Type: ${contentType}\r\nContent-Length: ${p.length}\r\n\r\n`));
    out.push(p);
    out.push(ascii('\r\n'));
  }
  out.push(ascii(`--${boundary}--\r\n`));
  return out;
}
