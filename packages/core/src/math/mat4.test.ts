import { describe, expect, it } from 'vitest';
import { mat4FromRows, mat4Invert, mat4Multiply, mat4TransformPoint, mat4Identity, mat4Det3 } from './mat4.js';

// An oblique, anisotropic, flipped affine far from the origin: hard to get right by accident.
const oblique = () => {
  const c = Math.cos(0.3), s = Math.sin(0.3);
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
    const inv = mat4Invert(new Float64Array(16), a)!;
    const prod = mat4Multiply(new Float64Array(16), a, inv);
    const id = mat4Identity(new Float64Array(16));
    for (let i = 0; i < 16; i++) expect(prod[i]).toBeCloseTo(id[i], 12);
    const b = oblique();
    mat4Invert(b, b);
    for (let i = 0; i < 16; i++) expect(b[i]).toBeCloseTo(inv[i], 12);
  });
  it('multiply stays correct when out aliases an input', () => {
    const a = oblique(), b = mat4Invert(new Float64Array(16), oblique())!;
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
