/**
 * NRRD (NRRD0001-0005): raw, gzip and text encodings, attached or detached data, `space` mapped to LPS
 * (docs/conventions.md). Corridor writes `space: left-posterior-superior` with full float64 precision.
 */
import { gzipSync } from 'fflate';
import { FormatError, GeometryError, LimitError } from '../errors.js';
import {
  BYTES_PER_VOXEL,
  MAX_VOXELS,
  allocateVoxels,
  createVolume,
  voxelTypeOf,
  type Volume,
  type VoxelType,
} from '../volume/volume.js';
import { inflateInto } from './inflate.js';
import {
  checkVoxelClaim,
  parseNumber,
  swapBytesInPlace,
  voxelsFromBytes,
  voxelsToLittleEndianBytes,
  type VoxelLimits,
} from './rawdata.js';
import type { LoadedSeries } from './types.js';

const TYPES: Record<string, VoxelType> = {};
for (const [t, names] of Object.entries({
  int8: ['signed char', 'int8', 'int8_t'],
  uint8: ['uchar', 'unsigned char', 'uint8', 'uint8_t'],
  int16: ['short', 'short int', 'signed short', 'signed short int', 'int16', 'int16_t'],
  uint16: ['ushort', 'unsigned short', 'unsigned short int', 'uint16', 'uint16_t'],
  int32: ['int', 'signed int', 'int32', 'int32_t'],
  uint32: ['uint', 'unsigned int', 'uint32', 'uint32_t'],
  float32: ['float'],
  float64: ['double'],
}))
  for (const n of names) TYPES[n] = t as VoxelType;

/** Sign flips that take each NRRD space to LPS. */
const SPACES: Record<string, [number, number, number]> = {
  'left-posterior-superior': [1, 1, 1],
  lps: [1, 1, 1],
  'right-anterior-superior': [-1, -1, 1],
  ras: [-1, -1, 1],
  'left-anterior-superior': [1, -1, 1],
  las: [1, -1, 1],
  'right-posterior-superior': [-1, 1, 1],
  rps: [-1, 1, 1],
};

const MAX_HEADER_BYTES = 1 << 20;
/** Most axes a NRRD file may have (teem's NRRD_DIM_MAX); a medical image has 3 or 4. */
const MAX_NRRD_DIMENSION = 16;

/** Axis kinds that are never spatial (NRRD spec); `.*-matrix` and `.*-tensor` cover the matrix and tensor kinds. */
const NON_SPATIAL_KINDS = [
  'list',
  'vector',
  'covariant-vector',
  'normal',
  'rgb-color',
  'rgba-color',
  'hsv-color',
  'xyz-color',
  'time',
  '3-vector',
  'complex',
  'point',
  'scalar',
  '2-vector',
  '4-vector',
  'quaternion',
  '.*-matrix',
  '.*-tensor',
];
const NON_SPATIAL_KIND = new RegExp(`^(${NON_SPATIAL_KINDS.join('|')})$`, 'i');

export function isNrrd(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && String.fromCharCode(...bytes.subarray(0, 7)) === 'NRRD000';
}

function parseVector(text: string, field: string, source?: string): number[] | null {
  const t = text.trim();
  if (t === 'none') return null;
  const m = /^\(([^)]*)\)$/.exec(t);
  if (!m) throw new FormatError(`field "${field}": "${text}" is not a vector like (x,y,z)`, source);
  return m[1].split(',').map((s) => parseNumber(s, field, source));
}

function splitVectors(text: string): string[] {
  return text.trim().match(/\([^)]*\)|none/g) ?? [];
}

