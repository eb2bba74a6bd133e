/**
 * From line integrals to an image that looks like fluoroscopy rather than a CT projection:
 * Beer-Lambert transmission at the exposure's kV, quantum noise (Poisson, seeded, as detected photons per
 * pixel at the exposure's dose), detector blur (scintillator light spread, which blurs the quantum noise
 * too), the log and edge-enhancing processing fluoroscopy chains apply, and a grey scale with air white
 * and bone dark whose window is taken from the pixels inside the body (not the air or the collimator).
 *
 * `fluoroscopyWithExposure` is the entry point of the CLI and the browser: automatic exposure
 * (`exposure.ts`) for the view, then this image.
 */
import { DrrError } from './attenuation.js';
import {
  automaticExposure,
  bodyMask,
  erodeMask,
  maskedQuantiles,
  type Exposure,
  type ExposureOptions,
} from './exposure.js';
import type { CarmGeometry } from '../carm/geometry.js';
import { uniformSource as prng } from '../math/random.js';

export interface FluoroOptions {
  /**
   * The exposure (automaticExposure): its photons per pixel and attenuation scale replace
   * photonsPerPixel and the reference kV's line integrals.
   */
  exposure?: Exposure;
  /** Without `exposure`: detected photons per pixel where nothing attenuates. Default 4000; 0 = no noise. */
  photonsPerPixel?: number;
  /** Leave the quantum noise out (the exposure still sets the attenuation). Default false. */
  noiseFree?: boolean;
  /** Pixels whose line integral exceeds this are inside the body; they set the window. Default 1. */
  bodyLineIntegral?: number;
  /** Gaussian detector blur, pixels (sigma). Default 0.8. */
  blurSigmaPx?: number;
  /** Seed of the noise: the same seed gives the same image. Default 1. */
  seed?: number;
  /** Unsharp-mask gain of the display processing (0 = none). Default 0.8. */
  edgeEnhance?: number;
  /** Radius (sigma, pixels) of the unsharp mask. Default 6. */
  edgeRadiusPx?: number;
  /** Gamma of the grey scale (below 1 brightens mid-tones). Default 0.9. */
  gamma?: number;
}

export interface FluoroImage {
  columns: number;
  rows: number;
  /** Detected intensity relative to the unattenuated beam, with blur and noise. */
  intensity: Float32Array;
  /** Display grey levels, 0 = black (bone, metal) to 255 = white (air). */
  gray: Uint8Array;
  /** Log-intensity window mapped to white..black (0.5th and 99.5th percentiles of its pixels). */
  window: [number, number];
  /** Which pixels chose the window: those inside the body, or all (too few inside the body). */
  windowFrom: 'body' | 'image';
  /** The exposure the image was made with (null: fixed photonsPerPixel at the reference kV). */
  exposure: Exposure | null;
}

/**
 * Separable Gaussian blur of a columns x rows float image into out (edges clamped); `tmp` holds the row
 * pass (a new array by default). The taps are summed in the same order at the edges and inside, where
 * no clamping is needed (the inner loops skip it).
 */
export function gaussianBlur(
  src: Float32Array,
  columns: number,
  rows: number,
  sigmaPx: number,
  out: Float32Array = new Float32Array(src.length),
  tmp: Float32Array = new Float32Array(src.length),
): Float32Array {
  if (!(sigmaPx > 0)) {
    out.set(src);
    return out;
  }
  const rad = Math.max(1, Math.ceil(3 * sigmaPx));
  const k = new Float32Array(2 * rad + 1);
  let ks = 0;
  for (let i = -rad; i <= rad; i++) ks += k[i + rad] = Math.exp((-i * i) / (2 * sigmaPx * sigmaPx));
  for (let i = 0; i < k.length; i++) k[i] /= ks;
  const nk = k.length;
  // Five taps (sigma up to 2/3 pixel, the detector blur): the inner loops written out, same sums.
  const five = nk === 5 && columns > 4 && rows > 4;
  const k0 = k[0],
    k1 = k[1],
    k2 = k[2],
    k3 = five ? k[3] : 0,
    k4 = five ? k[4] : 0;
  // Row pass; a column near the edges reads its row's end pixel for the taps beyond it.
  const clampedRow = (o: number, c: number) => {
    let s = 0;
    for (let i = -rad; i <= rad; i++) {
      let cc = c + i;
      cc = cc < 0 ? 0 : cc >= columns ? columns - 1 : cc;
      s += k[i + rad] * src[o + cc];
    }
    return s;
  };
  for (let r = 0; r < rows; r++) {
    const o = r * columns;
    if (five) {
      for (let x = o; x < o + columns - 4; x++)
        tmp[x + 2] = k0 * src[x] + k1 * src[x + 1] + k2 * src[x + 2] + k3 * src[x + 3] + k4 * src[x + 4];
      tmp[o] = clampedRow(o, 0);
      tmp[o + 1] = clampedRow(o, 1);
      tmp[o + columns - 2] = clampedRow(o, columns - 2);
      tmp[o + columns - 1] = clampedRow(o, columns - 1);
      continue;
    }
    for (let c = 0; c < columns; c++) {
      let s = 0;
      if (c >= rad && c < columns - rad) {
        const b = o + c - rad;
        for (let i = 0; i < nk; i++) s += k[i] * src[b + i];
        tmp[o + c] = s;
      } else {
        tmp[o + c] = clampedRow(o, c);
      }
    }
  }
  for (let r = 0; r < rows; r++) {
    if (r >= rad && r < rows - rad) {
      const b = (r - rad) * columns;
      if (five) {
        const c2 = 2 * columns,
          c3 = 3 * columns,
          c4 = 4 * columns,
          o = r * columns;
        for (let c = 0, x = b; c < columns; c++, x++)
          out[o + c] = k0 * tmp[x] + k1 * tmp[x + columns] + k2 * tmp[x + c2] + k3 * tmp[x + c3] + k4 * tmp[x + c4];
        continue;
      }
      for (let c = 0; c < columns; c++) {
        let s = 0;
        for (let i = 0, x = b + c; i < nk; i++, x += columns) s += k[i] * tmp[x];
        out[r * columns + c] = s;
      }
      continue;
    }
    for (let c = 0; c < columns; c++) {
      let s = 0;
      for (let i = -rad; i <= rad; i++) {
        let rr = r + i;
        rr = rr < 0 ? 0 : rr >= rows ? rows - 1 : rr;
        s += k[i + rad] * tmp[rr * columns + c];
      }
      out[r * columns + c] = s;
    }
  }
  return out;
}

