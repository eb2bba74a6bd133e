/**
 * Rigid 3D/3D registration: the one entry point (`registerRigid`) that the CLI, the server and the
 * workstation call. Multi-resolution (isotropic levels, default 8, 4, 2 mm, never finer than the images),
 * Mattes mutual information or normalized correlation on a seeded set of fixed samples, analytic
 * gradient, regular-step gradient ascent (ITK's RegularStepGradientDescent: the step along the normalized
 * gradient halves whenever the gradient turns back or the metric gets worse; converged when the step is
 * below its minimum). See README.md for the definitions of the outputs and the verdict.
 */
import { CancelledError, CorridorError, GeometryError, UsageError } from '../errors.js';
import { mat4Identity, mat4Multiply, mat4ToRows, type ReadonlyMat4 } from '../math/mat4.js';
import { Rng } from '../math/random.js';
import type { ProgressFn } from '../plan/procedure.js';
import { sampleIndexTrilinear, sampleNearest } from '../volume/sample.js';
import { distanceTransform } from '../volume/edt.js';
import { withData, type Volume } from '../volume/volume.js';
import { DEFAULT_HISTOGRAM_BINS, LevelMetric, robustRange, type MetricKind, type SampleSet } from './metric.js';
import { buildPyramid, detectFillValue } from './pyramid.js';
import {
  detectConeBeamFov,
  divideByLocalRms,
  dropConeEnds,
  subtractLocalMean,
  type ConeBeamFieldOfView,
} from './fov.js';
import {
  fixedToMovingToParameters,
  invertRigid,
  parametersToFixedToMoving,
  type RigidParameters,
} from './rigid-transform.js';

export const REGISTRATION_SCHEMA_VERSION = 1;

/** Default pyramid (mm, coarse to fine). Each is raised to the coarsest voxel of the two images. */
export const DEFAULT_LEVELS_MM: readonly number[] = [8, 4, 2];
/** Below this fraction of fixed samples that land on moving data the result is not trusted. */
export const DEFAULT_MIN_OVERLAP = 0.25;
/**
 * The metric at the solution must exceed the best metric with the moving image shifted by
 * NULL_SHIFT_MM along any axis by this factor (MI) or margin (NC), or no structure is said to match.
 */
export const MIN_MI_RATIO = 1.2;
export const MIN_NC_MARGIN = 0.1;
export const NULL_SHIFT_MM = 20;
/**
 * Lowest MI (nats) or NC that counts as matching structure at all. MI is also held above three times
 * the bias of a histogram estimate of independent values, (binsF - 1)(binsM - 1) / (2 n) nats.
 */
export const MIN_MI_NATS = 0.1;
export const MIN_NC = 0.3;

/**
 * The local normalisation of a C-arm CT pair (the default when a cone-beam field of view is found; see
 * README.md): the local mean's sigma on the finest level (mm), the samples per level, the local contrast's
 * sigma (mm), a coarser level's sigma in its own spacings, and the capture grid of the coarsest level.
 * Measured against simulated C-arm CTs of the moved image (10 degrees + 20 mm and 8 degrees + 15 mm; cone
 * ends left out), mean TRE over the sacrum at scatter 0 / 1e-3 / 0.01: real 3 mm CT, raw intensities
 * 0.30-0.54 / 1.50-1.58 (failed) / 9-34 mm (failed) -> 0.15-0.16 / 0.08-0.10 / 0.26; the 2 mm phantom (60
 * views) 0.12-0.35 / failed (23 mm) / failed (24-27 mm) -> 0.17-0.22 / 0.21-0.25 / 0.16-0.37. The local
 * mean alone (5 mm on every level, no capture) left the phantom at 0.01 failed (18 mm). Sigma 10 mm for
 * the mean: 0.16-1.02 mm, 20 mm: 0.59-2.7 (shading left in).
 */
export const SCATTER_LOCAL_MEAN_SIGMA_MM = 5;
export const SCATTER_SAMPLES = 60000;
export const SCATTER_LOCAL_STD_SIGMA_MM = 7;
export const COARSE_LOCAL_MEAN_SPACINGS = 2;
export const RIGID_CAPTURE_STEP_MM = 8;
export const RIGID_CAPTURE_STARTS = 4;
/** The C-arm CT cross-check's largest mean disagreement (mm) between the two fits (coneBeamCheck). */
export const CONE_BEAM_AGREEMENT_MM = 0.5;
/** The cross-check's local contrast (mm): twice the fit's (SCATTER_LOCAL_STD_SIGMA_MM); README.md. */
export const CONE_BEAM_CHECK_STD_SIGMA_MM = 14;

/** Where an image has data: a scanner's fill value outside the field of view. */
export type FillValueOption = number | 'auto' | 'none';

