/**
 * NIfTI-1 and NIfTI-2 (.nii, .nii.gz; .hdr/.img pairs through a callback). Geometry follows the standard's
 * qform/sform rules and becomes LPS as docs/conventions.md ("NIfTI geometry") states.
 */
import { FormatError, GeometryError, LimitError } from '../errors.js';
import { mat4Det3, type Mat4 } from '../math/mat4.js';
import {
  BYTES_PER_VOXEL,
  MAX_VOXELS,
  allocateVoxels,
  createVolume,
  voxelTypeOf,
  type Volume,
  type VoxelArray,
  type VoxelType,
} from '../volume/volume.js';
import { MAX_DEFLATE_RATIO, gunzipExact, gzipDeclaredSize, inflateCapped, inflateInto, isGzip } from './inflate.js';
import type { LoadedSeries } from './types.js';
import {
  checkVoxelClaim,
  swapBytesInPlace,
  viewVoxels,
  voxelsFromBytes,
  voxelsToLittleEndianBytes,
  type VoxelLimits,
} from './rawdata.js';
import { gzipSync } from 'fflate';

const DATATYPES: Record<number, VoxelType> = {
  2: 'uint8',
  4: 'int16',
  8: 'int32',
  16: 'float32',
  64: 'float64',
  256: 'int8',
  512: 'uint16',
  768: 'uint32',
};
const DATATYPE_CODES: Record<VoxelType, number> = {
  uint8: 2,
  int16: 4,
  int32: 8,
  float32: 16,
  float64: 64,
  int8: 256,
  uint16: 512,
  uint32: 768,
};

interface NiftiHeader {
  version: 1 | 2;
  littleEndian: boolean;
  headerSize: number;
  dim: number[]; // dim[0..7]
  datatype: number;
  pixdim: number[];
  voxOffset: number;
  sclSlope: number;
  sclInter: number;
  qformCode: number;
  sformCode: number;
  quatern: [number, number, number];
  qoffset: [number, number, number];
  srow: number[][];
  xyztUnits: number;
  descrip: string;
  magic: string;
}

function cString(bytes: Uint8Array, start: number, length: number): string {
  let s = '';
  for (let i = start; i < start + length && i < bytes.length && bytes[i] !== 0; i++) s += String.fromCharCode(bytes[i]);
  return s;
}

/** Which NIfTI version and byte order the first bytes declare, or null when they are not a NIfTI header. */
function detectHeader(bytes: Uint8Array): { version: 1 | 2; littleEndian: boolean } | null {
  if (bytes.length < 4) return null;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const le of [true, false]) {
    const size = dv.getInt32(0, le);
    if (size === 348) return { version: 1, littleEndian: le };
    if (size === 540) return { version: 2, littleEndian: le };
  }
  return null;
}

export function isNiftiHeader(bytes: Uint8Array): boolean {
  const h = detectHeader(bytes);
  if (!h) return false;
  if (h.version === 1) return bytes.length >= 348 && /^n[i+]1$/.test(cString(bytes, 344, 4));
  return bytes.length >= 12 && /^n[i+]2$/.test(cString(bytes, 4, 4));
}

/** How a header field is stored: its byte offset and number type. */
interface Field {
  at: number;
  kind: 'u8' | 'i16' | 'i32' | 'i64' | 'f32' | 'f64';
}

/** The fields Corridor reads or writes, at the offsets of nifti1.h and nifti2.h. Arrays are contiguous. */
interface Layout {
  version: 1 | 2;
  headerSize: number;
  magicAt: number;
  datatype: Field;
  bitpix: Field;
  /** dim[0..7]. */
  dim: Field;
  /** pixdim[0..7]; pixdim[0] is qfac. */
  pixdim: Field;
  voxOffset: Field;
  sclSlope: Field;
  sclInter: Field;
  xyztUnits: Field;
  descripAt: number;
  qformCode: Field;
  sformCode: Field;
  /** quatern_b, c, d. */
  quatern: Field;
  /** qoffset_x, y, z. */
  qoffset: Field;
  /** srow_x[0..3], srow_y[0..3], srow_z[0..3]. */
  srow: Field;
}

