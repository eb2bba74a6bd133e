/**
 * Automatic planning of sacral paths on a corridor map.
 *
 * Trans-sacral (S1, S2): a straight axis from the lateral cortex of one ilium through the sacral body to
 * the other. The axis is parametrized by where it crosses the midline (sagittal) plane (y, z) and its
 * slopes (dy/dx, dz/dx). The objective, maximized, is the smallest clearance radius along the corridor
 * part of the bone-to-bone segment (distance map sampled by trilinear interpolation every half voxel,
 * minus half a voxel), plus 2% of the mean clearance as a tie breaker between equally narrow axes.
 * Nelder-Mead (with restarts) runs from the best points of a coarse scan around the seed (multistart);
 * the winner is then analysed exactly (analyze.ts).
 *
 * Alar: a posterior entry, through one ala lateral to the foramina, ending short of the anterior cortex.
 * The axis crosses the coronal plane of the seed at a point of the ala and has slopes (dx/dy, dz/dy) per
 * mm anterior. Along the ala's long axis (caudal-posterior to cranial-anterior) first; when that leaves
 * the tool less than its margin, down to perpendicular to a tilted sacrum's dorsal surface
 * (caudal-anterior) too. The objective rewards clearance first (up to the tool radius + margin + 1 mm)
 * and length second.
 */
import { multistart } from '../math/optimize.js';
import type { Point3 } from '../math/vec3.js';
import { analyzePath, interpolateMap, type AnalyzeOptions, type PathAnalysis } from './analyze.js';
import { OUTSIDE, type CorridorMap } from './corridor-map.js';
import { PlanError, type PlanPath } from './model.js';
import type { Volume } from '../volume/volume.js';
import { sampleNearest } from '../volume/sample.js';
import { lengthToOrder, steppedCatalogue, type Catalogue, type ToolSpec } from './tools.js';

export interface TransSacralOptions {
  id: string;
  name?: string;
  tool: ToolSpec;
  /** A point in the vertebral body at the level (LPS mm); its x is taken as the midline. */
  seed: Point3;
  /** x (LPS mm) of the midline plane; default the seed's x. */
  midlineX?: number;
  /** How far from the seed (mm, in y and z) the search may move the midline crossing. Default 15. */
  searchMm?: number;
  /** Largest slope (tan of the tilt) in y and z. Default 0.35 (about 19 degrees). */
  maxSlope?: number;
  /** Each end must reach at least this far (mm) from the midline: past the sacroiliac joints. */
  minHalfSpanMm?: number;
  /** Entry and target lie this far (mm) outside the cortices found. Default 2. */
  overshootMm?: number;
  /** Entry side: patient's 'right' (-x) or 'left' (+x). Default 'right'. */
  entrySide?: 'left' | 'right';
  marginMm?: number;
  catalogue?: Catalogue;
}

export interface AutoPathResult {
  path: PlanPath;
  analysis: PathAnalysis;
  /** Screws and pins: the catalogue length to order (bone-to-bone, rounded down to the catalogue). */
  orderLengthMm?: number;
  /** Screws and pins: length of the ordered screw lying in bone on the entry side / far side of the midline. */
  threadInBoneMm?: { entrySide: number; farSide: number };
  /** Objective evaluations used by the optimizer. */
  evaluations: number;
  /** Human-readable notes: fits or not, the widest tool that would. */
  notes: string[];
}

interface Segment {
  t0: number;
  t1: number;
}

/** Run of the bone envelope (code != OUTSIDE) along the line p + t d around t = 0; null if p is outside. */
function envelopeRun(map: CorridorMap, p: Point3, d: Point3, step: number, maxT: number): Segment | null {
  const v = map.structures;
  const m = v.patientToIndex;
  const [nx, ny, nz] = v.dims;
  const inside = (t: number) => {
    const x = p[0] + t * d[0], y = p[1] + t * d[1], z = p[2] + t * d[2];
    const i = Math.round(m[0] * x + m[1] * y + m[2] * z + m[3]);
    const j = Math.round(m[4] * x + m[5] * y + m[6] * z + m[7]);
    const k = Math.round(m[8] * x + m[9] * y + m[10] * z + m[11]);
    if (i < 0 || j < 0 || k < 0 || i >= nx || j >= ny || k >= nz) return false;
    return v.data[i + nx * (j + ny * k)] !== OUTSIDE;
  };
  if (!inside(0)) return null;
  let t1 = 0;
  while (t1 < maxT && inside(t1 + step)) t1 += step;
  let t0 = 0;
  while (t0 > -maxT && inside(t0 - step)) t0 -= step;
  return { t0: t0 - step / 2, t1: t1 + step / 2 };
}

