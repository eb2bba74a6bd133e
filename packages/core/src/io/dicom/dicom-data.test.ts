/**
 * DICOM reading on the real files in ../shared/data. Expected geometry and values are computed here
 * from the tags (read with dicom-parser directly) and from the codecs called directly, never taken from
 * the reader under test.
 */
import dicomParser from 'dicom-parser';
import { describe, expect, it } from 'vitest';
import { CorridorError, FormatError, GeometryError, LimitError } from '../../errors.js';
import type { Volume } from '../../volume/volume.js';
import type { NamedBytes } from '../types.js';
import { parseDicom } from './parse.js';
import { decodeJpeg } from './jpeg.js';
import { decodeJpeg2000 } from './codecs.js';
import { decodeFrame, encapsulatedFrame } from './pixels.js';
import { readDicomSeries } from './series.js';
import { readDir, readNamed, sharedData } from '../../test-helpers/data.js';
import { defined } from '../../test-helpers/defined.js';

function nums(ds: dicomParser.DataSet, tag: string): number[] {
  return (ds.string(tag) ?? '').split('\\').map(Number);
}

function uint16Of(ds: dicomParser.DataSet, tag: string): number {
  return defined(ds.uint16(tag), `uint16 ${tag}`);
}

/** The data set of item `i` of the sequence `tag`. */
function itemOf(ds: dicomParser.DataSet, tag: string, i = 0): dicomParser.DataSet {
  return defined(ds.elements[tag]?.items?.[i]?.dataSet, `item ${i} of ${tag}`);
}

/** All the fragments of an encapsulated pixel data element, as one frame. */
function allFragments(ds: dicomParser.DataSet): Uint8Array {
  const px = ds.elements.x7fe00010;
  const count = defined(px.fragments, 'pixel data fragments').length;
  return dicomParser.readEncapsulatedPixelDataFromFragments(ds, px, 0, count) as Uint8Array;
}

/** Independent geometry: sort by dot(normal, IPP), spacing from positions, matrix per conventions.md. */
function expectedGeometry(files: NamedBytes[]) {
  const parsed = files.map((f) => ({ f, ds: dicomParser.parseDicom(f.bytes) }));
  const iop = nums(parsed[0].ds, 'x00200037');
  const ps = nums(parsed[0].ds, 'x00280030');
  const x = iop.slice(0, 3);
  const y = iop.slice(3, 6);
  const n = [x[1] * y[2] - x[2] * y[1], x[2] * y[0] - x[0] * y[2], x[0] * y[1] - x[1] * y[0]];
  const withD = parsed.map((p) => {
    const pos = nums(p.ds, 'x00200032');
    return { ...p, pos, d: n[0] * pos[0] + n[1] * pos[1] + n[2] * pos[2] };
  });
  withD.sort((a, b) => a.d - b.d);
  const dz = (withD[withD.length - 1].d - withD[0].d) / (withD.length - 1);
  const p0 = withD[0].pos;
  const m = [
    x[0] * ps[1],
    y[0] * ps[0],
    n[0] * dz,
    p0[0],
    x[1] * ps[1],
    y[1] * ps[0],
    n[1] * dz,
    p0[1],
    x[2] * ps[1],
    y[2] * ps[0],
    n[2] * dz,
    p0[2],
    0,
    0,
    0,
    1,
  ];
  return {
    sorted: withD,
    m,
    spacing: [ps[1], ps[0], dz],
    rows: uint16Of(parsed[0].ds, 'x00280010'),
    cols: uint16Of(parsed[0].ds, 'x00280011'),
  };
}

function expectMatrixClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-6): void {
  for (let i = 0; i < 16; i++) expect(Math.abs(actual[i] - expected[i]), `matrix element ${i}`).toBeLessThan(tol);
}

/** HU of a native little-endian reference file, read with dicom-parser and its own tags. */
function referenceHu(
  bytes: Uint8Array,
  frame = 0,
  perFrameRescale?: { slope: number; intercept: number },
): Float64Array {
  const ds = dicomParser.parseDicom(bytes);
  const px = ds.elements.x7fe00010;
  const rows = uint16Of(ds, 'x00280010');
  const cols = uint16Of(ds, 'x00280011');
  const signed = ds.uint16('x00280103') === 1;
  const slope = perFrameRescale?.slope ?? Number(ds.string('x00281053') ?? 1);
  const intercept = perFrameRescale?.intercept ?? Number(ds.string('x00281052') ?? 0);
  const dv = new DataView(bytes.buffer, bytes.byteOffset + px.dataOffset + frame * rows * cols * 2);
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < out.length; i++)
    out[i] = (signed ? dv.getInt16(2 * i, true) : dv.getUint16(2 * i, true)) * slope + intercept;
  return out;
}

