/**
 * Rigid 2D/3D registration: from one or two fluoroscopic frames taken at a nominal C-arm pose, the
 * patient's rigid motion since the volume (CT/CBCT) was acquired, found by matching DRRs of the volume to
 * the frames with gradient correlation, coarse to fine. The volume is prepared once
 * (`prepareRegister2dVolume`: a pyramid of DRR volumes); a fit renders only small images at the coarse
 * levels and never allocates anything of the volume's size: the motion is applied to the DRR volume's
 * `patientToIndex` (a 4x4), not to its voxels.
 *
 * Transform names (register/README.md): the plan's volume plays the role of the moving image (the plan is
 * made on it) and the patient on the table, in the C-arm's LPS frame (what the frames see), that of the
 * fixed one, so that
 *   planningToCurrent = movingToFixed
 * carries a planned point (LPS mm, the volume's frame) to where it lies now: written as a transform file,
 * `corridor plan-transform` moves the plan with it. Its parameters are those of rigid-transform.ts applied
 * to planningToCurrent itself: planningToCurrent(x) = R (x - c) + c + t, R = Rz(gamma) Ry(beta) Rx(alpha),
 * c the centre of rotation (the plan's centre, or the views' isocentre). The overlay of a path is its
 * points carried by planningToCurrent and projected with the frame's nominal matrix.
 */
import { CancelledError, UsageError } from '../errors.js';
import { mat4Identity, mat4Multiply, mat4ToRows, type Mat4, type ReadonlyMat4 } from '../math/mat4.js';
import type { Point3 } from '../math/vec3.js';
import type { ProgressFn } from '../plan/procedure.js';
import type { Volume } from '../volume/volume.js';
import { carmFrame, projectionMatrix, validateGeometry, type CarmGeometry, type Mat34 } from '../carm/geometry.js';
import { overlayGeometry, type PathOverlay } from '../carm/overlay.js';
import type { PathLike } from '../carm/views.js';
import type { AttenuationModel } from '../drr/attenuation.js';
import { prepareDrrVolume, renderLineIntegrals, type DrrVolume, type PrepareOptions } from '../drr/drrVolume.js';
import { gaussianBlur } from '../drr/fluoro.js';
import { createDrrSimdMemory } from '../drr/wasm.js';
import { buildPyramid } from './pyramid.js';
import { fixedToMovingToParameters, invertRigid, parametersToFixedToMoving } from './rigid-transform.js';

export const REGISTER2D_SCHEMA_VERSION = 1;

/** One level of the coarse-to-fine schedule. */
export interface Register2dLevel {
  /** Isotropic voxel of the DRR volume at this level, mm (raised to the volume's coarsest voxel). */
  volumeMm: number;
  /** Largest side of the images at this level, pixels (frames are never upsampled). */
  imagePx: number;
  /** Starting step, mm (rotations: mm at ROTATION_RADIUS_MM from the centre). */
  stepMm: number;
  /** The level has converged when the step falls below this, mm. */
  minStepMm: number;
}

/**
 * The default schedule: 4 mm volume and 64-pixel images, then 2 mm at 128, then 1.5 mm at 256. A 2 mm
 * finest level left one view's depth about 1 mm short on the phantom (frames from its 1 mm CT); 1.5 mm
 * within 0.7 mm.
 */
export const DEFAULT_REGISTER2D_LEVELS: readonly Register2dLevel[] = [
  { volumeMm: 4, imagePx: 64, stepMm: 4, minStepMm: 1 },
  { volumeMm: 2, imagePx: 128, stepMm: 1, minStepMm: 0.25 },
  { volumeMm: 1.5, imagePx: 256, stepMm: 0.5, minStepMm: 0.1 },
];
/**
 * The frames are blurred by this many level voxels (Gaussian sigma, at the isocentre) before matching, as
 * the DRR of a smoothed volume is: edges of unequal sharpness peak at different places, which one view
 * reads as magnification, i.e. depth.
 */
export const MODEL_BLUR_PER_VOXEL = 0.5;
/** Rotations are searched in steps of (step mm / this radius) radians: mm of arc at 50 mm. */
export const ROTATION_RADIUS_MM = 50;
/** Below this gradient correlation (mean over views) no structure is said to match. */
export const MIN_GRADIENT_CORRELATION = 0.2;
/** The similarity must exceed its best value with the patient shifted NULL_SHIFT_2D_MM across each view by this. */
export const MIN_GC_MARGIN = 0.1;
export const NULL_SHIFT_2D_MM = 10;
/** A correction beyond these from the start is outside the capture range and reported as failed. */
export const MAX_CORRECTION_MM = 30;
export const MAX_CORRECTION_DEG = 15;
/** The first level starts with a grid of shifts across the first view: +-12 mm in 3 mm steps. */
export const CAPTURE_HALF_RANGE_MM = 12;
export const CAPTURE_STEP_MM = 3;
/** Sweeps per level at most. */
export const MAX_SWEEPS = 20;

export interface Register2dVolume {
  /** DRR volumes by level spacing (mm), each prepared once. */
  levels: { spacingMm: number; dv: DrrVolume }[];
  /** The volume's grid centre, LPS mm. */
  centerMm: Point3;
  source?: string;
}

export interface PrepareRegister2dOptions {
  /** Spacings to prepare (default: those of DEFAULT_REGISTER2D_LEVELS). */
  levelsMm?: readonly number[];
  /** HU -> attenuation model of the DRRs (default: drr/'s, 75 kV). */
  attenuation?: AttenuationModel;
  /**
   * Passed to prepareDrrVolume (default true: WebAssembly row loops; 'shared' with `allocate` returning
   * shared memory, for a pool of worker threads such as packages/node's Register2dPool).
   */
  wasm?: boolean | 'shared';
  /** Passed to prepareDrrVolume: where the DRR volumes' arrays live (default: plain ArrayBuffers). */
  allocate?: PrepareOptions['allocate'];
}

/**
 * The volume prepared for 2D/3D registration: isotropic smoothed copies at each level's spacing
 * (raised to the volume's coarsest voxel), each turned into a DRR volume. Once per volume; a
 * workstation keeps it for the case.
 */
export function prepareRegister2dVolume(volume: Volume, opts: PrepareRegister2dOptions = {}): Register2dVolume {
  const coarsest = Math.max(...volume.spacing);
  const wanted = [...new Set((opts.levelsMm ?? DEFAULT_REGISTER2D_LEVELS.map((l) => l.volumeMm)).map((s) => s))];
  for (const s of wanted) if (!(s > 0)) throw new UsageError(`level spacing ${s} mm must be positive`);
  const spacings = [...new Set(wanted.map((s) => Math.max(s, coarsest)))].sort((a, b) => a - b);
  const pyramid = buildPyramid(volume, spacings, null);
  const levels = spacings.map((s, n) => ({
    spacingMm: s,
    dv: prepareDrrVolume(pyramid[n], {
      ...(opts.attenuation ? { attenuation: opts.attenuation } : {}),
      wasm: opts.wasm ?? true,
      ...(opts.allocate ? { allocate: opts.allocate } : {}),
    }),
  }));
  const m = volume.indexToPatient;
  const c = volume.dims.map((n) => (n - 1) / 2);
  const centerMm = [0, 1, 2].map(
    (r) => m[r * 4] * c[0] + m[r * 4 + 1] * c[1] + m[r * 4 + 2] * c[2] + m[r * 4 + 3],
  ) as Point3;
  return { levels, centerMm, source: volume.meta.source };
}

