/**
 * analyzeCement: the one entry point of cement monitoring (CLI `corridor cement`, later the workstation
 * and the server). Each scan taken during the injection is compared with the baseline scan taken before
 * it (same frame, same grid): the new cement is segmented, assigned to its injection site, measured, and
 * followed to the foramina, the canal and the bone surface; each scan gets a verdict.
 *
 * Definitions (LPS mm of the baseline's frame; rise = scan HU - baseline HU):
 * - Cement voxel: scan >= minHu and rise >= minRiseHu, not inside metal already in the baseline
 *   (baseline >= METAL_MIN_HU) nor within NEW_METAL_MARGIN_MM of a metal instrument that the scan has and
 *   the baseline has not (verify's detectInstruments); 26-connected components under minComponentMl are
 *   dropped (noise, streaks).
 * - Contrast of a component: the median rise of its core (voxels at least CORE_DEPTH_MM inside the
 *   cement mask), or of all cores of the scan when its own core has under CORE_MIN_VOXELS voxels.
 * - Volume of a component: the sum of the rise over the component grown by REGION_GROW_VOXELS voxels,
 *   divided by its contrast, times the voxel volume. Blur and partial volume are linear, so this counts
 *   a half-filled voxel as half; a plain voxel count would not.
 * - Site: each component goes to the planned injection path (trocars, or every path when the plan has
 *   none) whose target is nearest to any of its voxels, within SITE_REACH_MM; else 'unassigned'.
 *   growthMl: the site's volume minus its volume in the previous scan (the baseline counts as 0).
 * - Cement front: cement voxels with rise >= contrast / 2. Distance to a structure: the shortest distance
 *   between the centres of a front voxel and a voxel of that structure's labels (0 = cement in it);
 *   null when the structure lies farther than DISTANCE_REACH_MM from all cement.
 * - Leak: at least LEAK_MIN_ML of cement (each cement voxel counted by its fraction rise / contrast,
 *   at most 1) in a critical structure (a foramen, the canal) or outside the bone labels.
 * - Verdict: 'stop' when a scan has a leak; 'caution' when the front is closer than warningMm to a
 *   critical structure; else 'continue'. Each reason names the structure and where (LPS mm).
 */
import { CancelledError, GeometryError, UsageError } from '../errors.js';
import { mat4MaxAbsDiff, mat4Multiply, mat4Create, mat4ToRows, type ReadonlyMat4 } from '../math/mat4.js';
import { resampleOntoFixed } from '../register/apply.js';
import { RIGID_TOLERANCE, rigidityError } from '../register/rigid-transform.js';
import type { ScanRegistrationSummary } from '../verify/register-scan.js';
import type { Point3 } from '../math/vec3.js';
import { CEMENT_WARNING_MM } from '../plan/clinical.js';
import type { PlanPath } from '../plan/model.js';
import { components26 } from '../volume/components.js';
import { distanceTransform } from '../volume/edt.js';
import { createVolume, type Volume } from '../volume/volume.js';
import type { VerifyAnatomy } from '../verify/along.js';
import type { ForaminaSource } from '../verify/foramina.js';
import { METAL_GROW_HU, METAL_MIN_HU, detectInstruments } from '../verify/metal.js';
import {
  MAP_DEPARTURE_HU,
  METAL_RATIO,
  UNKNOWN_HU,
  UNKNOWN_MARGIN_MM,
  fitIntensityMap,
  mapLut,
  type IntensityMap,
} from './modality.js';

export const CEMENT_SCHEMA_VERSION = 1;
/** Least scan HU of a cement voxel: above cortex after blur (about 1100-1300 HU), below PMMA with contrast. */
export const CEMENT_MIN_HU = 1200;
/** Least rise over the baseline (HU): a quarter of PMMA's contrast against bone (about 2300 HU). */
export const CEMENT_MIN_RISE_HU = 600;
/** Components smaller than this (ml) are dropped. */
export const CEMENT_MIN_COMPONENT_ML = 0.01;
/** Depth (mm) inside the cement mask from which the rise is the full contrast (blur sigma 0.6 mm x 3). */
export const CORE_DEPTH_MM = 2;
/** Fewest core voxels for a component's own contrast. */
export const CORE_MIN_VOXELS = 30;
/** Rings of voxels added around each component before its rise is summed (the blurred edge). */
export const REGION_GROW_VOXELS = 2;
/** Farthest (mm) a component may lie from a path's target to be that site's cement. */
export const SITE_REACH_MM = 40;
/** Distances to structures are looked for this far (mm) from the cement. */
export const DISTANCE_REACH_MM = 20;
/** Least cement (ml) in a critical structure or outside the bone that is a leak. */
export const LEAK_MIN_ML = 0.02;
/** New metal is excluded within this margin (mm) around its apparent radius. */
export const NEW_METAL_MARGIN_MM = 1.5;

export type CementVerdict = 'continue' | 'caution' | 'stop';

export interface CementOptions {
  /** The planned paths (injection sites: the trocars). */
  plan: readonly PlanPath[];
  /** The scan before any cement (with the instruments in place). */
  baseline: Volume;
  /** Scans during the injection, in time order, each on the baseline's grid unless given a transform. */
  scans: readonly Volume[];
  /**
   * Per scan, the rigid scan -> baseline transform (movingToFixed, e.g. registerScanToReference's), or
   * null / absent for a scan on the baseline's grid. A scan with one is resampled onto the baseline's grid
   * (trilinear; -1024 outside it) before it is compared.
   */
  scanToBaseline?: readonly (ReadonlyMat4 | null | undefined)[];
  /** Per scan, how its transform was found (carried into its report). */
  registrations?: readonly (ScanRegistrationSummary | null | undefined)[];
  /** Labels (any grid, same frame) and which labels are bone and which critical. */
  labels?: { volume: Volume; anatomy: VerifyAnatomy };
  /** How the labels' foramina were had (findForamina's foraminaSourceOf); default 'labels' with labels. */
  foramina?: ForaminaSource;
  /** Default CEMENT_WARNING_MM (plan/clinical.ts). */
  warningMm?: number;
  minHu?: number;
  minRiseHu?: number;
  /**
   * The baseline and the scans come from different kinds of scanner (a C-arm CBCT and a CT): the
   * baseline's grey values are mapped to the scan's, a cement voxel must rise over its neighbourhood's
   * mapped baseline, and the baseline's metal bloom is unknown territory (modality.ts). 'auto' (default):
   * decided per scan brought in by a transform, from the fitted map and the metal (`modality.why`).
   */
  crossModality?: boolean | 'auto';
  signal?: AbortSignal;
  /** Called after each scan with the number done. */
  onProgress?: (done: number, total: number) => void;
  /**
   * Called per scan with the cement it counted (the voxels of the components kept, before the region
   * growing), on a crop of the baseline grid: what a viewer shows as the cement overlay. Not called for a
   * scan without new cement.
   */
  onMask?: (scanIndex: number, mask: CementMask) => void;
}

