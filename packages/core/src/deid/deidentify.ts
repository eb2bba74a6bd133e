/**
 * De-identification of DICOM instances by the Basic Application Level Confidentiality Profile of DICOM
 * PS3.15 2024b (Annex E, Table E.1-1, all of its rows: basic-profile-2024b.ts), for export from a case.
 *
 * Actions: X removes, Z empties, D writes a dummy value of the attribute's VR, U replaces each UID with
 * one from the case's UidMap (the same original UID gives the same new UID in every instance of a case,
 * so studies, series, frames of reference and references stay linked). Where the table lets the
 * de-identifier choose by IOD type (X/Z, X/D, Z/D, X/Z/D), the choice that keeps any IOD conformant is
 * taken: Z for X/Z, D for the others; X/Z/U* keeps the sequence with its UIDs replaced. Sequences kept (or
 * given a dummy value, D) have the profile applied inside every item, at any depth. Private attributes
 * (odd groups), curve data (50xx,xxxx) and overlay data and comments (60xx,3000/4000) are removed. No
 * option of the profile is applied. The file meta is written anew; Patient Identity Removed (0012,0062)
 * YES, De-identification Method (0012,0063) and its code sequence (0012,0064: DCM 113100) and
 * Longitudinal Temporal Information Modified (0028,0303) REMOVED are added, as E.1.1 asks.
 *
 * Input: Part 10 files in implicit or explicit VR little endian, deflated (written out inflated, explicit
 * VR little endian) or any encapsulated syntax (pixel fragments copied as they are). Pixel data is not
 * cleaned (no Clean Pixel Data option): an instance whose Burned In Annotation is not NO gets a warning.
 */
import { FormatError, UsageError } from '../errors.js';
import { inflateCapped } from '../io/inflate.js';
import { MAX_INFLATED_BYTES } from '../io/dicom/parse.js';
import { BASIC_PROFILE_EDITION, BASIC_PROFILE_ROWS, SEQUENCE_TAGS_2024B } from './basic-profile-2024b.js';
import { sha256 } from './sha256.js';

export { BASIC_PROFILE_EDITION };

const TS_IMPLICIT = '1.2.840.10008.1.2';
const TS_EXPLICIT = '1.2.840.10008.1.2.1';
const TS_DEFLATED = '1.2.840.10008.1.2.1.99';
const TS_BIG = '1.2.840.10008.1.2.2';

/** The action this de-identifier applies for each table action (see the module comment). */
export type AppliedAction = 'X' | 'Z' | 'D' | 'U' | 'K';

export function appliedAction(basic: string): AppliedAction {
  switch (basic) {
    case 'X':
    case 'Z':
    case 'D':
    case 'U':
    case 'K':
      return basic;
    case 'X/Z':
      return 'Z';
    case 'X/D':
    case 'Z/D':
    case 'X/Z/D':
      return 'D';
    case 'X/Z/U*':
      return 'U';
    default:
      throw new Error(`unknown Basic Profile action ${basic}`);
  }
}

interface Rule {
  vr: string;
  action: AppliedAction;
}

const RULES = new Map<number, Rule>();
for (const [tag, vr, basic] of BASIC_PROFILE_ROWS) {
  if (/^[0-9A-F]{8}$/.test(tag)) RULES.set(parseInt(tag, 16) >>> 0, { vr, action: appliedAction(basic) });
}
const SQ_TAGS = new Set(SEQUENCE_TAGS_2024B.map((t) => parseInt(t, 16) >>> 0));

/** Number of rows of Table E.1-1 this module applies (tags, tag patterns and the private-attributes row). */
export const BASIC_PROFILE_ROW_COUNT = BASIC_PROFILE_ROWS.length;

// --- UIDs -----------------------------------------------------------------------------------------------

/**
 * The case's UID replacement: new = root + "." + digits of SHA-256(caseKey, 0, old UID), so that one case
 * (one key) maps a UID to the same new UID every time, different cases to unrelated ones, and the
 * original cannot be recovered without the key. Root "2.25" (the default) takes the hash's first 128 bits
 * as the integer of an ISO/IEC 9834-8 UUID-derived UID; another root gets as many digits as keep the UID
 * within 64 characters.
 */
