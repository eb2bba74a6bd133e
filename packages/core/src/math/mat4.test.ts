import { describe, expect, it } from 'vitest';
import { defined } from '../test-helpers/defined.js';
import {
  mat4Copy,
  mat4Det3,
  mat4FromRows,
  mat4Identity,
  mat4Invert,
  mat4MaxAbsDiff,
  mat4Multiply,
  mat4TransformDirection,
  mat4TransformPoint,
  type ReadonlyMat4,
} from './mat4.js';

// An oblique, anisotropic, flipped affine far from the origin: hard to get right by accident.
const oblique = () => {
  const c = Math.cos(0.3),
    s = Math.sin(0.3);
  return mat4FromRows([
    [0.7 * c, -1.3 * s, 0, -250.5],
    [0.7 * s, 1.3 * c, 0, 1200.25],
    [0, 0, -2.5, 880],
    [0, 0, 0, 1],
  ]);
};

describe('mat4', () => {
  it('multiplies row-major: (A*B) applies B first', () => {
    const t = mat4FromRows([1, 0, 0, 10, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
    const sc = mat4FromRows([2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1]);
    const p = mat4TransformPoint([0, 0, 0], mat4Multiply(new Float64Array(16), t, sc), [1, 1, 1]);
    expect(p).toEqual([12, 2, 2]); // scale then translate
  });
  it('inverts, also in place (out aliases input)', () => {
    const a = oblique();
    const inv = defined(mat4Invert(new Float64Array(16), a), 'the inverse');
    const prod = mat4Multiply(new Float64Array(16), a, inv);
    const id = mat4Identity(new Float64Array(16));
    for (let i = 0; i < 16; i++) expect(prod[i]).toBeCloseTo(id[i], 12);
    const b = oblique();
    mat4Invert(b, b);
    for (let i = 0; i < 16; i++) expect(b[i]).toBeCloseTo(inv[i], 12);
  });
  it('multiply stays correct when out aliases an input', () => {
    const a = oblique(),
      b = defined(mat4Invert(new Float64Array(16), oblique()), 'the inverse');
    const expected = mat4Multiply(new Float64Array(16), a, b);
    mat4Multiply(a, a, b);
    for (let i = 0; i < 16; i++) expect(a[i]).toBeCloseTo(expected[i], 12);
  });
  it('returns null for a singular matrix', () => {
    expect(mat4Invert(new Float64Array(16), mat4FromRows([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]))).toBeNull();
  });
  it('det3 gives handedness: flipping one axis is left-handed', () => {
    expect(mat4Det3(oblique())).toBeCloseTo(-0.7 * 1.3 * 2.5, 12);
  });
});

/**
 * Aliasing: every output-first function is run once with a separate output and once with `out` being
 * each of its inputs in turn; the two answers must be identical to the last bit (same arithmetic, same
 * order), so the expected number for every element is the separate-output answer itself.
 */
describe('mat4: output aliasing an input gives the same answer, bit for bit', () => {
  // A second matrix, not the inverse of the first, so a * b is not the identity and every element counts.
  const other = () => {
    const c = Math.cos(-1.1),
      s = Math.sin(-1.1);
    return mat4FromRows([
      [1.5, 0, 0, 33.3],
      [0, 0.9 * c, -0.9 * s, -71.25],
      [0, 0.9 * s, 0.9 * c, 402.5],
      [0, 0, 0, 1],
    ]);
  };
  const bits = (m: ArrayLike<number>) => Array.from(m);

  it('mat4Multiply with out === a, out === b and out === a === b', () => {
    const want = mat4Multiply(new Float64Array(16), oblique(), other());
    const a = oblique();
    expect(mat4Multiply(a, a, other())).toBe(a); // returns out
    expect(bits(a)).toEqual(bits(want));
    const b = other();
    mat4Multiply(b, oblique(), b);
    expect(bits(b)).toEqual(bits(want));
    const sq = mat4Multiply(new Float64Array(16), oblique(), oblique());
    const c = oblique();
    mat4Multiply(c, c, c);
    expect(bits(c)).toEqual(bits(sq));
    // The same data must differ from the plain product if the function wrote before reading: a sanity
    // check that this test can fail. A naive multiply that writes out[r*4+c] as it goes gives another answer.
    const naive = (out: Float64Array, x: Float64Array, y: Float64Array) => {
      for (let r = 0; r < 4; r++) {
        for (let col = 0; col < 4; col++) {
          let v = 0;
          for (let k = 0; k < 4; k++) v += x[r * 4 + k] * y[k * 4 + col];
          out[r * 4 + col] = v;
        }
      }
      return out;
    };
    const d = oblique();
    naive(d, d, other());
    expect(bits(d)).not.toEqual(bits(want));
  });

  it('mat4Invert with out === a', () => {
    const want = defined(mat4Invert(new Float64Array(16), oblique()), 'the inverse');
    const a = oblique();
    expect(mat4Invert(a, a)).toBe(a);
    expect(bits(a)).toEqual(bits(want));
    // Singular input in place: null, and out (= a) untouched.
    const s = mat4FromRows([1, 2, 3, 4, 2, 4, 6, 8, 0, 0, 1, 0, 0, 0, 0, 1]);
    const before = bits(s);
    expect(mat4Invert(s, s)).toBeNull();
    expect(bits(s)).toEqual(before);
  });

  it('mat4Copy with out === a leaves a as it was', () => {
    const a = oblique();
    expect(bits(mat4Copy(a, a))).toEqual(bits(oblique()));
    expect(bits(mat4Copy(new Float64Array(16), a))).toEqual(bits(oblique()));
  });

  it('mat4TransformPoint and mat4TransformDirection with out === the point', () => {
    const m = oblique();
    const p0 = [12.5, -7.25, 3.125];
    const wantP = mat4TransformPoint([0, 0, 0], m, p0);
    const wantD = mat4TransformDirection([0, 0, 0], m, p0);
    // Independent check of the separate-output answers: row r of m dotted with (p, 1) or (p, 0).
    for (let r = 0; r < 3; r++) {
      const lin = m[r * 4] * p0[0] + m[r * 4 + 1] * p0[1] + m[r * 4 + 2] * p0[2];
      expect(wantP[r]).toBe(lin + m[r * 4 + 3]);
      expect(wantD[r]).toBe(lin);
    }
    for (const make of [() => [...p0], () => Float64Array.from(p0)]) {
      const p = make();
      expect(mat4TransformPoint(p, m, p)).toBe(p);
      expect(bits(p)).toEqual(bits(wantP));
      const v = make();
      mat4TransformDirection(v, m, v);
      expect(bits(v)).toEqual(bits(wantD));
    }
  });

  it('mat4Identity overwrites every element (it has no input to alias)', () => {
    const a = oblique();
    expect(bits(mat4Identity(a))).toEqual([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
  });

  it('accepts ReadonlyMat4 inputs; a ReadonlyMat4 cannot be an output (compile-time check)', () => {
    const ro: ReadonlyMat4 = oblique();
    const out = mat4Multiply(new Float64Array(16), ro, ro);
    expect(mat4MaxAbsDiff(out, mat4Multiply(new Float64Array(16), oblique(), oblique()))).toBe(0);
    // Never called: tsc (npx tsc -p tsconfig.json) fails if any line below stops being a type error.
    const typeOnly = () => {
      /* eslint-disable @typescript-eslint/no-unsafe-call -- each call below is a type error on purpose */
      // @ts-expect-error a ReadonlyMat4 is not a writable Mat4
      mat4Invert(ro, ro);
      // @ts-expect-error elements are read-only
      ro[0] = 1;
      // @ts-expect-error no fill
      ro.fill(0);
      // @ts-expect-error no set
      ro.set([1]);
      // @ts-expect-error no subarray (it would hand out a writable view)
      ro.subarray(0, 4);
      /* eslint-enable @typescript-eslint/no-unsafe-call */
    };
    expect(typeof typeOnly).toBe('function');
  });
});
