/**
 * Pixel data: the image pixel module's description, frame extraction from native or encapsulated pixel
 * data, decoding for every supported transfer syntax, and BitsStored masking with sign extension.
 * Reused by the projection (XA/RF) reader: decodeFrame works on any single- or multi-frame data set.
 */
import type dicomParser from 'dicom-parser';
import { FormatError, LimitError } from '../../errors.js';
import { inflateCapped } from '../inflate.js';
import { decodeHtj2k, decodeJpeg2000, decodeJpeg8, decodeJpegLs, readJ2kHeader, type CodecFrame } from './codecs.js';
import { decodeJpeg, JpegError, readJpegHeader } from './jpeg.js';
import { uint16Within } from './lanes.js';
import { DicomDataset, tagLabel } from './parse.js';
import { decodeRle } from './rle.js';
import { TAG, TRANSFER_SYNTAX_NAMES, transferSyntaxLabel, TS } from './tags.js';

export type StoredArray = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array;

export interface PixelDescription {
  rows: number;
  columns: number;
  samplesPerPixel: number;
  bitsAllocated: 8 | 16 | 32;
  bitsStored: number;
  pixelRepresentation: 0 | 1;
  photometricInterpretation: string;
  numberOfFrames: number;
  transferSyntaxUid: string;
  encapsulated: boolean;
}

export interface DecodedFrame {
  rows: number;
  columns: number;
  samplesPerPixel: number;
  /** Stored values (before rescale), masked to BitsStored and sign-extended when signed. */
  data: StoredArray;
  /** True when data is a view on the file's bytes: read it, never write it. */
  shared: boolean;
}

/**
 * Largest ratio of decoded to compressed bytes accepted for a compressed frame (plus 64 KiB), so that a
 * tiny file cannot make us allocate gigabytes. Real CT frames compress 2-10 : 1 losslessly; even a
 * constant 512 x 512 x 16-bit frame needs about 100 bytes of JPEG 2000, well inside this bound.
 */
export const MAX_COMPRESSION_RATIO = 4096;
const RATIO_SLACK_BYTES = 65536;

export const SUPPORTED_TRANSFER_SYNTAXES: readonly string[] = [
  TS.ImplicitLittle,
  TS.ExplicitLittle,
  TS.DeflatedExplicitLittle,
  TS.ExplicitBig,
  TS.JpegBaseline,
  TS.JpegExtended,
  TS.JpegLossless,
  TS.JpegLosslessSV1,
  TS.JpegLsLossless,
  TS.JpegLsNearLossless,
  TS.Jpeg2000Lossless,
  TS.Jpeg2000,
  TS.Htj2kLossless,
  TS.Htj2kLosslessRpcl,
  TS.Htj2k,
  TS.Rle,
  TS.DeflatedImageFrame,
];

const HTJ2K = new Set<string>([TS.Htj2kLossless, TS.Htj2kLosslessRpcl, TS.Htj2k]);

const NATIVE = new Set<string>([TS.ImplicitLittle, TS.ExplicitLittle, TS.DeflatedExplicitLittle, TS.ExplicitBig]);

/** The PixelData element; FormatError when the data set has none. */
function pixelData(ds: DicomDataset): dicomParser.Element {
  const px = ds.element(TAG.PixelData);
  if (!px) throw new FormatError('no pixel data (7FE0,0010)', ds.name);
  return px;
}

function required(ds: DicomDataset, tag: string, what: string): number {
  const v = ds.uint16(tag);
  if (v === undefined) throw new FormatError(`${what} ${tagLabel(tag)} is missing or empty`, ds.name);
  return v;
}

/** The largest Rows or Columns DICOM can express (VR US). */
export const MAX_IMAGE_SIZE = 0xffff;

/**
 * Rows or Columns read at the width the file encodes it (a UL value is not cut to its low 16 bits), and
 * refused with a FormatError when it exceeds what VR US allows: no real image is that large.
 */
function imageSize(ds: DicomDataset, tag: string, what: string): number {
  const v = ds.unsigned(tag);
  if (v === undefined) throw new FormatError(`${what} ${tagLabel(tag)} is missing or empty`, ds.name);
  if (v > MAX_IMAGE_SIZE)
    throw new FormatError(`${what} ${tagLabel(tag)} is ${v}, more than the ${MAX_IMAGE_SIZE} DICOM allows`, ds.name);
  return v;
}

