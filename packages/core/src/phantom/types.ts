import type { Point3 } from '../math/vec3.js';
import type { AnatomyVariant, ForamenName } from './anatomy.js';

export type PhantomStage = 'plan' | 'pins' | 'cement';
export const PHANTOM_STAGES: readonly PhantomStage[] = ['plan', 'pins', 'cement'];
export const PHANTOM_ANATOMIES: readonly AnatomyVariant[] = ['fracture', 'normal', 'dysmorphic'];
export const PHANTOM_TRUTH_SCHEMA_VERSION = 1;
/** Default voxel size (mm): fine enough for accuracy work (< 0.8 mm) and generated in seconds. */
export const PHANTOM_DEFAULT_VOXEL_MM = 0.8;

export interface PhantomOptions {
  /** Default 'fracture' (the reference case). */
  anatomy?: AnatomyVariant;
  /** Default 'plan'. */
  stage?: PhantomStage;
  /** Isotropic voxel size, mm (0.3 to 5). Default 0.8. */
  voxelMm?: number;
  /** Seed of the instrument deviations and the noise (unsigned 32-bit integer). Default 1. */
  seed?: number;
  /** Cement volume (ml) at the left and right alar trocar tips (stage cement). Default [4, 4]. */
  cementMl?: readonly [number, number];
  /** Foramen that receives a cement leak (stage cement), e.g. 'S1L'. Default none. */
  leak?: ForamenName;
  /** Leak volume, ml. Default 0.2. */
  leakMl?: number;
  /** CBCT-like noise. Default true, with noiseSdHu 20 (standard deviation in the output, HU). */
  noise?: boolean;
  noiseSdHu?: number;
  /** CBCT-like blur. Default true, a Gaussian of blurSigmaMm 0.6 mm. */
  blur?: boolean;
  blurSigmaMm?: number;
}

export interface PhantomProgress {
  phase: 'anatomy' | 'truth' | 'voxelize' | 'noise' | 'blur';
  /** 0 to 1 within the phase. */
  fraction: number;
}

export interface CorridorTruth {
  /** Axis end on the patient's right lateral iliac cortex (LPS mm). */
  entry: Point3;
  /** Axis end on the patient's left lateral iliac cortex. */
  exit: Point3;
  /** Radius (mm) of the widest cylinder about entry-exit inside corridor bone (see README). */
  safeRadiusMm: number;
  lengthMm: number;
  /** Axis point level with the narrowest place, and the non-bone point that limits the radius there. */
  narrowestAt: Point3;
  limitedBy: { point: Point3; label: string };
}

export interface ForamenTruth {
  name: ForamenName;
  /** Centre of the anterior (pelvic) sacral foramen: where its channel's axis leaves the bone. */
  center: Point3;
  /** Radius of the anterior channel. */
  radiusMm: number;
  /** Centre of the posterior (dorsal) foramen and its channel radius. */
  posteriorCenter: Point3;
  posteriorRadiusMm: number;
  /** Where both channels leave the spinal canal (axis start). */
  canalPoint: Point3;
}

export interface InstrumentTruth {
  name: string;
  kind: 'guidepin' | 'trocar';
  diameterMm: number;
  /** Inner end of the shaft (LPS mm). */
  tip: Point3;
  /** Outer end of the modelled shaft: the phantom ends each instrument here, in soft tissue. */
  hub: Point3;
  /** The path the instrument was meant to follow. */
  idealEntry: Point3;
  idealTarget: Point3;
  /** Seeded deviation: entry displacement perpendicular to the ideal path, and angle to it. */
  entryOffsetMm: number;
  angleDeg: number;
  /** Distance from tip to idealTarget. */
  tipOffsetMm: number;
  /** Volume of the shaft (a flat-ended cylinder hub to tip), ml. */
  volumeMl: number;
}

export interface CementTruth {
  site: 'left' | 'right';
  /** Cement volume (ml): as requested, realized by the deposit's size (see README). */
  volumeMl: number;
  /** The same volume integrated on a fine grid over the analytic shapes (check of the sizing). */
  quadratureMl: number;
  center: Point3;
}

export interface LeakTruth {
  foramen: ForamenName;
  volumeMl: number;
  quadratureMl: number;
  center: Point3;
}

export interface PhantomTruth {
  schemaVersion: number;
  generator: string;
  anatomy: AnatomyVariant;
  stage: PhantomStage;
  seed: number;
  voxelMm: number;
  dims: [number, number, number];
  /** Row-major 4x4 (LPS mm), as in docs/conventions.md. */
  indexToPatient: number[][];
  /** Patient orientation on the table. */
  patientPosition: 'HFS';
  /** Small rotation of the patient relative to the scanner (deg) and the placement of the design frame. */
  patientRotationDeg: { aboutZ: number; aboutY: number };
  labels: Record<string, number>;
  /** Labels that are bone tissue. */
  boneLabelIds: number[];
  /** Labels a trans-sacral corridor may pass: bone plus the SI joints (crossed by design). */
  corridorLabelIds: number[];
  /** Bone labels grouped by bone (for planners): sacrum, iliumLeft, iliumRight, L5, femurLeft, femurRight. */
  boneGroups: Record<string, number[]>;
  /** Structures a path must not enter: canal and foramina. */
  criticalLabelIds: Record<string, number[]>;
  /** Nominal CT number (HU) of each tissue before blur and noise. */
  nominalHu: Record<string, number>;
  noiseSdHu: number;
  blurSigmaMm: number;
  sacralSlopeDeg: number;
  landmarks: Record<string, Point3>;
  corridors: { S1: CorridorTruth; S2: CorridorTruth };
  foramina: ForamenTruth[];
  /** Fracture clefts (fracture variant): one vertical cleft per ala. */
  fractures: { side: 'left' | 'right'; widthMm: number; pointOnCleft: Point3; normal: Point3 }[];
  /** Ideal alar (sacroplasty) trocar paths, posterior entry. */
  alarPaths: { left: { entry: Point3; target: Point3 }; right: { entry: Point3; target: Point3 } };
  instruments?: InstrumentTruth[];
  cement?: CementTruth[];
  leak?: LeakTruth;
}
