/**
 * Transform files. Known answers are worked out by hand in the comments: a .tfm stores ITK's
 * fixed -> moving map in LPS mm, y = A (x - c) + c + t, so a file's point map is checked against that
 * formula evaluated here, and movingToFixed must be its inverse.
 */
import { describe, expect, it } from 'vitest';
import { FormatError } from '../errors.js';
import { mat4TransformPoint } from '../math/mat4.js';
import { rigidMotion } from '../test-helpers/motion.js';
import { parseTfm, parseTransformFile, parseTransformJson, transformToJson, transformToTfm } from './transform-io.js';

const apply = (m: ArrayLike<number>, p: number[]) => Array.from(mat4TransformPoint([0, 0, 0], m as Float64Array, p));

describe('ITK .tfm', () => {
  it('reads a translation as fixed -> moving: fixed (0,0,0) lies at moving (10,-5,20)', () => {
    const t = parseTfm(
      '#Insight Transform File V1.0\n#Transform 0\nTransform: TranslationTransform_double_3_3\nParameters: 10 -5 20\nFixedParameters:\n',
    );
    expect(apply(t.fixedToMoving, [0, 0, 0])).toEqual([10, -5, 20]);
    // and movingToFixed carries the moving point back
    const back = apply(t.movingToFixed, [10, -5, 20]);
    back.forEach((v) => expect(Math.abs(v)).toBeLessThan(1e-12));
  });

  it('reads an affine with a centre: y = A (x - c) + c + t', () => {
    // A = rotation of 90 degrees about z ((1,0,0) -> (0,1,0)), c = (10, 0, 0), t = (1, 2, 3).
    // x = (11, 0, 0): x - c = (1,0,0) -> A: (0,1,0) -> + c + t = (11, 3, 3).
    const t = parseTfm(
      '#Insight Transform File V1.0\n#Transform 0\nTransform: AffineTransform_double_3_3\n' +
        'Parameters: 0 -1 0 1 0 0 0 0 1 1 2 3\nFixedParameters: 10 0 0\n',
    );
    apply(t.fixedToMoving, [11, 0, 0]).forEach((v, i) => expect(v).toBeCloseTo([11, 3, 3][i], 12));
  });

  it("reads Euler3DTransform with ITK's R = Rz Rx Ry (and Rz Ry Rx when ComputeZYX is 1)", () => {
    // angleX = 90, angleY = 90 degrees, no translation, centre 0. Point (0, 0, 1):
    // Rz Rx Ry: Ry(90) (0,0,1) = (1,0,0); Rx(90) (1,0,0) = (1,0,0); result (1, 0, 0).
    // Rz Ry Rx: Rx(90) (0,0,1) = (0,-1,0); Ry(90) (0,-1,0) = (0,-1,0); result (0, -1, 0).
    const h = Math.PI / 2;
    const text = (fixed: string) =>
      `#Insight Transform File V1.0\n#Transform 0\nTransform: Euler3DTransform_double_3_3\nParameters: ${h} ${h} 0 0 0 0\nFixedParameters: ${fixed}\n`;
    apply(parseTfm(text('0 0 0')).fixedToMoving, [0, 0, 1]).forEach((v, i) => expect(v).toBeCloseTo([1, 0, 0][i], 12));
    apply(parseTfm(text('0 0 0 1')).fixedToMoving, [0, 0, 1]).forEach((v, i) =>
      expect(v).toBeCloseTo([0, -1, 0][i], 12),
    );
  });

  it('reads a VersorRigid3DTransform: versor (0, 0, sin 45) is 90 degrees about z', () => {
    const s = Math.SQRT1_2;
    const t = parseTfm(
      `#Insight Transform File V1.0\n#Transform 0\nTransform: VersorRigid3DTransform_double_3_3\nParameters: 0 0 ${s} 5 0 0\nFixedParameters: 0 0 0\n`,
    );
    // (1, 0, 0) -> (0, 1, 0) + (5, 0, 0)
    apply(t.fixedToMoving, [1, 0, 0]).forEach((v, i) => expect(v).toBeCloseTo([5, 1, 0][i], 12));
  });

  it('accepts a composite of one transform, refuses two, and refuses other files', () => {
    const one =
      '#Insight Transform File V1.0\n#Transform 0\nTransform: CompositeTransform_double_3_3\n#Transform 1\n' +
      'Transform: TranslationTransform_double_3_3\nParameters: 1 2 3\nFixedParameters:\n';
    expect(apply(parseTfm(one).fixedToMoving, [0, 0, 0])).toEqual([1, 2, 3]);
    const two = one + '#Transform 2\nTransform: TranslationTransform_double_3_3\nParameters: 1 2 3\nFixedParameters:\n';
    expect(() => parseTfm(two)).toThrow(FormatError);
    expect(() => parseTfm('hello')).toThrow(FormatError);
    expect(() =>
      parseTfm('#Insight Transform File V1.0\nTransform: BSplineTransform_double_3_3\nParameters: 1\n'),
    ).toThrow(/not supported/);
  });

  it('writes fixedToMoving, and reads back the same movingToFixed to round-off', () => {
    const m2f = rigidMotion([0.2, -0.4, 0.9], 8, [12, -7, 9], [-30, 120, 900]);
    const text = transformToTfm(m2f);
    expect(text).toMatch(/^#Insight Transform File V1\.0\n#Transform 0\nTransform: AffineTransform_double_3_3\n/);
    const back = parseTransformFile(text, 'x.tfm');
    for (let i = 0; i < 16; i++) expect(back.movingToFixed[i]).toBeCloseTo(m2f[i], 12);
    // The written parameters are fixedToMoving: a moving point p, carried to the fixed frame by m2f,
    // is mapped back to p by the file's own affine.
    const p = [4, -60, 950];
    apply(back.fixedToMoving, apply(m2f, p)).forEach((v, i) => expect(v).toBeCloseTo(p[i], 9));
  });
});

describe('transform JSON', () => {
  it('round-trips movingToFixed and accepts a registration result or fixedToMoving alone', () => {
    const m2f = rigidMotion([1, 0, 0], -5, [0, 3, -2], [0, 0, 0]);
    const r = parseTransformJson(transformToJson(m2f, { fixed: { file: 'a.nii.gz' } }));
    for (let i = 0; i < 16; i++) expect(r.movingToFixed[i]).toBeCloseTo(m2f[i], 14);
    const rows = [
      [1, 0, 0, 5],
      [0, 1, 0, 0],
      [0, 0, 1, 0],
      [0, 0, 0, 1],
    ];
    expect(apply(parseTransformJson(JSON.stringify({ fixedToMoving: rows })).movingToFixed, [5, 0, 0])).toEqual([
      0, 0, 0,
    ]);
    expect(() => parseTransformJson('{"movingToFixed": [[1,0,0]]}')).toThrow(FormatError);
    expect(() => parseTransformJson('{')).toThrow(FormatError);
    expect(() => parseTransformJson(JSON.stringify({ schemaVersion: 2, movingToFixed: rows }))).toThrow(
      /schemaVersion/,
    );
  });
});