function sliceOf(v: Volume, k: number): Float64Array {
  const n = v.dims[0] * v.dims[1];
  return Float64Array.from(v.data.subarray(k * n, (k + 1) * n));
}

function errorStats(a: ArrayLike<number>, b: ArrayLike<number>) {
  const e = new Float64Array(a.length);
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    e[i] = Math.abs(a[i] - b[i]);
    sum += e[i];
  }
  e.sort();
  return { mean: sum / a.length, p99: e[Math.floor(0.99 * (a.length - 1))], max: e[e.length - 1] };
}

describe('ct-dicom-jpeg2000 (20 files, JPEG 2000 lossless, names not in slice order)', () => {
  const files = readDir('ct-dicom-jpeg2000');

  it('gives one 512 x 512 x 20 volume placed and spaced from the positions, not SliceThickness', async () => {
    const exp = expectedGeometry(files);
    const progress: number[] = [];
    const result = await readDicomSeries(files, { onProgress: (done, total) => progress.push(done / total) });
    expect(result.series).toHaveLength(1);
    expect(result.skipped).toEqual([]);
    const v = result.series[0].volume;
    expect(v.dims).toEqual([exp.cols, exp.rows, 20]);
    expect(v.dims).toEqual([512, 512, 20]);
    // SliceThickness says 3 mm; the positions are 2 mm apart (README of the data).
    expect(parseFloat(defined(dicomParser.parseDicom(files[0].bytes).string('x00180050'), 'SliceThickness'))).toBe(3);
    expect(exp.spacing[2]).toBeCloseTo(2, 6);
    for (let a = 0; a < 3; a++) expect(v.spacing[a]).toBeCloseTo(exp.spacing[a], 9);
    expectMatrixClose(v.indexToPatient, exp.m);
    expect(v.meta.modality).toBe('CT');
    expect(v.meta.frameOfReferenceUid).toBe(dicomParser.parseDicom(files[0].bytes).string('x00200052'));
    expect(result.series[0].format).toBe('dicom');
    expect(progress[progress.length - 1]).toBe(1);
    for (let i = 1; i < progress.length; i++) expect(progress[i]).toBeGreaterThanOrEqual(progress[i - 1]);
  });

  it('HU equal the stored values decoded by OpenJPEG directly, rescaled with each file’s own tags', async () => {
    const exp = expectedGeometry(files);
    const { series } = await readDicomSeries(files);
    const v = series[0].volume;
    expect(v.data).toBeInstanceOf(Int16Array);
    const factory = (await import('@cornerstonejs/codec-openjpeg/decodewasmjs')).default as (o?: object) => Promise<
      Record<
        string,
        new () => {
          getEncodedBuffer(n: number): Uint8Array;
          decode(): void;
          getDecodedBuffer(): Uint8Array;
          getFrameInfo(): { width: number; height: number; isSigned: boolean };
          delete(): void;
        }
      >
    >;
    const codec = await factory();
    for (const k of [0, 7, 19]) {
      const { ds, f } = exp.sorted[k];
      const frame = allFragments(ds);
      const dec = new codec.J2KDecoder();
      dec.getEncodedBuffer(frame.length).set(frame);
      dec.decode();
      const info = dec.getFrameInfo();
      const raw = dec.getDecodedBuffer().slice();
      dec.delete();
      expect([info.width, info.height]).toEqual([512, 512]);
      const signed = ds.uint16('x00280103') === 1;
      const stored = signed ? new Int16Array(raw.buffer) : new Uint16Array(raw.buffer);
      const slope = Number(ds.string('x00281053'));
      const intercept = Number(ds.string('x00281052'));
      expect(intercept).toBe(-1024);
      const got = sliceOf(v, k);
      let mismatches = 0;
      for (let i = 0; i < got.length; i++) if (got[i] !== stored[i] * slope + intercept) mismatches++;
      expect(mismatches, `slice ${k} (${f.name})`).toBe(0);
    }
  });
});

