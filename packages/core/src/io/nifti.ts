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
import { inflateCapped, isGzip } from './inflate.js';
import type { LoadedSeries } from './types.js';
import { voxelsFromBytes, voxelsToLittleEndianBytes } from './rawdata.js';
import { gzipSync } from 'fflate';

const DATATYPES: Record<number, VoxelType> = {
  2: 'uint8', 4: 'int16', 8: 'int32', 16: 'float32', 64: 'float64', 256: 'int8', 512: 'uint16', 768: 'uint32',
};
const DATATYPE_CODES: Record<VoxelType, number> = {
  uint8: 2, int16: 4, int32: 8, float32: 16, float64: 64, int8: 256, uint16: 512, uint32: 768,
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

function parseHeader(bytes: Uint8Array, source?: string): NiftiHeader {
  const kind = detectHeader(bytes);
  if (!kind) throw new FormatError('not a NIfTI file (sizeof_hdr is neither 348 nor 540)', source);
  const need = kind.version === 1 ? 348 : 540;
  if (bytes.length < need) throw new FormatError(`truncated NIfTI header: ${bytes.length} of ${need} bytes`, source);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const le = kind.littleEndian;
  if (kind.version === 1) {
    const magic = cString(bytes, 344, 4);
    if (magic !== 'n+1' && magic !== 'ni1') throw new FormatError(`bad NIfTI-1 magic "${magic}"`, source);
    const f32 = (o: number) => dv.getFloat32(o, le);
    return {
      version: 1,
      littleEndian: le,
      headerSize: 348,
      dim: Array.from({ length: 8 }, (_, i) => dv.getInt16(40 + 2 * i, le)),
      datatype: dv.getInt16(70, le),
      pixdim: Array.from({ length: 8 }, (_, i) => f32(76 + 4 * i)),
      voxOffset: f32(108),
      sclSlope: f32(112),
      sclInter: f32(116),
      qformCode: dv.getInt16(252, le),
      sformCode: dv.getInt16(254, le),
      quatern: [f32(256), f32(260), f32(264)],
      qoffset: [f32(268), f32(272), f32(276)],
      srow: [0, 1, 2].map((r) => [0, 1, 2, 3].map((c) => f32(280 + 16 * r + 4 * c))),
      xyztUnits: bytes[123],
      descrip: cString(bytes, 148, 80),
      magic,
    };
  }
  const magic = cString(bytes, 4, 4);
  if (magic !== 'n+2' && magic !== 'ni2') throw new FormatError(`bad NIfTI-2 magic "${magic}"`, source);
  const f64 = (o: number) => dv.getFloat64(o, le);
  const i64 = (o: number) => Number(dv.getBigInt64(o, le));
  return {
    version: 2,
    littleEndian: le,
    headerSize: 540,
    dim: Array.from({ length: 8 }, (_, i) => i64(16 + 8 * i)),
    datatype: dv.getInt16(12, le),
    pixdim: Array.from({ length: 8 }, (_, i) => f64(104 + 8 * i)),
    voxOffset: i64(168),
    sclSlope: f64(176),
    sclInter: f64(184),
    qformCode: dv.getInt32(344, le),
    sformCode: dv.getInt32(348, le),
    quatern: [f64(352), f64(360), f64(368)],
    qoffset: [f64(376), f64(384), f64(392)],
    srow: [0, 1, 2].map((r) => [0, 1, 2, 3].map((c) => f64(400 + 32 * r + 8 * c))),
    xyztUnits: dv.getInt32(500, le),
    descrip: cString(bytes, 240, 80),
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
      b *= a; c *= a; d *= a;
      a = 0;
    } else a = Math.sqrt(a);
    const qfac = h.pixdim[0] < 0 ? -1 : 1;
    const xd = dx > 0 ? dx : 1, yd = dy > 0 ? dy : 1, zd = (dz > 0 ? dz : 1) * qfac;
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
  warnings.push(`${source ?? 'NIfTI'}: no qform or sform (both codes 0): geometry from pixdim only, origin at 0 (orientation unknown)`);
  if (!(dx > 0 && dy > 0 && dz > 0)) throw new GeometryError(`invalid pixdim ${dx}, ${dy}, ${dz}`, source);
  m[0] = dx;
  m[5] = dy;
  m[10] = dz;
  return m;
}

export interface ReadNiftiOptions {
  /** For a .hdr/.img pair (magic "ni1"/"ni2"): reads the image file named after the header. */
  resolveDetached?: (fileName: string) => Uint8Array;
}

export function readNifti(bytes: Uint8Array, source?: string, options: ReadNiftiOptions = {}): LoadedSeries {
  const warnings: string[] = [];
  let header: NiftiHeader | undefined;
  let data = bytes;
  if (isGzip(bytes)) {
    data = inflateCapped(bytes, {
      container: 'gzip',
      source,
      headBytes: 540,
      limitFromHead: (head) => {
        header = parseHeader(head, source);
        return Math.max(header.headerSize, voxelBytesNeeded(header, source).end);
      },
    });
  }
  const h = header ?? parseHeader(data, source);
  const { type, count, bytesPerVoxel, dims, extraVolumes } = voxelBytesNeeded(h, source);
  if (extraVolumes > 1) warnings.push(`${source ?? 'NIfTI'}: ${extraVolumes} volumes (dims 4-7): the first is read`);
  let pixelBytes: Uint8Array;
  let offset: number;
  if (h.magic.startsWith('ni')) {
    if (!options.resolveDetached || !source) throw new FormatError('header of a .hdr/.img pair: the .img file is needed', source);
    const imgName = source.replace(/\.hdr(\.gz)?$/i, '.img');
    const raw = options.resolveDetached(imgName.split(/[\\/]/).pop()!);
    pixelBytes = isGzip(raw) ? inflateCapped(raw, { container: 'gzip', source: imgName, maxBytes: count * bytesPerVoxel }) : raw;
    offset = 0;
  } else {
    pixelBytes = data;
    offset = Math.max(h.voxOffset, h.headerSize);
    if (!Number.isInteger(offset)) throw new FormatError(`vox_offset ${h.voxOffset} is not an integer`, source);
  }
  const need = offset + count * bytesPerVoxel;
  if (pixelBytes.length < need) {
    throw new FormatError(`truncated: voxel data needs ${need} bytes, file holds ${pixelBytes.length}`, source);
  }
  const voxels = voxelsFromBytes(type, count, pixelBytes, offset, h.littleEndian, source);

  const ras = rasAffine(h, warnings, source);
  const unit = unitScaleMm(h);
  const m = Float64Array.from(ras);
  for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) m[r * 4 + c] *= unit * (r < 2 ? -1 : 1);
  if (!Array.prototype.every.call(m, Number.isFinite) || Math.abs(mat4Det3(m)) < 1e-12) {
    throw new GeometryError('affine is singular or not finite', source);
  }
  const scaled = applyScaling(voxels, h.sclSlope, h.sclInter);
  const volume = createVolume({
    data: scaled,
    dims,
    indexToPatient: m,
    meta: { source, ...(h.descrip ? { seriesDescription: h.descrip } : {}) },
  });
  return { format: 'nifti', volume, warnings };
}

