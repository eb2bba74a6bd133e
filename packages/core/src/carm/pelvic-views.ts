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
 * the midsagittal plane) or from the segmentation (core's sacral seeds); the anterior cortex along the
 * sacrum's anterior direction from each level point, in the segmentation's sacrum labels or, without a
 * segmentation, in the CT (first bone reached, HU at least `cortexHu`). With paths alone the two level
 * points themselves are used: the views then follow the vertebral bodies' axis, not the anterior cortex
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
 * The anterior cortex on the ray from a level point along the anterior direction: the last sample of the
 * first bone reached before a gap of `gapMm` without bone (steps of a quarter of the finest voxel).
 */
function anteriorCortex(
  from: V,
  a: V,
  inBone: (q: V) => boolean,
  step: number,
  gapMm: number,
  what: string,
  source: string,
): V {
  let last = NaN;
  const q: V = [0, 0, 0];
  for (let t = 0; t <= 80; t += step) {
    q[0] = from[0] + t * a[0];
    q[1] = from[1] + t * a[1];
    q[2] = from[2] + t * a[2];
    if (inBone(q)) last = t;
    else if (!Number.isNaN(last) && t - last > gapMm) break;
  }
  if (Number.isNaN(last)) {
    throw new CarmError(
      `no sacral bone within 80 mm anterior of the ${what} level point ` +
        `(${from.map((x) => x.toFixed(1)).join(', ')})`,
      source,
    );
  }
  return [from[0] + last * a[0], from[1] + last * a[1], from[2] + last * a[2]];
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
  const caudal = unit(sub(l2, l1), 'S1 to S2 levels');
  let anterior = cross(n, caudal);
  if (anterior[1] > 0) anterior = scale(anterior, -1); // LPS: anterior is -y

  let cortexFrom: PelvicViews['cortexFrom'] = 'none';
  let a1 = l1,
    a2 = l2;
  if (labels && input.anatomy) {
    const isS = new Uint8Array(65536);
    for (const l of [...input.anatomy.sacrum, ...(input.anatomy.seeds?.s1 ?? [])]) isS[l & 0xffff] = 1;
    // The sacrum's share of the 8 voxels around q, trilinearly weighted: its 0.5 level lies within a fraction
    // of a voxel of the true surface, where the nearest voxel's staircase would tilt a 17 mm chord by degrees.
    const inBone = (q: V) => sacrumFraction(labels, isS, q) >= 0.5;
    const step = Math.min(...labels.spacing) / 8;
    a1 = anteriorCortex(l1, anterior, inBone, step, 3, 'S1', src);
    a2 = anteriorCortex(l2, anterior, inBone, step, 3, 'S2', src);
    cortexFrom = 'labels';
  } else if (input.ct) {
    const ct = input.ct;
    const hu = input.cortexHu ?? ANTERIOR_CORTEX_HU;
    const inBone = (q: V) => sampleTrilinear(ct, q, -1000) >= hu;
    const step = Math.min(...ct.spacing) / 4;
    a1 = anteriorCortex(l1, anterior, inBone, step, 5, 'S1', src);
    a2 = anteriorCortex(l2, anterior, inBone, step, 5, 'S2', src);
    cortexFrom = 'ct';
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