/** One prepared level as plain arrays (copies): what another worker needs to render it. */
export interface Register2dLevelParts {
  spacingMm: number;
  dv: Omit<DrrVolume, 'simd'>;
}

/**
 * A prepared volume's levels as copies of their arrays (mu, occupancy, matrices), to post to another
 * worker (the buffers can be transferred) and rebuild there with register2dVolumeFromParts: the
 * workstation's motion worker hands them to its render helper instead of the whole volume.
 */
export function register2dVolumeParts(volume: Register2dVolume): {
  levels: Register2dLevelParts[];
  centerMm: Point3;
  source?: string;
} {
  return {
    levels: volume.levels.map(({ spacingMm, dv }) => {
      const { simd: _simd, ...rest } = dv;
      return {
        spacingMm,
        dv: {
          ...rest,
          dims: [...dv.dims],
          spacing: [...dv.spacing],
          indexToPatient: Float64Array.from(dv.indexToPatient),
          patientToIndex: Float64Array.from(dv.patientToIndex),
          mu: dv.mu.slice(),
          occupancy: dv.occupancy.slice(),
          occupancyDims: [...dv.occupancyDims],
        },
      };
    }),
    centerMm: [...volume.centerMm],
    ...(volume.source !== undefined ? { source: volume.source } : {}),
  };
}

/** The prepared volume from register2dVolumeParts, mu in WebAssembly memory (default) as prepareDrrVolume puts it. */
export function register2dVolumeFromParts(
  parts: ReturnType<typeof register2dVolumeParts>,
  opts: { wasm?: boolean } = {},
): Register2dVolume {
  return {
    levels: parts.levels.map(({ spacingMm, dv }) => {
      const simd = opts.wasm === false ? null : createDrrSimdMemory(dv.mu.length * 2, false);
      if (!simd) return { spacingMm, dv: { ...dv } };
      const mu = new Uint16Array(simd.memory.buffer, 0, dv.mu.length);
      mu.set(dv.mu);
      return { spacingMm, dv: { ...dv, mu, simd } };
    }),
    centerMm: [...parts.centerMm],
    ...(parts.source !== undefined ? { source: parts.source } : {}),
  };
}

/** One fluoroscopic frame and its nominal pose. */
export interface Register2dView {
  /** Display grey levels (0 black = bone ... 255 white = air), columns fastest: readXaFrame's `gray`. */
  gray: ArrayLike<number>;
  /** The nominal C-arm geometry of the frame (its positioner tags, or the pose it was rendered at). */
  geometry: CarmGeometry;
  name?: string;
}

export interface Register2dOptions {
  /** Starting planningToCurrent (rigid, LPS mm), e.g. the previous correction. Default identity. */
  initialPlanningToCurrent?: ReadonlyMat4;
  /**
   * Centre of rotation c, LPS mm: the point whose depth uncertainty is reported. Default: the plan's
   * centre (entries and targets), else the mean of the views' isocentres.
   */
  centerMm?: Point3;
  /** Paths to overlay before and after the correction. */
  paths?: readonly PathLike[];
  levels?: readonly Register2dLevel[];
  onProgress?: ProgressFn;
  signal?: AbortSignal;
}

export interface Register2dLevelReport {
  volumeMm: number;
  columns: number[];
  rows: number[];
  sweeps: number;
  renders: number;
  converged: boolean;
  /** Gradient correlation at the end of the level (mean over views). */
  similarity: number;
}

export interface Register2dViewReport {
  name?: string;
  geometry: CarmGeometry;
  /** Gradient correlation on the finest level at the start and at the solution. */
  similarityBefore: number;
  similarity: number;
  /** Plan paths projected with the starting pose (before) and the corrected one (after). */
  before: PathOverlay[];
  after: PathOverlay[];
}

export interface Register2dUncertainty {
  /**
   * Standard deviations (mm) of the centre's position along the first view's u (columns), v (rows) and
   * d (central ray, source to detector) axes, from the curvature of the similarity (Fisher information of
   * the gradient images, residual noise and its correlation estimated from the frames themselves).
   */
  centerSdMm: [number, number, number];
  /** The first view's central-ray direction (LPS unit vector, source to detector). */
  depthDirection: [number, number, number];
  /**
   * Standard deviation of the centre along depthDirection, mm: from the curvature (as centerSdMm[2]) and
   * from a jackknife over image tiles of the similarity's profile along the depth valley (the spread of
   * where the maximum lies when a sixteenth of each frame is left out), which sees model mismatch too;
   * the jackknife only with one view (null with two).
   */
  depthSdMm: { curvature: number; jackknife: number | null };
  /**
   * One view: a bound on the depth bias of the model (the DRR volume's voxel): how far the depth profile's
   * peak moves between the finest and the coarsest prepared volume, extrapolated linearly to a voxel of 0
   * (null with two views; Infinity when a peak lies at the profile's end).
   */
  depthModelBiasMm: number | null;
  /**
   * About 95 % bound on the centre's error along depthDirection, mm: one view, 2 x the larger SD plus the
   * model's bias bound plus half a profile step; two views, 2 x the curvature's SD.
   */
  depthUncertaintyMm: number;
  /** Rotation standard deviations about u, v, d, degrees. */
  rotationSdDeg: [number, number, number];
}

export interface Register2dResult {
  schemaVersion: number;
  /** A planned point (LPS mm, volume frame) to where it lies now (C-arm's LPS frame). Row-major 4x4 rows. */
  planningToCurrent: number[][];
  /** The inverse. */
  currentToPlanning: number[][];
  parameters: {
    convention: 'planningToCurrent = R(x - c) + c + t, R = Rz(gamma) Ry(beta) Rx(alpha)';
    rotationDeg: [number, number, number];
    translationMm: [number, number, number];
    centerMm: [number, number, number];
  };
  /** Gradient correlation (mean over views) on the finest level: a similarity, not an accuracy. */
  similarity: number;
  /** Best similarity with the patient shifted NULL_SHIFT_2D_MM across the views from the solution. */
  nullSimilarity: number;
  views: Register2dViewReport[];
  levels: Register2dLevelReport[];
  /** DRRs rendered in the fit (all levels, the uncertainty and the null test). */
  renders: number;
  uncertainty: Register2dUncertainty;
  /** True with one view: depth along its central ray is what one view determines poorly. */
  singleView: boolean;
  verdict: { status: 'ok' | 'failed'; reasons: string[] };
}

// --- images -------------------------------------------------------------------------------------------

/** A view at one level: its geometry, the frame's normalized gradients, and scratch for renders. */
interface LevelView {
  g: CarmGeometry;
  /** Frame gradients, zero mean and norm 1/sqrt(2) each over the interior pixels (so GC = fx.dx + fy.dy). */
  fx: Float32Array;
  fy: Float32Array;
  /** Pixels that count (validPixels), as a mask and as a list of offsets. */
  mask: Uint8Array;
  idx: Int32Array;
  /** Scratch of the renders of one batch (grown on demand; valid until the next batch). */
  slots: RenderSlot[];
}

/** One render's line integrals and their Sobel gradients. */
interface RenderSlot {
  li: Float32Array;
  dx: Float32Array;
  dy: Float32Array;
}