function voxelBytesNeeded(h: NiftiHeader, source?: string) {
  const nd = h.dim[0];
  if (!(nd >= 1 && nd <= 7)) throw new FormatError(`dim[0] = ${nd}: must be 1..7 (or the byte order is wrong)`, source);
  const type = DATATYPES[h.datatype];
  if (!type) throw new FormatError(`unsupported datatype code ${h.datatype} (RGB, complex and 64-bit integers are not read)`, source);
  const size = (i: number) => (i <= nd ? h.dim[i] : 1);
  const dims = [size(1), size(2), size(3)] as const;
  let extraVolumes = 1;
  for (let i = 4; i <= nd; i++) extraVolumes *= Math.max(1, h.dim[i]);
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 1) throw new FormatError(`invalid dimension ${d}`, source);
  }
  const count = dims[0] * dims[1] * dims[2];
  if (count > MAX_VOXELS) throw new LimitError(`header claims ${dims.join(' x ')} voxels, more than ${MAX_VOXELS}`, source);
  const bytesPerVoxel = BYTES_PER_VOXEL[type];
  const offset = Math.max(h.magic.startsWith('ni') ? 0 : h.voxOffset, h.headerSize);
  return { type, count, bytesPerVoxel, dims, extraVolumes, end: offset + count * bytesPerVoxel };
}

