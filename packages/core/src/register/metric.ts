/**
 * Similarity of a fixed sample set and a moving image under a rigid transform, with its analytic gradient
 * with respect to the six parameters (rigid-transform.ts). Two metrics:
 *
 * - `mi`: Mattes mutual information (Mattes et al. 2003; as in ITK and elastix): a joint histogram of
 *   fixed bins (zero-order) against a cubic B-spline Parzen window on the moving value, MI in nats. Works
 *   between modalities and under any monotone or non-monotone change of intensity (a CBCT's HU offset and
 *   scale).
 * - `nc`: normalized (Pearson) correlation of the values, for the same modality.
 *
 * A sample counts only where both images have data: the fixed samples are drawn from valid voxels, and a
 * moving value is valid when the point lies within the moving grid and none of the 8 voxels it is
 * interpolated from is NaN (the pyramid writes NaN outside a scan's field of view). The set of samples is
 * fixed for a level (seeded), so the metric is a deterministic, piecewise-smooth function of the
 * parameters. The evaluation allocates nothing: all scratch is made in the constructor.
 */
import { eulerRotationDerivatives, eulerToRotation } from './rigid-transform.js';

export type MetricKind = 'mi' | 'nc';

/** A level's moving image: Float32 voxels (NaN = no data) on a grid. */
export interface LevelImage {
  data: Float32Array;
  dims: readonly [number, number, number];
  /** LPS mm -> continuous index, row-major 4x4. */
  patientToIndex: ArrayLike<number>;
}

export interface SampleSet {
  /** Fixed sample positions, LPS mm, x y z interleaved. */
  points: Float64Array;
  /** Fixed values at the samples. */
  values: Float32Array;
}

export const DEFAULT_HISTOGRAM_BINS = 32;
/** Padding bins on each side of the moving histogram for the cubic B-spline window (support 4 bins). */
const PAD = 2;

function bspline3(u: number): number {
  const a = u < 0 ? -u : u;
  if (a < 1) return (4 - 6 * a * a + 3 * a * a * a) / 6;
  if (a < 2) {
    const b = 2 - a;
    return (b * b * b) / 6;
  }
  return 0;
}

function bspline3Derivative(u: number): number {
  const a = u < 0 ? -u : u;
  if (a < 1) return -2 * u + 1.5 * u * a;
  if (a < 2) {
    const b = 2 - a;
    return u < 0 ? 0.5 * b * b : -0.5 * b * b;
  }
  return 0;
}

/** Percentile range (lo, hi) of finite values, from a sorted subsample (deterministic stride). */
export function robustRange(data: ArrayLike<number>, loFrac = 0.001, hiFrac = 0.999): [number, number] {
  const n = data.length;
  const stride = Math.max(1, Math.floor(n / 200000));
  const vals: number[] = [];
  for (let i = 0; i < n; i += stride) {
    const v = data[i];
    if (v === v && Number.isFinite(v)) vals.push(v);
  }
  if (!vals.length) return [0, 1];
  vals.sort((x, y) => x - y);
  const lo = vals[Math.floor(loFrac * (vals.length - 1))];
  let hi = vals[Math.ceil(hiFrac * (vals.length - 1))];
  if (!(hi > lo)) hi = lo + 1;
  return [lo, hi];
}

export class LevelMetric {
  readonly kind: MetricKind;
  readonly n: number;
  /** Number of samples whose moving value was valid at the last evaluation. */
  validCount = 0;
  private readonly px: Float64Array;
  private readonly fval: Float32Array;
  private readonly fbin: Int32Array;
  private readonly mov: LevelImage;
  private readonly p2i: Float64Array;
  private readonly binsF: number;
  private readonly binsM: number;
  private readonly mMin: number;
  private readonly mBinWidth: number;
  // Scratch
  private readonly joint: Float64Array;
  private readonly pm: Float64Array;
  private readonly pf: Float64Array;
  private readonly logRatio: Float64Array;
  private readonly kappa: Float64Array;
  private readonly dm: Float64Array;
  private readonly rot = new Float64Array(9);
  private readonly drot = new Float64Array(27);

  constructor(
    kind: MetricKind,
    samples: SampleSet,
    moving: LevelImage,
    movingRange: [number, number],
    bins = DEFAULT_HISTOGRAM_BINS,
  ) {
    this.kind = kind;
    this.n = samples.values.length;
    this.px = samples.points;
    this.fval = samples.values;
    this.mov = moving;
    this.p2i = Float64Array.from(moving.patientToIndex);
    this.binsF = bins;
    this.binsM = bins;
    this.mMin = movingRange[0];
    this.mBinWidth = (movingRange[1] - movingRange[0]) / (bins - 2 * PAD - 1);
    this.fbin = new Int32Array(this.n);
    let fMin = Infinity,
      fMax = -Infinity;
    for (let s = 0; s < this.n; s++) {
      const v = this.fval[s];
      if (v < fMin) fMin = v;
      if (v > fMax) fMax = v;
    }
    const [lo, hi] = robustRange(this.fval);
    fMin = Math.max(fMin, lo);
    fMax = Math.min(fMax, hi);
    const fw = fMax > fMin ? (fMax - fMin) / bins : 1;
    for (let s = 0; s < this.n; s++) {
      const b = Math.floor((this.fval[s] - fMin) / fw);
      this.fbin[s] = b < 0 ? 0 : b >= bins ? bins - 1 : b;
    }
    this.joint = new Float64Array(this.binsF * this.binsM);
    this.pm = new Float64Array(this.binsM);
    this.pf = new Float64Array(this.binsF);
    this.logRatio = new Float64Array(this.binsF * this.binsM);
    this.kappa = new Float64Array(this.n);
    this.dm = new Float64Array(this.n * 6);
  }