type Kind = Field['kind'];
type FieldName = Exclude<keyof Layout, 'version' | 'headerSize' | 'magicAt' | 'descripAt'>;
/**
 * One row per field: [NIfTI-1 offset, type, NIfTI-2 offset, type], from nifti1.h and nifti2.h. The
 * rows look alike to the duplicates tool; they are a table, read row by row against the two headers.
 */
const FIELD_TABLE: Record<FieldName, [number, Kind, number, Kind]> = {
  datatype: [70, 'i16', 12, 'i16'],
  bitpix: [72, 'i16', 14, 'i16'],
  dim: [40, 'i16', 16, 'i64'],
  pixdim: [76, 'f32', 104, 'f64'],
  voxOffset: [108, 'f32', 168, 'i64'],
  sclSlope: [112, 'f32', 176, 'f64'],
  sclInter: [116, 'f32', 184, 'f64'],
  xyztUnits: [123, 'u8', 500, 'i32'],
  qformCode: [252, 'i16', 344, 'i32'],
  sformCode: [254, 'i16', 348, 'i32'],
  quatern: [256, 'f32', 352, 'f64'],
  qoffset: [268, 'f32', 376, 'f64'],
  srow: [280, 'f32', 400, 'f64'],
};

function layout(version: 1 | 2): Layout {
  const pick = (row: [number, Kind, number, Kind]): Field =>
    version === 1 ? { at: row[0], kind: row[1] } : { at: row[2], kind: row[3] };
  const fields = Object.fromEntries(Object.entries(FIELD_TABLE).map(([name, row]) => [name, pick(row)]));
  return {
    version,
    headerSize: version === 1 ? 348 : 540,
    magicAt: version === 1 ? 344 : 4,
    descripAt: version === 1 ? 148 : 240,
    ...(fields as Record<FieldName, Field>),
  };
}

const NIFTI1 = layout(1);
const NIFTI2 = layout(2);

const KIND_BYTES: Record<Field['kind'], number> = { u8: 1, i16: 2, i32: 4, i64: 8, f32: 4, f64: 8 };

/** Element n of field f (n = 0 for a scalar). */
function getField(dv: DataView, f: Field, le: boolean, n = 0): number {
  const o = f.at + n * KIND_BYTES[f.kind];
  switch (f.kind) {
    case 'u8':
      return dv.getUint8(o);
    case 'i16':
      return dv.getInt16(o, le);
    case 'i32':
      return dv.getInt32(o, le);
    case 'i64':
      return Number(dv.getBigInt64(o, le));
    case 'f32':
      return dv.getFloat32(o, le);
    case 'f64':
      return dv.getFloat64(o, le);
  }
}

/** Write values into field f, element 0 first (little-endian: the writer's byte order). */
function putField(dv: DataView, f: Field, values: number | readonly number[]): void {
  const list = typeof values === 'number' ? [values] : values;
  const size = KIND_BYTES[f.kind];
  list.forEach((v, n) => {
    const o = f.at + n * size;
    switch (f.kind) {
      case 'u8':
        dv.setUint8(o, v);
        break;
      case 'i16':
        dv.setInt16(o, v, true);
        break;
      case 'i32':
        dv.setInt32(o, v, true);
        break;
      case 'i64':
        dv.setBigInt64(o, BigInt(v), true);
        break;
      case 'f32':
        dv.setFloat32(o, v, true);
        break;
      case 'f64':
        dv.setFloat64(o, v, true);
        break;
    }
  });
}