/** scl_slope/scl_inter (slope 0 or non-finite means none). Integer results stay integer when they fit. */
function applyScaling(v: VoxelArray, slope: number, inter: number): VoxelArray {
  if (!Number.isFinite(slope) || slope === 0 || !Number.isFinite(inter)) return v;
  if (slope === 1 && inter === 0) return v;
  const integerType = !(v instanceof Float32Array || v instanceof Float64Array);
  if (integerType && Number.isInteger(slope) && Number.isInteger(inter)) {
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < v.length; i++) {
      const x = v[i] * slope + inter;
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
    const type: VoxelType = lo >= -32768 && hi <= 32767 ? 'int16' : lo >= -(2 ** 31) && hi < 2 ** 31 ? 'int32' : 'float64';
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
  if (Math.abs(dotp(u[0], u[1])) > 1e-5 || Math.abs(dotp(u[0], u[2])) > 1e-5 || Math.abs(dotp(u[1], u[2])) > 1e-5) return null;
  const det =
    u[0][0] * (u[1][1] * u[2][2] - u[2][1] * u[1][2]) -
    u[1][0] * (u[0][1] * u[2][2] - u[2][1] * u[0][2]) +
    u[2][0] * (u[0][1] * u[1][2] - u[1][1] * u[0][2]);
  const qfac = det < 0 ? -1 : 1;
  if (qfac < 0) u[2] = u[2].map((x) => -x);
  // R[r][c] = u[c][r]
  const r11 = u[0][0], r12 = u[1][0], r13 = u[2][0];
  const r21 = u[0][1], r22 = u[1][1], r23 = u[2][1];
  const r31 = u[0][2], r32 = u[1][2], r33 = u[2][2];
  let a = r11 + r22 + r33 + 1;
  let b: number, c: number, d: number;
  if (a > 0.5) {
    a = 0.5 * Math.sqrt(a);
    b = (0.25 * (r32 - r23)) / a;
    c = (0.25 * (r13 - r31)) / a;
    d = (0.25 * (r21 - r12)) / a;
  } else {
    const xd = 1 + r11 - (r22 + r33), yd = 1 + r22 - (r11 + r33), zd = 1 + r33 - (r11 + r22);
    if (xd > 1) {
      b = 0.5 * Math.sqrt(xd); c = (0.25 * (r12 + r21)) / b; d = (0.25 * (r13 + r31)) / b; a = (0.25 * (r32 - r23)) / b;
    } else if (yd > 1) {
      c = 0.5 * Math.sqrt(yd); b = (0.25 * (r12 + r21)) / c; d = (0.25 * (r23 + r32)) / c; a = (0.25 * (r13 - r31)) / c;
    } else {
      d = 0.5 * Math.sqrt(zd); b = (0.25 * (r13 + r31)) / d; c = (0.25 * (r23 + r32)) / d; a = (0.25 * (r21 - r12)) / d;
    }
    if (a < 0) { b = -b; c = -c; d = -d; }
  }
  return { b, c, d, qfac, spacing };
}

/**
 * Write NIfTI: version 1 when every geometry number is exactly a float32 (anything read from NIfTI-1 is),
 * else version 2 (float64 header) so the geometry survives exactly. sform and qform both code 1.
 */
export function writeNifti(volume: Volume, options: WriteNiftiOptions = {}): Uint8Array {
  const ras = Float64Array.from(volume.indexToPatient);
  for (let c = 0; c < 4; c++) { ras[c] = -ras[c]; ras[4 + c] = -ras[4 + c]; }
  const q = affineToQuatern(ras);
  const geometryNumbers = [...ras.subarray(0, 12), ...(q ? q.spacing : [])];
  const version = geometryNumbers.every(f32Exact) ? 1 : 2;
  const headerSize = version === 1 ? 348 : 540;
  const voxOffset = headerSize + 4;
  const type = voxelTypeOf(volume.data);
  const bpv = BYTES_PER_VOXEL[type];
  const out = new Uint8Array(voxOffset + volume.data.length * bpv);
  const dv = new DataView(out.buffer);
  const le = true;
  const spacing = q ? q.spacing : [...volume.spacing];
  const pixdim = [q ? q.qfac : 1, spacing[0], spacing[1], spacing[2], 0, 0, 0, 0];
  const dim = [3, volume.dims[0], volume.dims[1], volume.dims[2], 1, 1, 1, 1];
  const descrip = (options.description ?? 'Corridor').slice(0, 79);
  dv.setInt32(0, headerSize, le);
  if (version === 1) {
    dim.forEach((v, i) => dv.setInt16(40 + 2 * i, v, le));
    dv.setInt16(70, DATATYPE_CODES[type], le);
    dv.setInt16(72, bpv * 8, le);
    pixdim.forEach((v, i) => dv.setFloat32(76 + 4 * i, v, le));
    dv.setFloat32(108, voxOffset, le);
    dv.setFloat32(112, 1, le);
    dv.setFloat32(116, 0, le);
    out[123] = 2 | 8; // mm, seconds
    for (let i = 0; i < descrip.length; i++) out[148 + i] = descrip.charCodeAt(i) & 0x7f;
    dv.setInt16(252, q ? 1 : 0, le);
    dv.setInt16(254, 1, le);
    if (q) {
      [q.b, q.c, q.d].forEach((v, i) => dv.setFloat32(256 + 4 * i, v, le));
      [ras[3], ras[7], ras[11]].forEach((v, i) => dv.setFloat32(268 + 4 * i, v, le));
    }
    for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) dv.setFloat32(280 + 16 * r + 4 * c, ras[r * 4 + c], le);
    out.set([0x6e, 0x2b, 0x31, 0], 344); // "n+1\0"
  } else {
    out.set([0x6e, 0x2b, 0x32, 0, 0x0d, 0x0a, 0x1a, 0x0a], 4); // "n+2\0\r\n\032\n"
    dv.setInt16(12, DATATYPE_CODES[type], le);
    dv.setInt16(14, bpv * 8, le);
    dim.forEach((v, i) => dv.setBigInt64(16 + 8 * i, BigInt(v), le));
    pixdim.forEach((v, i) => dv.setFloat64(104 + 8 * i, v, le));
    dv.setBigInt64(168, BigInt(voxOffset), le);
    dv.setFloat64(176, 1, le);
    dv.setFloat64(184, 0, le);
    for (let i = 0; i < descrip.length; i++) out[240 + i] = descrip.charCodeAt(i) & 0x7f;
    dv.setInt32(344, q ? 1 : 0, le);
    dv.setInt32(348, 1, le);
    if (q) {
      [q.b, q.c, q.d].forEach((v, i) => dv.setFloat64(352 + 8 * i, v, le));
      [ras[3], ras[7], ras[11]].forEach((v, i) => dv.setFloat64(376 + 8 * i, v, le));
    }
    for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) dv.setFloat64(400 + 32 * r + 8 * c, ras[r * 4 + c], le);
    dv.setInt32(500, 2 | 8, le);
  }
  out.set(voxelsToLittleEndianBytes(volume.data), voxOffset);
  // mtime 0 in the gzip header keeps output byte-identical for identical input.
  return options.gzip === false ? out : gzipSync(out, { level: 6, mtime: 0 });
}
