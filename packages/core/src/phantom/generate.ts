/**
 * generatePhantom: the synthetic pelvis as a CT volume, a label volume and its ground truth.
 * Pure and deterministic: the same options give the same voxels and the same truth, bit for bit.
 */
import { UsageError } from '../errors.js';
import { mat4ToRows } from '../math/mat4.js';
import type { Point3 } from '../math/vec3.js';
import { createVolume, indexToPatientFrom, voxelCount, type Volume } from '../volume/volume.js';
import {
  FORAMEN_NAMES, FRACTURE_WIDTH_MM, ILIUM_LATERAL_X, PelvisModel, SACRAL_SLOPE_DEG, T, TISSUE_COUNT,
  depositRadius, insideRod, rod, type AnatomyVariant, type Deposit, type ForamenName, type Rod,
} from './anatomy.js';
import { corridorSafeRadius } from './corridor.js';
import { addNoise } from './random.js';
import { Rng } from '../math/random.js';
import {
  PHANTOM_ANATOMIES, PHANTOM_DEFAULT_VOXEL_MM, PHANTOM_STAGES, PHANTOM_TRUTH_SCHEMA_VERSION,
  type CementTruth, type CorridorTruth, type ForamenTruth, type InstrumentTruth, type LeakTruth,
  type PhantomOptions, type PhantomProgress, type PhantomStage, type PhantomTruth,
} from './types.js';

export interface GeneratedPhantom {
  ct: Volume<Int16Array>;
  labels: Volume<Uint8Array>;
  truth: PhantomTruth;
}

/** Label ids of the label volume (uint8). Bone = cortex, cancellous, fracture, L5, ilia, femora. */
export const PHANTOM_LABELS = {
  air: 0, table: 1, skin: 2, fat: 3, muscle: 4, viscera: 5, disc: 6, bladder: 7,
  cortex: 10, cancellous: 11, fracture: 12, L5: 13, iliumLeft: 14, iliumRight: 15,
  sacroiliacJointLeft: 16, sacroiliacJointRight: 17, femurLeft: 18, femurRight: 19,
  canal: 20, S1L: 21, S1R: 22, S2L: 23, S2R: 24, S3L: 25, S3R: 26, S4L: 27, S4R: 28,
  instrument: 30, cement: 31, cementLeak: 32,
} as const;

const L = PHANTOM_LABELS;
const LABEL_OF_TISSUE = new Uint8Array(TISSUE_COUNT);
{
  const m: [number, number][] = [
    [T.AIR, L.air], [T.TABLE_SHELL, L.table], [T.TABLE_CORE, L.table], [T.SKIN, L.skin], [T.FAT, L.fat],
    [T.MUSCLE, L.muscle], [T.PELVIC, L.viscera], [T.BLADDER, L.bladder], [T.DISC, L.disc],
    [T.S_CORTEX, L.cortex], [T.S_CANC, L.cancellous], [T.FRACTURE, L.fracture], [T.SCLEROTIC, L.cancellous],
    [T.L5_CORTEX, L.L5], [T.L5_CANC, L.L5], [T.IL_L_CORTEX, L.iliumLeft], [T.IL_L_CANC, L.iliumLeft],
    [T.IL_R_CORTEX, L.iliumRight], [T.IL_R_CANC, L.iliumRight], [T.SIJ_L, L.sacroiliacJointLeft],
    [T.SIJ_R, L.sacroiliacJointRight], [T.FEM_L_CORTEX, L.femurLeft], [T.FEM_L_CANC, L.femurLeft],
    [T.FEM_R_CORTEX, L.femurRight], [T.FEM_R_CANC, L.femurRight], [T.CANAL, L.canal],
    [T.INSTRUMENT, L.instrument], [T.CEMENT, L.cement], [T.LEAK, L.cementLeak],
  ];
  for (const [t, l] of m) LABEL_OF_TISSUE[t] = l;
  for (let f = 0; f < 8; f++) LABEL_OF_TISSUE[T.FORAMEN0 + f] = L.S1L + f;
}

const BONE_LABELS = [L.cortex, L.cancellous, L.fracture, L.L5, L.iliumLeft, L.iliumRight, L.femurLeft, L.femurRight];
const CORRIDOR_LABELS = [...BONE_LABELS, L.sacroiliacJointLeft, L.sacroiliacJointRight];

/**
 * Nominal HU per tissue, before blur. The sacral cortex is 2 mm thick, so blur and partial volume pull
 * its mean down by about 25%: nominal 1550-1650 gives measured means of about 1100-1300 HU. The
 * fracture case is demineralized (post-radiation insufficiency).
 */