/** Smallest and mean clearance radius (mm) sampled along [t0, t1] of the line p + t d. */
function clearanceProfile(map: CorridorMap, p: Point3, d: Point3, t0: number, t1: number, step: number) {
  let min = Infinity, sum = 0, n = 0;
  const q = [0, 0, 0];
  for (let t = t0; t <= t1; t += step) {
    q[0] = p[0] + t * d[0];
    q[1] = p[1] + t * d[1];
    q[2] = p[2] + t * d[2];
    const c = interpolateMap(map, map.clearance, q, 0) - map.boundaryOffsetMm;
    if (c < min) min = c;
    sum += c;
    n++;
  }
  return { min, mean: n ? sum / n : -Infinity };
}

function normalize3(x: number, y: number, z: number): Point3 {
  const n = Math.hypot(x, y, z);
  return [x / n, y / n, z / n];
}

function finish(
  map: CorridorMap,
  path: PlanPath,
  analyzeOptions: AnalyzeOptions,
  evaluations: number,
  catalogue: Catalogue | undefined,
  midlineX: number | undefined,
): AutoPathResult {
  const analysis = analyzePath(map, path, analyzeOptions);
  const notes: string[] = [];
  const res: AutoPathResult = { path, analysis, evaluations, notes };
  if (analysis.fits) {
    notes.push(`${path.name}: a ${path.diameterMm} mm ${path.kind} fits with ${analysis.minClearanceMm.toFixed(1)} mm clearance (margin ${analysis.marginMm} mm)`);
  } else {
    // "The widest tool is 0.0 mm" says nothing: when even a wire does not fit, give the axis's clearance
    // radius, so the physician sees how far from fitting it is (and whether a smaller margin would do).
    const radius = analysis.minClearanceMm + path.diameterMm / 2;
    const widest = analysis.maxDiameterMm > 0
      ? `the widest tool that fits this axis is ${analysis.maxDiameterMm.toFixed(1)} mm`
      : `no tool fits this axis with that margin: its clearance radius is ${Math.max(0, radius).toFixed(1)} mm`;
    notes.push(`${path.name}: no corridor fits a ${path.diameterMm} mm ${path.kind} with a ${analysis.marginMm} mm margin; ${widest}`);
  }
  if ((path.kind === 'screw' || path.kind === 'guidepin') && analysis.cortexEntry) {
    const order = lengthToOrder(analysis.boneToBoneMm, catalogue ?? steppedCatalogue());
    res.orderLengthMm = order;
    if (midlineX !== undefined) {
      // Thread in bone on each side: the ordered screw from the entry cortex, split at the midline plane.
      const e = analysis.cortexEntry;
      const L = analysis.lengthMm;
      const u = [(path.target[0] - path.entry[0]) / L, (path.target[1] - path.entry[1]) / L, (path.target[2] - path.entry[2]) / L];
      const tEntry = (e[0] - path.entry[0]) * u[0] + (e[1] - path.entry[1]) * u[1] + (e[2] - path.entry[2]) * u[2];
      const tMid = Math.abs(u[0]) > 1e-9 ? (midlineX - path.entry[0]) / u[0] : tEntry + order / 2;
      const sp = map.structures.spacing;
      const step = Math.min(sp[0], sp[1], sp[2]) / 4;
      let a = 0, b = 0;
      for (let t = tEntry + step / 2; t < tEntry + order; t += step) {
        const q: Point3 = [path.entry[0] + t * u[0], path.entry[1] + t * u[1], path.entry[2] + t * u[2]];
        const inBone = codeNearest(map, q) === 0;
        if (!inBone) continue;
        if (t < tMid) a += step;
        else b += step;
      }
      res.threadInBoneMm = { entrySide: a, farSide: b };
    }
  }
  return res;
}