export function readNrrd(
  bytes: Uint8Array,
  source?: string,
  resolveDetached?: (fileName: string) => Uint8Array,
  limits: VoxelLimits = {},
): LoadedSeries {
  if (!isNrrd(bytes)) throw new FormatError('not a NRRD file (no "NRRD000x" magic)', source);
  const warnings: string[] = [];
  // The header ends at the first empty line; find it without decoding the (binary) data as text.
  let end = -1,
    dataStart = -1;
  const limit = Math.min(bytes.length, MAX_HEADER_BYTES);
  for (let i = 0; i < limit - 1; i++) {
    if (bytes[i] === 10 && bytes[i + 1] === 10) {
      end = i;
      dataStart = i + 2;
      break;
    }
    if (bytes[i] === 10 && bytes[i + 1] === 13 && bytes[i + 2] === 10) {
      end = i;
      dataStart = i + 3;
      break;
    }
  }
  if (end < 0) end = dataStart = limit; // detached headers may end without an empty line
  const lines = new TextDecoder('latin1').decode(bytes.subarray(0, end)).split(/\r?\n/);
  const fields: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const idx = line.indexOf(': ');
    if (idx < 0) {
      if (line.includes(':=')) continue; // key/value pairs: not geometry
      throw new FormatError(`malformed header line "${line.slice(0, 60)}"`, source);
    }
    fields[line.slice(0, idx).trim().toLowerCase()] = line.slice(idx + 2);
  }
  const req = (k: string) => {
    const v = fields[k];
    if (v === undefined) throw new FormatError(`missing required field "${k}"`, source);
    return v;
  };
  const type = TYPES[req('type').trim().toLowerCase()];
  if (!type) throw new FormatError(`unsupported type "${fields.type}"`, source);
  const dimension = parseNumber(req('dimension'), 'dimension', source);
  // NRRD allows 16 axes (teem's NRRD_DIM_MAX); refuse more before splitting any per-axis field.
  if (!Number.isInteger(dimension) || dimension < 1 || dimension > MAX_NRRD_DIMENSION) {
    const claimed = fields.dimension.trim().slice(0, 20);
    throw new FormatError(`dimension ${claimed}: NRRD allows 1 to ${MAX_NRRD_DIMENSION} axes`, source);
  }
  const sizes = req('sizes')
    .trim()
    .split(/\s+/)
    .map((s) => parseNumber(s, 'sizes', source));
  if (sizes.length !== dimension || !sizes.every((s) => Number.isSafeInteger(s) && s >= 1)) {
    throw new FormatError(`sizes "${fields.sizes}" do not give ${dimension} positive integers`, source);
  }
  const kinds = fields.kinds?.trim().split(/\s+/);
  // Axes that are not spatial (a leading vector/time axis) are accepted only with size 1.
  let spatial = sizes.map((_, i) => i);
  const directionsText = fields['space directions'] ? splitVectors(fields['space directions']) : null;
  if (directionsText && directionsText.length === dimension) {
    spatial = spatial.filter((i) => directionsText[i] !== 'none');
  } else if (kinds && kinds.length === dimension) {
    spatial = spatial.filter((i) => !NON_SPATIAL_KIND.test(kinds[i]));
  }
  const isSpatial = new Set(spatial);
  for (let i = 0; i < dimension; i++) {
    if (!isSpatial.has(i) && sizes[i] !== 1) {
      throw new FormatError(`non-spatial axis ${i} of size ${sizes[i]} is not supported`, source);
    }
  }
  if (spatial.length < 1 || spatial.length > 3)
    throw new FormatError(`${spatial.length} spatial axes: Corridor reads 1 to 3`, source);
  const dims = [0, 1, 2].map((a) => (a < spatial.length ? sizes[spatial[a]] : 1)) as [number, number, number];
  const count = dims[0] * dims[1] * dims[2];
  if (count > MAX_VOXELS) throw new LimitError(`header claims ${dims.join(' x ')} voxels`, source);
  checkVoxelClaim(dims, BYTES_PER_VOXEL[type], source, limits);

  const m = new Float64Array(16);
  m[15] = 1;
  const space = fields.space?.trim().toLowerCase();
  const spaceDims = fields['space dimension']
    ? parseNumber(fields['space dimension'], 'space dimension', source)
    : space
      ? 3
      : 0;
  if (directionsText && directionsText.length !== dimension) {
    throw new FormatError(`space directions give ${directionsText.length} vectors for ${dimension} axes`, source);
  }
  if (directionsText && spaceDims === 3) {
    let flip: [number, number, number] = [1, 1, 1];
    if (space && SPACES[space]) flip = SPACES[space];
    else warnings.push(`${source ?? 'NRRD'}: space "${fields.space ?? '(none)'}" is not anatomical: taken as LPS`);
    spatial.forEach((axis, a) => {
      const v = parseVector(directionsText[axis], 'space directions', source);
      if (!v || v.length !== 3) throw new FormatError('space directions must be 3-vectors', source);
      for (let r = 0; r < 3; r++) m[r * 4 + a] = v[r] * flip[r];
    });
    for (let a = spatial.length; a < 3; a++) m[a * 4 + a] = 1;
    const o = fields['space origin'] ? parseVector(fields['space origin'], 'space origin', source) : [0, 0, 0];
    if (!o || o.length !== 3) throw new FormatError('space origin must be a 3-vector', source);
    for (let r = 0; r < 3; r++) m[r * 4 + 3] = o[r] * flip[r];
  } else {
    const sp = fields.spacings
      ?.trim()
      .split(/\s+/)
      .map((s) => Number(s));
    warnings.push(`${source ?? 'NRRD'}: no space directions: axis-aligned LPS geometry from spacings, origin 0`);
    for (let a = 0; a < 3; a++) {
      const s = a < spatial.length && sp ? sp[spatial[a]] : 1;
      m[a * 4 + a] = Number.isFinite(s) && s > 0 ? s : 1;
    }
  }

  const encoding = (fields.encoding ?? 'raw').trim().toLowerCase();
  // NRRD's endian field is "little" or "big" (any case); anything else is no byte order at all.
  const endian = (fields.endian ?? 'little').trim().toLowerCase();
  if (endian !== 'little' && endian !== 'big') {
    throw new FormatError(`endian "${fields.endian?.trim() ?? ''}" is not "little" or "big"`, source);
  }
  const littleEndian = endian === 'little';
  const bpv = BYTES_PER_VOXEL[type];
  const dataFile = fields['data file'] ?? fields.datafile;
  let payload: Uint8Array;
  if (dataFile) {
    if (!resolveDetached) throw new FormatError(`detached data file "${dataFile}" cannot be read here`, source);
    if (/^LIST|%/.test(dataFile.trim())) throw new FormatError('multi-file NRRD data is not supported', source);
    payload = resolveDetached(dataFile.trim());
  } else {
    payload = bytes.subarray(dataStart);
  }
  const byteSkip = fields['byte skip'] ? parseNumber(fields['byte skip'], 'byte skip', source) : 0;
  let raw: Uint8Array;
  if (encoding === 'raw') raw = payload;
  else if (encoding === 'gzip' || encoding === 'gz') {
    // byte skip counts decompressed bytes (-1 is refused for gzip by the NRRD format).
    if (!(Number.isInteger(byteSkip) && byteSkip >= 0)) {
      throw new FormatError(`byte skip ${byteSkip} with gzip encoding`, source);
    }
    // Inflate straight into the voxel array: memory stays near the volume's bytes.
    const data = allocateVoxels(type, count, source);
    const dest = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const plan = () => ({ skip: byteSkip, dest });
    const { filled } = inflateInto(payload, { container: 'gzip', source, headBytes: 0, plan });
    if (filled < dest.length) {
      throw new FormatError(`truncated: voxel data needs ${dest.length} bytes, the gzip data hold ${filled}`, source);
    }
    if (!littleEndian) swapBytesInPlace(dest, bpv);
    const volume = createVolume({ data, dims, indexToPatient: checked(m, source), meta: { source } });
    return { format: 'nrrd', volume, warnings };
  } else if (encoding === 'text' || encoding === 'txt' || encoding === 'ascii') {
    const text = new TextDecoder('latin1').decode(payload);
    const tokens = text.trim().split(/\s+/);
    if (tokens.length < count) throw new FormatError(`truncated: ${tokens.length} of ${count} text values`, source);
    const out = allocateVoxels(type, count, source);
    for (let i = 0; i < count; i++) out[i] = parseNumber(tokens[i], 'data', source);
    return {
      format: 'nrrd',
      volume: createVolume({ data: out, dims, indexToPatient: checked(m, source), meta: { source } }),
      warnings,
    };
  } else throw new FormatError(`unsupported encoding "${encoding}"`, source);
  // byte skip -1 means "the data are the last bytes of the file".
  const offset = byteSkip === -1 ? raw.length - count * bpv : byteSkip;
  const data = voxelsFromBytes(type, count, raw, offset, littleEndian, source);
  return {
    format: 'nrrd',
    volume: createVolume({ data, dims, indexToPatient: checked(m, source), meta: { source } }),
    warnings,
  };
}