describe('JPEG 2000 decoding one frame after another', () => {
  const files = readDir('ct-dicom-jpeg2000');

  it('a stream that does not decode never yields the previous frame; the next frame is exact', async () => {
    const factory = (await import('@cornerstonejs/codec-openjpeg/decodewasmjs')).default as (o?: object) => Promise<
      Record<
        string,
        new () => {
          getEncodedBuffer(n: number): Uint8Array;
          decode(): void;
          getDecodedBuffer(): Uint8Array;
          delete(): void;
        }
      >
    >;
    const quiet = () => undefined;
    const codec = await factory({ print: quiet, printErr: quiet });
    const fresh = (frame: Uint8Array) => {
      const dec = new codec.J2KDecoder();
      dec.getEncodedBuffer(frame.length).set(frame);
      dec.decode();
      const out = dec.getDecodedBuffer().slice();
      dec.delete();
      return out;
    };
    const frames = [0, 9].map((i) => encapsulatedFrame(parseDicom(files[i].bytes, files[i].name), 0));
    const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, i) => v === b[i]);
    const first = await decodeJpeg2000(frames[0], 'first');
    expect(same(first.data, fresh(frames[0]))).toBe(true);
    // OpenJPEG does not throw on this: it reports an empty frame. A decoder kept from the frame before
    // would report that frame's size instead (its stale state), and the size checks would not catch it.
    const junk = Uint8Array.from({ length: 300 }, (_, i) => (i < 4 ? [0xff, 0x4f, 0xff, 0x51][i] : (i * 37) & 0xff));
    const bad = await decodeJpeg2000(junk, 'junk.dcm').catch((e: unknown) => e);
    if (!(bad instanceof FormatError)) expect(bad).toMatchObject({ width: 0, height: 0 });
    const second = await decodeJpeg2000(frames[1], 'second');
    expect(same(second.data, fresh(frames[1]))).toBe(true);
    // The returned data are copies: a later decode does not change an earlier result.
    expect(same(first.data, fresh(frames[0]))).toBe(true);
  });
});

describe('ct-single-frame: every transfer syntax', () => {
  const dir = sharedData('transfer-syntaxes', 'ct-single-frame');
  const file = (ts: string) => readNamed(`${dir}/ct_${ts}`);
  const reference = file('1.2.840.10008.1.2.1_explicit_le_reference.dcm');
  const refHu = referenceHu(reference.bytes);
  const refGeometry = expectedGeometry([reference]);

  const lossless = [
    '1.2.840.10008.1.2.1_explicit_le_reference.dcm',
    '1.2.840.10008.1.2.2_explicit_be.dcm',
    '1.2.840.10008.1.2.1.99_deflated.dcm',
    '1.2.840.10008.1.2.4.57_jpeg_lossless_p14.dcm',
    '1.2.840.10008.1.2.4.70_jpeg_lossless_sv1.dcm',
    '1.2.840.10008.1.2.4.80_jpegls_lossless.dcm',
    '1.2.840.10008.1.2.5_rle.dcm',
  ];
  for (const name of lossless) {
    it(`${name} decodes to exactly the reference's HU`, async () => {
      const { series } = await readDicomSeries([file(name)]);
      const v = series[0].volume;
      expect(v.dims).toEqual([512, 512, 1]);
      expect(v.data).toBeInstanceOf(Int16Array);
      const got = sliceOf(v, 0);
      let mismatches = 0;
      for (let i = 0; i < got.length; i++) if (got[i] !== refHu[i]) mismatches++;
      expect(mismatches).toBe(0);
      // Same in-plane geometry as the reference (a single slice has no k spacing from positions).
      for (const i of [0, 1, 3, 4, 5, 7, 8, 9, 11]) expect(v.indexToPatient[i]).toBeCloseTo(refGeometry.m[i], 6);
    });
  }

  it('JPEG-LS near-lossless is within 1 stored value (slope 1 -> 1 HU) of the reference', async () => {
    const f = file('1.2.840.10008.1.2.4.81_jpegls_near_lossless.dcm');
    expect(Number(dicomParser.parseDicom(f.bytes).string('x00281053'))).toBe(1);
    const v = (await readDicomSeries([f])).series[0].volume;
    const s = errorStats(sliceOf(v, 0), refHu);
    expect(s.max).toBeLessThanOrEqual(1);
    expect(s.mean).toBeGreaterThan(0); // it is lossy: an exact match would mean the wrong file was read
  });

  // Lossy JPEG, measured against the reference: baseline 8-bit (slope 32.1 HU per stored step, so
  // quantisation alone costs ~8 HU on average) mean 19.8 HU, 99th percentile 58 HU, max 64 HU;
  // extended 12-bit (slope 2.0) mean 3.8 HU, 99th percentile 15 HU. The bounds allow ~50% more; a wrong
  // decode (wrong level shift, rescale, block order, 8-bit clamping of 12-bit data) is off by hundreds.
  it('JPEG baseline (8-bit, own slope/intercept) is within lossy tolerance', async () => {
    const f = file('1.2.840.10008.1.2.4.50_jpeg_baseline.dcm');
    const ds = dicomParser.parseDicom(f.bytes);
    expect(Number(ds.string('x00281053'))).toBeCloseTo(32.1216, 4);
    const v = (await readDicomSeries([f])).series[0].volume;
    expect(v.data).toBeInstanceOf(Float32Array);
    const s = errorStats(sliceOf(v, 0), refHu);
    expect(s.mean).toBeLessThan(30);
    expect(s.p99).toBeLessThan(90);
    // An independent decode (this package's own DCT decoder, not libjpeg-turbo) agrees within 1 stored step.
    const frame = allFragments(ds);
    const own = decodeJpeg(frame);
    expect(own.precision).toBe(8);
    const slope = Number(ds.string('x00281053'));
    const intercept = Number(ds.string('x00281052'));
    const got = sliceOf(v, 0);
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(own.data[i] * slope + intercept - got[i]));
    expect(worst).toBeLessThanOrEqual(slope * 1.0001);
  });

  it('JPEG extended 12-bit is within lossy tolerance', async () => {
    const f = file('1.2.840.10008.1.2.4.51_jpeg_extended.dcm');
    const v = (await readDicomSeries([f])).series[0].volume;
    const s = errorStats(sliceOf(v, 0), refHu);
    expect(s.mean).toBeLessThan(6);
    expect(s.p99).toBeLessThan(25);
  });
});

