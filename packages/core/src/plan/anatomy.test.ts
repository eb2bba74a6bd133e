/** Telling the phantom's labels from TotalSegmentator's, and the sacral region crop, on small made-up grids. */
import { describe, expect, it } from 'vitest';
import { UsageError } from '../errors.js';
import { createVolume, indexToPatientFrom, type Volume } from '../volume/volume.js';
import { detectLabelAnatomy, phantomAnatomy, sacralRegion } from './anatomy.js';

function grid(
  values: number[],
  dims: [number, number, number] = [values.length, 1, 1],
  spacing: [number, number, number] = [1, 1, 1],
): Volume {
  const n = dims[0] * dims[1] * dims[2];
  const data = new Uint8Array(n);
  data.set(values.slice(0, n));
  return createVolume({
    data,
    dims,
    indexToPatient: indexToPatientFrom([0, 0, 0], spacing),
    meta: { source: 'made-up labels' },
  });
}

describe('detectLabelAnatomy', () => {
  it('TotalSegmentator when both hips (77, 78) are present, whatever else is', () => {
    expect(detectLabelAnatomy(grid([0, 25, 26, 77, 78, 79, 10, 11, 14, 15, 20]))).toBe('totalsegmentator');
  });
  it('the phantom for its sacrum, ilia and canal labels, none above 32', () => {
    expect(detectLabelAnatomy(grid([0, 1, 2, 3, 4, 10, 11, 14, 15, 20, 21, 25, 26]))).toBe('phantom');
  });
  it('neither: a UsageError naming the labels file', () => {
    expect(() => detectLabelAnatomy(grid([0, 1, 2, 25, 26]))).toThrow(UsageError);
    expect(() => detectLabelAnatomy(grid([0, 1, 2, 25, 26]))).toThrow(/made-up labels/);
    // Phantom-like but with a label the phantom never writes.
    expect(() => detectLabelAnatomy(grid([10, 11, 14, 15, 20, 90]))).toThrow(UsageError);
  });
});

describe('phantomAnatomy', () => {
  it('takes label ids from truth.json and rejects malformed lists', () => {
    const a = phantomAnatomy({
      boneGroups: { sacrum: [1, 2], iliumLeft: [3], iliumRight: [4] },
      criticalLabelIds: { canal: [5], foramina: [6, 7] },
    });
    expect(a.boneGroups).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(a.critical).toEqual([
      { name: 'spinal canal', labels: [5] },
      { name: 'sacral foramen', labels: [6, 7] },
    ]);
    expect(a.seeds).toEqual({ foramina: [6, 7], canal: [5] });
    expect(() =>
      phantomAnatomy(
        {
          boneGroups: { sacrum: [], iliumLeft: [3], iliumRight: [4] },
          criticalLabelIds: { canal: [5], foramina: [6] },
        },
        'x/truth.json',
      ),
    ).toThrow(/boneGroups.sacrum.*x\/truth.json|x\/truth.json/);
  });
});

describe('sacralRegion', () => {
  it("is the sacrum's box grown by the margin, and by the lateral reach more along x (2 mm voxels)", () => {
    const dims: [number, number, number] = [100, 60, 50];
    const v = grid([], dims, [2, 2, 2]);
    const d = v.data as Uint8Array;
    // Sacrum voxels i 40-59, j 20-29, k 10-19; something else (label 9) everywhere at i = 0.
    for (let k = 10; k < 20; k++)
      for (let j = 20; j < 30; j++) for (let i = 40; i < 60; i++) d[i + 100 * (j + 60 * k)] = 7;
    for (let k = 0; k < 50; k++) for (let j = 0; j < 60; j++) d[100 * (j + 60 * k)] = 9;
    const r = sacralRegion(v, [7], { lateralMm: 30, marginMm: 10 });
    // x: 40 - (10 + 30) / 2 = 20 .. 59 + 20 = 79; y: 20 - 5 .. 29 + 5; z: 10 - 5 .. 19 + 5.
    expect(r.dims).toEqual([60, 20, 20]);
    expect(r.indexToPatient[3]).toBeCloseTo(20 * 2, 9);
    expect(r.indexToPatient[7]).toBeCloseTo(15 * 2, 9);
    expect(r.indexToPatient[11]).toBeCloseTo(5 * 2, 9);
    expect(() => sacralRegion(v, [8])).toThrow(/no sacrum label/);
  });
});
