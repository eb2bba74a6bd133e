/**
 * The two-samples-per-word loops against the plain definition, computed here one sample at a time, over
 * lengths, offsets and byte alignments that exercise the peeled first sample and the odd last one.
 */
import { describe, expect, it } from 'vitest';
import { uniformSource } from '../../math/random.js';
import { addToInt16, uint16Within } from './lanes.js';

/** A view of `n` 16-bit samples starting `shiftBytes` (0 or 2) into its buffer. */
function view(Ctor: typeof Int16Array | typeof Uint16Array, n: number, shiftBytes: number): Int16Array | Uint16Array {
  return new Ctor(new ArrayBuffer(2 * n + 8), shiftBytes, n);
}

describe('addToInt16', () => {
  const rand = uniformSource(12345);
  const lengths = [0, 1, 2, 7, 8, 9, 16, 17, 1001];
  const adds = [0, -1024, 1024, -32768, 32767, -1];

  for (const Source of [Int16Array, Uint16Array]) {
    it(`${Source.name} sources: every sum as Int16, any offset and alignment`, () => {
      let cases = 0;
      for (const n of lengths) {
        for (const srcShift of [0, 2]) {
          for (const outShift of [0, 2]) {
            for (const offset of [0, 1, 2, 5]) {
              const add = adds[cases % adds.length];
              const data = view(Source, n, srcShift);
              // Values chosen so every true sum fits Int16, as the reader guarantees.
              for (let i = 0; i < n; i++) {
                const lo = Math.max(-32768 - add, Source === Int16Array ? -32768 : 0);
                const hi = Math.min(32767 - add, Source === Int16Array ? 32767 : 65535);
                data[i] = lo + Math.floor(rand() * (hi - lo + 1));
              }
              const out = new Int16Array(new ArrayBuffer(2 * (offset + n + 3) + 8), outShift, offset + n + 3);
              out.fill(7);
              addToInt16(out, offset, data, add);
              for (let i = 0; i < offset; i++) expect(out[i]).toBe(7);
              for (let i = 0; i < n; i++) {
                if (out[offset + i] !== data[i] + add)
                  expect(
                    `n ${n} shifts ${srcShift}/${outShift} offset ${offset} add ${add}: [${i}] = ${out[offset + i]}`,
                  ).toBe(`${data[i] + add}`);
              }
              for (let i = offset + n; i < out.length; i++) expect(out[i]).toBe(7);
              cases++;
            }
          }
        }
      }
      expect(cases).toBe(lengths.length * 16);
    });
  }

  it('refuses to write past the end', () => {
    expect(() => addToInt16(new Int16Array(10), 5, new Int16Array(6), 1)).toThrow(RangeError);
  });
});

describe('uint16Within', () => {
  it('finds one value above the mask wherever it is, for any length and alignment', () => {
    for (const bits of [8, 12, 15]) {
      const mask = 2 ** bits - 1;
      for (const n of [1, 2, 7, 8, 9, 33, 1000]) {
        for (const shift of [0, 2]) {
          const data = new Uint16Array(new ArrayBuffer(2 * n + 8), shift, n);
          for (let i = 0; i < n; i++) data[i] = (i * 2654435761) % (mask + 1);
          expect(uint16Within(data, mask)).toBe(true);
          for (const at of new Set([0, 1, n >> 1, n - 2, n - 1].filter((p) => p >= 0 && p < n))) {
            const keep = data[at];
            data[at] = mask + 1 + (at % 3);
            expect(uint16Within(data, mask), `bits ${bits} n ${n} shift ${shift} at ${at}`).toBe(false);
            data[at] = keep;
          }
        }
      }
    }
  });
});
