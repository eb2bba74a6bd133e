/**
 * The simulated acquisition of a C-arm CT run: for each view of a scan, the line integrals of each
 * material through the CT (the DRR kernel, drr/), a polychromatic transmission, optional scatter, Poisson
 * quantum noise at a chosen dose, detector blur, the log, and the scanner's water correction. The
 * result is what FDK reconstructs: one -log projection per view, muReference * (water-equivalent path).
 */
import { CancelledError } from '../errors.js';
import type { Volume } from '../volume/volume.js';
import { Rng } from '../math/random.js';
import { DrrError, huToMu, resolveModel, type AttenuationModel } from '../drr/attenuation.js';
import {
  prepareDrrVolumeWith,
  renderLineIntegrals,
  type DrrVolume,
  type PrepareOptions,
  type RayOptions,
} from '../drr/drrVolume.js';
import { gaussianBlur } from '../drr/fluoro.js';
import { createVolume } from '../volume/volume.js';
import { ReconError, type CbctScan } from './scan.js';
import {
  applyWaterCorrection,
  beamSpectrum,
  RECON_MATERIALS,
  waterCorrectionTable,
  type BeamSpectrum,
  type ReconMaterial,
  type WaterCorrection,
} from './spectrum.js';

export type ReconProgressFn = (done: number, total: number, phase: string) => void;

/**
 * How the acquisition samples its rays: one sample per voxel plane (Joseph's method) up to 1.75 voxels
 * apart. A short scan about the long axis turns through 45 degrees, where the steepest rays of the
 * Artis zee's fan (7 degrees) and cone cross the swept planes up to 1.64 voxels apart; at the DRR's
 * default limit (1.5) those views would take two samples per plane, at about twice the cost. Measured on
 * the benchmark (250 views of the 1 mm pelvis, one thread): 0.78 of the DRR time, with hrow1s.
 */
export const ACQUISITION_RAYS: RayOptions = { maxSampleSpacingVoxels: 1.75 };

export interface AcquisitionOptions {
  /** Tube voltage, kV (default 90, a typical pelvic DynaCT). */
  kvp?: number;
  /** Total filtration, mm Al (default 3). */
  filtrationMmAl?: number;
  /** Energy bins of the spectrum (default 8; 1 = monochromatic at the mean energy). */
  energyBins?: number;
  /**
   * Dose: quanta per detector pixel per view without the patient (the unattenuated beam). 0 (default) = no
   * quantum noise. Behind metal the counts fall toward zero (photon starvation); a pixel that counts none
   * is read as half a quantum.
   */
  photonsPerPixel?: number;
  /**
   * Automatic exposure control, as C-arms regulate the dose at the detector: each view's unattenuated
   * quanta are set so that the detector's central quarter (half the columns by half the rows) receives
   * `photonsPerPixel` on average behind the patient; lateral views of a pelvis then get more dose than
   * AP views. Default false: `photonsPerPixel` unattenuated in every view.
   */
  exposureControl?: boolean;
  /**
   * Scatter: the share of the photons that the patient removes from the primary beam (1 - primary
   * transmission) that reaches the detector as scatter, spread by a wide Gaussian (default 0: none).
   */
  scatterFraction?: number;
  /** Width (sigma) of the scatter's spread at the detector, mm (default 40). */
  scatterSigmaMm?: number;
  /** Detector blur (scintillator light spread), sigma in pixels, on the counted image (default 0.5). */
  blurSigmaPx?: number;
  /** Noise seed: the same seed and inputs give the same projections (default 1). */
  seed?: number;
  /** Water beam-hardening correction as a calibrated scanner does it (default true). */
  waterCorrection?: boolean;
  /** How CT numbers split into materials (airHu, metalHu, metal, ctKvp; see drr/attenuation.ts). */
  attenuation?: AttenuationModel;
  onProgress?: ReconProgressFn;
  signal?: AbortSignal;
}

export interface ResolvedAcquisition {
  kvp: number;
  filtrationMmAl: number;
  energyBins: number;
  photonsPerPixel: number;
  exposureControl: boolean;
  scatterFraction: number;
  scatterSigmaMm: number;
  blurSigmaPx: number;
  seed: number;
  waterCorrection: boolean;
}

