/**
 * From CT numbers to linear attenuation at a fluoroscopy tube voltage.
 *
 * A CT number is measured with a ~120 kV spectrum; a pelvic fluoroscopy runs at ~70-80 kV, where bone
 * and metal attenuate relatively more than water (photoelectric effect grows as Z^3/E^3). Each voxel is
 * decomposed into two materials from its HU (air-water below 0 HU, water-cortical bone above, metal above
 * `metalHu`), and each material's attenuation is averaged over the spectrum that reaches the detector
 * (Kramers' bremsstrahlung spectrum of a tungsten anode, the tube's aluminium filtration, hardened by a
 * typical patient's water thickness, energy-weighted as an integrating detector weights it). The same
 * model at the CT's voltage gives the HU of cortical bone that anchors the decomposition.
 *
 * This is an effective-energy model: it weights materials as the spectrum does but does not model beam
 * hardening along each ray (that would need per-material line integrals).
 */
import { CorridorError } from '../errors.js';

/** A DRR request that cannot be rendered (bad parameters, a volume too small). */
export class DrrError extends CorridorError {
  override readonly name: string = 'DrrError';
}

/** Energies (keV) of the tables below. */
const E_KEV = [10, 15, 20, 30, 40, 50, 60, 80, 100, 150];

/**
 * Mass attenuation coefficients mu/rho (cm^2/g) with coherent scattering, from the NIST XCOM / Hubbell &
 * Seltzer "X-Ray Mass Attenuation Coefficients" tables (water; ICRU-44 cortical bone; Al; Ti; Fe).
 */
const MASS_ATTENUATION: Record<Material, { density: number; muRho: number[] }> = {
  water: { density: 1.0, muRho: [5.329, 1.673, 0.8096, 0.3756, 0.2683, 0.2269, 0.2059, 0.1837, 0.1707, 0.1505] },
  bone: { density: 1.92, muRho: [28.51, 9.032, 4.001, 1.331, 0.6655, 0.4242, 0.3148, 0.2229, 0.1855, 0.148] },
  aluminium: { density: 2.699, muRho: [26.23, 7.955, 3.441, 1.128, 0.5685, 0.3681, 0.2778, 0.2018, 0.1704, 0.1378] },
  titanium: { density: 4.506, muRho: [110.7, 35.87, 15.85, 4.972, 2.214, 1.213, 0.7661, 0.4052, 0.2721, 0.1649] },
  steel: { density: 7.874, muRho: [170.6, 57.08, 25.68, 8.176, 3.629, 1.958, 1.205, 0.5952, 0.3717, 0.1964] },
};

export type Material = 'water' | 'bone' | 'aluminium' | 'titanium' | 'steel';

/** mu/rho at energy E by log-log interpolation of the table (cm^2/g). */
export function massAttenuation(material: Material, energyKeV: number): number {
  const t = MASS_ATTENUATION[material].muRho;
  if (energyKeV <= E_KEV[0]) return t[0];
  let i = 1;
  while (i < E_KEV.length - 1 && E_KEV[i] < energyKeV) i++;
  const e0 = E_KEV[i - 1],
    e1 = E_KEV[i];
  const f = Math.log(energyKeV / e0) / Math.log(e1 / e0);
  return Math.exp(Math.log(t[i - 1]) + f * (Math.log(t[i]) - Math.log(t[i - 1])));
}

/** Linear attenuation, 1/mm, at energy E. */
export function linearAttenuationPerMm(material: Material, energyKeV: number): number {
  return (massAttenuation(material, energyKeV) * MASS_ATTENUATION[material].density) / 10;
}

export interface SpectrumOptions {
  /** Tube voltage, kV. */
  kvp: number;
  /** Total filtration, mm aluminium equivalent. */
  filtrationMmAl?: number;
  /** Water thickness the beam has crossed before the detector sees it, mm (a typical patient). */
  patientWaterMm?: number;
}