/** The image pixel module, validated. FormatError names the file and the attribute that is wrong. */
export function describePixels(ds: DicomDataset): PixelDescription {
  const ts = ds.transferSyntaxUid;
  if (!SUPPORTED_TRANSFER_SYNTAXES.includes(ts)) {
    const supported = SUPPORTED_TRANSFER_SYNTAXES.join(', ');
    throw new FormatError(
      `transfer syntax ${transferSyntaxLabel(ts)} is not supported (supported: ${supported})`,
      ds.name,
    );
  }
  const px = ds.element(TAG.PixelData);
  if (!px) {
    if (ds.element(TAG.FloatPixelData) || ds.element(TAG.DoubleFloatPixelData)) {
      throw new FormatError('float pixel data (7FE0,0008/0009) is not supported', ds.name);
    }
    throw new FormatError('no pixel data (7FE0,0010)', ds.name);
  }
  const rows = imageSize(ds, TAG.Rows, 'Rows');
  const columns = imageSize(ds, TAG.Columns, 'Columns');
  if (rows === 0 || columns === 0) throw new FormatError(`image size ${columns} x ${rows} is empty`, ds.name);
  const bitsAllocated = required(ds, TAG.BitsAllocated, 'BitsAllocated');
  if (bitsAllocated !== 8 && bitsAllocated !== 16 && bitsAllocated !== 32) {
    throw new FormatError(`BitsAllocated ${bitsAllocated} is not supported (8, 16 or 32)`, ds.name);
  }
  const bitsStored = ds.uint16(TAG.BitsStored) ?? bitsAllocated;
  if (bitsStored < 1 || bitsStored > bitsAllocated)
    throw new FormatError(`BitsStored ${bitsStored} does not fit BitsAllocated ${bitsAllocated}`, ds.name);
  const highBit = ds.uint16(TAG.HighBit) ?? bitsStored - 1;
  if (highBit !== bitsStored - 1) {
    throw new FormatError(
      `HighBit ${highBit} with BitsStored ${bitsStored}: only HighBit = BitsStored - 1 is supported`,
      ds.name,
    );
  }
  const pr = ds.uint16(TAG.PixelRepresentation) ?? 0;
  if (pr !== 0 && pr !== 1) throw new FormatError(`PixelRepresentation ${pr} is neither 0 nor 1`, ds.name);
  const spp = ds.uint16(TAG.SamplesPerPixel) ?? 1;
  if (spp !== 1 && spp !== 3) throw new FormatError(`SamplesPerPixel ${spp} is not supported (1 or 3)`, ds.name);
  const framesValue = ds.number(TAG.NumberOfFrames);
  const numberOfFrames = framesValue === undefined ? 1 : framesValue;
  if (!Number.isInteger(numberOfFrames) || numberOfFrames < 1)
    throw new FormatError(`NumberOfFrames ${numberOfFrames} is not a positive integer`, ds.name);
  const encapsulated = !NATIVE.has(ts);
  const desc: PixelDescription = {
    rows,
    columns,
    samplesPerPixel: spp,
    bitsAllocated,
    bitsStored,
    pixelRepresentation: pr,
    photometricInterpretation: ds.string(TAG.PhotometricInterpretation) ?? (spp === 1 ? 'MONOCHROME2' : 'RGB'),
    numberOfFrames,
    transferSyntaxUid: ts,
    encapsulated,
  };
  if (encapsulated && !px.encapsulatedPixelData) {
    throw new FormatError(
      `transfer syntax ${ts} requires encapsulated pixel data but the pixel data has a defined length`,
      ds.name,
    );
  }
  if (!encapsulated) {
    if (px.encapsulatedPixelData || px.hadUndefinedLength)
      throw new FormatError('native pixel data has an undefined length', ds.name);
    const need = frameBytes(desc) * numberOfFrames;
    const have = Math.min(px.length, ds.bytes.length - px.dataOffset);
    if (have < need) {
      throw new FormatError(
        `pixel data holds ${have} bytes but ${columns} x ${rows} x ${numberOfFrames} frame(s) x ` +
          `${bitsAllocated / 8} byte(s) x ${spp} need ${need} (truncated file?)`,
        ds.name,
      );
    }
  } else {
    const frags = px.fragments ?? [];
    if (frags.length === 0) throw new FormatError('encapsulated pixel data has no fragments', ds.name);
    for (const f of frags) {
      if (f.position < 0 || f.position + f.length > ds.bytes.length)
        throw new FormatError('an encapsulated pixel data fragment runs past the end of the file (truncated)', ds.name);
    }
  }
  return desc;
}

