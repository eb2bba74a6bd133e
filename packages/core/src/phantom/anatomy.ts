/**
 * The analytic pelvis: every structure is a signed-distance-like function in the *design frame*, and a
 * point's tissue is decided by `PelvisModel.classify`, the single definition used both to voxelize and
 * to derive the ground truth. See README.md for the anatomy, the frames and why the corridors are exact.
 *
 * Design frame (mm): LPS axes, origin at the centre of the S1 superior endplate, patient not rotated.
 * Sacral frame (x, s, a): x as in the design frame; s = distance along the sacral centreline from the
 * S1 endplate, caudal positive; a = offset along the centreline's anterior normal. The centreline is
 * straight (tilted by the sacral slope) down to s = ARC_START and then bends anteriorly on a circle, so
 * near the S1 and S2 corridors the sacral frame is a rigid rotation of the design frame (distances exact).
 */
import type { Point3 } from '../math/vec3.js';
import { FemurParts, InnominateParts } from './innominate.js';

export type AnatomyVariant = 'fracture' | 'normal' | 'dysmorphic';

/** Internal tissue classes (finer than the labels: cortex and cancellous of each bone differ in HU). */
export const T = {
  AIR: 0,
  TABLE_SHELL: 1,
  TABLE_CORE: 2,
  SKIN: 3,
  FAT: 4,
  MUSCLE: 5,
  PELVIC: 6,
  BLADDER: 7,
  DISC: 8,
  S_CORTEX: 10,
  S_CANC: 11,
  FRACTURE: 12,
  SCLEROTIC: 13,
  L5_CORTEX: 14,
  L5_CANC: 15,
  IL_L_CORTEX: 16,
  IL_L_CANC: 17,
  IL_R_CORTEX: 18,
  IL_R_CANC: 19,
  SIJ_L: 20,
  SIJ_R: 21,
  FEM_L_CORTEX: 22,
  FEM_L_CANC: 23,
  FEM_R_CORTEX: 24,
  FEM_R_CANC: 25,
  CANAL: 26,
  FORAMEN0: 27, // 27..34: S1L, S1R, S2L, S2R, S3L, S3R, S4L, S4R
  INSTRUMENT: 35,
  CEMENT: 36,
  LEAK: 37,
} as const;
export const TISSUE_COUNT = 38;

export const FORAMEN_NAMES = ['S1L', 'S1R', 'S2L', 'S2R', 'S3L', 'S3R', 'S4L', 'S4R'] as const;
export type ForamenName = (typeof FORAMEN_NAMES)[number];

/** Sacral slope: angle (deg) between the S1 endplate and the horizontal plane. */
export const SACRAL_SLOPE_DEG = 40;
const ARC_START = 55;
const ARC_RADIUS = 95;
/** Lateral face of the sacrum (sacral side of the SI joint), half-width in mm. */
export const SACRUM_HALF_WIDTH = 52;
export const JOINT_WIDTH_MM = 2.5;
/** Flat lateral face of the posterior ilium, where the trans-sacral corridors enter and exit. */
export const ILIUM_LATERAL_X = 80;
/** The ilium's lateral face is the plane |x| = ILIUM_LATERAL_X within this distance (mm) of the corridor axes. */
const PLATEAU_MM = 9;
/** How fast the gluteal surface curves medially beyond the plateau: |x| = 80 - c w^2 (w mm past it). */
const GLUTEAL_CURVATURE = 0.06;
const SACRAL_CORTEX_MM = 2.0;
const HOLE_LINING_MM = 1.0;
const ILIUM_CORTEX_MM = 2.0;
const L5_CORTEX_MM = 1.5;
export const FRACTURE_WIDTH_MM = 1.8;
const SCLEROSIS_MM = 3.0;

/** Anatomical numbers that differ between variants (see README: how the corridors are designed). */
export interface VariantParams {
  /** s of each foramen level S1..S4 (the foramen channels run at constant s). */
  foramenS: [number, number, number, number];
  /** Radius of the anterior (pelvic) and posterior (dorsal) foramen channels, S1..S4. */
  anteriorRadius: [number, number, number, number];
  posteriorRadius: [number, number, number, number];
  /** Design radius of the S1 corridor: the alar top lies this far above its axis. */
  s1RadiusMm: number;
  /** a (anterior offset) of the S1 and S2 corridor axes. */
  s1A: number;
  s2A: number;
}