function codeNearest(map: CorridorMap, p: ArrayLike<number>): number {
  const v = map.structures;
  const m = v.patientToIndex;
  const i = Math.round(m[0] * p[0] + m[1] * p[1] + m[2] * p[2] + m[3]);
  const j = Math.round(m[4] * p[0] + m[5] * p[1] + m[6] * p[2] + m[7]);
  const k = Math.round(m[8] * p[0] + m[9] * p[1] + m[10] * p[2] + m[11]);
  const [nx, ny, nz] = v.dims;
  if (i < 0 || j < 0 || k < 0 || i >= nx || j >= ny || k >= nz) return OUTSIDE;
  return v.data[i + nx * (j + ny * k)];
}

/** Automatic trans-sacral (S1 or S2) path. */
export function planTransSacral(map: CorridorMap, options: TransSacralOptions): AutoPathResult {
  const tool = options.tool;
  const xm = options.midlineX ?? options.seed[0];
  const search = options.searchMm ?? 15;
  const maxSlope = options.maxSlope ?? 0.35;
  const sp = map.structures.spacing;
  const h = Math.min(sp[0], sp[1], sp[2]);
  const walkStep = h / 2;
  const cortexZone = Math.max(tool.diameterMm, 3);
  // The lateral reach the axis must have: most of the envelope's half-width on a level line through the seed.
  let minHalf = options.minHalfSpanMm;
  if (minHalf === undefined) {
    // The farthest bone on a level line through the seed, on each side: the lateral iliac cortices.
    let far0 = 0, far1 = 0;
    for (let t = 0; t < 300; t += walkStep) {
      if (codeNearest(map, [xm + t, options.seed[1], options.seed[2]]) !== OUTSIDE) far1 = t;
      if (codeNearest(map, [xm - t, options.seed[1], options.seed[2]]) !== OUTSIDE) far0 = t;
    }
    if (!(far0 > 0 && far1 > 0)) throw new PlanError(`no bone on either side of the seed (${options.seed.map((x) => x.toFixed(1)).join(', ')})`, options.id);
    minHalf = 0.8 * Math.min(far0, far1);
  }
  const y0 = options.seed[1], z0 = options.seed[2];
  const line = (x: number[]) => {
    const p: Point3 = [xm, y0 + x[0], z0 + x[1]];
    const d = normalize3(1, x[2], x[3]);
    return { p, d };
  };
  const objective = (x: number[]): number => {
    let penalty = 0;
    for (let a = 0; a < 2; a++) penalty += Math.max(0, Math.abs(x[a]) - search);
    for (let a = 2; a < 4; a++) penalty += 50 * Math.max(0, Math.abs(x[a]) - maxSlope);
    const { p, d } = line(x);
    const run = envelopeRun(map, p, d, walkStep, 400);
    if (!run) return 100 + penalty + interpolateMap(map, map.depth, p, 50);
    // Both ends must reach the ilia: penalize the shortfall of the lateral reach (in x).
    const reachL = run.t1 * d[0], reachR = -run.t0 * d[0];
    penalty += Math.max(0, minHalf! - reachL) + Math.max(0, minHalf! - reachR);
    const prof = clearanceProfile(map, p, d, run.t0 + cortexZone, run.t1 - cortexZone, h / 2);
    return -(prof.min + 0.02 * prof.mean) + penalty;
  };
  // Coarse scan of the midline crossing (level axes), then local searches from the best few.
  const scanStep = Math.max(2, h);
  const scored: { x: number[]; f: number }[] = [];
  for (let dy = -search; dy <= search + 1e-9; dy += scanStep) {
    for (let dz = -search; dz <= search + 1e-9; dz += scanStep) {
      const x = [dy, dz, 0, 0];
      scored.push({ x, f: objective(x) });
    }
  }
  scored.sort((a, b) => a.f - b.f);
  const starts: number[][] = [];
  for (const s of scored) {
    if (starts.length >= 6) break;
    if (starts.every((t) => Math.hypot(t[0] - s.x[0], t[1] - s.x[1]) > 2 * scanStep)) starts.push(s.x);
  }
  const best = multistart(objective, starts, { initialStep: [scanStep, scanStep, 0.08, 0.08], xTolerance: 0.02, fTolerance: 1e-4, maxEvaluations: 600 });
  const { p, d } = line(best.x);
  const run = envelopeRun(map, p, d, walkStep, 400);
  if (!run) throw new PlanError('no axis through bone was found near the seed', options.id);
  // Entry and target a little outside the cortices, so that analysis sees the tool cross them.
  const out = options.overshootMm ?? 2;
  const right: Point3 = [p[0] + (run.t0 - out) * d[0], p[1] + (run.t0 - out) * d[1], p[2] + (run.t0 - out) * d[2]];
  const left: Point3 = [p[0] + (run.t1 + out) * d[0], p[1] + (run.t1 + out) * d[1], p[2] + (run.t1 + out) * d[2]];
  const fromRight = (options.entrySide ?? 'right') === 'right';
  const path: PlanPath = {
    id: options.id,
    name: options.name ?? options.id,
    kind: tool.kind,
    diameterMm: tool.diameterMm,
    entry: fromRight ? right : left,
    target: fromRight ? left : right,
  };
  return finish(map, path, { marginMm: options.marginMm, cortexZoneMm: cortexZone }, scored.length + best.evaluations, options.catalogue, xm);
}