export function frameBytes(desc: PixelDescription): number {
  return desc.rows * desc.columns * desc.samplesPerPixel * (desc.bitsAllocated / 8);
}

function isCodestreamStart(ts: string, bytes: Uint8Array, p: number): boolean {
  if (ts === TS.Jpeg2000 || ts === TS.Jpeg2000Lossless) {
    // SOC or a JP2 signature box
    return (bytes[p] === 0xff && bytes[p + 1] === 0x4f) || (bytes[p + 4] === 0x6a && bytes[p + 5] === 0x50);
  }
  if (HTJ2K.has(ts)) return bytes[p] === 0xff && bytes[p + 1] === 0x4f; // SOC
  if (ts === TS.DeflatedImageFrame) return false; // one fragment per frame (PS3.5 A.4.13)
  return bytes[p] === 0xff && bytes[p + 1] === 0xd8; // JPEG family SOI
}

/**
 * The compressed bytes of one frame. Uses the basic offset table when it is valid; otherwise one fragment
 * per frame when the counts match, all fragments for a single frame, or fragments grouped at each
 * code-stream start marker (the usual empty-table multi-fragment case).
 */
export function encapsulatedFrame(
  ds: DicomDataset,
  frameIndex: number,
  desc: PixelDescription = describePixels(ds),
): Uint8Array {
  const px = pixelData(ds);
  const frags = px.fragments ?? [];
  const n = desc.numberOfFrames;
  if (frameIndex < 0 || frameIndex >= n)
    throw new FormatError(`frame ${frameIndex} requested, the file has ${n}`, ds.name);
  const groups = fragmentGroups(ds, desc);
  const [first, count] = groups[frameIndex];
  if (count === 1) {
    const f = frags[first];
    return ds.bytes.subarray(f.position, f.position + f.length);
  }
  let total = 0;
  for (let i = first; i < first + count; i++) total += frags[i].length;
  const out = new Uint8Array(total);
  let o = 0;
  for (let i = first; i < first + count; i++) {
    const f = frags[i];
    out.set(ds.bytes.subarray(f.position, f.position + f.length), o);
    o += f.length;
  }
  return out;
}

const groupCache = new WeakMap<object, [number, number][]>();

function fragmentGroups(ds: DicomDataset, desc: PixelDescription): [number, number][] {
  const px = pixelData(ds);
  const cached = groupCache.get(px);
  if (cached) return cached;
  const frags = px.fragments ?? [];
  const n = desc.numberOfFrames;
  let groups: [number, number][] | undefined;
  const bot = px.basicOffsetTable ?? [];
  if (bot.length === n && n > 0) {
    // Offsets are from the first fragment's item tag; map each to the fragment that starts there.
    const starts: number[] = [];
    for (const off of bot) {
      const idx = frags.findIndex((f) => f.offset === off);
      if (idx < 0) break;
      starts.push(idx);
    }
    if (starts.length === n && starts.every((s, i) => i === 0 || s > starts[i - 1]) && starts[0] === 0) {
      groups = starts.map((s, i) => [s, (i + 1 < n ? starts[i + 1] : frags.length) - s]);
    } else {
      ds.warnings.push(`${ds.name}: basic offset table does not match the fragments; frames located by their markers`);
    }
  }
  if (!groups) {
    if (n === 1) groups = [[0, frags.length]];
    else if (frags.length === n) groups = frags.map((_, i) => [i, 1]);
    else {
      const starts: number[] = [];
      frags.forEach((f, i) => {
        if (f.length >= 6 && isCodestreamStart(desc.transferSyntaxUid, ds.bytes, f.position)) starts.push(i);
      });
      if (starts.length !== n || starts[0] !== 0) {
        throw new FormatError(
          `cannot split ${frags.length} pixel data fragments into ${n} frames (no usable offset table; found ` +
            `${starts.length} code-stream starts)`,
          ds.name,
        );
      }
      groups = starts.map((s, i) => [s, (i + 1 < n ? starts[i + 1] : frags.length) - s]);
    }
  }
  groupCache.set(px, groups);
  return groups;
}

