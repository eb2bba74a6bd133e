/**
 * DICOM Part 10 parsing: the file meta is read here (so files with a missing transfer syntax, no meta
 * group length or no preamble can still be read), the data set by dicom-parser (lazy: element offsets,
 * no copies), wrapped in a typed accessor that reports bad values as FormatError naming the file and tag.
 */
import dicomParser from 'dicom-parser';
import { Inflate } from 'fflate';
import { CorridorError, FormatError, LimitError } from '../../errors.js';
import { SEQUENCE_TAGS, TAG, TS } from './tags.js';

type RawDataSet = dicomParser.DataSet;
type RawElement = dicomParser.Element;

/** Largest inflated size of a deflated data set: far above any real image, low enough to stop a zip bomb. */
export const MAX_INFLATED_BYTES = 1024 * 1024 * 1024;

/** Tag key 'x00280010' -> '(0028,0010)' for messages. */
export function tagLabel(tag: string): string {
  const hex = tag.startsWith('x') ? tag.slice(1) : tag;
  return `(${hex.slice(0, 4).toUpperCase()},${hex.slice(4, 8).toUpperCase()})`;
}

const TAG_NAMES: Record<string, string> = Object.fromEntries(Object.entries(TAG).map(([k, v]) => [v, k]));

function describeTag(tag: string): string {
  const name = TAG_NAMES[tag];
  return name ? `${name} ${tagLabel(tag)}` : tagLabel(tag);
}

/** Decode bytes as UTF-8 (invalid sequences become U+FFFD); core has no TextDecoder in its typings. */
export function decodeUtf8(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  const n = bytes.length;
  while (i < n) {
    const b = bytes[i++];
    let cp: number;
    if (b < 0x80) cp = b;
    else if (b >= 0xc2 && b < 0xe0 && i < n && (bytes[i] & 0xc0) === 0x80) cp = ((b & 0x1f) << 6) | (bytes[i++] & 0x3f);
    else if (b >= 0xe0 && b < 0xf0 && i + 1 < n && (bytes[i] & 0xc0) === 0x80 && (bytes[i + 1] & 0xc0) === 0x80) {
      cp = ((b & 0x0f) << 12) | ((bytes[i] & 0x3f) << 6) | (bytes[i + 1] & 0x3f);
      i += 2;
    } else if (
      b >= 0xf0 &&
      b < 0xf5 &&
      i + 2 < n &&
      (bytes[i] & 0xc0) === 0x80 &&
      (bytes[i + 1] & 0xc0) === 0x80 &&
      (bytes[i + 2] & 0xc0) === 0x80
    ) {
      cp = ((b & 0x07) << 18) | ((bytes[i] & 0x3f) << 12) | ((bytes[i + 1] & 0x3f) << 6) | (bytes[i + 2] & 0x3f);
      i += 3;
    } else cp = 0xfffd;
    out += String.fromCodePoint(cp);
  }
  return out;
}

/** Bytes as ISO 8859-1 (each byte one character), in chunks so long values stay within argument limits. */
function latin1(bytes: Uint8Array): string {
  const CHUNK = 4096;
  if (bytes.length <= CHUNK) return String.fromCharCode.apply(null, bytes as unknown as number[]);
  let out = '';
  for (let p = 0; p < bytes.length; p += CHUNK)
    out += String.fromCharCode.apply(null, bytes.subarray(p, p + CHUNK) as unknown as number[]);
  return out;
}

/** Encode a string as UTF-8. */
export function encodeUtf8(text: string): Uint8Array {
  const out: number[] = [];
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0xfffd; // never undefined: `ch` is one code point
    if (cp < 0x80) out.push(cp);
    else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
    else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
    else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
  }
  return Uint8Array.from(out);
}

/**
 * A parsed DICOM data set (or a sequence item) with typed accessors. Values are read lazily from the
 * file's bytes; nothing here copies pixel data.
 */
export class DicomDataset {
  constructor(
    /** The file name, for messages. */
    readonly name: string,
    /** Transfer syntax of the pixel data (from the file meta, or guessed: see warnings). */
    readonly transferSyntaxUid: string,
    /** dicom-parser's data set, for callers that need an element's offsets. */
    readonly raw: RawDataSet,
    /** Recoverable problems met while parsing. Shared with items of this data set. */
    readonly warnings: string[],
    private readonly utf8: boolean,
  ) {}

