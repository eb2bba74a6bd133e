/**
 * Patient-specific inlet and outlet views of the sacrum (CT-predicted views, after Eastman and Routt).
 *
 * In the sacrum's midsagittal plane the anterior cortex of S1 and of S2 are two points. The inlet view
 * looks along the line through them, so that they superimpose (the central ray runs along the anterior
 * surface of the upper sacrum, from anterior-superior to posterior-inferior); the outlet view looks
 * perpendicular to that line within the midsagittal plane (the sacrum face-on, the foramina as rings).
 * With the source under the table (DICOM angles, docs/conventions.md) the inlet puts the detector toward
 * the head, a CRANIAL (positive secondary) angle, and the outlet toward the feet, a CAUDAL one.
 *
 * Inputs, from best to least: the S1 and S2 levels from the planned S1 and S2 paths (where they cross
 * the midsagittal plane) or from the segmentation (core's sacral seeds); the sacrum's midsagittal section
 * from the segmentation's sacrum labels or, without a segmentation, from the CT (HU at least `cortexHu`,
 * connected to the level points); in it, at each level, the front of the section along the direction
 * perpendicular to the sacrum's long axis: the anterior cortex of S1 and of S2. With paths
 * alone the two level points themselves are used: the views then follow the vertebral bodies' axis, not the anterior cortex
 * (about 5 degrees off on the phantom), and a note says so.
 */
import type { Point3 } from '../math/vec3.js';
import { sacralSeedsFromLabels, type SacralSeedOptions, type SacralSeeds } from '../plan/seeds.js';
import { sampleTrilinear } from '../volume/sample.js';
import type { Volume } from '../volume/volume.js';
import { CarmError, type CarmSystem } from './geometry.js';
import { minimiseOverLimits, viewFromDirection, type CarmView, type PathLike } from './views.js';

export const PELVIC_VIEWS_SCHEMA_VERSION = 1;
/** CT number (HU) from which a sample counts as cortical bone when the anterior cortex is found in a CT. */
export const ANTERIOR_CORTEX_HU = 300;

export interface PelvicViewsInput {
  /** Plan paths: the S1 and S2 ones (id "s1"/"s2", else a name with S1/S2) set the levels. */
  paths?: readonly PathLike[];
  /** Segmentation with a sacrum label, and which labels are what (a LabelAnatomy fits). */
  labels?: Volume;
  anatomy?: { sacrum: readonly number[]; seeds?: SacralSeedOptions };
  /** CT (HU): where the anterior cortex is found when there is no segmentation. */
  ct?: Volume;
  /** Threshold of cortical bone in the CT, HU. Default ANTERIOR_CORTEX_HU. */
  cortexHu?: number;
}

export interface PelvicViews {
  schemaVersion: number;
  inlet: CarmView;
  outlet: CarmView;
  /** Anterior cortex of S1 and of S2 in the midsagittal plane, LPS mm (the points the inlet superimposes). */
  s1AnteriorCortex: Point3;
  s2AnteriorCortex: Point3;
  /** Unit normal of the sacrum's midsagittal plane (toward the patient's left). */
  midsagittalNormal: Point3;
  /** What set the S1/S2 levels and what found the anterior cortex ('none': the level points themselves). */
  levelsFrom: 'paths' | 'labels';
  cortexFrom: 'labels' | 'ct' | 'none';
  notes: string[];
}

type V = [number, number, number];
const sub = (a: ArrayLike<number>, b: ArrayLike<number>): V => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const cross = (a: ArrayLike<number>, b: ArrayLike<number>): V => [
  a[1] * b[2] - a[2] * b[1],
  a[2] * b[0] - a[0] * b[2],
  a[0] * b[1] - a[1] * b[0],
];
const scale = (a: ArrayLike<number>, k: number): V => [a[0] * k, a[1] * k, a[2] * k];
function unit(a: ArrayLike<number>, what: string): V {
  const n = Math.hypot(a[0], a[1], a[2]);
  if (!(n > 1e-9)) throw new CarmError(`${what}: zero-length direction`, 'pelvic views');
  return [a[0] / n, a[1] / n, a[2] / n];
}

/** The plan's S1 or S2 path: by id, else by a name that mentions the level. */
function levelPath(paths: readonly PathLike[], level: 's1' | 's2'): PathLike | undefined {
  const re = level === 's1' ? /\bS1\b/i : /\bS2\b/i;
  return paths.find((p) => p.id.toLowerCase() === level) ?? paths.find((p) => re.test(p.name ?? p.id));
}

/** Where a path's line crosses the plane through m with normal n; null when it runs nearly in the plane. */
function crossPlane(p: PathLike, m: ArrayLike<number>, n: ArrayLike<number>): V | null {
  const d = sub(p.target, p.entry);
  const den = dot(d, n);
  if (Math.abs(den) < 0.3 * Math.hypot(d[0], d[1], d[2])) return null;
  const t = dot(sub(m, p.entry), n) / den;
  return [p.entry[0] + t * d[0], p.entry[1] + t * d[1], p.entry[2] + t * d[2]];
}

