/**
 * Structured fuzz (issue 14): NIfTI, NRRD and MetaImage headers mutated field by field (hostile values
 * for dims, datatype, vox_offset, pixdim, sform rows; NRRD field lines; MetaImage keys), and compressed
 * voxel streams (gzip'd NIfTI, NRRD gzip bodies, MetaImage zlib bodies) truncated, bit-flipped or with a
 * wrong ISIZE. Expected of every case: a volume or a CorridorError of the families FormatError,
 * GeometryError, LimitError (never a RangeError, TypeError or other), and a volume never holds more voxels
 * than the maxVoxelBytes budget it was read with, nor more than its input bytes can justify.
 * Seeded: each case is reproducible from its index. FUZZ_SEED shifts every seed; FUZZ_LOG=1 prints each case.
 */
import { describe, expect, it } from 'vitest';
import { gzipSync, zlibSync } from 'fflate';
import { CorridorError, FormatError, GeometryError, LimitError } from '../errors.js';
import { uniformSource } from '../math/random.js';
import { createVolume, indexToPatientFrom, type Volume } from '../volume/volume.js';
import { MAX_DEFLATE_RATIO } from './inflate.js';
import { readMetaImage } from './metaimage.js';
import { readNifti, writeNifti } from './nifti.js';
import { readNrrd, writeNrrd } from './nrrd.js';
import type { LoadedSeries } from './types.js';

const seedBase = Number(process.env.FUZZ_SEED ?? 0);
/** A small budget, so that a hostile claim is refused as a LimitError instead of allocated. */
const BUDGET = 1 << 20;

interface Tally {
  ok: number;
  typed: Record<string, number>;
}

/** Run one case: a volume within bounds, or a typed error; anything else fails with the case's name. */
function check(t: Tally, label: string, input: Uint8Array, read: () => LoadedSeries): void {
  try {
    const s = read();
    const compressed = input[0] === 0x1f && input[1] === 0x8b;
    const justified = (compressed ? MAX_DEFLATE_RATIO : 1) * input.length + 65536;
    expect(s.volume.data.length, label).toBeLessThanOrEqual(Math.min(BUDGET, justified));
    t.ok++;
    if (process.env.FUZZ_LOG) console.log('OK', label);
  } catch (e) {
    const typed = e instanceof FormatError || e instanceof GeometryError || e instanceof LimitError;
    if (!typed || !(e instanceof CorridorError)) {
      const name = (e as Error)?.constructor?.name ?? typeof e;
      throw new Error(`${label}: untyped ${name}: ${String(e)}`, { cause: e });
    }
    t.typed[e.name] = (t.typed[e.name] ?? 0) + 1;
    if (process.env.FUZZ_LOG) console.log(label, String(e));
  }
}

const tally = (): Tally => ({ ok: 0, typed: {} });
const total = (t: Tally) => t.ok + Object.values(t.typed).reduce((a, b) => a + b, 0);

function volumes(): Volume[] {
  const c = Math.cos(0.3),
    s = Math.sin(0.3);
  const rot: [number[], number[], number[]] = [
    [c, 0, s],
    [0, 1, 0],
    [-s, 0, c],
  ];
  return [
    createVolume({
      data: new Int16Array(5 * 4 * 3).map((_, i) => i * 37 - 1000),
      dims: [5, 4, 3],
      indexToPatient: indexToPatientFrom([-20.5, 4.25, 60], [0.75, 0.75, 2.5], rot),
    }),
    createVolume({
      data: new Float32Array(3 * 3 * 2).map((_, i) => i / 3),
      dims: [3, 3, 2],
      // Not float32-exact: written as NIfTI-2 (float64 fields, int64 dims and vox_offset).
      indexToPatient: indexToPatientFrom([0.1, 0.2, 0.3], [1 / 3, 1 / 3, 1.1]),
    }),
    createVolume({
      data: new Uint8Array(4 * 2 * 2).map((_, i) => i * 9),
      dims: [4, 2, 2],
      indexToPatient: indexToPatientFrom([0, 0, 0], [1, 1, 1]),
    }),
  ];
}

/** Hostile numbers for integer and float header fields. */
const INTS = [0, -1, 1, 2, 3, 7, 8, 255, 256, 32767, -32768, 65535, 65536, 2 ** 31 - 1, -(2 ** 31), 348, 540, 352];
const FLOATS = [0, -0, -1, 1e-30, 1e30, 3.4e38, -3.4e38, NaN, Infinity, -Infinity, 0.5, 352.5, 2 ** 31, 2 ** 53];

