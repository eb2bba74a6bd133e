/**
 * The polychromatic beam of a simulated C-arm CT: a few energy bins of a tube spectrum, the attenuation of
 * each material in each bin, the split of a CT's voxels into materials, and the water beam-hardening
 * correction that a scanner applies before reconstruction.
 *
 * Model (kept simple on purpose; recon/README.md lists what it leaves out):
 * - Spectrum: Kramers' bremsstrahlung of a tungsten anode, photons per keV proportional to (kVp - E) / E,
 *   filtered by `filtrationMmAl` of aluminium, weighted by E (an energy-integrating flat detector), cut
 *   into `bins` equal-width bins from 15 keV to the kVp. Each bin has a weight w_b (sum 1) and, per
 *   material, the spectrum-weighted mean of the NIST attenuation over the bin.
 * - Materials: each voxel is a mix of water, cortical bone and metal by its CT number, as drr/attenuation.ts
 *   splits it (air below `airHu`; water with density 1 + HU/1000 up to 0 HU; a water-bone mix with bone
 *   fraction f = HU / boneHuAtCt above, bone only where f > 1; metal at or above `metalHu`).
 * - Transmission of a ray with material path lengths L_m (mm): I / I0 = sum_b w_b exp(-sum_m mu_m,b L_m).
 *   Bone and metal harden the beam along each ray, so their streaks and cupping follow.
 * - Water correction: the polychromatic projection of a water path of length L, p(L) = -ln sum_b w_b
 *   exp(-mu_w,b L), is inverted and the projection replaced by muReference * L: water then reconstructs
 *   flat (0 HU) whatever its thickness, as on a calibrated scanner; bone and metal still harden.
 */
import { linearAttenuationPerMm, DrrError, resolveModel, huToMu, type AttenuationModel } from '../drr/attenuation.js';

export const RECON_MATERIALS = ['water', 'bone', 'metal'] as const;
export type ReconMaterial = (typeof RECON_MATERIALS)[number];

export interface SpectrumSpec {
  /** Tube voltage, kV (30-150). */
  kvp: number;
  /** Total filtration, mm aluminium equivalent (default 3). */
  filtrationMmAl?: number;
  /** Energy bins between 15 keV and the kVp (default 8; 1 = a monochromatic beam at the mean energy). */
  bins?: number;
  /** Water path at which the reference attenuation (and the effective energy) is taken, mm (default 200). */
  referenceWaterMm?: number;
}

export interface BeamSpectrum {
  kvp: number;
  filtrationMmAl: number;
  /** Centre energy of each bin, keV. */
  energiesKeV: number[];
  /** Detector-weighted share of each bin (sum 1). */
  weights: number[];
  /** Linear attenuation (1/mm) of each material in each bin. */
  muPerMm: Record<ReconMaterial, number[]>;
  /** What metal is made of. */
  metal: 'steel' | 'titanium';
  /** Mean attenuation of water over `referenceWaterMm`: p(L) / L (1/mm); the HU scale's water value. */
  muReferencePerMm: number;
  /** The energy at which monochromatic water has muReferencePerMm, keV. */
  effectiveEnergyKeV: number;
  referenceWaterMm: number;
}

const E_MIN_KEV = 15;

/** The binned spectrum and each material's attenuation in it. */
export function beamSpectrum(spec: SpectrumSpec, metal: 'steel' | 'titanium' = 'steel'): BeamSpectrum {
  const { kvp } = spec;
  if (!(kvp >= 30 && kvp <= 150)) throw new DrrError(`tube voltage ${kvp} kV is outside 30-150 kV`);
  const al = spec.filtrationMmAl ?? 3;
  if (!(al >= 0 && al < 100)) throw new DrrError(`filtration ${al} mm Al is outside 0-100 mm`);
  const nb = spec.bins ?? 8;
  if (!(Number.isInteger(nb) && nb >= 1 && nb <= 64)) throw new DrrError(`energy bins ${nb} must be an integer 1-64`);
  const refMm = spec.referenceWaterMm ?? 200;
  if (!(refMm > 0)) throw new DrrError(`reference water path ${refMm} mm must be positive`);
  const width = (kvp - E_MIN_KEV) / nb;
  const energiesKeV: number[] = [],
    weights: number[] = [];
  const muPerMm: Record<ReconMaterial, number[]> = { water: [], bone: [], metal: [] };
  const mats: [ReconMaterial, 'water' | 'bone' | 'steel' | 'titanium'][] = [
    ['water', 'water'],
    ['bone', 'bone'],
    ['metal', metal],
  ];
  let total = 0;
  for (let b = 0; b < nb; b++) {
    const e0 = E_MIN_KEV + b * width;
    let w = 0,
      we = 0;
    const sums = [0, 0, 0];
    const steps = 16;
    for (let s = 0; s < steps; s++) {
      const e = e0 + ((s + 0.5) * width) / steps;
      const x = ((kvp - e) / e) * e * Math.exp(-linearAttenuationPerMm('aluminium', e) * al);
      w += x;
      we += x * e;
      for (let m = 0; m < 3; m++) sums[m] += x * linearAttenuationPerMm(mats[m][1], e);
    }
    energiesKeV.push(we / w);
    weights.push(w);
    for (let m = 0; m < 3; m++) muPerMm[mats[m][0]].push(sums[m] / w);
    total += w;
  }
  for (let b = 0; b < nb; b++) weights[b] /= total;
  const sp: BeamSpectrum = {
    kvp,
    filtrationMmAl: al,
    energiesKeV,
    weights,
    muPerMm,
    metal,
    muReferencePerMm: 0,
    effectiveEnergyKeV: 0,
    referenceWaterMm: refMm,
  };
  sp.muReferencePerMm = polyWaterProjection(sp, refMm) / refMm;
  // Monochromatic water attenuation falls with energy: bisect for the energy that gives the reference.
  let lo = 10,
    hi = 150;
  for (let it = 0; it < 60; it++) {
    const mid = 0.5 * (lo + hi);
    if (linearAttenuationPerMm('water', mid) > sp.muReferencePerMm) lo = mid;
    else hi = mid;
  }
  sp.effectiveEnergyKeV = 0.5 * (lo + hi);
  return sp;
}

