/**
 * Issue 14 (files from pydicom-data, read as a new user would): Modality LUT Sequence applied, the file
 * meta of a file without preamble honoured, and refused transfer syntaxes named. Fixtures are built here
 * byte by byte; expected values are computed here, never taken from the reader.
 */
import { describe, expect, it } from 'vitest';
import { CorridorError, FormatError } from '../../errors.js';
import { readNamed, sharedData } from '../../test-helpers/data.js';
import { parseDicom } from './parse.js';
import { describePixels, SUPPORTED_TRANSFER_SYNTAXES } from './pixels.js';
import { readDicomSeries } from './series.js';
import { TRANSFER_SYNTAX_NAMES } from './tags.js';

const LONG_VRS = new Set(['OB', 'OW', 'SQ', 'UN', 'UT']);

function ascii(text: string, pad = ' '): Uint8Array {
  const s = text.length % 2 ? text + pad : text;
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

function u16s(values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  const dv = new DataView(out.buffer);
  values.forEach((v, i) => dv.setUint16(2 * i, v & 0xffff, true));
  return out;
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

/** One little-endian element: explicit VR when `vr` is given and `explicit`, else implicit. */
function element(group: number, elem: number, vr: string, value: Uint8Array, explicit = true): Uint8Array {
  const head = new Uint8Array(explicit ? (LONG_VRS.has(vr) ? 12 : 8) : 8);
  const dv = new DataView(head.buffer);
  dv.setUint16(0, group, true);
  dv.setUint16(2, elem, true);
  if (!explicit) dv.setUint32(4, value.length, true);
  else {
    head[4] = vr.charCodeAt(0);
    head[5] = vr.charCodeAt(1);
    if (LONG_VRS.has(vr)) dv.setUint32(8, value.length, true);
    else dv.setUint16(6, value.length, true);
  }
  return concat([head, value]);
}

/** A sequence item of defined length. */
function item(content: Uint8Array): Uint8Array {
  const head = new Uint8Array(8);
  const dv = new DataView(head.buffer);
  dv.setUint16(0, 0xfffe, true);
  dv.setUint16(2, 0xe000, true);
  dv.setUint32(4, content.length, true);
  return concat([head, content]);
}

/** Preamble, DICM and a file meta (group length and transfer syntax), then the data set. */
function part10(ts: string, dataset: Uint8Array): Uint8Array {
  const tsElement = element(0x0002, 0x0010, 'UI', ascii(ts, '\0'));
  const meta = concat([element(0x0002, 0x0000, 'UL', Uint8Array.of(tsElement.length, 0, 0, 0)), tsElement]);
  return concat([new Uint8Array(128), ascii('DICM'), meta, dataset]);
}

interface ImageSpec {
  rows: number;
  columns: number;
  bitsStored: number;
  pixelRepresentation: 0 | 1;
  /** Stored values (16 bits allocated). */
  pixels: number[];
  /** Modality LUT Sequence item: descriptor [entries, first mapped, bits] and data (16-bit words). */
  lut?: { descriptor: [number, number, number]; data: number[] };
  explicit?: boolean;
  rescale?: boolean;
}

function imageFile(spec: ImageSpec): Uint8Array {
  const ex = spec.explicit ?? true;
  const e = (g: number, el: number, vr: string, v: Uint8Array) => element(g, el, vr, v, ex);
  const parts = [
    e(0x0008, 0x0060, 'CS', ascii('CT')),
    e(0x0020, 0x000e, 'UI', ascii('1.2.3.14', '\0')),
    e(0x0020, 0x0032, 'DS', ascii('0\\0\\0')),
    e(0x0020, 0x0037, 'DS', ascii('1\\0\\0\\0\\1\\0')),
    e(0x0028, 0x0002, 'US', u16s([1])),
    e(0x0028, 0x0004, 'CS', ascii('MONOCHROME2')),
    e(0x0028, 0x0010, 'US', u16s([spec.rows])),
    e(0x0028, 0x0011, 'US', u16s([spec.columns])),
    e(0x0028, 0x0030, 'DS', ascii('0.5\\0.5')),
    e(0x0028, 0x0100, 'US', u16s([16])),
    e(0x0028, 0x0101, 'US', u16s([spec.bitsStored])),
    e(0x0028, 0x0102, 'US', u16s([spec.bitsStored - 1])),
    e(0x0028, 0x0103, 'US', u16s([spec.pixelRepresentation])),
  ];
  if (spec.rescale) {
    parts.push(e(0x0028, 0x1052, 'DS', ascii('-1000')), e(0x0028, 0x1053, 'DS', ascii('2')));
  }
  if (spec.lut) {
    const descVr = spec.pixelRepresentation === 1 ? 'SS' : 'US';
    const content = concat([
      e(0x0028, 0x3002, descVr, u16s(spec.lut.descriptor)),
      e(0x0028, 0x3004, 'LO', ascii('TEST')),
      e(0x0028, 0x3006, 'OW', u16s(spec.lut.data)),
    ]);
    parts.push(e(0x0028, 0x3000, 'SQ', item(content)));
  }
  parts.push(e(0x7fe0, 0x0010, 'OW', u16s(spec.pixels)));
  return part10(ex ? '1.2.840.10008.1.2.1' : '1.2.840.10008.1.2', concat(parts));
}

/** PS3.3 C.11.1, written out independently of the reader. */
function expectedThroughLut(stored: number[], lut: { descriptor: [number, number, number]; data: number[] }) {
  const n = lut.descriptor[0] === 0 ? 65536 : lut.descriptor[0];
  const first = lut.descriptor[1];
  const mask = (1 << lut.descriptor[2]) - 1;
  return stored.map((v) => {
    if (v < first) return lut.data[0] & mask;
    if (v > first + n - 1) return lut.data[n - 1] & mask;
    return lut.data[v - first] & mask;
  });
}

describe('Modality LUT Sequence (0028,3000)', () => {
  it('signed stored values with a negative first mapped value map through the LUT, clamped at both ends', async () => {
    // 12-bit signed stored values; the LUT covers -4..3 and gives values beyond int16.
    const lut = {
      descriptor: [8, -4 & 0xffff, 16] as [number, number, number],
      data: [0, 7, 300, 4000, 32767, 40000, 60000, 65535],
    };
    const pixels = [-2048, -5, -4, -3, -1, 0, 1, 2, 3, 4, 100, 2047];
    const bytes = imageFile({ rows: 3, columns: 4, bitsStored: 12, pixelRepresentation: 1, pixels, lut });
    const { series } = await readDicomSeries([{ name: 'mlut.dcm', bytes }]);
    const v = series[0].volume;
    expect(v.dims).toEqual([4, 3, 1]);
    const want = expectedThroughLut(pixels, { ...lut, descriptor: [8, -4, 16] });
    expect(Array.from(v.data)).toEqual(want);
    expect(Math.max(...want)).toBe(65535);
  });

  it('implicit VR, unsigned, 65536 entries (descriptor 0), LUT over RescaleSlope (with a warning)', async () => {
    const data = Array.from({ length: 65536 }, (_, i) => (i * 37 + 11) & 0xffff);
    const lut = { descriptor: [0, 0, 16] as [number, number, number], data };
    const pixels = [0, 1, 2, 255, 4095, 4094, 1234, 3000, 17, 99, 4000, 512];
    const bytes = imageFile({
      rows: 4,
      columns: 3,
      bitsStored: 12,
      pixelRepresentation: 0,
      pixels,
      lut,
      explicit: false,
      rescale: true,
    });
    const { series } = await readDicomSeries([{ name: 'mlut-implicit.dcm', bytes }]);
    expect(Array.from(series[0].volume.data)).toEqual(expectedThroughLut(pixels, lut));
    expect(series[0].warnings.join(' ')).toMatch(/Modality LUT.*RescaleSlope/);
  });

  it('8-bit entries mask the words to 8 bits', async () => {
    const lut = { descriptor: [4, 10, 8] as [number, number, number], data: [0x1ff, 0x80, 0x10, 0x0aff] };
    const pixels = [0, 9, 10, 11, 12, 13, 14, 200];
    const bytes = imageFile({ rows: 2, columns: 4, bitsStored: 16, pixelRepresentation: 0, pixels, lut });
    const { series } = await readDicomSeries([{ name: 'mlut8.dcm', bytes }]);
    expect(Array.from(series[0].volume.data)).toEqual(expectedThroughLut(pixels, lut));
  });

  it('LUT Data shorter than its descriptor is refused clearly, not ignored', async () => {
    const lut = { descriptor: [16, 0, 16] as [number, number, number], data: [1, 2, 3] };
    const bytes = imageFile({ rows: 1, columns: 2, bitsStored: 16, pixelRepresentation: 0, pixels: [0, 1], lut });
    const e = await readDicomSeries([{ name: 'short-lut.dcm', bytes }]).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(FormatError);
    expect((e as Error).message).toMatch(/short-lut\.dcm.*Modality LUT Data holds 6 bytes for 16 16-bit entries/);
  });
});

describe('file meta without the 128-byte preamble', () => {
  const dir = sharedData('transfer-syntaxes', 'ct-single-frame');
  for (const name of ['ct_1.2.840.10008.1.2.4.80_jpegls_lossless.dcm', 'ct_1.2.840.10008.1.2.2_explicit_be.dcm']) {
    it(`${name} without preamble and DICM decodes to the same pixels, using the meta's syntax`, async () => {
      const original = readNamed(`${dir}/${name}`);
      expect(String.fromCharCode(...original.bytes.subarray(128, 132))).toBe('DICM');
      const stripped = { name: 'stripped.dcm', bytes: original.bytes.slice(132) };
      const ts = name.split('_')[1];
      expect(parseDicom(stripped.bytes, stripped.name).transferSyntaxUid).toBe(ts);
      const [a, b] = await Promise.all([readDicomSeries([original]), readDicomSeries([stripped])]);
      const va = a.series[0].volume;
      const vb = b.series[0].volume;
      expect(vb.dims).toEqual(va.dims);
      expect(Array.from(vb.indexToPatient)).toEqual(Array.from(va.indexToPatient));
      let mismatches = 0;
      for (let i = 0; i < va.data.length; i++) if (va.data[i] !== vb.data[i]) mismatches++;
      expect(mismatches).toBe(0);
      expect(b.series[0].warnings.join(' ')).toMatch(/stripped\.dcm: no 128-byte preamble/);
    });
  }
});

describe('refused transfer syntaxes are named', () => {
  const minimal = (ts: string) =>
    part10(
      ts,
      concat([
        element(0x0028, 0x0010, 'US', u16s([1])),
        element(0x0028, 0x0011, 'US', u16s([1])),
        element(0x0028, 0x0100, 'US', u16s([16])),
        element(0x7fe0, 0x0010, 'OW', u16s([0])),
      ]),
    );
  const refusal = (ts: string, name: string): string => {
    try {
      describePixels(parseDicom(minimal(ts), name));
    } catch (e) {
      if (e instanceof CorridorError) return e.message;
      throw e;
    }
    throw new Error(`${ts} was not refused`);
  };

  it('JPEG XL lossless by name and UID', () => {
    expect(refusal('1.2.840.10008.1.2.4.110', 'jxl.dcm')).toMatch(
      /jxl\.dcm.*transfer syntax JPEG XL lossless \(1\.2\.840\.10008\.1\.2\.4\.110\) is not supported/,
    );
  });

  it('every unsupported syntax of PS3.6 Annex A in the table is refused by name; an unknown UID by UID', () => {
    const unsupported = Object.keys(TRANSFER_SYNTAX_NAMES).filter((ts) => !SUPPORTED_TRANSFER_SYNTAXES.includes(ts));
    expect(unsupported.length).toBeGreaterThan(40);
    for (const ts of unsupported) {
      expect(refusal(ts, 'x.dcm')).toContain(`transfer syntax ${TRANSFER_SYNTAX_NAMES[ts]} (${ts}) is not supported`);
    }
    expect(refusal('1.2.840.10008.9.9.9', 'x.dcm')).toMatch(
      /transfer syntax 1\.2\.840\.10008\.9\.9\.9 is not supported/,
    );
  });
});