  /**
   * The similarity (MI in nats, or NC) at the parameters [alpha, beta, gamma (rad), tx, ty, tz (mm)] about
   * `center`; when `grad` is given, writes d(similarity)/d(parameter) into it (6 numbers). Samples whose
   * moving value is invalid are left out (validCount says how many remain). Returns NaN when fewer than
   * `minValid` samples remain.
   */
  evaluate(params: ArrayLike<number>, center: ArrayLike<number>, grad?: Float64Array, minValid = 16): number {
    const R = eulerToRotation(this.rot, params[0], params[1], params[2]);
    const wantGrad = grad !== undefined;
    const D = wantGrad ? eulerRotationDerivatives(this.drot, params[0], params[1], params[2]) : this.drot;
    const cx = center[0],
      cy = center[1],
      cz = center[2];
    const ox = cx + params[3],
      oy = cy + params[4],
      oz = cz + params[5];
    const m = this.p2i;
    const { data, dims } = this.mov;
    const nx = dims[0],
      ny = dims[1],
      nz = dims[2];
    const sy = nx,
      sz = nx * ny;
    const px = this.px;
    const kappa = this.kappa;
    const dm = this.dm;
    const isMi = this.kind === 'mi';
    let valid = 0;
    // NC running sums
    let sf = 0,
      sm = 0,
      sff = 0,
      smm = 0,
      sfm = 0;
    for (let s = 0; s < this.n; s++) {
      const vx = px[3 * s] - cx,
        vy = px[3 * s + 1] - cy,
        vz = px[3 * s + 2] - cz;
      const yx = R[0] * vx + R[1] * vy + R[2] * vz + ox;
      const yy = R[3] * vx + R[4] * vy + R[5] * vz + oy;
      const yz = R[6] * vx + R[7] * vy + R[8] * vz + oz;
      const fi = m[0] * yx + m[1] * yy + m[2] * yz + m[3];
      const fj = m[4] * yx + m[5] * yy + m[6] * yz + m[7];
      const fk = m[8] * yx + m[9] * yy + m[10] * yz + m[11];
      kappa[s] = NaN;
      if (!(fi >= 0 && fj >= 0 && fk >= 0 && fi <= nx - 1 && fj <= ny - 1 && fk <= nz - 1)) continue;
      let i0 = Math.floor(fi),
        j0 = Math.floor(fj),
        k0 = Math.floor(fk);
      if (i0 >= nx - 1) i0 = nx - 2;
      if (j0 >= ny - 1) j0 = ny - 2;
      if (k0 >= nz - 1) k0 = nz - 2;
      const ti = fi - i0,
        tj = fj - j0,
        tk = fk - k0;
      const b = i0 + sy * j0 + sz * k0;
      const d000 = data[b],
        d100 = data[b + 1],
        d010 = data[b + sy],
        d110 = data[b + sy + 1],
        d001 = data[b + sz],
        d101 = data[b + sz + 1],
        d011 = data[b + sz + sy],
        d111 = data[b + sz + sy + 1];
      const c00 = d000 + (d100 - d000) * ti;
      const c10 = d010 + (d110 - d010) * ti;
      const c01 = d001 + (d101 - d001) * ti;
      const c11 = d011 + (d111 - d011) * ti;
      const c0 = c00 + (c10 - c00) * tj;
      const c1 = c01 + (c11 - c01) * tj;
      const v = c0 + (c1 - c0) * tk;
      if (v !== v) continue; // a NaN neighbour: outside the moving field of view
      valid++;
      const f = this.fval[s];
      if (isMi) {
        let k = (v - this.mMin) / this.mBinWidth + PAD;
        if (k < PAD) k = PAD;
        else if (k > this.binsM - PAD - 1) k = this.binsM - PAD - 1;
        kappa[s] = k;
      } else {
        kappa[s] = v;
        sf += f;
        sm += v;
        sff += f * f;
        smm += v * v;
        sfm += f * v;
      }
      if (wantGrad) {
        // Gradient of the trilinear value in index space, then in LPS (dv/dy = P2I^T dv/dindex).
        const gi =
          (1 - tk) * ((1 - tj) * (d100 - d000) + tj * (d110 - d010)) +
          tk * ((1 - tj) * (d101 - d001) + tj * (d111 - d011));
        const gj = (1 - tk) * (c10 - c00) + tk * (c11 - c01);
        const gk = c1 - c0;
        const gx = m[0] * gi + m[4] * gj + m[8] * gk;
        const gy = m[1] * gi + m[5] * gj + m[9] * gk;
        const gz = m[2] * gi + m[6] * gj + m[10] * gk;
        const o = 6 * s;
        for (let a = 0; a < 3; a++) {
          const q = 9 * a;
          const wx = D[q] * vx + D[q + 1] * vy + D[q + 2] * vz;
          const wy = D[q + 3] * vx + D[q + 4] * vy + D[q + 5] * vz;
          const wz = D[q + 6] * vx + D[q + 7] * vy + D[q + 8] * vz;
          dm[o + a] = gx * wx + gy * wy + gz * wz;
        }
        dm[o + 3] = gx;
        dm[o + 4] = gy;
        dm[o + 5] = gz;
      }
    }
    this.validCount = valid;
    if (valid < minValid) {
      if (grad) grad.fill(0);
      return NaN;
    }
    return isMi ? this.finishMi(valid, grad) : this.finishNc(valid, sf, sm, sff, smm, sfm, grad);
  }