function nominalHu(variant: AnatomyVariant): Float32Array {
  const demin = variant === 'fracture';
  const hu = new Float32Array(TISSUE_COUNT);
  const set: [number, number][] = [
    [T.AIR, -1000], [T.TABLE_SHELL, 250], [T.TABLE_CORE, -880], [T.SKIN, 25], [T.FAT, -100], [T.MUSCLE, 45],
    [T.PELVIC, -35], [T.BLADDER, 8], [T.DISC, 85], [T.CANAL, 18], [T.SIJ_L, 60], [T.SIJ_R, 60],
    [T.S_CORTEX, demin ? 1550 : 1600], [T.S_CANC, demin ? 45 : 225], [T.FRACTURE, 30], [T.SCLEROTIC, 95],
    [T.L5_CORTEX, demin ? 1350 : 1450], [T.L5_CANC, demin ? 110 : 210],
    [T.IL_L_CORTEX, demin ? 1400 : 1500], [T.IL_L_CANC, demin ? 120 : 240],
    [T.IL_R_CORTEX, demin ? 1400 : 1500], [T.IL_R_CANC, demin ? 120 : 240],
    [T.FEM_L_CORTEX, 1550], [T.FEM_L_CANC, 260], [T.FEM_R_CORTEX, 1550], [T.FEM_R_CANC, 260],
    [T.INSTRUMENT, 3000], [T.CEMENT, 2400], [T.LEAK, 2400],
  ];
  for (const [t, v] of set) hu[t] = v;
  for (let f = 0; f < 8; f++) hu[T.FORAMEN0 + f] = -20;
  return hu;
}

const TISSUE_NAMES: Record<number, string> = {
  [T.AIR]: 'air', [T.TABLE_SHELL]: 'table shell', [T.TABLE_CORE]: 'table core', [T.SKIN]: 'skin', [T.FAT]: 'fat',
  [T.MUSCLE]: 'muscle', [T.PELVIC]: 'pelvic viscera', [T.BLADDER]: 'bladder', [T.DISC]: 'disc',
  [T.S_CORTEX]: 'sacral cortex', [T.S_CANC]: 'sacral cancellous', [T.FRACTURE]: 'fracture cleft',
  [T.SCLEROTIC]: 'sclerotic margin', [T.L5_CORTEX]: 'L5 cortex', [T.L5_CANC]: 'L5 cancellous',
  [T.IL_L_CORTEX]: 'ilium cortex', [T.IL_L_CANC]: 'ilium cancellous', [T.SIJ_L]: 'sacroiliac joint',
  [T.FEM_L_CORTEX]: 'femur cortex', [T.FEM_L_CANC]: 'femur cancellous', [T.CANAL]: 'canal',
  [T.INSTRUMENT]: 'steel', [T.CEMENT]: 'cement',
};

/** The patient lies slightly rotated on the table, so no corridor runs along a grid axis. */
const ROT_Z_DEG = 2.0;
const ROT_Y_DEG = 1.0;
/** Where the design frame's origin (S1 endplate centre) lies in LPS mm: a plausible table position. */
const OFFSET: Point3 = [1.5, 4.0, -168.0];
/** Field of view about OFFSET (mm): both ilia, L5 to the coccyx, the table top. */
const FOV_MIN: Point3 = [-180, -150, -120];
const FOV_MAX: Point3 = [180, 100, 66];
const TABLE_TOP_Y = 87;

function rotation(): number[] {
  const a = (ROT_Z_DEG * Math.PI) / 180, b = (ROT_Y_DEG * Math.PI) / 180;
  const ca = Math.cos(a), sa = Math.sin(a), cb = Math.cos(b), sb = Math.sin(b);
  // Rz(a) * Ry(b), row-major 3x3.
  return [ca * cb, -sa, ca * sb, sa * cb, ca, sa * sb, -sb, 0, cb];
}

const round4 = (v: number) => Math.round(v * 1e4) / 1e4;
const r4 = (p: ArrayLike<number>): Point3 => [round4(p[0]), round4(p[1]), round4(p[2])];

interface Resolved {
  anatomy: AnatomyVariant;
  stage: PhantomStage;
  voxelMm: number;
  seed: number;
  cementMl: [number, number];
  leak: ForamenName | undefined;
  leakMl: number;
  noiseSdHu: number;
  blurSigmaMm: number;
}