export function variantParams(variant: AnatomyVariant): VariantParams {
  if (variant === 'dysmorphic') {
    // Upper sacral dysmorphism: large, high S1 foramina and low-lying alae leave a 6 mm S1 window.
    return {
      foramenS: [28, 48, 65, 81],
      anteriorRadius: [5.0, 3.5, 3.0, 2.5],
      posteriorRadius: [3.6, 2.7, 2.4, 2.1],
      s1RadiusMm: 3.0,
      s1A: -1,
      s2A: -1,
    };
  }
  return {
    foramenS: [30, 47.5, 65, 81],
    anteriorRadius: [4.0, 3.5, 3.0, 2.5],
    posteriorRadius: [3.0, 2.7, 2.4, 2.1],
    s1RadiusMm: 6.0,
    s1A: -1,
    s2A: -1,
  };
}

// ---- small analytic helpers -------------------------------------------------------------------------

/** Piecewise-linear profile of s, tabulated every 0.25 mm from s = -80 to 120 for a branch-free lookup. */
class Profile {
  private static readonly S0 = -80;
  private static readonly STEP = 0.25;
  private readonly table: Float64Array;
  constructor(knots: ReadonlyArray<readonly [number, number]>) {
    const n = Math.round((120 - Profile.S0) / Profile.STEP) + 1;
    this.table = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const s = Profile.S0 + i * Profile.STEP;
      let v = knots[0][1];
      if (s >= knots[knots.length - 1][0]) v = knots[knots.length - 1][1];
      else {
        for (let k = 0; k < knots.length - 1; k++) {
          const [s0, v0] = knots[k],
            [s1, v1] = knots[k + 1];
          if (s >= s0 && s <= s1) {
            v = v0 + ((v1 - v0) * (s - s0)) / (s1 - s0);
            break;
          }
        }
      }
      this.table[i] = v;
    }
  }
  at(s: number): number {
    let f = (s - Profile.S0) / Profile.STEP;
    if (f < 0) f = 0;
    const last = this.table.length - 1;
    if (f >= last) return this.table[last];
    const i = Math.floor(f);
    const w = f - i;
    return this.table[i] * (1 - w) + this.table[i + 1] * w;
  }
}

/** A capsule (segment a-b, radius r) in the design frame. */
export interface Capsule {
  a: Point3;
  b: Point3;
  r: number;
  /** b - a and its squared length, cached. */
  d: Point3;
  dd: number;
  /** Axis-aligned bounds (design frame) grown by r. */
  min: Point3;
  max: Point3;
}

export function capsule(a: Point3, b: Point3, r: number): Capsule {
  const d: Point3 = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
  return {
    a,
    b,
    r,
    d,
    dd: d[0] * d[0] + d[1] * d[1] + d[2] * d[2],
    min: [Math.min(a[0], b[0]) - r, Math.min(a[1], b[1]) - r, Math.min(a[2], b[2]) - r],
    max: [Math.max(a[0], b[0]) + r, Math.max(a[1], b[1]) + r, Math.max(a[2], b[2]) + r],
  };
}

/** Exact signed distance to a capsule. */
function capsuleSdf(c: Capsule, x: number, y: number, z: number): number {
  const wx = x - c.a[0],
    wy = y - c.a[1],
    wz = z - c.a[2];
  let t = (wx * c.d[0] + wy * c.d[1] + wz * c.d[2]) / c.dd;
  if (t < 0) t = 0;
  else if (t > 1) t = 1;
  const ex = wx - t * c.d[0],
    ey = wy - t * c.d[1],
    ez = wz - t * c.d[2];
  return Math.sqrt(ex * ex + ey * ey + ez * ez) - c.r;
}

/** Axis-aligned box [minx, miny, minz, maxx, maxy, maxz] (design frame). */
export type Box = Float64Array;

function inBox(b: Box, x: number, y: number, z: number): boolean {
  return x >= b[0] && x <= b[3] && y >= b[1] && y <= b[4] && z >= b[2] && z <= b[5];
}

