/**
 * Seed points for the automatic planners, found in a segmentation: the S1 and S2 body seeds, the midline
 * and the alar seeds, from the labelled foramina where there are any, else from the sacrum's shape.
 * Apart from the optimizers (auto.ts) because they read labels, not a corridor map.
 */
import type { Point3 } from '../math/vec3.js';
import type { Volume } from '../volume/volume.js';
import { sampleNearest } from '../volume/sample.js';
import { PlanError } from './model.js';

/** A run [t0, t1] (mm) along a line. */
interface Segment {
  t0: number;
  t1: number;
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
  /**
   * The sacrum's own left-right axis (unit, towards the patient's left): from the foramina, the line
   * from the right ones' mean centroid to the left ones' (mirror images of each other, so this holds
   * however the patient lies); without foramina, the patient's x axis.
   */
  lateralAxis: Point3;
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
    q[0] = p[0] + t * d[0];
    q[1] = p[1] + t * d[1];
    q[2] = p[2] + t * d[2];
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
export function sacralSeedsFromLabels(
  labels: Volume,
  sacrum: number[],
  s1OrOptions?: number[] | SacralSeedOptions,
): SacralSeeds {
  const opts: SacralSeedOptions = Array.isArray(s1OrOptions) ? { s1: s1OrOptions } : (s1OrOptions ?? {});
  const src = labels.meta.source ?? 'labels';
  const isS = new Uint8Array(65536),
    isS1 = new Uint8Array(65536),
    isCanal = new Uint8Array(65536);
  // foramen label -> 1 + its index in opts.foramina
  const foramenIndex = new Uint16Array(65536);
  for (const l of sacrum) isS[l & 0xffff] = 1;
  for (const l of opts.s1 ?? []) isS1[l & 0xffff] = 1;
  for (const l of opts.canal ?? []) isCanal[l & 0xffff] = 1;
  const foramina = [...new Set(opts.foramina ?? [])];
  foramina.forEach((l, i) => {
    foramenIndex[l & 0xffff] = i + 1;
  });
  const fStats: LabelStats[] = foramina.map(() => ({ n: 0, sx: 0, sy: 0, sz: 0, xMin: Infinity, xMax: -Infinity }));
  const [nx, ny, nz] = labels.dims;
  const m = labels.indexToPatient;
  const d = labels.data;
  // Patient z of every sacral voxel (S1 included): axial extent and the S1 centroid.
  let zTop = -Infinity;
  const c1 = [0, 0, 0];
  let n1 = 0,
    zS1Bottom = Infinity;
  let sacrumSumX = 0,
    sacrumN = 0;
  const pos = [0, 0, 0];
  const toP = (i: number, j: number, k: number) => {
    for (let r = 0; r < 3; r++) pos[r] = m[r * 4] * i + m[r * 4 + 1] * j + m[r * 4 + 2] * k + m[r * 4 + 3];
    return pos;
  };
  for (let k = 0, o = 0; k < nz; k++)
    for (let j = 0; j < ny; j++)
      for (let i = 0; i < nx; i++, o++) {
        const v = d[o];
        if (!(v >= 0 && v < 65536)) continue;
        const fi = foramenIndex[v];
        if (fi) {
          const p = toP(i, j, k);
          const st = fStats[fi - 1];
          st.n++;
          st.sx += p[0];
          st.sy += p[1];
          st.sz += p[2];
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
          c1[0] += p[0];
          c1[1] += p[1];
          c1[2] += p[2];
          n1++;
          if (p[2] < zS1Bottom) zS1Bottom = p[2];
        }
      }
  if (!Number.isFinite(zTop)) throw new PlanError(`no sacrum label (${sacrum.join(', ')}) in the segmentation`, src);
  const isSacrum = (q: Point3) => {
    const v = sampleNearest(labels, q, -1);
    return v >= 0 && v < 65536 && (isS[v] === 1 || isS1[v] === 1);
  };
  const fromForamina = foramina.length
    ? seedsFromForamina(labels, foramina, fStats, sacrumSumX / sacrumN, isSacrum, isCanal)
    : null;
  if (fromForamina) return fromForamina;

  const sumSlab = (z0: number, z1: number) => {
    const c = [0, 0, 0];
    let n = 0,
      xMin = Infinity,
      xMax = -Infinity;
    for (let k = 0, o = 0; k < nz; k++)
      for (let j = 0; j < ny; j++)
        for (let i = 0; i < nx; i++, o++) {
          const v = d[o];
          if (!(v >= 0 && v < 65536) || (!isS[v] && !isS1[v])) continue;
          const p = toP(i, j, k);
          if (p[2] < z0 || p[2] > z1) continue;
          c[0] += p[0];
          c[1] += p[1];
          c[2] += p[2];
          n++;
          if (p[0] < xMin) xMin = p[0];
          if (p[0] > xMax) xMax = p[0];
        }
    if (!n)
      throw new PlanError(`the sacrum label has no voxels between z = ${z0.toFixed(1)} and ${z1.toFixed(1)} mm`, src);
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
  return {
    s1: s1Seed,
    s2: s2.c,
    midlineX: xm,
    alarLeft,
    alarRight,
    levelSearchMm: levelSearch(s1Seed, s2.c),
    levelsFrom: n1 > 0 ? 'S1 label' : 'top of the sacrum',
    lateralAxis: [1, 0, 0],
  };
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
  const left: C[] = [],
    right: C[] = [];
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
  const f1 = mid(left[0].c, right[0].c),
    f2 = mid(left[1].c, right[1].c);
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
  const s1 = bodyMiddle(level1),
    s2 = bodyMiddle(level2);
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
  const meanOf = (side: C[]) => [0, 1, 2].map((k) => (side[0].c[k] + side[1].c[k]) / 2);
  const ml = meanOf(left),
    mr = meanOf(right);
  const lr = Math.hypot(ml[0] - mr[0], ml[1] - mr[1], ml[2] - mr[2]);
  const lateralAxis: Point3 = [(ml[0] - mr[0]) / lr, (ml[1] - mr[1]) / lr, (ml[2] - mr[2]) / lr];
  // The anterior direction made normal to the lateral axis: the alar seeds of a sacrum lying rotated on
  // the table are then mirror images of each other, as the alae are.
  const al = a[0] * lateralAxis[0] + a[1] * lateralAxis[1] + a[2] * lateralAxis[2];
  const a2raw = [0, 1, 2].map((k) => a[k] - al * lateralAxis[k]);
  const a2n = Math.hypot(a2raw[0], a2raw[1], a2raw[2]);
  const a2: Point3 = [a2raw[0] / a2n, a2raw[1] / a2n, a2raw[2] / a2n];
  const alar = (sign: 1 | -1, side: C[]): Point3 => {
    const dir: Point3 = [sign * lateralAxis[0], sign * lateralAxis[1], sign * lateralAxis[2]];
    const runs = runsAlong(s2, dir, 150, step, isSacrum).filter((r) => r.t1 > 0);
    let edge = 0;
    for (const r of runs) {
      if (r.t0 > edge + 10) break;
      edge = Math.max(edge, r.t1);
    }
    const inner = foramenEdge(sign, side);
    const off = inner > 0 && inner < edge ? (inner + edge) / 2 : 0.6 * edge;
    const p: Point3 = [s2[0] + off * dir[0], s2[1] + off * dir[1], s2[2] + off * dir[2]];
    const runsA = runsAlong(p, a2, 80, step, isSacrum);
    if (!runsA.length) return p;
    // The run containing (or nearest to) the S2 body's depth.
    const r = runsA.reduce((b, q) => (Math.abs((q.t0 + q.t1) / 2) < Math.abs((b.t0 + b.t1) / 2) ? q : b));
    const t = (r.t0 + r.t1) / 2;
    return [p[0] + t * a2[0], p[1] + t * a2[1], p[2] + t * a2[2]];
  };
  return {
    s1,
    s2,
    midlineX: xm,
    alarLeft: alar(1, left),
    alarRight: alar(-1, right),
    levelSearchMm: levelSearch(s1, s2),
    levelsFrom: 'foramina',
    lateralAxis,
  };
}