function checked(m: Float64Array, source?: string) {
  if (!Array.prototype.every.call(m, Number.isFinite)) throw new GeometryError('geometry is not finite', source);
  return m;
}

export interface WriteNrrdOptions {
  gzip?: boolean;
}

export function writeNrrd(volume: Volume, options: WriteNrrdOptions = {}): Uint8Array {
  const gzip = options.gzip !== false;
  const type = voxelTypeOf(volume.data);
  const names: Record<VoxelType, string> = {
    int8: 'int8',
    uint8: 'uint8',
    int16: 'int16',
    uint16: 'uint16',
    int32: 'int32',
    uint32: 'uint32',
    float32: 'float',
    float64: 'double',
  };
  const m = volume.indexToPatient;
  const col = (c: number) => `(${String(m[c])},${String(m[4 + c])},${String(m[8 + c])})`;
  const header = [
    'NRRD0004',
    '# Written by Corridor (LPS millimetres)',
    `type: ${names[type]}`,
    'dimension: 3',
    'space: left-posterior-superior',
    `sizes: ${volume.dims.join(' ')}`,
    `space directions: ${col(0)} ${col(1)} ${col(2)}`,
    'kinds: domain domain domain',
    'endian: little',
    `encoding: ${gzip ? 'gzip' : 'raw'}`,
    `space origin: (${String(m[3])},${String(m[7])},${String(m[11])})`,
    'space units: "mm" "mm" "mm"',
    '',
    '',
  ].join('\n');
  const raw = voxelsToLittleEndianBytes(volume.data);
  const body = gzip ? gzipSync(raw, { level: 6, mtime: 0 }) : raw;
  const head = new TextEncoder().encode(header);
  const out = new Uint8Array(head.length + body.length);
  out.set(head, 0);
  out.set(body, head.length);
  return out;
}