function parseHeader(bytes: Uint8Array, source?: string): NiftiHeader {
  const kind = detectHeader(bytes);
  if (!kind) throw new FormatError('not a NIfTI file (sizeof_hdr is neither 348 nor 540)', source);
  const L = kind.version === 1 ? NIFTI1 : NIFTI2;
  if (bytes.length < L.headerSize) {
    throw new FormatError(`truncated NIfTI header: ${bytes.length} of ${L.headerSize} bytes`, source);
  }
  const magic = cString(bytes, L.magicAt, 4);
  if (magic !== `n+${L.version}` && magic !== `ni${L.version}`) {
    throw new FormatError(`bad NIfTI-${L.version} magic "${magic}"`, source);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const le = kind.littleEndian;
  const get = (f: Field, n = 0) => getField(dv, f, le, n);
  const list = (f: Field, count: number) => Array.from({ length: count }, (_, n) => get(f, n));
  const srow = list(L.srow, 12);
  return {
    version: L.version,
    littleEndian: le,
    headerSize: L.headerSize,
    dim: list(L.dim, 8),
    datatype: get(L.datatype),
    pixdim: list(L.pixdim, 8),
    voxOffset: get(L.voxOffset),
    sclSlope: get(L.sclSlope),
    sclInter: get(L.sclInter),
    qformCode: get(L.qformCode),
    sformCode: get(L.sformCode),
    quatern: [get(L.quatern, 0), get(L.quatern, 1), get(L.quatern, 2)],
    qoffset: [get(L.qoffset, 0), get(L.qoffset, 1), get(L.qoffset, 2)],
    srow: [0, 1, 2].map((r) => srow.slice(4 * r, 4 * r + 4)),
    xyztUnits: get(L.xyztUnits),
    descrip: cString(bytes, L.descripAt, 80),
    magic,
  };
}

/** Spatial unit scale to mm (xyzt_units & 7: 1 metre, 2 mm, 3 micron; 0 unknown, taken as mm). */
function unitScaleMm(h: NiftiHeader): number {
  const unit = h.xyztUnits & 7;
  return unit === 1 ? 1000 : unit === 3 ? 0.001 : 1;
}

/** The RAS affine of the header by the standard's three methods (nifti1.h "METHODS"). */
function rasAffine(h: NiftiHeader, warnings: string[], source?: string): Mat4 {
  const m = new Float64Array(16);
  m[15] = 1;
  if (h.sformCode > 0) {
    for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) m[r * 4 + c] = h.srow[r][c];
    return m;
  }
  const [dx, dy, dz] = [h.pixdim[1], h.pixdim[2], h.pixdim[3]];
  if (h.qformCode > 0) {
    let [b, c, d] = h.quatern;
    let a = 1 - (b * b + c * c + d * d);
    if (a < 1e-7) {
      // Rounding made the quaternion slightly longer than 1: renormalize, as nifti1_io does.
      a = 1 / Math.sqrt(b * b + c * c + d * d);
      b *= a;
      c *= a;
      d *= a;
      a = 0;
    } else a = Math.sqrt(a);
    const qfac = h.pixdim[0] < 0 ? -1 : 1;
    const xd = dx > 0 ? dx : 1,
      yd = dy > 0 ? dy : 1,
      zd = (dz > 0 ? dz : 1) * qfac;
    const R = [
      [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
      [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
      [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
    ];
    for (let r = 0; r < 3; r++) {
      m[r * 4] = R[r][0] * xd;
      m[r * 4 + 1] = R[r][1] * yd;
      m[r * 4 + 2] = R[r][2] * zd;
      m[r * 4 + 3] = h.qoffset[r];
    }
    return m;
  }
  warnings.push(
    `${source ?? 'NIfTI'}: no qform or sform (both codes 0): geometry from pixdim only, origin at 0 ` +
      `(orientation unknown)`,
  );
  if (!(dx > 0 && dy > 0 && dz > 0)) throw new GeometryError(`invalid pixdim ${dx}, ${dy}, ${dz}`, source);
  m[0] = dx;
  m[5] = dy;
  m[10] = dz;
  return m;
}

export interface ReadNiftiOptions extends VoxelLimits {
  /** For a .hdr/.img pair (magic "ni1"/"ni2"): reads the image file named after the header. */
  resolveDetached?: (fileName: string) => Uint8Array;
  /**
   * The caller hands `bytes` over (a file read for this call alone): uncompressed voxels are then a view
   * into them where aligned (vox_offset a multiple of the voxel size; 352 is), not a copy, and may be
   * byte-swapped in place. Default false: bytes are never changed and the volume owns its voxels.
   */
  adoptBytes?: boolean;
}

/**
 * Before allocating for a gzip stream: the header's needs must fit what the stream can hold (deflate's
 * 1032:1 at most) and, when the whole file the header describes is under 4 GiB, the gzip trailer's ISIZE.
 */
function checkGzipCanHold(bytes: Uint8Array, need: number, fileEnd: number, source?: string): void {
  const most = bytes.length * MAX_DEFLATE_RATIO + 65536;
  if (need > most) {
    throw new LimitError(`header needs ${need} bytes, more than a ${bytes.length}-byte gzip stream can hold`, source);
  }
  const isize = gzipDeclaredSize(bytes);
  if (isize !== undefined && fileEnd < 2 ** 32 && isize < need) {
    const why = `its trailer gives ${isize} bytes uncompressed, the header needs ${need}`;
    throw new FormatError(`truncated gzip data: ${why}`, source);
  }
}

export function readNifti(bytes: Uint8Array, source?: string, options: ReadNiftiOptions = {}): LoadedSeries {
  const warnings: string[] = [];
  if (bytes.length === 0) throw new FormatError('empty file', source);
  let header: NiftiHeader | undefined;
  let inflated: VoxelArray | undefined;
  if (isGzip(bytes)) {
    // The usual file, one member holding the header and one volume exactly (its trailer says so): inflate
    // it in one pass into one buffer and view the voxels in place, when vox_offset is aligned for them.
    // The head from the first 4 KB of input only: more could inflate to megabytes of chunks (zeros: 1000:1).
    // (A peek at a cut input may fail where the whole would not: any failure here leaves the file to the
    // streaming read below, which reports its problem.)
    const peek = bytes.subarray(0, Math.min(bytes.length, 4096));
    let hh: NiftiHeader | undefined;
    try {
      hh = parseHeader(inflateCapped(peek, { container: 'gzip', maxBytes: 540, verify: false, source }), source);
    } catch {
      hh = undefined;
    }
    if (hh && !hh.magic.startsWith('ni')) {
      const need = voxelBytesNeeded(hh, source, options);
      if (need.extraVolumes === 1 && need.offset % need.bytesPerVoxel === 0 && need.end === need.fileEnd) {
        checkGzipCanHold(bytes, need.end, need.fileEnd, source);
        const whole = gunzipExact(bytes, need.end, source);
        if (whole) {
          header = hh;
          inflated = viewVoxels(need.type, whole, need.offset, need.count);
        }
      }
    }
  }
  if (!inflated && (isGzip(bytes) || /\.gz$/i.test(source ?? ''))) {
    // Inflate into the final voxel array: nothing but the header and the voxels is kept.
    inflateInto(bytes, {
      container: 'gzip',
      source,
      headBytes: 540,
      plan: (head) => {
        const hh = (header = parseHeader(head, source));
        const need = voxelBytesNeeded(hh, source, options);
        if (hh.magic.startsWith('ni')) return { skip: 0, dest: new Uint8Array(0) };
        checkGzipCanHold(bytes, need.end, need.fileEnd, source);
        const v = (inflated = allocateVoxels(need.type, need.count, source));
        return { skip: need.offset, dest: new Uint8Array(v.buffer, v.byteOffset, v.byteLength) };
      },
    });
  }
  const h = header ?? parseHeader(bytes, source);
  const { type, count, bytesPerVoxel, dims, extraVolumes } = voxelBytesNeeded(h, source, options);
  if (extraVolumes > 1) warnings.push(`${source ?? 'NIfTI'}: ${extraVolumes} volumes (dims 4-7): the first is read`);
  let pixelBytes: Uint8Array;
  let offset: number;
  let inflatedHere = false;
  if (h.magic.startsWith('ni')) {
    if (!options.resolveDetached || !source)
      throw new FormatError('header of a .hdr/.img pair: the .img file is needed', source);
    const imgName = source.replace(/\.hdr(\.gz)?$/i, '.img');
    const parts = imgName.split(/[\\/]/);
    const raw = options.resolveDetached(parts[parts.length - 1]);
    inflatedHere = isGzip(raw);
    pixelBytes = inflatedHere
      ? inflateCapped(raw, { container: 'gzip', source: imgName, maxBytes: count * bytesPerVoxel })
      : raw;
    offset = 0;
  } else {
    pixelBytes = bytes;
    offset = voxelBytesNeeded(h, source, options).offset;
    if (h.voxOffset < h.headerSize) {
      const where = `voxels read from byte ${offset}`;
      warnings.push(`${source ?? 'NIfTI'}: vox_offset ${h.voxOffset} is inside the header; ${where}`);
    }
  }
  let voxels: VoxelArray;
  if (inflated) {
    voxels = inflated;
    if (h.littleEndian !== (new Uint8Array(new Uint16Array([1]).buffer)[0] === 1)) {
      swapBytesInPlace(new Uint8Array(voxels.buffer, voxels.byteOffset, voxels.byteLength), bytesPerVoxel);
    }
  } else {
    const need = offset + count * bytesPerVoxel;
    if (pixelBytes.length < need) {
      throw new FormatError(`truncated: voxel data needs ${need} bytes, file holds ${pixelBytes.length}`, source);
    }
    // Inflated here (a detached .img.gz): ours to adopt; the caller's bytes only when handed over.
    const adopt = !!options.adoptBytes || inflatedHere;
    voxels = voxelsFromBytes(type, count, pixelBytes, offset, h.littleEndian, source, adopt);
  }

  const ras = rasAffine(h, warnings, source);
  const unit = unitScaleMm(h);
  const m = Float64Array.from(ras);
  for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) m[r * 4 + c] *= unit * (r < 2 ? -1 : 1);
  if (!Array.prototype.every.call(m, Number.isFinite) || Math.abs(mat4Det3(m)) < 1e-12) {
    throw new GeometryError('affine is singular or not finite', source);
  }
  // NIfTI: a slope of 0 or one that is not finite means no scaling (nifti1_io takes a non-finite value as 0).
  if (!Number.isFinite(h.sclSlope) || (!Number.isFinite(h.sclInter) && h.sclSlope !== 0)) {
    const what = `${source ?? 'NIfTI'}: scl_slope ${h.sclSlope}, scl_inter ${h.sclInter}`;
    const effect = Number.isFinite(h.sclSlope) ? ' (the intercept)' : ': no scaling applied';
    warnings.push(`${what}: a value that is not finite is taken as 0${effect}`);
  }
  const scaled = applyScaling(voxels, h.sclSlope, Number.isFinite(h.sclInter) ? h.sclInter : 0);
  const volume = createVolume({
    data: scaled,
    dims,
    indexToPatient: m,
    meta: { source, ...(h.descrip ? { seriesDescription: h.descrip } : {}) },
  });
  return { format: 'nifti', volume, warnings };
}

function voxelBytesNeeded(h: NiftiHeader, source?: string, limits: VoxelLimits = {}) {
  const nd = h.dim[0];
  if (!(nd >= 1 && nd <= 7)) throw new FormatError(`dim[0] = ${nd}: must be 1..7 (or the byte order is wrong)`, source);
  const type = DATATYPES[h.datatype];
  if (!type)
    throw new FormatError(
      `unsupported datatype code ${h.datatype} (RGB, complex and 64-bit integers are not read)`,
      source,
    );
  const size = (i: number) => (i <= nd ? h.dim[i] : 1);
  const dims = [size(1), size(2), size(3)] as const;
  let extraVolumes = 1;
  for (let i = 4; i <= nd; i++) extraVolumes *= Math.max(1, h.dim[i]);
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 1) throw new FormatError(`invalid dimension ${d}`, source);
  }
  const bytesPerVoxel = BYTES_PER_VOXEL[type];
  const count = checkVoxelClaim(dims, bytesPerVoxel, source, limits);
  if (count > MAX_VOXELS) {
    throw new LimitError(`header claims ${dims.join(' x ')} voxels, more than ${MAX_VOXELS}`, source);
  }
  const single = !h.magic.startsWith('ni');
  // vox_offset of a single file: a whole number of bytes, at most the 2 GiB budget past the header.
  if (single && !(Number.isInteger(h.voxOffset) && h.voxOffset >= 0 && h.voxOffset <= 2 ** 31)) {
    throw new FormatError(`vox_offset ${h.voxOffset} is not a byte offset (a whole number, not negative)`, source);
  }
  const offset = Math.max(single ? h.voxOffset : 0, h.headerSize);
  const end = offset + count * bytesPerVoxel;
  const fileEnd = offset + count * bytesPerVoxel * extraVolumes;
  return { type, count, bytesPerVoxel, dims, extraVolumes, offset, end, fileEnd };
}

