/**
 * Issue 14: HTJ2K (OpenJPH) and Deflated Image Frame Compression. No fixture holds either, so the reference
 * CT slice's stored pixels are encoded here (HTJ2K with OpenJPH's own encoder, deflate with fflate) and
 * wrapped as encapsulated pixel data in a copy of the reference file; the read volume must equal the
 * reference's exactly (lossless) or within a tolerance (lossy HTJ2K).
 */
import { deflateSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { FormatError, LimitError } from '../../errors.js';
import { readNamed, sharedData } from '../../test-helpers/data.js';
import type { NamedBytes } from '../types.js';
import { parseDicom } from './parse.js';
import { decodeFrame, describePixels } from './pixels.js';
import { readDicomSeries } from './series.js';
import { TAG, TS } from './tags.js';
import { DicomElementWriter, itemTag } from './writer.js';

const reference = readNamed(
  sharedData('transfer-syntaxes', 'ct-single-frame', 'ct_1.2.840.10008.1.2.1_explicit_le_reference.dcm'),
);

/** The reference's stored pixel bytes, and its data set before the pixel data element. */
function referenceParts(): { pixels: Uint8Array; before: Uint8Array; signed: boolean; bits: number } {
  const ds = parseDicom(reference.bytes, reference.name);
  const desc = describePixels(ds);
  expect([desc.rows, desc.columns, desc.bitsAllocated, desc.transferSyntaxUid]).toEqual([
    512,
    512,
    16,
    TS.ExplicitLittle,
  ]);
  const px = ds.element(TAG.PixelData);
  if (!px) throw new Error('reference has no pixel data');
  // ds.bytes is the data set after the file meta; PixelData's header (explicit VR, OW) is 12 bytes.
  const pixels = ds.bytes.slice(px.dataOffset, px.dataOffset + 512 * 512 * 2);
  const before = ds.bytes.slice(0, px.dataOffset - 12);
  // What follows the pixel data (trailing padding) is left out.
  return { pixels, before, signed: desc.pixelRepresentation === 1, bits: desc.bitsStored };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** The reference file with `ts` in its meta and `fragments` as encapsulated pixel data (empty offset table). */
function encapsulatedFile(ts: string, fragments: Uint8Array[], name: string): NamedBytes {
  const { before } = referenceParts();
  const m = new DicomElementWriter();
  m.str(0x0002, 0x0010, 'UI', ts);
  const metaBody = m.concat();
  const gl = new DicomElementWriter();
  gl.ul(0x0002, 0x0000, metaBody.length);
  const head = new Uint8Array(132);
  head.set([0x44, 0x49, 0x43, 0x4d], 128);
  const pxHeader = new Uint8Array([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x42, 0, 0, 0xff, 0xff, 0xff, 0xff]);
  const items = fragments.flatMap((f) => {
    const padded = f.length % 2 ? concat([f, new Uint8Array(1)]) : f;
    return [itemTag(0xe000, padded.length), padded];
  });
  const bytes = concat([
    head,
    gl.concat(),
    metaBody,
    before,
    pxHeader,
    itemTag(0xe000, 0),
    ...items,
    itemTag(0xe0dd, 0),
  ]);
  return { name, bytes };
}

async function volumeOf(file: NamedBytes) {
  const { series, skipped } = await readDicomSeries([file]);
  expect(skipped).toEqual([]);
  return series[0].volume;
}

function mismatches(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

interface Htj2kCodec {
  HTJ2KEncoder: new () => {
    getDecodedBuffer(info: object): Uint8Array;
    setQuality(lossless: boolean, step: number): void;
    setProgressionOrder(order: number): void;
    encode(): void;
    getEncodedBuffer(): Uint8Array;
    delete(): void;
  };
}

async function htj2kEncode(lossless: boolean, progression: number): Promise<Uint8Array> {
  const factory = (await import('@cornerstonejs/codec-openjph/wasmjs')).default as (o?: object) => Promise<Htj2kCodec>;
  const codec = await factory();
  const { pixels, signed, bits } = referenceParts();
  const enc = new codec.HTJ2KEncoder();
  const info = { width: 512, height: 512, bitsPerSample: 16, componentCount: 1, isSigned: signed };
  enc.getDecodedBuffer({ ...info, isUsingColorTransform: false }).set(pixels);
  expect(bits).toBeLessThanOrEqual(16);
  if (!lossless) enc.setQuality(false, 0.0005);
  enc.setProgressionOrder(progression);
  enc.encode();
  const out = enc.getEncodedBuffer().slice();
  enc.delete();
  return out;
}

describe('HTJ2K (OpenJPH)', () => {
  for (const [ts, progression, label] of [
    [TS.Htj2kLossless, 0, 'lossless (LRCP)'],
    [TS.Htj2kLosslessRpcl, 2, 'lossless RPCL'],
  ] as const) {
    it(`${label}: the reference slice encoded by OpenJPH reads back exactly`, async () => {
      const stream = await htj2kEncode(true, progression);
      expect(Array.from(stream.subarray(0, 4))).toEqual([0xff, 0x4f, 0xff, 0x51]);
      const [ref, got] = await Promise.all([volumeOf(reference), volumeOf(encapsulatedFile(ts, [stream], 'ht.dcm'))]);
      expect(got.dims).toEqual(ref.dims);
      expect(Array.from(got.indexToPatient)).toEqual(Array.from(ref.indexToPatient));
      expect(mismatches(got.data, ref.data)).toBe(0);
    });
  }

  it('lossy (.203) reads back close to the reference', async () => {
    const stream = await htj2kEncode(false, 2);
    const [ref, got] = await Promise.all([
      volumeOf(reference),
      volumeOf(encapsulatedFile(TS.Htj2k, [stream], 'lossy.dcm')),
    ]);
    let sum = 0;
    for (let i = 0; i < ref.data.length; i++) sum += Math.abs(got.data[i] - ref.data[i]);
    expect(sum / ref.data.length).toBeLessThan(8);
    expect(mismatches(got.data, ref.data)).toBeGreaterThan(0);
  });

  it('a truncated code stream is refused, never returned half blank', async () => {
    const stream = await htj2kEncode(true, 2);
    const file = encapsulatedFile(TS.Htj2kLossless, [stream.subarray(0, stream.length >> 1)], 'cut.dcm');
    await expect(decodeFrame(parseDicom(file.bytes, file.name), 0)).rejects.toThrow(/cut\.dcm.*EOC/);
  });

  it('a stream that is not HTJ2K is a FormatError naming the file', async () => {
    const stream = await htj2kEncode(true, 2);
    const broken = stream.slice();
    broken.fill(0x55, 60, broken.length - 2);
    const file = encapsulatedFile(TS.Htj2kLossless, [broken], 'bad.dcm');
    const e = await decodeFrame(parseDicom(file.bytes, file.name), 0).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(FormatError);
    expect(String(e)).toMatch(/bad\.dcm/);
  });
});

describe('Deflated Image Frame Compression (1.2.840.10008.1.2.8.1)', () => {
  it('the reference slice deflated and split over fragments reads back exactly', async () => {
    const { pixels } = referenceParts();
    const deflated = deflateSync(pixels, { level: 6 });
    const third = Math.floor(deflated.length / 3) & ~1;
    const fragments = [deflated.subarray(0, third), deflated.subarray(third, 2 * third), deflated.subarray(2 * third)];
    const [ref, got] = await Promise.all([
      volumeOf(reference),
      volumeOf(encapsulatedFile(TS.DeflatedImageFrame, fragments, 'deflated-frames.dcm')),
    ]);
    expect(got.dims).toEqual(ref.dims);
    expect(mismatches(got.data, ref.data)).toBe(0);
  });

  it('a frame that inflates beyond Rows x Columns x 2 bytes is a LimitError', async () => {
    const { pixels } = referenceParts();
    const file = encapsulatedFile(TS.DeflatedImageFrame, [deflateSync(concat([pixels, pixels]))], 'big.dcm');
    const e = await decodeFrame(parseDicom(file.bytes, file.name), 0).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(LimitError);
    expect(String(e)).toMatch(/big\.dcm.*more than the 524288 bytes/);
  });

  it('a frame that inflates short is a FormatError', async () => {
    const { pixels } = referenceParts();
    const file = encapsulatedFile(TS.DeflatedImageFrame, [deflateSync(pixels.subarray(0, 200000))], 'short.dcm');
    await expect(decodeFrame(parseDicom(file.bytes, file.name), 0)).rejects.toThrow(/short\.dcm.*200000 bytes, 524288/);
  });
});