  /** The bytes that element offsets refer to (the inflated bytes for a deflated file). */
  get bytes(): Uint8Array {
    return this.raw.byteArray as Uint8Array;
  }

  get littleEndian(): boolean {
    return this.transferSyntaxUid !== TS.ExplicitBig;
  }

  element(tag: string): RawElement | undefined {
    return this.raw.elements[tag];
  }

  has(tag: string): boolean {
    const e = this.raw.elements[tag];
    return e !== undefined && e.length > 0;
  }

  /** Whole string value with trailing padding removed (multiple values stay joined by backslashes). */
  string(tag: string): string | undefined {
    const e = this.raw.elements[tag];
    if (!e || e.length <= 0) return undefined;
    const bytes = this.bytes;
    let end = Math.min(e.dataOffset + e.length, bytes.length);
    let start = e.dataOffset;
    if (start < 0 || start >= end) return undefined;
    // Padding is a trailing NUL (UI) or spaces; an embedded NUL ends the value as in dicom-parser.
    // Trimmed on the bytes (a space byte never occurs inside a UTF-8 sequence), so no regex or
    // per-character concatenation: slicesOf reads several of these per file.
    const nul = bytes.subarray(start, end).indexOf(0);
    if (nul >= 0) end = start + nul;
    while (end > start && bytes[end - 1] === 0x20) end--;
    while (start < end && bytes[start] === 0x20) start++;
    if (start === end) return undefined;
    const slice = bytes.subarray(start, end);
    if (this.utf8) return decodeUtf8(slice);
    return latin1(slice);
  }

  strings(tag: string): string[] | undefined {
    const s = this.string(tag);
    return s === undefined ? undefined : s.split('\\').map((v) => v.trim());
  }

  /** All numeric values of a DS or IS element; FormatError when one is not a number. */
  numbers(tag: string): number[] | undefined {
    const s = this.string(tag);
    if (s === undefined) return undefined;
    const out: number[] = [];
    for (let from = 0; ;) {
      const bs = s.indexOf('\\', from);
      const part = (bs < 0 ? s.slice(from) : s.slice(from, bs)).trim();
      const v = part === '' ? NaN : Number(part);
      if (!Number.isFinite(v)) {
        throw new FormatError(`${describeTag(tag)} value '${s}' is not a list of numbers`, this.name);
      }
      out.push(v);
      if (bs < 0) return out;
      from = bs + 1;
    }
  }

  /** First numeric value of a DS or IS element (undefined when absent or empty). */
  number(tag: string): number | undefined {
    const v = this.numbers(tag);
    return v ? v[0] : undefined;
  }

  /** numbers() with a required count: FormatError when the element has another number of values. */
  vector(tag: string, count: number): number[] | undefined {
    const v = this.numbers(tag);
    if (v === undefined) return undefined;
    if (v.length !== count) {
      throw new FormatError(`${describeTag(tag)} has ${v.length} values, expected ${count}`, this.name);
    }
    return v;
  }

  /** An unsigned 16-bit value (VR US), checked to be within the bytes. */
  uint16(tag: string): number | undefined {
    const e = this.raw.elements[tag];
    if (!e || e.length < 2) return undefined;
    if (e.dataOffset + 2 > this.bytes.length)
      throw new FormatError(`${describeTag(tag)} lies past the end of the file`, this.name);
    return this.raw.uint16(tag);
  }

  /**
   * An unsigned integer read as its element is encoded: 32 bits for VR UL (or, with implicit VR, a
   * 4-byte value), 16 bits for VR US or a 2-byte value. For attributes such as Rows that the standard
   * makes US but that some writers send as UL, whose low 16 bits alone would be a wrong, plausible size.
   */
  unsigned(tag: string): number | undefined {
    const e = this.raw.elements[tag];
    if (!e) return undefined;
    const wide = e.vr === 'UL' || (e.vr === undefined && e.length === 4);
    if (!wide) return this.uint16(tag);
    if (e.length < 4) return undefined;
    if (e.dataOffset + 4 > this.bytes.length)
      throw new FormatError(`${describeTag(tag)} lies past the end of the file`, this.name);
    return this.raw.uint32(tag);
  }