/** Spectrum-averaged linear attenuation (1/mm) of a material, detector-weighted (energy-integrating). */
export function effectiveAttenuationPerMm(material: Material, opts: SpectrumOptions): number {
  const { kvp } = opts;
  if (!(kvp >= 30 && kvp <= 150)) throw new DrrError(`tube voltage ${kvp} kV is outside 30-150 kV`);
  const al = opts.filtrationMmAl ?? 3;
  const water = opts.patientWaterMm ?? 200;
  let num = 0,
    den = 0;
  for (let e = 10.5; e < kvp; e += 0.5) {
    // Kramers: photons per keV proportional to (kVp - E) / E; an integrating detector weights by E.
    const photons = (kvp - e) / e;
    const w =
      photons * e * Math.exp(-linearAttenuationPerMm('aluminium', e) * al - linearAttenuationPerMm('water', e) * water);
    num += w * linearAttenuationPerMm(material, e);
    den += w;
  }
  return num / den;
}

export interface AttenuationModel {
  /** Fluoroscopy tube voltage, kV (default 75). */
  kvp?: number;
  /** Tube voltage the CT numbers were measured at, kV (default 120). */
  ctKvp?: number;
  filtrationMmAl?: number;
  patientWaterMm?: number;
  /** Voxels below this HU are air: zero attenuation, so rays skip them (default -950). */
  airHu?: number;
  /** Voxels at or above this HU are metal (CT scanners clip metal near 3071; default 2500). */
  metalHu?: number;
  /** What metal instruments are made of (default steel). */
  metal?: 'steel' | 'titanium';
}

export interface HuToMu {
  /** mu (1/mm) for HU = index + hu0, for integer HU from hu0 up. */
  lut: Float32Array;
  hu0: number;
  /** HU of cortical bone at the CT's voltage, by the same model. */
  boneHuAtCt: number;
  /** The effective attenuation of each material at the fluoroscopy voltage, 1/mm. */
  muWater: number;
  muBone: number;
  muMetal: number;
  model: Required<AttenuationModel>;
}

export function resolveModel(m: AttenuationModel = {}): Required<AttenuationModel> {
  return {
    kvp: m.kvp ?? 75,
    ctKvp: m.ctKvp ?? 120,
    filtrationMmAl: m.filtrationMmAl ?? 3,
    patientWaterMm: m.patientWaterMm ?? 200,
    airHu: m.airHu ?? -950,
    metalHu: m.metalHu ?? 2500,
    metal: m.metal ?? 'steel',
  };
}

/** The HU -> mu lookup table (integer HU from -1024 to metalHu; above is metal). */
export function huToMu(model: AttenuationModel = {}): HuToMu {
  const m = resolveModel(model);
  if (!(m.metalHu > 0 && m.metalHu <= 30000)) throw new DrrError(`metalHu ${m.metalHu} must be within 1..30000`);
  const fl = { kvp: m.kvp, filtrationMmAl: m.filtrationMmAl, patientWaterMm: m.patientWaterMm };
  // CT beams are filtered harder (about 6 mm Al) than fluoroscopy beams.
  const ct = { kvp: m.ctKvp, filtrationMmAl: 6, patientWaterMm: m.patientWaterMm };
  const wCt = effectiveAttenuationPerMm('water', ct),
    bCt = effectiveAttenuationPerMm('bone', ct);
  const boneHuAtCt = 1000 * (bCt / wCt - 1);
  const muWater = effectiveAttenuationPerMm('water', fl);
  const muBone = effectiveAttenuationPerMm('bone', fl);
  const muMetal = effectiveAttenuationPerMm(m.metal, fl);
  const hu0 = -1024;
  const lut = new Float32Array(Math.ceil(m.metalHu) - hu0 + 1);
  for (let i = 0; i < lut.length; i++) {
    const hu = hu0 + i;
    let mu: number;
    if (hu < m.airHu) mu = 0;
    else if (hu <= 0) mu = muWater * (1 + hu / 1000);
    else if (hu < m.metalHu) mu = muWater + (muBone - muWater) * (hu / boneHuAtCt);
    else mu = muMetal;
    lut[i] = mu;
  }
  return { lut, hu0, boneHuAtCt, muWater, muBone, muMetal, model: m };
}