function resolve(o: PhantomOptions): Resolved {
  const src = 'phantom options';
  const anatomy = o.anatomy ?? 'fracture';
  if (!PHANTOM_ANATOMIES.includes(anatomy)) throw new UsageError(`anatomy "${anatomy}" is not one of ${PHANTOM_ANATOMIES.join(', ')}`, src);
  const stage = o.stage ?? 'plan';
  if (!PHANTOM_STAGES.includes(stage)) throw new UsageError(`stage "${stage}" is not one of ${PHANTOM_STAGES.join(', ')}`, src);
  const voxelMm = o.voxelMm ?? PHANTOM_DEFAULT_VOXEL_MM;
  if (!(voxelMm >= 0.3 && voxelMm <= 5)) throw new UsageError(`voxel size ${voxelMm} mm is outside 0.3 to 5 mm`, src);
  const seed = o.seed ?? 1;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new UsageError(`seed ${seed} is not an integer from 0 to 4294967295`, src);
  const cementMl: [number, number] = [o.cementMl?.[0] ?? 4, o.cementMl?.[1] ?? 4];
  for (const v of cementMl) if (!(v >= 0 && v <= 12)) throw new UsageError(`cement volume ${v} ml is outside 0 to 12 ml`, src);
  const leak = o.leak;
  if (leak !== undefined && !FORAMEN_NAMES.includes(leak)) throw new UsageError(`leak foramen "${leak}" is not one of ${FORAMEN_NAMES.join(', ')}`, src);
  if (leak !== undefined && stage !== 'cement') throw new UsageError('a cement leak needs stage "cement"', src);
  const leakMl = o.leakMl ?? 0.2;
  if (!(leakMl > 0 && leakMl <= 1)) throw new UsageError(`leak volume ${leakMl} ml is outside (0, 1] ml`, src);
  const noiseSdHu = o.noise === false ? 0 : (o.noiseSdHu ?? 20);
  if (!(noiseSdHu >= 0 && noiseSdHu <= 500)) throw new UsageError(`noise ${noiseSdHu} HU is outside 0 to 500`, src);
  const blurSigmaMm = o.blur === false ? 0 : (o.blurSigmaMm ?? 0.6);
  if (!(blurSigmaMm >= 0 && blurSigmaMm <= 5)) throw new UsageError(`blur ${blurSigmaMm} mm is outside 0 to 5 mm`, src);
  return { anatomy, stage, voxelMm, seed, cementMl, leak, leakMl, noiseSdHu, blurSigmaMm };
}

function cancelled(signal: AbortSignal | undefined) {
  if (signal?.aborted) throw new UsageError('phantom generation cancelled', 'phantom');
}

/** Shortest distance between two segments, sampled finely enough for a clearance check (0.25 mm). */
function segmentDistance(a: Rod, b: Rod): number {
  let best = Infinity;
  const n = Math.ceil(a.length / 0.25);
  for (let i = 0; i <= n; i++) {
    const t = (a.length * i) / n;
    const px = a.hub[0] + t * a.u[0] - b.hub[0], py = a.hub[1] + t * a.u[1] - b.hub[1], pz = a.hub[2] + t * a.u[2] - b.hub[2];
    const s = Math.min(b.length, Math.max(0, px * b.u[0] + py * b.u[1] + pz * b.u[2]));
    best = Math.min(best, Math.hypot(px - s * b.u[0], py - s * b.u[1], pz - s * b.u[2]));
  }
  return best;
}

/** Rotate unit vector u by angle (rad) toward the perpendicular unit vector w. */
function tilt(u: Point3, w: Point3, angle: number): Point3 {
  const c = Math.cos(angle), s = Math.sin(angle);
  return [c * u[0] + s * w[0], c * u[1] + s * w[1], c * u[2] + s * w[2]];
}

interface PlannedRod {
  name: string;
  kind: 'guidepin' | 'trocar';
  diameterMm: number;
  idealEntry: Point3;
  idealTarget: Point3;
  hubOutMm: number;
  offsetRange: [number, number];
  angleRange: [number, number];
}

/**
 * Size a deposit so that its volume is `targetMm3`: points on a fine grid (h mm) that the deposit may
 * occupy are ranked by ellipsoidal radius, and rho is set between the n-th and (n+1)-th, n = target/h^3.
 */
function sizeDeposit(model: PelvisModel, d: Deposit, targetMm3: number, h: number, source: string): { rho: number; quadMm3: number } {
  const n = Math.round(targetMm3 / (h * h * h));
  const ratioProduct = d.ratios[0] * d.ratios[1] * d.ratios[2];
  let rhoMax = 1.35 * Math.cbrt(targetMm3 / ((4 / 3) * Math.PI * ratioProduct));
  for (let attempt = 0; attempt < 4; attempt++, rhoMax *= 1.6) {
    const ext = rhoMax * Math.max(...d.ratios);
    const m = Math.ceil(ext / h);
    const radii: number[] = [];
    for (let k = -m; k <= m; k++) {
      for (let j = -m; j <= m; j++) {
        for (let i = -m; i <= m; i++) {
          const x = d.center[0] + (i + 0.5) * h, y = d.center[1] + (j + 0.5) * h, z = d.center[2] + (k + 0.5) * h;
          const rho = depositRadius(d, x, y, z);
          if (rho > rhoMax) continue;
          let inRod = false;
          for (const r of model.rods) if (insideRod(r, x, y, z)) inRod = true;
          if (inRod || !d.allowed[model.classifyAnatomy(x, y, z)]) continue;
          radii.push(rho);
        }
      }
    }
    if (radii.length > n) {
      radii.sort((a, b) => a - b);
      return { rho: (radii[n - 1] + radii[n]) / 2, quadMm3: n * h * h * h };
    }
  }
  throw new UsageError(`cannot place ${(targetMm3 / 1000).toFixed(2)} ml there: not enough room`, source);
}

