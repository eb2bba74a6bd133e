import { describe, expect, it } from 'vitest';
import { mat4FromRows, mat4TransformPoint } from '../math/mat4.js';
import { GeometryError, LimitError } from '../errors.js';
import { createVolume, allocateVoxels, indexToPatientFrom } from './volume.js';
import { sampleNearest, sampleTrilinear } from './sample.js';
import { crop, resample, resampleToSpacing } from './resample.js';

// Oblique, anisotropic, flipped k, origin far from zero.
function obliqueVolume() {
  const c = Math.cos(0.4),
    s = Math.sin(0.4);
  const m = indexToPatientFrom(
    [-300.25, 410.5, 1020],
    [0.8, 1.1, 2.5],
    [
      [c, s, 0],
      [-s, c, 0],
      [0, 0, -1],
    ],
  );
  const dims = [7, 6, 5] as const;
  const data = new Float32Array(7 * 6 * 5);
  // A linear function of patient position: trilinear interpolation must reproduce it exactly.
  const f = (p: number[]) => 2 * p[0] - 3 * p[1] + 0.5 * p[2];
  for (let k = 0; k < 5; k++)
    for (let j = 0; j < 6; j++)
      for (let i = 0; i < 7; i++)
        data[i + 7 * (j + 6 * k)] = f(mat4TransformPoint([0, 0, 0], m, [i, j, k]) as number[]);
  return { vol: createVolume({ data, dims, indexToPatient: m }), f, m };
}

describe('Volume', () => {
  it('derives spacing from indexToPatient and keeps the inverse consistent', () => {
    const { vol } = obliqueVolume();
    expect(vol.spacing[0]).toBeCloseTo(0.8, 12);
    expect(vol.spacing[1]).toBeCloseTo(1.1, 12);
    expect(vol.spacing[2]).toBeCloseTo(2.5, 12);
    const p = mat4TransformPoint([0, 0, 0], vol.indexToPatient, [3.25, 1.5, 2.75]);
    const back = mat4TransformPoint([0, 0, 0], vol.patientToIndex, p);
    expect(back[0]).toBeCloseTo(3.25, 10);
    expect(back[1]).toBeCloseTo(1.5, 10);
    expect(back[2]).toBeCloseTo(2.75, 10);
  });
  it('refuses wrong sizes, singular and non-affine geometry, huge allocations', () => {
    expect(() =>
      createVolume({
        data: new Uint8Array(5),
        dims: [2, 2, 2],
        indexToPatient: indexToPatientFrom([0, 0, 0], [1, 1, 1]),
      }),
    ).toThrow(GeometryError);
    expect(() =>
      createVolume({
        data: new Uint8Array(8),
        dims: [2, 2, 2],
        indexToPatient: indexToPatientFrom([0, 0, 0], [1, 0, 1]),
      }),
    ).toThrow(/singular/);
    expect(() => allocateVoxels('int16', 1e15)).toThrow(LimitError);
  });
  it('samples trilinearly: exact for a linear field at any oblique point; nearest at voxel centres', () => {
    const { vol, f, m } = obliqueVolume();
    const p = mat4TransformPoint([0, 0, 0], m, [2.3, 4.7, 1.1]) as number[];
    expect(sampleTrilinear(vol, p, NaN)).toBeCloseTo(f(p), 3);
    const q = mat4TransformPoint([0, 0, 0], m, [6, 5, 4]) as number[]; // far corner voxel centre
    expect(sampleTrilinear(vol, q, NaN)).toBeCloseTo(f(q), 3);
    expect(sampleNearest(vol, q, NaN)).toBeCloseTo(f(q), 3);
    const outside = mat4TransformPoint([0, 0, 0], m, [6.2, 5, 4]) as number[];
    expect(sampleTrilinear(vol, outside, -1)).toBe(-1);
    expect(sampleNearest(vol, outside, -1)).toBeCloseTo(f(q), 3); // within half a voxel
  });
  it('resamples onto an axis-aligned grid and to another spacing, exactly for a linear field', () => {
    const { vol, f } = obliqueVolume();
    const target = {
      dims: [4, 4, 3] as const,
      indexToPatient: mat4FromRows([
        [0.5, 0, 0, -299],
        [0, 0.5, 0, 410],
        [0, 0, 0.5, 1015],
        [0, 0, 0, 1],
      ]),
    };
    const r = resample(vol, target, { outside: NaN });
    for (let n = 0; n < r.data.length; n++) {
      const i = n % 4,
        j = Math.floor(n / 4) % 4,
        k = Math.floor(n / 16);
      const p = mat4TransformPoint([0, 0, 0], target.indexToPatient, [i, j, k]) as number[];
      if (!Number.isNaN(r.data[n])) expect(r.data[n]).toBeCloseTo(f(p), 3);
    }
    const r2 = resampleToSpacing(vol, [0.4, 0.55, 1.25]);
    expect(r2.dims).toEqual([13, 11, 9]);
    expect(r2.data[0]).toBeCloseTo(vol.data[0], 4);
  });
  it('crops and keeps every voxel at its patient position', () => {
    const { vol, m } = obliqueVolume();
    const c = crop(vol, [1, 2, 3], [4, 5, 4]);
    expect(c.dims).toEqual([4, 4, 2]);
    const p = mat4TransformPoint([0, 0, 0], m, [2, 3, 4]) as number[];
    expect(sampleNearest(c, p, NaN)).toBe(vol.data[2 + 7 * (3 + 6 * 4)]);
    expect(() => crop(vol, [0, 0, 0], [7, 1, 1])).toThrow(GeometryError);
  });
});