describe('enhanced CT multi-frame (per-frame positions in functional groups)', () => {
  const dir = sharedData('transfer-syntaxes', 'enhanced-ct-multiframe');
  const ref = readNamed(`${dir}/ect_2f_explicit_le_reference.dcm`);

  /** Frame positions, orientation, spacing and rescale read from the functional groups with dicom-parser. */
  function framesOf(bytes: Uint8Array) {
    const ds = dicomParser.parseDicom(bytes);
    const shared = itemOf(ds, 'x52009229');
    const iop = nums(itemOf(shared, 'x00209116'), 'x00200037');
    const ps = nums(itemOf(shared, 'x00289110'), 'x00280030');
    const pvt = itemOf(shared, 'x00289145');
    const rescale = { slope: Number(pvt.string('x00281053')), intercept: Number(pvt.string('x00281052')) };
    const perFrame = defined(ds.elements.x52009230.items, 'PerFrameFunctionalGroupsSequence');
    const positions = perFrame.map((it) => {
      const planePosition = itemOf(defined(it.dataSet, 'a per-frame item'), 'x00209113');
      return nums(planePosition, 'x00200032');
    });
    return { iop, ps, positions, rescale };
  }

  it('reference: a 2-slice volume ordered along the normal with the per-frame positions', async () => {
    const fr = framesOf(ref.bytes);
    const x = fr.iop.slice(0, 3),
      y = fr.iop.slice(3, 6);
    const n = [x[1] * y[2] - x[2] * y[1], x[2] * y[0] - x[0] * y[2], x[0] * y[1] - x[1] * y[0]];
    const d = fr.positions.map((p) => n[0] * p[0] + n[1] * p[1] + n[2] * p[2]);
    const order = d[0] <= d[1] ? [0, 1] : [1, 0];
    const p0 = fr.positions[order[0]];
    const dz = Math.abs(d[1] - d[0]);
    const { series } = await readDicomSeries([ref]);
    const v = series[0].volume;
    expect(v.dims).toEqual([512, 512, 2]);
    expectMatrixClose(v.indexToPatient, [
      x[0] * fr.ps[1],
      y[0] * fr.ps[0],
      n[0] * dz,
      p0[0],
      x[1] * fr.ps[1],
      y[1] * fr.ps[0],
      n[1] * dz,
      p0[1],
      x[2] * fr.ps[1],
      y[2] * fr.ps[0],
      n[2] * dz,
      p0[2],
      0,
      0,
      0,
      1,
    ]);
    for (let k = 0; k < 2; k++) {
      const hu = referenceHu(ref.bytes, order[k], fr.rescale);
      const got = sliceOf(v, k);
      let mismatches = 0;
      for (let i = 0; i < got.length; i++) if (got[i] !== hu[i]) mismatches++;
      expect(mismatches, `slice ${k}`).toBe(0);
    }
  });

  for (const name of ['ect_2f_jpeg_lossless_sv1_fragmented_no_bot.dcm', 'ect_2f_rle_no_bot.dcm']) {
    it(`${name} (empty offset table) is identical to the reference volume`, async () => {
      const f = readNamed(`${dir}/${name}`);
      const ds = dicomParser.parseDicom(f.bytes);
      expect(ds.elements.x7fe00010.basicOffsetTable).toEqual([]);
      expect(framesOf(f.bytes).positions).toEqual(framesOf(ref.bytes).positions);
      const a = (await readDicomSeries([ref])).series[0].volume;
      const b = (await readDicomSeries([f])).series[0].volume;
      expect(b.dims).toEqual([512, 512, 2]);
      expect(Array.from(b.indexToPatient)).toEqual(Array.from(a.indexToPatient));
      expect(b.data).toEqual(a.data);
    });
  }

  it(
    'JPEG extended 12-bit: 2 slices; stored values are the reference’s + 1024 within lossy error, ' +
      'rescaled with the file’s own (unchanged) intercept',
    async () => {
      // The file's stored values were shifted by +1024 when it was made, but its functional groups keep
      // intercept -1024 (the reference's); the reader follows the file, so HU come out 1024 higher. This
      // test pins that down from the decoded stored values so a change in either is noticed.
      const f = readNamed(`${dir}/ect_2f_jpeg_extended_51_fragmented_no_bot.dcm`);
      expect(framesOf(f.bytes).rescale).toEqual(framesOf(ref.bytes).rescale);
      const ra = parseDicom(ref.bytes, ref.name);
      const rb = parseDicom(f.bytes, f.name);
      for (const frame of [0, 1]) {
        const a = (await decodeFrame(ra, frame)).data;
        const b = (await decodeFrame(rb, frame)).data;
        const shifted = Float64Array.from(a, (v) => v + 1024);
        const s = errorStats(b, shifted);
        expect(s.mean).toBeLessThan(6);
        expect(s.p99).toBeLessThan(25);
      }
      const v = (await readDicomSeries([f])).series[0].volume;
      expect(v.dims).toEqual([512, 512, 2]);
      const vr = (await readDicomSeries([ref])).series[0].volume;
      expectMatrixClose(v.indexToPatient, vr.indexToPatient);
    },
  );
});