export function generatePhantom(
  options: PhantomOptions = {},
  onProgress?: (p: PhantomProgress) => void,
  signal?: AbortSignal,
): GeneratedPhantom {
  const o = resolve(options);
  const model = new PelvisModel(o.anatomy);
  const Rm = rotation();
  const toWorld = (q: ArrayLike<number>): Point3 => [
    Rm[0] * q[0] + Rm[1] * q[1] + Rm[2] * q[2] + OFFSET[0],
    Rm[3] * q[0] + Rm[4] * q[1] + Rm[5] * q[2] + OFFSET[1],
    Rm[6] * q[0] + Rm[7] * q[1] + Rm[8] * q[2] + OFFSET[2],
  ];
  const dirToWorld = (v: ArrayLike<number>): Point3 => [
    Rm[0] * v[0] + Rm[1] * v[1] + Rm[2] * v[2],
    Rm[3] * v[0] + Rm[4] * v[1] + Rm[5] * v[2],
    Rm[6] * v[0] + Rm[7] * v[1] + Rm[8] * v[2],
  ];
  const sd = (x: number, s: number, a: number) => model.sacralToDesign(x, s, a);
  onProgress?.({ phase: 'anatomy', fraction: 1 });

  // ---- corridors (anatomy only, so the same in every stage) ------------------------------------------
  const corridorTissue = new Uint8Array(TISSUE_COUNT);
  for (let t = 0; t < TISSUE_COUNT; t++) corridorTissue[t] = (CORRIDOR_LABELS as number[]).includes(LABEL_OF_TISSUE[t]) ? 1 : 0;
  const corridorDesign = {
    S1: [sd(-ILIUM_LATERAL_X, model.s1AxisS, model.params.s1A), sd(ILIUM_LATERAL_X, model.s1AxisS, model.params.s1A)],
    S2: [sd(-ILIUM_LATERAL_X, model.s2AxisS, model.params.s2A), sd(ILIUM_LATERAL_X, model.s2AxisS, model.params.s2A)],
  };
  const corridors = {} as { S1: CorridorTruth; S2: CorridorTruth };
  for (const name of ['S1', 'S2'] as const) {
    const [en, ex] = corridorDesign[name];
    const res = corridorSafeRadius(model, en, ex, corridorTissue);
    corridors[name] = {
      entry: r4(toWorld(en)),
      exit: r4(toWorld(ex)),
      safeRadiusMm: round4(res.radiusMm),
      lengthMm: round4(Math.hypot(ex[0] - en[0], ex[1] - en[1], ex[2] - en[2])),
      narrowestAt: r4(toWorld(res.axisPoint)),
      limitedBy: { point: r4(toWorld(res.limitPoint)), label: labelName(LABEL_OF_TISSUE[res.limitTissue]) },
    };
    cancelled(signal);
  }
  onProgress?.({ phase: 'truth', fraction: 0.5 });

  // ---- foramina -------------------------------------------------------------------------------------
  const foramina: ForamenTruth[] = FORAMEN_NAMES.map((name, f) => {
    const [ant, post] = model.foramina[f];
    const opening = (c: typeof ant): Point3 => {
      // Last point of the channel axis still inside the foramen (inside bone), found by bisection.
      const at = (t: number): Point3 => [c.a[0] + t * c.d[0], c.a[1] + t * c.d[1], c.a[2] + t * c.d[2]];
      let lo = 0, hi = 1;
      for (let t = 0; t <= 1; t += 0.005) {
        if (model.classifyAnatomy(...at(t)) === T.FORAMEN0 + f) lo = t;
      }
      hi = Math.min(1, lo + 0.005);
      for (let it = 0; it < 40; it++) {
        const m = (lo + hi) / 2;
        if (model.classifyAnatomy(...at(m)) === T.FORAMEN0 + f) lo = m;
        else hi = m;
      }
      return at((lo + hi) / 2);
    };
    return {
      name, center: r4(toWorld(opening(ant))), radiusMm: ant.r,
      posteriorCenter: r4(toWorld(opening(post))), posteriorRadiusMm: post.r,
      canalPoint: r4(toWorld(model.canalPoints[f])),
    };
  });

  // ---- alar paths, instruments ----------------------------------------------------------------------
  const alarS = 30;
  const alar = (side: 1 | -1) => ({
    entry: sd(side * 40, alarS, model.dorsalSurfaceA(alarS)),
    target: sd(side * 40, alarS, model.anteriorSurfaceA(alarS) - 9),
  });
  const alarLeft = alar(1), alarRight = alar(-1);
  let instruments: InstrumentTruth[] | undefined;
  if (o.stage !== 'plan') {
    const planned: PlannedRod[] = [
      { name: 'S1 guidepin', kind: 'guidepin', diameterMm: 2.8, idealEntry: corridorDesign.S1[0], idealTarget: corridorDesign.S1[1], hubOutMm: 30, offsetRange: [1, 3], angleRange: [1, 2.5] },
      { name: 'S2 guidepin', kind: 'guidepin', diameterMm: 2.8, idealEntry: corridorDesign.S2[0], idealTarget: corridorDesign.S2[1], hubOutMm: 30, offsetRange: [1, 3], angleRange: [1, 2.5] },
      { name: 'Alar trocar left', kind: 'trocar', diameterMm: 3.05, idealEntry: alarLeft.entry, idealTarget: alarLeft.target, hubOutMm: 30, offsetRange: [1, 3], angleRange: [2, 5] },
      { name: 'Alar trocar right', kind: 'trocar', diameterMm: 3.05, idealEntry: alarRight.entry, idealTarget: alarRight.target, hubOutMm: 30, offsetRange: [1, 3], angleRange: [2, 5] },
    ];
    const rng = new Rng(o.seed ^ 0x5eed1234);
    // Redraw (deterministically) until no two instruments come within 2 mm of each other.
    for (let attempt = 0; ; attempt++) {
      const rods: Rod[] = [];
      const out: InstrumentTruth[] = [];
      for (const p of planned) {
        const d: Point3 = [p.idealTarget[0] - p.idealEntry[0], p.idealTarget[1] - p.idealEntry[1], p.idealTarget[2] - p.idealEntry[2]];
        const len = Math.hypot(...d);
        const u: Point3 = [d[0] / len, d[1] / len, d[2] / len];
        const offset = rng.range(...p.offsetRange);
        const angleDeg = rng.range(...p.angleRange);
        const w1 = rng.perpendicular(u), w2 = rng.perpendicular(u);
        const entry: Point3 = [p.idealEntry[0] + offset * w1[0], p.idealEntry[1] + offset * w1[1], p.idealEntry[2] + offset * w1[2]];
        const v = tilt(u, w2, (angleDeg * Math.PI) / 180);
        const tip: Point3 = [entry[0] + len * v[0], entry[1] + len * v[1], entry[2] + len * v[2]];
        const hub: Point3 = [entry[0] - p.hubOutMm * v[0], entry[1] - p.hubOutMm * v[1], entry[2] - p.hubOutMm * v[2]];
        const r = rod(hub, tip, p.diameterMm / 2);
        rods.push(r);
        out.push({
          name: p.name, kind: p.kind, diameterMm: p.diameterMm, tip: r4(toWorld(tip)), hub: r4(toWorld(hub)),
          idealEntry: r4(toWorld(p.idealEntry)), idealTarget: r4(toWorld(p.idealTarget)),
          entryOffsetMm: round4(offset), angleDeg: round4(angleDeg),
          tipOffsetMm: round4(Math.hypot(tip[0] - p.idealTarget[0], tip[1] - p.idealTarget[1], tip[2] - p.idealTarget[2])),
          volumeMl: round4((Math.PI * (p.diameterMm / 2) ** 2 * r.length) / 1000),
        });
      }
      let ok = true;
      for (let i = 0; i < rods.length && ok; i++) {
        for (let j = i + 1; j < rods.length && ok; j++) {
          if (segmentDistance(rods[i], rods[j]) < rods[i].radius + rods[j].radius + 2) ok = false;
        }
      }
      if (ok || attempt > 200) {
        model.rods = rods;
        instruments = out;
        break;
      }
    }
  }

  // ---- cement -----------------------------------------------------------------------------------------
  let cement: CementTruth[] | undefined;
  let leak: LeakTruth | undefined;
  if (o.stage === 'cement') {
    cement = [];
    const allowed = new Uint8Array(TISSUE_COUNT);
    allowed[T.S_CANC] = allowed[T.FRACTURE] = allowed[T.SCLEROTIC] = 1;
    const ex: Point3 = [1, 0, 0];
    const axes: [Point3, Point3, Point3] = [ex, model.t0, model.n0];
    const deposits: Deposit[] = [];
    for (const [idx, site] of (['left', 'right'] as const).entries()) {
      const ml = o.cementMl[idx];
      if (ml === 0) continue;
      const trocar = model.rods[2 + idx];
      const d: Deposit = { center: trocar.tip, u: axes, ratios: [1, 0.8, 1.25], rho: 0, allowed, tissue: T.CEMENT };
      const { rho, quadMm3 } = sizeDeposit(model, d, ml * 1000, 0.4, `cement ${site}`);
      d.rho = rho;
      deposits.push(d);
      cement.push({ site, volumeMl: ml, quadratureMl: round4(quadMm3 / 1000), center: r4(toWorld(trocar.tip)) });
    }
    if (o.leak) {
      const f = FORAMEN_NAMES.indexOf(o.leak);
      const allowedLeak = new Uint8Array(TISSUE_COUNT);
      allowedLeak[T.FORAMEN0 + f] = 1;
      // Centre: 4 mm inside the anterior foramen's opening, on its channel axis.
      const c = model.foramina[f][0];
      const len = Math.sqrt(c.dd);
      const open = foramina[f].center;
      const openDesign = fromWorld(open, Rm);
      const tOpen = ((openDesign[0] - c.a[0]) * c.d[0] + (openDesign[1] - c.a[1]) * c.d[1] + (openDesign[2] - c.a[2]) * c.d[2]) / c.dd;
      const t = tOpen - 4 / len;
      const center: Point3 = [c.a[0] + t * c.d[0], c.a[1] + t * c.d[1], c.a[2] + t * c.d[2]];
      const d: Deposit = { center, u: [[1, 0, 0], [0, 1, 0], [0, 0, 1]], ratios: [1, 1, 1], rho: 0, allowed: allowedLeak, tissue: T.LEAK };
      const { rho, quadMm3 } = sizeDeposit(model, d, o.leakMl * 1000, 0.2, `leak ${o.leak}`);
      d.rho = rho;
      deposits.push(d);
      leak = { foramen: o.leak, volumeMl: o.leakMl, quadratureMl: round4(quadMm3 / 1000), center: r4(toWorld(center)) };
    }
    model.deposits = deposits;
  }
  onProgress?.({ phase: 'truth', fraction: 1 });
  cancelled(signal);

  // ---- grid and voxels ------------------------------------------------------------------------------
  const v = o.voxelMm;
  const dims: [number, number, number] = [0, 1, 2].map((a) => Math.max(1, Math.round((FOV_MAX[a] - FOV_MIN[a]) / v))) as [number, number, number];
  const n = voxelCount(dims, 'phantom');
  const origin: Point3 = [0, 1, 2].map((a) => OFFSET[a] + (FOV_MIN[a] + FOV_MAX[a]) / 2 - ((dims[a] - 1) * v) / 2) as Point3;
  const indexToPatient = indexToPatientFrom(origin, [v, v, v]);
  const [nx, ny, nz] = dims;
  const labels = new Uint8Array(n);
  const hu = new Float32Array(n);
  const huOf = nominalHu(o.anatomy);
  // Design coordinates of a world point: q = R^T (p - OFFSET); along i only p.x changes.
  const dqx = Rm[0] * v, dqy = Rm[1] * v, dqz = Rm[2] * v;
  const tableTop = OFFSET[1] + TABLE_TOP_Y;
  const rowRods: Rod[] = model.rods.slice();
  const rowDeposits: Deposit[] = model.deposits.slice();
  // A deposit lies within rho * (largest semi-axis ratio) of its centre.
  const depositExtent = model.deposits.map((d) => d.rho * Math.max(...d.ratios) + 1e-6);
  for (let k = 0; k < nz; k++) {
    const pz = origin[2] + k * v - OFFSET[2];
    for (let j = 0; j < ny; j++) {
      const yw = origin[1] + j * v;
      const py = yw - OFFSET[1];
      const px0 = origin[0] - OFFSET[0];
      const row = nx * (j + ny * k);
      if (yw > tableTop) {
        const tissue = yw > tableTop + 40 ? T.AIR : yw < tableTop + 3 || yw > tableTop + 37 ? T.TABLE_SHELL : T.TABLE_CORE;
        labels.fill(LABEL_OF_TISSUE[tissue], row, row + nx);
        hu.fill(huOf[tissue], row, row + nx);
        continue;
      }
      let qx = Rm[0] * px0 + Rm[3] * py + Rm[6] * pz;
      let qy = Rm[1] * px0 + Rm[4] * py + Rm[7] * pz;
      let qz = Rm[2] * px0 + Rm[5] * py + Rm[8] * pz;
      // Overlays whose bounds meet this row's (narrow) band of design y and z.
      const y0 = Math.min(qy, qy + (nx - 1) * dqy), y1 = Math.max(qy, qy + (nx - 1) * dqy);
      const z0 = Math.min(qz, qz + (nx - 1) * dqz), z1 = Math.max(qz, qz + (nx - 1) * dqz);
      let nr = 0, nd = 0;
      for (const r of model.rods) if (r.max[1] >= y0 && r.min[1] <= y1 && r.max[2] >= z0 && r.min[2] <= z1) rowRods[nr++] = r;
      for (let d = 0; d < model.deposits.length; d++) {
        const e = depositExtent[d], c = model.deposits[d].center;
        if (c[1] + e >= y0 && c[1] - e <= y1 && c[2] + e >= z0 && c[2] - e <= z1) rowDeposits[nd++] = model.deposits[d];
      }
      for (let i = 0; i < nx; i++) {
        const t = model.classifyWith(qx, qy, qz, rowRods, nr, rowDeposits, nd);
        labels[row + i] = LABEL_OF_TISSUE[t];
        hu[row + i] = huOf[t];
        qx += dqx;
        qy += dqy;
        qz += dqz;
      }
    }
    if ((k & 7) === 0) {
      onProgress?.({ phase: 'voxelize', fraction: k / nz });
      cancelled(signal);
    }
  }
  onProgress?.({ phase: 'voxelize', fraction: 1 });

  // ---- CBCT-like noise (before the blur, so it comes out correlated) and blur -----------------------
  const sigmaVox = o.blurSigmaMm / v;
  const kernel = gaussianKernel(sigmaVox);
  if (o.noiseSdHu > 0) {
    // The blur scales white noise by sqrt(sum of squared weights) per axis; compensate so the output
    // noise has the requested standard deviation.
    let w2 = 0;
    for (const w of kernel) w2 += w * w;
    addNoise(hu, o.noiseSdHu / Math.pow(w2, 1.5), o.seed ^ 0x9e3779b9);
    onProgress?.({ phase: 'noise', fraction: 1 });
  }
  if (kernel.length > 1) blur3(hu, dims, kernel, (f) => onProgress?.({ phase: 'blur', fraction: f }), signal);
  const ct = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    const x = Math.round(hu[i]);
    ct[i] = x < -1024 ? -1024 : x > 3071 ? 3071 : x;
  }

  const meta = {
    modality: 'CT',
    patientName: 'Corridor^Phantom',
    patientId: `PHANTOM-${o.anatomy.toUpperCase()}`,
    studyDescription: 'Corridor synthetic pelvis',
    seriesDescription: `phantom ${o.anatomy} ${o.stage} ${v} mm seed ${o.seed}`,
    manufacturer: 'Corridor',
    source: `phantom:${o.anatomy}:${o.stage}`,
  };
  const ctVolume = createVolume({ data: ct, dims, indexToPatient, meta });
  const labelVolume = createVolume({ data: labels, dims, indexToPatient, meta: { ...meta, seriesDescription: `labels ${meta.seriesDescription}` } });

  // ---- truth ----------------------------------------------------------------------------------------
  const nominal: Record<string, number> = {};
  for (const [t, name] of Object.entries(TISSUE_NAMES)) nominal[name] = huOf[Number(t)];
  const fractures: PhantomTruth['fractures'] = [];
  if (o.anatomy === 'fracture') {
    for (const side of [1, -1] as const) {
      // The cleft plane |x| = 34 + 0.06 (s - 30): a point on it and its unit normal, in world LPS.
      const p = sd(side * 34, 30, 0);
      const nDesign = normalize3([side * 1, -0.06 * model.t0[1], -0.06 * model.t0[2]]);
      fractures.push({ side: side === 1 ? 'left' : 'right', widthMm: FRACTURE_WIDTH_MM, pointOnCleft: r4(toWorld(p)), normal: r4(dirToWorld(nDesign)) });
    }
  }
  const truth: PhantomTruth = {
    schemaVersion: PHANTOM_TRUTH_SCHEMA_VERSION,
    generator: 'corridor phantom 1',
    anatomy: o.anatomy,
    stage: o.stage,
    seed: o.seed,
    voxelMm: v,
    dims,
    indexToPatient: mat4ToRows(indexToPatient),
    patientPosition: 'HFS',
    patientRotationDeg: { aboutZ: ROT_Z_DEG, aboutY: ROT_Y_DEG },
    labels: { ...PHANTOM_LABELS },
    boneLabelIds: [...BONE_LABELS],
    corridorLabelIds: [...CORRIDOR_LABELS],
    boneGroups: {
      sacrum: [L.cortex, L.cancellous, L.fracture], iliumLeft: [L.iliumLeft], iliumRight: [L.iliumRight],
      L5: [L.L5], femurLeft: [L.femurLeft], femurRight: [L.femurRight],
    },
    criticalLabelIds: { canal: [L.canal], foramina: [L.S1L, L.S1R, L.S2L, L.S2R, L.S3L, L.S3R, L.S4L, L.S4R] },
    nominalHu: nominal,
    noiseSdHu: o.noiseSdHu,
    blurSigmaMm: o.blurSigmaMm,
    sacralSlopeDeg: SACRAL_SLOPE_DEG,
    landmarks: {
      s1EndplateCenter: r4(toWorld([0, 0, 0])),
      promontory: r4(toWorld(sd(0, 0, 15))),
      s2BodyCenter: r4(toWorld(sd(0, 41, 0))),
      sacralTip: r4(toWorld(sd(0, 104, 0))),
    },
    corridors,
    foramina,
    fractures,
    alarPaths: {
      left: { entry: r4(toWorld(alarLeft.entry)), target: r4(toWorld(alarLeft.target)) },
      right: { entry: r4(toWorld(alarRight.entry)), target: r4(toWorld(alarRight.target)) },
    },
  };
  if (instruments) truth.instruments = instruments;
  if (cement) truth.cement = cement;
  if (leak) truth.leak = leak;
  return { ct: ctVolume, labels: labelVolume, truth };
}