export interface AlarOptions {
  id: string;
  name?: string;
  tool: ToolSpec;
  side: 'left' | 'right';
  /** A point in the middle of the ala to start from (LPS mm). */
  seed: Point3;
  /** Stop this far (mm) short of the anterior cortex. Default 5. */
  stopShortMm?: number;
  /** How far (mm) the search may move the axis from the seed. Default 10. */
  searchMm?: number;
  /** Paths with less bone than this (mm, posterior cortex to tip) are penalized. Default 30. */
  minLengthMm?: number;
  /** Required clearance for the objective's full credit, mm. Default 2. */
  marginMm?: number;
  /** The entry lies this far (mm) outside the posterior cortex. Default 2. */
  overshootMm?: number;
}

/** Automatic alar path (posterior entry along the long axis of one ala). */
export function planAlar(map: CorridorMap, options: AlarOptions): AutoPathResult {
  const tool = options.tool;
  const toolR = tool.diameterMm / 2;
  const margin = options.marginMm ?? 2;
  const stopShort = options.stopShortMm ?? 5;
  const search = options.searchMm ?? 10;
  const minLength = options.minLengthMm ?? 30;
  const sp = map.structures.spacing;
  const h = Math.min(sp[0], sp[1], sp[2]);
  const walkStep = h / 2;
  const cortexZone = Math.max(tool.diameterMm, 3);
  const [sx, sy, sz] = options.seed;
  // Axis through (sx + x0, sy, sz + x1), direction (x2, -1, x3): anterior, x2 mm lateral and x3 mm
  // cranial per mm. t grows anteriorly, so the run's low end is the posterior (entry) end.
  const line = (x: number[]) => ({ p: [sx + x[0], sy, sz + x[1]] as Point3, d: normalize3(x[2], -1, x[3]) });
  const geometry = (x: number[]) => {
    const { p, d } = line(x);
    const run = envelopeRun(map, p, d, walkStep, 300);
    if (!run) return null;
    // Entry at the posterior end; the tip stopShort before the anterior cortex.
    const tEnd = run.t1 - stopShort;
    return { p, d, t0: run.t0, tEnd };
  };
  const need = toolR + margin;
  /** Smallest clearance radius along the corridor part of axis x (-Infinity when it misses bone). */
  const minClearance = (x: number[]) => {
    const g = geometry(x);
    return g && g.tEnd - g.t0 > cortexZone ? clearanceProfile(map, g.p, g.d, g.t0 + cortexZone, g.tEnd, h / 2).min : -Infinity;
  };
  /** minCranial: the smallest cranial slope (mm per mm anterior) allowed. */
  const objectiveFor = (minCranial: number) => (x: number[]): number => {
    let penalty = 0;
    for (let a = 0; a < 2; a++) penalty += Math.max(0, Math.abs(x[a]) - search);
    penalty += 50 * Math.max(0, Math.abs(x[2]) - 0.6) + 50 * Math.max(0, x[3] - 3) + 50 * Math.max(0, minCranial - x[3]);
    const g = geometry(x);
    if (!g) return 100 + penalty + interpolateMap(map, map.depth, line(x).p, 50);
    const len = g.tEnd - g.t0;
    if (len < 3 * cortexZone) return 50 + penalty - len;
    const prof = clearanceProfile(map, g.p, g.d, g.t0 + cortexZone, g.tEnd, h / 2);
    // Clearance first (full credit up to need + 1 mm), then length, then mean clearance; a path shorter
    // than minLength (a stub in the thickest bone) pays 1 mm of clearance per 10 mm it lacks.
    const c = Math.min(prof.min, need + 1);
    penalty += Math.max(0, minLength - len);
    return -(10 * c + 0.05 * len + 0.02 * prof.mean) + penalty;
  };
  const search1 = (minCranial: number, slopes: number[]) => {
    const objective = objectiveFor(minCranial);
    const starts: number[][] = [];
    // A coarse scan of the crossing point and the cranial slope; the best few start local searches.
    for (const dx of [-8, -4, 0, 4, 8]) for (const dz of [-8, -4, 0, 4, 8]) for (const lx of [-0.2, 0, 0.2]) for (const cz of slopes) starts.push([dx, dz, lx, cz]);
    const scored = starts.map((x) => ({ x, f: objective(x) })).sort((a, b) => a.f - b.f).slice(0, 8).map((s) => s.x);
    const r = multistart(objective, scored, { initialStep: [2, 2, 0.1, 0.25], xTolerance: 0.02, fTolerance: 1e-4, maxEvaluations: 500 });
    return { x: r.x, f: r.value, evaluations: starts.length + r.evaluations };
  };
  // The long axis first (cranial-anterior); only when no such axis gives the tool its margin, also axes
  // down to perpendicular to a tilted sacrum's dorsal surface (caudal-anterior), and the better one wins.
  let best = search1(0, [0.3, 0.6, 1, 1.5, 2.2]);
  let evaluations = best.evaluations;
  if (minClearance(best.x) < need) {
    const wide = search1(-1.5, [-1.2, -0.8, -0.4, 0, 0.4]);
    evaluations += wide.evaluations;
    if (wide.f < best.f) best = wide;
  }
  const g = geometry(best.x);
  if (!g) throw new PlanError(`no alar axis through bone was found near the seed`, options.id);
  const at = (t: number): Point3 => [g.p[0] + t * g.d[0], g.p[1] + t * g.d[1], g.p[2] + t * g.d[2]];
  const path: PlanPath = {
    id: options.id,
    name: options.name ?? options.id,
    kind: tool.kind,
    diameterMm: tool.diameterMm,
    entry: at(g.t0 - (options.overshootMm ?? 2)),
    target: at(g.tEnd),
  };
  return finish(map, path, { marginMm: margin, cortexZoneMm: cortexZone }, evaluations, undefined, undefined);
}