/** The cement voxels of one scan: a box of the baseline grid (origin and dims in voxels), 1 = cement. */
export interface CementMask {
  origin: [number, number, number];
  dims: [number, number, number];
  data: Uint8Array;
}

export interface CementSite {
  pathId: string;
  name: string;
  volumeMl: number;
  growthMl: number;
  voxelCount: number;
  /** Contrast used (HU), the largest component's. */
  contrastHu: number;
  components: number;
}

export interface CementLeak {
  /** 'foramen', 'canal' (or another critical family), or 'outside bone'. */
  structure: string;
  name: string;
  volumeMl: number;
  /** Centroid of the cement in it (LPS mm). */
  at: Point3;
  /** Site of the component most of it belongs to. */
  site: string;
}

export interface CementDistance {
  structure: string;
  name: string;
  /** Front to structure (mm, voxel centres); null beyond DISTANCE_REACH_MM. */
  distanceMm: number | null;
  /** The structure's voxel nearest the cement, and the cement voxel nearest it (LPS mm). */
  at: Point3 | null;
  cementAt: Point3 | null;
  site: string | null;
}

export interface CementReason {
  verdict: 'caution' | 'stop';
  reason: string;
  structure: string;
  name: string;
  at: Point3;
}

export interface CementScanReport {
  index: number;
  source: string;
  verdict: CementVerdict;
  reasons: CementReason[];
  totalMl: number;
  sites: CementSite[];
  unassignedMl: number;
  leaks: CementLeak[];
  distances: CementDistance[];
  /** New metal instruments excluded (ids of verify's detector). */
  newMetal: string[];
  /** The scan -> baseline transform it was resampled by (rows), or null: it lay on the baseline's grid. */
  scanToBaseline: number[][] | null;
  /** The registration that found that transform, or null. */
  registration: ScanRegistrationSummary | null;
  /** Whether the pair was taken as two modalities (and why), its grey-value map, the unknown territory. */
  modality: CementModality;
  notes: string[];
}

export interface CementModality {
  cross: boolean;
  why: string;
  /** The fitted baseline -> scan map (null when none was fitted). */
  map: IntensityMap | null;
  /** Baseline voxels of the analysed crop in the baseline's metal bloom (unknown: baseline taken as `unknownFillHu`). */
  unknownVoxels: number;
  unknownMl: number;
  unknownFillHu: number | null;
}