/**
 * The sacrum's section in the midsagittal plane, sampled on a square grid (step mm) about the middle of
 * the two level points, kept to the bone connected to them (flood fill from the bone nearest to each level
 * point, so that L5 across its disc, or any other bone in the plane, is left out).
 */
function midsagittalSection(
  inBone: (q: V) => boolean,
  l1: V,
  l2: V,
  n: V,
  step: number,
  source: string,
): { points: V[] } {
  let up: V = [-n[2] * n[0], -n[2] * n[1], 1 - n[2] * n[2]];
  up = unit(up, 'midsagittal plane');
  let ant = cross(n, up);
  if (ant[1] > 0) ant = scale(ant, -1);
  const c = scale([l1[0] + l2[0], l1[1] + l2[1], l1[2] + l2[2]], 0.5);
  const half = 70;
  const N = Math.ceil(half / step);
  const W = 2 * N + 1;
  const at = (i: number, j: number): V => {
    const u = (i - N) * step,
      w = (j - N) * step;
    return [c[0] + u * ant[0] + w * up[0], c[1] + u * ant[1] + w * up[1], c[2] + u * ant[2] + w * up[2]];
  };
  const bone = new Uint8Array(W * W);
  for (let j = 0; j < W; j++) for (let i = 0; i < W; i++) bone[i + W * j] = inBone(at(i, j)) ? 1 : 0;
  const keep = new Uint8Array(W * W);
  const stack: number[] = [];
  for (const [l, name] of [
    [l1, 'S1'],
    [l2, 'S2'],
  ] as const) {
    // The grid cell of the level point, then the nearest bone cell within 15 mm.
    const i0 = N + Math.round(dot(sub(l, c), ant) / step),
      j0 = N + Math.round(dot(sub(l, c), up) / step);
    const r = Math.ceil(15 / step);
    let best = -1,
      bestD = Infinity;
    for (let dj = -r; dj <= r; dj++)
      for (let di = -r; di <= r; di++) {
        const i = i0 + di,
          j = j0 + dj;
        if (i < 0 || j < 0 || i >= W || j >= W || !bone[i + W * j]) continue;
        const d2 = di * di + dj * dj;
        if (d2 < bestD) {
          bestD = d2;
          best = i + W * j;
        }
      }
    if (best < 0) {
      throw new CarmError(
        `no sacral bone within 15 mm of the ${name} level point (${l.map((x) => x.toFixed(1)).join(', ')}) ` +
          'in the midsagittal plane',
        source,
      );
    }
    if (!keep[best]) {
      keep[best] = 1;
      stack.push(best);
    }
  }
  while (stack.length) {
    const k = stack.pop() as number;
    const i = k % W,
      j = (k - i) / W;
    for (const [di, dj] of [
      [1, 0],
      [-1, 0],
      [0, 1],
      [0, -1],
    ]) {
      const a = i + di,
        b = j + dj;
      if (a < 0 || b < 0 || a >= W || b >= W) continue;
      const m = a + W * b;
      if (bone[m] && !keep[m]) {
        keep[m] = 1;
        stack.push(m);
      }
    }
  }
  const points: V[] = [];
  for (let j = 0; j < W; j++) for (let i = 0; i < W; i++) if (keep[i + W * j]) points.push(at(i, j));
  return { points };
}

/**
 * The anterior cortex of S1 and of S2 in the section: at each level, the front of the section (along the
 * anterior direction perpendicular to the sacrum's long axis, the section's principal axis) in a slab
 * LEVEL_SLAB_MM either side of the level. Working in the section rather than on a ray from the level
 * point means a level point outside the bone (a seed in front of a curved sacrum) or a level line that
 * runs across the sacrum (an S2 path placed far back) still finds the anterior cortex.
 */
const LEVEL_SLAB_MM = 1;
/** Samples within this of a slab's front are averaged: the boundary's voxel ripple cancels. */
const FRONT_MM = 0.3;