/**
 * One DRR a fit needs: the prepared level `level` (an index into Register2dVolume.levels) with the
 * patient moved (`patientToIndex`: the DRR volume's patientToIndex composed with currentToPlanning),
 * rendered on `geometry` into `out` (line integrals, columns fastest, as renderLineIntegrals).
 */
export interface Register2dRenderJob {
  level: number;
  patientToIndex: Float64Array;
  geometry: CarmGeometry;
  out: Float32Array;
}

/**
 * Renders the DRRs of a fit, in batches of independent images (the +- probes of a direction, the
 * capture grid, the depth profile, the views): a pool of workers renders them in parallel. Must give the
 * images renderLineIntegrals gives for the job (a pool's bands do).
 */
export interface Register2dRenderer {
  render(jobs: readonly Register2dRenderJob[]): Promise<void>;
}

/** What the fit's generator yields: a batch of renders to fill before it goes on. */
type Renders<T> = Generator<Register2dRenderJob[], T, void>;
/** Renders poses of views at a prepared level in one batch; the slots hold their images and gradients. */
type RenderBatch = (level: number, items: readonly { lv: LevelView; pose: Pose }[]) => Renders<RenderSlot[]>;

function levelGeometry(g: CarmGeometry, imagePx: number): CarmGeometry {
  const f = Math.max(g.columns, g.rows) / imagePx;
  if (!(f > 1)) return { ...g, isocenter: [...g.isocenter] as Point3 };
  const columns = Math.max(8, Math.round(g.columns / f)),
    rows = Math.max(8, Math.round(g.rows / f));
  return {
    ...g,
    columns,
    rows,
    columnSpacingMm: (g.columns * g.columnSpacingMm) / columns,
    rowSpacingMm: (g.rows * g.rowSpacingMm) / rows,
    isocenter: [...g.isocenter] as Point3,
  };
}

/** The frame (bone bright: 255 - grey) smoothed and resampled onto level geometry gl (bilinear). */
function frameAtLevel(gray: ArrayLike<number>, g: CarmGeometry, gl: CarmGeometry, blurMm: number): Float32Array {
  const n = g.columns * g.rows;
  const src = new Float32Array(n);
  for (let i = 0; i < n; i++) src[i] = 255 - gray[i];
  const fc = gl.columnSpacingMm / g.columnSpacingMm,
    fr = gl.rowSpacingMm / g.rowSpacingMm;
  const antialias = gl.columns === g.columns && gl.rows === g.rows ? 0 : 0.5 * Math.max(fc, fr);
  const sigma = Math.hypot(antialias, blurMm / Math.min(g.columnSpacingMm, g.rowSpacingMm));
  const sm = gaussianBlur(src, g.columns, g.rows, sigma);
  if (gl.columns === g.columns && gl.rows === g.rows) return sm;
  const out = new Float32Array(gl.columns * gl.rows);
  for (let r = 0; r < gl.rows; r++) {
    const y = Math.min(g.rows - 1, Math.max(0, (r - (gl.rows - 1) / 2) * fr + (g.rows - 1) / 2));
    const y0 = Math.min(g.rows - 2, Math.floor(y)),
      wy = y - y0;
    for (let c = 0; c < gl.columns; c++) {
      const x = Math.min(g.columns - 1, Math.max(0, (c - (gl.columns - 1) / 2) * fc + (g.columns - 1) / 2));
      const x0 = Math.min(g.columns - 2, Math.floor(x)),
        wx = x - x0;
      const o = x0 + g.columns * y0;
      out[c + gl.columns * r] =
        (1 - wy) * ((1 - wx) * sm[o] + wx * sm[o + 1]) +
        wy * ((1 - wx) * sm[o + g.columns] + wx * sm[o + g.columns + 1]);
    }
  }
  return out;
}

/** Sobel gradients of an image into gx, gy (border pixels 0). */
function sobel(img: Float32Array, columns: number, rows: number, gx: Float32Array, gy: Float32Array) {
  gx.fill(0);
  gy.fill(0);
  for (let r = 1; r < rows - 1; r++) {
    for (let c = 1; c < columns - 1; c++) {
      const o = c + columns * r;
      const a = img[o - columns - 1],
        b = img[o - columns],
        d = img[o - columns + 1],
        e = img[o - 1],
        f = img[o + 1],
        h = img[o + columns - 1],
        i = img[o + columns],
        j = img[o + columns + 1];
      gx[o] = d + 2 * f + j - (a + 2 * e + h);
      gy[o] = h + 2 * i + j - (a + 2 * b + d);
    }
  }
}

/** Subtract the mean over the pixels `idx` and scale them to norm 1/sqrt(2) (in place); false when flat. */
function normalizeOver(a: Float32Array, idx: Int32Array): boolean {
  let s = 0;
  for (let q = 0; q < idx.length; q++) s += a[idx[q]];
  const mean = s / idx.length;
  let ss = 0;
  for (let q = 0; q < idx.length; q++) {
    const v = (a[idx[q]] -= mean);
    ss += v * v;
  }
  if (!(ss > 0)) return false;
  const k = 1 / Math.sqrt(2 * ss);
  for (let q = 0; q < idx.length; q++) a[idx[q]] *= k;
  return true;
}

/** Correlation of a frame gradient f (normalized over idx) with d over idx: sum f d / |d - mean d| / sqrt 2. */
function correlate(f: Float32Array, d: Float32Array, idx: Int32Array): number {
  let sfd = 0,
    sd = 0,
    sdd = 0;
  for (let q = 0; q < idx.length; q++) {
    const o = idx[q];
    const v = d[o];
    sfd += f[o] * v;
    sd += v;
    sdd += v * v;
  }
  const den = sdd - (sd * sd) / idx.length;
  return den > 0 ? sfd / Math.sqrt(2 * den) : 0;
}

/** Grey levels at or beyond these are clipped by the display window (air, collimator, dense metal). */
const CLIPPED_BELOW = 2,
  CLIPPED_ABOVE = 253;

/**
 * The pixels of level geometry gl that count: their 3 x 3 neighbourhood (Sobel) maps onto frame pixels
 * at least 2 pixels from any clipped grey level (an air-white or black region's edge is the window's,
 * not the anatomy's, and the DRR has no window), and off the border.
 */