export interface RigidRegistrationOptions {
  /** 'mi' (default): Mattes mutual information, any modality pair. 'nc': normalized correlation, same modality. */
  metric?: MetricKind;
  /**
   * Region of the fixed image to match: voxels of this volume (any grid, nearest voxel) that are nonzero,
   * or whose value is in `maskLabels` when given (e.g. sacrum and ilia of a segmentation, dilated).
   */
  fixedMask?: Volume;
  maskLabels?: readonly number[];
  /**
   * Grow the mask by this distance (mm, default 0) so the region's edges (cortex against soft tissue)
   * count. Levels coarser than the finest grow it by a further 2 of their spacings (16 mm at 8 mm).
   */
  maskDilationMm?: number;
  /** Starting movingToFixed (rigid, LPS mm). Default identity: the scanners' frames roughly agree. */
  initialMovingToFixed?: ReadonlyMat4;
  /** Level spacings, mm, coarse to fine (default 8, 4, 2). */
  levelsMm?: readonly number[];
  /**
   * Fixed samples per level (default 20000, SCATTER_SAMPLES with local normalisation; all candidate voxels
   * when fewer).
   */
  samples?: number;
  /** Seed of the sample set (default 1): the same seed gives the same result, bit for bit. */
  seed?: number;
  /** Histogram bins of MI (default 32). */
  bins?: number;
  /** Iterations per level at most (default 200). */
  maxIterations?: number;
  /** Value written outside the field of view, per image: a number, 'auto' (default, detectFillValue) or 'none'. */
  fixedFill?: FillValueOption;
  movingFill?: FillValueOption;
  /** Below this overlap the verdict is failed (default DEFAULT_MIN_OVERLAP). */
  minOverlap?: number;
  /**
   * A cone-beam CT's field of view (fov.ts): 'auto' (default) finds, per image with a fill value, a data
   * region that ends inside the grid along its cylinder's axis and leaves out its cone-end slabs (beyond
   * CONE_KEEP_FRACTION of the half length); 'none' uses all the data.
   */
  coneEnds?: 'auto' | 'none';
  /**
   * Local normalisation (fov.ts subtractLocalMean): both images' levels less their local mean over about
   * this Gaussian sigma (mm; at least one voxel of the level each way), so a C-arm CT's cupping from
   * scatter and truncation does not count; a level coarser than the finest takes at least
   * COARSE_LOCAL_MEAN_SPACINGS of its spacing, and the coarsest level starts from a capture grid. Default:
   * SCATTER_LOCAL_MEAN_SIGMA_MM when either image has a cone-beam field of view (a C-arm CT), else 0 (the
   * raw intensities); then 60000 samples per level by default.
   */
  localMeanSigmaMm?: number;
  /**
   * With a local mean: each level then divided by its local root mean square over about this sigma (mm;
   * default SCATTER_LOCAL_STD_SIGMA_MM; 0: none), so that scatter's loss of contrast does not count.
   */
  localStdSigmaMm?: number;
  /**
   * When either image is a C-arm CT (cone ends found): 'auto' (default) fits the finest level again from
   * the result with both images less their local mean (SCATTER_LOCAL_MEAN_SIGMA_MM) and divided by their
   * local contrast at twice the fit's scale (CONE_BEAM_CHECK_STD_SIGMA_MM; no coarser levels, another
   * sample set), and reports failed when the two fits move the overlap's samples apart by more than
   * CONE_BEAM_AGREEMENT_MM on average (the normalisation, or with the raw intensities scatter's shading,
   * pulling one of them); 'none' skips it. The result is the first fit's either way.
   */
  coneBeamCheck?: 'auto' | 'none';
  onProgress?: ProgressFn;
  signal?: AbortSignal;
}

/** The cross-check of a C-arm CT pair's fit (see RigidRegistrationOptions.coneBeamCheck). */
export interface ConeBeamCheck {
  localMeanSigmaMm: number;
  /** The check's local contrast sigma (mm), CONE_BEAM_CHECK_STD_SIGMA_MM. */
  localStdSigmaMm: number;
  spacingMm: number;
  iterations: number;
  converged: boolean;
  /** The locally normalised similarity at the second fit's end (not comparable with metricValue). */
  metricValue: number;
  /** Mean and largest distance between where the two fits map the final level's fixed samples. */
  meanDisagreementMm: number;
  maxDisagreementMm: number;
  /** The second fit's own movingToFixed (row-major 4x4 rows): never handed on, for diagnosis. */
  movingToFixed: number[][];
}

export interface RegistrationLevel {
  spacingMm: number;
  samples: number;
  iterations: number;
  converged: boolean;
  /** The similarity at the end of the level (MI nats or NC). */
  metricValue: number;
}

export interface RegistrationVerdict {
  status: 'ok' | 'failed';
  /** Why it failed (empty when ok); each a sentence for the user. */
  reasons: string[];
}