function fromWorld(p: ArrayLike<number>, Rm: number[]): Point3 {
  const x = p[0] - OFFSET[0], y = p[1] - OFFSET[1], z = p[2] - OFFSET[2];
  return [Rm[0] * x + Rm[3] * y + Rm[6] * z, Rm[1] * x + Rm[4] * y + Rm[7] * z, Rm[2] * x + Rm[5] * y + Rm[8] * z];
}

function normalize3(v: Point3): Point3 {
  const l = Math.hypot(...v);
  return [v[0] / l, v[1] / l, v[2] / l];
}

function labelName(id: number): string {
  for (const [k, v] of Object.entries(PHANTOM_LABELS)) if (v === id) return k;
  return String(id);
}

/** Normalized Gaussian weights w[0..2R] (sigma in voxels), truncated at 3 sigma; [1] when sigma is 0. */
export function gaussianKernel(sigmaVox: number): Float64Array {
  if (!(sigmaVox > 0)) return Float64Array.of(1);
  const R = Math.max(1, Math.ceil(3 * sigmaVox));
  const w = new Float64Array(2 * R + 1);
  let sum = 0;
  for (let i = -R; i <= R; i++) sum += w[i + R] = Math.exp((-i * i) / (2 * sigmaVox * sigmaVox));
  for (let i = 0; i < w.length; i++) w[i] /= sum;
  return w;
}