function anteriorCortexPoints(points: V[], l1: V, l2: V, n: V, source: string): { a1: V; a2: V } {
  // Principal axis of the section (the sacrum's long axis), oriented S1 -> S2.
  const m0 = [0, 0, 0];
  for (const p of points) for (let r = 0; r < 3; r++) m0[r] += p[r] / points.length;
  const C = [0, 0, 0, 0, 0, 0, 0, 0, 0];
  for (const p of points) {
    const d = sub(p, m0);
    for (let r = 0; r < 3; r++) for (let q = 0; q < 3; q++) C[3 * r + q] += d[r] * d[q];
  }
  let axis: V = unit(sub(l2, l1), 'S1 to S2 levels');
  for (let it = 0; it < 100; it++) {
    const next: V = [0, 1, 2].map((r) => C[3 * r] * axis[0] + C[3 * r + 1] * axis[1] + C[3 * r + 2] * axis[2]) as V;
    axis = unit(next, 'sacral section');
  }
  if (dot(axis, sub(l2, l1)) < 0) axis = scale(axis, -1);
  let m = cross(n, axis);
  if (m[1] > 0) m = scale(m, -1); // anterior: -y
  const q1 = dot(axis, l1),
    q2 = dot(axis, l2);
  if (!(q2 - q1 > 4)) throw new CarmError('the S1 and S2 levels lie less than 4 mm apart along the sacrum', source);
  const front = (q: number, name: string): V => {
    const slab = points.filter((p) => Math.abs(dot(axis, p) - q) <= LEVEL_SLAB_MM);
    if (!slab.length) throw new CarmError(`no sacral bone at the ${name} level in the midsagittal plane`, source);
    let fmax = -Infinity;
    for (const p of slab) fmax = Math.max(fmax, dot(m, p));
    const c: V = [0, 0, 0];
    let k = 0;
    for (const p of slab)
      if (dot(m, p) >= fmax - FRONT_MM) {
        c[0] += p[0];
        c[1] += p[1];
        c[2] += p[2];
        k++;
      }
    return [c[0] / k, c[1] / k, c[2] / k];
  };
  return { a1: front(q1, 'S1'), a2: front(q2, 'S2') };
}

/** Trilinear interpolation of the indicator "label is one of isS" at an LPS point (0 outside the grid). */
function sacrumFraction(labels: Volume, isS: Uint8Array, p: V): number {
  const m = labels.patientToIndex;
  const fi = m[0] * p[0] + m[1] * p[1] + m[2] * p[2] + m[3],
    fj = m[4] * p[0] + m[5] * p[1] + m[6] * p[2] + m[7],
    fk = m[8] * p[0] + m[9] * p[1] + m[10] * p[2] + m[11];
  const [nx, ny, nz] = labels.dims;
  const i0 = Math.floor(fi),
    j0 = Math.floor(fj),
    k0 = Math.floor(fk);
  const d = labels.data;
  let f = 0;
  for (let c = 0; c < 8; c++) {
    const i = i0 + (c & 1),
      j = j0 + ((c >> 1) & 1),
      k = k0 + ((c >> 2) & 1);
    if (i < 0 || j < 0 || k < 0 || i >= nx || j >= ny || k >= nz) continue;
    const v = d[i + nx * (j + ny * k)];
    if (!(v >= 0 && v < 65536 && isS[v] === 1)) continue;
    f +=
      (c & 1 ? fi - i0 : 1 - fi + i0) * ((c >> 1) & 1 ? fj - j0 : 1 - fj + j0) * ((c >> 2) & 1 ? fk - k0 : 1 - fk + k0);
  }
  return f;
}

/** A view along +-d: d itself when reachable, else -d, else the reachable angles nearest to the line. */
function lineView(system: CarmSystem, d: V, iso: V): CarmView {
  const preferred = viewFromDirection(system, d, iso);
  if (preferred.reachable) return preferred;
  const flipped = viewFromDirection(system, scale(d, -1), iso);
  if (flipped.reachable) return flipped;
  const alt = minimiseOverLimits(system, (x) => Math.acos(Math.min(1, Math.abs(dot(x, d)))) / (Math.PI / 180));
  return {
    ...preferred,
    alternative: { primaryDeg: alt.primaryDeg, secondaryDeg: alt.secondaryDeg, errorDeg: alt.cost },
  };
}

/**
 * Inlet and outlet views of the sacrum. Needs the S1 and S2 levels (S1 and S2 paths, or a segmentation
 * with a sacrum label); throws a CarmError saying what is missing otherwise.
 */
