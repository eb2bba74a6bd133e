/** Shared by the key-value header formats (NRRD, MetaImage): raw voxel bytes into a typed array. */
import { FormatError } from '../errors.js';
import { BYTES_PER_VOXEL, allocateVoxels, type VoxelArray, type VoxelType } from '../volume/volume.js';

const hostLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Copy count voxels of `type` from src at offset, swapping bytes when the file's order differs from the host's. */
export function voxelsFromBytes(
  type: VoxelType,
  count: number,
  src: Uint8Array,
  offset: number,
  littleEndian: boolean,
  source?: string,
): VoxelArray {
  const bpv = BYTES_PER_VOXEL[type];
  const need = offset + count * bpv;
  if (offset < 0 || src.length < need) {
    throw new FormatError(`truncated: voxel data needs ${count * bpv} bytes at offset ${offset}, ${Math.max(0, src.length - offset)} available`, source);
  }
  const out = allocateVoxels(type, count, source);
  const dst = new Uint8Array(out.buffer, out.byteOffset, count * bpv);
  dst.set(src.subarray(offset, need));
  if (bpv > 1 && littleEndian !== hostLittleEndian) {
    for (let i = 0; i < dst.length; i += bpv) {
      for (let a = i, b = i + bpv - 1; a < b; a++, b--) {
        const t = dst[a];
        dst[a] = dst[b];
        dst[b] = t;
      }
    }
  }
  return out;
}

/** The bytes of a voxel array in little-endian order (a view when the host is little-endian). */
export function voxelsToLittleEndianBytes(data: VoxelArray): Uint8Array {
  if (!hostLittleEndian) throw new FormatError('writing on a big-endian host is not supported');
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Parse a finite number or fail with a message naming the field. */
export function parseNumber(text: string, field: string, source?: string): number {
  const x = Number(text.trim());
  if (text.trim() === '' || !Number.isFinite(x)) throw new FormatError(`field "${field}": "${text}" is not a finite number`, source);
  return x;
}