function validPixels(
  gray: ArrayLike<number>,
  g: CarmGeometry,
  gl: CarmGeometry,
): { mask: Uint8Array; idx: Int32Array } {
  const n = g.columns * g.rows;
  const clipped = new Uint8Array(n);
  for (let i = 0; i < n; i++) clipped[i] = gray[i] < CLIPPED_BELOW || gray[i] > CLIPPED_ABOVE ? 1 : 0;
  // Grow the clipped region by 2 pixels (square), rows then columns.
  const grow = (src: Uint8Array, stride: number, len: number) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      if (!src[i]) continue;
      const pos = stride === 1 ? i % g.columns : Math.floor(i / g.columns);
      for (let k = -2; k <= 2; k++) if (pos + k >= 0 && pos + k < len) out[i + k * stride] = 1;
    }
    return out;
  };
  const bad = grow(grow(clipped, 1, g.columns), g.columns, g.rows);
  const fc = gl.columnSpacingMm / g.columnSpacingMm,
    fr = gl.rowSpacingMm / g.rowSpacingMm;
  const m0 = new Uint8Array(gl.columns * gl.rows);
  for (let r = 0; r < gl.rows; r++) {
    const y = Math.round((r - (gl.rows - 1) / 2) * fr + (g.rows - 1) / 2);
    for (let c = 0; c < gl.columns; c++) {
      const x = Math.round((c - (gl.columns - 1) / 2) * fc + (g.columns - 1) / 2);
      if (x >= 0 && y >= 0 && x < g.columns && y < g.rows && !bad[x + g.columns * y]) m0[c + gl.columns * r] = 1;
    }
  }
  const mask = new Uint8Array(gl.columns * gl.rows);
  let count = 0;
  for (let r = 1; r < gl.rows - 1; r++)
    for (let c = 1; c < gl.columns - 1; c++) {
      let ok = 1;
      for (let dr = -1; dr <= 1 && ok; dr++)
        for (let dc = -1; dc <= 1; dc++) if (!m0[c + dc + gl.columns * (r + dr)]) ok = 0;
      mask[c + gl.columns * r] = ok;
      count += ok;
    }
  const idx = new Int32Array(count);
  for (let o = 0, q = 0; o < mask.length; o++) if (mask[o]) idx[q++] = o;
  return { mask, idx };
}

// --- pose ---------------------------------------------------------------------------------------------

/** A pose: Euler angles (rad) and translation (mm) about a fixed centre, as rigid-transform.ts. */
type Pose = Float64Array; // [alpha, beta, gamma, tx, ty, tz]

function poseMatrix(x: Pose, center: Point3): Mat4 {
  return parametersToFixedToMoving({
    rotationRad: [x[0], x[1], x[2]],
    translationMm: [x[3], x[4], x[5]],
    centerMm: center,
  });
}

/** 3x4 P times a 4x4 M (the projection of points carried by M). */
function projectionAfter(P: Mat34, m: ReadonlyMat4): Mat34 {
  const out = new Float64Array(12);
  for (let r = 0; r < 3; r++)
    for (let c = 0; c < 4; c++)
      out[r * 4 + c] = P[r * 4] * m[c] + P[r * 4 + 1] * m[4 + c] + P[r * 4 + 2] * m[8 + c] + P[r * 4 + 3] * m[12 + c];
  return out;
}

/** Solve the symmetric 6x6 system's inverse by Gauss-Jordan with partial pivoting; null when singular. */
function invert6(a: Float64Array): Float64Array | null {
  const n = 6;
  const m = new Float64Array(n * 2 * n);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) m[r * 2 * n + c] = a[r * n + c];
    m[r * 2 * n + n + r] = 1;
  }
  for (let col = 0; col < n; col++) {
    let piv = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(m[r * 2 * n + col]) > Math.abs(m[piv * 2 * n + col])) piv = r;
    const p = m[piv * 2 * n + col];
    if (!(Math.abs(p) > 1e-300)) return null;
    if (piv !== col)
      for (let c = 0; c < 2 * n; c++) {
        const t = m[col * 2 * n + c];
        m[col * 2 * n + c] = m[piv * 2 * n + c];
        m[piv * 2 * n + c] = t;
      }
    for (let c = 0; c < 2 * n; c++) m[col * 2 * n + c] /= p;
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const f = m[r * 2 * n + col];
      if (f !== 0) for (let c = 0; c < 2 * n; c++) m[r * 2 * n + c] -= f * m[col * 2 * n + c];
    }
  }
  const out = new Float64Array(n * n);
  for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) out[r * n + c] = m[r * 2 * n + n + c];
  return out;
}

function checkAborted(signal: AbortSignal | undefined) {
  if (signal?.aborted) throw new CancelledError('registration was cancelled');
}

/**
 * Refines the patient's rigid pose from one or two frames (see the module comment and README.md). The
 * volume comes from `prepareRegister2dVolume`. Throws UsageError on bad input; a registration that
 * did not converge, found no matching structure or moved beyond the capture range returns with
 * `verdict.status` 'failed' (its transform is the last estimate and must not be handed on).
 */
export function register2d(
  volume: Register2dVolume,
  views: readonly Register2dView[],
  options: Register2dOptions = {},
): Register2dResult {
  const fit = register2dSteps(volume, views, options);
  for (let step = fit.next(); ; step = fit.next()) {
    if (step.done) return step.value;
    for (const j of step.value)
      renderLineIntegrals({ ...volume.levels[j.level].dv, patientToIndex: j.patientToIndex }, j.geometry, j.out);
  }
}

/**
 * register2d with its DRRs rendered by `renderer` (a pool of workers: packages/node's Register2dPool, the
 * workstation's motion worker), each batch of independent images at once. The same fit, step for step,
 * and the same result as register2d where the renderer gives renderLineIntegrals's images.
 */
export async function register2dAsync(
  volume: Register2dVolume,
  views: readonly Register2dView[],
  options: Register2dOptions,
  renderer: Register2dRenderer,
): Promise<Register2dResult> {
  const fit = register2dSteps(volume, views, options);
  for (let step = fit.next(); ; step = fit.next()) {
    if (step.done) return step.value;
    await renderer.render(step.value);
  }
}