  /**
   * The same data set holding only the given elements (sharing the file's bytes and the warnings), for
   * callers that keep many parsed files alive at once and need only a few of their attributes.
   */
  retaining(tags: readonly string[]): DicomDataset {
    const elements: Record<string, RawElement> = {};
    for (const tag of tags) {
      const e = this.raw.elements[tag];
      if (e) elements[tag] = e;
    }
    // dicom-parser's accessors live on the data set's prototype; copy the fields, swap the elements.
    const raw = Object.assign(Object.create(Object.getPrototypeOf(this.raw) as object) as RawDataSet, this.raw, {
      elements,
    });
    return new DicomDataset(this.name, this.transferSyntaxUid, raw, this.warnings, this.utf8);
  }

  /** Items of a sequence (empty when absent). */
  sequence(tag: string): DicomDataset[] {
    const e = this.raw.elements[tag];
    if (!e || !e.items) return [];
    const out: DicomDataset[] = [];
    for (const item of e.items) {
      if (item.dataSet)
        out.push(new DicomDataset(this.name, this.transferSyntaxUid, item.dataSet, this.warnings, this.utf8));
    }
    return out;
  }

  /** First item of a sequence, if any. */
  item(tag: string): DicomDataset | undefined {
    return this.sequence(tag)[0];
  }
}

interface MetaInfo {
  /** Whether a group 0002 file meta was found (after the preamble, or at byte 0 of a file without one). */
  found: boolean;
  transferSyntaxUid: string | undefined;
  datasetStart: number;
  warnings: string[];
}

const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const ALL_VRS = new Set([
  'AE',
  'AS',
  'AT',
  'CS',
  'DA',
  'DS',
  'DT',
  'FD',
  'FL',
  'IS',
  'LO',
  'LT',
  'PN',
  'SH',
  'SL',
  'SS',
  'ST',
  'TM',
  'UI',
  'UL',
  'US',
  ...LONG_VRS,
]);

