/**
 * Analysis of one straight path against a corridor map (corridor-map.ts).
 *
 * Definitions (all distances in mm, LPS):
 * - The axis runs from `entry` to `target`; t is the distance from entry along it.
 * - A point is *in bone* when its nearest voxel has structure code 0 (bone, joints bridged). It is
 *   *inside the bone envelope* when its nearest voxel is not "outside bone" (so bone or an enclosed
 *   critical structure). `cortexEntry` is the first point where the axis enters the envelope,
 *   `cortexExit` the last point where it leaves it before the target (null when the target is inside);
 *   both are found on samples at most a quarter of the smallest voxel spacing apart, so to within an
 *   eighth of a voxel. The *intraosseous segment* runs from cortexEntry to cortexExit (or the target).
 * - *Clearance radius* of a forbidden voxel (code != 0) = its centre's perpendicular distance to the
 *   axis minus half a voxel (`boundaryOffsetMm`: the bone/forbidden boundary lies half a voxel before
 *   the forbidden voxel's centre). Only forbidden voxels whose centres project onto the *corridor part*
 *   of the intraosseous segment count: the segment minus a cortex zone of `cortexZoneMm` at the entry
 *   (and at the exit, when there is one), where the tool necessarily crosses the cortex.
 *   Every forbidden voxel is examined (no sampling), so no breach thinner than a voxel can be missed.
 * - `minClearanceMm` = the smallest clearance radius minus the tool's radius (negative: the tool cuts
 *   into a forbidden voxel); `narrowestAt` is the axis point level with that voxel. null when there is
 *   no corridor part to measure (the path misses bone, or its bone is shorter than the cortex zones):
 *   no infinity or NaN is ever reported.
 * - `maxDiameterMm` = twice (smallest clearance radius - margin): the widest tool that still fits.
 * - `fits` = minClearanceMm >= marginMm and no breach.
 * - A *breach* is a stretch of the corridor part where the tool overlaps forbidden voxels of one
 *   structure (or the axis runs through one); depthMm = how far the tool reaches past the boundary
 *   (tool radius - clearance radius, or when the axis itself is inside the structure, tool radius +
 *   the axis point's distance to the nearest bone voxel centre - half a voxel), at = the deepest point.
 */
import type { Point3 } from '../math/vec3.js';
import { PlanError, type PlanPath } from './model.js';
import { BONE, OUTSIDE, type CorridorMap } from './corridor-map.js';
import { sampleNearest, sampleTrilinear } from '../volume/sample.js';
import { DEFAULT_MARGIN_MM } from './clinical.js';

export interface Breach {
  structure: string;
  /** Axis point where the tool reaches deepest into the structure. */
  at: Point3;
  depthMm: number;
  /** Where along the path (mm from entry) the breach starts and ends. */
  fromMm: number;
  toMm: number;
}

export interface PathAnalysis {
  id: string;
  name: string;
  kind: PlanPath['kind'];
  diameterMm: number;
  lengthMm: number;
  inBoneMm: number;
  cortexEntry: Point3 | null;
  cortexExit: Point3 | null;
  /** Length of the intraosseous segment, mm (cortexEntry to cortexExit or the target). */
  boneToBoneMm: number;
  minClearanceMm: number | null;
  narrowestAt: Point3 | null;
  maxDiameterMm: number;
  marginMm: number;
  fits: boolean;
  breaches: Breach[];
  /** Clearance radius at the target point minus the tool radius (tip to nearest forbidden boundary). */
  tipClearanceMm: number;
  /** Notes for the reader: why a value is missing, what limited it. */
  notes: string[];
}

export interface AnalyzeOptions {
  /**
   * Required clearance between the tool's surface and any forbidden voxel, mm. Default: the margin the
   * path was planned with (PlanPath.marginMm), else DEFAULT_MARGIN_MM.
   */
  marginMm?: number;
  /** Cortex zone at each end of the intraosseous segment, mm. Default max(tool diameter, 3 mm). */
  cortexZoneMm?: number;
  /** Forbidden voxels farther than this from the axis are not examined, mm. Default 25. */
  searchRadiusMm?: number;
}

/** Structure code at the voxel nearest to p (volume/sample.ts's rule), OUTSIDE beyond the grid. */
export function codeAt(map: CorridorMap, p: ArrayLike<number>): number {
  return sampleNearest(map.structures, p, OUTSIDE);
}

export interface RadialScan {
  /** Smallest clearance radius (perpendicular distance - half a voxel) over counted forbidden voxels. */
  minRadiusMm: number;
  /** t (mm from the axis origin) of that voxel's projection; NaN when none was found. */
  minAtT: number;
  /** Per structure code, overlaps with the tool: list of [t, depth]. */
  overlaps: Map<number, [number, number][]>;
}