/** Separable Gaussian blur in place, edges clamped. */
function blur3(data: Float32Array, dims: readonly number[], w: Float64Array, progress: (f: number) => void, signal?: AbortSignal) {
  const [nx, ny, nz] = dims;
  const R = (w.length - 1) / 2;
  const line = new Float32Array(Math.max(nx, ny, nz) + 2 * R);
  // Pass 1: along i (contiguous).
  for (let r = 0; r < ny * nz; r++) {
    const o = r * nx;
    for (let i = 0; i < nx + 2 * R; i++) line[i] = data[o + Math.min(nx - 1, Math.max(0, i - R))];
    for (let i = 0; i < nx; i++) {
      let acc = 0;
      for (let m = 0; m < w.length; m++) acc += w[m] * line[i + m];
      data[o + i] = acc;
    }
  }
  progress(1 / 3);
  cancelled(signal);
  // Pass 2: along j, a slice at a time (rows are contiguous, so whole rows are combined).
  const slice = new Float32Array(nx * ny);
  for (let k = 0; k < nz; k++) {
    const o = k * nx * ny;
    slice.set(data.subarray(o, o + nx * ny));
    for (let j = 0; j < ny; j++) {
      const dst = o + j * nx;
      data.fill(0, dst, dst + nx);
      for (let m = 0; m < w.length; m++) {
        const src = Math.min(ny - 1, Math.max(0, j + m - R)) * nx;
        const wm = w[m];
        for (let i = 0; i < nx; i++) data[dst + i] += wm * slice[src + i];
      }
    }
  }
  progress(2 / 3);
  cancelled(signal);
  // Pass 3: along k, one xz-plane (fixed j) at a time.
  const plane = new Float32Array(nx * nz);
  const sliceSize = nx * ny;
  for (let j = 0; j < ny; j++) {
    for (let k = 0; k < nz; k++) plane.set(data.subarray(k * sliceSize + j * nx, k * sliceSize + j * nx + nx), k * nx);
    for (let k = 0; k < nz; k++) {
      const dst = k * sliceSize + j * nx;
      data.fill(0, dst, dst + nx);
      for (let m = 0; m < w.length; m++) {
        const src = Math.min(nz - 1, Math.max(0, k + m - R)) * nx;
        const wm = w[m];
        for (let i = 0; i < nx; i++) data[dst + i] += wm * plane[src + i];
      }
    }
  }
  progress(1);
}
