import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FormatError, LimitError } from '../errors.js';
import {
  MultipartParser,
  chooseBoundary,
  encodeMultipart,
  multipartBoundary,
  type MultipartPart,
} from './multipart.js';

const enc = (s: string) => new TextEncoder().encode(s);
const latin1 = (b: Uint8Array) => Array.from(b, (c) => String.fromCharCode(c)).join('');
function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
function parseIn(body: Uint8Array, boundary: string, cuts: number[]): MultipartPart[] {
  const got: MultipartPart[] = [];
  const p = new MultipartParser(boundary, (part) => got.push({ headers: part.headers, body: part.body.slice() }));
  let at = 0;
  for (const c of [...cuts, body.length]) {
    p.push(body.subarray(at, c));
    at = c;
  }
  p.end();
  return got;
}

describe('multipart/related parser', () => {
  // Bodies made to be hard: CR LF and "--" inside the data, a near-boundary that differs in its last byte.
  const B = 'abc123';
  const tricky = [
    enc('\r\n--abc12X\r\n--abc12'),
    new Uint8Array(0),
    enc('--abc123 not at a line start'),
    Uint8Array.from({ length: 300 }, (_, i) => (i * 37) & 255),
  ];

  it('splits every part right at every one- and two-cut position, with and without Content-Length', () => {
    for (const withLength of [true, false]) {
      const pieces = encodeMultipart(tricky, 'application/dicom', B);
      let body = concat(pieces);
      // Without the length headers the parser must find every boundary by searching.
      if (!withLength)
        body = Uint8Array.from(latin1(body).replace(/Content-Length: \d+\r\n/g, ''), (c) => c.charCodeAt(0));
      for (let c = 0; c <= body.length; c++) {
        const got = parseIn(body, B, [c]);
        expect(got.map((g) => Array.from(g.body))).toEqual(tricky.map((t) => Array.from(t)));
      }
      for (let c = 0; c + 7 <= body.length; c += 5) {
        const got = parseIn(body, B, [c, c + 1, c + 7]);
        expect(got.length).toBe(tricky.length);
        expect(got[0].headers['content-type']).toBe('application/dicom');
      }
    }
  });

  it('property: any parts, any boundary, any chunking give the parts back', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 6 }),
        fc.array(fc.integer({ min: 0, max: 2000 }), { maxLength: 12 }),
        fc.boolean(),
        (parts, rawCuts, preamble) => {
          const b = chooseBoundary(parts);
          let body = concat(encodeMultipart(parts, 'application/dicom', b));
          if (preamble) body = concat([enc('this is a preamble\r\n'), body, enc('epilogue')]);
          const cuts = [...new Set(rawCuts.map((c) => c % (body.length + 1)))].sort((x, y) => x - y);
          const got = parseIn(body, b, cuts);
          expect(got.map((g) => Array.from(g.body))).toEqual(parts.map((p) => Array.from(p)));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses a truncated body, a bad Content-Length and an oversize part with typed errors', () => {
    const body = concat(encodeMultipart([enc('hello world')], 'application/dicom', B));
    const p = new MultipartParser(B, () => undefined, { source: 'http://x/y' });
    p.push(body.subarray(0, body.length - 10));
    expect(() => p.end()).toThrow(FormatError);
    expect(() => p.end()).toThrow(/http:\/\/x\/y.*ended before its closing boundary/);
    const lying = enc(`--${B}\r\nContent-Length: 3\r\n\r\nhello\r\n--${B}--\r\n`);
    expect(() => parseIn(lying, B, [])).toThrow(/Content-Length \(3\) is not followed by the boundary/);
    const big = new MultipartParser(B, () => undefined, { maxPartBytes: 4 });
    expect(() => big.push(body)).toThrow(LimitError);
  });

  it('reads the boundary parameter, quoted or not', () => {
    expect(multipartBoundary('multipart/related; type="application/dicom"; boundary=abc-1')).toBe('abc-1');
    expect(multipartBoundary('multipart/related;boundary="a b:c";type=application/dicom')).toBe('a b:c');
    expect(multipartBoundary('application/dicom')).toBeUndefined();
    expect(() => new MultipartParser('bad\r\nboundary', () => undefined)).toThrow(FormatError);
  });
});