export interface CbctProjections {
  /** -log projections after the water correction, view after view, each row-major (columns fastest). */
  data: Float32Array;
  views: number;
  columns: number;
  rows: number;
  /** The value of water per mm in `data` (the HU scale's water). */
  muReferencePerMm: number;
  effectiveEnergyKeV: number;
  spectrum: BeamSpectrum;
  settings: ResolvedAcquisition;
  /** Fewest counts any pixel had (photon starvation shows as a value near 0), or null without noise. */
  minCounts: number | null;
  /** Fewest and most unattenuated quanta per pixel over the views (equal without exposure control). */
  photonsPerPixelRange: [number, number] | null;
}

export function resolveAcquisition(o: AcquisitionOptions = {}): ResolvedAcquisition {
  const r: ResolvedAcquisition = {
    kvp: o.kvp ?? 90,
    filtrationMmAl: o.filtrationMmAl ?? 3,
    energyBins: o.energyBins ?? 8,
    photonsPerPixel: o.photonsPerPixel ?? 0,
    exposureControl: o.exposureControl ?? false,
    scatterFraction: o.scatterFraction ?? 0,
    scatterSigmaMm: o.scatterSigmaMm ?? 40,
    blurSigmaPx: o.blurSigmaPx ?? 0.5,
    seed: o.seed ?? 1,
    waterCorrection: o.waterCorrection ?? true,
  };
  if (!(r.photonsPerPixel >= 0 && Number.isFinite(r.photonsPerPixel)))
    throw new ReconError(`photons per pixel ${r.photonsPerPixel} must be 0 or more`);
  if (!(r.scatterFraction >= 0 && r.scatterFraction <= 1))
    throw new ReconError(`scatter fraction ${r.scatterFraction} must be within 0-1`);
  if (!(r.scatterSigmaMm > 0)) throw new ReconError(`scatter spread ${r.scatterSigmaMm} mm must be positive`);
  if (!(r.blurSigmaPx >= 0 && r.blurSigmaPx < 50)) throw new ReconError(`blur ${r.blurSigmaPx} px must be 0-50`);
  if (!(Number.isInteger(r.seed) && r.seed >= 0)) throw new ReconError(`seed ${r.seed} must be a whole number`);
  return r;
}

/** The materials of a CT prepared for the DRR kernel (only those present). */
export interface MaterialVolumes {
  volumes: Partial<Record<ReconMaterial, DrrVolume>>;
  model: Required<AttenuationModel>;
}

/**
 * Splits a CT (HU) into material volumes ready for ray casting, each cut to the box of its non-zero voxels
 * (as cropToContent cuts splitMaterials' fractions) and quantised as prepareDrrVolume quantises values in
 * mu: the same volumes, written straight from the CT numbers in two passes (the materials' boxes and
 * largest values, then each material's 16-bit values) instead of through three float copies of the CT
 * and the crops (on the benchmark's 1 mm pelvis about 0.3 of the time). `prepare`: where the volumes'
 * memory lies (wasm 'shared' and a shared `allocate` for worker threads).
 */
