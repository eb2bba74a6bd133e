import { describe, expect, it } from 'vitest';
import { defined } from '../test-helpers/defined.js';
import { createVolume, indexToPatientFrom, type Volume } from '../volume/volume.js';
import { corridorMapFromLabels, type CorridorMap } from './corridor-map.js';
import { analyzePath } from './analyze.js';
import { planTransSacral } from './auto.js';
import type { PlanPath } from './model.js';
import type { Point3 } from '../math/vec3.js';

/** A label volume from a function of the LPS voxel centre; anisotropic, flipped j axis, origin far from 0. */
function labelVolume(
  label: (x: number, y: number, z: number) => number,
  half: Point3,
  spacing: Point3,
  offset: Point3,
): Volume<Uint8Array> {
  const dims = [0, 1, 2].map((a) => Math.round((2 * half[a]) / spacing[a]) + 1) as [number, number, number];
  // j runs toward -y (anterior): a flipped axis, so index and patient frames differ.
  const origin: Point3 = [offset[0] - half[0], offset[1] + half[1], offset[2] - half[2]];
  const m = indexToPatientFrom(origin, spacing, [
    [1, 0, 0],
    [0, -1, 0],
    [0, 0, 1],
  ]);
  const data = new Uint8Array(dims[0] * dims[1] * dims[2]);
  for (let k = 0, o = 0; k < dims[2]; k++) {
    for (let j = 0; j < dims[1]; j++) {
      for (let i = 0; i < dims[0]; i++, o++) {
        data[o] = label(
          origin[0] + i * spacing[0] - offset[0],
          origin[1] - j * spacing[1] - offset[1],
          origin[2] + k * spacing[2] - offset[2],
        );
      }
    }
  }
  return createVolume({ data, dims, indexToPatient: m, meta: { source: 'synthetic' } });
}

/**
 * Independent check of minClearanceMm: sample the axis every 0.05 mm over the corridor part and take,
 * at each sample, the distance to every forbidden voxel centre (of the map's grid) whose projection on
 * the axis lies in that part; minus half a voxel and the tool radius (the documented definition).
 */
function sampledClearance(map: CorridorMap, path: PlanPath, t0: number, t1: number): number {
  const v = map.structures;
  const [nx, ny, nz] = v.dims;
  const e = path.entry,
    L = Math.hypot(path.target[0] - e[0], path.target[1] - e[1], path.target[2] - e[2]);
  const u = [0, 1, 2].map((a) => (path.target[a] - e[a]) / L);
  const m = v.indexToPatient;
  const pts: number[] = [];
  for (let k = 0; k < nz; k++)
    for (let j = 0; j < ny; j++)
      for (let i = 0; i < nx; i++) {
        if (v.data[i + nx * (j + ny * k)] === 0) continue;
        const f = [0, 1, 2].map((r) => m[r * 4] * i + m[r * 4 + 1] * j + m[r * 4 + 2] * k + m[r * 4 + 3]);
        const t = (f[0] - e[0]) * u[0] + (f[1] - e[1]) * u[1] + (f[2] - e[2]) * u[2];
        if (t < t0 || t > t1) continue;
        const d2 = (f[0] - e[0]) ** 2 + (f[1] - e[1]) ** 2 + (f[2] - e[2]) ** 2 - t * t;
        if (d2 < 20 * 20) pts.push(f[0], f[1], f[2]);
      }
  let best = Infinity;
  for (let t = t0; t <= t1; t += 0.05) {
    const p = [e[0] + t * u[0], e[1] + t * u[1], e[2] + t * u[2]];
    for (let q = 0; q < pts.length; q += 3) {
      const d = Math.hypot(pts[q] - p[0], pts[q + 1] - p[1], pts[q + 2] - p[2]);
      if (d < best) best = d;
    }
  }
  return best - map.boundaryOffsetMm - path.diameterMm / 2;
}

