/**
 * DICOM writer: a Volume as a CT Image Storage series in explicit VR little endian, one file per k slice.
 * UIDs are derived from the volume and the options under the 2.25 root, so the same input always gives
 * byte-identical files. Sheared grids (gantry tilt) cannot be written as CT Image Storage and are refused.
 */
import { GeometryError, LimitError, UsageError } from '../../errors.js';
import { cross, dot, norm, type Point3 } from '../../math/vec3.js';
import type { Volume } from '../../volume/volume.js';
import type { NamedBytes } from '../types.js';
import { encodeUtf8 } from './parse.js';
import { SOP_CLASS, TS } from './tags.js';

export interface DicomWriteOptions {
  patientName?: string;
  patientId?: string;
  patientBirthDate?: string;
  patientSex?: string;
  studyInstanceUid?: string;
  studyDate?: string;
  studyTime?: string;
  studyDescription?: string;
  studyId?: string;
  seriesInstanceUid?: string;
  seriesNumber?: number;
  seriesDescription?: string;
  frameOfReferenceUid?: string;
  modality?: 'CT';
  manufacturer?: string;
  /** Body Part Examined (0018,0015), e.g. 'PELVIS'; with it and no laterality, Laterality is left out. */
  bodyPartExamined?: string;
  /** Laterality (0020,0060): 'L' or 'R' for a paired body part; empty (unknown) without a body part. */
  laterality?: 'L' | 'R';
  /** Peak kilovoltage (0018,0060); empty when unknown (the default). */
  kvp?: number;
  /** Patient Position (0018,5100), e.g. 'HFS' (supine, head first); empty when unknown (the default). */
  patientPosition?: string;
  /** Extra text mixed into the generated UIDs (e.g. a phantom seed), so different runs get different UIDs. */
  uidSeed?: string;
  /** File name prefix; files are `${prefix}${k + 1, 4 digits}.dcm` (default 'slice'). */
  fileNamePrefix?: string;
}

export interface DicomWriteResult {
  files: NamedBytes[];
  /** How voxel values map to stored values: value = stored * rescaleSlope + rescaleIntercept. */
  rescaleSlope: number;
  rescaleIntercept: number;
  /** True when the stored values hold the voxel values exactly. */
  exact: boolean;
  warnings: string[];
  seriesInstanceUid: string;
  studyInstanceUid: string;
  frameOfReferenceUid: string;
}

const IMPLEMENTATION_VERSION = 'CORRIDOR_0_1';

// --- deterministic UIDs ------------------------------------------------------------------------------

/** 128-bit hash (four 32-bit FNV-1a-style lanes with cross mixing) of strings and bytes. */
class Hash128 {
  private h = new Uint32Array([0x811c9dc5, 0x01000193 ^ 0x9e3779b9, 0x85ebca6b, 0xc2b2ae35]);
  bytes(b: Uint8Array): this {
    const h = this.h;
    const words = b.length >> 2;
    if (words > 0 && b.byteOffset % 4 === 0) {
      const w = new Uint32Array(b.buffer, b.byteOffset, words);
      let a0 = h[0],
        a1 = h[1],
        a2 = h[2],
        a3 = h[3];
      for (let i = 0; i < words; i++) {
        const v = w[i];
        a0 = Math.imul(a0 ^ v, 0x01000193);
        a1 = Math.imul(a1 ^ ((v >>> 7) | (v << 25)), 0x5bd1e995);
        a2 = Math.imul(a2 ^ a0, 0x27d4eb2d) ^ (i + 1);
        a3 = Math.imul(a3 ^ a1 ^ v, 0x165667b1);
      }
      h[0] = a0;
      h[1] = a1;
      h[2] = a2;
      h[3] = a3;
      b = b.subarray(words * 4);
    }
    for (let i = 0; i < b.length; i++) {
      h[0] = Math.imul(h[0] ^ b[i], 0x01000193);
      h[1] = Math.imul(h[1] ^ h[0], 0x5bd1e995);
      h[2] = Math.imul(h[2] ^ b[i] ^ h[1], 0x27d4eb2d);
      h[3] = Math.imul(h[3] ^ h[2], 0x165667b1);
    }
    return this;
  }
  text(s: string): this {
    return this.bytes(encodeUtf8(s + '\u0000'));
  }
  digest(): bigint {
    // Final avalanche so short inputs spread over all 128 bits.
    const h = Uint32Array.from(this.h);
    for (let r = 0; r < 4; r++) {
      for (let i = 0; i < 4; i++) {
        let x = h[i] ^ h[(i + 1) & 3] ^ (r * 0x9e3779b9);
        x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
        x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
        h[i] = x ^ (x >>> 16);
      }
    }
    return (BigInt(h[0]) << 96n) | (BigInt(h[1]) << 64n) | (BigInt(h[2]) << 32n) | BigInt(h[3]);
  }
}

