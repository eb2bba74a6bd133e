/**
 * The phantom's ground truth (truth.json), taken from the analytic anatomy and never from voxels: the
 * planned paths (S1/S2 corridor axes, alar trocar paths), the corridors' safe radii, the foramen
 * openings, the fracture clefts and landmarks, and the assembly of PhantomTruth with the label ids, the
 * nominal HU and the stage's instruments and cement. Exists so that everything a test compares with is
 * derived in one place, apart from how the voxels are drawn (rasterize.ts).
 * Limits: LPS points are rounded to 1e-4 mm (round4, r4); a corridor's radius carries its search's
 * residual (< 0.01 mm, corridor.ts) and its axis is the centred one of several equally wide ones (README).
 */
import { mat4ToRows } from '../math/mat4.js';
import type { Point3 } from '../math/vec3.js';
import {
  FORAMEN_NAMES,
  FRACTURE_WIDTH_MM,
  ILIUM_LATERAL_X,
  SACRAL_SLOPE_DEG,
  T,
  TISSUE_COUNT,
  type PelvisModel,
} from './anatomy.js';
import { corridorSafeRadius } from './corridor.js';
import { BONE_LABELS, CORRIDOR_LABELS, LABEL_OF_TISSUE, PHANTOM_LABELS, labelName, nominalHuByName } from './labels.js';
import { throwIfCancelled, type ResolvedOptions } from './options.js';
import { ROT_Y_DEG, ROT_Z_DEG, type PhantomGrid, type Placement } from './placement.js';
import {
  PHANTOM_TRUTH_SCHEMA_VERSION,
  type CementTruth,
  type CorridorTruth,
  type ForamenTruth,
  type InstrumentTruth,
  type LeakTruth,
  type PhantomTruth,
} from './types.js';

/** The truth's precision: 1e-4 (mm, ml or deg). */
export const round4 = (v: number) => Math.round(v * 1e4) / 1e4;
export const r4 = (p: ArrayLike<number>): Point3 => [round4(p[0]), round4(p[1]), round4(p[2])];

/** An ideal straight path in the design frame. */
export interface PlannedPath {
  entry: Point3;
  target: Point3;
}

/** The ideal paths the instruments are meant to follow (design frame), fixed by the anatomy. */
export interface PlannedPaths {
  /** Trans-sacral axes from the right ilium's lateral face (entry) to the left one's (target). */
  corridors: { S1: PlannedPath; S2: PlannedPath };
  /** Alar (sacroplasty) trocar paths: posterior entry at |x| = 40 mm, s = 30 mm, 9 mm short of the front. */
  alar: { left: PlannedPath; right: PlannedPath };
}

export function plannedPaths(model: PelvisModel): PlannedPaths {
  const sd = (x: number, s: number, a: number) => model.sacralToDesign(x, s, a);
  const axis = (s: number, a: number): PlannedPath => ({
    entry: sd(-ILIUM_LATERAL_X, s, a),
    target: sd(ILIUM_LATERAL_X, s, a),
  });
  const alarS = 30;
  const alar = (side: 1 | -1): PlannedPath => ({
    entry: sd(side * 40, alarS, model.dorsalSurfaceA(alarS)),
    target: sd(side * 40, alarS, model.anteriorSurfaceA(alarS) - 9),
  });
  return {
    corridors: { S1: axis(model.s1AxisS, model.params.s1A), S2: axis(model.s2AxisS, model.params.s2A) },
    alar: { left: alar(1), right: alar(-1) },
  };
}

/** Safe radius of the S1 and S2 corridors, measured on the anatomy (the same in every stage). */
export function corridorTruth(
  model: PelvisModel,
  paths: PlannedPaths,
  place: Placement,
  signal?: AbortSignal,
): { S1: CorridorTruth; S2: CorridorTruth } {
  const { toWorld } = place;
  const corridorTissue = new Uint8Array(TISSUE_COUNT);
  for (let t = 0; t < TISSUE_COUNT; t++) {
    corridorTissue[t] = (CORRIDOR_LABELS as number[]).includes(LABEL_OF_TISSUE[t]) ? 1 : 0;
  }
  const corridors = {} as { S1: CorridorTruth; S2: CorridorTruth };
  for (const name of ['S1', 'S2'] as const) {
    const { entry: en, target: ex } = paths.corridors[name];
    const res = corridorSafeRadius(model, en, ex, corridorTissue);
    corridors[name] = {
      entry: r4(toWorld(en)),
      exit: r4(toWorld(ex)),
      safeRadiusMm: round4(res.radiusMm),
      lengthMm: round4(Math.hypot(ex[0] - en[0], ex[1] - en[1], ex[2] - en[2])),
      narrowestAt: r4(toWorld(res.axisPoint)),
      limitedBy: { point: r4(toWorld(res.limitPoint)), label: labelName(LABEL_OF_TISSUE[res.limitTissue]) },
    };
    throwIfCancelled(signal);
  }
  return corridors;
}

