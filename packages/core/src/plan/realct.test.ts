/**
 * Planning on the real CT's segmentation (../shared/data/abdomen-pelvis-ct/labels.nii.gz, 3 mm):
 * sacrum 25, S1 26, hips 77/78, spinal cord/canal 79.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { defined } from '../test-helpers/defined.js';
import { createVolume, type Volume } from '../volume/volume.js';
import { sampleNearest } from '../volume/sample.js';
import { corridorMapFromLabels } from './corridor-map.js';
import { analyzePath } from './analyze.js';
import { planAlar, planTransSacral } from './auto.js';
import { sacralSeedsFromLabels } from './seeds.js';
import { sacralRegion, totalSegmentatorAnatomy } from './anatomy.js';
import type { Point3 } from '../math/vec3.js';

/** <repo>/../shared/data, found by walking up to the folder holding packages/ and package.json. */
function sharedData(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let n = 0; n < 8; n++) {
    if (existsSync(path.join(dir, 'packages')) && existsSync(path.join(dir, 'package.json')))
      return path.join(dir, '..', 'shared', 'data');
    dir = path.dirname(dir);
  }
  return path.resolve('..', 'shared', 'data');
}

/**
 * A minimal NIfTI-1 reader for this test only (uint8 labels, sform, RAS -> LPS), independent of the
 * project's reader: it checks the planning, not the I/O.
 */
function readLabels(file: string): Volume {
  const b = gunzipSync(new Uint8Array(readFileSync(file)));
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const dims: [number, number, number] = [dv.getInt16(42, true), dv.getInt16(44, true), dv.getInt16(46, true)];
  expect(dv.getInt16(70, true)).toBe(2); // uint8
  const off = dv.getFloat32(108, true);
  const n = dims[0] * dims[1] * dims[2];
  const data = b.slice(off, off + n);
  const m = new Float64Array(16);
  for (let r = 0; r < 3; r++)
    for (let c = 0; c < 4; c++) m[r * 4 + c] = dv.getFloat32(280 + (r * 4 + c) * 4, true) * (r < 2 ? -1 : 1);
  m[15] = 1;
  return createVolume({ data, dims, indexToPatient: m, meta: { source: file } });
}

const file = path.join(sharedData(), 'abdomen-pelvis-ct', 'labels.nii.gz');

