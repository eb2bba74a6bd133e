/**
 * The instruments of stages pins and cement: two 2.8 mm guidepins on the S1 and S2 corridor axes and two
 * 11-gauge trocars on the alar paths, each displaced from its ideal entry by a seeded perpendicular offset
 * and tilted by a seeded angle (the plan-vs-actual error that verification has to find), inserted to the
 * ideal depth. Draws that bring two instruments within 2 mm are redrawn, deterministically. Exists so that
 * the seeded placement, the steel the rasterizer draws and the poses the truth records come from one draw.
 * Limits: straight flat-ended steel cylinders from a hub 30 mm outside the entry to the tip (no screws,
 * threads, handles or bending); the deviation is not checked against the anatomy, so a large draw may leave
 * the bone; after 202 draws the last is kept even if two instruments are closer than 2 mm.
 */
import type { Point3 } from '../math/vec3.js';
import { Rng } from '../math/random.js';
import { rod, type Rod } from './anatomy.js';
import type { Placement } from './placement.js';
import { r4, round4, type PlannedPath, type PlannedPaths } from './truth.js';
import type { InstrumentTruth } from './types.js';

/** An instrument type: its shaft and the range of its seeded errors (entry offset mm, angle deg). */
interface RodKind {
  kind: 'guidepin' | 'trocar';
  diameterMm: number;
  /** How far outside the entry the modelled shaft ends (mm). */
  hubOutMm: number;
  offsetRange: readonly [number, number];
  angleRange: readonly [number, number];
}

const GUIDEPIN: RodKind = {
  kind: 'guidepin',
  diameterMm: 2.8,
  hubOutMm: 30,
  offsetRange: [1, 3],
  angleRange: [1, 2.5],
};
/** 11 gauge. */
const TROCAR: RodKind = {
  kind: 'trocar',
  diameterMm: 3.05,
  hubOutMm: 30,
  offsetRange: [1, 3],
  angleRange: [2, 5],
};

interface PlannedRod extends RodKind {
  name: string;
  ideal: PlannedPath;
}

function plannedRods(paths: PlannedPaths): PlannedRod[] {
  return [
    { name: 'S1 guidepin', ...GUIDEPIN, ideal: paths.corridors.S1 },
    { name: 'S2 guidepin', ...GUIDEPIN, ideal: paths.corridors.S2 },
    { name: 'Alar trocar left', ...TROCAR, ideal: paths.alar.left },
    { name: 'Alar trocar right', ...TROCAR, ideal: paths.alar.right },
  ];
}

/**
 * Places the instruments with errors drawn from `seed`. Returns the rods (design frame, in the order
 * S1 pin, S2 pin, left trocar, right trocar) and their truth records (LPS mm).
 */
export function placeInstruments(
  paths: PlannedPaths,
  seed: number,
  place: Placement,
): { rods: Rod[]; truth: InstrumentTruth[] } {
  const { toWorld } = place;
  const planned = plannedRods(paths);
  const rng = new Rng(seed ^ 0x5eed1234);
  // Redraw (deterministically) until no two instruments come within 2 mm of each other.
  for (let attempt = 0; ; attempt++) {
    const rods: Rod[] = [];
    const out: InstrumentTruth[] = [];
    for (const p of planned) {
      const { entry: idealEntry, target: idealTarget } = p.ideal;
      const d: Point3 = [
        idealTarget[0] - idealEntry[0],
        idealTarget[1] - idealEntry[1],
        idealTarget[2] - idealEntry[2],
      ];
      const len = Math.hypot(...d);
      const u: Point3 = [d[0] / len, d[1] / len, d[2] / len];
      const offset = rng.range(...p.offsetRange);
      const angleDeg = rng.range(...p.angleRange);
      const w1 = rng.perpendicular(u),
        w2 = rng.perpendicular(u);
      const entry: Point3 = [
        idealEntry[0] + offset * w1[0],
        idealEntry[1] + offset * w1[1],
        idealEntry[2] + offset * w1[2],
      ];
      const v = tilt(u, w2, (angleDeg * Math.PI) / 180);
      const tip: Point3 = [entry[0] + len * v[0], entry[1] + len * v[1], entry[2] + len * v[2]];
      const hub: Point3 = [entry[0] - p.hubOutMm * v[0], entry[1] - p.hubOutMm * v[1], entry[2] - p.hubOutMm * v[2]];
      const r = rod(hub, tip, p.diameterMm / 2);
      rods.push(r);
      out.push({
        name: p.name,
        kind: p.kind,
        diameterMm: p.diameterMm,
        tip: r4(toWorld(tip)),
        hub: r4(toWorld(hub)),
        idealEntry: r4(toWorld(idealEntry)),
        idealTarget: r4(toWorld(idealTarget)),
        entryOffsetMm: round4(offset),
        angleDeg: round4(angleDeg),
        tipOffsetMm: round4(Math.hypot(tip[0] - idealTarget[0], tip[1] - idealTarget[1], tip[2] - idealTarget[2])),
        volumeMl: round4((Math.PI * (p.diameterMm / 2) ** 2 * r.length) / 1000),
      });
    }
    let ok = true;
    for (let i = 0; i < rods.length && ok; i++) {
      for (let j = i + 1; j < rods.length && ok; j++) {
        if (segmentDistance(rods[i], rods[j]) < rods[i].radius + rods[j].radius + 2) ok = false;
      }
    }
    if (ok || attempt > 200) return { rods, truth: out };
  }
}

/** Shortest distance between two segments, sampled finely enough for a clearance check (0.25 mm). */
function segmentDistance(a: Rod, b: Rod): number {
  let best = Infinity;
  const n = Math.ceil(a.length / 0.25);
  for (let i = 0; i <= n; i++) {
    const t = (a.length * i) / n;
    const px = a.hub[0] + t * a.u[0] - b.hub[0];
    const py = a.hub[1] + t * a.u[1] - b.hub[1];
    const pz = a.hub[2] + t * a.u[2] - b.hub[2];
    const s = Math.min(b.length, Math.max(0, px * b.u[0] + py * b.u[1] + pz * b.u[2]));
    best = Math.min(best, Math.hypot(px - s * b.u[0], py - s * b.u[1], pz - s * b.u[2]));
  }
  return best;
}

/** Rotate unit vector u by angle (rad) toward the perpendicular unit vector w. */
function tilt(u: Point3, w: Point3, angle: number): Point3 {
  const c = Math.cos(angle),
    s = Math.sin(angle);
  return [c * u[0] + s * w[0], c * u[1] + s * w[1], c * u[2] + s * w[2]];
}