export function prepareMaterialVolumes(
  ct: Volume,
  attenuation: AttenuationModel = {},
  prepare: Omit<PrepareOptions, 'values' | 'attenuation'> = {},
): MaterialVolumes {
  const model = resolveModel(attenuation);
  const boneHu = huToMu(model).boneHuAtCt;
  const airHu = model.airHu,
    metalHu = model.metalHu;
  const hu = ct.data;
  const [nx, ny, nz] = ct.dims;
  const f32 = Math.fround;
  // A voxel's water and bone fractions (float32) as splitMaterials computes them, for airHu <= v < metalHu.
  const waterOf = (v: number) => (v <= 0 ? f32(1 + v / 1000) : v / boneHu < 1 ? f32(1 - v / boneHu) : 0);
  const boneOf = (v: number) => (v > 0 ? f32(v / boneHu) : 0);
  // Whole CT numbers (CTs store integers) take both from tables.
  const hLo = Math.max(-32768, Math.ceil(airHu)),
    nLut = Math.max(0, Math.min(65535, Math.ceil(metalHu) - 1) - hLo + 1);
  const lutW = new Float64Array(nLut),
    lutB = new Float64Array(nLut);
  for (let k = 0; k < nLut; k++) {
    lutW[k] = waterOf(hLo + k);
    lutB[k] = boneOf(hLo + k);
  }
  // Pass 1: per material (water, bone, metal) whether it is assigned anywhere (splitMaterials' `present`),
  // the box of its non-zero values and their range.
  const present = [false, false, false];
  const lo = [0, 1, 2].map(() => [nx, ny, nz]),
    hi = [0, 1, 2].map(() => [-1, -1, -1]);
  const max = [0, 0, 0];
  let minW = 0;
  const first = [0, 0, 0],
    last = [0, 0, 0];
  for (let k = 0; k < nz; k++)
    for (let j = 0; j < ny; j++) {
      const o = (k * ny + j) * nx;
      first[0] = first[1] = first[2] = -1;
      for (let i = 0; i < nx; i++) {
        const v = hu[o + i];
        if (!(v >= airHu)) continue; // air and NaN
        if (v >= metalHu) {
          present[2] = true;
          if (first[2] < 0) first[2] = i;
          last[2] = i;
          max[2] = 1;
          continue;
        }
        const t = v - hLo;
        const whole = t >= 0 && t < nLut && (t | 0) === t;
        const w = whole ? lutW[t] : waterOf(v),
          b = whole ? lutB[t] : boneOf(v);
        if (v > 0) present[1] = true;
        if (w !== 0 || v <= 0) present[0] = true;
        if (w !== 0) {
          if (first[0] < 0) first[0] = i;
          last[0] = i;
          if (w > max[0]) max[0] = w;
          if (w < minW) minW = w;
        }
        if (b !== 0) {
          if (first[1] < 0) first[1] = i;
          last[1] = i;
          if (b > max[1]) max[1] = b;
        }
      }
      for (let m = 0; m < 3; m++) {
        if (first[m] < 0) continue;
        const L = lo[m],
          H = hi[m];
        if (first[m] < L[0]) L[0] = first[m];
        if (last[m] > H[0]) H[0] = last[m];
        if (j < L[1]) L[1] = j;
        if (j > H[1]) H[1] = j;
        if (k < L[2]) L[2] = k;
        if (k > H[2]) H[2] = k;
      }
    }
  // As prepareDrrVolume checks values given in mu (an air threshold below -1000 HU gives negative water).
  if (minW < 0 || max[1] >= 1e3)
    throw new DrrError(
      `material fractions ${minW < 0 ? minW : max[1]} are not within 0..1000 (airHu ${airHu}, metalHu ${metalHu})`,
      ct.meta.source,
    );
  // Pass 2: each material's box (2 voxels of zeros around, as cropToContent) and 16-bit values.
  const volumes: Partial<Record<ReconMaterial, DrrVolume>> = {};
  RECON_MATERIALS.forEach((mat, m) => {
    if (!present[m]) return;
    const box = contentBox(ct, lo[m], hi[m], `${ct.meta.source ?? 'volume'} (${mat})`);
    const [d0, d1, d2] = box.dims;
    const [o0, o1, o2] = box.origin;
    const muScale = max[m] > 0 ? max[m] / 65535 : 1;
    // The material's 16-bit value of each whole CT number (metal: 1 at metalHu and above).
    const frac = m === 0 ? waterOf : boneOf;
    const q = new Uint16Array(nLut);
    for (let t = 0; t < nLut; t++) q[t] = m === 2 ? 0 : Math.round((m === 0 ? lutW[t] : lutB[t]) / muScale);
    const qMetal = m === 2 ? Math.round(1 / muScale) : 0;
    volumes[mat] = prepareDrrVolumeWith(
      box,
      muScale,
      (mu) => {
        for (let k = 0; k < d2; k++)
          for (let j = 0; j < d1; j++) {
            const src = ((k + o2) * ny + j + o1) * nx + o0,
              dst = (k * d1 + j) * d0;
            for (let i = 0; i < d0; i++) {
              const v = hu[src + i];
              const t = v - hLo;
              let x: number;
              if (t >= 0 && t < nLut && (t | 0) === t) x = q[t];
              else if (!(v >= airHu)) x = 0;
              else if (v >= metalHu) x = qMetal;
              else x = m === 2 ? 0 : Math.round(frac(v) / muScale);
              mu[dst + i] = x;
            }
          }
      },
      prepare,
    );
  });
  return { volumes, model };
}

/**
 * The box of a material's non-zero voxels (lo..hi per axis, none where lo > hi) with 2 voxels of zeros
 * around (at least 2 voxels along each axis): its grid and first voxel (cropToContent's box too).
 */