/** The fit, as a generator that yields each batch of renders it needs and resumes when they are filled. */
function* register2dSteps(
  volume: Register2dVolume,
  views: readonly Register2dView[],
  options: Register2dOptions,
): Renders<Register2dResult> {
  if (views.length < 1 || views.length > 2)
    throw new UsageError(`2D/3D registration takes 1 or 2 frames (got ${views.length})`);
  for (const [i, v] of views.entries()) {
    validateGeometry(v.geometry, v.name ?? `frame ${i + 1}`);
    if (v.gray.length !== v.geometry.columns * v.geometry.rows)
      throw new UsageError(
        `frame holds ${v.gray.length} pixels, its geometry ${v.geometry.columns} x ${v.geometry.rows}`,
        v.name ?? `frame ${i + 1}`,
      );
  }
  const schedule = options.levels ?? DEFAULT_REGISTER2D_LEVELS;
  if (!schedule.length) throw new UsageError('no registration levels');
  const paths = options.paths ?? [];
  const signal = options.signal;
  let center: Point3;
  if (options.centerMm) center = [...options.centerMm] as Point3;
  else if (paths.length) {
    center = [0, 0, 0];
    for (const p of paths) for (let i = 0; i < 3; i++) center[i] += (p.entry[i] + p.target[i]) / (2 * paths.length);
  } else {
    center = [0, 0, 0];
    for (const v of views) for (let i = 0; i < 3; i++) center[i] += v.geometry.isocenter[i] / views.length;
  }
  const init = options.initialPlanningToCurrent ?? mat4Identity(new Float64Array(16));
  const x0 = fixedToMovingToParameters(init, center, 'initial transform');
  const x: Pose = Float64Array.from([...x0.rotationRad, ...x0.translationMm]);

  // Search directions: translations along the first view's u, v, d and rotations about them (Euler
  // increments equal the rotation vector to first order), in mm (rotations: mm of arc at the radius).
  const f0 = carmFrame(views[0].geometry);
  const axes = [f0.u, f0.v, f0.d].map((a) => [a[0], a[1], a[2]]);
  const dirs: Float64Array[] = [];
  for (const a of axes)
    dirs.push(
      Float64Array.from([a[0] / ROTATION_RADIUS_MM, a[1] / ROTATION_RADIUS_MM, a[2] / ROTATION_RADIUS_MM, 0, 0, 0]),
    );
  for (const a of axes) dirs.push(Float64Array.from([0, 0, 0, a[0], a[1], a[2]]));

  // One view: depth along its central ray is left out of the search (it would wander along its flat
  // valley: 27 mm on the real pelvis CT); the depth profile after the last level searches it alone.
  const searchDirs = views.length === 1 ? dirs.slice(0, 5) : dirs;
  let renders = 0;
  /** The prepared level (index) of a level's volume spacing: the coarsest at or below it. */
  const pick = (mm: number) => {
    let best = 0;
    for (const [i, l] of volume.levels.entries()) if (l.spacingMm <= mm + 1e-9) best = i;
    return best;
  };
  const makeLevelViews = (imagePx: number, volumeMm: number): LevelView[] =>
    views.map((v) => {
      const gl = levelGeometry(v.geometry, imagePx);
      // The DRR's own blur (the level's voxels), projected onto the detector: the frame gets as much.
      const blurMm = MODEL_BLUR_PER_VOXEL * volumeMm * (v.geometry.sidMm / v.geometry.sodMm);
      const img = frameAtLevel(v.gray, v.geometry, gl, blurMm);
      const n = gl.columns * gl.rows;
      const fx = new Float32Array(n),
        fy = new Float32Array(n);
      sobel(img, gl.columns, gl.rows, fx, fy);
      const { mask, idx } = validPixels(v.gray, v.geometry, gl);
      if (idx.length < 64 || !normalizeOver(fx, idx) || !normalizeOver(fy, idx))
        throw new UsageError('the frame has no gradients to match (flat, or clipped everywhere)', v.name);
      for (let o = 0; o < n; o++) if (!mask[o]) fx[o] = fy[o] = 0;
      return { g: gl, fx, fy, mask, idx, slots: [] };
    });
  // The motion acts on the DRR volume's patientToIndex: index = patientToIndex(currentToPlanning(y)).
  // Each item is rendered into a slot of its view (valid until the next batch) with its Sobel gradients.
  const render: RenderBatch = function* (level, items) {
    const dv = volume.levels[level].dv;
    const used = new Map<LevelView, number>();
    const jobs: Register2dRenderJob[] = [];
    const slots: RenderSlot[] = [];
    for (const { lv, pose } of items) {
      const k = used.get(lv) ?? 0;
      used.set(lv, k + 1);
      const n = lv.g.columns * lv.g.rows;
      while (lv.slots.length <= k)
        lv.slots.push({ li: new Float32Array(n), dx: new Float32Array(n), dy: new Float32Array(n) });
      const slot = lv.slots[k];
      const c2p = invertRigid(poseMatrix(pose, center));
      jobs.push({
        level,
        patientToIndex: mat4Multiply(new Float64Array(16), dv.patientToIndex, c2p),
        geometry: lv.g,
        out: slot.li,
      });
      slots.push(slot);
    }
    yield jobs;
    renders += jobs.length;
    for (const [i, s] of slots.entries()) sobel(s.li, items[i].lv.g.columns, items[i].lv.g.rows, s.dx, s.dy);
    return slots;
  };
  /** The similarity (mean over views) at each pose, all rendered in one batch; perView: the first pose's. */
  function* similarities(level: number, lvs: LevelView[], poses: readonly Pose[], perView?: number[]) {
    const items = poses.flatMap((pose) => lvs.map((lv) => ({ lv, pose })));
    const slots = yield* render(level, items);
    return poses.map((_, m) => {
      let s = 0;
      for (const [i, lv] of lvs.entries()) {
        const sl = slots[m * lvs.length + i];
        const gc = correlate(lv.fx, sl.dx, lv.idx) + correlate(lv.fy, sl.dy, lv.idx);
        if (perView && m === 0) perView[i] = gc;
        s += gc;
      }
      return s / lvs.length;
    });
  }
  function* similarity(level: number, lvs: LevelView[], pose: Pose, perView?: number[]) {
    return (yield* similarities(level, lvs, [Float64Array.from(pose)], perView))[0];
  }

  const levelReports: Register2dLevelReport[] = [];
  const at = (dir: Float64Array, s: number) => {
    const p = new Float64Array(6);
    for (let q = 0; q < 6; q++) p[q] = x[q] + s * dir[q];
    return p;
  };
  let lastLevelViews: LevelView[] = [];
  let lastDv = pick(schedule[schedule.length - 1].volumeMm);
  let similarityBefore: number[] = [];
  for (const [li, level] of schedule.entries()) {
    checkAborted(signal);
    if (!(level.imagePx >= 8 && level.stepMm > 0 && level.minStepMm > 0 && level.minStepMm <= level.stepMm))
      throw new UsageError(`registration level ${li + 1} is not valid (${JSON.stringify(level)})`);
    const dv = pick(level.volumeMm);
    const lvs = makeLevelViews(level.imagePx, levelsSpacing(volume, level.volumeMm));
    const r0 = renders;
    const isLast = li === schedule.length - 1;
    if (isLast) {
      similarityBefore = new Array<number>(views.length).fill(0);
      const xs = Float64Array.from(x);
      x.set(Float64Array.from([...x0.rotationRad, ...x0.translationMm]));
      yield* similarity(dv, lvs, x, similarityBefore);
      x.set(xs);
    }
    let fBest = yield* similarity(dv, lvs, x);
    if (li === 0) {
      // Capture: a grid over the shifts across the first view (rows and columns), before any sweep; a
      // local search from the start alone ended 12 mm off on the real pelvis CT (sacral foramina repeat).
      const best = Float64Array.from(x);
      const n = Math.round(CAPTURE_HALF_RANGE_MM / CAPTURE_STEP_MM);
      const grid: Pose[] = [];
      for (let a = -n; a <= n; a++)
        for (let b = -n; b <= n; b++) {
          if (a === 0 && b === 0) continue;
          const p = new Float64Array(6);
          for (let q = 0; q < 6; q++) p[q] = x[q] + CAPTURE_STEP_MM * (a * dirs[3][q] + b * dirs[4][q]);
          grid.push(p);
        }
      const f = yield* similarities(dv, lvs, grid);
      for (const [m, p] of grid.entries())
        if (f[m] > fBest) {
          fBest = f[m];
          best.set(p);
        }
      x.set(best);
    }
    let h = level.stepMm;
    let sweeps = 0;
    let converged = false;
    while (sweeps < MAX_SWEEPS) {
      checkAborted(signal);
      sweeps++;
      let moved = 0;
      for (const dir of searchDirs) {
        const [fp, fm] = yield* similarities(dv, lvs, [at(dir, h), at(dir, -h)]);
        let bestS = 0,
          bestF = fBest;
        if (fp > bestF) [bestS, bestF] = [h, fp];
        if (fm > bestF) [bestS, bestF] = [-h, fm];
        const curv = fp + fm - 2 * fBest;
        if (curv < 0) {
          let s = (h * (fp - fm)) / (2 * -curv);
          s = Math.max(-2 * h, Math.min(2 * h, s));
          if (Math.abs(s) > 0.05 * h && Math.abs(s - bestS) > 0.05 * h) {
            const fs = yield* similarity(dv, lvs, at(dir, s));
            if (fs > bestF) [bestS, bestF] = [s, fs];
          }
        }
        if (bestS !== 0) {
          for (let q = 0; q < 6; q++) x[q] += bestS * dir[q];
          fBest = bestF;
          moved = Math.max(moved, Math.abs(bestS));
        }
      }
      options.onProgress?.(
        li * MAX_SWEEPS + sweeps,
        schedule.length * MAX_SWEEPS,
        `level ${li + 1}: step ${h.toFixed(2)} mm`,
      );
      if (moved <= 0.5 * h) {
        h *= 0.5;
        if (h < level.minStepMm) {
          converged = true;
          break;
        }
      }
    }
    levelReports.push({
      volumeMm: levelsSpacing(volume, level.volumeMm),
      columns: lvs.map((l) => l.g.columns),
      rows: lvs.map((l) => l.g.rows),
      sweeps,
      renders: renders - r0,
      converged,
      similarity: fBest,
    });
    lastLevelViews = lvs;
    lastDv = dv;
  }
  const lvs = lastLevelViews;
  const dv = lastDv;
  checkAborted(signal);
  const fisher = yield* poseUncertainty(dv, lvs, x, dirs, render);
  // One view: the depth valley's profile (two views see each other's depth across their images).
  const profile = fisher && views.length === 1 ? yield* depthProfile(dv, lvs, x, dirs, fisher.cov, render) : null;
  // The model's own depth bias: a DRR of a smoother volume peaks at another depth (on the phantom, a 2 mm
  // volume against frames of its 1 mm CT put one view's depth about 1 mm short; on the real pelvis CT
  // 1.5 mm). The same profile on the next coarser prepared volume shows how far the peak moves with the
  // voxel, and extrapolating that linearly to a voxel of 0 bounds the bias of the finest level. Without a
  // coarser volume the bound is Infinity: nothing is claimed.
  let depthModelBiasMm = Infinity;
  const sf = levelsSpacing(volume, schedule[schedule.length - 1].volumeMm);
  // The next coarser prepared volume than the finest level's.
  const coarseLevel = volume.levels.findIndex((l) => l.spacingMm > sf + 1e-9);
  const coarse = coarseLevel >= 0 ? volume.levels[coarseLevel] : undefined;
  if (profile && fisher && coarse) {
    const cl = makeLevelViews(schedule[schedule.length - 1].imagePx, coarse.spacingMm);
    const pc = yield* depthProfile(coarseLevel, cl, x, dirs, fisher.cov, render, {
      direction: profile.direction,
      centre: profile.best,
    });
    depthModelBiasMm =
      profile.interior && pc.interior ? (Math.abs(pc.offMm - profile.offMm) * sf) / (coarse.spacingMm - sf) : Infinity;
  }
  if (profile && profile.moveMm !== 0) for (let q = 0; q < 6; q++) x[q] += profile.moveMm * profile.direction[q];
  // The solution's similarity: the uncertainty rendered it, unless the depth profile moved the pose.
  let perView = new Array<number>(views.length).fill(0);
  let finalSimilarity: number;
  if (fisher && !(profile && profile.moveMm !== 0)) {
    perView = fisher.similarity;
    finalSimilarity = perView.reduce((a, b) => a + b, 0) / views.length;
  } else finalSimilarity = yield* similarity(dv, lvs, x, perView);

  // Null test: the patient shifted across each view (u and v, both signs; an axis that two views share,
  // such as the rows of two views about one C-arm axis, once).
  const shifted: Pose[] = [];
  const shifts: number[][] = [];
  for (const v of views) {
    const fr = carmFrame(v.geometry);
    for (const a of [fr.u, fr.v]) {
      if (shifts.some((b) => Math.abs(a[0] * b[0] + a[1] * b[1] + a[2] * b[2]) > 1 - 1e-9)) continue;
      shifts.push([a[0], a[1], a[2]]);
      for (const s of [-1, 1]) {
        const p = Float64Array.from(x);
        for (let q = 0; q < 3; q++) p[3 + q] += s * NULL_SHIFT_2D_MM * a[q];
        shifted.push(p);
      }
    }
  }
  const nullSimilarity = Math.max(...(yield* similarities(dv, lvs, shifted)));
  const uncertainty: Register2dUncertainty | null = fisher
    ? {
        centerSdMm: fisher.centerSdMm,
        depthDirection: [axes[2][0], axes[2][1], axes[2][2]],
        depthSdMm: { curvature: fisher.centerSdMm[2], jackknife: profile ? profile.jackknifeSdMm : null },
        depthModelBiasMm: profile ? depthModelBiasMm : null,
        depthUncertaintyMm: profile
          ? 2 * Math.max(fisher.centerSdMm[2], profile.jackknifeSdMm) + depthModelBiasMm + DEPTH_PROFILE_STEP_MM / 2
          : 2 * fisher.centerSdMm[2],
        rotationSdDeg: fisher.rotationSdDeg,
      }
    : null;
  const planningToCurrent = poseMatrix(x, center);

  // Verdict.
  const reasons: string[] = [];
  const last = levelReports[levelReports.length - 1];
  if (!last.converged) reasons.push(`the finest level did not converge within ${MAX_SWEEPS} sweeps`);
  if (!(finalSimilarity >= MIN_GRADIENT_CORRELATION))
    reasons.push(
      `no structure matches: gradient correlation ${finalSimilarity.toFixed(3)} is below ${MIN_GRADIENT_CORRELATION}`,
    );
  else if (!(finalSimilarity >= nullSimilarity + MIN_GC_MARGIN))
    reasons.push(
      `no structure matches: gradient correlation ${finalSimilarity.toFixed(3)} is not ${MIN_GC_MARGIN} above ` +
        `its value ${nullSimilarity.toFixed(3)} with the patient shifted ${NULL_SHIFT_2D_MM} mm`,
    );
  const delta = mat4Multiply(new Float64Array(16), planningToCurrent, invertRigid(init));
  const angle = (Math.acos(Math.max(-1, Math.min(1, (delta[0] + delta[5] + delta[10] - 1) / 2))) * 180) / Math.PI;
  const dc = [0, 1, 2].map(
    (r) =>
      delta[r * 4] * center[0] +
      delta[r * 4 + 1] * center[1] +
      delta[r * 4 + 2] * center[2] +
      delta[r * 4 + 3] -
      center[r],
  );
  const shift = Math.hypot(dc[0], dc[1], dc[2]);
  if (shift > MAX_CORRECTION_MM || angle > MAX_CORRECTION_DEG)
    reasons.push(
      `the correction (${shift.toFixed(1)} mm, ${angle.toFixed(1)} deg) is beyond the capture range ` +
        `(${MAX_CORRECTION_MM} mm, ${MAX_CORRECTION_DEG} deg)`,
    );
  if (!uncertainty) reasons.push('the pose is not determined by the frames (singular similarity curvature)');

  const viewReports: Register2dViewReport[] = views.map((v, i) => {
    const P = projectionMatrix(v.geometry);
    return {
      ...(v.name !== undefined ? { name: v.name } : {}),
      geometry: v.geometry,
      similarityBefore: similarityBefore[i],
      similarity: perView[i],
      before: overlayGeometry(projectionAfter(P, init), paths, v.geometry.columns, v.geometry.rows),
      after: overlayGeometry(projectionAfter(P, planningToCurrent), paths, v.geometry.columns, v.geometry.rows),
    };
  });
  const deg = (r: number) => (r * 180) / Math.PI;
  return {
    schemaVersion: REGISTER2D_SCHEMA_VERSION,
    planningToCurrent: mat4ToRows(planningToCurrent),
    currentToPlanning: mat4ToRows(invertRigid(planningToCurrent)),
    parameters: {
      convention: 'planningToCurrent = R(x - c) + c + t, R = Rz(gamma) Ry(beta) Rx(alpha)',
      rotationDeg: [deg(x[0]), deg(x[1]), deg(x[2])],
      translationMm: [x[3], x[4], x[5]],
      centerMm: [center[0], center[1], center[2]],
    },
    similarity: finalSimilarity,
    nullSimilarity,
    views: viewReports,
    levels: levelReports,
    renders,
    uncertainty: uncertainty ?? {
      centerSdMm: [Infinity, Infinity, Infinity],
      depthDirection: [axes[2][0], axes[2][1], axes[2][2]],
      depthSdMm: { curvature: Infinity, jackknife: Infinity },
      depthModelBiasMm: null,
      depthUncertaintyMm: Infinity,
      rotationSdDeg: [Infinity, Infinity, Infinity],
    },
    singleView: views.length === 1,
    verdict: { status: reasons.length ? 'failed' : 'ok', reasons },
  };
}