function typedView(desc: PixelDescription, buffer: ArrayBuffer, byteOffset: number, count: number): StoredArray {
  const signed = desc.pixelRepresentation === 1;
  switch (desc.bitsAllocated) {
    case 8:
      return signed ? new Int8Array(buffer, byteOffset, count) : new Uint8Array(buffer, byteOffset, count);
    case 16:
      return signed ? new Int16Array(buffer, byteOffset, count) : new Uint16Array(buffer, byteOffset, count);
    default:
      return signed ? new Int32Array(buffer, byteOffset, count) : new Uint32Array(buffer, byteOffset, count);
  }
}

/* Scans for values outside BitsStored, one function per common array type so each stays monomorphic. */
function i16Clean(data: Int16Array, shift: number): boolean {
  for (let i = 0; i < data.length; i++) if ((data[i] << shift) >> shift !== data[i]) return false;
  return true;
}

function anyClean(data: StoredArray, signed: boolean, shift: number, mask: number): boolean {
  const n = data.length;
  if (signed) {
    for (let i = 0; i < n; i++) if ((data[i] << shift) >> shift !== data[i]) return false;
  } else {
    for (let i = 0; i < n; i++) if (data[i] > mask) return false;
  }
  return true;
}

/** Masks values to BitsStored (and sign-extends); returns the input when nothing changes. */
function maskStored(
  data: StoredArray,
  desc: PixelDescription,
  shared: boolean,
): { data: StoredArray; shared: boolean } {
  const bits = desc.bitsStored;
  if (bits >= desc.bitsAllocated) return { data, shared };
  const signed = desc.pixelRepresentation === 1;
  const shift = 32 - bits;
  const mask = bits >= 32 ? 0xffffffff : 2 ** bits - 1;
  const clean =
    !signed && data instanceof Uint16Array
      ? uint16Within(data, mask)
      : signed && data instanceof Int16Array
        ? i16Clean(data, shift)
        : anyClean(data, signed, shift, mask);
  if (clean) return { data, shared };
  const n = data.length;
  const out = shared ? data.slice() : data;
  if (signed) for (let i = 0; i < n; i++) out[i] = (out[i] << shift) >> shift;
  else for (let i = 0; i < n; i++) out[i] = out[i] & mask;
  return { data: out, shared: false };
}

function checkRatio(ds: DicomDataset, desc: PixelDescription, compressed: number): void {
  const decoded = frameBytes(desc);
  if (decoded > compressed * MAX_COMPRESSION_RATIO + RATIO_SLACK_BYTES) {
    throw new LimitError(
      `a ${compressed}-byte compressed frame claims ${desc.columns} x ${desc.rows} pixels (${decoded} bytes): ` +
        `more than ${MAX_COMPRESSION_RATIO}:1, refused as implausible`,
      ds.name,
    );
  }
}

function checkSize(
  ds: DicomDataset,
  desc: PixelDescription,
  width: number,
  height: number,
  components: number,
  what: string,
): void {
  if (width !== desc.columns || height !== desc.rows || components !== desc.samplesPerPixel) {
    throw new FormatError(
      `${what} code stream is ${width} x ${height} x ${components} but the DICOM header says ${desc.columns} x ` +
        `${desc.rows} x ${desc.samplesPerPixel}`,
      ds.name,
    );
  }
}

/** Decoded codec samples (bit patterns) -> DICOM layout (BitsAllocated, PixelRepresentation). */
function fromSamples(
  ds: DicomDataset,
  desc: PixelDescription,
  samples: Uint8Array | Uint16Array,
  bytesPerSample: number,
): StoredArray {
  const count = desc.rows * desc.columns * desc.samplesPerPixel;
  if (samples.length !== count)
    throw new FormatError(`decoded frame holds ${samples.length} samples, ${count} expected`, ds.name);
  const target = desc.bitsAllocated / 8;
  if (bytesPerSample === target) return typedView(desc, samples.buffer as ArrayBuffer, samples.byteOffset, count);
  if (bytesPerSample > target) {
    throw new FormatError(
      `code stream has ${bytesPerSample * 8}-bit samples but BitsAllocated is ${desc.bitsAllocated}`,
      ds.name,
    );
  }
  const out = typedView(desc, new ArrayBuffer(count * target), 0, count);
  for (let i = 0; i < count; i++) out[i] = samples[i];
  return out;
}