function contentBox(
  ct: Volume,
  lo0: number[],
  hi0: number[],
  source: string,
): Pick<Volume, 'dims' | 'spacing' | 'indexToPatient' | 'patientToIndex' | 'meta'> & { origin: number[] } {
  const n = ct.dims;
  const lo = [...lo0],
    hi = [...hi0];
  for (let a = 0; a < 3; a++) {
    lo[a] = Math.max(0, lo[a] - 2);
    hi[a] = Math.min(n[a] - 1, Math.max(hi[a] + 2, lo[a] + 1));
  }
  const dims: [number, number, number] = [hi[0] - lo[0] + 1, hi[1] - lo[1] + 1, hi[2] - lo[2] + 1];
  const M = ct.indexToPatient;
  const m = Float64Array.from(M);
  for (let r = 0; r < 3; r++)
    m[r * 4 + 3] = M[r * 4] * lo[0] + M[r * 4 + 1] * lo[1] + M[r * 4 + 2] * lo[2] + M[r * 4 + 3];
  // The grid as createVolume makes it (its data is not needed here).
  const g = createVolume({ data: new Uint8Array(1), dims: [1, 1, 1], indexToPatient: m, meta: { source } });
  return {
    dims,
    spacing: g.spacing,
    indexToPatient: g.indexToPatient,
    patientToIndex: g.patientToIndex,
    meta: g.meta,
    origin: lo,
  };
}

/**
 * A material's fractions cut to the box of its non-zero voxels with 2 voxels of zeros around (at least 2
 * voxels along each axis): its line integrals are the same (rays through the zeros add nothing), and the
 * DRR kernel, which sweeps every plane of its grid, has fewer to sweep (bone fills a fraction of a CT).
 */
export function cropToContent(f: Float32Array, ct: Volume, source: string): Volume<Float32Array> {
  const [nx, ny, nz] = ct.dims;
  const lo = [nx, ny, nz],
    hi = [-1, -1, -1];
  // Each row's first and last non-zero voxel: only the zeros at the row's ends are read.
  for (let k = 0; k < nz; k++)
    for (let j = 0; j < ny; j++) {
      const o = (k * ny + j) * nx;
      let a = 0;
      while (a < nx && f[o + a] === 0) a++;
      if (a === nx) continue;
      let b = nx - 1;
      while (f[o + b] === 0) b--;
      if (a < lo[0]) lo[0] = a;
      if (b > hi[0]) hi[0] = b;
      if (j < lo[1]) lo[1] = j;
      if (j > hi[1]) hi[1] = j;
      if (k < lo[2]) lo[2] = k;
      if (k > hi[2]) hi[2] = k;
    }
  const box = contentBox(ct, lo, hi, source);
  const d = box.dims,
    o = box.origin;
  let data = f;
  if (d[0] !== nx || d[1] !== ny || d[2] !== nz) {
    data = new Float32Array(d[0] * d[1] * d[2]);
    for (let k = 0; k < d[2]; k++)
      for (let j = 0; j < d[1]; j++) {
        const src = ((k + o[2]) * ny + j + o[1]) * nx + o[0];
        data.set(f.subarray(src, src + d[0]), (k * d[1] + j) * d[0]);
      }
  }
  return createVolume({ data, dims: d, indexToPatient: box.indexToPatient, meta: box.meta });
}

/**
 * The detector physics of one view: from material line integrals (mm of each material, `paths`) to the
 * -log projection written into `out`. `scratch` holds two images' worth of Float32 scratch.
 */
export interface ViewPhysics {
  spectrum: BeamSpectrum;
  correction: WaterCorrection | null;
  settings: ResolvedAcquisition;
  columns: number;
  rows: number;
  columnSpacingMm: number;
  rng: Rng;
  minCounts: number;
  /** Fewest and most unattenuated quanta per pixel of any view so far (they differ with exposure control). */
  minN0: number;
  maxN0: number;
  /** -ln transmission on a grid of (water mm, bone mm), for pixels without metal (see detectView). */
  table: TransmissionTable;
}

/** p(Lw, Lb) = -ln sum_b w_b exp(-mu_w,b Lw - mu_b,b Lb) at Lw = i * stepW, Lb = j * stepB, i fastest. */
export interface TransmissionTable {
  p: Float32Array;
  nW: number;
  nB: number;
  stepW: number;
  stepB: number;
}

/**
 * The polychromatic projection of water and bone paths, tabulated: bilinear interpolation of p is smooth
 * enough (its second derivative is the variance of mu over the transmitted spectrum) that 1 mm of water
 * and 0.5 mm of bone per step err by under 1e-4 in p (up to 4e-4 on paths of a few mm, where p bends most), and a pixel costs four reads instead of one
 * exponential per energy bin.
 */