export interface SacralSeeds {
  s1: Point3;
  s2: Point3;
  /** x (LPS mm) of the midline plane. */
  midlineX: number;
  /** Alar seeds (middle of each ala near S1/S2, lateral to the foramina). */
  alarLeft: Point3;
  alarRight: Point3;
  /**
   * How far (mm) a trans-sacral search may move from the S1 or S2 seed (planTransSacral's searchMm):
   * 45% of the distance between the two seeds, within 8-15 mm, so that the S2 search cannot reach the
   * (usually wider) S1 corridor and the other way round.
   */
  levelSearchMm: number;
  /** Which anatomy defined the levels: 'foramina', 'S1 label' or 'top of the sacrum'. */
  levelsFrom: 'foramina' | 'S1 label' | 'top of the sacrum';
}

export interface SacralSeedOptions {
  /** Labels of the S1 vertebra when it is segmented apart from the sacrum (TotalSegmentator: 26). */
  s1?: number[];
  /**
   * Labels of the sacral foramina, each foramen (or each level on each side) its own label, as in the
   * phantom (S1L 21, S1R 22, S2L 23, ...). When at least two levels on each side are found, they define
   * the S1 and S2 levels (see sacralSeedsFromLabels).
   */
  foramina?: number[];
  /** Labels of the spinal canal: the vertebral body seeds lie anterior to it. */
  canal?: number[];
}

interface LabelStats {
  n: number;
  sx: number;
  sy: number;
  sz: number;
  xMin: number;
  xMax: number;
}

