/**
 * Automatic exposure (automatic brightness / dose rate control), as a C-arm's generator does it: from
 * the line integrals of a view, choose the tube voltage (kV) and the tube current-time product (mAs) so
 * that the detector receives a target dose in a central measuring field, raising kV and mAs together as
 * the patient gets thicker.
 *
 * The model, stated once (all of it is an effective-energy approximation, see README "Limits"):
 * - The line integrals are at a reference tube voltage (the attenuation model's `kvp`). At another
 *   voltage every line integral is scaled by `attenuationScale(kV)` = mu_water(kV) / mu_water(ref), the
 *   spectrum-averaged water attenuation of `effectiveAttenuationPerMm` (falls monotonically with kV).
 *   Bone's extra contrast at low kV is therefore not rescaled: one factor for all materials.
 * - Tube output: air kerma at 1 m per mAs = `TUBE_OUTPUT_NGY_PER_MAS` (50 uGy at 75 kV, 3 mm Al, a
 *   typical figure from tube output charts) x (kV / 75)^2.5, and falls with the square of the distance.
 * - Detected photons per mm^2 = air kerma (nGy) x `PHOTONS_PER_MM2_PER_NGY` (fluence per air kerma near
 *   55 keV) x `DETECTOR_EFFICIENCY` (CsI absorption): photons per pixel = that x pixel area.
 * - The measuring field: the central `fieldFraction` of the image (a square), its in-body pixels (line
 *   integral above `bodyLineIntegral`); the ABC aims the field's median pixel at `targetDoseNGy`.
 * - The exposure curve: kV = kvMin + t (kvMax - kvMin), mAs = mAsMin (mAsMax / mAsMin)^t, t in [0, 1]
 *   found by bisection (the dose rises monotonically with t). A thin patient needing less than t = 0
 *   gives kvMin and less mAs; one needing more than t = 1 gets kvMax and mAsMax and is `underexposed`.
 * - A fixed `kvp` (manual kV) leaves only mAs to choose (up to mAsMax).
 */
import { DrrError, effectiveAttenuationPerMm } from './attenuation.js';

/** Air kerma at 1 m per mAs at 75 kV (nGy/mAs), 3 mm Al total filtration. */
export const TUBE_OUTPUT_NGY_PER_MAS = 50_000;
/** Photon fluence per unit air kerma (photons per mm^2 per nGy), near 55 keV effective energy. */
export const PHOTONS_PER_MM2_PER_NGY = 30;
/** Fraction of the photons reaching the detector that it detects (CsI scintillator). */
export const DETECTOR_EFFICIENCY = 0.7;
/** Exponent of the tube output's rise with kV. */
export const TUBE_OUTPUT_KV_EXPONENT = 2.5;

export interface ExposureOptions {
  /** Detector pixel area, mm^2 (columnSpacingMm x rowSpacingMm). Required. */
  pixelAreaMm2: number;
  /** Source to detector distance, mm. Required. */
  sidMm: number;
  /** Tube voltage the line integrals were computed at, kV (the attenuation model's). Default 75. */
  referenceKvp?: number;
  /** Manual tube voltage: the ABC then chooses only mAs. */
  kvp?: number;
  /** The exposure curve's ends: kV (default 60 and 120) and mAs (default 0.1 and 20). */
  kvMin?: number;
  kvMax?: number;
  mAsMin?: number;
  mAsMax?: number;
  /** Detector air kerma the ABC aims for in the measuring field, nGy per image. Default 100. */
  targetDoseNGy?: number;
  /** Side of the central measuring field as a fraction of the image's. Default 0.6. */
  fieldFraction?: number;
  /** Pixels whose line integral exceeds this are inside the body (1 = about 50 mm of water). Default 1. */
  bodyLineIntegral?: number;
}

/** The exposure chosen for one image. */
export interface Exposure {
  mode: 'automatic' | 'manual-kv';
  /** Tube voltage, kV. */
  kvp: number;
  /** Tube current-time product, mAs. */
  mAs: number;
  /** Line integrals at kvp = reference line integrals x attenuationScale. */
  attenuationScale: number;
  /** Detected photons per pixel where nothing attenuates. */
  photonsPerPixel: number;
  /** Detector air kerma without the patient, nGy. */
  unattenuatedDoseNGy: number;
  /** Median line integral (reference kV) of the measuring field's in-body pixels (0 where none). */
  fieldLineIntegral: number;
  /** Detector air kerma and detected photons per pixel at that median. */
  fieldDoseNGy: number;
  fieldPhotonsPerPixel: number;
  /** The target was out of reach at kvMax and mAsMax (the image is noisier than aimed for). */
  underexposed: boolean;
  /** Pixels of the measuring field inside the body. */
  fieldPixels: number;
}