export function transmissionTable(sp: BeamSpectrum, maxWaterMm = 1024, maxBoneMm = 256): TransmissionTable {
  const stepW = 1,
    stepB = 0.5;
  const nW = Math.round(maxWaterMm / stepW) + 1,
    nB = Math.round(maxBoneMm / stepB) + 1;
  const p = new Float32Array(nW * nB);
  const nb = sp.weights.length;
  const ew = new Float64Array(nb);
  for (let j = 0; j < nB; j++) {
    for (let b = 0; b < nb; b++) ew[b] = sp.weights[b] * Math.exp(-sp.muPerMm.bone[b] * j * stepB);
    for (let i = 0; i < nW; i++) {
      let t = 0;
      for (let b = 0; b < nb; b++) t += ew[b] * Math.exp(-sp.muPerMm.water[b] * i * stepW);
      p[j * nW + i] = -Math.log(t);
    }
  }
  return { p, nW, nB, stepW, stepB };
}

export function viewPhysics(scan: CbctScan, settings: ResolvedAcquisition, metal: 'steel' | 'titanium'): ViewPhysics {
  const spectrum = beamSpectrum(
    { kvp: settings.kvp, filtrationMmAl: settings.filtrationMmAl, bins: settings.energyBins },
    metal,
  );
  return {
    spectrum,
    correction: settings.waterCorrection && spectrum.weights.length > 1 ? waterCorrectionTable(spectrum) : null,
    settings,
    columns: scan.columns,
    rows: scan.rows,
    columnSpacingMm: scan.columnSpacingMm,
    rng: new Rng(settings.seed),
    minCounts: Infinity,
    minN0: Infinity,
    maxN0: 0,
    table: transmissionTable(spectrum),
  };
}

/**
 * exp(-p) for p >= 0: a table of exp(-i / 64) times the Taylor series of exp(-r) for the rest r < 1/64
 * (relative error below 1e-11; Math.exp beyond the table). About a third of Math.exp's time.
 */
const EXP_STEPS = 64,
  EXP_MAX = 64;
const EXP_TABLE = Float64Array.from({ length: EXP_STEPS * EXP_MAX + 1 }, (_, i) => Math.exp(-i / EXP_STEPS));
function expNeg(p: number): number {
  if (!(p >= 0 && p < EXP_MAX)) return Math.exp(-p);
  const x = p * EXP_STEPS;
  const i = x | 0;
  const r = (x - i) / EXP_STEPS;
  return EXP_TABLE[i] * (1 - r * (1 - r * (0.5 - r * (1 / 6 - r * (1 / 24)))));
}

/**
 * ln of a float32 from its bits: exponent, a table of ln(1 + k / 256) over the mantissa's top 8 bits, and
 * the series of ln(1 + t) for the rest, t < 1/256 (absolute error below 1e-10). For normal positive
 * floats only (the caller clamps to 1e-30).
 */
const LOG_HEAD = Float64Array.from({ length: 256 }, (_, k) => Math.log(1 + k / 256));
const LOG_INV = Float64Array.from({ length: 256 }, (_, k) => 1 / (1 + k / 256));
function logFloatBits(bits: number): number {
  const e = (bits >>> 23) - 127,
    m = bits & 0x7fffff,
    k = m >>> 15;
  const t = ((m & 0x7fff) / 8388608) * LOG_INV[k];
  return e * Math.LN2 + LOG_HEAD[k] + t * (1 - t * (0.5 - t * (1 / 3 - t * 0.25)));
}

/** Per-view scratch of a ViewPhysics: intensities, the blur's row pass and its result. */
const scratchOf = new WeakMap<ViewPhysics, { I: Float32Array; tmp: Float32Array; J: Float32Array }>();