describe('analyzePath on a bone block with a canal', () => {
  // Bone: |x| <= 40, |y| <= 15, |z| <= 15 around the offset; a canal (label 2) of radius 4 along z at y = 8.
  const offset: Point3 = [12.5, -30, 950];
  const labels = labelVolume(
    (x, y, z) =>
      Math.abs(x) <= 40 && Math.abs(y) <= 15 && Math.abs(z) <= 15 ? (Math.hypot(x, y - 8) <= 4 ? 2 : 1) : 0,
    [50, 20, 20],
    [0.5, 0.6, 0.55],
    offset,
  );
  const map = corridorMapFromLabels(labels, { boneGroups: [[1]], critical: [{ name: 'canal', labels: [2] }] });
  const at = (x: number, y: number, z: number): Point3 => [x + offset[0], y + offset[1], z + offset[2]];
  const screw = (y: number, z: number, id = 'p'): PlanPath => ({
    id,
    name: id,
    kind: 'screw',
    diameterMm: 7.3,
    entry: at(-48, y, z),
    target: at(48, y, z),
  });

  it('measures length, bone length, cortex entry and exit along a clear path', () => {
    const a = analyzePath(map, screw(-2, 1));
    expect(a.lengthMm).toBeCloseTo(96, 9);
    // Bone voxel centres reach |x| = 40; their boundary lies half a voxel (0.25 mm) beyond.
    expect(Math.abs(a.inBoneMm - 80.5)).toBeLessThan(0.3);
    expect(Math.abs(defined(a.cortexEntry, 'cortex entry')[0] - at(-40.25, 0, 0)[0])).toBeLessThan(0.2);
    expect(Math.abs(defined(a.cortexExit, 'cortex exit')[0] - at(40.25, 0, 0)[0])).toBeLessThan(0.2);
    expect(a.breaches).toEqual([]);
    expect(a.fits).toBe(true);
  });

  it('minimum clearance agrees with the analytic geometry and with an independent sampling', () => {
    const path = screw(-2, 1);
    const a = analyzePath(map, path);
    // Analytic: the canal surface is 8 - (-2) - 4 = 6 mm from the axis (nearer than the block's faces:
    // 13 mm and 14 mm); minus the 3.65 mm tool radius = 2.35 mm. Voxels approximate it to half a voxel.
    expect(Math.abs((a.minClearanceMm ?? NaN) - 2.35)).toBeLessThan(0.35);
    // The narrowest place is level with the canal (x = 0, within its 4 mm radius: the voxelized wall is
    // flat there, so neighbouring wall voxels tie to a fraction of a voxel).
    expect(Math.abs(defined(a.narrowestAt, 'narrowest place')[0] - offset[0])).toBeLessThan(4);
    const tIn = defined(a.cortexEntry, 'cortex entry')[0] - path.entry[0];
    const tOut = defined(a.cortexExit, 'cortex exit')[0] - path.entry[0];
    const zone = 7.3; // default cortex zone: max(tool diameter, 3 mm)
    expect(Math.abs((a.minClearanceMm ?? NaN) - sampledClearance(map, path, tIn + zone, tOut - zone))).toBeLessThan(
      0.01,
    );
    expect(a.maxDiameterMm).toBeCloseTo(2 * ((a.minClearanceMm ?? NaN) + 3.65 - 1), 9);
  });

  it('reports a path through the canal as a breach of the canal, with its depth', () => {
    const a = analyzePath(map, screw(8, 0));
    expect(a.fits).toBe(false);
    const canal = defined(
      a.breaches.find((b) => b.structure === 'canal'),
      'a breach of the canal',
    );
    // The axis runs through the canal's centre: the tool reaches its radius plus the canal's 4 mm radius past the wall.
    expect(Math.abs(canal.depthMm - (3.65 + 4))).toBeLessThan(0.6);
    expect(Math.abs(canal.at[0] - offset[0])).toBeLessThan(1);
  });

  it('reports a tool that grazes the canal (axis in bone) as a shallow breach', () => {
    // Axis 5.5 mm from the canal's axis: 1.5 mm from its wall; the 3.65 mm tool reaches 2.15 mm into it.
    const a = analyzePath(map, screw(2.5, 0));
    const canal = defined(
      a.breaches.find((b) => b.structure === 'canal'),
      'a breach of the canal',
    );
    expect(Math.abs(canal.depthMm - 2.15)).toBeLessThan(0.35);
  });

  it('does not miss a forbidden crack thinner than a voxel between two axis samples', () => {
    // A single plane of "outside" voxels (one voxel thick) crossing the bone at x = 20.
    const cracked = labelVolume(
      (x, y, z) => (Math.abs(x) <= 40 && Math.abs(y) <= 15 && Math.abs(z) <= 15 && Math.abs(x - 20) > 0.2 ? 1 : 0),
      [50, 20, 20],
      [0.5, 0.6, 0.55],
      offset,
    );
    const m2 = corridorMapFromLabels(cracked, { boneGroups: [[1]], bridgeMm: 0 });
    const a = analyzePath(m2, { ...screw(-2, 1), diameterMm: 0.1 });
    const b = defined(
      a.breaches.find((x) => x.structure === 'outside bone'),
      'a breach out of the bone',
    );
    expect(Math.abs(b.at[0] - (offset[0] + 20))).toBeLessThan(0.6);
  });
});

