/**
 * PNG encoding of the report's key images (RGBA rasters), in core so the CLI, the server and the
 * workstation's workers encode them the same way: 8-bit RGB (or RGBA when any pixel is not opaque), each
 * row filtered with PNG's Sub filter, deflated by fflate (zlib). And the reading of a PNG's header, for
 * refusing what is not a PNG of the size it claims. Base64 for carrying the bytes in JSON.
 */
import { zlibSync } from 'fflate';
import { FormatError } from '../errors.js';
import { crc32 } from '../io/checksum.js';

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];
/** The largest key image side accepted (pixels). */
export const PNG_MAX_SIDE = 8192;

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** An RGBA raster (row-major, 4 bytes a pixel) as PNG bytes. */
export function encodePng(rgba: ArrayLike<number>, width: number, height: number): Uint8Array {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0))
    throw new FormatError(`a PNG needs a positive whole size, not ${width} x ${height}`);
  if (rgba.length !== width * height * 4)
    throw new FormatError(`${rgba.length} bytes are not a ${width} x ${height} RGBA image`);
  let opaque = true;
  for (let i = 3; i < rgba.length; i += 4)
    if (rgba[i] !== 255) {
      opaque = false;
      break;
    }
  const bpp = opaque ? 3 : 4;
  const stride = width * bpp + 1;
  const raw = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const o = y * stride;
    raw[o] = 1; // Sub: each byte minus the same channel of the pixel to its left
    for (let x = 0; x < width; x++) {
      const s = (y * width + x) * 4;
      const d = o + 1 + x * bpp;
      for (let c = 0; c < bpp; c++) raw[d + c] = (rgba[s + c] - (x ? rgba[s + c - 4] : 0)) & 255;
    }
  }
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr[8] = 8; // bit depth
  ihdr[9] = opaque ? 2 : 6; // RGB, RGBA
  const parts = [
    Uint8Array.from(SIGNATURE),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlibSync(raw, { level: 6 })),
    chunk('IEND', new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A PNG's size and colour type from its header; FormatError naming `what` when it is not a PNG. */
export function pngHeader(bytes: Uint8Array, what = 'image'): { width: number; height: number; colorType: number } {
  if (bytes.length < 33 || SIGNATURE.some((b, i) => bytes[i] !== b))
    throw new FormatError('not a PNG (no PNG signature)', what);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = String.fromCharCode(bytes[12], bytes[13], bytes[14], bytes[15]);
  if (dv.getUint32(8) !== 13 || type !== 'IHDR') throw new FormatError('a PNG whose first chunk is not IHDR', what);
  if (dv.getUint32(29) !== crc32(bytes.subarray(12, 29)))
    throw new FormatError('a PNG whose header CRC is wrong', what);
  const width = dv.getUint32(16);
  const height = dv.getUint32(20);
  if (!width || !height || width > PNG_MAX_SIDE || height > PNG_MAX_SIDE)
    throw new FormatError(`a PNG of ${width} x ${height} pixels (at most ${PNG_MAX_SIDE} a side)`, what);
  return { width, height, colorType: bytes[25] };
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_INDEX = new Int16Array(128).fill(-1);
for (let i = 0; i < 64; i++) B64_INDEX[B64.charCodeAt(i)] = i;

/** Bytes as standard base64 (with padding). */
export function bytesToBase64(b: Uint8Array): string {
  const parts: string[] = [];
  let s = '';
  for (let i = 0; i < b.length; i += 3) {
    const n = (b[i] << 16) | ((b[i + 1] ?? 0) << 8) | (b[i + 2] ?? 0);
    s +=
      B64[(n >> 18) & 63] +
      B64[(n >> 12) & 63] +
      (i + 1 < b.length ? B64[(n >> 6) & 63] : '=') +
      (i + 2 < b.length ? B64[n & 63] : '=');
    if (s.length >= 8192) {
      parts.push(s);
      s = '';
    }
  }
  parts.push(s);
  return parts.join('');
}

/** Standard base64 (padding optional) to bytes; FormatError naming `what` on any other character. */
export function base64ToBytes(s: string, what = 'base64'): Uint8Array {
  const t = s.replace(/=+$/, '');
  if (t.length % 4 === 1) throw new FormatError('base64 text of an impossible length', what);
  const out = new Uint8Array(Math.floor((t.length * 3) / 4));
  let acc = 0,
    bits = 0,
    o = 0;
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    const v = c < 128 ? B64_INDEX[c] : -1;
    if (v < 0) throw new FormatError(`not base64 (character ${JSON.stringify(t[i])} at ${i})`, what);
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 255;
    }
  }
  return out;
}
