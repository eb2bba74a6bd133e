/**
 * From nominal CT numbers to the CT's int16 voxels, CBCT-like: seeded noise (random.ts) added before a
 * separable Gaussian blur, so that it comes out spatially correlated with the requested standard
 * deviation, then rounding and clamping to [-1024, 3071] HU. Exists to keep the image degradation apart
 * from the anatomy: the label volume never sees it. Limits: the blur is isotropic and space-invariant and
 * its edges are clamped; no beam hardening, scatter, streaks or metal artefacts (steel is simply bright).
 */
import { addNoise } from './random.js';
import { throwIfCancelled } from './options.js';
import type { PhantomProgress } from './types.js';

export interface CtImaging {
  voxelMm: number;
  /** Standard deviation of the output noise (HU); 0 = none. */
  noiseSdHu: number;
  /** Gaussian blur sigma (mm); 0 = none. */
  blurSigmaMm: number;
  /** Generator seed (the noise stream is derived from it). */
  seed: number;
}

/** Degrades `hu` in place (noise, blur) and returns the int16 CT. */
export function ctFromHu(
  hu: Float32Array,
  dims: readonly [number, number, number],
  o: CtImaging,
  onProgress?: (p: PhantomProgress) => void,
  signal?: AbortSignal,
): Int16Array {
  const sigmaVox = o.blurSigmaMm / o.voxelMm;
  const kernel = gaussianKernel(sigmaVox);
  if (o.noiseSdHu > 0) {
    // The blur scales white noise by sqrt(sum of squared weights) per axis; compensate so the output
    // noise has the requested standard deviation.
    let w2 = 0;
    for (const w of kernel) w2 += w * w;
    addNoise(hu, o.noiseSdHu / Math.pow(w2, 1.5), o.seed ^ 0x9e3779b9);
    onProgress?.({ phase: 'noise', fraction: 1 });
  }
  if (kernel.length > 1) blur3(hu, dims, kernel, (f) => onProgress?.({ phase: 'blur', fraction: f }), signal);
  const n = hu.length;
  const ct = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    const x = Math.round(hu[i]);
    ct[i] = x < -1024 ? -1024 : x > 3071 ? 3071 : x;
  }
  return ct;
}

/** Normalized Gaussian weights w[0..2R] (sigma in voxels), truncated at 3 sigma; [1] when sigma is 0. */
export function gaussianKernel(sigmaVox: number): Float64Array {
  if (!(sigmaVox > 0)) return Float64Array.of(1);
  const R = Math.max(1, Math.ceil(3 * sigmaVox));
  const w = new Float64Array(2 * R + 1);
  let sum = 0;
  for (let i = -R; i <= R; i++) sum += w[i + R] = Math.exp((-i * i) / (2 * sigmaVox * sigmaVox));
  for (let i = 0; i < w.length; i++) w[i] /= sum;
  return w;
}

/** Separable Gaussian blur in place, edges clamped. */
function blur3(
  data: Float32Array,
  dims: readonly number[],
  w: Float64Array,
  progress: (f: number) => void,
  signal?: AbortSignal,
) {
  const [nx, ny, nz] = dims;
  const R = (w.length - 1) / 2;
  const line = new Float32Array(Math.max(nx, ny, nz) + 2 * R);
  // Pass 1: along i (contiguous).
  for (let r = 0; r < ny * nz; r++) {
    const o = r * nx;
    for (let i = 0; i < nx + 2 * R; i++) line[i] = data[o + Math.min(nx - 1, Math.max(0, i - R))];
    for (let i = 0; i < nx; i++) {
      let acc = 0;
      for (let m = 0; m < w.length; m++) acc += w[m] * line[i + m];
      data[o + i] = acc;
    }
  }
  progress(1 / 3);
  throwIfCancelled(signal);
  // Pass 2: along j, a slice at a time (rows are contiguous, so whole rows are combined).
  const slice = new Float32Array(nx * ny);
  for (let k = 0; k < nz; k++) {
    const o = k * nx * ny;
    slice.set(data.subarray(o, o + nx * ny));
    for (let j = 0; j < ny; j++) {
      const dst = o + j * nx;
      data.fill(0, dst, dst + nx);
      for (let m = 0; m < w.length; m++) {
        const src = Math.min(ny - 1, Math.max(0, j + m - R)) * nx;
        const wm = w[m];
        for (let i = 0; i < nx; i++) data[dst + i] += wm * slice[src + i];
      }
    }
  }
  progress(2 / 3);
  throwIfCancelled(signal);
  // Pass 3: along k, one xz-plane (fixed j) at a time.
  const plane = new Float32Array(nx * nz);
  const sliceSize = nx * ny;
  for (let j = 0; j < ny; j++) {
    for (let k = 0; k < nz; k++) plane.set(data.subarray(k * sliceSize + j * nx, k * sliceSize + j * nx + nx), k * nx);
    for (let k = 0; k < nz; k++) {
      const dst = k * sliceSize + j * nx;
      data.fill(0, dst, dst + nx);
      for (let m = 0; m < w.length; m++) {
        const src = Math.min(nz - 1, Math.max(0, k + m - R)) * nx;
        const wm = w[m];
        for (let i = 0; i < nx; i++) data[dst + i] += wm * plane[src + i];
      }
    }
  }
  progress(1);
}