function u16le(b: Uint8Array, p: number): number {
  return b[p] | (b[p + 1] << 8);
}
function u16be(b: Uint8Array, p: number): number {
  return (b[p] << 8) | b[p + 1];
}
function u32le(b: Uint8Array, p: number): number {
  return (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
}
function vrAt(b: Uint8Array, p: number): string {
  return String.fromCharCode(b[p], b[p + 1]);
}

function hasDicmPrefix(bytes: Uint8Array): boolean {
  return (
    bytes.length >= 132 && bytes[128] === 0x44 && bytes[129] === 0x49 && bytes[130] === 0x43 && bytes[131] === 0x4d
  );
}

/** Whether the bytes start with a group 0002 element in explicit VR little endian (a meta without preamble). */
function startsWithMeta(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && u16le(bytes, 0) === 0x0002 && ALL_VRS.has(vrAt(bytes, 4));
}

/**
 * Reads the group 0002 elements after the preamble (or at byte 0 when a file without preamble starts
 * with them) without trusting the group length.
 */
function readMeta(bytes: Uint8Array, name: string): MetaInfo {
  const warnings: string[] = [];
  let p: number;
  if (hasDicmPrefix(bytes)) p = 132;
  else if (startsWithMeta(bytes)) p = 0;
  else return { found: false, transferSyntaxUid: undefined, datasetStart: 0, warnings };
  let ts: string | undefined;
  while (p + 8 <= bytes.length && u16le(bytes, p) === 0x0002) {
    const element = u16le(bytes, p + 2);
    const vr = vrAt(bytes, p + 4);
    let length: number;
    let valueStart: number;
    if (!ALL_VRS.has(vr))
      throw new FormatError(
        `file meta element (0002,${element.toString(16).padStart(4, '0')}) has no valid VR: the file meta must ` +
          `be explicit VR little endian`,
        name,
      );
    if (LONG_VRS.has(vr)) {
      if (p + 12 > bytes.length) break;
      length = u32le(bytes, p + 8);
      valueStart = p + 12;
    } else {
      length = u16le(bytes, p + 6);
      valueStart = p + 8;
    }
    if (length === 0xffffffff || valueStart + length > bytes.length) {
      throw new FormatError(
        `file meta element (0002,${element.toString(16).padStart(4, '0')}) is truncated or has an undefined length`,
        name,
      );
    }
    if (element === 0x0010) {
      let s = '';
      for (let i = 0; i < length; i++) s += String.fromCharCode(bytes[valueStart + i]);
      ts = s.replace(/[\0 ]+$/, '').trim() || undefined;
    }
    p = valueStart + length;
  }
  return { found: true, transferSyntaxUid: ts, datasetStart: p, warnings };
}

interface Sniffed {
  explicit: boolean;
  littleEndian: boolean;
}

/** Guesses the encoding of a data set from its first element; undefined when it does not look like DICOM. */
/** `total`: the whole file's length, when `bytes` is only its head. */
function sniffDataset(bytes: Uint8Array, p: number, total = bytes.length): Sniffed | undefined {
  if (p + 8 > bytes.length) return undefined;
  const plausible = (group: number) => group >= 0x0002 && group <= 0x0100 && group % 2 === 0;
  const explicitVr = ALL_VRS.has(vrAt(bytes, p + 4));
  if (plausible(u16le(bytes, p))) {
    if (explicitVr) return { explicit: true, littleEndian: true };
    const len = u32le(bytes, p + 4);
    if (len === 0xffffffff || p + 8 + len <= total) return { explicit: false, littleEndian: true };
    return undefined;
  }
  if (plausible(u16be(bytes, p)) && explicitVr) return { explicit: true, littleEndian: false };
  return undefined;
}

/**
 * Whether a file may be DICOM, from its first bytes (`head`, 132 or more unless the file is shorter) and
 * its size: a DICM prefix, or a bare data set that parseDicom would try. Other files can be skipped unread.
 */
export function mightBeDicom(head: Uint8Array, fileSize: number): boolean {
  return hasDicmPrefix(head) || sniffDataset(head, 0, fileSize) !== undefined;
}

function syntaxEncoding(ts: string): Sniffed {
  if (ts === TS.ImplicitLittle) return { explicit: false, littleEndian: true };
  if (ts === TS.ExplicitBig) return { explicit: true, littleEndian: false };
  return { explicit: true, littleEndian: true };
}

function syntaxFor(s: Sniffed): string {
  if (!s.explicit) return TS.ImplicitLittle;
  return s.littleEndian ? TS.ExplicitLittle : TS.ExplicitBig;
}

/**
 * Inflate a deflated data set into one array of exactly its size. Raw deflate does not say its size, so
 * the stream is inflated twice: once only counting (stopping at maxBytes), then into the array. Twice
 * the time of a rare syntax, but peak memory is the data set plus one chunk, not the chunks and their
 * concatenation (about 2x, 2.0 GB for a 0.9 MB bomb before).
 */
function inflateLimited(bytes: Uint8Array, name: string, maxBytes: number): Uint8Array {
  const run = (onChunk: (chunk: Uint8Array) => void) => {
    const inflater = new Inflate(onChunk);
    try {
      // 4 KB of input inflates to 4 MB at most: no large output chunk is left for the collector.
      const step = 1 << 12;
      for (let p = 0; p < bytes.length; p += step)
        inflater.push(bytes.subarray(p, Math.min(bytes.length, p + step)), p + step >= bytes.length);
      if (bytes.length === 0) inflater.push(bytes, true);
    } catch (e) {
      if (e instanceof CorridorError) throw e;
      throw new FormatError(`deflated data set cannot be inflated: ${errorText(e)}`, name);
    }
  };
  let total = 0;
  run((chunk) => {
    total += chunk.length;
    if (total > maxBytes) throw new LimitError(`deflated data set inflates to more than ${maxBytes} bytes`, name);
  });
  const out = new Uint8Array(total);
  let o = 0;
  run((chunk) => {
    out.set(chunk.subarray(0, Math.min(chunk.length, total - o)), o);
    o += chunk.length;
  });
  return out;
}

/** Text of anything thrown by dicom-parser (strings, Errors, or {exception, dataSet}). */
export function errorText(e: unknown): string {
  if (typeof e === 'string') return e;
  if (e instanceof Error) return e.message;
  if (e && typeof e === 'object' && 'exception' in e) return errorText(e.exception);
  if (typeof e === 'number') return `decoder error ${e}`;
  return String(e);
}

function vrCallback(tag: string): string | undefined {
  return SEQUENCE_TAGS.has(tag) ? 'SQ' : undefined;
}

export interface ParseDicomOptions {
  /** Cap on the inflated size of a deflated data set (default MAX_INFLATED_BYTES). */
  maxInflatedBytes?: number;
}

/**
 * Parse one DICOM file (Part 10 with preamble and meta, or a bare data set). Throws FormatError naming
 * the file when the bytes are not DICOM or the data set is broken before its pixel data.
 */
export function parseDicom(bytes: Uint8Array, name: string, options: ParseDicomOptions = {}): DicomDataset {
  const meta = readMeta(bytes, name);
  const warnings = meta.warnings;
  const sniffed = sniffDataset(bytes, meta.datasetStart);
  let ts = meta.transferSyntaxUid;
  let parseTs: string;
  if (meta.found && !hasDicmPrefix(bytes)) {
    warnings.push(`${name}: no 128-byte preamble and DICM prefix; the file meta at the start was read`);
  }
  if (!meta.found) {
    if (!sniffed)
      throw new FormatError(
        'not a DICOM file: no DICM prefix at byte 128 and no recognisable data set at the start',
        name,
      );
    ts = syntaxFor(sniffed);
    warnings.push(
      `${name}: no DICOM preamble or file meta; read as ${ts === TS.ImplicitLittle ? 'implicit' : 'explicit'} ` +
        `VR ${sniffed.littleEndian ? 'little' : 'big'} endian`,
    );
    parseTs = ts;
  } else if (ts === undefined) {
    if (!sniffed)
      throw new FormatError(
        'file meta has no TransferSyntaxUID (0002,0010) and the data set encoding cannot be recognised',
        name,
      );
    ts = syntaxFor(sniffed);
    warnings.push(`${name}: file meta has no TransferSyntaxUID (0002,0010); the data set reads as ${ts}`);
    parseTs = ts;
  } else if (ts === TS.DeflatedExplicitLittle) {
    parseTs = ts;
  } else {
    parseTs = ts;
    const declared = syntaxEncoding(ts);
    if (sniffed && (sniffed.explicit !== declared.explicit || sniffed.littleEndian !== declared.littleEndian)) {
      parseTs = syntaxFor(sniffed);
      warnings.push(`${name}: transfer syntax ${ts} does not match the data set's encoding; read as ${parseTs}`);
    }
  }

  const body = bytes.subarray(meta.datasetStart);
  if (body.length === 0) throw new FormatError('file holds a file meta but no data set', name);
  if (hasDicmPrefix(body)) {
    throw new FormatError('data set cannot be parsed: unexpected DICM marker inside the data set', name);
  }
  const maxInflated = options.maxInflatedBytes ?? MAX_INFLATED_BYTES;
  let raw: RawDataSet;
  try {
    raw = dicomParser.parseDicom(body, {
      TransferSyntaxUID: parseTs,
      inflater: (arr: Uint8Array, position: number) => inflateLimited(arr.subarray(position), name, maxInflated),
      vrCallback,
    });
  } catch (e) {
    if (e instanceof CorridorError) throw e;
    const partial = e && typeof e === 'object' && 'dataSet' in e ? (e as { dataSet: RawDataSet }).dataSet : undefined;
    const px = partial?.elements[TAG.PixelData];
    // (byteArray is typed Uint8Array | Buffer; core compiles without Node's types, so name the part it has.)
    const partialBytes = partial ? (partial.byteArray as Uint8Array).length : 0;
    if (partial && px && px.dataOffset + px.length <= partialBytes && !px.encapsulatedPixelData) {
      // Everything up to and including the pixel data was read; only trailing elements are damaged.
      warnings.push(`${name}: data set damaged after the pixel data (${errorText(e)}); trailing elements ignored`);
      raw = partial;
    } else {
      const text = errorText(e);
      // dicom-parser's "buffer overrun" / "read past end of buffer": an element runs past the last byte.
      if (/buffer overrun|past end of buffer/i.test(text)) {
        const why = `the file is truncated (an element runs past its last byte, ${bytes.length} bytes)`;
        throw new FormatError(`data set cannot be parsed: ${why}`, name);
      }
      throw new FormatError(`data set cannot be parsed: ${text}`, name);
    }
  }
  for (const w of raw.warnings ?? []) warnings.push(`${name}: ${w}`);
  const charset = raw.elements[TAG.SpecificCharacterSet] ? (raw.string(TAG.SpecificCharacterSet) ?? '') : '';
  const utf8 = /ISO_IR 192/i.test(charset);
  return new DicomDataset(name, ts, raw, warnings, utf8);
}