export interface RigidRegistrationResult {
  schemaVersion: number;
  metric: MetricKind;
  /**
   * Maps a point in the moving image's patient coordinates (LPS mm) to the same anatomical point in the
   * fixed image's patient coordinates. Row-major 4x4 rows. Use it to carry a plan from moving to fixed.
   */
  movingToFixed: number[][];
  /** The inverse: fixed LPS -> moving LPS, the resampling direction (what an ITK .tfm stores). */
  fixedToMoving: number[][];
  /** fixedToMoving(x) = R (x - c) + c + t with R = Rz(gamma) Ry(beta) Rx(alpha); degrees and mm. */
  parameters: {
    convention: 'fixedToMoving = R(x - c) + c + t, R = Rz(gamma) Ry(beta) Rx(alpha)';
    rotationDeg: [number, number, number];
    translationMm: [number, number, number];
    centerMm: [number, number, number];
  };
  /** The similarity reached on the finest level (MI in nats, or NC): not an accuracy. */
  metricValue: number;
  /** The best similarity with the moving image shifted NULL_SHIFT_MM along an axis from the solution. */
  nullMetricValue: number;
  /**
   * The overlap of the two images' data at the solution, as a fraction of the smaller of: the fixed
   * region (mask, with data) and the moving image's data. 1 when a small CBCT lies wholly inside a CT.
   */
  overlapFraction: number;
  /** Fraction of the fixed samples (in the mask, with data) that land on moving data at the solution. */
  fixedCoveredFraction: number;
  /** Fraction of the moving image's data (volume) that the overlap covers. */
  movingCoveredFraction: number;
  /** Iterations, all levels. */
  iterations: number;
  levels: RegistrationLevel[];
  fixedFill: number | null;
  movingFill: number | null;
  /** The cone-beam field of view found in each image (its cone ends left out), or null. */
  fixedFov: ConeBeamFieldOfView | null;
  movingFov: ConeBeamFieldOfView | null;
  /** The local normalisation's sigma used (mm; 0: none). */
  localMeanSigmaMm: number;
  /** The local contrast normalisation's sigma used (mm; 0: none). */
  localStdSigmaMm: number;
  /** The second fit of a C-arm CT pair (RigidRegistrationOptions.coneBeamCheck), or null when none ran. */
  coneBeamCheck: ConeBeamCheck | null;
  verdict: RegistrationVerdict;
}

function checkAborted(signal: AbortSignal | undefined) {
  if (signal?.aborted) throw new CancelledError('registration was cancelled');
}

function resolveFill(v: Volume, o: FillValueOption | undefined): number | null {
  if (o === undefined || o === 'auto') return detectFillValue(v);
  if (o === 'none') return null;
  if (!Number.isFinite(o)) throw new UsageError(`fill value ${o} is not a number`);
  return o;
}

/**
 * Distance (mm) from each voxel centre of `grid` to the nearest centre that lies in the mask (nonzero,
 * or in `labels`; the mask is read at the nearest voxel, on any grid); 0 inside.
 */
function maskDistance(grid: Volume<Float32Array>, mask: Volume, labels: Set<number> | null): Volume<Float32Array> {
  const [nx, ny, nz] = grid.dims;
  const m = grid.indexToPatient;
  const outside = new Uint8Array(nx * ny * nz);
  const p = [0, 0, 0];
  for (let k = 0, o = 0; k < nz; k++)
    for (let j = 0; j < ny; j++)
      for (let i = 0; i < nx; i++, o++) {
        p[0] = m[0] * i + m[1] * j + m[2] * k + m[3];
        p[1] = m[4] * i + m[5] * j + m[6] * k + m[7];
        p[2] = m[8] * i + m[9] * j + m[10] * k + m[11];
        const v = sampleNearest(mask, p, 0);
        outside[o] = (labels ? labels.has(v) : v !== 0) ? 0 : 1;
      }
  // distanceTransform: for each nonzero voxel the distance to the nearest zero one (the mask).
  const d = distanceTransform(outside, grid.dims, grid.spacing, { output: 'float32' }) as Float32Array;
  return withData(grid, d);
}

/**
 * Candidate voxels of a level (with data; within maxMm of the mask when a mask distance is given), as
 * indices, and their mean position.
 */
function candidates(level: Volume<Float32Array>, dist: Volume<Float32Array> | undefined, maxMm: number) {
  const [nx, ny, nz] = level.dims;
  const m = level.indexToPatient;
  const keep = new Uint8Array(nx * ny * nz);
  const p = [0, 0, 0];
  let count = 0;
  for (let k = 0, o = 0; k < nz; k++)
    for (let j = 0; j < ny; j++)
      for (let i = 0; i < nx; i++, o++) {
        if (level.data[o] !== level.data[o]) continue;
        if (dist) {
          p[0] = m[0] * i + m[1] * j + m[2] * k + m[3];
          p[1] = m[4] * i + m[5] * j + m[6] * k + m[7];
          p[2] = m[8] * i + m[9] * j + m[10] * k + m[11];
          if (!(sampleNearest(dist, p, Infinity) <= maxMm)) continue;
        }
        keep[o] = 1;
        count++;
      }
  const idx = new Int32Array(count);
  let sx = 0,
    sy = 0,
    sz = 0;
  for (let o = 0, c = 0; o < keep.length; o++) {
    if (!keep[o]) continue;
    idx[c++] = o;
    const i = o % nx,
      j = Math.floor(o / nx) % ny,
      k = Math.floor(o / (nx * ny));
    sx += m[0] * i + m[1] * j + m[2] * k + m[3];
    sy += m[4] * i + m[5] * j + m[6] * k + m[7];
    sz += m[8] * i + m[9] * j + m[10] * k + m[11];
  }
  const mean: [number, number, number] = count ? [sx / count, sy / count, sz / count] : [0, 0, 0];
  return { idx, mean };
}

/**
 * A test of fixed level voxel indices: true when the voxel centre maps by fixedToMoving onto moving data
 * (inside the moving level, no NaN among the interpolated voxels).
 */
