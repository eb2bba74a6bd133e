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
import { analyzePath, codeAt, type AnalyzeOptions, type PathAnalysis } from './analyze.js';
import { OUTSIDE, type CorridorMap } from './corridor-map.js';
import { PlanError, type PlanPath } from './model.js';
import { sampleTrilinear } from '../volume/sample.js';
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

/**
 * Run of the bone envelope (code != OUTSIDE; with boneOnly, of bone itself: positive signed distance) along the line
 * p + t d around t = 0; null if p is outside it.
 * Each end is found by steps of `step`, then bisected to step / 64, so that the run's length changes
 * continuously as the line moves (a length quantized to whole steps leaves the optimizers flat steps
 * to stall on).
 */
function envelopeRun(
  map: CorridorMap,
  p: Point3,
  d: Point3,
  step: number,
  maxT: number,
  boneOnly = false,
): Segment | null {
  const q = [0, 0, 0];
  const inside = (t: number) => {
    q[0] = p[0] + t * d[0];
    q[1] = p[1] + t * d[1];
    q[2] = p[2] + t * d[2];
    // Bone: where the signed distance to the forbidden voxels (clearance minus depth, both trilinear) is
    // positive, so that the run's ends move smoothly with the line instead of along voxel staircases.
    if (boneOnly) return sampleTrilinear(map.clearance, q, 0) - sampleTrilinear(map.depth, q, 1) > 0;
    return codeAt(map, q) !== OUTSIDE;
  };
  if (!inside(0)) return null;
  /** The boundary between tIn (inside) and tOut (outside), bisected. */
  const edge = (tIn: number, tOut: number) => {
    for (let i = 0; i < 6; i++) {
      const m = (tIn + tOut) / 2;
      if (inside(m)) tIn = m;
      else tOut = m;
    }
    return (tIn + tOut) / 2;
  };
  let t1 = 0;
  while (t1 < maxT && inside(t1 + step)) t1 += step;
  let t0 = 0;
  while (t0 > -maxT && inside(t0 - step)) t0 -= step;
  return { t0: t0 > -maxT ? edge(t0, t0 - step) : t0, t1: t1 < maxT ? edge(t1, t1 + step) : t1 };
}

/**
 * Smallest and mean clearance radius (mm) sampled along [t0, t1] of the line p + t d, the smallest from
 * deepFrom on (the same samples), and the integral (mm^2) of the clearance radius capped at `cap`
 * (default no cap).
 */