// ---------------------------------------------------------------- NIfTI

/** Field offsets and types (nifti1.h / nifti2.h) the mutations target: [name, v1 at, v1 kind, v2 at, v2 kind, n]. */
type K = 'i16' | 'i32' | 'i64' | 'f32' | 'f64' | 'u8';
const NIFTI_FIELDS: [string, number, K, number, K, number][] = [
  ['sizeof_hdr', 0, 'i32', 0, 'i32', 1],
  ['dim', 40, 'i16', 16, 'i64', 8],
  ['datatype', 70, 'i16', 12, 'i16', 1],
  ['bitpix', 72, 'i16', 14, 'i16', 1],
  ['pixdim', 76, 'f32', 104, 'f64', 8],
  ['vox_offset', 108, 'f32', 168, 'i64', 1],
  ['scl_slope', 112, 'f32', 176, 'f64', 1],
  ['scl_inter', 116, 'f32', 184, 'f64', 1],
  ['xyzt_units', 123, 'u8', 500, 'i32', 1],
  ['qform_code', 252, 'i16', 344, 'i32', 1],
  ['sform_code', 254, 'i16', 348, 'i32', 1],
  ['quatern', 256, 'f32', 352, 'f64', 3],
  ['qoffset', 268, 'f32', 376, 'f64', 3],
  ['srow', 280, 'f32', 400, 'f64', 12],
  ['magic', 344, 'u8', 4, 'u8', 4],
];
const KB: Record<K, number> = { u8: 1, i16: 2, i32: 4, i64: 8, f32: 4, f64: 8 };

function put(dv: DataView, at: number, kind: K, v: number, le: boolean): void {
  const int = Number.isFinite(v) ? Math.trunc(v) : 0;
  switch (kind) {
    case 'u8':
      return dv.setUint8(at, int & 0xff);
    case 'i16':
      return dv.setInt16(at, int, le);
    case 'i32':
      return dv.setInt32(at, int, le);
    case 'i64':
      return dv.setBigInt64(at, BigInt(Math.trunc(Math.max(-(2 ** 62), Math.min(2 ** 62, int)))), le);
    case 'f32':
      return dv.setFloat32(at, v, le);
    case 'f64':
      return dv.setFloat64(at, v, le);
  }
}

/** A big-endian copy of a little-endian NIfTI-1 file of int16 voxels: every field Corridor reads, swapped. */
function bigEndianNifti1(src: Uint8Array): Uint8Array {
  const b = src.slice();
  const swap = (at: number, width: number) => b.subarray(at, at + width).reverse();
  for (const [, at, kind, , , count] of NIFTI_FIELDS) {
    if (kind !== 'u8') for (let i = 0; i < count; i++) swap(at + i * KB[kind], KB[kind]);
  }
  const voxOffset = new DataView(b.buffer).getFloat32(108, false);
  for (let i = voxOffset; i + 1 < b.length; i += 2) swap(i, 2);
  return b;
}

/** Set 1-3 header fields (elements) of an uncompressed NIfTI to hostile or random values. */
function mutateNiftiHeader(src: Uint8Array, r: () => number): { bytes: Uint8Array; what: string } {
  const b = src.slice();
  const dv = new DataView(b.buffer);
  const le = [348, 540].includes(dv.getInt32(0, true));
  const v2 = dv.getInt32(0, le) === 540;
  const edits: string[] = [];
  for (let n = 1 + Math.floor(r() * 3); n > 0; n--) {
    const [name, a1, k1, a2, k2, count] = NIFTI_FIELDS[Math.floor(r() * NIFTI_FIELDS.length)];
    const [at, kind] = v2 ? [a2, k2] : [a1, k1];
    const el = Math.floor(r() * count);
    const float = kind === 'f32' || kind === 'f64';
    const pool = float ? FLOATS : INTS;
    const old = kind === 'u8' ? dv.getUint8(at + el) : 0;
    let v: number;
    const p = r();
    if (p < 0.6) v = pool[Math.floor(r() * pool.length)];
    else if (p < 0.8) v = float ? (r() - 0.5) * 10 ** Math.floor(r() * 12) : Math.floor(r() * 70000) - 2000;
    else v = kind === 'u8' ? old ^ (1 << Math.floor(r() * 8)) : Math.floor(r() * 20);
    put(dv, at + el * KB[kind], kind, v, le);
    edits.push(`${name}[${el}]=${v}`);
  }
  return { bytes: b, what: edits.join(',') };
}

