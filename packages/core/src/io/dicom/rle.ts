/**
 * DICOM RLE Lossless (PS3.5 Annex G): a 64-byte header of up to 15 segment offsets, each segment a
 * PackBits stream of one byte plane (most significant byte of each sample first).
 */
import { FormatError } from '../../errors.js';

/**
 * Decode one RLE frame into little-endian interleaved samples (bytesPerSample bytes per sample,
 * samplesPerPixel samples per pixel, pixel-interleaved). Throws FormatError when the segment count does
 * not match, an offset is out of range, or a segment decodes to fewer or more bytes than a plane holds.
 */
export function decodeRle(
  frame: Uint8Array,
  pixels: number,
  bytesPerSample: number,
  samplesPerPixel: number,
  source: string,
): Uint8Array {
  if (frame.length < 64)
    throw new FormatError(`RLE frame of ${frame.length} bytes is shorter than its 64-byte header`, source);
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const segments = view.getUint32(0, true);
  const expected = bytesPerSample * samplesPerPixel;
  if (segments !== expected) {
    throw new FormatError(
      `RLE frame has ${segments} segments, ${expected} expected for ${bytesPerSample * 8}-bit, ` +
        `${samplesPerPixel} sample(s) per pixel`,
      source,
    );
  }
  const offsets: number[] = [];
  for (let s = 0; s < segments; s++) offsets.push(view.getUint32(4 + 4 * s, true));
  offsets.push(frame.length);
  const out = new Uint8Array(pixels * expected);
  const stride = expected;
  for (let s = 0; s < segments; s++) {
    const start = offsets[s];
    const end = offsets[s + 1];
    if (start < 64 || end > frame.length || end < start) {
      throw new FormatError(
        `RLE segment ${s + 1} has an invalid offset (${start}..${end} in a ${frame.length}-byte frame)`,
        source,
      );
    }
    // Segment order: for each sample, most significant byte first; output is little endian.
    const sample = Math.floor(s / bytesPerSample);
    const byteInSample = bytesPerSample - 1 - (s % bytesPerSample);
    let o = sample * bytesPerSample + byteInSample;
    const limit = out.length;
    let p = start;
    let written = 0;
    while (p < end && written < pixels) {
      const n = frame[p++];
      if (n < 128) {
        const count = n + 1;
        if (p + count > end)
          throw new FormatError(`RLE segment ${s + 1} literal run passes the end of the segment`, source);
        if (written + count > pixels)
          throw new FormatError(`RLE segment ${s + 1} decodes to more than ${pixels} bytes`, source);
        for (let i = 0; i < count; i++, o += stride) out[o] = frame[p++];
        written += count;
      } else if (n > 128) {
        const count = 257 - n;
        if (p >= end) throw new FormatError(`RLE segment ${s + 1} replicate run passes the end of the segment`, source);
        if (written + count > pixels)
          throw new FormatError(`RLE segment ${s + 1} decodes to more than ${pixels} bytes`, source);
        const v = frame[p++];
        for (let i = 0; i < count; i++, o += stride) out[o] = v;
        written += count;
      }
      // n === 128 is a no-op.
    }
    if (written < pixels || o - stride >= limit) {
      throw new FormatError(
        `RLE segment ${s + 1} decodes to ${written} bytes, ${pixels} expected (truncated or corrupt)`,
        source,
      );
    }
  }
  return out;
}