describe('Volume geometry cannot change without its inverse (issue 13)', () => {
  const make = () => {
    const m = indexToPatientFrom(
      [-312.4, 187.9, 1043.2],
      [0.7, 1.3, 2.1],
      [
        [0, 1, 0],
        [1, 0, 0],
        [0, 0, -1],
      ],
    );
    return { m, vol: createVolume({ data: new Int16Array(24), dims: [2, 3, 4], indexToPatient: m }) };
  };

  it("createVolume copies indexToPatient: changing the caller's array afterwards changes nothing", () => {
    const { m, vol } = make();
    m[3] = 0; // the caller's array, not the volume's
    expect(vol.indexToPatient).not.toBe(m);
    expect(vol.indexToPatient[3]).toBe(-312.4);
    // And the inverse still maps the origin to index 0 (patientToIndex * origin: x = 0 within 1e-12).
    const inv = vol.patientToIndex;
    const i0 = inv[0] * -312.4 + inv[1] * 187.9 + inv[2] * 1043.2 + inv[3];
    expect(Math.abs(i0)).toBeLessThan(1e-12);
  });

  it('the volume, its dims and spacing are frozen; reassigning indexToPatient throws; voxels stay writable', () => {
    const { vol } = make();
    expect(Object.isFrozen(vol)).toBe(true);
    expect(Object.isFrozen(vol.dims)).toBe(true);
    expect(Object.isFrozen(vol.spacing)).toBe(true);
    const other = indexToPatientFrom([0, 0, 0], [1, 1, 1]);
    // ES modules are strict: assigning to a frozen object's property throws TypeError.
    expect(() => {
      // @ts-expect-error indexToPatient is readonly
      vol.indexToPatient = other;
    }).toThrow(TypeError);
    expect(() => {
      // @ts-expect-error patientToIndex is readonly
      vol.patientToIndex = other;
    }).toThrow(TypeError);
    expect(vol.indexToPatient[3]).toBe(-312.4);
    expect(() => {
      (vol.dims as unknown as number[])[0] = 9;
    }).toThrow(TypeError);
    vol.data[5] = 123; // data is deliberately not frozen: filters write their outputs in place
    expect(vol.data[5]).toBe(123);
  });

  it('the matrix type forbids writing elements (checked by tsc: each line below must stay an error)', () => {
    const { vol } = make();
    // Never called: at run time a Float64Array would accept these; the guarantee is the type's.
    const typeOnly = () => {
      /* eslint-disable @typescript-eslint/no-unsafe-call -- each call below is a type error on purpose */
      // @ts-expect-error elements of a ReadonlyMat4 are read-only
      vol.indexToPatient[3] = 0;
      // @ts-expect-error no fill on a ReadonlyMat4
      vol.patientToIndex.fill(0);
      // @ts-expect-error no set on a ReadonlyMat4
      vol.indexToPatient.set([1, 2, 3]);
      // @ts-expect-error no copyWithin, sort, reverse either
      vol.indexToPatient.reverse();
      /* eslint-enable @typescript-eslint/no-unsafe-call */
    };
    expect(typeof typeOnly).toBe('function');
    // Reading works as on a Float64Array, at the same cost (it is one at run time).
    expect(vol.indexToPatient).toBeInstanceOf(Float64Array);
    expect(Array.from(vol.indexToPatient.slice(0, 4))).toEqual([0, 1.3, 0, -312.4]);
  });
});