/** scl_slope/scl_inter (slope 0 or non-finite means none). Integer results stay integer when they fit. */
function applyScaling(v: VoxelArray, slope: number, inter: number): VoxelArray {
  if (!Number.isFinite(slope) || slope === 0 || !Number.isFinite(inter)) return v;
  if (slope === 1 && inter === 0) return v;
  const integerType = !(v instanceof Float32Array || v instanceof Float64Array);
  if (integerType && Number.isInteger(slope) && Number.isInteger(inter)) {
    let lo = Infinity,
      hi = -Infinity;
    for (let i = 0; i < v.length; i++) {
      const x = v[i] * slope + inter;
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
    const type: VoxelType =
      lo >= -32768 && hi <= 32767 ? 'int16' : lo >= -(2 ** 31) && hi < 2 ** 31 ? 'int32' : 'float64';
    const out = allocateVoxels(type, v.length);
    for (let i = 0; i < v.length; i++) out[i] = v[i] * slope + inter;
    return out;
  }
  const out = v instanceof Float64Array ? new Float64Array(v.length) : new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i] * slope + inter;
  return out;
}

export interface WriteNiftiOptions {
  /** gzip the file (.nii.gz); default true. */
  gzip?: boolean;
  /** Text for the header's descrip field (80 bytes at most). */
  description?: string;
  /**
   * NIfTI version. Default: 1 when every geometry number is exactly a float32, else 2 (float64 header),
   * so the geometry survives exactly. Forcing 1 rounds the geometry to float32 (about 6e-5 mm at 1000 mm).
   */
  version?: 1 | 2;
}