/** -ln of the transmission through L mm of water in this spectrum. */
export function polyWaterProjection(sp: BeamSpectrum, waterMm: number): number {
  let t = 0;
  for (let b = 0; b < sp.weights.length; b++) t += sp.weights[b] * Math.exp(-sp.muPerMm.water[b] * waterMm);
  return -Math.log(t);
}

/**
 * Water beam-hardening correction as a table: p -> muReference * L(p), where L(p) is the water path whose
 * polychromatic projection is p. Tabulated on `n` steps of p up to the projection of `maxWaterMm`; beyond,
 * extended along the last slope.
 */
export interface WaterCorrection {
  /** Corrected value at p = i * step. */
  table: Float64Array;
  step: number;
}

export function waterCorrectionTable(sp: BeamSpectrum, maxWaterMm = 2000, n = 8192): WaterCorrection {
  const pMax = polyWaterProjection(sp, maxWaterMm);
  const step = pMax / (n - 1);
  const table = new Float64Array(n);
  // p(L) increases monotonically with L: walk L upward with the table's p values (Newton steps from the
  // previous answer; dp/dL is the transmission-weighted mean attenuation).
  let L = 0;
  for (let i = 0; i < n; i++) {
    const target = i * step;
    for (let it = 0; it < 30; it++) {
      let t = 0,
        tm = 0;
      for (let b = 0; b < sp.weights.length; b++) {
        const x = sp.weights[b] * Math.exp(-sp.muPerMm.water[b] * L);
        t += x;
        tm += x * sp.muPerMm.water[b];
      }
      const p = -Math.log(t),
        slope = tm / t;
      const dL = (target - p) / slope;
      L += dL;
      if (Math.abs(dL) < 1e-9) break;
    }
    table[i] = sp.muReferencePerMm * L;
  }
  return { table, step };
}

/** The corrected value of one projection sample (see waterCorrectionTable). */
export function applyWaterCorrection(wc: WaterCorrection, p: number): number {
  const { table, step } = wc;
  const x = p / step;
  const n = table.length;
  if (!(x > 0)) return x === 0 ? 0 : table[1] * x; // negative (noise): the first slope
  if (x >= n - 1) return table[n - 1] + (table[n - 1] - table[n - 2]) * (x - (n - 1));
  const i = x | 0,
    f = x - i;
  return table[i] + (table[i + 1] - table[i]) * f;
}

export interface MaterialSplit {
  /** Path length of each material per mm of voxel (density relative to the pure material), i fastest. */
  fractions: Record<ReconMaterial, Float32Array>;
  /** Whether any voxel holds the material (absent materials are not projected). */
  present: Record<ReconMaterial, boolean>;
  /** The CT-voltage HU of cortical bone that anchors the split. */
  boneHuAtCt: number;
  model: Required<AttenuationModel>;
}

/** Splits CT numbers into water, bone and metal fractions (see the module's description). */
export function splitMaterials(hu: ArrayLike<number>, model: AttenuationModel = {}): MaterialSplit {
  const m = resolveModel(model);
  const boneHuAtCt = huToMu(m).boneHuAtCt;
  const n = hu.length;
  const water = new Float32Array(n),
    bone = new Float32Array(n),
    metal = new Float32Array(n);
  let hasW = false,
    hasB = false,
    hasM = false;
  for (let i = 0; i < n; i++) {
    const v = hu[i];
    if (!(v >= m.airHu)) continue; // air and NaN
    if (v >= m.metalHu) {
      metal[i] = 1;
      hasM = true;
    } else if (v <= 0) {
      water[i] = 1 + v / 1000;
      hasW = true;
    } else {
      const f = v / boneHuAtCt;
      if (f >= 1) {
        bone[i] = f;
      } else {
        water[i] = 1 - f;
        bone[i] = f;
        hasW = true;
      }
      hasB = true;
    }
  }
  return {
    fractions: { water, bone, metal },
    present: { water: hasW, bone: hasB, metal: hasM },
    boneHuAtCt,
    model: m,
  };
}