function uidNumber(text: string): bigint {
  return new Hash128().text(text).digest();
}

/** A UID under the 2.25 (UUID-derived) root from any text: at most 44 characters. */
export function uidFromText(text: string): string {
  return `2.25.${uidNumber(text).toString()}`;
}

/** Our implementation class UID (under 2.25, derived from the name). */
const IMPLEMENTATION_CLASS_UID = uidFromText('corridor implementation class');

// --- value formatting ---------------------------------------------------------------------------------

/** A DS value (at most 16 characters) as close to x as the format allows. */
export function formatDS(x: number): string {
  if (!Number.isFinite(x)) throw new UsageError(`cannot write ${x} as a DICOM decimal string`);
  if (Object.is(x, -0) || x === 0) return '0';
  for (let p = 16; p >= 1; p--) {
    let s = x.toPrecision(p);
    if (s.includes('e')) {
      const [mant, exp] = s.split('e');
      s = `${mant.includes('.') ? mant.replace(/0+$/, '').replace(/\.$/, '') : mant}e${exp}`;
    } else if (s.includes('.')) s = s.replace(/0+$/, '').replace(/\.$/, '');
    if (s.length <= 16) return s;
  }
  throw new UsageError(`cannot write ${x} as a DICOM decimal string`);
}

function formatIS(x: number): string {
  if (!Number.isInteger(x) || Math.abs(x) > 2147483647) throw new UsageError(`IS value ${x} is not a 32-bit integer`);
  return String(x);
}

// --- element encoding ---------------------------------------------------------------------------------

const LONG_VRS = new Set(['OB', 'OW', 'OF', 'SQ', 'UT', 'UN', 'UC', 'UR', 'OD', 'OL']);

/** Explicit VR little endian elements, appended in the order given (callers keep tags ascending). */
export class DicomElementWriter {
  private chunks: Uint8Array[] = [];
  length = 0;
  push(b: Uint8Array): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  header(group: number, element: number, vr: string, length: number): void {
    const long = LONG_VRS.has(vr);
    const b = new Uint8Array(long ? 12 : 8);
    const dv = new DataView(b.buffer);
    dv.setUint16(0, group, true);
    dv.setUint16(2, element, true);
    b[4] = vr.charCodeAt(0);
    b[5] = vr.charCodeAt(1);
    if (long) dv.setUint32(8, length, true);
    else {
      if (length > 0xffff)
        throw new LimitError(`value of (${group.toString(16)},${element.toString(16)}) too long for VR ${vr}`);
      dv.setUint16(6, length, true);
    }
    this.push(b);
  }
  /** A string value, padded to even length (NUL for UI, space otherwise). */
  str(group: number, element: number, vr: string, value: string): void {
    let bytes = encodeUtf8(value);
    if (bytes.length % 2) {
      const padded = new Uint8Array(bytes.length + 1);
      padded.set(bytes);
      padded[bytes.length] = vr === 'UI' ? 0 : 0x20;
      bytes = padded;
    }
    this.header(group, element, vr, bytes.length);
    this.push(bytes);
  }
  us(group: number, element: number, value: number): void {
    this.header(group, element, 'US', 2);
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, value, true);
    this.push(b);
  }
  ul(group: number, element: number, value: number): void {
    this.header(group, element, 'UL', 4);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value, true);
    this.push(b);
  }
  ob(group: number, element: number, value: Uint8Array): void {
    this.header(group, element, 'OB', value.length);
    this.push(value);
  }
  concat(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

/** An item, item delimitation or sequence delimitation tag (FFFE,element) with its 32-bit length. */
export function itemTag(element: number, length: number): Uint8Array {
  const b = new Uint8Array(8);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, 0xfffe, true);
  dv.setUint16(2, element, true);
  dv.setUint32(4, length, true);
  return b;
}

/** A sequence of undefined length whose items (each of undefined length) hold the given elements. */
export function writeSequence(w: DicomElementWriter, group: number, element: number, items: Uint8Array[]): void {
  w.header(group, element, 'SQ', 0xffffffff);
  for (const it of items) {
    w.push(itemTag(0xe000, 0xffffffff));
    w.push(it);
    w.push(itemTag(0xe00d, 0));
  }
  w.push(itemTag(0xe0dd, 0));
}