/** Transmission, scatter, noise, blur, log and water correction of one view (see AcquisitionOptions). */
export function detectView(
  ph: ViewPhysics,
  paths: Partial<Record<ReconMaterial, Float32Array>>,
  out: Float32Array,
): void {
  const { spectrum: sp, settings: s } = ph;
  const n = ph.columns * ph.rows;
  const nb = sp.weights.length;
  const w = sp.weights;
  const present = RECON_MATERIALS.filter((m) => paths[m] !== undefined);
  const L = present.map((m) => paths[m] as Float32Array);
  const mu = present.map((m) => sp.muPerMm[m]);
  let scratch = scratchOf.get(ph);
  if (!scratch || scratch.I.length !== n) {
    scratch = { I: new Float32Array(n), tmp: new Float32Array(n), J: new Float32Array(n) };
    scratchOf.set(ph, scratch);
  }
  const I = scratch.I;
  const Lw = paths.water,
    Lb = paths.bone,
    Lm = paths.metal;
  const T = ph.table;
  const tp = T.p,
    nW = T.nW,
    maxW = (T.nW - 1) * T.stepW,
    maxB = (T.nB - 1) * T.stepB;
  const iW = 1 / T.stepW,
    iB = 1 / T.stepB;
  for (let p = 0; p < n; p++) {
    const lw = Lw ? Lw[p] : 0,
      lb = Lb ? Lb[p] : 0;
    if ((!Lm || Lm[p] === 0) && lw < maxW && lb < maxB) {
      // Table lookup (see transmissionTable).
      const x = lw * iW,
        y = lb * iB;
      const ix = x | 0,
        iy = y | 0;
      const fx = x - ix,
        fy = y - iy;
      const o = iy * nW + ix;
      const a = tp[o] + (tp[o + 1] - tp[o]) * fx;
      const c = tp[o + nW] + (tp[o + nW + 1] - tp[o + nW]) * fx;
      I[p] = expNeg(a + (c - a) * fy);
      continue;
    }
    // Metal, or paths beyond the table: every bin's exponential.
    let t = 0;
    for (let b = 0; b < nb; b++) {
      let e = 0;
      for (let m = 0; m < L.length; m++) e += mu[m][b] * L[m][p];
      t += w[b] * Math.exp(-e);
    }
    I[p] = t;
  }
  if (s.scatterFraction > 0)
    addScatter(I, ph.columns, ph.rows, s.scatterFraction, s.scatterSigmaMm / ph.columnSpacingMm);
  let N0 = s.photonsPerPixel;
  if (N0 > 0 && s.exposureControl) {
    const nc = ph.columns,
      nr = ph.rows;
    let sum = 0,
      cnt = 0;
    for (let r = nr >> 2; r < nr - (nr >> 2); r++)
      for (let c = nc >> 2; c < nc - (nc >> 2); c++) {
        sum += I[r * nc + c];
        cnt++;
      }
    // The tube's range: at most 1000 times the nominal output (a view through air gets the nominal).
    N0 = (N0 * cnt) / Math.max(sum, cnt / 1000);
  }
  if (N0 < ph.minN0) ph.minN0 = N0;
  if (N0 > ph.maxN0) ph.maxN0 = N0;
  if (N0 > 0) {
    const rng = ph.rng;
    let minC = ph.minCounts;
    for (let p = 0; p < n; p++) {
      const c = poisson(rng, N0 * I[p]);
      if (c < minC) minC = c;
      I[p] = (c > 0 ? c : 0.5) / N0;
    }
    ph.minCounts = minC;
  }
  const J = s.blurSigmaPx > 0 ? gaussianBlur(I, ph.columns, ph.rows, s.blurSigmaPx, scratch.J, scratch.tmp) : I;
  const wc = ph.correction;
  const bits = new Int32Array(J.buffer, J.byteOffset, n);
  // ln(1e-30): the floor of the intensity.
  const floorP = 69.07755278982137;
  for (let p = 0; p < n; p++) {
    const q = J[p] > 1e-30 ? -logFloatBits(bits[p]) : floorP;
    out[p] = wc ? applyWaterCorrection(wc, q) : q;
  }
}

/**
 * Scatter: f * Gaussian(sigma) * (1 - I), added to I. Computed on a grid coarsened so that sigma spans a
 * few of its cells (scatter is smooth), then interpolated back bilinearly.
 */