export class UidMap {
  private readonly key: Uint8Array;
  private readonly cache = new Map<string, string>();
  readonly root: string;

  constructor(caseKey: string | Uint8Array, root = '2.25') {
    if (!/^[0-9]+(\.[0-9]+)*$/.test(root) || root.length > 40)
      throw new UsageError(`UID root "${root}" must be digits and dots, at most 40 characters`);
    this.key = typeof caseKey === 'string' ? new TextEncoder().encode(caseKey) : caseKey.slice();
    if (this.key.length < 8) throw new UsageError('a case key for UID replacement needs at least 8 bytes');
    this.root = root;
  }

  /** A fresh random key (32 bytes, hex) from the platform's crypto.getRandomValues. */
  static randomKey(): string {
    const c = (globalThis as unknown as { crypto?: { getRandomValues(a: Uint8Array): Uint8Array } }).crypto;
    if (!c) throw new UsageError('no crypto.getRandomValues here: pass a case key');
    return Array.from(c.getRandomValues(new Uint8Array(32)), (b) => b.toString(16).padStart(2, '0')).join('');
  }

  map(uid: string): string {
    const old = uid.replace(/[\0 ]+$/, '');
    if (old === '') return old;
    const hit = this.cache.get(old);
    if (hit) return hit;
    const u = new TextEncoder().encode(old);
    const msg = new Uint8Array(this.key.length + 1 + u.length);
    msg.set(this.key);
    msg.set(u, this.key.length + 1);
    const h = sha256(msg);
    let n = 0n;
    for (let i = 0; i < 16; i++) n = (n << 8n) | BigInt(h[i]);
    let digits: string;
    if (this.root === '2.25') digits = n.toString();
    else {
      const d = Math.min(38, 64 - this.root.length - 1);
      const lo = 10n ** BigInt(d - 1);
      digits = ((n % (9n * lo)) + lo).toString();
    }
    const out = `${this.root}.${digits}`;
    this.cache.set(old, out);
    return out;
  }
}

// --- the data set as elements -------------------------------------------------------------------------

interface Element {
  tag: number; // group << 16 | element
  vr: string; // '' when unknown (implicit VR, not in the dictionaries used here)
  value?: Uint8Array; // non-sequence value (or the raw encapsulated pixel data, items and delimiter)
  items?: Element[][];
  encapsulated?: boolean;
}

const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const ITEM = 0xfffee000;
const ITEM_END = 0xfffee00d;
const SEQ_END = 0xfffee0dd;
const UNDEFINED = 0xffffffff;

class Reader {
  constructor(
    readonly bytes: Uint8Array,
    readonly view: DataView,
    readonly explicit: boolean,
    readonly name: string,
  ) {}

  fail(msg: string, at: number): never {
    throw new FormatError(`${msg} at byte ${at}`, this.name);
  }