/** The bytes of the elements `build` writes (an item's content, or a whole dataset body). */
export function dicomElements(build: (w: DicomElementWriter) => void): Uint8Array {
  const w = new DicomElementWriter();
  build(w);
  return w.concat();
}

/** A DICOM Part 10 file: preamble, "DICM", file meta (explicit VR little endian) and the dataset body. */
export function part10File(sopClassUid: string, sopInstanceUid: string, body: Uint8Array): Uint8Array {
  const m = new DicomElementWriter();
  m.ob(0x0002, 0x0001, new Uint8Array([0, 1]));
  m.str(0x0002, 0x0002, 'UI', sopClassUid);
  m.str(0x0002, 0x0003, 'UI', sopInstanceUid);
  m.str(0x0002, 0x0010, 'UI', TS.ExplicitLittle);
  m.str(0x0002, 0x0012, 'UI', IMPLEMENTATION_CLASS_UID);
  m.str(0x0002, 0x0013, 'SH', IMPLEMENTATION_VERSION);
  const metaBody = m.concat();
  const groupLength = new DicomElementWriter();
  groupLength.ul(0x0002, 0x0000, metaBody.length);
  const gl = groupLength.concat();
  const file = new Uint8Array(132 + gl.length + metaBody.length + body.length);
  file.set([0x44, 0x49, 0x43, 0x4d], 128);
  file.set(gl, 132);
  file.set(metaBody, 132 + gl.length);
  file.set(body, 132 + gl.length + metaBody.length);
  return file;
}

// --- geometry and value mapping -----------------------------------------------------------------------

interface SliceGeometry {
  rowDir: Point3;
  colDir: Point3;
  /** Column spacing (along i), row spacing (along j), slice step (along k). */
  di: number;
  dj: number;
  dk: number;
  kVector: Point3;
  origin: Point3;
}

function geometryOf(volume: Volume, source: string): SliceGeometry {
  const m = volume.indexToPatient;
  const col = (c: number): Point3 => [m[c], m[4 + c], m[8 + c]];
  const ci = col(0),
    cj = col(1),
    ck = col(2);
  const di = norm(ci),
    dj = norm(cj),
    dk = norm(ck);
  const rowDir: Point3 = [ci[0] / di, ci[1] / di, ci[2] / di];
  const colDir: Point3 = [cj[0] / dj, cj[1] / dj, cj[2] / dj];
  if (Math.abs(dot(rowDir, colDir)) > 1e-6) {
    throw new GeometryError(
      'i and j axes are not perpendicular: a sheared in-plane grid cannot be written as DICOM slices',
      source,
    );
  }
  const n = cross(rowDir, colDir);
  const kDir: Point3 = [ck[0] / dk, ck[1] / dk, ck[2] / dk];
  if (1 - Math.abs(dot(n, kDir)) > 1e-9) {
    const angleDeg = (Math.acos(Math.min(1, Math.abs(dot(n, kDir)))) * 180) / Math.PI;
    throw new GeometryError(
      `k axis is ${angleDeg.toFixed(3)} deg off the slice normal (sheared grid, e.g. gantry tilt): CT Image ` +
        `Storage slices cannot represent it; resample first`,
      source,
    );
  }
  return { rowDir, colDir, di, dj, dk, kVector: ck, origin: [m[3], m[7], m[11]] };
}

interface ValueMapping {
  slope: number;
  intercept: number;
  signed: boolean;
  exact: boolean;
  stored: (v: number) => number;
}

function valueMapping(volume: Volume, warnings: string[], source: string): ValueMapping {
  const d = volume.data;
  let lo = Infinity,
    hi = -Infinity,
    integral = true;
  for (let i = 0; i < d.length; i++) {
    const v = d[i];
    if (!Number.isFinite(v)) throw new UsageError(`voxel ${i} is ${v}: only finite values can be written`, source);
    if (v < lo) lo = v;
    if (v > hi) hi = v;
    if (integral && v !== Math.round(v)) integral = false;
  }
  if (integral && lo >= -32768 && hi <= 32767) {
    return { slope: 1, intercept: 0, signed: true, exact: true, stored: (v) => v };
  }
  if (integral && hi - lo <= 65535) {
    const intercept = lo;
    return { slope: 1, intercept, signed: false, exact: true, stored: (v) => v - intercept };
  }
  // Non-integer (or wider than 16 bits) data: spread the range over 0..65535.
  const intercept = lo;
  const range = hi - lo;
  const slope = range > 0 ? Number(formatDS(range / 65535)) : 1;
  const finalSlope = Math.round(range / slope) > 65535 ? Number(formatDS((range / 65535) * (1 + 1e-12))) : slope;
  warnings.push(
    `${source}: values are ${integral ? 'integers wider than 16 bits' : 'not integers'} (${lo} to ${hi}); ` +
      `stored with RescaleSlope ${finalSlope}, so each value is within ${finalSlope / 2} of the original`,
  );
  return {
    slope: finalSlope,
    intercept,
    signed: false,
    exact: false,
    stored: (v) => Math.min(65535, Math.max(0, Math.round((v - intercept) / finalSlope))),
  };
}