/**
 * Every forbidden voxel whose centre projects onto [t0, t1] of the axis (origin o, unit direction u) and
 * lies within searchRadiusMm of it: the smallest clearance radius, and the voxels a tool of radius
 * toolRadiusMm overlaps.
 */
export function radialScan(
  map: CorridorMap,
  o: ArrayLike<number>,
  u: ArrayLike<number>,
  t0: number,
  t1: number,
  toolRadiusMm: number,
  searchRadiusMm: number,
): RadialScan {
  const v = map.structures;
  const [nx, ny, nz] = v.dims;
  const m = v.indexToPatient,
    inv = v.patientToIndex;
  const lo = [Infinity, Infinity, Infinity],
    hi = [-Infinity, -Infinity, -Infinity];
  for (const t of [t0, t1]) {
    const p = [o[0] + t * u[0], o[1] + t * u[1], o[2] + t * u[2]];
    for (let a = 0; a < 3; a++) {
      const c = inv[a * 4] * p[0] + inv[a * 4 + 1] * p[1] + inv[a * 4 + 2] * p[2] + inv[a * 4 + 3];
      const r = searchRadiusMm / v.spacing[a];
      lo[a] = Math.min(lo[a], c - r);
      hi[a] = Math.max(hi[a], c + r);
    }
  }
  const i0 = Math.max(0, Math.floor(lo[0])),
    i1 = Math.min(nx - 1, Math.ceil(hi[0]));
  const j0 = Math.max(0, Math.floor(lo[1])),
    j1 = Math.min(ny - 1, Math.ceil(hi[1]));
  const k0 = Math.max(0, Math.floor(lo[2])),
    k1 = Math.min(nz - 1, Math.ceil(hi[2]));
  const off = map.boundaryOffsetMm;
  const codes = v.data;
  const R2 = searchRadiusMm * searchRadiusMm;
  let minR2 = Infinity,
    minAtT = NaN;
  const overlaps = new Map<number, [number, number][]>();
  const reach = toolRadiusMm + off; // perpendicular distance below which the tool overlaps the voxel's boundary
  const reach2 = reach * reach;
  for (let k = k0; k <= k1; k++) {
    for (let j = j0; j <= j1; j++) {
      let o0 = i0 + nx * (j + ny * k);
      // Patient position of voxel (i0, j, k) relative to the axis origin.
      let px = m[0] * i0 + m[1] * j + m[2] * k + m[3] - o[0];
      let py = m[4] * i0 + m[5] * j + m[6] * k + m[7] - o[1];
      let pz = m[8] * i0 + m[9] * j + m[10] * k + m[11] - o[2];
      for (let i = i0; i <= i1; i++, o0++, px += m[0], py += m[4], pz += m[8]) {
        const c = codes[o0];
        if (c === BONE) continue;
        const t = px * u[0] + py * u[1] + pz * u[2];
        if (t < t0 || t > t1) continue;
        const d2 = px * px + py * py + pz * pz - t * t;
        if (d2 > R2) continue;
        if (d2 < minR2) {
          minR2 = d2;
          minAtT = t;
        }
        if (d2 < reach2) {
          let list = overlaps.get(c);
          if (!list) overlaps.set(c, (list = []));
          list.push([t, reach - Math.sqrt(Math.max(0, d2))]);
        }
      }
    }
  }
  return { minRadiusMm: Math.sqrt(Math.max(0, minR2)) - off, minAtT, overlaps };
}