function onMovingData(
  level: Volume<Float32Array>,
  fixedToMoving: ReadonlyMat4,
  movingLevel: Volume<Float32Array>,
): (o: number) => boolean {
  const m = mat4Multiply(
    new Float64Array(16),
    movingLevel.patientToIndex,
    mat4Multiply(new Float64Array(16), fixedToMoving, level.indexToPatient),
  );
  const [nx, ny] = level.dims;
  return (o: number) => {
    const i = o % nx,
      j = Math.floor(o / nx) % ny,
      k = Math.floor(o / (nx * ny));
    const fi = m[0] * i + m[1] * j + m[2] * k + m[3];
    const fj = m[4] * i + m[5] * j + m[6] * k + m[7];
    const fk = m[8] * i + m[9] * j + m[10] * k + m[11];
    const v = sampleIndexTrilinear(movingLevel, fi, fj, fk, NaN);
    return v === v;
  };
}

/**
 * Up to n of the candidates that pass `accept` (all when absent), chosen with a seeded partial
 * Fisher-Yates shuffle, as a SampleSet with their voxel indices; `tried` says how many were drawn.
 */
function drawSamples(
  level: Volume<Float32Array>,
  idx: Int32Array,
  n: number,
  seed: number,
  accept?: (o: number) => boolean,
): SampleSet & { tried: number; indices: Int32Array } {
  const pool = Int32Array.from(idx);
  const rng = new Rng(seed);
  const kept = new Int32Array(Math.min(n, pool.length));
  let count = 0,
    s = 0;
  for (; s < pool.length && count < kept.length; s++) {
    const r = s + Math.floor(rng.next() * (pool.length - s));
    const t = pool[s];
    pool[s] = pool[r];
    pool[r] = t;
    if (!accept || accept(pool[s])) kept[count++] = pool[s];
  }
  const [nx, ny] = level.dims;
  const m = level.indexToPatient;
  const points = new Float64Array(3 * count);
  const values = new Float32Array(count);
  const jitter: number = JITTER;
  let c = 0;
  for (let q = 0; q < count; q++) {
    const o = kept[q];
    // A random point within the voxel (not its centre): sampling both images off the fixed grid
    // avoids MI's interpolation artefacts, which pull the optimum towards grid-aligned positions.
    const i = (o % nx) + jitter * (rng.next() - 0.5),
      j = (Math.floor(o / nx) % ny) + jitter * (rng.next() - 0.5),
      k = Math.floor(o / (nx * ny)) + jitter * (rng.next() - 0.5);
    const v = jitter ? sampleIndexTrilinear(level, i, j, k, NaN) : level.data[o];
    if (v !== v) continue;
    points[3 * c] = m[0] * i + m[1] * j + m[2] * k + m[3];
    points[3 * c + 1] = m[4] * i + m[5] * j + m[6] * k + m[7];
    points[3 * c + 2] = m[8] * i + m[9] * j + m[10] * k + m[11];
    values[c++] = v;
  }
  return {
    points: points.subarray(0, 3 * c),
    values: values.subarray(0, c),
    tried: s,
    indices: kept.subarray(0, count),
  };
}

function meanOf(points: Float64Array): [number, number, number] {
  const n = points.length / 3;
  let x = 0,
    y = 0,
    z = 0;
  for (let q = 0; q < n; q++) {
    x += points[3 * q];
    y += points[3 * q + 1];
    z += points[3 * q + 2];
  }
  return [x / n, y / n, z / n];
}

/** Coarse levels grow the mask by this many of their own spacings (see registerRigid). */
const MASK_CONTEXT = 2;

/** How many fixed region samples the overlap is measured on. */
const OVERLAP_SAMPLES = 50000;
/** Samples lie uniformly within their voxel (1 = the whole voxel; 0 would put them on the centres). */
const JITTER = 1;

/**
 * Register `moving` to `fixed` rigidly. Returns the transform, the similarity, the overlap and a verdict;
 * a failed verdict's transform is the last estimate and must not be used as a result. Throws
 * CancelledError when `signal` aborts, UsageError on bad options, GeometryError on a non-rigid init.
 */
