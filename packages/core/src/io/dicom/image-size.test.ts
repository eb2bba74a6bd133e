/**
 * Rows and Columns read at the width the file encodes them: a value sent as VR UL (or, implicit VR, in
 * 4 bytes) is not cut to its low 16 bits, and sizes DICOM cannot express are refused with a FormatError.
 */
import { describe, expect, it } from 'vitest';
import { FormatError } from '../../errors.js';
import { parseDicom } from './parse.js';
import { describePixels, MAX_IMAGE_SIZE } from './pixels.js';
import { SOP_CLASS } from './tags.js';
import { DicomElementWriter, part10File } from './writer.js';

type Size = { vr: 'US' | 'UL'; value: number };

/** An explicit VR little endian CT slice with the given Rows/Columns encodings and pixelCount pixels. */
function explicitFile(rows: Size, columns: Size, pixelCount: number): Uint8Array {
  const w = new DicomElementWriter();
  w.str(0x0008, 0x0016, 'UI', SOP_CLASS.CtImage);
  w.str(0x0008, 0x0018, 'UI', '1.2.3.4');
  w.str(0x0008, 0x0060, 'CS', 'CT');
  w.us(0x0028, 0x0002, 1);
  w.str(0x0028, 0x0004, 'CS', 'MONOCHROME2');
  for (const [element, s] of [
    [0x0010, rows],
    [0x0011, columns],
  ] as const) {
    if (s.vr === 'UL') w.ul(0x0028, element, s.value);
    else w.us(0x0028, element, s.value);
  }
  w.us(0x0028, 0x0100, 16);
  w.us(0x0028, 0x0101, 16);
  w.us(0x0028, 0x0102, 15);
  w.us(0x0028, 0x0103, 0);
  w.header(0x7fe0, 0x0010, 'OW', pixelCount * 2);
  w.push(new Uint8Array(pixelCount * 2));
  return part10File(SOP_CLASS.CtImage, '1.2.3.4', w.concat());
}

/** A bare implicit VR little endian data set (no preamble) with Rows/Columns in 4-byte values. */
function implicitFile(rows: number, columns: number, pixelCount: number): Uint8Array {
  const parts: Uint8Array[] = [];
  const el = (group: number, element: number, value: Uint8Array) => {
    const h = new Uint8Array(8);
    const dv = new DataView(h.buffer);
    dv.setUint16(0, group, true);
    dv.setUint16(2, element, true);
    dv.setUint32(4, value.length, true);
    parts.push(h, value);
  };
  const text = (s: string, pad: string) => new TextEncoder().encode(s.length % 2 ? s + pad : s);
  const u16 = (v: number) => new Uint8Array(new Uint16Array([v]).buffer);
  const u32 = (v: number) => new Uint8Array(new Uint32Array([v]).buffer);
  el(0x0008, 0x0016, text(SOP_CLASS.CtImage, '\0'));
  el(0x0008, 0x0018, text('1.2.3.4', '\0'));
  el(0x0008, 0x0060, text('CT', ' '));
  el(0x0028, 0x0002, u16(1));
  el(0x0028, 0x0004, text('MONOCHROME2', ' '));
  el(0x0028, 0x0010, u32(rows));
  el(0x0028, 0x0011, u32(columns));
  el(0x0028, 0x0100, u16(16));
  el(0x0028, 0x0101, u16(16));
  el(0x0028, 0x0102, u16(15));
  el(0x0028, 0x0103, u16(0));
  el(0x7fe0, 0x0010, new Uint8Array(pixelCount * 2));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

describe('Rows and Columns by their encoded VR', () => {
  it('reads US and UL values alike when they fit', () => {
    for (const vr of ['US', 'UL'] as const) {
      const desc = describePixels(parseDicom(explicitFile({ vr, value: 3 }, { vr, value: 2 }, 6), `${vr}.dcm`));
      expect([desc.rows, desc.columns], vr).toEqual([3, 2]);
    }
    const implicit = describePixels(parseDicom(implicitFile(3, 2, 6), 'implicit.dcm'));
    expect([implicit.rows, implicit.columns]).toEqual([3, 2]);
  });

  it('refuses a UL Rows whose low 16 bits would pass for a small image (65539 is not 3)', () => {
    // 65539 = 0x10003: read as uint16 it is 3, and the 3 x 2 pixels in the file would match it.
    const bytes = explicitFile({ vr: 'UL', value: 65539 }, { vr: 'US', value: 2 }, 6);
    const err = (() => {
      try {
        describePixels(parseDicom(bytes, 'wide-rows.dcm'));
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(FormatError);
    expect((err as FormatError).message).toBe(
      `wide-rows.dcm: Rows (0028,0010) is 65539, more than the ${MAX_IMAGE_SIZE} DICOM allows`,
    );
  });

  it('refuses absurd Columns in UL and in implicit 4-byte values, naming the file', () => {
    const ul = explicitFile({ vr: 'US', value: 2 }, { vr: 'UL', value: 0xffffffff }, 6);
    expect(() => describePixels(parseDicom(ul, 'huge.dcm'))).toThrow(
      new FormatError('Columns (0028,0011) is 4294967295, more than the 65535 DICOM allows', 'huge.dcm'),
    );
    const implicit = implicitFile(70000, 2, 6);
    expect(() => describePixels(parseDicom(implicit, 'implicit.dcm'))).toThrow(FormatError);
    expect(() => describePixels(parseDicom(implicit, 'implicit.dcm'))).toThrow(/Rows \(0028,0010\) is 70000/);
  });

  it('still accepts the largest US size and still refuses a zero size', () => {
    const max = explicitFile({ vr: 'UL', value: MAX_IMAGE_SIZE }, { vr: 'US', value: 1 }, MAX_IMAGE_SIZE);
    expect(describePixels(parseDicom(max, 'tall.dcm')).rows).toBe(MAX_IMAGE_SIZE);
    const empty = explicitFile({ vr: 'UL', value: 0 }, { vr: 'US', value: 2 }, 0);
    expect(() => describePixels(parseDicom(empty, 'empty.dcm'))).toThrow(/is empty/);
  });
});
