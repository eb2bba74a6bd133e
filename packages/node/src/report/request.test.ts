/**
 * Core's PNG encoder and base64 (report/png.ts) read back by independent decoders (fast-png, Node's
 * Buffer), and core's parseReportRequest refusing what is not a report request.
 */
import { describe, expect, it } from 'vitest';
import { decode } from 'fast-png';
import {
  base64ToBytes,
  bytesToBase64,
  encodePng,
  parseReportRequest,
  pngHeader,
  reportRequest,
  parsePlan,
  type EncodedKeyImage,
} from '@corridor/core';

function raster(w: number, h: number, alpha: (i: number) => number): Uint8ClampedArray {
  const out = new Uint8ClampedArray(w * h * 4);
  for (let i = 0; i < w * h; i++) {
    out[4 * i] = (i * 37) & 255;
    out[4 * i + 1] = (i * 11 + 5) & 255;
    out[4 * i + 2] = ((i % w) * 3) & 255;
    out[4 * i + 3] = alpha(i);
  }
  return out;
}

describe('encodePng', () => {
  it('opaque and translucent rasters decode to the same pixels (fast-png)', () => {
    for (const [w, h, alpha] of [
      [17, 9, () => 255],
      [5, 13, (i: number) => (i * 29) & 255],
    ] as const) {
      const rgba = raster(w, h, alpha);
      const png = encodePng(rgba, w, h);
      const d = decode(png);
      expect([d.width, d.height, d.depth]).toEqual([w, h, 8]);
      const opaque = alpha(1) === 255 && alpha(2) === 255;
      expect(d.channels).toBe(opaque ? 3 : 4);
      for (let i = 0; i < w * h; i++)
        for (let c = 0; c < d.channels; c++) expect(d.data[i * d.channels + c]).toBe(rgba[4 * i + c]);
      expect(pngHeader(png)).toEqual({ width: w, height: h, colorType: opaque ? 2 : 6 });
    }
  });

  it('refuses a raster of the wrong length; pngHeader refuses what is not a PNG', () => {
    expect(() => encodePng(new Uint8Array(10), 2, 2)).toThrow(/RGBA/);
    expect(() => pngHeader(new Uint8Array(40), 'x.png')).toThrow(/not a PNG/);
    const png = encodePng(
      raster(3, 3, () => 255),
      3,
      3,
    );
    const broken = png.slice();
    broken[17] ^= 1; // width changed, CRC no longer matches
    expect(() => pngHeader(broken)).toThrow(/CRC/);
  });
});

describe('base64', () => {
  it('agrees with Buffer both ways, every length mod 3', () => {
    for (const n of [0, 1, 2, 3, 4, 5, 300, 10_001]) {
      const b = Uint8Array.from({ length: n }, (_, i) => (i * 131 + 7) & 255);
      const s = bytesToBase64(b);
      expect(s).toBe(Buffer.from(b).toString('base64'));
      expect(Buffer.from(base64ToBytes(s)).equals(Buffer.from(b))).toBe(true);
    }
    expect(() => base64ToBytes('ab$d')).toThrow(/not base64/);
  });
});

describe('parseReportRequest', () => {
  const plan = parsePlan({
    schemaVersion: 1,
    volume: {},
    paths: [{ id: 's1', name: 'S1', kind: 'guidepin', diameterMm: 2.8, entry: [-60, 10, 5], target: [60, 12, 6] }],
  });
  const img: EncodedKeyImage = {
    image: { id: 'plan-s1', title: 'S1', caption: 'c', width: 4, height: 3 },
    png: encodePng(
      raster(4, 3, () => 255),
      4,
      3,
    ),
  };

  it('reads back what reportRequest built (through JSON)', () => {
    const req = reportRequest({ plan, image: { patientId: 'P1', source: 'not sent' }, images: [img], carm: 'x' });
    const r = parseReportRequest(JSON.parse(JSON.stringify(req)));
    expect(r.plan.paths[0].target).toEqual([60, 12, 6]);
    expect(r.image).toEqual({ patientId: 'P1' });
    expect(r.carm).toBe('x');
    expect(r.images).toHaveLength(1);
    expect(r.images[0].image).toEqual(img.image);
    expect(Buffer.from(r.images[0].png).equals(Buffer.from(img.png))).toBe(true);
  });

  it('refuses images that are not what they say, and bad pelvic views', () => {
    const req = reportRequest({ plan, images: [img] });
    const withImage = (patch: Record<string, unknown>) => ({ ...req, images: [{ ...req.images?.[0], ...patch }] });
    expect(() => parseReportRequest(withImage({ width: 5 }))).toThrow(/4 x 3/);
    expect(() => parseReportRequest(withImage({ png: bytesToBase64(new Uint8Array(50)) }))).toThrow(/not a PNG/);
    expect(() => parseReportRequest(withImage({ id: '../x' }))).toThrow(/id/);
    expect(() => parseReportRequest({ ...req, pelvic: { inlet: { primaryDeg: 1 } } })).toThrow(/pelvic.inlet/);
    expect(() => parseReportRequest([])).toThrow(/JSON object/);
  });
});