function addScatter(I: Float32Array, cols: number, rows: number, f: number, sigmaPx: number): void {
  const F = Math.max(1, Math.floor(sigmaPx / 3));
  const cc = Math.ceil(cols / F),
    cr = Math.ceil(rows / F);
  const coarse = new Float32Array(cc * cr);
  const cnt = new Float32Array(cc * cr);
  // Per column: its coarse cell, and where it interpolates the blurred coarse grid (x0, fx).
  const cell = new Int32Array(cols),
    x0s = new Int32Array(cols),
    fxs = new Float64Array(cols);
  for (let c = 0; c < cols; c++) {
    cell[c] = (c / F) | 0;
    let x = (c + 0.5) / F - 0.5;
    if (x < 0) x = 0;
    if (x > cc - 1) x = cc - 1;
    const x0 = Math.min(cc - 2, x | 0);
    fxs[c] = cc > 1 ? x - x0 : 0;
    x0s[c] = Math.max(0, x0);
  }
  for (let r = 0; r < rows; r++) {
    const o = ((r / F) | 0) * cc,
      ro = r * cols;
    for (let c = 0; c < cols; c++) {
      const k = o + cell[c];
      coarse[k] += 1 - I[ro + c];
      cnt[k]++;
    }
  }
  for (let k = 0; k < coarse.length; k++) coarse[k] /= cnt[k];
  const bl = gaussianBlur(coarse, cc, cr, sigmaPx / F);
  for (let r = 0; r < rows; r++) {
    let y = (r + 0.5) / F - 0.5;
    if (y < 0) y = 0;
    if (y > cr - 1) y = cr - 1;
    const y0 = Math.min(cr - 2, y | 0),
      fy = cr > 1 ? y - y0 : 0;
    const ao = Math.max(0, y0) * cc,
      ro = r * cols;
    for (let c = 0; c < cols; c++) {
      const a = ao + x0s[c],
        fx = fxs[c];
      const v0 = cc > 1 ? bl[a] + (bl[a + 1] - bl[a]) * fx : bl[a];
      const v1 = cr > 1 ? (cc > 1 ? bl[a + cc] + (bl[a + cc + 1] - bl[a + cc]) * fx : bl[a + cc]) : v0;
      I[ro + c] += f * (v0 + (v1 - v0) * fy);
    }
  }
}

/** A Poisson count of mean lambda: exact (Knuth) below 30, else the normal approximation, rounded. */
export function poisson(rng: Rng, lambda: number): number {
  if (!(lambda > 0)) return 0;
  if (lambda < 30) {
    const L = Math.exp(-lambda);
    let k = 0,
      p = 1;
    for (;;) {
      p *= rng.next();
      if (p <= L) return k;
      k++;
    }
  }
  // Box-Muller.
  const u1 = 1 - rng.next(),
    u2 = rng.next();
  const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  const c = Math.round(lambda + Math.sqrt(lambda) * z);
  return c > 0 ? c : 0;
}

/** Simulates a C-arm CT run of a CT (HU) with the scan's views; single-threaded. */
export function simulateProjections(ct: Volume, scan: CbctScan, opts: AcquisitionOptions = {}): CbctProjections {
  const settings = resolveAcquisition(opts);
  const mats = prepareMaterialVolumes(ct, opts.attenuation);
  const ph = viewPhysics(scan, settings, mats.model.metal);
  const nv = scan.views.length,
    npx = scan.columns * scan.rows;
  const data = new Float32Array(nv * npx);
  const bufs: Partial<Record<ReconMaterial, Float32Array>> = {};
  for (const m of RECON_MATERIALS) if (mats.volumes[m]) bufs[m] = new Float32Array(npx);
  for (let v = 0; v < nv; v++) {
    if (opts.signal?.aborted) throw new CancelledError('C-arm CT acquisition was cancelled');
    const g = scan.views[v];
    for (const m of RECON_MATERIALS) {
      const dv = mats.volumes[m];
      if (dv) renderLineIntegrals(dv, g, bufs[m], 0, g.rows, ACQUISITION_RAYS);
    }
    detectView(ph, bufs, data.subarray(v * npx, (v + 1) * npx));
    opts.onProgress?.(v + 1, nv, 'acquisition');
  }
  return projectionsResult(data, scan, ph);
}

export function projectionsResult(data: Float32Array, scan: CbctScan, ph: ViewPhysics): CbctProjections {
  return {
    data,
    views: scan.views.length,
    columns: scan.columns,
    rows: scan.rows,
    muReferencePerMm: ph.spectrum.muReferencePerMm,
    effectiveEnergyKeV: ph.spectrum.effectiveEnergyKeV,
    spectrum: ph.spectrum,
    settings: ph.settings,
    minCounts: ph.settings.photonsPerPixel > 0 ? ph.minCounts : null,
    photonsPerPixelRange: ph.settings.photonsPerPixel > 0 ? [ph.minN0, ph.maxN0] : null,
  };
}