function boxOf(points: ReadonlyArray<ArrayLike<number>>, margin: number): Box {
  const b = Float64Array.of(Infinity, Infinity, Infinity, -Infinity, -Infinity, -Infinity);
  for (const p of points) {
    for (let c = 0; c < 3; c++) {
      b[c] = Math.min(b[c], p[c] - margin);
      b[c + 3] = Math.max(b[c + 3], p[c] + margin);
    }
  }
  return b;
}

function smin(a: number, b: number, k: number): number {
  const h = Math.max(k - Math.abs(a - b), 0) / k;
  return Math.min(a, b) - (h * h * k) / 4;
}

function smoothstep(e0: number, e1: number, x: number): number {
  const t = Math.min(1, Math.max(0, (x - e0) / (e1 - e0)));
  return t * t * (3 - 2 * t);
}

// ---- the model ----------------------------------------------------------------------------------------

/** A straight cylinder (instrument) in the design frame, from hub to tip. */
export interface Rod {
  hub: Point3;
  tip: Point3;
  radius: number;
  u: Point3;
  length: number;
  min: Point3;
  max: Point3;
}

export function rod(hub: Point3, tip: Point3, radius: number): Rod {
  const d: Point3 = [tip[0] - hub[0], tip[1] - hub[1], tip[2] - hub[2]];
  const length = Math.hypot(d[0], d[1], d[2]);
  return {
    hub,
    tip,
    radius,
    length,
    u: [d[0] / length, d[1] / length, d[2] / length],
    min: [Math.min(hub[0], tip[0]) - radius, Math.min(hub[1], tip[1]) - radius, Math.min(hub[2], tip[2]) - radius],
    max: [Math.max(hub[0], tip[0]) + radius, Math.max(hub[1], tip[1]) + radius, Math.max(hub[2], tip[2]) + radius],
  };
}

export function insideRod(r: Rod, x: number, y: number, z: number): boolean {
  if (x < r.min[0] || x > r.max[0] || y < r.min[1] || y > r.max[1] || z < r.min[2] || z > r.max[2]) return false;
  const wx = x - r.hub[0],
    wy = y - r.hub[1],
    wz = z - r.hub[2];
  const t = wx * r.u[0] + wy * r.u[1] + wz * r.u[2];
  if (t < 0 || t > r.length) return false;
  return wx * wx + wy * wy + wz * wz - t * t <= r.radius * r.radius;
}

/**
 * A deposit: points whose *ellipsoidal radius* about `center` (|M (p - c)|, M = diag(1/semi-axis ratios)
 * in the axes `u`) is at most `rho`, and whose anatomical tissue is in `allowed`.
 */
export interface Deposit {
  center: Point3;
  u: [Point3, Point3, Point3];
  ratios: Point3;
  rho: number;
  allowed: Uint8Array; // indexed by tissue: 1 = may hold this deposit
  tissue: number; // T.CEMENT or T.LEAK
}

export function depositRadius(d: Deposit, x: number, y: number, z: number): number {
  const px = x - d.center[0],
    py = y - d.center[1],
    pz = z - d.center[2];
  const l0 = (px * d.u[0][0] + py * d.u[0][1] + pz * d.u[0][2]) / d.ratios[0];
  const l1 = (px * d.u[1][0] + py * d.u[1][1] + pz * d.u[1][2]) / d.ratios[1];
  const l2 = (px * d.u[2][0] + py * d.u[2][1] + pz * d.u[2][2]) / d.ratios[2];
  return Math.sqrt(l0 * l0 + l1 * l1 + l2 * l2);
}

export class PelvisModel {
  readonly variant: AnatomyVariant;
  readonly params: VariantParams;
  /** Unit vectors of the straight sacral frame in the design frame. */
  readonly t0: Point3;
  readonly n0: Point3;
  readonly alaTopS: number;
  readonly s1AxisS: number;
  readonly s2AxisS: number;
  readonly s2RadiusMm: number;
  /** Foramen channels: index 2*level + side (side 0 = left, +x), each [anterior, posterior]. */
  readonly foramina: [Capsule, Capsule][] = [];
  readonly canalPoints: Point3[] = [];

