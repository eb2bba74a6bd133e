/**
 * Seeded 2D/3D registration trials with truth made here, independently of the code under test: the
 * patient's motion is built from an axis and an angle (Rodrigues), its frames are DRRs of the moved
 * volume (the truth volume's patientToIndex composed with the motion's inverse, computed here by
 * transposition) made into fluoroscopy with noise (`fluoroscopyWithExposure`), and the errors are
 * measured over target points (the sacrum) from the motion itself. Shared by the tests and the
 * `register2d` benchmark, so the figures in the README are the tests' own.
 */
import {
  carmFrame,
  carmGeometry,
  carmPreset,
  fluoroscopyWithExposure,
  generatePhantom,
  labelPoints,
  PHANTOM_LABELS,
  prepareDrrVolume,
  prepareRegister2dVolume,
  register2d,
  register2dAsync,
  renderLineIntegrals,
  Rng,
  rigidMotion,
  type CarmGeometry,
  type DrrVolume,
  type Point3,
  type Register2dLevel,
  type Register2dRenderer,
  type Register2dResult,
  type Register2dVolume,
  type Volume,
} from '@corridor/core';

/** planningToCurrent of a rotation by angleDeg about `axis` through `center`, then a translation. */
export function motionMatrix(
  axis: readonly number[],
  angleDeg: number,
  t: readonly number[],
  center: Point3,
): Float64Array {
  return rigidMotion([axis[0], axis[1], axis[2]], angleDeg, [t[0], t[1], t[2]], [center[0], center[1], center[2]]);
}

/** A random motion of up to maxDeg about a random axis and up to maxMm in a random direction. */
export function randomMotion(rng: Rng, maxDeg: number, maxMm: number, center: Point3): Float64Array {
  const axis = [rng.range(-1, 1), rng.range(-1, 1), rng.range(-1, 1)];
  const dir = [rng.range(-1, 1), rng.range(-1, 1), rng.range(-1, 1)];
  const dn = Math.hypot(dir[0], dir[1], dir[2]);
  const mm = maxMm * rng.next(),
    deg = maxDeg * rng.next();
  return motionMatrix(
    axis,
    deg,
    dir.map((d) => (d / dn) * mm),
    center,
  );
}

/** The frame of the patient moved by planningToCurrent `motion`, rendered from `truth` (grey, noise seeded). */
export function movedFrame(truth: DrrVolume, motion: Float64Array, g: CarmGeometry, seed: number): Uint8Array {
  // currentToPlanning = [R^T, -R^T t] (rigid), written out here rather than taken from the module.
  const inv = new Float64Array(16);
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) inv[i * 4 + j] = motion[j * 4 + i];
    inv[i * 4 + 3] = -(motion[i] * motion[3] + motion[4 + i] * motion[7] + motion[8 + i] * motion[11]);
  }
  inv[15] = 1;
  const a = truth.patientToIndex;
  const m = new Float64Array(16);
  for (let r = 0; r < 4; r++)
    for (let c = 0; c < 4; c++) {
      let s = 0;
      for (let k = 0; k < 4; k++) s += a[r * 4 + k] * inv[k * 4 + c];
      m[r * 4 + c] = s;
    }
  const li = renderLineIntegrals({ ...truth, patientToIndex: m }, g);
  return fluoroscopyWithExposure(li, g, { seed, exposure: { targetDoseNGy: 100 } }).gray;
}

export interface TrialErrors {
  /** Mean distance between estimated and true positions of the points, mm. */
  tre: number;
  /** Mean of the error's component across the first view's central ray, mm. */
  across: number;
  /** Mean of the error's component along the first view's central ray (signed), mm. */
  depth: number;
}

/** Errors of an estimated planningToCurrent against the true one over points (xyz triples). */
export function trialErrors(
  points: Float64Array,
  truth: Float64Array,
  est: readonly (readonly number[])[],
  d: readonly number[],
): TrialErrors {
  const e = est.flat();
  let tre = 0,
    across = 0,
    depth = 0;
  const n = points.length / 3;
  for (let q = 0; q < n; q++) {
    const p = [points[3 * q], points[3 * q + 1], points[3 * q + 2]];
    const err = [0, 1, 2].map(
      (r) =>
        e[r * 4] * p[0] +
        e[r * 4 + 1] * p[1] +
        e[r * 4 + 2] * p[2] +
        e[r * 4 + 3] -
        (truth[r * 4] * p[0] + truth[r * 4 + 1] * p[1] + truth[r * 4 + 2] * p[2] + truth[r * 4 + 3]),
    );
    const along = err[0] * d[0] + err[1] * d[1] + err[2] * d[2];
    tre += Math.hypot(err[0], err[1], err[2]);
    depth += along;
    across += Math.hypot(err[0] - along * d[0], err[1] - along * d[1], err[2] - along * d[2]);
  }
  return { tre: tre / n, across: across / n, depth: depth / n };
}