function codecSamples(ds: DicomDataset, desc: PixelDescription, f: CodecFrame, what: string): StoredArray {
  checkSize(ds, desc, f.width, f.height, f.componentCount, what);
  const bytesPerSample = f.bitsPerSample > 8 ? 2 : 1;
  const count = f.width * f.height * f.componentCount;
  if (f.data.length !== count * bytesPerSample)
    throw new FormatError(
      `${what} decoder returned ${f.data.length} bytes, ${count * bytesPerSample} expected`,
      ds.name,
    );
  const samples = bytesPerSample === 2 ? new Uint16Array(f.data.buffer, f.data.byteOffset, count) : f.data;
  return fromSamples(ds, desc, samples, bytesPerSample);
}

/**
 * A Deflated Image Frame Compression frame (PS3.5 A.4.13): raw deflate of the frame's native little-endian
 * bytes. Inflated no further than the frame needs (plus a padding byte when that size is odd): a frame
 * that inflates beyond Rows x Columns x samples x bytes is refused with a LimitError, a short one with a
 * FormatError.
 */
function inflateFrame(ds: DicomDataset, desc: PixelDescription, frame: Uint8Array): StoredArray {
  const need = frameBytes(desc);
  const allowed = need + (need % 2);
  const bytes = inflateCapped(frame, { container: 'deflate', maxBytes: allowed + 1, source: ds.name });
  if (bytes.length > allowed)
    throw new LimitError(`a deflated frame inflates to more than the ${need} bytes of one frame`, ds.name);
  if (bytes.length < need)
    throw new FormatError(`a deflated frame inflates to ${bytes.length} bytes, ${need} expected (truncated?)`, ds.name);
  const count = desc.rows * desc.columns * desc.samplesPerPixel;
  const aligned = bytes.byteOffset % (desc.bitsAllocated / 8) === 0 ? bytes : bytes.slice(0, need);
  return typedView(desc, aligned.buffer as ArrayBuffer, aligned.byteOffset, count);
}

/**
 * An HTJ2K code stream must end with its EOC marker (FF D9; a fragment's padding zero may follow): OpenJPH
 * decodes a truncated stream without any error, to a partly blank image.
 */
function checkEoc(ds: DicomDataset, frame: Uint8Array, name: string): void {
  let end = frame.length;
  while (end > 2 && frame[end - 1] === 0) end--;
  if (end < 2 || frame[end - 2] !== 0xff || frame[end - 1] !== 0xd9)
    throw new FormatError(`${name} code stream does not end with an EOC marker (truncated?)`, ds.name);
}

function jpegFailure(ds: DicomDataset, e: unknown): never {
  if (e instanceof JpegError) throw new FormatError(`JPEG data cannot be decoded: ${e.message}`, ds.name);
  throw e;
}

function checkFrameIndex(ds: DicomDataset, frameIndex: number, desc: PixelDescription): void {
  if (!Number.isInteger(frameIndex) || frameIndex < 0 || frameIndex >= desc.numberOfFrames) {
    throw new FormatError(`frame ${frameIndex} requested, the file has ${desc.numberOfFrames}`, ds.name);
  }
}

function finish(
  ds: DicomDataset,
  frameIndex: number,
  desc: PixelDescription,
  data: StoredArray,
  shared: boolean,
): DecodedFrame {
  const count = desc.rows * desc.columns * desc.samplesPerPixel;
  if (data.length !== count)
    throw new FormatError(`frame ${frameIndex} decoded to ${data.length} values, ${count} expected`, ds.name);
  const masked = maskStored(data, desc, shared);
  return {
    rows: desc.rows,
    columns: desc.columns,
    samplesPerPixel: desc.samplesPerPixel,
    data: masked.data,
    shared: masked.shared,
  };
}

/**
 * decodeFrame for native (uncompressed) pixel data, synchronously: a series of hundreds of frames is
 * copied without a pause per frame (each await costs measurably over a 400-frame load).
 * FormatError for encapsulated (compressed) data: use decodeFrame.
 */