  private readonly bodyW = new Profile([
    [0, 23],
    [30, 20],
    [52, 16],
    [72, 12.5],
    [89, 9.5],
    [104, 6],
  ]);
  private readonly bodyD = new Profile([
    [0, 15],
    [30, 13.5],
    [52, 10.5],
    [72, 8.5],
    [89, 7],
    [104, 5],
  ]);
  // Below the SI joints the lateral border curves in (a convex taper, not a V) to the apex.
  private readonly wingW = new Profile([
    [0, SACRUM_HALF_WIDTH],
    [50, SACRUM_HALF_WIDTH],
    [54, 51.5],
    [58, 50],
    [63, 47],
    [69, 42],
    [76, 35],
    [84, 26.5],
    [92, 18],
    [100, 10],
  ]);
  private readonly aAnt = new Profile([
    [0, 14],
    [30, 13],
    [52, 10],
    [75, 7],
    [100, 4],
  ]);
  private readonly aPost = new Profile([
    [0, -36],
    [30, -33],
    [52, -28],
    [72, -23],
    [89, -19],
    [100, -15],
  ]);
  private readonly canalW = new Profile([
    [-60, 11],
    [-10, 12],
    [0, 14],
    [30, 12],
    [52, 9],
    [72, 7],
    [90, 5],
    [96, 4],
  ]);
  private readonly canalD = new Profile([
    [-60, 8],
    [-10, 8],
    [0, 7.5],
    [30, 6],
    [52, 4.5],
    [72, 3.5],
    [90, 2.5],
    [96, 2],
  ]);
  private readonly sacralExtras: Capsule[];
  private readonly l5Extras: Capsule[];
  private readonly ilium: { sign: number; blockBox: Box }[];
  /** The smooth parts of the innominate bones and the femora (left side; mirrored for the right). */
  readonly innominate = new InnominateParts();
  readonly femur = new FemurParts();
  /** Bounds (design frame) of everything described in sacral coordinates: sacrum, canal, SI joints, L5, disc. */
  private readonly spineBox: Box;
  /** Bounds of both innominate bones and femora. */
  private readonly pelvisBox: Box;

  /** Overlays for the pins and cement stages (design frame). */
  rods: Rod[] = [];
  deposits: Deposit[] = [];