export interface CementReport {
  schemaVersion: number;
  kind: 'corridor-cement';
  warningMm: number;
  thresholds: { minHu: number; minRiseHu: number; minComponentMl: number; leakMinMl: number };
  structureSource: 'labels' | 'none';
  /** Where the foramina came from: labels, the image (with how), or none. */
  foramina: ForaminaSource;
  scans: CementScanReport[];
  /** Verdict of the latest scan. */
  verdict: CementVerdict;
  notes: string[];
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;
const r2 = (x: number) => Math.round(x * 100) / 100;

function sameGrid(a: Volume, b: Volume): boolean {
  return (
    a.dims[0] === b.dims[0] &&
    a.dims[1] === b.dims[1] &&
    a.dims[2] === b.dims[2] &&
    mat4MaxAbsDiff(a.indexToPatient, b.indexToPatient) < 1e-3
  );
}

function pointOf(m: ReadonlyMat4, i: number, j: number, k: number): Point3 {
  return [
    r2(m[0] * i + m[1] * j + m[2] * k + m[3]),
    r2(m[4] * i + m[5] * j + m[6] * k + m[7]),
    r2(m[8] * i + m[9] * j + m[10] * k + m[11]),
  ];
}

interface Structure {
  structure: string;
  name: string;
}

/** Per label id: 0 = bone or ignored, 1 + index into `structures` = critical, -1 = outside bone. */
function labelClasses(anatomy: VerifyAnatomy): { cls: Int16Array; structures: Structure[] } {
  const cls = new Int16Array(65536).fill(-1);
  for (const b of anatomy.bone) cls[b & 0xffff] = 0;
  for (const b of anatomy.ignore) cls[b & 0xffff] = 0;
  const structures: Structure[] = [];
  for (const c of anatomy.critical) {
    let s = structures.findIndex((x) => x.name === c.name && x.structure === c.structure);
    if (s < 0) s = structures.push({ structure: c.structure, name: c.name }) - 1;
    cls[c.label & 0xffff] = 1 + s;
  }
  return { cls, structures };
}

const PROFILE_BIN_MM = 0.25;
const PROFILE_MM = 5;

/**
 * The steel's own excess over its surroundings in `scan` as a function of the distance from the axis
 * ends[0]-ends[1] (bins of PROFILE_BIN_MM out to PROFILE_MM): per bin the median over the shaft's middle
 * 80% (the cement at the tip is a short stretch of it) less the median PROFILE_MM to PROFILE_MM + 1.5 mm
 * out. In a cross-modality pair it stands in for the baseline's view of the instrument inside its bloom.
 */
function steelProfile(scan: Volume, ends: readonly [Point3, Point3]): Float64Array {
  const [a, b] = ends;
  const d = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
  const len2 = d[0] ** 2 + d[1] ** 2 + d[2] ** 2;
  const nBins = Math.round(PROFILE_MM / PROFILE_BIN_MM);
  const bins: number[][] = Array.from({ length: nBins + 1 }, () => []);
  const reach = PROFILE_MM + 1.5;
  const pi = scan.patientToIndex,
    m = scan.indexToPatient;
  const [nx, ny, nz] = scan.dims;
  const lo = [nx, ny, nz],
    hi = [0, 0, 0];
  for (const p of [a, b])
    for (let r = 0; r < 3; r++) {
      const x = pi[r * 4] * p[0] + pi[r * 4 + 1] * p[1] + pi[r * 4 + 2] * p[2] + pi[r * 4 + 3];
      const g = reach / scan.spacing[r];
      lo[r] = Math.min(lo[r], Math.max(0, Math.floor(x - g)));
      hi[r] = Math.max(hi[r], Math.min(scan.dims[r] - 1, Math.ceil(x + g)));
    }
  const p = [0, 0, 0];
  for (let k = lo[2]; k <= hi[2]; k++)
    for (let j = lo[1]; j <= hi[1]; j++)
      for (let i = lo[0]; i <= hi[0]; i++) {
        p[0] = m[0] * i + m[1] * j + m[2] * k + m[3] - a[0];
        p[1] = m[4] * i + m[5] * j + m[6] * k + m[7] - a[1];
        p[2] = m[8] * i + m[9] * j + m[10] * k + m[11] - a[2];
        const t = len2 > 0 ? (p[0] * d[0] + p[1] * d[1] + p[2] * d[2]) / len2 : 0;
        if (t < 0.1 || t > 0.9) continue;
        const r = Math.hypot(p[0] - t * d[0], p[1] - t * d[1], p[2] - t * d[2]);
        if (r >= reach) continue;
        bins[Math.min(nBins, Math.floor(r / PROFILE_BIN_MM))].push(scan.data[i + nx * (j + ny * k)]);
      }
  const med = (x: number[]) => (x.length ? median(Float64Array.from(x)) : 0);
  const bg = med(bins[nBins]);
  const out = new Float64Array(nBins);
  for (let t = 0; t < nBins; t++) out[t] = bins[t].length ? Math.max(0, med(bins[t]) - bg) : 0;
  return out;
}

const noModality = (): CementModality => ({
  cross: false,
  why: '',
  map: null,
  unknownVoxels: 0,
  unknownMl: 0,
  unknownFillHu: null,
});

/** The largest value over each voxel's 3 x 3 x 3 neighbourhood (clipped at the grid's faces): three 1D passes. */
function maxFilter3<T extends Float32Array | Uint8Array>(a: T, dims: readonly [number, number, number]): T {
  const [nx, ny, nz] = dims;
  const strides = [1, nx, nx * ny];
  let src = a;
  for (let axis = 0; axis < 3; axis++) {
    const out = src.slice() as T;
    const st = strides[axis],
      len = dims[axis];
    for (let k = 0, q = 0; k < nz; k++)
      for (let j = 0; j < ny; j++)
        for (let i = 0; i < nx; i++, q++) {
          const p = axis === 0 ? i : axis === 1 ? j : k;
          let m = src[q];
          if (p > 0 && src[q - st] > m) m = src[q - st];
          if (p < len - 1 && src[q + st] > m) m = src[q + st];
          out[q] = m;
        }
    src = out;
  }
  return src;
}

function median(a: Float64Array): number {
  const s = Float64Array.from(a).sort();
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/** Distance from p to the segment a-b. */
function segmentDistance(p: ArrayLike<number>, a: ArrayLike<number>, b: ArrayLike<number>): number {
  const d0 = b[0] - a[0],
    d1 = b[1] - a[1],
    d2 = b[2] - a[2];
  const dd = d0 * d0 + d1 * d1 + d2 * d2;
  let t = dd > 0 ? ((p[0] - a[0]) * d0 + (p[1] - a[1]) * d1 + (p[2] - a[2]) * d2) / dd : 0;
  t = Math.max(0, Math.min(1, t));
  return Math.hypot(p[0] - a[0] - t * d0, p[1] - a[1] - t * d1, p[2] - a[2] - t * d2);
}

/** Rounded index into `labels` of each baseline voxel: the index-to-index map, or null on the same grid. */
function baselineToLabels(baseline: Volume, labels: Volume): ReadonlyMat4 | null {
  if (sameGrid(baseline, labels)) return null;
  return mat4Multiply(mat4Create(), labels.patientToIndex, baseline.indexToPatient);
}

/**
 * The scan on the baseline's grid through the rigid scan -> baseline transform `t`, resampled (trilinear)
 * only over the box where cement can be: every scan voxel at or above minHu whose nearest baseline voxel
 * is not metal and lies at least minRise / 2 below it, mapped into the baseline's grid, that box grown by
 * the distance reach, the region growing and 2 voxels. Elsewhere the baseline's own values (no rise, so
 * no cement), as everything analyzeScan reads lies within that box. A full resampling of a 0.8 mm scan
 * takes seconds; the box is usually the sacrum.
 */
function scanOnBaseline(
  scan: Volume,
  baseline: Volume,
  t: ReadonlyMat4,
  minHu: number,
  minRise: number,
): { volume: Volume; box: { origin: number[]; dims: number[] } | null } {
  const s2b = mat4Multiply(mat4Create(), baseline.patientToIndex, mat4Multiply(mat4Create(), t, scan.indexToPatient));
  const [nx, ny, nz] = scan.dims;
  const [bx, by, bz] = baseline.dims;
  const sd = scan.data,
    bd = baseline.data;
  const lo = [bx, by, bz],
    hi = [-1, -1, -1];
  for (let k = 0, o = 0; k < nz; k++)
    for (let j = 0; j < ny; j++)
      for (let i = 0; i < nx; i++, o++) {
        const v = sd[o];
        if (!(v >= minHu)) continue;
        const I = Math.round(s2b[0] * i + s2b[1] * j + s2b[2] * k + s2b[3]);
        const J = Math.round(s2b[4] * i + s2b[5] * j + s2b[6] * k + s2b[7]);
        const K = Math.round(s2b[8] * i + s2b[9] * j + s2b[10] * k + s2b[11]);
        if (I < 0 || J < 0 || K < 0 || I >= bx || J >= by || K >= bz) continue;
        const b = bd[I + bx * (J + by * K)];
        if (b >= METAL_MIN_HU || v - b < minRise / 2) continue;
        if (I < lo[0]) lo[0] = I;
        if (J < lo[1]) lo[1] = J;
        if (K < lo[2]) lo[2] = K;
        if (I > hi[0]) hi[0] = I;
        if (J > hi[1]) hi[1] = J;
        if (K > hi[2]) hi[2] = K;
      }
  const out = Float32Array.from(bd);
  let where: { origin: number[]; dims: number[] } | null = null;
  if (hi[0] >= 0) {
    const min = [0, 1, 2].map((a) =>
      Math.max(0, lo[a] - Math.ceil(DISTANCE_REACH_MM / baseline.spacing[a]) - REGION_GROW_VOXELS - 2),
    );
    const max = [0, 1, 2].map((a) =>
      Math.min(
        baseline.dims[a] - 1,
        hi[a] + Math.ceil(DISTANCE_REACH_MM / baseline.spacing[a]) + REGION_GROW_VOXELS + 2,
      ),
    );
    const dims: [number, number, number] = [max[0] - min[0] + 1, max[1] - min[1] + 1, max[2] - min[2] + 1];
    const m = Float64Array.from(baseline.indexToPatient);
    for (let r = 0; r < 3; r++) m[r * 4 + 3] += m[r * 4] * min[0] + m[r * 4 + 1] * min[1] + m[r * 4 + 2] * min[2];
    const box = resampleOntoFixed(scan, { dims, indexToPatient: m }, t, { outside: -1024, type: 'float32' });
    const bdat = box.data;
    for (let k = 0, q = 0; k < dims[2]; k++)
      for (let j = 0; j < dims[1]; j++, q += dims[0]) {
        const start = min[0] + bx * (min[1] + j + by * (min[2] + k));
        out.set(bdat.subarray(q, q + dims[0]), start);
      }
    where = { origin: min, dims };
  }
  return {
    volume: createVolume({ data: out, dims: baseline.dims, indexToPatient: baseline.indexToPatient, meta: scan.meta }),
    box: where,
  };
}

/** The scan's metal outnumbers the baseline's by METAL_RATIO (the scan is the CBCT). */
const bloomsMore = (scan: number, baseline: number) => scan > METAL_RATIO * Math.max(1, baseline) && scan >= 50;

/** Whether scan s (on the baseline's grid, `box` where it was resampled) is of another modality, and its map. */
function modalityOf(
  setting: boolean | 'auto',
  scan: Volume,
  baseline: Volume,
  box: { origin: number[]; dims: number[] } | null,
  transformed: boolean,
): { cross: boolean; why: string; map: IntensityMap | null; scanBlooms?: boolean } {
  if (setting === false) return { cross: false, why: 'same modality (as given)', map: null };
  if (setting === 'auto' && !transformed)
    return { cross: false, why: 'same modality: the scan lies on the baseline grid (auto)', map: null };
  const fitBox = box ?? { origin: [0, 0, 0], dims: [...baseline.dims] };
  const fit = fitIntensityMap(baseline.data, scan.data, baseline.dims, baseline.spacing, fitBox);
  const { metalVoxels, ...map } = fit;
  if (setting === true)
    return {
      cross: true,
      why: 'two modalities (as given)',
      map,
      scanBlooms: bloomsMore(metalVoxels.scan, metalVoxels.baseline),
    };
  const mb = metalVoxels.baseline,
    ms = metalVoxels.scan;
  const ratio = Math.max(mb, ms) / Math.max(1, Math.min(mb, ms));
  const parts: string[] = [];
  if (map.maxDepartureHu > MAP_DEPARTURE_HU)
    parts.push(`the grey-value map departs ${map.maxDepartureHu} HU from identity`);
  if (ratio > METAL_RATIO && Math.max(mb, ms) >= 50)
    parts.push(`metal >= ${METAL_MIN_HU} HU: ${mb} baseline voxels against ${ms} in the scan (bloom)`);
  if (parts.length)
    return { cross: true, why: `two modalities (auto): ${parts.join('; ')}`, map, scanBlooms: bloomsMore(ms, mb) };
  return {
    cross: false,
    why: `same modality (auto): map within ${map.maxDepartureHu} HU of identity, metal ${mb} / ${ms} voxels`,
    map: null,
  };
}

export function analyzeCement(options: CementOptions): CementReport {
  const { baseline, scans, plan, labels } = options;
  const warningMm = options.warningMm ?? CEMENT_WARNING_MM;
  if (!(warningMm >= 0 && Number.isFinite(warningMm)))
    throw new UsageError(`warning distance ${warningMm} mm must be a finite number >= 0`, 'cement');
  const minHu = options.minHu ?? CEMENT_MIN_HU;
  const minRiseHu = options.minRiseHu ?? CEMENT_MIN_RISE_HU;
  if (!(minRiseHu > 0)) throw new UsageError(`minimum rise ${minRiseHu} HU must be above 0`, 'cement');
  if (scans.length === 0) throw new UsageError('no cement scan given', 'cement');
  scans.forEach((s, i) => {
    const t = options.scanToBaseline?.[i];
    if (t) {
      const err = rigidityError(t);
      if (!(err <= RIGID_TOLERANCE) || t[12] !== 0 || t[13] !== 0 || t[14] !== 0 || t[15] !== 1)
        throw new GeometryError('scan -> baseline transform is not rigid', s.meta.source ?? 'scan');
    } else if (!sameGrid(s, baseline))
      throw new GeometryError(
        'scan is not on the baseline grid (same dimensions and indexToPatient): register it (a scan -> baseline transform) first',
        s.meta.source ?? 'scan',
      );
  });
  // One scan on the baseline's grid at a time (a resampled 0.8 mm scan is 130 MB).
  const onGrid = (i: number): { volume: Volume; box: { origin: number[]; dims: number[] } | null } => {
    const t = options.scanToBaseline?.[i];
    return t ? scanOnBaseline(scans[i], baseline, t, minHu, minRiseHu) : { volume: scans[i], box: null };
  };
  const crossSetting = options.crossModality ?? 'auto';
  const sitePaths = plan.some((p) => p.kind === 'trocar') ? plan.filter((p) => p.kind === 'trocar') : [...plan];
  const lab = labels ? labelClasses(labels.anatomy) : undefined;
  const labMap = labels ? baselineToLabels(baseline, labels.volume) : null;
  const report: CementReport = {
    schemaVersion: CEMENT_SCHEMA_VERSION,
    kind: 'corridor-cement',
    warningMm,
    thresholds: { minHu, minRiseHu, minComponentMl: CEMENT_MIN_COMPONENT_ML, leakMinMl: LEAK_MIN_ML },
    structureSource: labels ? 'labels' : 'none',
    foramina: options.foramina ?? { source: labels ? 'labels' : 'none' },
    scans: [],
    verdict: 'continue',
    notes: [],
  };
  if (labels && report.foramina.source === 'image')
    report.notes.push('foramina found in the image (no labels): canal and bone surface not checked');
  for (const w of report.foramina.warnings ?? []) report.notes.push(`foramina: ${w}`);
  if (!labels) report.notes.push('no labels: leaks and distances to the foramina, canal and bone surface not checked');
  if (!labels?.anatomy.critical.some((c) => c.structure === 'vein'))
    report.notes.push('no vein labels: leaks into veins are not checked (with labels, only as outside bone)');
  let previous = new Map<string, number>();
  for (let s = 0; s < scans.length; s++) {
    if (options.signal?.aborted) throw new CancelledError('cement analysis cancelled', 'cement');
    const g = onGrid(s);
    const t = options.scanToBaseline?.[s];
    const mod = modalityOf(crossSetting, g.volume, baseline, g.box, !!t);
    const r = analyzeScan(g.volume, s, {
      cross: mod.cross && mod.map ? { lut: mapLut(mod.map, LUT_LO), lo: LUT_LO, map: mod.map } : undefined,
      baseline,
      sitePaths,
      lab,
      labMap,
      labels: labels?.volume,
      warningMm,
      minHu,
      minRiseHu,
      onMask: options.onMask,
    });
    r.modality = { ...r.modality, cross: mod.cross, why: mod.why, map: mod.map };
    if (mod.cross)
      r.notes.push(
        `${mod.why}: baseline grey values mapped to the scan's; ${r.modality.unknownVoxels} voxels (${r.modality.unknownMl} ml) in the baseline's metal bloom are unknown, the baseline there taken as ${r.modality.unknownFillHu ?? '-'} HU`,
      );
    if (mod.scanBlooms)
      r.notes.push(
        'the scan blooms more than the baseline (a CBCT scan against a CT baseline?): its bloom about the instruments is not told from cement beside them, so the volumes near them and any leak found are not to be trusted (not supported: give a baseline of the scan modality)',
      );
    r.scanToBaseline = t ? mat4ToRows(t) : null;
    r.registration = options.registrations?.[s] ?? null;
    if (t)
      r.notes.push(
        r.registration
          ? 'registered to the baseline and resampled onto its grid'
          : 'resampled onto the baseline grid by the given transform',
      );
    for (const site of r.sites) site.growthMl = r3(site.volumeMl - (previous.get(site.pathId) ?? 0));
    previous = new Map(r.sites.map((x) => [x.pathId, x.volumeMl]));
    report.scans.push(r);
    options.onProgress?.(s + 1, scans.length);
  }
  report.verdict = report.scans[report.scans.length - 1].verdict;
  return report;
}

/** Lowest baseline HU of the map's lookup table (a CBCT's dark streaks reach -3500 HU). */
const LUT_LO = -4096;

interface ScanContext {
  /**
   * Cross-modality: the baseline -> scan map as a lookup table over [lo, UNKNOWN_HU] of the linearly
   * mapped baseline (mapLut), and the map (its linear part and where the unknown starts, in the baseline's units).
   */
  cross?: { lut: Float32Array; lo: number; map: IntensityMap };
  baseline: Volume;
  sitePaths: PlanPath[];
  lab: { cls: Int16Array; structures: Structure[] } | undefined;
  labMap: ReadonlyMat4 | null;
  labels: Volume | undefined;
  warningMm: number;
  minHu: number;
  minRiseHu: number;
  onMask?: CementOptions['onMask'];
}

function analyzeScan(scan: Volume, index: number, c: ScanContext): CementScanReport {
  const { baseline } = c;
  const src = scan.meta.source ?? `scan ${index + 1}`;
  const [nx, ny, nz] = scan.dims;
  const nxy = nx * ny;
  const sd = scan.data,
    bd = baseline.data;
  const [sx, sy, sz] = scan.spacing;
  const voxMl = (sx * sy * sz) / 1000;
  const m = scan.indexToPatient;
  const notes: string[] = [];

  // New metal: instruments of the scan whose axis does not run through metal in the baseline (METAL_GROW_HU
  // in the scan's units: through the map's linear part in a cross-modality pair).
  const lin = c.cross?.map.linear ?? { scale: 1, offset: 0 };
  const baselineMetalFrom = (METAL_GROW_HU - lin.offset) / lin.scale;
  const newMetal: { id: string; a: Point3; b: Point3; radius: number }[] = [];
  for (const inst of detectInstruments(scan).instruments) {
    let hits = 0;
    const n = 11;
    for (let q = 0; q < n; q++) {
      const t = q / (n - 1);
      const p = [0, 1, 2].map((a) => inst.ends[0][a] + t * (inst.ends[1][a] - inst.ends[0][a]));
      const pi = baseline.patientToIndex;
      const i = Math.round(pi[0] * p[0] + pi[1] * p[1] + pi[2] * p[2] + pi[3]);
      const j = Math.round(pi[4] * p[0] + pi[5] * p[1] + pi[6] * p[2] + pi[7]);
      const k = Math.round(pi[8] * p[0] + pi[9] * p[1] + pi[10] * p[2] + pi[11]);
      if (i >= 0 && j >= 0 && k >= 0 && i < nx && j < ny && k < nz && bd[i + nx * j + nxy * k] >= baselineMetalFrom)
        hits++;
    }
    if (hits < 0.7 * n) {
      newMetal.push({
        id: inst.id,
        a: inst.ends[0],
        b: inst.ends[1],
        radius: inst.apparentDiameterMm / 2 + NEW_METAL_MARGIN_MM,
      });
    }
  }
  if (newMetal.length)
    notes.push(`${newMetal.length} new metal instrument(s) excluded: ${newMetal.map((x) => x.id).join(', ')}`);
  const pt = [0, 0, 0];
  const inNewMetal = (i: number, j: number, k: number): boolean => {
    if (newMetal.length === 0) return false;
    pt[0] = m[0] * i + m[1] * j + m[2] * k + m[3];
    pt[1] = m[4] * i + m[5] * j + m[6] * k + m[7];
    pt[2] = m[8] * i + m[9] * j + m[10] * k + m[11];
    for (const x of newMetal) if (segmentDistance(pt, x.a, x.b) < x.radius) return true;
    return false;
  };

  // Candidates over the whole grid: one pass, bounding box only.
  const minHu = c.minHu,
    minRise = c.minRiseHu;
  let i0 = nx,
    j0 = ny,
    k0 = nz,
    i1 = -1,
    j1 = -1,
    k1 = -1;
  const cross = c.cross;
  const lut = cross?.lut ?? new Float32Array(1),
    lutLo = cross?.lo ?? 0;
  // The baseline's bloom in its own units (UNKNOWN_HU in the scan's, through the map's linear part).
  const unknownFrom = cross?.map.unknownFrom ?? UNKNOWN_HU;
  const lutTop = lut.length - 1;
  const { scale, offset } = lin;
  const mapped = (b: number) => lut[Math.min(lutTop, Math.max(0, Math.round(scale * b + offset) - lutLo))];
  for (let k = 0, v = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++, v++) {
        const h = sd[v];
        if (h < minHu) continue;
        const b = bd[v];
        if (cross) {
          // Unknown territory (the baseline's bloom): anything but the scan's metal may be cement.
          if (b >= unknownFrom ? h >= METAL_MIN_HU : h - mapped(b) < minRise) continue;
        } else if (h - b < minRise || b >= METAL_MIN_HU) continue;
        if (i < i0) i0 = i;
        if (i > i1) i1 = i;
        if (j < j0) j0 = j;
        if (j > j1) j1 = j;
        if (k < k0) k0 = k;
        if (k > k1) k1 = k;
      }
    }
  }
  const empty = (): CementScanReport => ({
    index,
    source: src,
    verdict: 'continue',
    reasons: [],
    totalMl: 0,
    sites: c.sitePaths.map((p) => ({
      pathId: p.id,
      name: p.name,
      volumeMl: 0,
      growthMl: 0,
      voxelCount: 0,
      contrastHu: 0,
      components: 0,
    })),
    unassignedMl: 0,
    leaks: [],
    distances: [],
    newMetal: newMetal.map((x) => x.id),
    scanToBaseline: null,
    registration: null,
    modality: noModality(),
    notes,
  });
  if (i1 < 0) {
    notes.push('no new cement found');
    return empty();
  }
  // Crop: the candidates' box grown by the distance reach.
  const gi = Math.ceil(DISTANCE_REACH_MM / sx),
    gj = Math.ceil(DISTANCE_REACH_MM / sy),
    gk = Math.ceil(DISTANCE_REACH_MM / sz);
  const ci0 = Math.max(0, i0 - gi),
    cj0 = Math.max(0, j0 - gj),
    ck0 = Math.max(0, k0 - gk);
  const cnx = Math.min(nx - 1, i1 + gi) - ci0 + 1,
    cny = Math.min(ny - 1, j1 + gj) - cj0 + 1,
    cnz = Math.min(nz - 1, k1 + gk) - ck0 + 1;
  const cn = cnx * cny * cnz,
    cnxy = cnx * cny;
  const full = (q: number) => {
    const ci = q % cnx,
      cj = ((q - ci) / cnx) % cny,
      ck = (q - ci - cj * cnx) / cnxy;
    return ci0 + ci + nx * (cj0 + cj) + nxy * (ck0 + ck);
  };
  const rise = new Float32Array(cn);
  const mask = new Uint8Array(cn);
  let unknownVoxels = 0,
    unknownFillHu: number | null = null;
  if (!cross) {
    for (let ck = 0, q = 0; ck < cnz; ck++) {
      for (let cj = 0; cj < cny; cj++) {
        let v = ci0 + nx * (cj0 + cj) + nxy * (ck0 + ck);
        for (let ci = 0; ci < cnx; ci++, q++, v++) {
          const h = sd[v],
            b = bd[v];
          rise[q] = b >= METAL_MIN_HU ? 0 : h - b;
          if (h >= minHu && rise[q] >= minRise && !inNewMetal(ci0 + ci, cj0 + cj, ck0 + ck)) mask[q] = 1;
        }
      }
    }
  } else {
    // The scan's reference: the mapped baseline; in the bloom (unknown) the bone around it; the scan's
    // own metal (and one voxel around it) no cement.
    const cdims: [number, number, number] = [cnx, cny, cnz];
    const ref = new Float32Array(cn);
    const steelAt = new Float32Array(cn);
    const known = new Uint8Array(cn);
    for (let q = 0; q < cn; q++) known[q] = bd[full(q)] >= unknownFrom ? 0 : 1;
    const bloomDist = distanceTransform(known, cdims, scan.spacing);
    const ring: number[] = [];
    for (let q = 0; q < cn; q++) {
      if (bloomDist[q] <= UNKNOWN_MARGIN_MM) known[q] = 0;
      else if (bloomDist[q] <= UNKNOWN_MARGIN_MM + 3 && bd[full(q)] < unknownFrom) ring.push(mapped(bd[full(q)]));
    }
    unknownFillHu = ring.length ? Math.round(median(Float64Array.from(ring))) : 0;
    // The instruments' axes from the baseline (its bloom finds them: verify's detector holds on a CBCT),
    // their steel as the scan shows it from the shaft away from the cement.
    const axes = detectInstruments(baseline).instruments;
    const profiles = axes.map((x) => ({ a: x.ends[0], b: x.ends[1], excess: steelProfile(scan, x.ends) }));
    for (let q = 0; q < cn; q++) {
      if (known[q]) {
        ref[q] = mapped(bd[full(q)]);
        continue;
      }
      unknownVoxels++;
      const ci = q % cnx,
        cj = ((q - ci) / cnx) % cny,
        ck = (q - ci - cj * cnx) / cnxy;
      const I = ci0 + ci,
        J = cj0 + cj,
        K = ck0 + ck;
      pt[0] = m[0] * I + m[1] * J + m[2] * K + m[3];
      pt[1] = m[4] * I + m[5] * J + m[6] * K + m[7];
      pt[2] = m[8] * I + m[9] * J + m[10] * K + m[11];
      let steel = 0;
      for (const x of profiles) {
        const r = segmentDistance(pt, x.a, x.b);
        const bin = Math.floor(r / PROFILE_BIN_MM);
        if (bin < x.excess.length) steel = Math.max(steel, x.excess[bin]);
      }
      // Below UNKNOWN_HU the voxel may have been bone (cortex) before: no rise. Above, bone it was not.
      const h = sd[full(q)];
      ref[q] = h >= UNKNOWN_HU ? unknownFillHu + steel : h;
      steelAt[q] = steel;
    }
    // Resolution and streaks: a cement voxel rises over the largest reference in its neighbourhood.
    const refMax = maxFilter3(ref, cdims);
    for (let ck = 0, q = 0; ck < cnz; ck++) {
      for (let cj = 0; cj < cny; cj++) {
        let v = ci0 + nx * (cj0 + cj) + nxy * (ck0 + ck);
        for (let ci = 0; ci < cnx; ci++, q++, v++) {
          const h = sd[v];
          rise[q] = h - ref[q];
          // Where the steel's own excess passes the least rise, cement is not told from steel: not seeded
          // there (its rise is still summed when the region grows into it from cement beside it).
          const over = known[q] ? h - refMax[q] : steelAt[q] < minRise ? rise[q] : -Infinity;
          if (h >= minHu && over >= minRise && !inNewMetal(ci0 + ci, cj0 + cj, ck0 + ck)) mask[q] = 1;
        }
      }
    }
  }