  private finishNc(
    n: number,
    sf: number,
    sm: number,
    sff: number,
    smm: number,
    sfm: number,
    grad: Float64Array | undefined,
  ): number {
    const mf = sf / n,
      mm = sm / n;
    const cff = sff - n * mf * mf,
      cmm = smm - n * mm * mm,
      cfm = sfm - n * mf * mm;
    if (!(cff > 0 && cmm > 0)) {
      if (grad) grad.fill(0);
      return 0;
    }
    const denom = Math.sqrt(cff * cmm);
    const nc = cfm / denom;
    if (grad) {
      // d nc = [sum (f - mf) dm] / denom - nc * [sum (m - mm) dm] / cmm
      const a = new Float64Array(6); // 6 numbers per evaluation, not per voxel
      const b = new Float64Array(6);
      for (let s = 0; s < this.n; s++) {
        const v = this.kappa[s];
        if (v !== v) continue;
        const wf = this.fval[s] - mf,
          wm = v - mm;
        const o = 6 * s;
        for (let p = 0; p < 6; p++) {
          a[p] += wf * this.dm[o + p];
          b[p] += wm * this.dm[o + p];
        }
      }
      for (let p = 0; p < 6; p++) grad[p] = a[p] / denom - (nc * b[p]) / cmm;
    }
    return nc;
  }

  private finishMi(n: number, grad: Float64Array | undefined): number {
    const BF = this.binsF,
      BM = this.binsM;
    const joint = this.joint,
      pm = this.pm,
      pf = this.pf;
    joint.fill(0);
    const kappa = this.kappa,
      fbin = this.fbin;
    for (let s = 0; s < this.n; s++) {
      const k = kappa[s];
      if (k !== k) continue;
      const row = fbin[s] * BM;
      const k0 = Math.floor(k) - 1;
      for (let q = k0; q < k0 + 4; q++) joint[row + q] += bspline3(q - k);
    }
    pm.fill(0);
    pf.fill(0);
    const inv = 1 / n;
    for (let f = 0; f < BF; f++) {
      for (let q = 0; q < BM; q++) {
        const p = joint[f * BM + q] * inv;
        joint[f * BM + q] = p;
        pf[f] += p;
        pm[q] += p;
      }
    }
    let mi = 0;
    for (let f = 0; f < BF; f++) {
      for (let q = 0; q < BM; q++) {
        const p = joint[f * BM + q];
        if (p > 1e-16 && pm[q] > 0) {
          mi += p * Math.log(p / (pf[f] * pm[q]));
          this.logRatio[f * BM + q] = Math.log(p / pm[q]);
        } else {
          this.logRatio[f * BM + q] = 0;
        }
      }
    }
    if (grad) {
      // dMI/dmu = sum_{f,q} dp(f,q)/dmu log(p(f,q)/pm(q));
      // dp(f,q)/dmu = (1/n) sum_s [fbin_s = f] (-B3'(q - kappa_s)) (1/binWidth) dm_s/dmu.
      grad.fill(0);
      const lr = this.logRatio;
      const scale = inv / this.mBinWidth;
      let g0 = 0,
        g1 = 0,
        g2 = 0,
        g3 = 0,
        g4 = 0,
        g5 = 0;
      for (let s = 0; s < this.n; s++) {
        const k = kappa[s];
        if (k !== k) continue;
        const row = fbin[s] * BM;
        const k0 = Math.floor(k) - 1;
        let w = 0;
        for (let q = k0; q < k0 + 4; q++) w -= lr[row + q] * bspline3Derivative(q - k);
        // The clamped ends of the moving range have no derivative.
        if (k <= PAD || k >= BM - PAD - 1) continue;
        const o = 6 * s;
        g0 += w * this.dm[o];
        g1 += w * this.dm[o + 1];
        g2 += w * this.dm[o + 2];
        g3 += w * this.dm[o + 3];
        g4 += w * this.dm[o + 4];
        g5 += w * this.dm[o + 5];
      }
      grad[0] = g0 * scale;
      grad[1] = g1 * scale;
      grad[2] = g2 * scale;
      grad[3] = g3 * scale;
      grad[4] = g4 * scale;
      grad[5] = g5 * scale;
    }
    return mi;
  }
}