  constructor(variant: AnatomyVariant) {
    this.variant = variant;
    this.params = variantParams(variant);
    const th = (SACRAL_SLOPE_DEG * Math.PI) / 180;
    this.t0 = [0, Math.sin(th), -Math.cos(th)];
    this.n0 = [0, -Math.cos(th), -Math.sin(th)];
    const p = this.params;
    this.s1AxisS = p.foramenS[0] - p.anteriorRadius[0] - p.s1RadiusMm;
    this.alaTopS = this.s1AxisS - p.s1RadiusMm;
    const s1Bottom = p.foramenS[0] + p.anteriorRadius[0];
    const s2Top = p.foramenS[1] - p.anteriorRadius[1];
    this.s2AxisS = (s1Bottom + s2Top) / 2;
    this.s2RadiusMm = (s2Top - s1Bottom) / 2;

    const anteriorExitX = [24, 20, 17, 14];
    const posteriorExitX = [20, 17, 14, 12];
    for (let level = 0; level < 4; level++) {
      const s = p.foramenS[level];
      const ac = this.canalCenterA(s);
      for (const side of [1, -1]) {
        const start = this.sacralToDesign(side * (this.canalW.at(s) - 2), s, ac);
        const antA = Math.max(this.aAnt.at(s), this.bodyD.at(s)) + 6;
        const ant = capsule(start, this.sacralToDesign(side * anteriorExitX[level], s, antA), p.anteriorRadius[level]);
        const post = capsule(
          start,
          this.sacralToDesign(side * posteriorExitX[level], s, this.aPost.at(s) - 6),
          p.posteriorRadius[level],
        );
        this.foramina.push([ant, post]);
        this.canalPoints.push(start);
      }
    }
    const sd = (x: number, s: number, a: number) => this.sacralToDesign(x, s, a);
    this.sacralExtras = [
      capsule(sd(0, 8, this.aPost.at(8) + 2), sd(0, 80, this.aPost.at(80) + 2), 5), // median sacral crest
      capsule(sd(21, 6, -30), sd(21, -8, -32), 5), // S1 superior articular processes
      capsule(sd(-21, 6, -30), sd(-21, -8, -32), 5),
    ];
    this.l5Extras = [
      capsule(sd(0, -28, -36), sd(0, -20, -60), 5), // spinous process
      capsule(sd(14, -28, -22), sd(42, -24, -18), 6.5), // transverse processes
      capsule(sd(-14, -28, -22), sd(-42, -24, -18), 6.5),
      capsule(sd(13, -22, -37), sd(13, -6, -38), 4.5), // inferior articular processes
      capsule(sd(-13, -22, -37), sd(-13, -6, -38), 4.5),
    ];
    const sacralBox = (x0: number, x1: number, s0: number, s1: number, a0: number, a1: number, margin: number) => {
      const pts: Point3[] = [];
      for (let i = 0; i <= 24; i++) {
        for (let j = 0; j <= 24; j++) {
          const s = s0 + ((s1 - s0) * i) / 24,
            a = a0 + ((a1 - a0) * j) / 24;
          pts.push(this.sacralToDesign(x0, s, a), this.sacralToDesign(x1, s, a));
        }
      }
      // The arc bulges between samples by far less than the margin.
      return boxOf(pts, margin);
    };
    this.spineBox = sacralBox(
      -SACRUM_HALF_WIDTH - JOINT_WIDTH_MM,
      SACRUM_HALF_WIDTH + JOINT_WIDTH_MM,
      -70,
      106,
      -66,
      22,
      2,
    );
    this.ilium = [1, -1].map((sg) => {
      const xb =
        sg > 0
          ? [SACRUM_HALF_WIDTH + JOINT_WIDTH_MM, ILIUM_LATERAL_X]
          : [-ILIUM_LATERAL_X, -SACRUM_HALF_WIDTH - JOINT_WIDTH_MM];
      return { sign: sg, blockBox: sacralBox(xb[0], xb[1], -9, 65, -34, 18, 1) };
    });
    const pb = Float64Array.of(Infinity, Infinity, Infinity, -Infinity, -Infinity, -Infinity);
    const grow = (b: Box) => {
      for (let c = 0; c < 3; c++) {
        pb[c] = Math.min(pb[c], b[c]);
        pb[c + 3] = Math.max(pb[c + 3], b[c + 3]);
      }
    };
    const mirrored = (b: Box) => Float64Array.of(-b[3], b[1], b[2], -b[0], b[4], b[5]);
    for (const il of this.ilium) grow(il.blockBox);
    for (const b of [this.innominate.box, this.femur.box]) {
      grow(b);
      grow(mirrored(b));
    }
    this.pelvisBox = pb;
  }

  // ---- frames -------------------------------------------------------------------------------------------

  /** Sacral (x, s, a) to the design frame. */
  sacralToDesign(x: number, s: number, a: number): Point3 {
    let sp = s,
      ap = a;
    if (s > ARC_START) {
      const phi = (s - ARC_START) / ARC_RADIUS;
      const r = ARC_RADIUS - a;
      sp = ARC_START + r * Math.sin(phi);
      ap = ARC_RADIUS - r * Math.cos(phi);
    }
    return [x, sp * this.t0[1] + ap * this.n0[1], sp * this.t0[2] + ap * this.n0[2]];
  }

  /** s and a of a design point, written to out[0], out[1]. */
  designToSacral(out: Float64Array, y: number, z: number): void {
    const sp = y * this.t0[1] + z * this.t0[2];
    const ap = y * this.n0[1] + z * this.n0[2];
    if (sp <= ARC_START) {
      out[0] = sp;
      out[1] = ap;
      return;
    }
    const dy = sp - ARC_START,
      da = ARC_RADIUS - ap;
    out[0] = ARC_START + ARC_RADIUS * Math.atan2(dy, da);
    out[1] = ARC_RADIUS - Math.sqrt(dy * dy + da * da);
  }

  canalCenterA(s: number): number {
    return -(this.bodyD.at(Math.max(0, s)) + 1.8 + this.canalD.at(s));
  }

  anteriorSurfaceA(s: number): number {
    return this.aAnt.at(s);
  }