export function decodeNativeFrame(
  ds: DicomDataset,
  frameIndex: number,
  desc: PixelDescription = describePixels(ds),
): DecodedFrame {
  checkFrameIndex(ds, frameIndex, desc);
  if (desc.encapsulated)
    throw new FormatError(`transfer syntax ${desc.transferSyntaxUid} is compressed: frames need decodeFrame`, ds.name);
  const count = desc.rows * desc.columns * desc.samplesPerPixel;
  const bps = desc.bitsAllocated / 8;
  let data: StoredArray;
  let shared = false;
  const px = pixelData(ds);
  const start = px.dataOffset + frameIndex * frameBytes(desc);
  const bytes = ds.bytes;
  if (desc.transferSyntaxUid === TS.ExplicitBig && bps > 1) {
    data = typedView(desc, new ArrayBuffer(count * bps), 0, count);
    const out = new Uint8Array(data.buffer);
    for (let i = 0, p = start; i < count * bps; i += bps, p += bps) {
      for (let b = 0; b < bps; b++) out[i + b] = bytes[p + bps - 1 - b];
    }
  } else if ((bytes.byteOffset + start) % bps === 0) {
    data = typedView(desc, bytes.buffer as ArrayBuffer, bytes.byteOffset + start, count);
    shared = true;
  } else {
    const copy = bytes.slice(start, start + count * bps);
    data = typedView(desc, copy.buffer, 0, count);
  }
  return finish(ds, frameIndex, desc, data, shared);
}

/**
 * Decode one frame to stored values (before rescale). For native little-endian data the result may be
 * a view on the file's bytes (shared = true). Throws FormatError naming the file for anything that does
 * not decode to exactly Rows x Columns x SamplesPerPixel values.
 */
export async function decodeFrame(
  ds: DicomDataset,
  frameIndex: number,
  desc: PixelDescription = describePixels(ds),
): Promise<DecodedFrame> {
  if (!desc.encapsulated) return decodeNativeFrame(ds, frameIndex, desc);
  checkFrameIndex(ds, frameIndex, desc);
  const frame = encapsulatedFrame(ds, frameIndex, desc);
  checkRatio(ds, desc, frame.length);
  return finish(ds, frameIndex, desc, await decodeCompressed(ds, desc, frame), false);
}

async function decodeCompressed(ds: DicomDataset, desc: PixelDescription, frame: Uint8Array): Promise<StoredArray> {
  const ts = desc.transferSyntaxUid;
  const name = TRANSFER_SYNTAX_NAMES[ts] ?? ts;
  switch (ts) {
    case TS.Rle: {
      const bytes = decodeRle(frame, desc.rows * desc.columns, desc.bitsAllocated / 8, desc.samplesPerPixel, ds.name);
      return typedView(desc, bytes.buffer as ArrayBuffer, 0, desc.rows * desc.columns * desc.samplesPerPixel);
    }
    case TS.JpegBaseline:
    case TS.JpegExtended:
    case TS.JpegLossless:
    case TS.JpegLosslessSV1: {
      let header;
      try {
        header = readJpegHeader(frame);
      } catch (e) {
        jpegFailure(ds, e);
      }
      checkSize(ds, desc, header.width, header.height, header.components, name);
      if ((header.sof === 0xc0 || header.sof === 0xc1) && header.precision === 8) {
        return codecSamples(ds, desc, await decodeJpeg8(frame, ds.name), name);
      }
      try {
        const d = decodeJpeg(frame);
        return fromSamples(ds, desc, d.data, d.precision > 8 ? 2 : 1);
      } catch (e) {
        jpegFailure(ds, e);
      }
    }
    // falls through (unreachable: jpegFailure throws)
    case TS.JpegLsLossless:
    case TS.JpegLsNearLossless: {
      let header;
      try {
        header = readJpegHeader(frame);
      } catch (e) {
        jpegFailure(ds, e);
      }
      if (header.sof !== 0xf7) throw new FormatError(`${name} frame has no JPEG-LS frame header (SOF55)`, ds.name);
      checkSize(ds, desc, header.width, header.height, header.components, name);
      return codecSamples(ds, desc, await decodeJpegLs(frame, ds.name), name);
    }
    case TS.Jpeg2000:
    case TS.Jpeg2000Lossless:
    case TS.Htj2kLossless:
    case TS.Htj2kLosslessRpcl:
    case TS.Htj2k: {
      const ht = HTJ2K.has(ts);
      const h = readJ2kHeader(frame);
      if (!h) throw new FormatError(`${name} frame has no JPEG 2000 SIZ marker`, ds.name);
      checkSize(ds, desc, h.width, h.height, h.components, name);
      if (h.signed !== (desc.pixelRepresentation === 1)) {
        const family = ht ? 'HTJ2K' : 'JPEG 2000';
        const sign = h.signed ? 'signed' : 'unsigned';
        const pr = desc.pixelRepresentation;
        ds.warnings.push(
          `${ds.name}: ${family} code stream is ${sign} but PixelRepresentation is ${pr}; ` +
            'values follow the DICOM header',
        );
      }
      if (ht) checkEoc(ds, frame, name);
      return codecSamples(ds, desc, await (ht ? decodeHtj2k : decodeJpeg2000)(frame, ds.name), name);
    }
    case TS.DeflatedImageFrame:
      return inflateFrame(ds, desc, frame);
    default:
      throw new FormatError(`transfer syntax ${transferSyntaxLabel(ts)} is not supported`, ds.name);
  }
}