export function fluoroscopyImage(
  lineIntegrals: Float32Array,
  columns: number,
  rows: number,
  opts: FluoroOptions = {},
): FluoroImage {
  const n = columns * rows;
  if (lineIntegrals.length !== n)
    throw new DrrError(`line integrals hold ${lineIntegrals.length} values, ${columns} x ${rows} needs ${n}`);
  const exposure = opts.exposure ?? null;
  const photons = opts.noiseFree ? 0 : exposure ? exposure.photonsPerPixel : (opts.photonsPerPixel ?? 4000);
  if (!(photons >= 0 && Number.isFinite(photons)))
    throw new DrrError(`photonsPerPixel must be finite and >= 0 (got ${photons})`);
  const scale = exposure ? exposure.attenuationScale : 1;
  if (!(scale > 0)) throw new DrrError(`attenuation scale must be positive (got ${scale})`);
  const rand = prng(opts.seed ?? 1);
  // Transmission at the exposure's kV; with noise, detected counts (mean photons x transmission).
  const I = new Float32Array(n);
  if (photons > 0) {
    for (let i = 0; i < n; i++) {
      // Poisson counts as a Gaussian of variance = mean (Box-Muller); accurate above ~10 counts.
      const mean = photons * Math.exp(-scale * lineIntegrals[i]);
      const g = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
      I[i] = mean + Math.sqrt(mean) * g;
    }
  } else for (let i = 0; i < n; i++) I[i] = Math.exp(-scale * lineIntegrals[i]);
  // The scintillator's light spread blurs the detected quanta, noise included.
  const blurred = gaussianBlur(I, columns, rows, opts.blurSigmaPx ?? 0.8);
  const logI = I; // reused: I is not needed after the blur
  const inv = photons > 0 ? 1 / photons : 1;
  // Clamped at half a photon so the log stays finite where almost nothing gets through.
  const floor = photons > 0 ? 0.5 : 1e-30;
  for (let i = 0; i < n; i++) {
    const v = blurred[i] > floor ? blurred[i] : floor;
    blurred[i] = v * inv;
    logI[i] = -Math.log(v * inv);
  }
  // Display processing: unsharp mask on the log image sharpens bone edges as fluoroscopy chains do.
  const gain = opts.edgeEnhance ?? 0.8;
  let disp: Float32Array = logI;
  if (gain > 0) {
    disp = gaussianBlur(logI, columns, rows, opts.edgeRadiusPx ?? 6);
    for (let i = 0; i < n; i++) disp[i] = logI[i] + gain * (logI[i] - disp[i]);
  }
  // Window from the pixels inside the body, so that air and collimator do not flatten the anatomy; a few
  // pixels in from its outline, where the detector blur and the unsharp mask's halo mix in the air.
  const body = erodeMask(bodyMask(lineIntegrals, opts.bodyLineIntegral ?? 1), columns, rows, 3);
  let inBody = 0;
  for (let i = 0; i < n; i++) inBody += body[i];
  const windowFrom = inBody >= Math.max(16, 0.01 * n) ? 'body' : 'image';
  const [lo, hi] = maskedQuantiles(disp, windowFrom === 'body' ? body : null, [0.005, 0.995]);
  const span = hi - lo > 1e-6 ? hi - lo : 1;
  const gamma = opts.gamma ?? 0.9;
  const gray = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let t = (disp[i] - lo) / span;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    gray[i] = Math.round(255 * Math.pow(1 - t, gamma));
  }
  return { columns, rows, intensity: blurred, gray, window: [lo, hi], windowFrom, exposure };
}

export interface FluoroExposureOptions extends Omit<FluoroOptions, 'exposure' | 'photonsPerPixel'> {
  /** The exposure control's settings (the geometry supplies pixel area and distance). */
  exposure?: Omit<ExposureOptions, 'pixelAreaMm2' | 'sidMm'>;
}

/**
 * One view as the C-arm shows it: automatic exposure from the line integrals (kV, mAs, dose), then
 * fluoroscopyImage with that exposure. The entry point of `corridor drr` and the browser's view.
 */
export function fluoroscopyWithExposure(
  lineIntegrals: Float32Array,
  g: CarmGeometry,
  opts: FluoroExposureOptions = {},
): FluoroImage & { exposure: Exposure } {
  const exposure = automaticExposure(lineIntegrals, g.columns, g.rows, {
    ...opts.exposure,
    pixelAreaMm2: g.columnSpacingMm * g.rowSpacingMm,
    sidMm: g.sidMm,
    ...(opts.bodyLineIntegral !== undefined && opts.exposure?.bodyLineIntegral === undefined
      ? { bodyLineIntegral: opts.bodyLineIntegral }
      : {}),
  });
  const { exposure: _e, ...rest } = opts;
  void _e;
  return { ...fluoroscopyImage(lineIntegrals, g.columns, g.rows, { ...rest, exposure }), exposure };
}