  dorsalSurfaceA(s: number): number {
    return this.aPost.at(s);
  }

  /** Top of the lateral masses and dorsal elements at |x|: the alae sit below the promontory. */
  private topS(ax: number): number {
    return 2 + (this.alaTopS - 2) * smoothstep(15, 25, ax);
  }

  // ---- structures (sacral coordinates unless noted) -----------------------------------------------------

  private sacrumSolidSdf(x: number, s: number, a: number, qx: number, qy: number, qz: number): number {
    const ax = Math.abs(x);
    // Vertebral bodies: one rounded box tapering with s.
    const rr = 3;
    const bx = ax - this.bodyW.at(s) + rr,
      ba = Math.abs(a) - this.bodyD.at(s) + rr,
      bs = Math.abs(s - 52) - 52 + rr;
    const px = bx > 0 ? bx : 0,
      pa = ba > 0 ? ba : 0,
      ps = bs > 0 ? bs : 0;
    const body = Math.sqrt(px * px + pa * pa + ps * ps) + Math.min(Math.max(bx, ba, bs), 0) - rr;
    // Lateral masses and dorsal elements: a sharp-edged slab (flat lateral face = the SI joint's sacral side).
    const slab = Math.max(ax - this.wingW.at(s), this.topS(ax) - s, s - 100, this.aPost.at(s) - a, a - this.aAnt.at(s));
    let d = Math.min(body, slab);
    for (const c of this.sacralExtras) {
      if (qx >= c.min[0] && qx <= c.max[0] && qy >= c.min[1] && qy <= c.max[1] && qz >= c.min[2] && qz <= c.max[2]) {
        d = Math.min(d, capsuleSdf(c, qx, qy, qz));
      }
    }
    return d;
  }

  /** Signed distance-like value of the spinal canal (negative inside). */
  private canalSdf(x: number, s: number, a: number): number {
    if (s < -62 || s > 98) return 10;
    const cw = this.canalW.at(s),
      cd = this.canalD.at(s);
    const u = x / cw,
      v = (a - this.canalCenterA(s)) / cd;
    const k = Math.sqrt(u * u + v * v);
    return Math.max((k - 1) * Math.min(cw, cd), -60 - s, s - 96);
  }

  /** Index of the foramen channel containing the design point, or -1; also the distance to the nearest one. */
  private foramenAt(qx: number, qy: number, qz: number, out: Float64Array): number {
    let best = 1e9,
      idx = -1;
    for (let f = 0; f < 8; f++) {
      const pair = this.foramina[f];
      for (let h = 0; h < 2; h++) {
        const c = pair[h];
        if (
          qx < c.min[0] - 2 ||
          qx > c.max[0] + 2 ||
          qy < c.min[1] - 2 ||
          qy > c.max[1] + 2 ||
          qz < c.min[2] - 2 ||
          qz > c.max[2] + 2
        )
          continue;
        const d = capsuleSdf(c, qx, qy, qz);
        if (d < best) {
          best = d;
          if (d <= 0) idx = f;
        }
      }
    }
    out[2] = best;
    return idx;
  }

  private l5SolidSdf(x: number, s: number, a: number, qx: number, qy: number, qz: number): number {
    const rr = 3;
    const bx = Math.abs(x) - 25 + rr,
      ba = Math.abs(a - 0.5) - 15.5 + rr,
      bs = Math.abs(s + 25) - 13.5 + rr;
    const px = bx > 0 ? bx : 0,
      pa = ba > 0 ? ba : 0,
      ps = bs > 0 ? bs : 0;
    let d = Math.sqrt(px * px + pa * pa + ps * ps) + Math.min(Math.max(bx, ba, bs), 0) - rr;
    d = Math.min(d, Math.max(Math.abs(x) - 18, -40 - a, a + 14, -36 - s, s + 16));
    for (const c of this.l5Extras) {
      if (qx >= c.min[0] && qx <= c.max[0] && qy >= c.min[1] && qy <= c.max[1] && qz >= c.min[2] && qz <= c.max[2]) {
        d = Math.min(d, capsuleSdf(c, qx, qy, qz));
      }
    }
    return d;
  }