  // 26-connected components (volume/components.ts); small ones dropped.
  const cc = components26({ mask }, [cnx, cny, cnz]);
  const comp = cc.labels;
  const order = cc.order; // voxels of component id at order[start .. start+count), breadth-first
  const members: { start: number; count: number }[] = [];
  const minCount = Math.max(1, Math.round(CEMENT_MIN_COMPONENT_ML / voxMl));
  for (let c = 0; c < cc.count; c++) {
    const start = cc.starts[c],
      count = cc.sizes[c];
    if (count < minCount) {
      for (let t = start; t < start + count; t++) {
        comp[order[t]] = 0;
        mask[order[t]] = 0;
      }
      members.push({ start: 0, count: 0 });
    } else members.push({ start, count });
  }
  const live = members.map((x, id) => ({ ...x, id: id + 1 })).filter((x) => x.count > 0);
  if (live.length === 0) {
    notes.push('no new cement found (only components under the minimum size)');
    return empty();
  }
  c.onMask?.(index, { origin: [ci0, cj0, ck0], dims: [cnx, cny, cnz], data: mask.slice() });

  // Contrast from each component's core.
  const inside = distanceTransform(mask, [cnx, cny, cnz], scan.spacing);
  const cores = new Map<number, number[]>();
  const pooled: number[] = [];
  for (const x of live) {
    const vals: number[] = [];
    for (let t = x.start; t < x.start + x.count; t++) {
      const q = order[t];
      if (inside[q] >= CORE_DEPTH_MM) vals.push(rise[q]);
    }
    cores.set(x.id, vals);
    for (const v of vals) pooled.push(v);
  }
  let pooledContrast: number;
  if (pooled.length >= CORE_MIN_VOXELS) pooledContrast = median(Float64Array.from(pooled));
  else {
    let mx = 0;
    for (const x of live) for (let t = x.start; t < x.start + x.count; t++) mx = Math.max(mx, rise[order[t]]);
    pooledContrast = mx;
    notes.push(`no cement core ${CORE_DEPTH_MM} mm deep: contrast taken as the largest rise (${Math.round(mx)} HU)`);
  }
  const contrast = new Float64Array(members.length + 1);
  for (const x of live) {
    const vals = cores.get(x.id) ?? [];
    contrast[x.id] = vals.length >= CORE_MIN_VOXELS ? median(Float64Array.from(vals)) : pooledContrast;
  }