function axisClearance(
  map: CorridorMap,
  p: Point3,
  d: Point3,
  t0: number,
  t1: number,
  step: number,
  cap = Infinity,
  deepFrom = t0,
) {
  let min = Infinity,
    deepMin = Infinity,
    sum = 0,
    n = 0,
    capped = 0;
  const q = [0, 0, 0];
  // Samples at whole multiples of step from the line's origin (not from t0, which moves with the line's
  // ends), each standing for the stretch halfway to its neighbours, cut at t0 and t1.
  const k0 = Math.ceil(t0 / step),
    k1 = Math.floor(t1 / step),
    kDeep = Math.ceil(deepFrom / step);
  for (let k = k0; k <= k1; k++) {
    const t = k * step;
    q[0] = p[0] + t * d[0];
    q[1] = p[1] + t * d[1];
    q[2] = p[2] + t * d[2];
    const c = sampleTrilinear(map.clearance, q, 0) - map.boundaryOffsetMm;
    if (c < min) min = c;
    if (k >= kDeep && c < deepMin) deepMin = c;
    sum += c;
    const w = Math.min(t1, t + step / 2) - Math.max(t0, t - step / 2);
    capped += (c < cap ? c : cap) * w;
    n++;
  }
  return { min, deepMin, mean: n ? sum / n : -Infinity, capped };
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
  if (analysis.fits && analysis.minClearanceMm !== null) {
    notes.push(
      `${path.name}: a ${path.diameterMm} mm ${path.kind} fits with ` +
        `${analysis.minClearanceMm.toFixed(1)} mm clearance (margin ${analysis.marginMm} mm)`,
    );
  } else {
    // "The widest tool is 0.0 mm" says nothing: when even a wire does not fit, give the axis's clearance
    // radius, so the physician sees how far from fitting it is (and whether a smaller margin would do).
    const radius = (analysis.minClearanceMm ?? -Infinity) + path.diameterMm / 2;
    const widest =
      analysis.maxDiameterMm > 0
        ? `the widest tool that fits this axis is ${analysis.maxDiameterMm.toFixed(1)} mm`
        : `no tool fits this axis with that margin: its clearance radius is ${Math.max(0, radius).toFixed(1)} mm`;
    notes.push(
      `${path.name}: no corridor fits a ${path.diameterMm} mm ${path.kind} ` +
        `with a ${analysis.marginMm} mm margin; ${widest}`,
    );
  }
  if ((path.kind === 'screw' || path.kind === 'guidepin') && analysis.cortexEntry) {
    const order = lengthToOrder(analysis.boneToBoneMm, catalogue ?? steppedCatalogue());
    res.orderLengthMm = order;
    if (midlineX !== undefined) {
      // Thread in bone on each side: the ordered screw from the entry cortex, split at the midline plane.
      const e = analysis.cortexEntry;
      const L = analysis.lengthMm;
      const u = [
        (path.target[0] - path.entry[0]) / L,
        (path.target[1] - path.entry[1]) / L,
        (path.target[2] - path.entry[2]) / L,
      ];
      const tEntry = (e[0] - path.entry[0]) * u[0] + (e[1] - path.entry[1]) * u[1] + (e[2] - path.entry[2]) * u[2];
      const tMid = Math.abs(u[0]) > 1e-9 ? (midlineX - path.entry[0]) / u[0] : tEntry + order / 2;
      const sp = map.structures.spacing;
      const step = Math.min(sp[0], sp[1], sp[2]) / 4;
      let a = 0,
        b = 0;
      for (let t = tEntry + step / 2; t < tEntry + order; t += step) {
        const q: Point3 = [path.entry[0] + t * u[0], path.entry[1] + t * u[1], path.entry[2] + t * u[2]];
        const inBone = codeAt(map, q) === 0;
        if (!inBone) continue;
        if (t < tMid) a += step;
        else b += step;
      }
      res.threadInBoneMm = { entrySide: a, farSide: b };
    }
  }
  return res;
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
  let halfSpan = options.minHalfSpanMm;
  if (halfSpan === undefined) {
    // The farthest bone on a level line through the seed, on each side: the lateral iliac cortices.
    let far0 = 0,
      far1 = 0;
    for (let t = 0; t < 300; t += walkStep) {
      if (codeAt(map, [xm + t, options.seed[1], options.seed[2]]) !== OUTSIDE) far1 = t;
      if (codeAt(map, [xm - t, options.seed[1], options.seed[2]]) !== OUTSIDE) far0 = t;
    }
    if (!(far0 > 0 && far1 > 0))
      throw new PlanError(
        `no bone on either side of the seed (${options.seed.map((x) => x.toFixed(1)).join(', ')})`,
        options.id,
      );
    halfSpan = 0.8 * Math.min(far0, far1);
  }
  const minHalf = halfSpan;
  const y0 = options.seed[1],
    z0 = options.seed[2];
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
    if (!run) return 100 + penalty + sampleTrilinear(map.depth, p, 50);
    // Both ends must reach the ilia: penalize the shortfall of the lateral reach (in x).
    const reachL = run.t1 * d[0],
      reachR = -run.t0 * d[0];
    penalty += Math.max(0, minHalf - reachL) + Math.max(0, minHalf - reachR);
    const prof = axisClearance(map, p, d, run.t0 + cortexZone, run.t1 - cortexZone, h / 2);
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
  const best = multistart(objective, starts, {
    initialStep: [scanStep, scanStep, 0.08, 0.08],
    xTolerance: 0.02,
    fTolerance: 1e-4,
    maxEvaluations: 600,
  });
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
  return finish(
    map,
    path,
    { marginMm: options.marginMm, cortexZoneMm: cortexZone },
    scored.length + best.evaluations,
    options.catalogue,
    xm,
  );
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
  /** The tip lies at most this far (mm) past the posterior cortex. Default ALAR_MAX_LENGTH_MM. */
  maxLengthMm?: number;
  /** Required clearance for the objective's full credit, mm. Default 2. */
  marginMm?: number;
  /** The entry lies this far (mm) outside the posterior cortex. Default 2. */
  overshootMm?: number;
  /**
   * The sacrum's left-right axis (unit, towards the patient's left; SacralSeeds.lateralAxis). Slopes and
   * offsets are measured in the sacrum's frame it defines, so that a sacrum lying rotated on the table is
   * planned as if it lay straight. Default the patient's x axis.
   */
  lateralAxis?: Point3;
}