// ---------------------------------------------------------------- text headers (NRRD, MetaImage)

interface TextFile {
  lines: string[];
  body: Uint8Array;
}

function splitText(bytes: Uint8Array, bodyStart: number, eol: string): TextFile {
  const head = new TextDecoder('latin1').decode(bytes.subarray(0, bodyStart));
  return { lines: head.split(eol), body: bytes.subarray(bodyStart) };
}

function joinText(f: TextFile, eol: string): Uint8Array {
  const head = new TextEncoder().encode(f.lines.join(eol));
  const out = new Uint8Array(head.length + f.body.length);
  out.set(head);
  out.set(f.body, head.length);
  return out;
}

/** A hostile value for a numeric token list of n items (sizes, DimSize, spacings, vectors). */
function numbers(r: () => number, n: number): string {
  const pick = ['0', '-1', '1', '65536', '65537', '2147483647', '1e308', 'NaN', 'Infinity', '1.5', '-0', '', 'x', '3'];
  const len = r() < 0.7 ? n : Math.floor(r() * (n + 3));
  return Array.from({ length: len }, () =>
    r() < 0.7 ? pick[Math.floor(r() * pick.length)] : String(Math.floor(r() * 4000)),
  ).join(' ');
}

function vector(r: () => number): string {
  const forms = ['none', '()', '(1,0)', '(1,0,0,0)', '(NaN,0,0)', '(1e308,1e308,0)', '(0,0,0)', '(1,0,0'];
  if (r() < 0.5) return forms[Math.floor(r() * forms.length)];
  return `(${numbers(r, 3).split(' ').join(',')})`;
}

const NRRD_VALUES: Record<string, (r: () => number) => string> = {
  type: (r) => ['int16', 'float', 'double', 'uint64', 'block', '', 'uchar', 'int'][Math.floor(r() * 8)],
  dimension: (r) => ['0', '1', '2', '3', '4', '17', '-3', '2.5', '1e9', 'NaN'][Math.floor(r() * 10)],
  sizes: (r) => numbers(r, 3),
  'space directions': (r) => Array.from({ length: 1 + Math.floor(r() * 4) }, () => vector(r)).join(' '),
  'space origin': (r) => vector(r),
  space: (r) => ['left-posterior-superior', 'RAS', 'scanner-xyz', '3D-right-handed', ''][Math.floor(r() * 5)],
  'space dimension': (r) => ['2', '3', '4', '0', 'x'][Math.floor(r() * 5)],
  kinds: (r) => ['domain domain domain', 'vector domain domain', 'list', 'time time time', ''][Math.floor(r() * 5)],
  encoding: (r) => ['raw', 'gzip', 'gz', 'text', 'ascii', 'bzip2', 'hex', 'zrl', ''][Math.floor(r() * 9)],
  endian: (r) => ['little', 'big', 'middle', ''][Math.floor(r() * 4)],
  'data file': (r) => ['body.raw', 'LIST', 'img%03d.raw 0 2 1', '', '../../etc/passwd'][Math.floor(r() * 5)],
  'byte skip': (r) => ['-1', '0', '1', '-2', '1e12', '100000', 'NaN', '3.5'][Math.floor(r() * 8)],
  spacings: (r) => numbers(r, 3),
  'line skip': (r) => ['0', '1', '-1', '99'][Math.floor(r() * 4)],
};

const MHA_VALUES: Record<string, (r: () => number) => string> = {
  NDims: (r) => ['1', '2', '3', '4', '0', '-1', '2.5', 'NaN', ''][Math.floor(r() * 9)],
  DimSize: (r) => numbers(r, 3),
  ElementType: (r) => ['MET_SHORT', 'MET_FLOAT', 'MET_DOUBLE', 'MET_LONG', 'MET_UCHAR', ''][Math.floor(r() * 6)],
  ElementDataFile: (r) => ['LOCAL', 'body.raw', 'LIST', 'img%03d.raw 1 3 1', ''][Math.floor(r() * 5)],
  HeaderSize: (r) => ['-1', '0', '1', '-2', '1e12', '100000', 'NaN', '7.5'][Math.floor(r() * 8)],
  ElementSpacing: (r) => numbers(r, 3),
  Offset: (r) => numbers(r, 3),
  TransformMatrix: (r) => numbers(r, 9),
  CompressedData: (r) => ['True', 'False', 'true', 'yes'][Math.floor(r() * 4)],
  CompressedDataSize: (r) => numbers(r, 1),
  BinaryDataByteOrderMSB: (r) => ['True', 'False', ''][Math.floor(r() * 3)],
  ElementNumberOfChannels: (r) => ['1', '3', '0', '-1', 'x'][Math.floor(r() * 5)],
};