/** Runs (t0, t1) of consecutive samples p + t d (t in [-reach, reach], step) for which `inside` holds. */
function runsAlong(p: Point3, d: Point3, reach: number, step: number, inside: (q: Point3) => boolean): Segment[] {
  const runs: Segment[] = [];
  let start = NaN;
  const q: Point3 = [0, 0, 0];
  for (let t = -reach; t <= reach + 1e-9; t += step) {
    q[0] = p[0] + t * d[0]; q[1] = p[1] + t * d[1]; q[2] = p[2] + t * d[2];
    const ins = inside(q);
    if (ins && Number.isNaN(start)) start = t;
    if (!ins && !Number.isNaN(start)) {
      runs.push({ t0: start, t1: t - step });
      start = NaN;
    }
  }
  if (!Number.isNaN(start)) runs.push({ t0: start, t1: reach });
  return runs;
}

/**
 * Seed points from a segmentation, for planTransSacral and planAlar.
 *
 * The S1 trans-sacral corridor runs between the S1 foramina (below) and the top of the alae (above), the
 * S2 corridor between the S1 and S2 foramina, so where the foramina are labelled they define the levels,
 * whatever the sacral slope:
 * - F1, F2 = the midpoints of the centroids of the most cranial and the next foramen label on each side;
 *   the midline x = F1's x; the sacral axis s (caudal) = F2 - F1 in the sagittal plane, the anterior
 *   direction a perpendicular to it.
 * - Level points: S2 = (F1 + F2) / 2, S1 = F1 - (F2 - F1) / 2 (the same step above the S1 foramina).
 * - Each body seed is the middle of the sacral bone met along a through its level point at the midline,
 *   anterior to the canal (the vertebral body, not the dorsal elements or the promontory's rim).
 * - Alar seeds: at the S1-S2 level, halfway between the foramina's lateral edge and the sacrum's lateral
 *   edge, in the middle of the bone along a there.
 * Without foramina: the S1 body is the S1 label's centroid (or, with neither, the top 25 mm of the
 * sacrum), S2 the sacrum 6-22 mm below S1's caudal end, and the alar seeds lie lateral of the S1/S2
 * junction at 45% of the way from the midline to the sacrum's lateral edge.
 */