  /** Signed distance-like value of one innominate bone (side 0 = left); 1e9 when far from it. */
  private iliumSdf(side: number, qx: number, qy: number, qz: number): number {
    const il = this.ilium[side];
    const ax = il.sign * qx;
    let d = 1e9;
    if (inBox(il.blockBox, qx, qy, qz)) {
      // Posterior ilium: flat medial face (SI joint), elliptic in (s, a). Its lateral (gluteal) surface is
      // the flat plane |x| = 80 mm within PLATEAU_MM of the corridor axes (the entries and exits) and curves
      // medially away from them (never below |x| = 62 mm): no flat face runs along the whole bone.
      const tmp = this.tmp;
      this.designToSacral(tmp, qy, qz);
      const es = (tmp[0] - 28) / 36,
        ea = (tmp[1] + 8) / 25;
      const ell = (Math.sqrt(es * es + ea * ea) - 1) * 25;
      const rho = this.corridorPlaneDistance(tmp[0], tmp[1]);
      const w = rho > PLATEAU_MM ? rho - PLATEAU_MM : 0;
      const lens = ILIUM_LATERAL_X - GLUTEAL_CURVATURE * w * w;
      const lateral = -smin(-lens, -62, 6);
      const slope = 2 * GLUTEAL_CURVATURE * w;
      d = Math.max(SACRUM_HALF_WIDTH + JOINT_WIDTH_MM - ax, (ax - lateral) / Math.sqrt(1 + slope * slope), ell);
    }
    // A plain union: no blend may add bone beyond the block's lateral face, where the corridors enter.
    return Math.min(d, this.innominate.sdf(ax, qy, qz));
  }

  /** Distance in the (s, a) plane from a point to the segment joining the S1 and S2 corridor axes. */
  private corridorPlaneDistance(s: number, a: number): number {
    const s0 = this.s1AxisS,
      a0 = this.params.s1A,
      ds = this.s2AxisS - s0,
      da = this.params.s2A - a0;
    let t = ((s - s0) * ds + (a - a0) * da) / (ds * ds + da * da);
    if (t < 0) t = 0;
    else if (t > 1) t = 1;
    return Math.hypot(s - s0 - t * ds, a - a0 - t * da);
  }

  private femurSdf(side: number, qx: number, qy: number, qz: number): number {
    return this.femur.sdf(side === 0 ? qx : -qx, qy, qz);
  }

  private readonly tmp = new Float64Array(3);

