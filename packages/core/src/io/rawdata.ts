/** Shared by the key-value header formats (NRRD, MetaImage): raw voxel bytes into a typed array. */
import { FormatError, LimitError } from '../errors.js';
import { BYTES_PER_VOXEL, allocateVoxels, type VoxelArray, type VoxelType } from '../volume/volume.js';

const hostLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const VIEWS: Record<VoxelType, new (b: ArrayBufferLike, byteOffset: number, length: number) => VoxelArray> = {
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  float32: Float32Array,
  float64: Float64Array,
};

/** count voxels of `type` viewed in place in bytes at offset (the caller checks alignment and length). */
export function viewVoxels(type: VoxelType, bytes: Uint8Array, offset: number, count: number): VoxelArray {
  return new VIEWS[type](bytes.buffer, bytes.byteOffset + offset, count);
}

/**
 * Copy count voxels of `type` from src at offset, swapping bytes when the file's order differs from the
 * host's. With `adopt` (the caller hands src over and will not use it again), the voxels are a view into
 * src where its alignment allows (swapped there when needed), so no second copy of the volume is made.
 */
export function voxelsFromBytes(
  type: VoxelType,
  count: number,
  src: Uint8Array,
  offset: number,
  littleEndian: boolean,
  source?: string,
  adopt = false,
): VoxelArray {
  const bpv = BYTES_PER_VOXEL[type];
  const need = offset + count * bpv;
  if (offset < 0 || src.length < need) {
    throw new FormatError(
      `truncated: voxel data needs ${count * bpv} bytes at offset ${offset}, ` +
        `${Math.max(0, src.length - offset)} available`,
      source,
    );
  }
  if (adopt && (src.byteOffset + offset) % bpv === 0) {
    if (littleEndian !== hostLittleEndian) swapBytesInPlace(src.subarray(offset, need), bpv);
    return new VIEWS[type](src.buffer, src.byteOffset + offset, count);
  }
  const out = allocateVoxels(type, count, source);
  const dst = new Uint8Array(out.buffer, out.byteOffset, count * bpv);
  dst.set(src.subarray(offset, need));
  if (littleEndian !== hostLittleEndian) swapBytesInPlace(dst, bpv);
  return out;
}

/** Reverse the byte order of each bpv-byte value in dst. */
export function swapBytesInPlace(dst: Uint8Array, bpv: number): void {
  if (bpv > 1) {
    for (let i = 0; i < dst.length; i += bpv) {
      for (let a = i, b = i + bpv - 1; a < b; a++, b--) {
        const t = dst[a];
        dst[a] = dst[b];
        dst[b] = t;
      }
    }
  }
}

/** Most voxels along one axis Corridor accepts: no CT, CBCT or MR image has more than 65536. */
export const MAX_AXIS_VOXELS = 65536;
/** Default budget of one volume's voxel bytes (2 GiB); readers take a `maxVoxelBytes` option. */
export const DEFAULT_MAX_VOXEL_BYTES = 2 ** 31;

export interface VoxelLimits {
  /** Most bytes of voxels one volume may claim (default DEFAULT_MAX_VOXEL_BYTES). */
  maxVoxelBytes?: number;
}

/**
 * Refuse geometry no medical image has before anything is allocated or inflated: an axis longer than
 * MAX_AXIS_VOXELS, or more voxel bytes than the budget. Returns the voxel count.
 */
export function checkVoxelClaim(
  dims: readonly number[],
  bytesPerVoxel: number,
  source?: string,
  limits: VoxelLimits = {},
): number {
  const claim = `header claims ${dims.join(' x ')} voxels`;
  dims.forEach((d, axis) => {
    if (d > MAX_AXIS_VOXELS) {
      const why = `axis ${axis} has ${d}, more than ${MAX_AXIS_VOXELS} (no medical image has)`;
      throw new LimitError(`${claim}: ${why}`, source);
    }
  });
  const count = dims.reduce((a, b) => a * b, 1);
  const budget = limits.maxVoxelBytes ?? DEFAULT_MAX_VOXEL_BYTES;
  if (count * bytesPerVoxel > budget) {
    const size = (n: number) => (n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`);
    const what = `${claim} of ${bytesPerVoxel} byte(s), ${size(count * bytesPerVoxel)}`;
    throw new LimitError(`${what}: more than the ${size(budget)} budget (maxVoxelBytes)`, source);
  }
  return count;
}

/** The bytes of a voxel array in little-endian order (a view when the host is little-endian). */
export function voxelsToLittleEndianBytes(data: VoxelArray): Uint8Array {
  if (!hostLittleEndian) throw new FormatError('writing on a big-endian host is not supported');
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Parse a finite number or fail with a message naming the field. */
export function parseNumber(text: string, field: string, source?: string): number {
  const x = Number(text.trim());
  if (text.trim() === '' || !Number.isFinite(x))
    throw new FormatError(`field "${field}": "${text}" is not a finite number`, source);
  return x;
}