function levelsSpacing(volume: Register2dVolume, mm: number): number {
  let best = volume.levels[0].spacingMm;
  for (const l of volume.levels) if (l.spacingMm <= mm + 1e-9) best = l.spacingMm;
  return best;
}

/** Step of the central differences of the uncertainty, mm (rotations: mm of arc at the radius). */
const JACOBIAN_STEP_MM = 0.5;

/**
 * Covariance of the pose from the finest level's gradient images. Maximising the gradient correlation is
 * least squares between the normalized frame gradients F and s D(x) (D unit norm, s the correlation), so
 * cov = sigma^2 kappa (s^2 J^T J)^-1 with J = dD/dx (central differences), sigma^2 = the residual's variance
 * per element (1 - s^2)/N and kappa the residual's correlation area (from its lag-1 autocorrelations
 * along columns and rows, AR(1): (1 + rho)/(1 - rho) per axis); views add their information.
 */
function* poseUncertainty(
  level: number,
  lvs: LevelView[],
  x: Pose,
  dirs: Float64Array[],
  render: RenderBatch,
): Renders<{
  cov: Float64Array;
  centerSdMm: [number, number, number];
  rotationSdDeg: [number, number, number];
  /** Gradient correlation of each view at x (as `similarities`: from the same render). */
  similarity: number[];
} | null> {
  const info = new Float64Array(36);
  // Every view's renders in one batch: the solution, then +- JACOBIAN_STEP_MM along each direction.
  const poses: Pose[] = [Float64Array.from(x)];
  for (let k = 0; k < 6; k++)
    for (const sgn of [1, -1]) {
      const p = new Float64Array(6);
      for (let q = 0; q < 6; q++) p[q] = x[q] + sgn * JACOBIAN_STEP_MM * dirs[k][q];
      poses.push(p);
    }
  const slots = yield* render(
    level,
    lvs.flatMap((lv) => poses.map((pose) => ({ lv, pose }))),
  );
  const similarity: number[] = [];
  for (const [vi, lv] of lvs.entries()) {
    const { columns } = lv.g;
    const n = columns * lv.g.rows;
    const at = slots[vi * poses.length];
    similarity.push(correlate(lv.fx, at.dx, lv.idx) + correlate(lv.fy, at.dy, lv.idx));
    const normalized = (m: number, gx: Float32Array, gy: Float32Array) => {
      const sl = slots[vi * poses.length + m];
      gx.set(sl.dx);
      gy.set(sl.dy);
      normalizeOver(gx, lv.idx);
      normalizeOver(gy, lv.idx);
      for (let o = 0; o < n; o++) if (!lv.mask[o]) gx[o] = gy[o] = 0;
    };
    // D at the solution, and the residual F - s D.
    const dx0 = new Float32Array(n),
      dy0 = new Float32Array(n);
    normalized(0, dx0, dy0);
    let s = 0;
    for (let o = 0; o < n; o++) s += lv.fx[o] * dx0[o] + lv.fy[o] * dy0[o];
    const res = new Float32Array(2 * n);
    for (let o = 0; o < n; o++) {
      res[o] = lv.fx[o] - s * dx0[o];
      res[n + o] = lv.fy[o] - s * dy0[o];
    }
    // Lag-1 autocorrelations of the residual along columns and rows (interior pairs).
    let sxx = 0,
      sc = 0,
      sr = 0,
      count = 0;
    const m = lv.mask;
    for (const base of [0, n])
      for (const o0 of lv.idx) {
        const o = base + o0;
        sxx += res[o] * res[o];
        count++;
        if (m[o0 + 1]) sc += res[o] * res[o + 1];
        if (m[o0 + columns]) sr += res[o] * res[o + columns];
      }
    const rc = Math.max(0, Math.min(0.95, sc / sxx)),
      rr = Math.max(0, Math.min(0.95, sr / sxx));
    const kappa = ((1 + rc) / (1 - rc)) * ((1 + rr) / (1 - rr));
    const sigma2 = sxx / count;
    // Jacobian by central differences along each search direction.
    const J = new Float32Array(6 * 2 * n);
    const gxp = new Float32Array(n),
      gyp = new Float32Array(n),
      gxm = new Float32Array(n),
      gym = new Float32Array(n);
    for (let k = 0; k < 6; k++) {
      normalized(1 + 2 * k, gxp, gyp);
      normalized(2 + 2 * k, gxm, gym);
      const base = k * 2 * n;
      for (let o = 0; o < n; o++) {
        J[base + o] = (gxp[o] - gxm[o]) / (2 * JACOBIAN_STEP_MM);
        J[base + n + o] = (gyp[o] - gym[o]) / (2 * JACOBIAN_STEP_MM);
      }
    }
    const w = (s * s) / (sigma2 * kappa);
    for (let a = 0; a < 6; a++)
      for (let b = a; b < 6; b++) {
        let dot = 0;
        const ja = a * 2 * n,
          jb = b * 2 * n;
        for (let o = 0; o < 2 * n; o++) dot += J[ja + o] * J[jb + o];
        info[a * 6 + b] += w * dot;
        if (a !== b) info[b * 6 + a] += w * dot;
      }
  }
  const cov = invert6(info);
  if (!cov) return null;
  const sd = (k: number) => Math.sqrt(Math.max(0, cov[k * 6 + k]));
  const rad = (k: number) => ((sd(k) / ROTATION_RADIUS_MM) * 180) / Math.PI;
  return { cov, centerSdMm: [sd(3), sd(4), sd(5)], rotationSdDeg: [rad(0), rad(1), rad(2)], similarity };
}