/** Deepest reach (mm past the posterior cortex) of an automatic alar path: an 11-gauge trocar's working depth. */
export const ALAR_MAX_LENGTH_MM = 45;
/** Clearance radius (mm) beyond which more room along an alar path earns nothing more. */
const ALAR_CLEARANCE_CAP_MM = 10;
/** Weight (per mm^2) of the alar axis's distance from its seed, in mm of weighted length. */
const SEED_PULL = 0.15;
/** mm of length that 1 mm more mean clearance is worth on the central alar objective. */
const CENTRAL_WEIGHT = 3;
/** Cost (mm of length) of each mm the alar axis's clearance falls short of the tool's radius + margin. */
const SHORTFALL_COST = 100;
/** Weight of the alar axis's lateral slope squared: of near-ties, the axis in the ala's sagittal plane. */
const LATERAL_PULL = 20;

/** Automatic alar path (posterior entry along the long axis of one ala). */
export function planAlar(map: CorridorMap, options: AlarOptions): AutoPathResult {
  const tool = options.tool;
  const toolR = tool.diameterMm / 2;
  const margin = options.marginMm ?? 2;
  const stopShort = options.stopShortMm ?? 5;
  const search = options.searchMm ?? 10;
  const minLength = options.minLengthMm ?? 30;
  const maxLength = options.maxLengthMm ?? ALAR_MAX_LENGTH_MM;
  const sp = map.structures.spacing;
  const h = Math.min(sp[0], sp[1], sp[2]);
  const walkStep = h / 2;
  const cortexZone = Math.max(tool.diameterMm, 3);
  const [sx, sy, sz] = options.seed;
  // Axis through (sx + s x0, sy, sz + x1), direction (s x2, -1, x3) with s = +1 on the left (+x) and -1
  // on the right: anterior, x2 mm lateral and x3 mm cranial per mm. Lateral is measured away from the
  // midline on both sides, so that the searches on the two sides of a symmetric sacrum are mirror images
  // of each other, step for step. t grows anteriorly: the run's low end is the posterior (entry) end.
  const s = options.side === 'left' ? 1 : -1;
  // The sacrum's frame: l lateral (to the patient's left), a anterior (patient -y made normal to l), c
  // cranial (normal to both, towards +z).
  const l = options.lateralAxis ? normalize3(...options.lateralAxis) : ([1, 0, 0] as Point3);
  const a = normalize3(l[1] * l[0], l[1] * l[1] - 1, l[1] * l[2]);
  const c0 = [l[1] * a[2] - l[2] * a[1], l[2] * a[0] - l[0] * a[2], l[0] * a[1] - l[1] * a[0]];
  const c: Point3 = c0[2] >= 0 ? normalize3(c0[0], c0[1], c0[2]) : normalize3(-c0[0], -c0[1], -c0[2]);
  const line = (x: number[]) => {
    const ox = s * x[0],
      dx = s * x[2];
    const p: Point3 = [sx + ox * l[0] + x[1] * c[0], sy + ox * l[1] + x[1] * c[1], sz + ox * l[2] + x[1] * c[2]];
    const d = normalize3(
      dx * l[0] + a[0] + x[3] * c[0],
      dx * l[1] + a[1] + x[3] * c[1],
      dx * l[2] + a[2] + x[3] * c[2],
    );
    return { p, d };
  };
  const geometry = (x: number[]) => {
    const { p, d } = line(x);
    // The run of bone itself, not of the envelope: an axis that meets a foramen ends there (and its tip
    // stopShort before it) rather than running on through the foramen to the anterior cortex, which
    // made the objective jump by the whole penalty of a breach with sub-millimetre moves of the axis.
    const run = envelopeRun(map, p, d, walkStep, 300, true);
    if (!run) return null;
    // Entry at the posterior end; the tip stopShort before the anterior end of the bone, or maxLength in.
    const tEnd = Math.min(run.t1 - stopShort, run.t0 + maxLength);
    return { p, d, t0: run.t0, tEnd };
  };
  const need = toolR + margin;

  /** minCranial: the smallest cranial slope (mm per mm anterior) allowed. */
  /**
   * minCranial: the smallest cranial slope (mm per mm anterior) allowed. 'central': length first (up to
   * maxLength), then how central the path runs (its mean clearance, capped: 1 mm more is worth 3 mm of
   * length); in an ala with room for many full-length paths the most central one wins, a unique axis
   * that moves smoothly with the anatomy and the seed. 'clearance': clearance first (full credit up to
   * need + 1 mm), then length, for an ala too narrow for the first to find a path that fits.
   */
  const objectiveFor =
    (minCranial: number, kind: 'central' | 'clearance') =>
    (x: number[]): number => {
      let penalty = 0;
      for (let a = 0; a < 2; a++) penalty += Math.max(0, Math.abs(x[a]) - search);
      // Lateral slope from -0.2 (a little medial) to 0.6: the sacroiliac joint runs laterally as it goes
      // forward, so an axis aimed medially from a lateral entry would start in the ilium and cross it.
      penalty += 50 * Math.max(0, x[2] - 0.6) + 50 * Math.max(0, -0.2 - x[2]);
      penalty += 50 * Math.max(0, x[3] - 3) + 50 * Math.max(0, minCranial - x[3]);
      const g = geometry(x);
      if (!g) return 100 + penalty + sampleTrilinear(map.depth, line(x).p, 50);
      const len = g.tEnd - g.t0;
      if (len < 3 * cortexZone) return 50 + penalty - len;
      // The shortfall (deepMin) is measured past the entry: within `need` of the cortex zone the distance to
      // the posterior surface, a voxel staircase, decides it, and the search would chase its steps.
      const deepFrom = g.t0 + cortexZone + need;
      const prof = axisClearance(map, g.p, g.d, g.t0 + cortexZone, g.tEnd, h / 2, ALAR_CLEARANCE_CAP_MM, deepFrom);
      penalty += Math.max(0, minLength - len);
      if (kind === 'clearance') return -(10 * Math.min(prof.min, need + 1) + 0.05 * len + 0.02 * prof.mean) + penalty;
      penalty += SHORTFALL_COST * Math.max(0, need - prof.deepMin);
      penalty += SEED_PULL * (x[0] * x[0] + x[1] * x[1]) + LATERAL_PULL * x[2] * x[2];
      const meanCapped = prof.capped / Math.max(1e-9, g.tEnd - g.t0 - cortexZone);
      return -(len + CENTRAL_WEIGHT * meanCapped) + penalty;
    };
  const search1 = (minCranial: number, slopes: number[], kind: 'central' | 'clearance') => {
    const objective = objectiveFor(minCranial, kind);
    const starts: number[][] = [];
    // A scan of the crossing point and both slopes; the best few (2 mm apart at least) start local searches.
    const grid = (lo: number, hi: number, st: number) =>
      Array.from({ length: Math.round((hi - lo) / st) + 1 }, (_, i) => lo + i * st);
    const cross = grid(-search, search, 2);
    for (const dx of cross)
      for (const dz of cross)
        for (const lx of grid(-0.2, 0.4, 0.2)) for (const cz of slopes) starts.push([dx, dz, lx, cz]);
    const ranked = starts.map((x) => ({ x, f: objective(x) })).sort((a, b) => a.f - b.f);
    const scored: number[][] = [];
    for (const r of ranked) {
      if (scored.length >= 6) break;
      if (scored.every((q) => Math.hypot(q[0] - r.x[0], q[1] - r.x[1]) > 2 || Math.abs(q[3] - r.x[3]) > 0.3))
        scored.push(r.x);
    }
    const r = multistart(objective, scored, {
      initialStep: [2, 2, 0.1, 0.25],
      xTolerance: 0.02,
      fTolerance: 1e-4,
      maxEvaluations: 500,
    });
    return { runs: r.runs, evaluations: starts.length + r.evaluations };
  };
  const pathOf = (x: number[]): PlanPath | null => {
    const g = geometry(x);
    if (!g) return null;
    const at = (t: number): Point3 => [g.p[0] + t * g.d[0], g.p[1] + t * g.d[1], g.p[2] + t * g.d[2]];
    return {
      id: options.id,
      name: options.name ?? options.id,
      kind: tool.kind,
      diameterMm: tool.diameterMm,
      entry: at(g.t0 - (options.overshootMm ?? 2)),
      target: at(g.tEnd),
    };
  };
  // Of the local searches' answers, one that the exact analysis says fits beats any that does not (the
  // objective's clearance is sampled, the analysis examines every voxel); then the objective decides.
  // Searches in order, until one gives a path that fits: along the ala's long axis (cranial-anterior)
  // for the most central path; with every slope down to perpendicular to a tilted sacrum's dorsal surface
  // (caudal-anterior); then both again with clearance first, for an ala too narrow for the first two.
  const analyzeOptions = { marginMm: margin, cortexZoneMm: cortexZone };
  const LONG_AXIS = [0, 0.3, 0.6, 1, 1.5, 2.2],
    ALL = [-1.2, -0.6, 0, 0.6, 1.2, 2];
  const plans: [number, number[], 'central' | 'clearance'][] = [
    [0, LONG_AXIS, 'central'],
    [-1.5, ALL, 'central'],
    [0, LONG_AXIS, 'clearance'],
    [-1.5, ALL, 'clearance'],
  ];
  type Candidate = { value: number; path: PlanPath; fits: boolean; clearance: number };
  let best: Candidate | null = null;
  let evaluations = 0;
  for (const [minCranial, slopes, kind] of plans) {
    const found = search1(minCranial, slopes, kind);
    evaluations += found.evaluations;
    for (const r of found.runs) {
      const path = pathOf(r.x);
      if (!path) continue;
      const a = analyzePath(map, path, analyzeOptions);
      const c: Candidate = { value: r.value, path, fits: a.fits, clearance: a.minClearanceMm ?? -Infinity };
      // Fits first. Two that fit come from the same search (the loop stops after the first search with
      // one): its objective decides. Of two that do not, the one that clears more.
      const better =
        !best ||
        (c.fits && !best.fits) ||
        (c.fits && best.fits ? c.value < best.value : !c.fits && !best.fits && c.clearance > best.clearance);
      if (better) best = c;
    }
    if (best?.fits) break;
  }
  if (!best) throw new PlanError(`no alar axis through bone was found near the seed`, options.id);
  const path = best.path;
  return finish(map, path, analyzeOptions, evaluations, undefined, undefined);
}