/**
 * Edit a key-value header: change a field's value, delete, duplicate or move a line, or add a field.
 * `sep` is ': ' (NRRD) or ' = ' (MetaImage); line 0 is kept (NRRD's magic).
 */
function mutateLines(
  lines: string[],
  r: () => number,
  sep: string,
  values: Record<string, (r: () => number) => string>,
  firstEditable: number,
): string {
  const keys = Object.keys(values);
  const fieldLines = lines.map((l, i) => (i >= firstEditable && l.includes(sep) ? i : -1)).filter((i) => i >= 0);
  const kind = Math.floor(r() * 10);
  const line = fieldLines[Math.floor(r() * fieldLines.length)] ?? firstEditable;
  if (kind < 6) {
    // Change the value of an existing field (or add one that the file lacks).
    const key = keys[Math.floor(r() * keys.length)];
    const value = values[key](r);
    const at = lines.findIndex((l, i) => i >= firstEditable && l.toLowerCase().startsWith(key.toLowerCase() + sep));
    if (at >= 0) lines[at] = `${key}${sep}${value}`;
    else lines.splice(Math.max(firstEditable, Math.min(line, lines.length)), 0, `${key}${sep}${value}`);
    return `${key}${sep}${value}`;
  }
  if (kind === 6) return `deleted ${lines.splice(line, 1)[0]}`;
  if (kind === 7) {
    lines.splice(line, 0, lines[line] ?? '');
    return `duplicated ${lines[line]}`;
  }
  if (kind === 8) {
    const [moved] = lines.splice(line, 1);
    lines.splice(firstEditable + Math.floor(r() * (lines.length - firstEditable)), 0, moved);
    return `moved ${moved}`;
  }
  const l = lines[line] ?? '';
  const cut = Math.floor(r() * (l.length + 1));
  lines[line] = l.slice(0, cut);
  return `cut line to "${lines[line]}"`;
}

function nrrdParts(b: Uint8Array): TextFile {
  for (let i = 0; i + 1 < b.length; i++) if (b[i] === 10 && b[i + 1] === 10) return splitText(b, i + 1, '\n');
  throw new Error('test seed: no NRRD header end');
}

function mha(v: Volume, compressed: boolean): Uint8Array {
  const raw = new Uint8Array(v.data.buffer, v.data.byteOffset, v.data.byteLength);
  const type = v.data instanceof Int16Array ? 'MET_SHORT' : v.data instanceof Float32Array ? 'MET_FLOAT' : 'MET_UCHAR';
  const m = v.indexToPatient;
  const body = compressed ? zlibSync(raw) : raw;
  const dir = [0, 1, 2].map((c) => [m[c], m[4 + c], m[8 + c]].map((x) => x / v.spacing[c]).join(' ')).join(' ');
  const lines = [
    'ObjectType = Image',
    'NDims = 3',
    'BinaryData = True',
    'BinaryDataByteOrderMSB = False',
    `CompressedData = ${compressed ? 'True' : 'False'}`,
    ...(compressed ? [`CompressedDataSize = ${body.length}`] : []),
    `TransformMatrix = ${dir}`,
    `Offset = ${m[3]} ${m[7]} ${m[11]}`,
    `ElementSpacing = ${v.spacing.join(' ')}`,
    `DimSize = ${v.dims.join(' ')}`,
    `ElementType = ${type}`,
    'ElementDataFile = LOCAL',
    '',
  ];
  return joinText({ lines, body }, '\n');
}

function mhaParts(b: Uint8Array): TextFile {
  const text = new TextDecoder('latin1').decode(b);
  const i = text.indexOf('ElementDataFile = LOCAL\n');
  return splitText(b, i + 'ElementDataFile = LOCAL\n'.length, '\n');
}

// ---------------------------------------------------------------- compressed streams