  /** Elements from pos until end (or an item delimiter when end is undefined); returns [elements, next pos]. */
  dataset(pos: number, end: number | undefined): [Element[], number] {
    const out: Element[] = [];
    const { view, bytes } = this;
    for (;;) {
      if (end !== undefined && pos >= end) return [out, pos];
      if (pos + 8 > bytes.length) {
        if (end === undefined) this.fail('an item without its delimiter', pos);
        return [out, pos];
      }
      const tag = ((view.getUint16(pos, true) << 16) | view.getUint16(pos + 2, true)) >>> 0;
      if (tag === ITEM_END) return [out, pos + 8];
      if (tag === ITEM || tag === SEQ_END) this.fail('an item tag inside a data set', pos);
      let vr = '';
      let len: number;
      let p: number;
      if (this.explicit) {
        vr = String.fromCharCode(bytes[pos + 4], bytes[pos + 5]);
        if (!/^[A-Z]{2}$/.test(vr)) this.fail(`element (${hex(tag)}) has no valid VR`, pos);
        if (LONG_VRS.has(vr)) {
          len = view.getUint32(pos + 8, true);
          p = pos + 12;
        } else {
          len = view.getUint16(pos + 6, true);
          p = pos + 8;
        }
      } else {
        len = view.getUint32(pos + 4, true);
        p = pos + 8;
        vr = RULES.get(tag)?.vr ?? (SQ_TAGS.has(tag) ? 'SQ' : '');
      }
      // A UN of undefined length is a sequence in implicit VR (PS3.5 6.2.2).
      const unSequence = vr === 'UN' && len === UNDEFINED;
      const isSeq =
        vr === 'SQ' ||
        unSequence ||
        (!this.explicit &&
          vr === '' &&
          len !== UNDEFINED &&
          len >= 8 &&
          p + 4 <= bytes.length &&
          view.getUint32(p, true) === 0xe000fffe) ||
        (!this.explicit && len === UNDEFINED && tag !== 0x7fe00010);
      if (isSeq) {
        const r = unSequence ? new Reader(bytes, view, false, this.name) : this;
        const [items, next] = r.sequence(p, len === UNDEFINED ? undefined : p + len);
        out.push({ tag, vr: 'SQ', items });
        pos = next;
        continue;
      }
      if (len === UNDEFINED) {
        // Encapsulated pixel data: items until the sequence delimiter, copied as they are.
        let q = p;
        for (;;) {
          if (q + 8 > bytes.length) this.fail('encapsulated pixel data without its sequence delimiter', q);
          const t = ((view.getUint16(q, true) << 16) | view.getUint16(q + 2, true)) >>> 0;
          const l = view.getUint32(q + 4, true);
          q += 8;
          if (t === SEQ_END) break;
          if (t !== ITEM) this.fail('a non-item inside encapsulated pixel data', q - 8);
          q += l;
        }
        out.push({ tag, vr: vr || 'OB', value: bytes.subarray(p, q), encapsulated: true });
        pos = q;
        continue;
      }
      if (p + len > bytes.length || (end !== undefined && p + len > end))
        this.fail(`element (${hex(tag)}) of ${len} bytes runs past its end`, pos);
      out.push({ tag, vr, value: bytes.subarray(p, p + len) });
      pos = p + len;
    }
  }

  sequence(pos: number, end: number | undefined): [Element[][], number] {
    const items: Element[][] = [];
    const { view } = this;
    for (;;) {
      if (end !== undefined && pos >= end) return [items, pos];
      if (pos + 8 > this.bytes.length) this.fail('a sequence without its end', pos);
      const tag = ((view.getUint16(pos, true) << 16) | view.getUint16(pos + 2, true)) >>> 0;
      const len = view.getUint32(pos + 4, true);
      pos += 8;
      if (tag === SEQ_END) return [items, pos];
      if (tag !== ITEM) this.fail(`a sequence holds (${hex(tag)}) where an item belongs`, pos - 8);
      const [ds, next] = this.dataset(pos, len === UNDEFINED ? undefined : pos + len);
      items.push(ds);
      pos = next;
    }
  }
}

function hex(tag: number): string {
  const s = tag.toString(16).toUpperCase().padStart(8, '0');
  return `${s.slice(0, 4)},${s.slice(4)}`;
}

// --- writing ------------------------------------------------------------------------------------------

class Writer {
  private parts: Uint8Array[] = [];
  private size = 0;
  constructor(private readonly explicit: boolean) {}

  private push(b: Uint8Array) {
    this.parts.push(b);
    this.size += b.length;
  }

  private header(tag: number, vr: string, len: number) {
    const long = !this.explicit || LONG_VRS.has(vr) || vr === '';
    const h = new Uint8Array(this.explicit ? (long ? 12 : 8) : 8);
    const v = new DataView(h.buffer);
    v.setUint16(0, tag >>> 16, true);
    v.setUint16(2, tag & 0xffff, true);
    if (!this.explicit) v.setUint32(4, len, true);
    else {
      const code = vr === '' ? 'UN' : vr;
      h[4] = code.charCodeAt(0);
      h[5] = code.charCodeAt(1);
      if (long) v.setUint32(8, len, true);
      else v.setUint16(6, len, true);
    }
    this.push(h);
  }