/** Each foramen's openings: where its anterior and posterior channel axes leave the bone. */
export function foramenTruth(model: PelvisModel, place: Placement): ForamenTruth[] {
  const { toWorld } = place;
  return FORAMEN_NAMES.map((name, f) => {
    const [ant, post] = model.foramina[f];
    const opening = (c: typeof ant): Point3 => {
      // Last point of the channel axis still inside the foramen (inside bone), found by bisection.
      const at = (t: number): Point3 => [c.a[0] + t * c.d[0], c.a[1] + t * c.d[1], c.a[2] + t * c.d[2]];
      let lo = 0,
        hi = 1;
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
      name,
      center: r4(toWorld(opening(ant))),
      radiusMm: ant.r,
      posteriorCenter: r4(toWorld(opening(post))),
      posteriorRadiusMm: post.r,
      canalPoint: r4(toWorld(model.canalPoints[f])),
    };
  });
}

/** The fracture variant's clefts (none otherwise): a point on each cleft plane and its normal. */
function fractureTruth(model: PelvisModel, place: Placement): PhantomTruth['fractures'] {
  const fractures: PhantomTruth['fractures'] = [];
  if (model.variant !== 'fracture') return fractures;
  for (const side of [1, -1] as const) {
    // The cleft plane |x| = 34 + 0.06 (s - 30): a point on it and its unit normal, in world LPS.
    const p = model.sacralToDesign(side * 34, 30, 0);
    const nDesign = normalize3([side * 1, -0.06 * model.t0[1], -0.06 * model.t0[2]]);
    fractures.push({
      side: side === 1 ? 'left' : 'right',
      widthMm: FRACTURE_WIDTH_MM,
      pointOnCleft: r4(place.toWorld(p)),
      normal: r4(place.dirToWorld(nDesign)),
    });
  }
  return fractures;
}

const mirror = (p: Point3): Point3 => [-p[0], p[1], p[2]];

function normalize3(v: Point3): Point3 {
  const l = Math.hypot(...v);
  return [v[0] / l, v[1] / l, v[2] / l];
}

/** What buildTruth assembles: the measured parts and, per stage, the instruments and cement. */
export interface TruthParts {
  options: ResolvedOptions;
  model: PelvisModel;
  place: Placement;
  grid: PhantomGrid;
  /** Nominal HU per tissue (labels.ts nominalHu). */
  huOf: Float32Array;
  paths: PlannedPaths;
  corridors: { S1: CorridorTruth; S2: CorridorTruth };
  foramina: ForamenTruth[];
  instruments?: InstrumentTruth[];
  cement?: CementTruth[];
  leak?: LeakTruth;
}

export function buildTruth(parts: TruthParts): PhantomTruth {
  const { options: o, model, place, grid, paths } = parts;
  const sd = (x: number, s: number, a: number) => model.sacralToDesign(x, s, a);
  const world = (q: ArrayLike<number>) => r4(place.toWorld(q));
  const L = PHANTOM_LABELS;
  const nominal = nominalHuByName(parts.huOf);
  const fractures = fractureTruth(model, place);
  const truth: PhantomTruth = {
    schemaVersion: PHANTOM_TRUTH_SCHEMA_VERSION,
    generator: 'corridor phantom 1',
    anatomy: o.anatomy,
    stage: o.stage,
    seed: o.seed,
    voxelMm: o.voxelMm,
    dims: grid.dims,
    indexToPatient: mat4ToRows(grid.indexToPatient),
    patientPosition: 'HFS',
    patientRotationDeg: { aboutZ: ROT_Z_DEG, aboutY: ROT_Y_DEG },
    labels: { ...PHANTOM_LABELS },
    boneLabelIds: [...BONE_LABELS],
    corridorLabelIds: [...CORRIDOR_LABELS],
    boneGroups: {
      sacrum: [L.cortex, L.cancellous, L.fracture],
      iliumLeft: [L.iliumLeft],
      iliumRight: [L.iliumRight],
      L5: [L.L5],
      femurLeft: [L.femurLeft],
      femurRight: [L.femurRight],
    },
    criticalLabelIds: { canal: [L.canal], foramina: [L.S1L, L.S1R, L.S2L, L.S2R, L.S3L, L.S3R, L.S4L, L.S4R] },
    nominalHu: nominal,
    noiseSdHu: o.noiseSdHu,
    blurSigmaMm: o.blurSigmaMm,
    sacralSlopeDeg: SACRAL_SLOPE_DEG,
    landmarks: {
      s1EndplateCenter: world([0, 0, 0]),
      promontory: world(sd(0, 0, 15)),
      s2BodyCenter: world(sd(0, 41, 0)),
      sacralTip: world(sd(0, 104, 0)),
      // Pelvic landmarks (the innominate and femur are described on the left and mirrored).
      acetabulumLeft: world(model.innominate.socketCenter),
      acetabulumRight: world(mirror(model.innominate.socketCenter)),
      femoralHeadLeft: world(model.femur.head),
      femoralHeadRight: world(mirror(model.femur.head)),
      pubicSymphysis: world([0, model.innominate.pubisC[1], model.innominate.pubisC[2]]),
    },
    corridors: parts.corridors,
    foramina: parts.foramina,
    fractures,
    alarPaths: {
      left: { entry: world(paths.alar.left.entry), target: world(paths.alar.left.target) },
      right: { entry: world(paths.alar.right.entry), target: world(paths.alar.right.target) },
    },
  };
  if (parts.instruments) truth.instruments = parts.instruments;
  if (parts.cement) truth.cement = parts.cement;
  if (parts.leak) truth.leak = parts.leak;
  return truth;
}