export function registerRigid(
  fixed: Volume,
  moving: Volume,
  options: RigidRegistrationOptions = {},
): RigidRegistrationResult {
  const kind: MetricKind = options.metric ?? 'mi';
  if (kind !== 'mi' && kind !== 'nc') throw new UsageError(`metric "${String(kind)}" is not mi or nc`);
  if (options.samples !== undefined && !(Number.isInteger(options.samples) && options.samples >= 100))
    throw new UsageError(`samples ${options.samples} must be an integer >= 100`);
  const maxIter = options.maxIterations ?? 200;
  const seed = options.seed ?? 1;
  const minOverlap = options.minOverlap ?? DEFAULT_MIN_OVERLAP;
  const floorMm = Math.max(...fixed.spacing, ...moving.spacing);
  const requested = options.levelsMm ?? DEFAULT_LEVELS_MM;
  if (!requested.length || !requested.every((s) => s > 0 && Number.isFinite(s)))
    throw new UsageError(`levels ${requested.join(', ')} must be positive spacings in mm`);
  const levelsMm: number[] = [];
  for (const s of requested) {
    const v = Math.max(s, floorMm);
    if (!levelsMm.includes(v)) levelsMm.push(v);
  }
  levelsMm.sort((a, b) => b - a);
  const progress = options.onProgress;
  checkAborted(options.signal);

  const fixedFill = resolveFill(fixed, options.fixedFill);
  const movingFill = resolveFill(moving, options.movingFill);
  progress?.(0, levelsMm.length + 1, 'pyramid');
  const fixedLevels = buildPyramid(fixed, levelsMm, fixedFill);
  checkAborted(options.signal);
  const movingLevels = buildPyramid(moving, levelsMm, movingFill);
  checkAborted(options.signal);
  // Levels of an image with a fill value are copies (never the caller's data), so they may be cut.
  const coneEnds = options.coneEnds ?? 'auto';
  if (coneEnds !== 'auto' && coneEnds !== 'none')
    throw new UsageError(`coneEnds "${String(coneEnds)}" is not auto or none`);
  const cutConeEnds = (levels: Volume<Float32Array>[], fill: number | null) => {
    if (coneEnds === 'none' || fill === null) return null;
    const fov = detectConeBeamFov(levels[levels.length - 1]);
    if (fov) for (const l of levels) dropConeEnds(l, fov);
    return fov;
  };
  const fixedFov = cutConeEnds(fixedLevels, fixedFill);
  const movingFov = cutConeEnds(movingLevels, movingFill);
  const coneBeam = fixedFov !== null || movingFov !== null;
  const localSigma = options.localMeanSigmaMm ?? (coneBeam ? SCATTER_LOCAL_MEAN_SIGMA_MM : 0);
  if (!(localSigma >= 0 && Number.isFinite(localSigma)))
    throw new UsageError(`local mean sigma ${localSigma} mm must be a distance >= 0`);
  const localStd = localSigma > 0 ? (options.localStdSigmaMm ?? SCATTER_LOCAL_STD_SIGMA_MM) : 0;
  if (!(localStd >= 0 && Number.isFinite(localStd)))
    throw new UsageError(`local contrast sigma ${localStd} mm must be a distance >= 0`);
  const checkMode = options.coneBeamCheck ?? 'auto';
  if (checkMode !== 'auto' && checkMode !== 'none')
    throw new UsageError(`coneBeamCheck "${String(checkMode)}" is not auto or none`);
  const last0 = levelsMm.length - 1;
  // The cross-check's images: the finest levels less their local mean (SCATTER_LOCAL_MEAN_SIGMA_MM;
  // with that sigma, what the normalisation below leaves before dividing out the contrast), later
  // divided by their local contrast over CONE_BEAM_CHECK_STD_SIGMA_MM.
  const checkLevels =
    checkMode === 'auto' && coneBeam
      ? [fixedLevels[last0], movingLevels[last0]].map((l) => withData(l, new Float32Array(l.data.length)))
      : null;
  const checkShared = checkLevels !== null && localSigma === SCATTER_LOCAL_MEAN_SIGMA_MM;
  if (checkLevels && !checkShared)
    [fixedLevels[last0], movingLevels[last0]].forEach((l, q) => {
      checkLevels[q].data.set(l.data);
      subtractLocalMean(checkLevels[q], SCATTER_LOCAL_MEAN_SIGMA_MM);
    });
  if (localSigma > 0) {
    // A level may be the caller's own Float32 image (no fill, already at the level's spacing): copy it.
    // Coarser levels take a wider local mean (COARSE_LOCAL_MEAN_SPACINGS of their spacing at least).
    [fixedLevels, movingLevels].forEach((levels, q) => {
      for (let L = 0; L < levels.length; L++) {
        const l = levels[L];
        if (l.data === fixed.data || l.data === moving.data) levels[L] = withData(l, Float32Array.from(l.data));
        const sigma = L === last0 ? localSigma : Math.max(localSigma, COARSE_LOCAL_MEAN_SPACINGS * levelsMm[L]);
        const meanOnly = L === last0 && checkShared ? checkLevels[q].data : undefined;
        subtractLocalMean(levels[L], sigma, localStd, meanOnly);
      }
    });
  }
  const nSamples = options.samples ?? (localSigma > 0 ? SCATTER_SAMPLES : 20000);
  const movingRange = robustRange(movingLevels[movingLevels.length - 1].data);
  const labels = options.maskLabels ? new Set(options.maskLabels) : null;
  const grow = options.maskDilationMm ?? 0;
  if (!(grow >= 0 && Number.isFinite(grow))) throw new UsageError(`mask dilation ${grow} mm must be a distance >= 0`);
  const last = levelsMm.length - 1;
  // The mask as a distance map on the finest fixed level; a coarser level takes the region grown by a
  // further MASK_CONTEXT level spacings, so that the start sees the structure around a thin region.
  const dist = options.fixedMask ? maskDistance(fixedLevels[last], options.fixedMask, labels) : undefined;
  const maskReach = (L: number) => grow + (L === last ? 0 : MASK_CONTEXT * levelsMm[L]);

  // The fixed region (mask, with data) at the finest level; overlap is measured on it.
  const finest = candidates(fixedLevels[last], dist, maskReach(last));
  const init = options.initialMovingToFixed;
  const initF2m = init ? invertRigid(checkRigidInit(init)) : mat4Identity(new Float64Array(16));
  fixedToMovingToParameters(initF2m, finest.mean, 'initial transform'); // checks rigidity
  // The centre of rotation: the centroid of the part of that region that lies on moving data at the
  // start (the whole region when none does).
  const startOn = drawSamples(
    fixedLevels[last],
    finest.idx,
    nSamples,
    seed,
    onMovingData(fixedLevels[last], initF2m, movingLevels[last]),
  );
  const center = startOn.values.length >= 100 ? meanOf(startOn.points) : finest.mean;
  let p: RigidParameters = fixedToMovingToParameters(initF2m, center, 'initial transform');

  const params = new Float64Array(6);
  params.set(p.rotationRad, 0);
  params.set(p.translationMm, 3);
  const levels: RegistrationLevel[] = [];
  const reasons: string[] = [];
  let totalIter = 0;
  let metric: LevelMetric | null = null;
  let value = NaN;
  let finalSamples: SampleSet | null = null;
  let finalRadius = 10;

  for (let L = 0; L < levelsMm.length; L++) {
    const s = levelsMm[L];
    const isFinal = L === levelsMm.length - 1;
    const all = isFinal ? finest : candidates(fixedLevels[L], dist, maskReach(L));
    // Samples are drawn where the fixed region lies on moving data at the current estimate (a CBCT's
    // field of view inside a CT), so none is wasted; the whole region when too little of it does.
    const here = parametersToFixedToMoving({
      rotationRad: [params[0], params[1], params[2]],
      translationMm: [params[3], params[4], params[5]],
      centerMm: center,
    });
    if (all.idx.length < 100) {
      if (isFinal || L === 0) {
        reasons.push(`the fixed image has ${all.idx.length} voxels with data in the region at ${s} mm (need 100)`);
      }
      if (isFinal) break;
      continue;
    }
    let samples: SampleSet = drawSamples(
      fixedLevels[L],
      all.idx,
      nSamples,
      seed + L,
      onMovingData(fixedLevels[L], here, movingLevels[L]),
    );
    if (samples.values.length < 100) samples = drawSamples(fixedLevels[L], all.idx, nSamples, seed + L);
    metric = new LevelMetric(kind, samples, movingLevels[L], movingRange, options.bins);
    if (isFinal) finalSamples = samples;
    // Rotation is stepped in mm at the samples' RMS radius, so one unit of any parameter moves ~1 mm.
    let r2 = 0;
    for (let q = 0; q < samples.values.length; q++) {
      const dx = samples.points[3 * q] - center[0],
        dy = samples.points[3 * q + 1] - center[1],
        dz = samples.points[3 * q + 2] - center[2];
      r2 += dx * dx + dy * dy + dz * dz;
    }
    const radius = Math.max(10, Math.sqrt(r2 / samples.values.length));
    if (isFinal) finalRadius = radius;
    const minValid = Math.max(16, Math.ceil(0.05 * metric.n));
    if (L === 0 && localSigma > 0) {
      // Capture: normalised images keep little of the coarsest level's structure and its optimum is
      // narrow, so the ascent starts from the best of a grid of shifts about the estimate.
      const starts = captureStarts(metric, params, center, minValid);
      let best = -Infinity;
      const bestParams = Float64Array.from(params);
      for (const q of starts) {
        const f = ascend(metric, q, center, radius, 0.5 * s, 0.02 * s, maxIter, minValid, options.signal);
        totalIter += f.iterations;
        if (f.value > best) {
          best = f.value;
          bestParams.set(q);
        }
      }
      params.set(bestParams);
    }
    const fit = ascend(
      metric,
      params,
      center,
      radius,
      0.5 * s,
      (isFinal ? 0.005 : 0.02) * s,
      maxIter,
      minValid,
      options.signal,
    );
    const { iterations: it, converged } = fit;
    value = fit.value;
    totalIter += it;
    levels.push({ spacingMm: s, samples: metric.n, iterations: it, converged, metricValue: value });
    progress?.(L + 1, levelsMm.length + 1, `level ${s} mm`);
    if (!Number.isFinite(value)) {
      reasons.push(`at ${s} mm fewer than 5% of the fixed samples land on moving data`);
      break;
    }
    if (isFinal && !converged) reasons.push(`did not converge in ${maxIter} iterations at ${s} mm`);
  }

  // A C-arm CT: the finest level fitted again on both images less their local mean (scatter's and
  // truncation's shading left out) and divided by their local contrast at twice the fit's scale (with the
  // mean alone, the check's own fit ran 0.34-0.95 mm from the truth at scatter 0.01, so it failed good
  // fits). The two fits should agree; when they do not, the shading or the normalisation has pulled one
  // of them and neither is handed on.
  let check: ConeBeamCheck | null = null;
  if (checkLevels && finalSamples && levels.length === levelsMm.length && Number.isFinite(value)) {
    const [fl, ml] = checkLevels;
    for (const l of checkLevels) divideByLocalRms(l, CONE_BEAM_CHECK_STD_SIGMA_MM);
    checkAborted(options.signal);
    const f2mHere = parametersToFixedToMoving({
      rotationRad: [params[0], params[1], params[2]],
      translationMm: [params[3], params[4], params[5]],
      centerMm: center,
    });
    let cs: SampleSet = drawSamples(fl, finest.idx, SCATTER_SAMPLES, seed + 500, onMovingData(fl, f2mHere, ml));
    if (cs.values.length < 100) cs = drawSamples(fl, finest.idx, SCATTER_SAMPLES, seed + 500);
    const cm = new LevelMetric(kind, cs, ml, robustRange(ml.data), options.bins);
    const cp = Float64Array.from(params);
    const s = levelsMm[last];
    const fit = ascend(
      cm,
      cp,
      center,
      finalRadius,
      0.5 * s,
      0.005 * s,
      maxIter,
      Math.max(16, Math.ceil(0.05 * cm.n)),
      options.signal,
    );
    totalIter += fit.iterations;
    const other = parametersToFixedToMoving({
      rotationRad: [cp[0], cp[1], cp[2]],
      translationMm: [cp[3], cp[4], cp[5]],
      centerMm: center,
    });
    // How far apart the two fits put the fixed region's samples (those on moving data at the solution).
    const pts: Float64Array = finalSamples.points;
    const n = pts.length / 3;
    let sum = 0,
      max = 0;
    for (let q = 0; q < n; q++) {
      const x = pts[3 * q],
        y = pts[3 * q + 1],
        z = pts[3 * q + 2];
      let d2 = 0;
      for (let r = 0; r < 3; r++) {
        const a = f2mHere[4 * r] * x + f2mHere[4 * r + 1] * y + f2mHere[4 * r + 2] * z + f2mHere[4 * r + 3];
        const b = other[4 * r] * x + other[4 * r + 1] * y + other[4 * r + 2] * z + other[4 * r + 3];
        d2 += (a - b) * (a - b);
      }
      const d = Math.sqrt(d2);
      sum += d;
      if (d > max) max = d;
    }
    check = {
      localMeanSigmaMm: SCATTER_LOCAL_MEAN_SIGMA_MM,
      localStdSigmaMm: CONE_BEAM_CHECK_STD_SIGMA_MM,
      spacingMm: s,
      iterations: fit.iterations,
      converged: fit.converged,
      metricValue: fit.value,
      meanDisagreementMm: n ? sum / n : NaN,
      maxDisagreementMm: n ? max : NaN,
      movingToFixed: mat4ToRows(invertRigid(other)),
    };
    if (!(check.meanDisagreementMm <= CONE_BEAM_AGREEMENT_MM)) {
      reasons.push(
        `the fit and a fit with the images' shading (local mean) and contrast at another scale left out disagree by ` +
          `${check.meanDisagreementMm.toFixed(2)} mm on average over the overlap (allowed ${CONE_BEAM_AGREEMENT_MM} mm): ` +
          `a C-arm CT's scatter or truncation may have pulled the fit`,
      );
    }
  }

  // Overlap, and the metric against a null of the same images misaligned by NULL_SHIFT_MM.
  let overlap = 0,
    fixedCovered = 0,
    movingCovered = 0;
  let nullValue = NaN;
  if (metric) {
    const v = metric.evaluate(params, center, undefined, 16);
    const f2m = parametersToFixedToMoving({
      rotationRad: [params[0], params[1], params[2]],
      translationMm: [params[3], params[4], params[5]],
      centerMm: center,
    });
    // The fraction of the fixed region on moving data, from a seeded subsample of it.
    const test = onMovingData(fixedLevels[last], f2m, movingLevels[last]);
    const sub = drawSamples(fixedLevels[last], finest.idx, OVERLAP_SAMPLES, seed + 1000);
    let hits = 0;
    for (const o of sub.indices) if (test(o)) hits++;
    fixedCovered = sub.indices.length ? hits / sub.indices.length : 0;
    const overlapVoxels = fixedCovered * finest.idx.length;
    // Volumes in voxels of the finest level (both levels share its spacing).
    const movingData = movingLevels[last].data;
    let movingVoxels = 0;
    for (let o = 0; o < movingData.length; o++) if (movingData[o] === movingData[o]) movingVoxels++;
    movingCovered = movingVoxels ? Math.min(1, overlapVoxels / movingVoxels) : 0;
    overlap = Math.max(fixedCovered, movingCovered);
    if (Number.isFinite(v)) value = v;
    const shifted = Float64Array.from(params);
    for (let a = 0; a < 3; a++)
      for (const sgn of [-1, 1]) {
        shifted.set(params);
        shifted[3 + a] += sgn * NULL_SHIFT_MM;
        const w = metric.evaluate(shifted, center, undefined, Math.max(16, Math.ceil(0.05 * metric.n)));
        if (Number.isFinite(w) && !(w <= nullValue)) nullValue = w;
      }
  }
  if (!(overlap >= minOverlap)) {
    reasons.push(
      `the images' data overlap by ${(100 * overlap).toFixed(0)}% of the smaller of the fixed region and the ` +
        `moving data (need ${(100 * minOverlap).toFixed(0)}%)`,
    );
  }
  if (Number.isFinite(value)) {
    if (kind === 'mi') {
      const bins = options.bins ?? DEFAULT_HISTOGRAM_BINS;
      const floor = Math.max(MIN_MI_NATS, (3 * (bins - 1) * (bins - 1)) / (2 * Math.max(1, metric?.validCount ?? 1)));
      if (!(value >= floor)) {
        reasons.push(`mutual information ${value.toFixed(3)} nats is below ${floor.toFixed(3)}: no structure matches`);
      } else if (Number.isFinite(nullValue) && !(value >= MIN_MI_RATIO * nullValue)) {
        reasons.push(
          `mutual information ${value.toFixed(3)} is not ${MIN_MI_RATIO}x that of a ${NULL_SHIFT_MM} mm misalignment ` +
            `(${nullValue.toFixed(3)}): no structure matches`,
        );
      }
    } else if (!(value >= MIN_NC)) {
      reasons.push(`correlation ${value.toFixed(3)} is below ${MIN_NC}: no structure matches`);
    } else if (Number.isFinite(nullValue) && !(value >= nullValue + MIN_NC_MARGIN)) {
      reasons.push(
        `correlation ${value.toFixed(3)} is not ${MIN_NC_MARGIN} above that of a ${NULL_SHIFT_MM} mm misalignment ` +
          `(${nullValue.toFixed(3)}): no structure matches`,
      );
    }
  } else if (!reasons.length) {
    reasons.push('the images do not overlap');
  }

  p = {
    rotationRad: [params[0], params[1], params[2]],
    translationMm: [params[3], params[4], params[5]],
    centerMm: center,
  };
  const f2m = parametersToFixedToMoving(p);
  const m2f = invertRigid(f2m);
  const deg = 180 / Math.PI;
  progress?.(levelsMm.length + 1, levelsMm.length + 1, 'done');
  return {
    schemaVersion: REGISTRATION_SCHEMA_VERSION,
    metric: kind,
    movingToFixed: mat4ToRows(m2f),
    fixedToMoving: mat4ToRows(f2m),
    parameters: {
      convention: 'fixedToMoving = R(x - c) + c + t, R = Rz(gamma) Ry(beta) Rx(alpha)',
      rotationDeg: [params[0] * deg, params[1] * deg, params[2] * deg],
      translationMm: [params[3], params[4], params[5]],
      centerMm: center,
    },
    metricValue: value,
    nullMetricValue: nullValue,
    overlapFraction: overlap,
    fixedCoveredFraction: fixedCovered,
    movingCoveredFraction: movingCovered,
    iterations: totalIter,
    levels,
    fixedFill,
    movingFill,
    fixedFov,
    movingFov,
    localMeanSigmaMm: localSigma,
    localStdSigmaMm: localStd,
    coneBeamCheck: check,
    verdict: { status: reasons.length ? 'failed' : 'ok', reasons },
  };
}