  /**
   * Tissue at a design-frame point, anatomy only (no instruments or cement). The order of the tests is
   * the painter's order: the first structure that claims the point wins.
   */
  classifyAnatomy(qx: number, qy: number, qz: number): number {
    const ex = qx / 170,
      ey = (qy + 30) / 115;
    if (ex * ex + ey * ey > 1) return T.AIR;
    if (inBox(this.spineBox, qx, qy, qz)) {
      const tmp = this.tmp;
      this.designToSacral(tmp, qy, qz);
      const s = tmp[0],
        a = tmp[1];
      const x = qx;
      const ax = x < 0 ? -x : x;
      // Spinal canal: a hole in everything, also between L5 and S1.
      const canal = ax < 16 ? this.canalSdf(x, s, a) : 10;
      if (canal <= 0) return T.CANAL;
      if (s > -15 && s < 106 && ax < SACRUM_HALF_WIDTH + 0.5 && a > -44 && a < 22) {
        const solid = this.sacrumSolidSdf(x, s, a, qx, qy, qz);
        if (solid <= 0) {
          const f = this.foramenAt(qx, qy, qz, tmp);
          if (f >= 0) return T.FORAMEN0 + f;
          const holeDist = Math.min(tmp[2], canal);
          if (this.variant === 'fracture' && s > 4 && s < 78) {
            const fd = this.fractureDistance(x, s);
            if (fd <= FRACTURE_WIDTH_MM / 2) return T.FRACTURE;
            if (-solid >= SACRAL_CORTEX_MM && holeDist >= HOLE_LINING_MM && fd <= FRACTURE_WIDTH_MM / 2 + SCLEROSIS_MM)
              return T.SCLEROTIC;
          }
          return -solid < SACRAL_CORTEX_MM || holeDist < HOLE_LINING_MM ? T.S_CORTEX : T.S_CANC;
        }
      }
      // SI joint: the gap between the sacrum's flat lateral face and the ilium, where the sacrum faces it.
      if (ax > SACRUM_HALF_WIDTH && ax <= SACRUM_HALF_WIDTH + JOINT_WIDTH_MM && this.inAuricularArea(s, a)) {
        const xs = (x > 0 ? 1 : -1) * (SACRUM_HALF_WIDTH - 0.2);
        const q = this.sacralToDesign(xs, s, a);
        if (this.sacrumSolidSdf(xs, s, a, q[0], q[1], q[2]) <= 0) return x > 0 ? T.SIJ_L : T.SIJ_R;
      }
      if (s < -5 && s > -70 && ax < 50 && a > -66 && a < 20) {
        const d = this.l5SolidSdf(x, s, a, qx, qy, qz);
        if (d <= 0) return -d < L5_CORTEX_MM || canal < HOLE_LINING_MM ? T.L5_CORTEX : T.L5_CANC;
      }
      if (s > -12.5 && s < 1 && ax < 22 && Math.abs(a - 0.5) < 14) return T.DISC;
    }
    if (inBox(this.pelvisBox, qx, qy, qz)) {
      for (let side = 0; side < 2; side++) {
        const d = this.iliumSdf(side, qx, qy, qz);
        if (d <= 0) {
          const cortex = -d < ILIUM_CORTEX_MM;
          return side === 0 ? (cortex ? T.IL_L_CORTEX : T.IL_L_CANC) : cortex ? T.IL_R_CORTEX : T.IL_R_CANC;
        }
        const df = this.femurSdf(side, qx, qy, qz);
        if (df <= 0) {
          const cortex = -df < ILIUM_CORTEX_MM;
          return side === 0 ? (cortex ? T.FEM_L_CORTEX : T.FEM_L_CANC) : cortex ? T.FEM_R_CORTEX : T.FEM_R_CANC;
        }
      }
    }
    // Soft tissue.
    const ix = qx / 167.5,
      iy = (qy + 30) / 112.5;
    if (ix * ix + iy * iy > 1) return T.SKIN;
    const mx = qx / 150,
      my = (qy + 28) / 94;
    if (mx * mx + my * my > 1) return T.FAT;
    const bx = qx / 40,
      by = (qy + 85) / 30,
      bz = (qz + 88) / 30;
    if (bx * bx + by * by + bz * bz < 1) return T.BLADDER;
    const px = qx / 62,
      py = (qy + 58) / 48,
      pz = (qz + 45) / 75;
    if (px * px + py * py + pz * pz < 1) return T.PELVIC;
    return T.MUSCLE;
  }

  /** Auricular (SI joint) surface of the sacrum, in (s, a). */
  inAuricularArea(s: number, a: number): boolean {
    const u = (s - 28) / 30,
      v = (a + 8) / 22;
    return u * u + v * v <= 1;
  }

  /** Distance (mm) from a sacral point to the fracture plane of its side (fracture variant). */
  fractureDistance(x: number, s: number): number {
    // Zone 1 (alar) vertical clefts, lateral to the foramina, slightly oblique.
    return Math.abs(Math.abs(x) - (34 + 0.06 * (s - 30)));
  }

  /** Tissue including the stage overlays: instruments over everything, cement over sacral bone. */
  classify(qx: number, qy: number, qz: number): number {
    return this.classifyWith(qx, qy, qz, this.rods, this.rods.length, this.deposits, this.deposits.length);
  }

  /** classify() with only the first nr rods and nd deposits of the given lists (culled by the caller). */
  classifyWith(
    qx: number,
    qy: number,
    qz: number,
    rods: readonly Rod[],
    nr: number,
    deposits: readonly Deposit[],
    nd: number,
  ): number {
    for (let i = 0; i < nr; i++) if (insideRod(rods[i], qx, qy, qz)) return T.INSTRUMENT;
    const t = this.classifyAnatomy(qx, qy, qz);
    for (let i = 0; i < nd; i++) {
      const d = deposits[i];
      if (d.allowed[t] && depositRadius(d, qx, qy, qz) <= d.rho) return d.tissue;
    }
    return t;
  }
}