/** Analyse one path. See the module comment for every definition. */
export function analyzePath(map: CorridorMap, path: PlanPath, options: AnalyzeOptions = {}): PathAnalysis {
  const marginMm = options.marginMm ?? path.marginMm ?? DEFAULT_MARGIN_MM;
  const toolR = path.diameterMm / 2;
  const cortexZone = options.cortexZoneMm ?? Math.max(path.diameterMm, 3);
  const searchR = Math.max(options.searchRadiusMm ?? 25, toolR + marginMm + 2);
  const e = path.entry,
    tg = path.target;
  const L = Math.hypot(tg[0] - e[0], tg[1] - e[1], tg[2] - e[2]);
  if (!(L > 0)) throw new PlanError('entry and target coincide', path.id);
  const u: Point3 = [(tg[0] - e[0]) / L, (tg[1] - e[1]) / L, (tg[2] - e[2]) / L];
  const at = (t: number): Point3 => [e[0] + t * u[0], e[1] + t * u[1], e[2] + t * u[2]];
  const sp = map.structures.spacing;
  const nSteps = Math.max(2, Math.ceil(L / (Math.min(sp[0], sp[1], sp[2]) / 4)));
  const step = L / nSteps;
  const notes: string[] = [];

  // Walk the axis: bone length, envelope entry and exit, axis samples inside forbidden structures.
  let inBone = 0;
  let tIn = NaN,
    tOut = NaN;
  let prevInside = false;
  const codes = new Uint8Array(nSteps + 1);
  for (let s = 0; s <= nSteps; s++) {
    const t = s * step;
    const c = codeAt(map, at(t));
    codes[s] = c;
    const inside = c !== OUTSIDE;
    if (s > 0) {
      // Each interval counts half for each end sample.
      if (codes[s - 1] === BONE) inBone += step / 2;
      if (c === BONE) inBone += step / 2;
      if (inside && !prevInside && Number.isNaN(tIn)) tIn = t - step / 2;
      if (!inside && prevInside) tOut = t - step / 2;
    } else if (inside) {
      tIn = 0;
      notes.push('the entry point already lies inside bone');
    }
    if (inside) tOut = NaN; // re-entered: only the last exit counts
    prevInside = inside;
  }
  const result: PathAnalysis = {
    id: path.id,
    name: path.name,
    kind: path.kind,
    diameterMm: path.diameterMm,
    lengthMm: L,
    inBoneMm: inBone,
    cortexEntry: Number.isNaN(tIn) ? null : at(tIn),
    cortexExit: Number.isNaN(tOut) ? null : at(tOut),
    boneToBoneMm: 0,
    minClearanceMm: null,
    narrowestAt: null,
    maxDiameterMm: 0,
    marginMm,
    fits: false,
    breaches: [],
    tipClearanceMm: sampleTrilinear(map.clearance, tg, 0) - map.boundaryOffsetMm - toolR,
    notes,
  };
  if (Number.isNaN(tIn)) {
    notes.push('the path never enters bone');
    return result;
  }
  const segEnd = Number.isNaN(tOut) ? L : tOut;
  result.boneToBoneMm = segEnd - tIn;
  const c0 = tIn + cortexZone;
  const c1 = Number.isNaN(tOut) ? L : tOut - cortexZone;
  if (!(c1 > c0)) {
    notes.push(`the intraosseous segment (${(segEnd - tIn).toFixed(1)} mm) is shorter than the cortex zones`);
    return result;
  }
  const scan = radialScan(map, e, u, c0, c1, toolR, searchR);
  if (Number.isNaN(scan.minAtT)) {
    notes.push(`no forbidden voxel within ${searchR} mm of the corridor: clearance is at least that`);
    result.minClearanceMm = searchR - map.boundaryOffsetMm - toolR;
    result.narrowestAt = null;
  } else {
    result.minClearanceMm = scan.minRadiusMm - toolR;
    result.narrowestAt = at(scan.minAtT);
  }
  const minClearance = Number.isNaN(scan.minAtT) ? searchR - map.boundaryOffsetMm - toolR : scan.minRadiusMm - toolR;
  result.maxDiameterMm = Math.max(0, 2 * (minClearance + toolR - marginMm));

  // Breaches: overlaps grouped per structure into stretches along the axis.
  const gap = Math.max(sp[0], sp[1], sp[2]) * 2;
  const breaches: Breach[] = [];
  for (const [code, list] of scan.overlaps) {
    list.sort((a, b) => a[0] - b[0]);
    let cur: { from: number; to: number; depth: number; t: number } | null = null;
    const flush = () => {
      if (cur)
        breaches.push({
          structure: map.names[code] ?? `structure ${code}`,
          at: at(cur.t),
          depthMm: cur.depth,
          fromMm: cur.from,
          toMm: cur.to,
        });
    };
    for (const [t, depth] of list) {
      if (cur && t - cur.to <= gap) {
        cur.to = t;
        if (depth > cur.depth) {
          cur.depth = depth;
          cur.t = t;
        }
      } else {
        flush();
        cur = { from: t, to: t, depth, t };
      }
    }
    flush();
  }
  // Where the axis itself runs inside a forbidden structure, the depth is larger than the overlap says.
  for (let s = 0; s <= nSteps; s++) {
    const t = s * step;
    if (t < c0 || t > c1 || codes[s] === BONE) continue;
    const depth = toolR + sampleTrilinear(map.depth, at(t), 0) - map.boundaryOffsetMm;
    const name = map.names[codes[s]] ?? `structure ${codes[s]}`;
    const b = breaches.find((x) => x.structure === name && t >= x.fromMm - gap && t <= x.toMm + gap);
    if (b && depth > b.depthMm) {
      b.depthMm = depth;
      b.at = at(t);
    }
  }
  breaches.sort((a, b) => a.fromMm - b.fromMm);
  result.breaches = breaches;
  result.fits = breaches.length === 0 && minClearance >= marginMm;
  return result;
}