  // Region growing (6-neighbour rings, first come), then the rise summed per component.
  const region = Int32Array.from(comp);
  let ring: number[] = [];
  for (const x of live) for (let t = x.start; t < x.start + x.count; t++) ring.push(order[t]);
  const steps = [1, -1, cnx, -cnx, cnxy, -cnxy];
  for (let g = 0; g < REGION_GROW_VOXELS; g++) {
    const next: number[] = [];
    for (const q of ring) {
      const ci = q % cnx,
        cj = ((q - ci) / cnx) % cny,
        ck = (q - ci - cj * cnx) / cnxy;
      for (let s = 0; s < 6; s++) {
        if ((s === 0 && ci === cnx - 1) || (s === 1 && ci === 0)) continue;
        if ((s === 2 && cj === cny - 1) || (s === 3 && cj === 0)) continue;
        if ((s === 4 && ck === cnz - 1) || (s === 5 && ck === 0)) continue;
        const r = q + steps[s];
        if (region[r]) continue;
        const rc = r % cnx,
          rj = ((r - rc) / cnx) % cny,
          rk = (r - rc - rj * cnx) / cnxy;
        if (inNewMetal(ci0 + rc, cj0 + rj, ck0 + rk)) continue;
        region[r] = region[q];
        next.push(r);
      }
    }
    ring = next;
  }
  const sum = new Float64Array(members.length + 1);
  for (let q = 0; q < cn; q++) if (region[q]) sum[region[q]] += rise[q];
  const volume = new Float64Array(members.length + 1);
  for (const x of live) volume[x.id] = Math.max(0, (sum[x.id] / contrast[x.id]) * voxMl);