const f32Exact = (x: number) => Math.fround(x) === x;

/**
 * Quaternion (b, c, d), qfac and spacing of a RAS affine whose 3x3 is a rotation times positive spacing,
 * or null when it is sheared (then only the sform is written). From nifti_mat44_to_quatern.
 */
function affineToQuatern(m: Mat4): { b: number; c: number; d: number; qfac: number; spacing: number[] } | null {
  const cols = [0, 1, 2].map((c) => [m[c], m[4 + c], m[8 + c]]);
  const spacing = cols.map((v) => Math.hypot(v[0], v[1], v[2]));
  const u = cols.map((v, i) => v.map((x) => x / spacing[i]));
  const dotp = (a: number[], b: number[]) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
  if (Math.abs(dotp(u[0], u[1])) > 1e-5 || Math.abs(dotp(u[0], u[2])) > 1e-5 || Math.abs(dotp(u[1], u[2])) > 1e-5)
    return null;
  const det =
    u[0][0] * (u[1][1] * u[2][2] - u[2][1] * u[1][2]) -
    u[1][0] * (u[0][1] * u[2][2] - u[2][1] * u[0][2]) +
    u[2][0] * (u[0][1] * u[1][2] - u[1][1] * u[0][2]);
  const qfac = det < 0 ? -1 : 1;
  if (qfac < 0) u[2] = u[2].map((x) => -x);
  // R[r][c] = u[c][r]
  const r11 = u[0][0],
    r12 = u[1][0],
    r13 = u[2][0];
  const r21 = u[0][1],
    r22 = u[1][1],
    r23 = u[2][1];
  const r31 = u[0][2],
    r32 = u[1][2],
    r33 = u[2][2];
  let a = r11 + r22 + r33 + 1;
  let b: number, c: number, d: number;
  if (a > 0.5) {
    a = 0.5 * Math.sqrt(a);
    b = (0.25 * (r32 - r23)) / a;
    c = (0.25 * (r13 - r31)) / a;
    d = (0.25 * (r21 - r12)) / a;
  } else {
    const xd = 1 + r11 - (r22 + r33),
      yd = 1 + r22 - (r11 + r33),
      zd = 1 + r33 - (r11 + r22);
    if (xd > 1) {
      b = 0.5 * Math.sqrt(xd);
      c = (0.25 * (r12 + r21)) / b;
      d = (0.25 * (r13 + r31)) / b;
      a = (0.25 * (r32 - r23)) / b;
    } else if (yd > 1) {
      c = 0.5 * Math.sqrt(yd);
      b = (0.25 * (r12 + r21)) / c;
      d = (0.25 * (r23 + r32)) / c;
      a = (0.25 * (r13 - r31)) / c;
    } else {
      d = 0.5 * Math.sqrt(zd);
      b = (0.25 * (r13 + r31)) / d;
      c = (0.25 * (r23 + r32)) / d;
      a = (0.25 * (r21 - r12)) / d;
    }
    if (a < 0) {
      b = -b;
      c = -c;
      d = -d;
    }
  }
  return { b, c, d, qfac, spacing };
}