/**
 * Regular-step gradient ascent of `metric` from `params` (changed in place): the step along the
 * normalized gradient (rotation scaled to mm at `radius`) halves whenever the gradient turns back or the
 * metric gets worse; converged when the step falls below `minStep`.
 */
function ascend(
  metric: LevelMetric,
  params: Float64Array,
  center: readonly [number, number, number],
  radius: number,
  startStep: number,
  minStep: number,
  maxIter: number,
  minValid: number,
  signal: AbortSignal | undefined,
): { value: number; iterations: number; converged: boolean } {
  const grad = new Float64Array(6);
  const prevGrad = new Float64Array(6);
  let step = startStep;
  let converged = false;
  let it = 0;
  let prevValue = -Infinity;
  let value = metric.evaluate(params, center, grad, minValid);
  for (; it < maxIter; it++) {
    checkAborted(signal);
    if (!Number.isFinite(value)) break;
    // Gradient in scaled units: rotation per mm at the radius.
    for (let a = 0; a < 3; a++) grad[a] /= radius;
    let gn = 0;
    for (let a = 0; a < 6; a++) gn += grad[a] * grad[a];
    gn = Math.sqrt(gn);
    if (!(gn > 1e-12)) {
      converged = true;
      break;
    }
    let dot = 0;
    for (let a = 0; a < 6; a++) dot += grad[a] * prevGrad[a];
    if (dot < 0 || value < prevValue) step *= 0.5;
    if (step < minStep) {
      converged = true;
      break;
    }
    for (let a = 0; a < 6; a++) {
      const d = (step * grad[a]) / gn;
      params[a] += a < 3 ? d / radius : d;
      prevGrad[a] = grad[a];
    }
    prevValue = value;
    value = metric.evaluate(params, center, grad, minValid);
  }
  return { value, iterations: it, converged };
}