export function pelvicViews(input: PelvicViewsInput, system: CarmSystem): PelvicViews {
  const notes: string[] = [];
  const paths = input.paths ?? [];
  const p1 = levelPath(paths, 's1'),
    p2 = levelPath(paths, 's2');
  const labels = input.labels && input.anatomy ? input.labels : undefined;
  const src = labels?.meta.source ?? input.ct?.meta.source ?? 'plan';
  if (input.labels && !input.anatomy) notes.push('labels given without their anatomy: not used');
  if (!(p1 && p2) && !labels) {
    throw new CarmError(
      'inlet and outlet views need the S1 and S2 levels: plan S1 and S2 paths or give a segmentation of the sacrum',
      src,
    );
  }
  const seeds: SacralSeeds | null =
    labels && input.anatomy ? sacralSeedsFromLabels(labels, [...input.anatomy.sacrum], input.anatomy.seeds) : null;

  // The midsagittal plane: its normal from the foramina (mirror images of each other), else the S1 path's
  // direction (a trans-sacral S1 path spans the sacrum from joint to joint, and the planner centres it;
  // the shorter S2 corridor lets its path tilt: 2.9 degrees on the phantom), else the patient's x axis.
  let n: V = [1, 0, 0];
  if (seeds && seeds.levelsFrom === 'foramina') n = unit(seeds.lateralAxis, 'lateral axis');
  else {
    // Only a mostly left-right path is a sagittal normal (an iliosacral screw may run obliquely).
    const lr = [p1, p2]
      .filter((p): p is PathLike => !!p)
      .map((p) => unit(sub(p.target, p.entry), p.id))
      .find((d) => Math.abs(d[0]) > 0.95);
    if (lr) n = lr;
  }
  if (n[0] < 0) n = scale(n, -1);
  // A point of the plane: the S1 body seed, else the S1 path's middle (a trans-sacral path's midline).
  let mid: V;
  if (seeds) mid = [seeds.s1[0], seeds.s1[1], seeds.s1[2]];
  else if (p1) mid = scale([p1.entry[0] + p1.target[0], p1.entry[1] + p1.target[1], p1.entry[2] + p1.target[2]], 0.5);
  else throw new CarmError('no S1 path and no labels to place the midsagittal plane', src);
  const onPlane = (q: ArrayLike<number>): V => {
    const w = dot(sub(q, mid), n);
    return [q[0] - w * n[0], q[1] - w * n[1], q[2] - w * n[2]];
  };

  // Level points: the paths where they cross the plane, else the segmentation's body seeds.
  let levelsFrom: PelvicViews['levelsFrom'] = 'labels';
  let l1: V | null = null,
    l2: V | null = null;
  if (p1 && p2) {
    l1 = crossPlane(p1, mid, n);
    l2 = crossPlane(p2, mid, n);
    if (l1 && l2) levelsFrom = 'paths';
    else {
      notes.push('the S1/S2 paths do not cross the midsagittal plane: levels from the segmentation');
      l1 = l2 = null;
    }
  }
  if (!l1 || !l2) {
    if (!seeds) throw new CarmError('the S1/S2 paths do not cross the midsagittal plane and there are no labels', src);
    l1 = onPlane(seeds.s1);
    l2 = onPlane(seeds.s2);
  }

  let cortexFrom: PelvicViews['cortexFrom'] = 'none';
  let a1 = l1,
    a2 = l2;
  let inBone: ((q: V) => boolean) | null = null;
  let step = 0.25;
  if (labels && input.anatomy) {
    const isS = new Uint8Array(65536);
    for (const l of [...input.anatomy.sacrum, ...(input.anatomy.seeds?.s1 ?? [])]) isS[l & 0xffff] = 1;
    // The sacrum's share of the 8 voxels around q, trilinearly weighted: its 0.5 level lies within a fraction
    // of a voxel of the true surface, where the nearest voxel's staircase would tilt a 10 mm chord by degrees.
    inBone = (q: V) => sacrumFraction(labels, isS, q) >= 0.5;
    step = Math.min(0.25, Math.min(...labels.spacing) / 4);
    cortexFrom = 'labels';
  } else if (input.ct) {
    const ct = input.ct;
    const hu = input.cortexHu ?? ANTERIOR_CORTEX_HU;
    inBone = (q: V) => sampleTrilinear(ct, q, -1000) >= hu;
    step = Math.min(0.25, Math.min(...ct.spacing) / 4);
    cortexFrom = 'ct';
  }
  if (inBone) {
    const { points } = midsagittalSection(inBone, l1, l2, n, step, src);
    ({ a1, a2 } = anteriorCortexPoints(points, l1, l2, n, src));
  } else {
    notes.push(
      'no segmentation or CT: the views follow the line through the S1 and S2 paths (the vertebral bodies), ' +
        'not the anterior cortex; give the labels or the CT for the CT-predicted views',
    );
  }

  // Inlet: along A2 -> A1 (detector toward S1: anterior and cranial). Outlet: perpendicular in the plane,
  // detector anterior (and caudal).
  const inletDir = unit(sub(a1, a2), 'S1/S2 anterior cortex');
  let outletDir = unit(cross(n, inletDir), 'outlet');
  if (outletDir[1] > 0) outletDir = scale(outletDir, -1);
  const iso = scale([a1[0] + a2[0], a1[1] + a2[1], a1[2] + a2[2]], 0.5);
  return {
    schemaVersion: PELVIC_VIEWS_SCHEMA_VERSION,
    inlet: lineView(system, inletDir, iso),
    outlet: lineView(system, outletDir, iso),
    s1AnteriorCortex: a1,
    s2AnteriorCortex: a2,
    midsagittalNormal: n,
    levelsFrom,
    cortexFrom,
    notes,
  };
}