  // Sites: nearest path target to any voxel of the component.
  const siteOf = new Map<number, string>();
  const sitesById = new Map<string, CementSite>();
  for (const p of c.sitePaths)
    sitesById.set(p.id, {
      pathId: p.id,
      name: p.name,
      volumeMl: 0,
      growthMl: 0,
      voxelCount: 0,
      contrastHu: 0,
      components: 0,
    });
  let unassigned = 0;
  const largest = new Map<string, number>();
  for (const x of live) {
    let best = Infinity,
      bestId = '';
    for (const p of c.sitePaths) {
      const t = p.target;
      // Nearest voxel to the target: exact over the component's voxels.
      for (let u = x.start; u < x.start + x.count; u++) {
        const q = order[u];
        const ci = q % cnx,
          cj = ((q - ci) / cnx) % cny,
          ck = (q - ci - cj * cnx) / cnxy;
        const I = ci0 + ci,
          J = cj0 + cj,
          K = ck0 + ck;
        const d = Math.hypot(
          m[0] * I + m[1] * J + m[2] * K + m[3] - t[0],
          m[4] * I + m[5] * J + m[6] * K + m[7] - t[1],
          m[8] * I + m[9] * J + m[10] * K + m[11] - t[2],
        );
        if (d < best) {
          best = d;
          bestId = p.id;
        }
      }
    }
    if (best <= SITE_REACH_MM && bestId) {
      siteOf.set(x.id, bestId);
      const site = sitesById.get(bestId) as CementSite;
      site.volumeMl += volume[x.id];
      site.voxelCount += x.count;
      site.components++;
      if (x.count > (largest.get(bestId) ?? 0)) {
        largest.set(bestId, x.count);
        site.contrastHu = Math.round(contrast[x.id]);
      }
    } else {
      siteOf.set(x.id, 'unassigned');
      unassigned += volume[x.id];
    }
  }
  const sites = [...sitesById.values()].map((x) => ({ ...x, volumeMl: r3(x.volumeMl) }));
  let totalMl = unassigned;
  for (const x of sitesById.values()) totalMl += x.volumeMl;