export function sacralSeedsFromLabels(labels: Volume, sacrum: number[], s1OrOptions?: number[] | SacralSeedOptions): SacralSeeds {
  const opts: SacralSeedOptions = Array.isArray(s1OrOptions) ? { s1: s1OrOptions } : (s1OrOptions ?? {});
  const src = labels.meta.source ?? 'labels';
  const isS = new Uint8Array(65536), isS1 = new Uint8Array(65536), isCanal = new Uint8Array(65536);
  // foramen label -> 1 + its index in opts.foramina
  const foramenIndex = new Uint16Array(65536);
  for (const l of sacrum) isS[l & 0xffff] = 1;
  for (const l of opts.s1 ?? []) isS1[l & 0xffff] = 1;
  for (const l of opts.canal ?? []) isCanal[l & 0xffff] = 1;
  const foramina = [...new Set(opts.foramina ?? [])];
  foramina.forEach((l, i) => { foramenIndex[l & 0xffff] = i + 1; });
  const fStats: LabelStats[] = foramina.map(() => ({ n: 0, sx: 0, sy: 0, sz: 0, xMin: Infinity, xMax: -Infinity }));
  const [nx, ny, nz] = labels.dims;
  const m = labels.indexToPatient;
  const d = labels.data;
  // Patient z of every sacral voxel (S1 included): axial extent and the S1 centroid.
  let zTop = -Infinity;
  const c1 = [0, 0, 0];
  let n1 = 0, zS1Bottom = Infinity;
  let sacrumSumX = 0, sacrumN = 0;
  const pos = [0, 0, 0];
  const toP = (i: number, j: number, k: number) => {
    for (let r = 0; r < 3; r++) pos[r] = m[r * 4] * i + m[r * 4 + 1] * j + m[r * 4 + 2] * k + m[r * 4 + 3];
    return pos;
  };
  for (let k = 0, o = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++, o++) {
    const v = d[o];
    if (!(v >= 0 && v < 65536)) continue;
    const fi = foramenIndex[v];
    if (fi) {
      const p = toP(i, j, k);
      const st = fStats[fi - 1];
      st.n++; st.sx += p[0]; st.sy += p[1]; st.sz += p[2];
      if (p[0] < st.xMin) st.xMin = p[0];
      if (p[0] > st.xMax) st.xMax = p[0];
      continue;
    }
    if (!isS[v] && !isS1[v]) continue;
    const p = toP(i, j, k);
    if (p[2] > zTop) zTop = p[2];
    sacrumSumX += p[0];
    sacrumN++;
    if (isS1[v]) {
      c1[0] += p[0]; c1[1] += p[1]; c1[2] += p[2]; n1++;
      if (p[2] < zS1Bottom) zS1Bottom = p[2];
    }
  }
  if (!Number.isFinite(zTop)) throw new PlanError(`no sacrum label (${sacrum.join(', ')}) in the segmentation`, src);
  const isSacrum = (q: Point3) => {
    const v = sampleNearest(labels, q, -1);
    return v >= 0 && v < 65536 && (isS[v] === 1 || isS1[v] === 1);
  };
  const fromForamina = foramina.length ? seedsFromForamina(labels, foramina, fStats, sacrumSumX / sacrumN, isSacrum, isCanal) : null;
  if (fromForamina) return fromForamina;

  const sumSlab = (z0: number, z1: number) => {
    const c = [0, 0, 0];
    let n = 0, xMin = Infinity, xMax = -Infinity;
    for (let k = 0, o = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++, o++) {
      const v = d[o];
      if (!(v >= 0 && v < 65536) || (!isS[v] && !isS1[v])) continue;
      const p = toP(i, j, k);
      if (p[2] < z0 || p[2] > z1) continue;
      c[0] += p[0]; c[1] += p[1]; c[2] += p[2]; n++;
      if (p[0] < xMin) xMin = p[0];
      if (p[0] > xMax) xMax = p[0];
    }
    if (!n) throw new PlanError(`the sacrum label has no voxels between z = ${z0.toFixed(1)} and ${z1.toFixed(1)} mm`, src);
    return { c: [c[0] / n, c[1] / n, c[2] / n] as Point3, xMin, xMax };
  };
  let s1Seed: Point3;
  let s1Bottom: number;
  if (n1 > 0) {
    s1Seed = [c1[0] / n1, c1[1] / n1, c1[2] / n1];
    s1Bottom = zS1Bottom;
  } else {
    s1Seed = sumSlab(zTop - 25, zTop).c;
    s1Bottom = zTop - 25;
  }
  const s2 = sumSlab(s1Bottom - 22, s1Bottom - 6);
  const junction = sumSlab(s1Bottom - 12, s1Bottom + 8);
  const xm = s1Seed[0];
  const frac = 0.45;
  const alarLeft: Point3 = [xm + frac * (junction.xMax - xm), junction.c[1], junction.c[2]];
  const alarRight: Point3 = [xm - frac * (xm - junction.xMin), junction.c[1], junction.c[2]];
  return { s1: s1Seed, s2: s2.c, midlineX: xm, alarLeft, alarRight, levelSearchMm: levelSearch(s1Seed, s2.c), levelsFrom: n1 > 0 ? 'S1 label' : 'top of the sacrum' };
}

/** Distance of t = 0 from a run (0 inside it). */
function runDistance(r: Segment): number {
  return r.t0 <= 0 && r.t1 >= 0 ? 0 : Math.min(Math.abs(r.t0), Math.abs(r.t1));
}

function levelSearch(a: Point3, b: Point3): number {
  return Math.min(15, Math.max(8, 0.45 * Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2])));
}