/** Corrupt a gzip or zlib stream: cut it, flip bits in its deflate data, rewrite ISIZE/CRC/Adler, add bytes. */
function mutateStream(s: Uint8Array, r: () => number, container: 'gzip' | 'zlib'): { bytes: Uint8Array; what: string } {
  const headLen = container === 'gzip' ? 10 : 2;
  const trailer = container === 'gzip' ? 8 : 4;
  const b = s.slice();
  const pick = (lo: number, hi: number) => lo + Math.floor(r() * Math.max(1, hi - lo));
  const kind = Math.floor(r() * 7);
  if (kind === 0) {
    const cut = pick(0, s.length);
    return { bytes: s.slice(0, cut), what: `cut at ${cut}/${s.length}` };
  }
  if (kind === 1) {
    const flips = 1 + Math.floor(r() * 4);
    for (let i = 0; i < flips; i++) b[pick(headLen, s.length - trailer)] ^= 1 << Math.floor(r() * 8);
    return { bytes: b, what: `${flips} bit flips in the deflate data` };
  }
  if (kind === 2 && container === 'gzip') {
    const n = s.length;
    const real = (s[n - 4] | (s[n - 3] << 8) | (s[n - 2] << 16) | (s[n - 1] << 24)) >>> 0;
    const v = [0, 1, real - 1, real + 1, 0xffffffff, 0x7fffffff, real * 2, Math.floor(r() * 2 ** 32)][pick(0, 8)] >>> 0;
    new DataView(b.buffer).setUint32(n - 4, v, true);
    return { bytes: b, what: `ISIZE ${real} -> ${v}` };
  }
  if (kind === 2 || kind === 3) {
    b[s.length - trailer + pick(0, 4)] ^= 0xff;
    return { bytes: b, what: `${container === 'gzip' ? 'CRC32' : 'Adler-32'} corrupted` };
  }
  if (kind === 4) {
    // Header bytes: gzip flags (FEXTRA, FNAME...), method, zlib CMF/FLG.
    const at = pick(0, headLen);
    b[at] = [0, 0xff, 0x08, 0x1f, 0x04, 0x78][pick(0, 6)];
    return { bytes: b, what: `header byte ${at} = ${b[at]}` };
  }
  if (kind === 5) {
    // Trailing garbage, or a second (complete or cut) member after the first.
    const extra =
      r() < 0.5 ? s.subarray(0, pick(1, s.length)) : Uint8Array.from({ length: pick(1, 40) }, () => pick(0, 256));
    const out = new Uint8Array(s.length + extra.length);
    out.set(s);
    out.set(extra, s.length);
    return { bytes: out, what: `${extra.length} bytes appended` };
  }
  // Overwrite a run of the deflate data with a constant (a stored-block or Huffman header gone wrong).
  const at = pick(headLen, s.length - trailer);
  b.fill([0, 0xff][pick(0, 2)], at, Math.min(s.length - trailer, at + pick(1, 16)));
  return { bytes: b, what: `run overwritten at ${at}` };
}

// ---------------------------------------------------------------- tests