  const out: CementScanReport = {
    index,
    source: src,
    verdict: 'continue',
    reasons: [],
    totalMl: r3(totalMl),
    sites,
    unassignedMl: r3(unassigned),
    leaks: [],
    distances: [],
    newMetal: newMetal.map((x) => x.id),
    scanToBaseline: null,
    registration: null,
    modality: { ...noModality(), unknownVoxels, unknownMl: r3(unknownVoxels * voxMl), unknownFillHu },
    notes,
  };
  if (!c.lab || !c.labels) return out;

  // Labels of the crop.
  const { cls, structures } = c.lab;
  const lv = c.labels.data;
  const [lx, ly, lz] = c.labels.dims;
  const lm = c.labMap;
  const labelCls = new Int16Array(cn);
  for (let ck = 0, q = 0; ck < cnz; ck++) {
    for (let cj = 0; cj < cny; cj++) {
      for (let ci = 0; ci < cnx; ci++, q++) {
        let v: number;
        if (!lm) v = full(q);
        else {
          const I = ci0 + ci,
            J = cj0 + cj,
            K = ck0 + ck;
          const li = Math.round(lm[0] * I + lm[1] * J + lm[2] * K + lm[3]);
          const lj = Math.round(lm[4] * I + lm[5] * J + lm[6] * K + lm[7]);
          const lk = Math.round(lm[8] * I + lm[9] * J + lm[10] * K + lm[11]);
          v = li >= 0 && lj >= 0 && lk >= 0 && li < lx && lj < ly && lk < lz ? li + lx * lj + lx * ly * lk : -1;
        }
        labelCls[q] = v < 0 ? -1 : cls[lv[v] & 0xffff];
      }
    }
  }