/** Profile of the depth search: offsets +-DEPTH_PROFILE_HALF_RANGE_MM in steps of DEPTH_PROFILE_STEP_MM. */
export const DEPTH_PROFILE_STEP_MM = 1.5;
export const DEPTH_PROFILE_HALF_RANGE_MM = 15;
/** Tiles per image side of the jackknife (TILES^2 groups). */
const TILES = 4;
/**
 * The profile is rendered in a window of +-PROFILE_WINDOW steps about where its peak is expected (the
 * fit's depth; the coarser volume's: the finest one's peak), widened by PROFILE_GROW steps on a side
 * while a maximum (of the whole images or of any jackknife replicate) lies on that side's end, up to
 * the whole range: the peaks are the ones nearest the fit, and half the offsets or fewer are rendered.
 */
const PROFILE_WINDOW = 4;
const PROFILE_GROW = 3;

/**
 * The similarity along the depth valley: the first view's central ray with the other five parameters
 * following it as the curvature says they should (the depth column of the covariance), sampled on a grid
 * (a window about `centre`, an offset index, widened while a maximum lies on its end: PROFILE_WINDOW), its
 * maximum refined by a parabola. The whole images give where the pose moves (when the maximum lies inside
 * the range and beats the start); leaving out one tile of each frame at a time gives a jackknife standard
 * deviation of that maximum (`jackknife` false: not computed, nor waited for by the window). The sums are
 * kept per tile, so each offset is rendered once.
 */