describe('malformed files: a typed error naming the file, or a volume with warnings; never a crash', () => {
  const files = readDir('malformed');
  const expectations: Record<string, RegExp | 'loads'> = {
    'dcmjs_invalid-vr-length-test.dcm': 'loads',
    'dcmjs_no-meta-length-test.dcm': /no pixel data/,
    'pydicom_ExplVR_BigEndNoMeta.dcm': /no pixel data/,
    'pydicom_ExplVR_LitEndNoMeta.dcm': /no pixel data/,
    'pydicom_MR_truncated.dcm': /cannot be parsed: the file is truncated \(an element runs past its last byte/,
    'pydicom_UN_sequence.dcm': /no pixel data/,
    'pydicom_badVR.dcm': /NumberOfFrames.*not a list of numbers/,
    'pydicom_meta_missing_tsyntax.dcm': /TransferSyntaxUID/,
    'pydicom_no_meta.dcm': /not a DICOM file/,
    'pydicom_no_meta_group_length.dcm': /no pixel data/,
    'pydicom_rtplan_truncated.dcm': /cannot be parsed/,
    'pylibjpeg_JPEGLossless_1s_1f_i_16_16_bad.dcm': /predictor 6 gives implausible noise/,
  };
  it('covers every file in the folder', () => {
    expect(files.map((f) => f.name).sort()).toEqual(Object.keys(expectations).sort());
  });
  for (const f of files) {
    it(f.name, async () => {
      const want = expectations[f.name];
      if (want === 'loads') {
        const r = await readDicomSeries([f]);
        expect(r.series[0].volume.dims[0]).toBeGreaterThan(0);
        return;
      }
      const err = await readDicomSeries([f]).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(CorridorError);
      expect(err instanceof FormatError || err instanceof GeometryError || err instanceof LimitError).toBe(true);
      expect((err as Error).message).toContain(f.name);
      expect((err as Error).message).toMatch(want);
    });
  }
});