describe('planTransSacral on an hourglass corridor', () => {
  it('finds the widest axis of a tilted hourglass: clearance radius within 0.5 mm of the analytic 5.88 mm', () => {
    // Bone: |x| <= 60 and within R(s) = 6 + |s|/5 mm of a tilted axis through (0, 3, -2) with direction
    // (1, 0.05, 0.12). The widest straight tool follows the axis; its clearance at the waist is the
    // distance from the axis to the cone: 6 * cos(atan(1/5)) = 5.883 mm.
    const c = [0, 3, -2];
    const dn = Math.hypot(1, 0.05, 0.12);
    const d = [1 / dn, 0.05 / dn, 0.12 / dn];
    const offset: Point3 = [0, 0, 1000];
    const labels = labelVolume(
      (x, y, z) => {
        if (Math.abs(x) > 60) return 0;
        const q = [x - c[0], y - c[1], z - c[2]];
        const s = q[0] * d[0] + q[1] * d[1] + q[2] * d[2];
        const r = Math.sqrt(Math.max(0, q[0] ** 2 + q[1] ** 2 + q[2] ** 2 - s * s));
        return r <= 6 + Math.abs(s) / 5 ? 1 : 0;
      },
      [66, 30, 30],
      [0.5, 0.5, 0.5],
      offset,
    );
    const map = corridorMapFromLabels(labels, { boneGroups: [[1]] });
    const res = planTransSacral(map, {
      id: 's1',
      tool: { kind: 'screw', diameterMm: 7.3 },
      seed: [0, 0, 1000],
      minHalfSpanMm: 50,
    });
    const radius = (res.analysis.minClearanceMm ?? NaN) + 3.65;
    expect(Math.abs(radius - 6 * Math.cos(Math.atan(0.2)))).toBeLessThan(0.5);
    expect(res.analysis.fits).toBe(true);
    // Ends on the two x = +-60 faces (the lateral cortices); entry on the patient's right (-x).
    expect(res.path.entry[0]).toBeLessThan(-59);
    expect(res.path.target[0]).toBeGreaterThan(59);
    // Bone-to-bone about 120 mm / cos(tilt): the length to order rounds down to 120 mm.
    expect(res.orderLengthMm).toBe(120);
    const t = defined(res.threadInBoneMm, 'thread in bone');
    expect(Math.abs(t.entrySide - 60 * dn)).toBeLessThan(1.5);
    expect(t.entrySide + t.farSide).toBeLessThanOrEqual(120 + 1e-6);
  });
});