/**
 * Write NIfTI: version 1 when every geometry number is exactly a float32 (anything read from NIfTI-1 is),
 * else version 2 (float64 header) so the geometry survives exactly (options.version overrides).
 * sform and qform both code 1; the qform only when the affine is a rotation times positive spacing.
 */
export function writeNifti(volume: Volume, options: WriteNiftiOptions = {}): Uint8Array {
  const ras = Float64Array.from(volume.indexToPatient);
  for (let c = 0; c < 4; c++) {
    ras[c] = -ras[c];
    ras[4 + c] = -ras[4 + c];
  }
  const q = affineToQuatern(ras);
  const geometryNumbers = [...ras.subarray(0, 12), ...(q ? q.spacing : [])];
  const L = (options.version ?? (geometryNumbers.every(f32Exact) ? 1 : 2)) === 1 ? NIFTI1 : NIFTI2;
  const voxOffset = L.headerSize + 4; // 4 bytes of "no extensions"
  const type = voxelTypeOf(volume.data);
  const bpv = BYTES_PER_VOXEL[type];
  const out = new Uint8Array(voxOffset + volume.data.length * bpv);
  const dv = new DataView(out.buffer);
  const spacing = q ? q.spacing : [...volume.spacing];
  const descrip = (options.description ?? 'Corridor').slice(0, 79);
  dv.setInt32(0, L.headerSize, true);
  // "n+1\0", or "n+2\0\r\n\032\n" (NIfTI-2's magic carries a check against text-mode transfers).
  out.set(L.version === 1 ? [0x6e, 0x2b, 0x31, 0] : [0x6e, 0x2b, 0x32, 0, 0x0d, 0x0a, 0x1a, 0x0a], L.magicAt);
  putField(dv, L.datatype, DATATYPE_CODES[type]);
  putField(dv, L.bitpix, bpv * 8);
  putField(dv, L.dim, [3, volume.dims[0], volume.dims[1], volume.dims[2], 1, 1, 1, 1]);
  putField(dv, L.pixdim, [q ? q.qfac : 1, spacing[0], spacing[1], spacing[2], 0, 0, 0, 0]);
  putField(dv, L.voxOffset, voxOffset);
  putField(dv, L.sclSlope, 1);
  putField(dv, L.sclInter, 0);
  putField(dv, L.xyztUnits, 2 | 8); // mm, seconds
  for (let i = 0; i < descrip.length; i++) out[L.descripAt + i] = descrip.charCodeAt(i) & 0x7f;
  putField(dv, L.qformCode, q ? 1 : 0);
  putField(dv, L.sformCode, 1);
  if (q) {
    putField(dv, L.quatern, [q.b, q.c, q.d]);
    putField(dv, L.qoffset, [ras[3], ras[7], ras[11]]);
  }
  putField(dv, L.srow, Array.from(ras.subarray(0, 12)));
  out.set(voxelsToLittleEndianBytes(volume.data), voxOffset);
  // mtime 0 in the gzip header keeps output byte-identical for identical input.
  return options.gzip === false ? out : gzipSync(out, { level: 6, mtime: 0 });
}