function* depthProfile(
  level: number,
  lvs: LevelView[],
  x: Pose,
  dirs: Float64Array[],
  cov: Float64Array,
  render: RenderBatch,
  given?: { direction: Float64Array; centre: number },
): Renders<{
  direction: Float64Array;
  moveMm: number;
  offMm: number;
  best: number;
  interior: boolean;
  jackknifeSdMm: number;
}> {
  // Valley direction in parameter space, per mm of depth: sum_k cov[k][5] / cov[5][5] dirs[k].
  const direction = given?.direction ?? new Float64Array(6);
  if (!given)
    for (let k = 0; k < 6; k++) for (let q = 0; q < 6; q++) direction[q] += (cov[k * 6 + 5] / cov[35]) * dirs[k][q];
  const jackknife = !given;
  const steps = Math.round(DEPTH_PROFILE_HALF_RANGE_MM / DEPTH_PROFILE_STEP_MM);
  const nOff = 2 * steps + 1;
  const G = TILES * TILES;
  // Per offset, view, tile and axis: n, sf, sff, sd, sdd, sfd.
  const S = new Float64Array(nOff * lvs.length * G * 2 * 6);
  /** Renders offsets ms (one batch) and adds their sums. */
  function* add(ms: number[]): Renders<void> {
    const items = ms.flatMap((m) => {
      const p = new Float64Array(6);
      for (let q = 0; q < 6; q++) p[q] = x[q] + (m - steps) * DEPTH_PROFILE_STEP_MM * direction[q];
      return lvs.map((lv) => ({ lv, pose: p }));
    });
    const slots = yield* render(level, items);
    for (const [item, { lv }] of items.entries()) {
      const m = ms[Math.floor(item / lvs.length)],
        vi = item % lvs.length;
      const { dx, dy } = slots[item];
      const { columns, rows } = lv.g;
      for (let r = 1; r < rows - 1; r++) {
        const tr = Math.min(TILES - 1, Math.floor((r * TILES) / rows));
        for (let c = 1; c < columns - 1; c++) {
          const o = c + columns * r;
          if (!lv.mask[o]) continue;
          const tile = tr * TILES + Math.min(TILES - 1, Math.floor((c * TILES) / columns));
          for (let ax = 0; ax < 2; ax++) {
            const f = ax ? lv.fy[o] : lv.fx[o],
              d = ax ? dy[o] : dx[o];
            const b = ((((m * lvs.length + vi) * G + tile) * 2 + ax) * 6) | 0;
            S[b] += 1;
            S[b + 1] += f;
            S[b + 2] += f * f;
            S[b + 3] += d;
            S[b + 4] += d * d;
            S[b + 5] += f * d;
          }
        }
      }
    }
  }
  const range = (a: number, b: number) => Array.from({ length: Math.max(0, b - a + 1) }, (_, i) => a + i);
  const centre = Math.max(0, Math.min(nOff - 1, given?.centre ?? steps));
  let lo = Math.max(0, centre - PROFILE_WINDOW),
    hi = Math.min(nOff - 1, centre + PROFILE_WINDOW);
  yield* add(range(lo, hi));
  const acc = new Float64Array(6);
  /** The similarity at offset m over all tiles but `skip` (-1: none). */
  const sim = (m: number, skip: number) => {
    let total = 0;
    for (let vi = 0; vi < lvs.length; vi++)
      for (let ax = 0; ax < 2; ax++) {
        acc.fill(0);
        for (let t = 0; t < G; t++) {
          if (t === skip) continue;
          const b = (((m * lvs.length + vi) * G + t) * 2 + ax) * 6;
          for (let q = 0; q < 6; q++) acc[q] += S[b + q];
        }
        const [n, sf, sff, sd, sdd, sfd] = acc;
        const den = (sff - (sf * sf) / n) * (sdd - (sd * sd) / n);
        total += den > 0 ? (sfd - (sf * sd) / n) / Math.sqrt(den) : 0;
      }
    return total / (2 * lvs.length);
  };
  const v = new Float64Array(nOff);
  /** The maximum over the rendered window [lo, hi] without tile `skip`. */
  const argmax = (skip: number) => {
    let best = lo;
    for (let m = lo; m <= hi; m++) {
      v[m] = sim(m, skip);
      if (v[m] > v[best]) best = m;
    }
    let off = (best - steps) * DEPTH_PROFILE_STEP_MM;
    const interior = best > 0 && best < nOff - 1;
    if (interior) {
      const a = v[best - 1],
        b = v[best],
        c = v[best + 1];
      const curv = a + c - 2 * b;
      if (curv < 0) off += (DEPTH_PROFILE_STEP_MM * (a - c)) / (2 * curv);
    }
    return { off, best, interior };
  };
  let all = argmax(-1);
  let offs: number[] = [];
  for (;;) {
    const maxima = [all.best];
    offs = [];
    if (jackknife)
      for (let g = 0; g < G; g++) {
        const a = argmax(g);
        offs.push(a.off);
        maxima.push(a.best);
      }
    const grow: number[] = [];
    if (lo > 0 && maxima.includes(lo)) grow.push(...range(Math.max(0, lo - PROFILE_GROW), lo - 1));
    if (hi < nOff - 1 && maxima.includes(hi)) grow.push(...range(hi + 1, Math.min(nOff - 1, hi + PROFILE_GROW)));
    if (!grow.length) break;
    yield* add(grow);
    lo = Math.min(lo, ...grow);
    hi = Math.max(hi, ...grow);
    all = argmax(-1);
  }
  // The gain over the start (offset 0), which the window always holds when it is centred there.
  const gain = lo <= steps && steps <= hi ? sim(all.best, -1) - sim(steps, -1) : 0;
  let mean = 0;
  for (const o of offs) mean += o / G;
  let ss = 0;
  for (const o of offs) ss += (o - mean) ** 2;
  const jackknifeSdMm = Math.sqrt(((G - 1) / G) * ss);
  return {
    direction,
    moveMm: all.interior && gain > 0 ? all.off : 0,
    offMm: all.off,
    best: all.best,
    interior: all.interior,
    jackknifeSdMm: all.interior && jackknife ? jackknifeSdMm : Infinity,
  };
}
