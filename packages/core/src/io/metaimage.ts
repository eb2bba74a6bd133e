/**
 * ITK MetaImage (.mha with LOCAL data, .mhd with a detached data file). ITK writes LPS, so the geometry
 * is taken as it is. TransformMatrix lists each axis's direction cosines in turn (ITK MetaImageIO reads
 * element [axis * 3 + component]): they are the columns of indexToPatient's 3x3, scaled by ElementSpacing.
 */
import { FormatError, LimitError } from '../errors.js';
import { BYTES_PER_VOXEL, MAX_VOXELS, allocateVoxels, createVolume, type VoxelType } from '../volume/volume.js';
import { inflateCapped, inflateInto } from './inflate.js';
import { checkVoxelClaim, parseNumber, swapBytesInPlace, voxelsFromBytes, type VoxelLimits } from './rawdata.js';
import type { LoadedSeries } from './types.js';

const TYPES: Record<string, VoxelType> = {
  MET_CHAR: 'int8',
  MET_UCHAR: 'uint8',
  MET_SHORT: 'int16',
  MET_USHORT: 'uint16',
  MET_INT: 'int32',
  MET_UINT: 'uint32',
  MET_FLOAT: 'float32',
  MET_DOUBLE: 'float64',
};

export function isMetaImage(bytes: Uint8Array): boolean {
  const head = new TextDecoder('latin1').decode(bytes.subarray(0, 64));
  return /^\s*(ObjectType|NDims|Comment|ObjectSubType)\s*=/.test(head);
}

export function readMetaImage(
  bytes: Uint8Array,
  source?: string,
  resolveDetached?: (fileName: string) => Uint8Array,
  limits: VoxelLimits = {},
): LoadedSeries {
  if (!isMetaImage(bytes))
    throw new FormatError('not a MetaImage file (no "ObjectType =" or "NDims =" header)', source);
  const fields: Record<string, string> = {};
  let pos = 0;
  let dataStart = -1;
  const maxHeader = Math.min(bytes.length, 1 << 20);
  // Key = value lines up to ElementDataFile, which is always last; LOCAL data starts on the next byte.
  while (pos < maxHeader) {
    let eol = pos;
    while (eol < bytes.length && bytes[eol] !== 10) eol++;
    const line = new TextDecoder('latin1').decode(bytes.subarray(pos, eol)).replace(/\r$/, '');
    pos = eol + 1;
    const idx = line.indexOf('=');
    if (idx < 0) continue;
    const key = line.slice(0, idx).trim();
    fields[key] = line.slice(idx + 1).trim();
    if (key === 'ElementDataFile') {
      dataStart = pos;
      break;
    }
  }
  if (dataStart < 0) throw new FormatError('header has no ElementDataFile line', source);
  const num = (k: string) =>
    (fields[k] ?? '')
      .split(/\s+/)
      .filter(Boolean)
      .map((s) => parseNumber(s, k, source));
  const nd = num('NDims')[0];
  if (!(nd >= 2 && nd <= 3)) throw new FormatError(`NDims ${fields.NDims}: Corridor reads 2D and 3D images`, source);
  if (fields.ElementNumberOfChannels && Number(fields.ElementNumberOfChannels) !== 1) {
    throw new FormatError(
      `ElementNumberOfChannels ${fields.ElementNumberOfChannels}: only scalar images are read`,
      source,
    );
  }
  const type = TYPES[fields.ElementType ?? ''];
  if (!type) throw new FormatError(`unsupported ElementType "${fields.ElementType}"`, source);
  const size = num('DimSize');
  if (size.length !== nd || !size.every((s) => Number.isSafeInteger(s) && s >= 1))
    throw new FormatError(`DimSize "${fields.DimSize}" is invalid`, source);
  const dims = [size[0], size[1], nd === 3 ? size[2] : 1] as [number, number, number];
  const count = dims[0] * dims[1] * dims[2];
  if (count > MAX_VOXELS) throw new LimitError(`header claims ${dims.join(' x ')} voxels`, source);
  checkVoxelClaim(dims, BYTES_PER_VOXEL[type], source, limits);
  const spacing = fields.ElementSpacing ? num('ElementSpacing') : fields.ElementSize ? num('ElementSize') : [1, 1, 1];
  const originKey = ['Offset', 'Position', 'Origin'].find((k) => fields[k] !== undefined);
  const origin = originKey ? num(originKey) : [0, 0, 0];
  const dirKey = ['TransformMatrix', 'Rotation', 'Orientation'].find((k) => fields[k] !== undefined);
  const dir = dirKey ? num(dirKey) : nd === 3 ? [1, 0, 0, 0, 1, 0, 0, 0, 1] : [1, 0, 0, 1];
  if (dir.length !== nd * nd || spacing.length < nd || origin.length < nd)
    throw new FormatError('geometry fields have the wrong length', source);
  const m = new Float64Array(16);
  m[15] = 1;
  for (let axis = 0; axis < 3; axis++) {
    for (let r = 0; r < 3; r++) {
      const cosine = axis < nd && r < nd ? dir[axis * nd + r] : axis === r ? 1 : 0;
      m[r * 4 + axis] = cosine * (axis < nd ? spacing[axis] : 1);
    }
    m[axis * 4 + 3] = axis < nd ? origin[axis] : 0;
  }
  const msb = /^true$/i.test(fields.ElementByteOrderMSB ?? fields.BinaryDataByteOrderMSB ?? 'False');
  const file = fields.ElementDataFile;
  let payload: Uint8Array;
  if (file === 'LOCAL') payload = bytes.subarray(dataStart);
  else {
    if (!resolveDetached) throw new FormatError(`detached data file "${file}" cannot be read here`, source);
    if (/^LIST|%/.test(file)) throw new FormatError('multi-file MetaImage data is not supported', source);
    payload = resolveDetached(file);
  }
  const bpv = BYTES_PER_VOXEL[type];
  const headerSize = fields.HeaderSize ? parseNumber(fields.HeaderSize, 'HeaderSize', source) : 0;
  const compressed = /^true$/i.test(fields.CompressedData ?? 'False');
  if (compressed && headerSize === 0) {
    // Inflate straight into the voxel array: memory stays near the volume's bytes.
    const data = allocateVoxels(type, count, source);
    const dest = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const plan = () => ({ skip: 0, dest });
    const { filled } = inflateInto(payload, { container: 'zlib', source, headBytes: 0, plan });
    if (filled < dest.length) {
      throw new FormatError(`truncated: voxel data needs ${dest.length} bytes, the zlib data hold ${filled}`, source);
    }
    if (msb) swapBytesInPlace(dest, bpv);
    const volume = createVolume({ data, dims, indexToPatient: m, meta: { source } });
    return { format: 'metaimage', volume, warnings: [] };
  }
  if (compressed) payload = inflateCapped(payload, { container: 'zlib', source, maxBytes: count * bpv });
  const offset = headerSize === -1 ? payload.length - count * bpv : headerSize;
  const data = voxelsFromBytes(type, count, payload, offset, !msb, source);
  return {
    format: 'metaimage',
    volume: createVolume({ data, dims, indexToPatient: m, meta: { source } }),
    warnings: [],
  };
}