/** A Modality LUT (DICOM PS3.3 C.11.1): stored value v maps to entries[clamp(v - first, 0, n - 1)]. */
export interface ModalityLut {
  /** The first stored value mapped (LUT Descriptor's second value, signed when PixelRepresentation is 1). */
  first: number;
  /** The LUT Data, masked to the descriptor's bits per entry. */
  entries: Uint16Array;
  /** Smallest and largest entry: the range of the mapped values. */
  min: number;
  max: number;
}

/**
 * The Modality LUT of a data set (the first item of its Modality LUT Sequence (0028,3000)), or undefined
 * when it has none. FormatError when the descriptor or the data are unusable: never silently ignored.
 */
export function modalityLut(ds: DicomDataset, desc: PixelDescription): ModalityLut | undefined {
  const items = ds.sequence(TAG.ModalityLutSequence);
  if (items.length === 0) return undefined;
  const item = items[0];
  if (items.length > 1) ds.warnings.push(`${ds.name}: Modality LUT Sequence has ${items.length} items; the first used`);
  const d = item.element(TAG.LutDescriptor);
  if (!d || d.length < 6 || d.dataOffset + 6 > item.bytes.length)
    throw new FormatError('Modality LUT Sequence (0028,3000) has no LUT Descriptor (0028,3002) of 3 values', ds.name);
  const n = item.raw.uint16(TAG.LutDescriptor, 0) || 65536;
  const rawFirst = item.raw.uint16(TAG.LutDescriptor, 1) ?? 0;
  const first = desc.pixelRepresentation === 1 && rawFirst >= 32768 ? rawFirst - 65536 : rawFirst;
  const bits = item.raw.uint16(TAG.LutDescriptor, 2) ?? 0;
  if (bits < 1 || bits > 16)
    throw new FormatError(`Modality LUT Descriptor gives ${bits} bits per entry (8 or 16 supported)`, ds.name);
  const e = item.element(TAG.LutData);
  if (!e || e.dataOffset + e.length > item.bytes.length)
    throw new FormatError('Modality LUT Sequence (0028,3000) has no LUT Data (0028,3006)', ds.name);
  const entries = new Uint16Array(n);
  const mask = 2 ** bits - 1;
  if (e.length >= 2 * n) {
    for (let i = 0; i < n; i++) entries[i] = (item.raw.uint16(TAG.LutData, i) ?? 0) & mask;
  } else if (bits <= 8 && e.length >= n) {
    // 8-bit entries packed two to a word: in byte order.
    for (let i = 0; i < n; i++) entries[i] = item.bytes[e.dataOffset + i] & mask;
  } else {
    throw new FormatError(`Modality LUT Data holds ${e.length} bytes for ${n} ${bits}-bit entries`, ds.name);
  }
  let min = entries[0];
  let max = entries[0];
  for (let i = 1; i < n; i++) {
    if (entries[i] < min) min = entries[i];
    else if (entries[i] > max) max = entries[i];
  }
  return { first, entries, min, max };
}

/** Stored values through a Modality LUT: below the first mapped value the first entry, past the end the last. */
export function applyModalityLut(data: StoredArray, lut: ModalityLut): Uint16Array {
  const out = new Uint16Array(data.length);
  const { first, entries } = lut;
  const last = entries.length - 1;
  for (let i = 0; i < data.length; i++) {
    const k = data[i] - first;
    out[i] = entries[k <= 0 ? 0 : k >= last ? last : k];
  }
  return out;
}
