/**
 * Whole-frame 16-bit sample loops done two samples at a time in 32-bit words (SWAR): JavaScript has
 * no SIMD, and these loops run over every voxel of a series. Rescaling stored CT values by an integer
 * intercept (slope 1, the usual case) is this way about twice as fast as one sample per iteration.
 */

const LOW15 = 0x7fff7fff;
const TOP = 0x80008000;

/**
 * out[offset + i] = data[i] + add for every i, each sum taken modulo 2^16 in its own 16-bit lane: exact
 * whenever the true sums fit Int16 (the caller checks the range). `add` is an integer.
 */
export function addToInt16(out: Int16Array, offset: number, data: Int16Array | Uint16Array, add: number): void {
  const n = data.length;
  if (offset < 0 || offset + n > out.length)
    throw new RangeError(`addToInt16: ${n} samples at ${offset} do not fit ${out.length}`);
  const c = add & 0xffff;
  let i = 0;
  const outByte = out.byteOffset + offset * 2;
  // Word access needs both sides at the same position within a 4-byte word; peel one sample if both are off by 2.
  if ((outByte - data.byteOffset) % 4 === 0 && n >= 8) {
    if (outByte % 4 !== 0) {
      out[offset] = data[0] + c;
      i = 1;
    }
    const words = (n - i) >> 1;
    const src = new Uint32Array(data.buffer, data.byteOffset + i * 2, words);
    const dst = new Uint32Array(out.buffer, outByte + i * 2, words);
    const k = ((c << 16) | c) >>> 0;
    const kLow = k & LOW15;
    const kTop = k & TOP;
    // Add the low 15 bits of each lane (no carry can cross into the next lane), then the top bits by xor.
    for (let j = 0; j < words; j++) {
      const a = src[j];
      dst[j] = ((a & LOW15) + kLow) ^ ((a & TOP) ^ kTop);
    }
    i += words * 2;
  }
  for (; i < n; i++) out[offset + i] = data[i] + c;
}

/** True when every value is <= mask, where mask = 2^bits - 1 (bits < 16). */
export function uint16Within(data: Uint16Array, mask: number): boolean {
  const n = data.length;
  let acc = 0;
  let i = 0;
  if (n >= 8) {
    if (data.byteOffset % 4 !== 0) acc |= data[i++];
    const words = (n - i) >> 1;
    const src = new Uint32Array(data.buffer, data.byteOffset + i * 2, words);
    for (let j = 0; j < words; j++) acc |= src[j];
    i += words * 2;
    acc = (acc | (acc >>> 16)) & 0xffff;
  }
  for (; i < n; i++) acc |= data[i];
  return (acc & ~mask) === 0;
}