describe.skipIf(!existsSync(file))('real CT labels (3 mm)', () => {
  const labels = readLabels(file);
  const map = corridorMapFromLabels(labels, {
    boneGroups: [[25, 26], [77], [78]],
    critical: [{ name: 'spinal canal', labels: [79] }],
  });
  const seeds = sacralSeedsFromLabels(labels, [25], [26]);
  const screw = { kind: 'screw' as const, diameterMm: 7.3 };

  /** Labels every 0.5 mm between two points (nearest voxel), read straight from the segmentation. */
  function labelsAlong(a: Point3, b: Point3): number[] {
    const L = Math.hypot(b[0] - a[0], b[1] - a[1], b[2] - a[2]);
    const out: number[] = [];
    for (let t = 0; t <= L; t += 0.5)
      out.push(
        sampleNearest(
          labels,
          [0, 1, 2].map((i) => a[i] + ((b[i] - a[i]) * t) / L),
          -1,
        ),
      );
    return out;
  }

  for (const level of ['s1', 's2'] as const) {
    it(`${level}: the automatic path runs from hip to hip inside labels 25/26/77/78 and crosses the midline`, () => {
      const r = planTransSacral(map, { id: level, tool: screw, seed: seeds[level], midlineX: seeds.midlineX });
      const a = r.analysis;
      const entry = defined(a.cortexEntry, 'cortex entry');
      const exit = defined(a.cortexExit, 'cortex exit');
      const along = labelsAlong(entry, exit);
      // Inside the bone labels all the way, except joint gaps between two bones (label 0) of at most
      // two voxels (6 mm); never another structure (muscle, vessel, canal).
      let gap = 0,
        maxGap = 0;
      for (const l of along) {
        expect([0, 25, 26, 77, 78]).toContain(l);
        gap = l === 0 ? gap + 0.5 : 0;
        maxGap = Math.max(maxGap, gap);
      }
      expect(maxGap).toBeLessThanOrEqual(6);
      // Ends in the two hips, through the sacrum.
      const first = along.find((l) => l !== 0),
        last = [...along].reverse().find((l) => l !== 0);
      expect(new Set([first, last])).toEqual(new Set([77, 78]));
      expect(along.some((l) => l === 25 || l === 26)).toBe(true);
      // Crosses the midline: the two cortices lie on opposite sides of it, each at least 40 mm away.
      expect((entry[0] - seeds.midlineX) * (exit[0] - seeds.midlineX)).toBeLessThan(0);
      expect(Math.min(Math.abs(entry[0] - seeds.midlineX), Math.abs(exit[0] - seeds.midlineX))).toBeGreaterThan(40);
      expect(a.breaches.filter((b) => b.structure === 'spinal canal')).toEqual([]);
      const orderLength = defined(r.orderLengthMm, 'order length');
      expect(orderLength % 5).toBe(0);
      expect(orderLength).toBeLessThanOrEqual(a.boneToBoneMm);
    });
  }

  it('a path drawn through the spinal canal is reported as a breach', () => {
    // The canal's centre (label 79) at the S1 level, read from the labels; a level line through it.
    const [nx, ny, nz] = labels.dims;
    const m = labels.indexToPatient;
    const c = [0, 0, 0];
    let n = 0;
    for (let k = 0; k < nz; k++)
      for (let j = 0; j < ny; j++)
        for (let i = 0; i < nx; i++) {
          if (labels.data[i + nx * (j + ny * k)] !== 79) continue;
          const p = [0, 1, 2].map((r) => m[r * 4] * i + m[r * 4 + 1] * j + m[r * 4 + 2] * k + m[r * 4 + 3]);
          if (Math.abs(p[2] - seeds.s1[2]) > 6) continue;
          c[0] += p[0];
          c[1] += p[1];
          c[2] += p[2];
          n++;
        }
    expect(n).toBeGreaterThan(0);
    const centre: Point3 = [c[0] / n, c[1] / n, c[2] / n];
    const a = analyzePath(map, {
      id: 'bad',
      name: 'through the canal',
      ...screw,
      entry: [centre[0] - 90, centre[1], centre[2]],
      target: [centre[0] + 90, centre[1], centre[2]],
    });
    expect(a.fits).toBe(false);
    expect(a.breaches.length).toBeGreaterThan(0);
    expect(a.breaches.some((b) => b.structure === 'spinal canal' || b.structure === 'outside bone')).toBe(true);
  });

  it('planning on the sacral region alone (sacralRegion) gives the S1 and S2 paths of the whole segmentation', () => {
    const an = totalSegmentatorAnatomy();
    const region = sacralRegion(labels, an.sacrum);
    expect(region.data.length).toBeLessThan(labels.data.length / 2);
    const rmap = corridorMapFromLabels(region, { boneGroups: an.boneGroups, critical: an.critical });
    const rseeds = sacralSeedsFromLabels(region, an.sacrum, an.seeds);
    expect(rseeds.levelsFrom).toBe('S1 label');
    for (const level of ['s1', 's2'] as const) {
      const whole = planTransSacral(map, { id: level, tool: screw, seed: seeds[level], midlineX: seeds.midlineX });
      const part = planTransSacral(rmap, { id: level, tool: screw, seed: rseeds[level], midlineX: rseeds.midlineX });
      for (let k = 0; k < 3; k++) {
        expect(part.path.entry[k]).toBeCloseTo(whole.path.entry[k], 6);
        expect(part.path.target[k]).toBeCloseTo(whole.path.target[k], 6);
      }
      expect(part.analysis.minClearanceMm ?? NaN).toBeCloseTo(whole.analysis.minClearanceMm ?? NaN, 9);
    }
  });

  for (const side of ['left', 'right'] as const) {
    it(`alar ${side}: an 11-gauge trocar path of >= 30 mm in the sacrum, on its side, with 2 mm clearance`, () => {
      const r = planAlar(map, {
        id: `alar-${side}`,
        side,
        tool: { kind: 'trocar', diameterMm: 3.05 },
        seed: side === 'left' ? seeds.alarLeft : seeds.alarRight,
      });
      const a = r.analysis;
      expect(a.fits).toBe(true);
      expect(a.minClearanceMm ?? NaN).toBeGreaterThanOrEqual(2);
      // From the posterior cortex to the tip: sacrum labels (25/26) only, read straight from the labels.
      const along = labelsAlong(defined(a.cortexEntry, 'cortex entry'), r.path.target);
      expect(along.length * 0.5).toBeGreaterThan(30);
      // The first sample may still lie in the cortex voxel's neighbour (within a voxel of the boundary).
      for (const l of along.slice(6)) expect([25, 26]).toContain(l);
      const sign = side === 'left' ? 1 : -1;
      expect(sign * (r.path.entry[0] - seeds.midlineX)).toBeGreaterThan(15);
      expect(sign * (r.path.target[0] - seeds.midlineX)).toBeGreaterThan(15);
      expect(r.path.entry[1]).toBeGreaterThan(r.path.target[1]); // posterior entry (LPS: +y posterior)
    });
  }
});
