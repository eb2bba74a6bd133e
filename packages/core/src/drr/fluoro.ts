/**
 * From line integrals to an image that looks like fluoroscopy rather than a CT projection:
 * Beer-Lambert transmission, detector blur (scintillator light spread, in the intensity domain), quantum
 * noise (Poisson, seeded, as counts per pixel at the unattenuated dose), the log and edge-enhancing
 * processing fluoroscopy chains apply, and a grey scale with air white and bone dark.
 */
import { DrrError } from './attenuation.js';
import { uniformSource as prng } from '../math/random.js';

export interface FluoroOptions {
  /** Detected photons per pixel where nothing attenuates (dose). Default 4000; 0 = no noise. */
  photonsPerPixel?: number;
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
  /** Log-intensity window mapped to white..black. */
  window: [number, number];
}

/** Separable Gaussian blur of a columns x rows float image into out (edges clamped). */
export function gaussianBlur(
  src: Float32Array,
  columns: number,
  rows: number,
  sigmaPx: number,
  out = new Float32Array(src.length),
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
  const tmp = new Float32Array(src.length);
  for (let r = 0; r < rows; r++) {
    const o = r * columns;
    for (let c = 0; c < columns; c++) {
      let s = 0;
      for (let i = -rad; i <= rad; i++) {
        let cc = c + i;
        cc = cc < 0 ? 0 : cc >= columns ? columns - 1 : cc;
        s += k[i + rad] * src[o + cc];
      }
      tmp[o + c] = s;
    }
  }
  for (let r = 0; r < rows; r++) {
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

function percentile(values: Float32Array, q: number): number {
  const s = Float32Array.from(values).sort();
  return s[Math.min(s.length - 1, Math.max(0, Math.round(q * (s.length - 1))))];
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
  const photons = opts.photonsPerPixel ?? 4000;
  if (!(photons >= 0)) throw new DrrError(`photonsPerPixel must be >= 0 (got ${photons})`);
  const rand = prng(opts.seed ?? 1);
  const I = new Float32Array(n);
  for (let i = 0; i < n; i++) I[i] = Math.exp(-lineIntegrals[i]);
  const blurred = gaussianBlur(I, columns, rows, opts.blurSigmaPx ?? 0.8);
  const logI = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let v = blurred[i];
    if (photons > 0) {
      // Poisson counts as a Gaussian of variance = mean (Box-Muller); accurate above ~10 counts, and
      // clamped to half a photon so the log stays finite where almost nothing gets through.
      const mean = v * photons;
      const g = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
      v = Math.max(0.5, mean + Math.sqrt(mean) * g) / photons;
    }
    blurred[i] = v;
    logI[i] = -Math.log(v);
  }
  // Display processing: unsharp mask on the log image sharpens bone edges as fluoroscopy chains do.
  const gain = opts.edgeEnhance ?? 0.8;
  const disp = new Float32Array(n);
  if (gain > 0) {
    const low = gaussianBlur(logI, columns, rows, opts.edgeRadiusPx ?? 6);
    for (let i = 0; i < n; i++) disp[i] = logI[i] + gain * (logI[i] - low[i]);
  } else disp.set(logI);
  const lo = percentile(disp, 0.005),
    hi = percentile(disp, 0.995);
  const span = hi - lo > 1e-6 ? hi - lo : 1;
  const gamma = opts.gamma ?? 0.9;
  const gray = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let t = (disp[i] - lo) / span;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    gray[i] = Math.round(255 * Math.pow(1 - t, gamma));
  }
  return { columns, rows, intensity: blurred, gray, window: [lo, hi] };
}