export interface TrialSetup {
  /** The volume the frames are rendered from (the truth; may be finer than the registration's levels). */
  truth: Volume;
  prepared: Register2dVolume;
  /** Target points (sacrum), LPS mm, xyz triples; their mean is the isocentre and the centre of rotation. */
  points: Float64Array;
  /** Primary angles of the views (secondary 0), degrees. */
  primaryDeg: readonly number[];
  /** Frame width, pixels (artis-zee-floor detector). */
  sizePx: number;
  /** Collimate the detector to this square field, mm at the detector (keeps a short CT's cut ends out of view). */
  fieldMm?: number;
  levels?: readonly Register2dLevel[];
  maxDeg?: number;
  maxMm?: number;
  /** Render the fits' DRRs with this (register2dAsync; a Register2dPool over `prepared`); default one thread. */
  renderer?: Register2dRenderer;
}

export interface TrialResult extends TrialErrors {
  result: Register2dResult;
  /** Wall time of the fit, s. */
  seconds: number;
  /** CPU time of the process during the fit (all threads, the renderer's workers included), s. */
  cpuSeconds: number;
  /** Size of the true motion at the points, mm (mean). */
  motionMm: number;
}

/**
 * Runs `count` seeded trials (seed..seed+count-1): one random motion, its frames, one registration each.
 * Yields to the event loop between trials (a test runner's heartbeat must get through).
 */
export async function runTrials(setup: TrialSetup, count: number, seed: number): Promise<TrialResult[]> {
  const truthDv = prepareDrrVolume(setup.truth);
  const pts = setup.points;
  const n = pts.length / 3;
  const center: Point3 = [0, 0, 0];
  for (let q = 0; q < n; q++) for (let a = 0; a < 3; a++) center[a] += pts[3 * q + a] / n;
  const system = carmPreset('artis-zee-floor');
  const geometries = setup.primaryDeg.map((p) =>
    carmGeometry(
      system,
      { primaryDeg: p, secondaryDeg: 0, isocenter: center },
      { size: setup.sizePx, ...(setup.fieldMm ? { fieldMm: setup.fieldMm } : {}) },
    ),
  );
  const d = carmFrame(geometries[0]).d;
  const identity = [
    [1, 0, 0, 0],
    [0, 1, 0, 0],
    [0, 0, 1, 0],
    [0, 0, 0, 1],
  ];
  const out: TrialResult[] = [];
  for (let t = 0; t < count; t++) {
    await new Promise<void>((resolve) => setTimeout(resolve, 0));
    const rng = new Rng(seed + t);
    const motion = randomMotion(rng, setup.maxDeg ?? 5, setup.maxMm ?? 10, center);
    const views = geometries.map((g, i) => ({
      gray: movedFrame(truthDv, motion, g, 1000 * (seed + t) + i),
      geometry: g,
    }));
    const opts = { centerMm: center, ...(setup.levels ? { levels: setup.levels } : {}) };
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const result = setup.renderer
      ? await register2dAsync(setup.prepared, views, opts, setup.renderer)
      : register2d(setup.prepared, views, opts);
    const cpu = process.cpuUsage(c0);
    const seconds = (performance.now() - t0) / 1000;
    out.push({
      ...trialErrors(pts, motion, result.planningToCurrent, d),
      result,
      seconds,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      motionMm: trialErrors(pts, motion, identity, d).tre,
    });
  }
  return out;
}

/** The S1 body centre of the Visible Human pelvis CT (vhf-pelvis-ct), LPS mm, read off its slices. */
export const VHF_S1: Point3 = [246, 284, 975];

/** Targets on that CT (it has no labels): a 5 mm lattice within 40 mm of VHF_S1. */
export function s1Lattice(): Float64Array {
  const pts: number[] = [];
  for (let x = -40; x <= 40; x += 5)
    for (let y = -40; y <= 40; y += 5)
      for (let z = -40; z <= 40; z += 5)
        if (Math.hypot(x, y, z) <= 40) pts.push(VHF_S1[0] + x, VHF_S1[1] + y, VHF_S1[2] + z);
  return Float64Array.from(pts);
}

/** The sacrum's bone (cortex, cancellous, fracture): where the phantom's TRE is measured. */
export const SACRUM_BONE_LABELS = [PHANTOM_LABELS.cortex, PHANTOM_LABELS.cancellous, PHANTOM_LABELS.fracture];

/**
 * The CI set-up of the phantom trials: the 1.5 mm phantom (seed 3) as truth, registered on 4 and 2 mm
 * levels with 128-pixel frames (64 at the coarse level), the 3 mm volume for the one-view bias bound.
 */
export function phantomCiSetup(primaryDeg: number[]): TrialSetup {
  const phantom = generatePhantom({ voxelMm: 1.5, seed: 3 });
  return {
    truth: phantom.ct,
    prepared: prepareRegister2dVolume(phantom.ct, { levelsMm: [4, 3, 2] }),
    points: labelPoints(phantom.labels, SACRUM_BONE_LABELS),
    primaryDeg,
    sizePx: 128,
    levels: [
      { volumeMm: 4, imagePx: 64, stepMm: 4, minStepMm: 1 },
      { volumeMm: 2, imagePx: 128, stepMm: 1, minStepMm: 0.2 },
    ],
  };
}
