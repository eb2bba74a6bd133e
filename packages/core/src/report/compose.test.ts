/**
 * reportKeyImages with a fluoroscopy frame and a motion correction: the plan is drawn where the frame's
 * projection puts the moved paths, the uncorrected plan in grey where it puts the planned ones; without
 * volumes only the frame is drawn and the notes say why the slices are missing.
 */
import { describe, expect, it } from 'vitest';
import { parsePlan } from '../plan/model.js';
import { carmGeometry, carmPreset, DEFAULT_CARM_PRESET, projectionMatrix, projectPoint } from '../carm/geometry.js';
import { reportKeyImages, reportModel } from './compose.js';

const plan = parsePlan({
  schemaVersion: 1,
  volume: {},
  paths: [{ id: 's1', name: 'S1', kind: 'guidepin', diameterMm: 2.8, entry: [-60, 20, -170], target: [60, 20, -170] }],
});
const system = carmPreset(DEFAULT_CARM_PRESET);
const geometry = carmGeometry(system, { primaryDeg: 0, secondaryDeg: 0, isocenter: [0, 20, -170] }, { size: 256 });
const gray = new Uint8Array(geometry.columns * geometry.rows).fill(100);
const shift = [
  [1, 0, 0, 0],
  [0, 1, 0, 0],
  [0, 0, 1, 20],
  [0, 0, 0, 1],
];

function pixel(rgba: Uint8ClampedArray, c: number, r: number) {
  const o = 4 * (Math.round(r) * geometry.columns + Math.round(c));
  return [rgba[o], rgba[o + 1], rgba[o + 2]];
}
const mid = (a: number[], b: number[]) => [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2, (a[2] + b[2]) / 2];

describe('reportKeyImages: the fluoroscopy frame', () => {
  const report = reportModel({ plan, system, generatedAt: '2026-01-01T00:00:00Z' });
  const P = projectionMatrix(geometry);
  const p = plan.paths[0];
  const moved = (q: readonly number[]) => [q[0], q[1], q[2] + 20];

  it('with a motion correction: the moved plan in the overlay colours, the planned one in grey', () => {
    const { images, notes } = reportKeyImages(report, {
      system,
      fluoroscopy: [{ gray, geometry, label: 'XA frame f.dcm', planningToCurrent: shift }],
    });
    expect(images.map((k) => k.id)).toEqual(['fluoro-1']);
    expect(notes.join(' ')).toMatch(/no slices/);
    const k = images[0];
    expect(k.title).toBe('XA frame f.dcm (motion corrected)');
    const [mc, mr] = projectPoint(P, mid(moved(p.entry), moved(p.target)));
    const [pc, pr] = projectPoint(P, mid(p.entry, p.target));
    expect(Math.hypot(mc - pc, mr - pr)).toBeGreaterThan(15);
    // The path's line (yellow) at the moved midpoint, grey at the planned one, the frame elsewhere.
    const near = (c: number, r: number, f: (x: number[]) => boolean) =>
      [-1, 0, 1].some((dr) => [-1, 0, 1].some((dc) => f(pixel(k.rgba, c + dc, r + dr))));
    expect(near(mc, mr, ([r, g, b]) => r > 200 && g > 170 && b < 80)).toBe(true);
    expect(near(pc, pr, ([r, g, b]) => r > 150 && r === g && g === b)).toBe(true);
    expect(near(pc, pr, ([r, g, b]) => r > 200 && g > 170 && b < 80)).toBe(false);
    const [ec, er] = projectPoint(P, moved(p.entry));
    expect(pixel(k.rgba, ec, er)).toEqual([40, 220, 70]); // the entry disc
    expect(pixel(k.rgba, mc, mr + 60)).toEqual([100, 100, 100]);
  });

  it('without one: the plan where it was planned, no grey', () => {
    const { images } = reportKeyImages(report, { system, fluoroscopy: [{ gray, geometry, label: 'DRR' }] });
    const k = images[0];
    const [pc, pr] = projectPoint(P, mid(p.entry, p.target));
    const [ec, er] = projectPoint(P, p.entry);
    expect(pixel(k.rgba, ec, er)).toEqual([40, 220, 70]);
    const [r, g, b] = pixel(k.rgba, pc, pr);
    expect(r > 200 && g > 170 && b < 80).toBe(true);
    expect(k.caption).not.toMatch(/motion/);
  });
});