/**
 * The RIGID_CAPTURE_STARTS best of a 5 x 5 x 5 grid of shifts (RIGID_CAPTURE_STEP_MM apart) about `params`, by the
 * metric's value (each a new parameter vector).
 */
function captureStarts(
  metric: LevelMetric,
  params: Float64Array,
  center: readonly [number, number, number],
  minValid: number,
): Float64Array[] {
  const found: { value: number; p: Float64Array }[] = [];
  for (let a = -2; a <= 2; a++)
    for (let b = -2; b <= 2; b++)
      for (let c = -2; c <= 2; c++) {
        const p = Float64Array.from(params);
        p[3] += a * RIGID_CAPTURE_STEP_MM;
        p[4] += b * RIGID_CAPTURE_STEP_MM;
        p[5] += c * RIGID_CAPTURE_STEP_MM;
        const value = metric.evaluate(p, center, undefined, minValid);
        if (Number.isFinite(value)) found.push({ value, p });
      }
  found.sort((x, y) => y.value - x.value);
  const starts = found.slice(0, RIGID_CAPTURE_STARTS).map((f) => f.p);
  return starts.length ? starts : [Float64Array.from(params)];
}

function checkRigidInit(m: ReadonlyMat4): ReadonlyMat4 {
  if (m.length !== 16 || !Array.prototype.every.call(m, Number.isFinite)) {
    throw new GeometryError('must be 16 finite numbers', 'initial transform');
  }
  return m;
}

/** A registration that failed its verdict, where a caller needs one to proceed (e.g. to write a transform). */
export class RegistrationError extends CorridorError {
  override readonly name: string = 'RegistrationError';
}