  private raw(tag: number, len: number) {
    const h = new Uint8Array(8);
    const v = new DataView(h.buffer);
    v.setUint16(0, tag >>> 16, true);
    v.setUint16(2, tag & 0xffff, true);
    v.setUint32(4, len, true);
    this.push(h);
  }

  dataset(elements: Element[]) {
    for (const e of elements) {
      if (e.items) {
        this.header(e.tag, 'SQ', UNDEFINED);
        for (const item of e.items) {
          this.raw(ITEM, UNDEFINED);
          this.dataset(item);
          this.raw(ITEM_END, 0);
        }
        this.raw(SEQ_END, 0);
      } else if (e.encapsulated) {
        this.header(e.tag, e.vr === 'OW' ? 'OW' : 'OB', UNDEFINED);
        this.push(e.value ?? new Uint8Array(0));
      } else {
        const value = e.value ?? new Uint8Array(0);
        let vr = e.vr;
        // A short-form VR cannot hold more than 65535 bytes in explicit VR: written as UN then.
        if (this.explicit && !LONG_VRS.has(vr) && value.length > 0xffff) vr = 'UN';
        this.header(e.tag, vr, value.length);
        this.push(value);
      }
    }
  }

  concat(): Uint8Array {
    const out = new Uint8Array(this.size);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

// --- values -----------------------------------------------------------------------------------------

function text(s: string, vr: string): Uint8Array {
  let t = s;
  if (t.length % 2 === 1) t += vr === 'UI' ? '\0' : ' ';
  const b = new Uint8Array(t.length);
  for (let i = 0; i < t.length; i++) b[i] = t.charCodeAt(i) & 0x7f;
  return b;
}

function readText(b: Uint8Array | undefined): string {
  if (!b) return '';
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s.replace(/[\0 ]+$/, '');
}

const DUMMY_TEXT: Record<string, string> = {
  AE: 'ANONYMOUS',
  AS: '000Y',
  CS: 'ANONYMIZED',
  DA: '19000101',
  DS: '0',
  DT: '19000101000000',
  IS: '0',
  LO: 'ANONYMIZED',
  LT: 'ANONYMIZED',
  PN: 'ANONYMIZED',
  SH: 'ANONYMIZED',
  ST: 'ANONYMIZED',
  TM: '000000',
  UC: 'ANONYMIZED',
  UR: 'ANONYMIZED',
  UT: 'ANONYMIZED',
};
const BINARY_SIZE: Record<string, number> = {
  US: 2,
  SS: 2,
  UL: 4,
  SL: 4,
  FL: 4,
  FD: 8,
  AT: 4,
  SV: 8,
  UV: 8,
  OB: 2,
  OW: 2,
  OF: 4,
  OL: 4,
  OD: 8,
  OV: 8,
  UN: 2,
};

function dummy(vr: string): Uint8Array {
  const t = DUMMY_TEXT[vr];
  if (t !== undefined) return text(t, vr);
  return new Uint8Array(BINARY_SIZE[vr] ?? 2);
}

// --- the profile ---------------------------------------------------------------------------------------

export interface DeidentifyOptions {
  /** The case's UID map (the same map for every instance of the case). */
  uids: UidMap;
  /** A pseudonym written as Patient's Name (else emptied, as the profile's Z). */
  patientName?: string;
  /** A pseudonym written as Patient ID (else emptied). */
  patientId?: string;
}

export interface DeidentifyResult {
  bytes: Uint8Array;
  sopInstanceUid: string;
  warnings: string[];
  /** Counts of what was done, for a log. */
  removed: number;
  emptied: number;
  dummied: number;
  uidsReplaced: number;
}

const PATIENT_NAME = 0x00100010;
const PATIENT_ID = 0x00100020;

function isPatternRemoved(tag: number): boolean {
  const group = tag >>> 16;
  if (group & 1) return true; // private (and private creators)
  if (group >= 0x5000 && group <= 0x50ff) return true; // curve data
  if (group >= 0x6000 && group <= 0x60ff) {
    const el = tag & 0xffff;
    return el === 0x3000 || el === 0x4000;
  }
  return false;
}

interface Counts {
  removed: number;
  emptied: number;
  dummied: number;
  uidsReplaced: number;
}

function apply(elements: Element[], options: DeidentifyOptions, counts: Counts, depth: number): Element[] {
  const out: Element[] = [];
  for (const e of elements) {
    if (isPatternRemoved(e.tag) || e.tag >>> 16 === 0x0002 || (e.tag & 0xffff) === 0 /* group lengths */) {
      counts.removed++;
      continue;
    }
    if (depth === 0 && e.tag === PATIENT_NAME && options.patientName !== undefined) {
      out.push({ tag: e.tag, vr: 'PN', value: text(options.patientName, 'PN') });
      continue;
    }
    if (depth === 0 && e.tag === PATIENT_ID && options.patientId !== undefined) {
      out.push({ tag: e.tag, vr: 'LO', value: text(options.patientId, 'LO') });
      continue;
    }
    const rule = RULES.get(e.tag);
    const vr = e.items ? 'SQ' : e.vr || rule?.vr || '';
    const action = rule?.action ?? 'K';
    if (action === 'X') {
      counts.removed++;
      continue;
    }
    if (action === 'Z') {
      counts.emptied++;
      out.push(e.items ? { tag: e.tag, vr: 'SQ', items: [] } : { tag: e.tag, vr, value: new Uint8Array(0) });
      continue;
    }
    if (e.items) {
      // K, D and U* on a sequence: kept, the profile applied inside each item; D needs one item at least.
      const items = e.items.map((it) => apply(it, options, counts, depth + 1));
      if (action === 'D') {
        counts.dummied++;
        if (items.length === 0) items.push([]);
      }
      out.push({ tag: e.tag, vr: 'SQ', items });
      continue;
    }
    if (action === 'U' || (action === 'D' && vr === 'UI')) {
      counts.uidsReplaced++;
      const uids = readText(e.value)
        .split('\\')
        .map((u) => options.uids.map(u));
      out.push({ tag: e.tag, vr: vr || 'UI', value: text(uids.join('\\'), 'UI') });
      continue;
    }
    if (action === 'D') {
      counts.dummied++;
      out.push({ tag: e.tag, vr, value: dummy(vr || 'UN') });
      continue;
    }
    out.push(e);
  }
  return out;
}

function element(tag: number, vr: string, value: string): Element {
  return { tag, vr, value: text(value, vr) };
}

interface Meta {
  transferSyntax: string;
  datasetStart: number;
  sopClass: string;
  sopInstance: string;
}

function readMeta(bytes: Uint8Array, view: DataView, name: string): Meta {
  if (bytes.length < 132 || readText(bytes.subarray(128, 132)) !== 'DICM')
    throw new FormatError('not a DICOM Part 10 file (no DICM prefix after the 128-byte preamble)', name);
  let pos = 132;
  let ts = '';
  let sopClass = '';
  let sopInstance = '';
  while (pos + 8 <= bytes.length && view.getUint16(pos, true) === 0x0002) {
    const el = view.getUint16(pos + 2, true);
    const vr = String.fromCharCode(bytes[pos + 4], bytes[pos + 5]);
    let len: number;
    let p: number;
    if (LONG_VRS.has(vr)) {
      len = view.getUint32(pos + 8, true);
      p = pos + 12;
    } else {
      len = view.getUint16(pos + 6, true);
      p = pos + 8;
    }
    if (p + len > bytes.length) throw new FormatError('the file meta runs past the end of the file', name);
    if (el === 0x0010) ts = readText(bytes.subarray(p, p + len));
    else if (el === 0x0002) sopClass = readText(bytes.subarray(p, p + len));
    else if (el === 0x0003) sopInstance = readText(bytes.subarray(p, p + len));
    pos = p + len;
  }
  if (!ts) throw new FormatError('the file meta has no Transfer Syntax UID (0002,0010)', name);
  return { transferSyntax: ts, datasetStart: pos, sopClass, sopInstance };
}

const IMPLEMENTATION_CLASS_UID = '2.25.133470312986577829069217345893851146721';

function metaBytes(sopClass: string, sopInstance: string, ts: string): Uint8Array {
  const w = new Writer(true);
  w.dataset([
    { tag: 0x00020001, vr: 'OB', value: new Uint8Array([0, 1]) },
    element(0x00020002, 'UI', sopClass),
    element(0x00020003, 'UI', sopInstance),
    element(0x00020010, 'UI', ts),
    element(0x00020012, 'UI', IMPLEMENTATION_CLASS_UID),
    element(0x00020013, 'SH', 'CORRIDOR_DEID'),
  ]);
  const body = w.concat();
  const out = new Uint8Array(132 + 12 + body.length);
  out.set([0x44, 0x49, 0x43, 0x4d], 128);
  const v = new DataView(out.buffer);
  v.setUint16(132, 0x0002, true);
  v.setUint16(134, 0x0000, true);
  out[136] = 0x55; // U
  out[137] = 0x4c; // L
  v.setUint16(138, 4, true);
  v.setUint32(140, body.length, true);
  out.set(body, 144);
  return out;
}

/** De-identify one Part 10 instance (bytes) by the Basic Profile, with the case's UID map. */
export function deidentifyDicom(bytes: Uint8Array, name: string, options: DeidentifyOptions): DeidentifyResult {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const meta = readMeta(bytes, view, name);
  let ts = meta.transferSyntax;
  let data = bytes.subarray(meta.datasetStart);
  if (ts === TS_BIG) throw new FormatError('explicit VR big endian (retired) is not de-identified here', name);
  if (ts === TS_DEFLATED) {
    data = inflateCapped(data, { container: 'deflate', maxBytes: MAX_INFLATED_BYTES, source: name });
    ts = TS_EXPLICIT;
  }
  const explicit = ts !== TS_IMPLICIT;
  const reader = new Reader(data, new DataView(data.buffer, data.byteOffset, data.byteLength), explicit, name);
  const [elements] = reader.dataset(0, data.length);
  const counts: Counts = { removed: 0, emptied: 0, dummied: 0, uidsReplaced: 0 };
  const warnings: string[] = [];
  const find = (tag: number) => elements.find((e) => e.tag === tag);
  const burned = readText(find(0x00280301)?.value).toUpperCase();
  if (find(0x7fe00010) && burned !== 'NO')
    warnings.push(
      `${name}: Burned In Annotation is ${burned || 'absent'}: the pixels may show identifying text, which the Basic Profile does not clean`,
    );
  // The data set's SOP Class and Instance UIDs, else the file meta's (some files carry them only there).
  const sopClass = readText(find(0x00080016)?.value) || meta.sopClass;
  if (!sopClass) throw new FormatError('no SOP Class UID, neither (0008,0016) nor (0002,0002)', name);
  const out = apply(elements, options, counts, 0);
  const originalSop = readText(find(0x00080018)?.value) || meta.sopInstance;
  if (!originalSop) throw new FormatError('no SOP Instance UID, neither (0008,0018) nor (0002,0003)', name);
  const sopInstance = options.uids.map(originalSop);
  // LO holds at most 64 characters.
  const method = `PS3.15 ${BASIC_PROFILE_EDITION} Basic Application Confidentiality Profile`;
  const added: Element[] = [
    element(0x00120062, 'CS', 'YES'),
    element(0x00120063, 'LO', method),
    {
      tag: 0x00120064,
      vr: 'SQ',
      items: [
        [
          element(0x00080100, 'SH', '113100'),
          element(0x00080102, 'SH', 'DCM'),
          element(0x00080104, 'LO', 'Basic Application Confidentiality Profile'),
        ],
      ],
    },
    element(0x00280303, 'CS', 'REMOVED'),
  ];
  const addedTags = new Set(added.map((e) => e.tag));
  const all = out.filter((e) => !addedTags.has(e.tag)).concat(added);
  all.sort((a, b) => a.tag - b.tag);
  const w = new Writer(explicit);
  w.dataset(all);
  const body = w.concat();
  const head = metaBytes(sopClass, sopInstance, ts);
  const file = new Uint8Array(head.length + body.length);
  file.set(head);
  file.set(body, head.length);
  return { bytes: file, sopInstanceUid: sopInstance, warnings, ...counts };
}