const scaleCache = new Map<string, number>();

/** mu_water(kv) / mu_water(referenceKvp), spectrum-averaged (falls monotonically with kV). */
export function attenuationScale(kvp: number, referenceKvp: number): number {
  const key = `${kvp.toFixed(3)}|${referenceKvp.toFixed(3)}`;
  let s = scaleCache.get(key);
  if (s === undefined) {
    s = effectiveAttenuationPerMm('water', { kvp }) / effectiveAttenuationPerMm('water', { kvp: referenceKvp });
    if (scaleCache.size > 4096) scaleCache.clear();
    scaleCache.set(key, s);
  }
  return s;
}

/** Unattenuated detector air kerma (nGy) for kV, mAs at a distance. */
export function detectorDoseNGy(kvp: number, mAs: number, sidMm: number): number {
  return TUBE_OUTPUT_NGY_PER_MAS * Math.pow(kvp / 75, TUBE_OUTPUT_KV_EXPONENT) * mAs * (1000 / sidMm) ** 2;
}

/**
 * The q-quantile of values[i] over the pixels where keep(i), by a histogram (O(n), no sort, no copy):
 * exact to (max - min) / bins. NaN where no pixel is kept.
 */
export function maskedQuantiles(
  values: ArrayLike<number>,
  mask: Uint8Array | null,
  qs: readonly number[],
  bins = 4096,
): number[] {
  let lo = Infinity,
    hi = -Infinity,
    n = 0;
  for (let i = 0; i < values.length; i++) {
    if (mask && !mask[i]) continue;
    const v = values[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
    n++;
  }
  if (n === 0) return qs.map(() => NaN);
  if (!(hi > lo)) return qs.map(() => lo);
  const h = new Uint32Array(bins);
  const k = bins / (hi - lo);
  for (let i = 0; i < values.length; i++) {
    if (mask && !mask[i]) continue;
    let b = Math.floor((values[i] - lo) * k);
    if (b >= bins) b = bins - 1;
    h[b]++;
  }
  return qs.map((q) => {
    const want = Math.min(n - 1, Math.max(0, Math.round(q * (n - 1))));
    let acc = 0;
    for (let b = 0; b < bins; b++) {
      acc += h[b];
      if (acc > want) return lo + (b + 0.5) / k;
    }
    return hi;
  });
}

/** 1 where a pixel's line integral exceeds the threshold (inside the body). */
export function bodyMask(lineIntegrals: ArrayLike<number>, threshold: number, out?: Uint8Array): Uint8Array {
  const m = out ?? new Uint8Array(lineIntegrals.length);
  for (let i = 0; i < lineIntegrals.length; i++) m[i] = lineIntegrals[i] > threshold ? 1 : 0;
  return m;
}

/**
 * Erode a 0/1 mask in place by a (2 r + 1)-pixel square (separable: rows, then columns); pixels within r
 * of the image's edge are kept if the mask holds there.
 */
export function erodeMask(mask: Uint8Array, columns: number, rows: number, r: number): Uint8Array {
  if (r < 1) return mask;
  const tmp = new Uint8Array(mask.length);
  for (let y = 0; y < rows; y++) {
    const o = y * columns;
    let run = 0; // body pixels to the left, up to 2r + 1
    for (let x = 0; x < columns + r; x++) {
      if (x < columns) run = mask[o + x] ? run + 1 : 0;
      else run++;
      const c = x - r;
      if (c >= 0) tmp[o + c] = run >= Math.min(2 * r + 1, c + r + 1) ? 1 : 0;
    }
  }
  for (let x = 0; x < columns; x++) {
    let run = 0;
    for (let y = 0; y < rows + r; y++) {
      if (y < rows) run = tmp[y * columns + x] ? run + 1 : 0;
      else run++;
      const c = y - r;
      if (c >= 0) mask[c * columns + x] = run >= Math.min(2 * r + 1, c + r + 1) ? 1 : 0;
    }
  }
  return mask;
}

export function automaticExposure(
  lineIntegrals: Float32Array,
  columns: number,
  rows: number,
  opts: ExposureOptions,
): Exposure {
  const n = columns * rows;
  if (lineIntegrals.length !== n)
    throw new DrrError(`line integrals hold ${lineIntegrals.length} values, ${columns} x ${rows} needs ${n}`);
  const ref = opts.referenceKvp ?? 75;
  const kvMin = opts.kvMin ?? 60,
    kvMax = opts.kvMax ?? 120;
  const mAsMin = opts.mAsMin ?? 0.1,
    mAsMax = opts.mAsMax ?? 20;
  const target = opts.targetDoseNGy ?? 100;
  const frac = opts.fieldFraction ?? 0.6;
  const bodyLi = opts.bodyLineIntegral ?? 1;
  const { pixelAreaMm2, sidMm } = opts;
  if (!(pixelAreaMm2 > 0 && Number.isFinite(pixelAreaMm2)))
    throw new DrrError(`pixelAreaMm2 must be positive (got ${pixelAreaMm2})`);
  if (!(sidMm > 0 && Number.isFinite(sidMm))) throw new DrrError(`sidMm must be positive (got ${sidMm})`);
  if (!(kvMin >= 30 && kvMax <= 150 && kvMin <= kvMax))
    throw new DrrError(`kV range ${kvMin}-${kvMax} must lie within 30-150 kV, low end first`);
  if (!(mAsMin > 0 && mAsMax >= mAsMin))
    throw new DrrError(`mAs range ${mAsMin}-${mAsMax} must be positive, low first`);
  if (!(target > 0)) throw new DrrError(`targetDoseNGy must be positive (got ${target})`);
  if (!(frac > 0 && frac <= 1)) throw new DrrError(`fieldFraction must be within (0, 1] (got ${frac})`);
  if (opts.kvp !== undefined && !(opts.kvp >= 30 && opts.kvp <= 150))
    throw new DrrError(`tube voltage ${opts.kvp} kV is outside 30-150 kV`);

  // Measuring field: the central square, in-body pixels; its median line integral.
  const c0 = Math.floor((columns * (1 - frac)) / 2),
    c1 = Math.ceil((columns * (1 + frac)) / 2);
  const r0 = Math.floor((rows * (1 - frac)) / 2),
    r1 = Math.ceil((rows * (1 + frac)) / 2);
  const field = new Uint8Array(n);
  let fieldPixels = 0;
  for (let r = r0; r < r1; r++)
    for (let c = c0, i = r * columns + c0; c < c1; c++, i++)
      if (lineIntegrals[i] > bodyLi) {
        field[i] = 1;
        fieldPixels++;
      }
  const L = fieldPixels > 0 ? maskedQuantiles(lineIntegrals, field, [0.5])[0] : 0;

  const doseAt = (kv: number, mAs: number) =>
    detectorDoseNGy(kv, mAs, sidMm) * Math.exp(-attenuationScale(kv, ref) * L);
  let kvp: number, mAs: number;
  let underexposed = false;
  if (opts.kvp !== undefined) {
    kvp = opts.kvp;
    mAs = target / doseAt(kvp, 1);
    if (mAs > mAsMax) {
      mAs = mAsMax;
      underexposed = true;
    }
  } else {
    const at = (t: number): [number, number] => [kvMin + t * (kvMax - kvMin), mAsMin * Math.pow(mAsMax / mAsMin, t)];
    if (doseAt(...at(0)) >= target) {
      kvp = kvMin;
      mAs = target / doseAt(kvMin, 1);
    } else if (doseAt(...at(1)) < target) {
      [kvp, mAs] = at(1);
      underexposed = true;
    } else {
      let lo = 0,
        hi = 1;
      for (let it = 0; it < 40; it++) {
        const mid = (lo + hi) / 2;
        if (doseAt(...at(mid)) < target) lo = mid;
        else hi = mid;
      }
      kvp = at(hi)[0];
      mAs = target / doseAt(kvp, 1); // on the curve to 1e-12 in t, exactly on the target dose
    }
  }
  const s = attenuationScale(kvp, ref);
  const open = detectorDoseNGy(kvp, mAs, sidMm);
  const perNGy = PHOTONS_PER_MM2_PER_NGY * DETECTOR_EFFICIENCY * pixelAreaMm2;
  const fieldDose = open * Math.exp(-s * L);
  return {
    mode: opts.kvp !== undefined ? 'manual-kv' : 'automatic',
    kvp,
    mAs,
    attenuationScale: s,
    photonsPerPixel: open * perNGy,
    unattenuatedDoseNGy: open,
    fieldLineIntegral: L,
    fieldDoseNGy: fieldDose,
    fieldPhotonsPerPixel: fieldDose * perNGy,
    underexposed,
    fieldPixels,
  };
}