describe('structured fuzz: headers field by field, compressed voxel streams', () => {
  const vols = volumes();
  const limits = { maxVoxelBytes: BUDGET };

  it('NIfTI-1 (LE and BE), NIfTI-2: hostile dims, datatype, vox_offset, pixdim, sform rows: 6000 cases', () => {
    const seeds = vols.map((v, i) => writeNifti(v, { gzip: false, version: i === 1 ? 2 : 1 }));
    seeds.push(bigEndianNifti1(seeds[0]));
    expect(seeds.map((s) => new DataView(s.buffer).getInt32(0, true))).toEqual([348, 540, 348, 0x5c010000]);
    // The big-endian seed reads as the same volume before any mutation.
    expect(readNifti(seeds[3], 'be.nii').volume.data).toEqual(vols[0].data);
    const r = uniformSource(1401 + seedBase);
    const t = tally();
    for (let n = 0; n < 6000; n++) {
      const { bytes, what } = mutateNiftiHeader(seeds[n % seeds.length], r);
      // Every third case gzipped, so the same header goes through the streaming path.
      const input = n % 3 === 2 ? gzipSync(bytes) : bytes;
      check(t, `nifti header case ${n} (${what})`, input, () => readNifti(input, 'fuzz.nii', limits));
    }
    if (process.env.FUZZ_LOG) console.log(JSON.stringify(t));
    expect(total(t)).toBe(6000);
    expect(t.ok).toBeGreaterThan(300);
    expect(t.typed.FormatError).toBeGreaterThan(100);
    expect(t.typed.LimitError).toBeGreaterThan(10);
    expect(t.typed.GeometryError).toBeGreaterThan(10);
  });

  it('NRRD field lines (sizes, space directions, encoding, data file, endian, dimension...): 5000 cases', () => {
    const seeds = vols.flatMap((v) => [writeNrrd(v, { gzip: false }), writeNrrd(v)]);
    const bodies = seeds.map((s) => nrrdParts(s).body);
    const r = uniformSource(1402 + seedBase);
    const t = tally();
    for (let n = 0; n < 5000; n++) {
      const parts = nrrdParts(seeds[n % seeds.length]);
      const what = mutateLines(parts.lines, r, ': ', NRRD_VALUES, 1);
      const input = joinText(parts, '\n');
      // A detached "data file" resolves to a seed's body (raw or gzip, maybe of another volume).
      const resolve = () => bodies[Math.floor(r() * bodies.length)];
      check(t, `nrrd case ${n} (${what})`, input, () => readNrrd(input, 'fuzz.nrrd', resolve, limits));
    }
    if (process.env.FUZZ_LOG) console.log(JSON.stringify(t));
    expect(total(t)).toBe(5000);
    expect(t.ok).toBeGreaterThan(250);
    expect(t.typed.FormatError).toBeGreaterThan(250);
  });

  it('MetaImage keys (DimSize, ElementType, ElementDataFile, HeaderSize, NDims...): 5000 cases', () => {
    const seeds = vols.flatMap((v) => [mha(v, false), mha(v, true)]);
    const bodies = seeds.map((s) => mhaParts(s).body);
    const r = uniformSource(1403 + seedBase);
    const t = tally();
    for (let n = 0; n < 5000; n++) {
      const parts = mhaParts(seeds[n % seeds.length]);
      const what = mutateLines(parts.lines, r, ' = ', MHA_VALUES, 0);
      const input = joinText(parts, '\n');
      const resolve = () => bodies[Math.floor(r() * bodies.length)];
      check(t, `mha case ${n} (${what})`, input, () => readMetaImage(input, 'fuzz.mha', resolve, limits));
    }
    if (process.env.FUZZ_LOG) console.log(JSON.stringify(t));
    expect(total(t)).toBe(5000);
    expect(t.ok).toBeGreaterThan(250);
    expect(t.typed.FormatError).toBeGreaterThan(250);
  });

  it('compressed voxel streams (gzip NIfTI, NRRD gzip body, MetaImage zlib) cut, flipped, wrong ISIZE: 6000', () => {
    const r = uniformSource(1404 + seedBase);
    const t = tally();
    const nifti = vols.map((v) => writeNifti(v));
    const nrrd = vols.map((v) => nrrdParts(writeNrrd(v)));
    const meta = vols.map((v) => mhaParts(mha(v, true)));
    // A larger stream too, so that cuts and flips land inside Huffman blocks of a real size.
    const big = createVolume({
      data: new Int16Array(40 * 40 * 8).map((_, i) => Math.round(300 * Math.sin(i / 50)) + (i % 7)),
      dims: [40, 40, 8],
      indexToPatient: indexToPatientFrom([0, 0, 0], [1, 1, 1]),
    });
    nifti.push(writeNifti(big));
    nrrd.push(nrrdParts(writeNrrd(big)));
    for (let n = 0; n < 6000; n++) {
      const which = n % 3;
      const i = Math.floor(n / 3) % 4;
      if (which === 0) {
        const { bytes, what } = mutateStream(nifti[i], r, 'gzip');
        check(t, `nii.gz case ${n} (${what})`, bytes, () => readNifti(bytes, 'fuzz.nii.gz', limits));
      } else if (which === 1) {
        const p = nrrd[i];
        const { bytes, what } = mutateStream(p.body, r, 'gzip');
        const input = joinText({ lines: p.lines, body: bytes }, '\n');
        check(t, `nrrd gzip case ${n} (${what})`, input, () => readNrrd(input, 'fuzz.nrrd', undefined, limits));
      } else {
        const p = meta[i % meta.length];
        const { bytes, what } = mutateStream(p.body, r, 'zlib');
        const input = joinText({ lines: p.lines, body: bytes }, '\n');
        check(t, `mha zlib case ${n} (${what})`, input, () => readMetaImage(input, 'fuzz.mha', undefined, limits));
      }
    }
    if (process.env.FUZZ_LOG) console.log(JSON.stringify(t));
    expect(total(t)).toBe(6000);
    expect(t.ok).toBeGreaterThan(100);
    expect(t.typed.FormatError).toBeGreaterThan(1000);
  });
});