  // Leaks: cement fraction per structure (index 0 = outside bone, 1 + s = critical structure s).
  const nS = structures.length + 1;
  const leakMl = new Float64Array(nS);
  const leakAt = new Float64Array(3 * nS);
  const leakSite = new Map<number, Map<string, number>>();
  for (const x of live) {
    const site = siteOf.get(x.id) ?? 'unassigned';
    for (let t = x.start; t < x.start + x.count; t++) {
      const q = order[t];
      const lc = labelCls[q];
      if (lc === 0) continue;
      const slot = lc < 0 ? 0 : lc;
      const f = Math.min(1, rise[q] / contrast[x.id]) * voxMl;
      leakMl[slot] += f;
      const ci = q % cnx,
        cj = ((q - ci) / cnx) % cny,
        ck = (q - ci - cj * cnx) / cnxy;
      leakAt[3 * slot] += f * (ci0 + ci);
      leakAt[3 * slot + 1] += f * (cj0 + cj);
      leakAt[3 * slot + 2] += f * (ck0 + ck);
      const bySite = leakSite.get(slot) ?? new Map<string, number>();
      bySite.set(site, (bySite.get(site) ?? 0) + f);
      leakSite.set(slot, bySite);
    }
  }
  for (let slot = 0; slot < nS; slot++) {
    if (leakMl[slot] < LEAK_MIN_ML) continue;
    const w = leakMl[slot];
    const at = pointOf(m, leakAt[3 * slot] / w, leakAt[3 * slot + 1] / w, leakAt[3 * slot + 2] / w);
    const st = slot === 0 ? { structure: 'outside bone', name: 'outside bone' } : structures[slot - 1];
    const bySite = [...(leakSite.get(slot) ?? new Map<string, number>()).entries()].sort((a, b) => b[1] - a[1]);
    const site = bySite[0]?.[0] ?? 'unassigned';
    out.leaks.push({ ...st, volumeMl: r3(w), at, site });
    out.reasons.push({
      verdict: 'stop',
      reason:
        slot === 0
          ? `${r3(w)} ml of cement outside the bone (site ${site})`
          : `${r3(w)} ml of cement in ${st.name} (${st.structure}, site ${site})`,
      ...st,
      at,
    });
  }

  // Distances from the cement front: one EDT of the complement of the front.
  const notFront = new Uint8Array(cn).fill(1);
  const frontList: number[] = [];
  for (const x of live) {
    for (let t = x.start; t < x.start + x.count; t++) {
      const q = order[t];
      if (rise[q] >= contrast[x.id] / 2) {
        notFront[q] = 0;
        frontList.push(q);
      }
    }
  }
  const dist = distanceTransform(notFront, [cnx, cny, cnz], scan.spacing);
  const best = new Float64Array(nS).fill(Infinity);
  const bestQ = new Int32Array(nS).fill(-1);
  for (let q = 0; q < cn; q++) {
    const lc = labelCls[q];
    if (lc === 0) continue;
    const slot = lc < 0 ? 0 : lc;
    if (dist[q] < best[slot]) {
      best[slot] = dist[q];
      bestQ[slot] = q;
    }
  }
  const xyz = (q: number): [number, number, number] => {
    const ci = q % cnx,
      cj = ((q - ci) / cnx) % cny,
      ck = (q - ci - cj * cnx) / cnxy;
    return [ci0 + ci, cj0 + cj, ck0 + ck];
  };
  for (let slot = 0; slot < nS; slot++) {
    const st = slot === 0 ? { structure: 'bone surface', name: 'bone surface' } : structures[slot - 1];
    if (bestQ[slot] < 0 || best[slot] > DISTANCE_REACH_MM) {
      out.distances.push({ ...st, distanceMm: null, at: null, cementAt: null, site: null });
      continue;
    }
    const [I, J, K] = xyz(bestQ[slot]);
    // The front voxel nearest it, and its site.
    let bd2 = Infinity,
      bq = -1;
    for (const q of frontList) {
      const [a, b, cc] = xyz(q);
      const d2 = ((a - I) * sx) ** 2 + ((b - J) * sy) ** 2 + ((cc - K) * sz) ** 2;
      if (d2 < bd2) {
        bd2 = d2;
        bq = q;
      }
    }
    const cementAt = bq >= 0 ? pointOf(m, ...xyz(bq)) : null;
    const site = bq >= 0 ? (siteOf.get(comp[bq]) ?? null) : null;
    out.distances.push({ ...st, distanceMm: r2(best[slot]), at: pointOf(m, I, J, K), cementAt, site });
    if (slot > 0 && best[slot] < c.warningMm && leakMl[slot] < LEAK_MIN_ML) {
      out.reasons.push({
        verdict: 'caution',
        reason: `cement front ${r2(best[slot])} mm from ${st.name} (${st.structure}; warning at ${c.warningMm} mm, site ${site ?? '?'})`,
        ...st,
        at: pointOf(m, I, J, K),
      });
    }
  }
  out.verdict = out.reasons.some((x) => x.verdict === 'stop')
    ? 'stop'
    : out.reasons.length > 0
      ? 'caution'
      : 'continue';
  return out;
}