function dicomName(prefix: string, k: number, count: number): string {
  return `${prefix}${String(k + 1).padStart(Math.max(4, String(count).length), '0')}.dcm`;
}

/**
 * Write a Volume as a CT Image Storage series (explicit VR little endian, one file per slice). Returns the
 * files plus how values were stored (and warnings when they are not stored exactly).
 */
export function encodeDicomSeries(volume: Volume, options: DicomWriteOptions = {}): DicomWriteResult {
  const source = volume.meta.source ?? 'volume';
  const [nx, ny, nz] = volume.dims;
  if (nx > 65535 || ny > 65535)
    throw new LimitError(`slices of ${nx} x ${ny} exceed DICOM's 65535 rows/columns`, source);
  const g = geometryOf(volume, source);
  const warnings: string[] = [];
  const mapping = valueMapping(volume, warnings, source);
  const meta = volume.meta;

  // Everything that identifies the input goes into the UID seed, including the voxel values.
  const hash = new Hash128()
    .text(options.uidSeed ?? '')
    .text(
      JSON.stringify({
        dims: volume.dims,
        m: Array.from(volume.indexToPatient),
        o: { ...options, uidSeed: undefined },
      }),
    )
    .bytes(new Uint8Array(volume.data.buffer, volume.data.byteOffset, volume.data.byteLength));
  const base = hash.digest().toString();
  const studyUid = options.studyInstanceUid ?? meta.studyInstanceUid ?? uidFromText(`${base}/study`);
  const seriesUid = options.seriesInstanceUid ?? uidFromText(`${base}/series/${studyUid}`);
  const forUid =
    options.frameOfReferenceUid ?? meta.frameOfReferenceUid ?? uidFromText(`${base}/frame-of-reference/${studyUid}`);
  const prefix = options.fileNamePrefix ?? 'slice';

  const orientation = [...g.rowDir, ...g.colDir].map(formatDS).join('\\');
  const pixelSpacing = `${formatDS(g.dj)}\\${formatDS(g.di)}`;
  const n = cross(g.rowDir, g.colDir);
  const kSign = Math.sign(dot(n, g.kVector));
  const frameVoxels = nx * ny;
  const files: NamedBytes[] = [];
  const patientName = options.patientName ?? meta.patientName ?? '';
  const patientId = options.patientId ?? meta.patientId ?? '';
  const seriesDescription = options.seriesDescription ?? meta.seriesDescription ?? '';
  const seriesNumber = options.seriesNumber ?? meta.seriesNumber ?? 1;
  const data = volume.data;
  for (let k = 0; k < nz; k++) {
    const sopUid = uidFromText(`${seriesUid}/instance/${k}`);
    const position: Point3 = [
      g.origin[0] + g.kVector[0] * k,
      g.origin[1] + g.kVector[1] * k,
      g.origin[2] + g.kVector[2] * k,
    ];
    const w = new DicomElementWriter();
    const s = (gr: number, el: number, vr: string, v: string) => w.str(gr, el, vr, v);
    s(0x0008, 0x0005, 'CS', 'ISO_IR 192');
    s(0x0008, 0x0008, 'CS', 'DERIVED\\SECONDARY\\AXIAL');
    s(0x0008, 0x0016, 'UI', SOP_CLASS.CtImage);
    s(0x0008, 0x0018, 'UI', sopUid);
    s(0x0008, 0x0020, 'DA', options.studyDate ?? meta.studyDate ?? '');
    s(0x0008, 0x0030, 'TM', options.studyTime ?? '');
    s(0x0008, 0x0050, 'SH', '');
    s(0x0008, 0x0060, 'CS', options.modality ?? 'CT');
    s(0x0008, 0x0070, 'LO', options.manufacturer ?? 'Corridor');
    s(0x0008, 0x0090, 'PN', '');
    const studyDescription = options.studyDescription ?? meta.studyDescription;
    if (studyDescription) s(0x0008, 0x1030, 'LO', studyDescription);
    s(0x0008, 0x103e, 'LO', seriesDescription);
    s(0x0010, 0x0010, 'PN', patientName);
    s(0x0010, 0x0020, 'LO', patientId);
    s(0x0010, 0x0030, 'DA', options.patientBirthDate ?? meta.patientBirthDate ?? '');
    s(0x0010, 0x0040, 'CS', options.patientSex ?? meta.patientSex ?? '');
    if (options.bodyPartExamined !== undefined) s(0x0018, 0x0015, 'CS', options.bodyPartExamined);
    s(0x0018, 0x0050, 'DS', formatDS(g.dk));
    // KVP: Type 2, unknown for a volume that did not come from a scanner (empty).
    s(0x0018, 0x0060, 'DS', options.kvp !== undefined ? formatDS(options.kvp) : '');
    s(0x0018, 0x0088, 'DS', formatDS(g.dk));
    s(0x0018, 0x5100, 'CS', options.patientPosition ?? '');
    s(0x0020, 0x000d, 'UI', studyUid);
    s(0x0020, 0x000e, 'UI', seriesUid);
    s(0x0020, 0x0010, 'SH', options.studyId ?? '1');
    s(0x0020, 0x0011, 'IS', formatIS(seriesNumber));
    s(0x0020, 0x0012, 'IS', '1');
    s(0x0020, 0x0013, 'IS', formatIS(k + 1));
    s(0x0020, 0x0032, 'DS', position.map(formatDS).join('\\'));
    s(0x0020, 0x0037, 'DS', orientation);
    s(0x0020, 0x0052, 'UI', forUid);
    // Laterality: Type 2C, for paired body parts. Given a body part and no laterality, the part is taken as
    // unpaired (a pelvis) and Laterality left out; without a body part it is present and empty (unknown).
    if (options.laterality !== undefined || options.bodyPartExamined === undefined)
      s(0x0020, 0x0060, 'CS', options.laterality ?? '');
    s(0x0020, 0x1040, 'LO', '');
    s(0x0020, 0x1041, 'DS', formatDS(dot(n, position)));
    w.us(0x0028, 0x0002, 1);
    s(0x0028, 0x0004, 'CS', 'MONOCHROME2');
    w.us(0x0028, 0x0010, ny);
    w.us(0x0028, 0x0011, nx);
    s(0x0028, 0x0030, 'DS', pixelSpacing);
    w.us(0x0028, 0x0100, 16);
    w.us(0x0028, 0x0101, 16);
    w.us(0x0028, 0x0102, 15);
    w.us(0x0028, 0x0103, mapping.signed ? 1 : 0);
    s(0x0028, 0x1052, 'DS', formatDS(mapping.intercept));
    s(0x0028, 0x1053, 'DS', formatDS(mapping.slope));
    s(0x0028, 0x1054, 'LO', 'HU');
    // Pixel data: 16-bit little endian.
    const pixels = new Uint8Array(frameVoxels * 2);
    const off = k * frameVoxels;
    if (mapping.signed && data instanceof Int16Array) {
      pixels.set(new Uint8Array(data.buffer, data.byteOffset + off * 2, frameVoxels * 2));
    } else {
      const view = mapping.signed ? new Int16Array(pixels.buffer) : new Uint16Array(pixels.buffer);
      for (let i = 0; i < frameVoxels; i++) view[i] = mapping.stored(data[off + i]);
    }
    w.header(0x7fe0, 0x0010, 'OW', pixels.length);
    w.push(pixels);
    const body = w.concat();

    const file = part10File(SOP_CLASS.CtImage, sopUid, body);
    files.push({ name: dicomName(prefix, k, nz), bytes: file });
  }
  if (kSign < 0) {
    warnings.push(
      `${source}: k runs against the slice normal (row x column); a reader sorting by position returns the ` +
        `slices in reverse k order (same voxels in patient space)`,
    );
  }
  return {
    files,
    rescaleSlope: mapping.slope,
    rescaleIntercept: mapping.intercept,
    exact: mapping.exact,
    warnings,
    seriesInstanceUid: seriesUid,
    studyInstanceUid: studyUid,
    frameOfReferenceUid: forUid,
  };
}

/** writeDicomSeries = encodeDicomSeries(...).files, for callers that need only the files. */
export function writeDicomSeries(volume: Volume, options: DicomWriteOptions = {}): NamedBytes[] {
  return encodeDicomSeries(volume, options).files;
}