/** The foramina branch of sacralSeedsFromLabels; null when fewer than two levels per side are labelled. */
function seedsFromForamina(
  labels: Volume,
  foramina: number[],
  stats: LabelStats[],
  provisionalMidX: number,
  isSacrum: (q: Point3) => boolean,
  isCanal: Uint8Array,
): SacralSeeds | null {
  type C = { label: number; c: Point3 };
  const left: C[] = [], right: C[] = [];
  foramina.forEach((label, i) => {
    const st = stats[i];
    if (st.n === 0) return;
    const c: Point3 = [st.sx / st.n, st.sy / st.n, st.sz / st.n];
    // A label whose centroid sits on the midline holds foramina of both sides: no level can be read from it.
    if (Math.abs(c[0] - provisionalMidX) < 5) return;
    (c[0] > provisionalMidX ? left : right).push({ label, c });
  });
  if (left.length < 2 || right.length < 2) return null;
  left.sort((a, b) => b.c[2] - a.c[2]);
  right.sort((a, b) => b.c[2] - a.c[2]);
  const mid = (a: Point3, b: Point3): Point3 => [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2, (a[2] + b[2]) / 2];
  const f1 = mid(left[0].c, right[0].c), f2 = mid(left[1].c, right[1].c);
  const xm = f1[0];
  // Sacral axis (caudal) and anterior direction, in the sagittal plane.
  const sLen = Math.hypot(f2[1] - f1[1], f2[2] - f1[2]);
  if (!(sLen > 0)) return null;
  const s: Point3 = [0, (f2[1] - f1[1]) / sLen, (f2[2] - f1[2]) / sLen];
  let a: Point3 = [0, -s[2], s[1]];
  if (a[1] > 0) a = [0, s[2], -s[1]];
  const sp = labels.spacing;
  const step = Math.min(sp[0], sp[1], sp[2]) / 2;
  const canalAt = (q: Point3) => {
    const v = sampleNearest(labels, q, -1);
    return v >= 0 && v < 65536 && isCanal[v] === 1;
  };
  /** Middle of the sacral bone along a through p: the run anterior of the canal, else the one nearest p. */
  const bodyMiddle = (p: Point3): Point3 | null => {
    const runs = runsAlong(p, a, 80, step, isSacrum);
    if (!runs.length) return null;
    const canal = runsAlong(p, a, 80, step, canalAt);
    let pick: Segment | undefined;
    if (canal.length) {
      // The canal run nearest p; the body is the first sacral run anterior (t larger) of it.
      const c = canal.reduce((b, r) => (Math.abs((r.t0 + r.t1) / 2) < Math.abs((b.t0 + b.t1) / 2) ? r : b));
      pick = runs.find((r) => r.t0 >= c.t1);
    }
    if (!pick) pick = runs.reduce((b, r) => (runDistance(r) < runDistance(b) ? r : b));
    const t = (pick.t0 + pick.t1) / 2;
    return [p[0] + t * a[0], p[1] + t * a[1], p[2] + t * a[2]];
  };
  const level1: Point3 = [xm, f1[1] - (f2[1] - f1[1]) / 2, f1[2] - (f2[2] - f1[2]) / 2];
  const level2: Point3 = [xm, (f1[1] + f2[1]) / 2, (f1[2] + f2[2]) / 2];
  const s1 = bodyMiddle(level1), s2 = bodyMiddle(level2);
  if (!s1 || !s2) return null;
  // Alar seeds: lateral edge of the top two foramina on that side, lateral edge of the sacrum at the S2
  // body seed (gaps up to 10 mm, a foramen's width, are crossed), halfway between.
  const foramenEdge = (sign: 1 | -1, side: C[]) => {
    let e = 0;
    for (const f of side.slice(0, 2)) {
      const st = stats[foramina.indexOf(f.label)];
      e = Math.max(e, sign > 0 ? st.xMax - xm : xm - st.xMin);
    }
    return e;
  };
  const alar = (sign: 1 | -1, side: C[]): Point3 => {
    const dir: Point3 = [sign, 0, 0];
    const runs = runsAlong(s2, dir, 150, step, isSacrum).filter((r) => r.t1 > 0);
    let edge = 0;
    for (const r of runs) {
      if (r.t0 > edge + 10) break;
      edge = Math.max(edge, r.t1);
    }
    const inner = foramenEdge(sign, side);
    const x = xm + sign * (inner > 0 && inner < edge ? (inner + edge) / 2 : 0.6 * edge);
    const p: Point3 = [x, s2[1], s2[2]];
    const runsA = runsAlong(p, a, 80, step, isSacrum);
    if (!runsA.length) return p;
    // The run containing (or nearest to) the S2 body's depth.
    const r = runsA.reduce((b, q) => (Math.abs((q.t0 + q.t1) / 2) < Math.abs((b.t0 + b.t1) / 2) ? q : b));
    const t = (r.t0 + r.t1) / 2;
    return [p[0] + t * a[0], p[1] + t * a[1], p[2] + t * a[2]];
  };
  return { s1, s2, midlineX: xm, alarLeft: alar(1, left), alarRight: alar(-1, right), levelSearchMm: levelSearch(s1, s2), levelsFrom: 'foramina' };
}
