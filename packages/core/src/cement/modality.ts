/**
 * A cement scan from another kind of scanner than its baseline (issue 18): in the reference case the
 * verification CBCT (pins and trocars in, no cement) is taken on the C-arm and the cement goes in under
 * intermittent CT. The rise (scan - baseline) then compares two modalities, which differ in three ways
 * that would each read as cement:
 *
 * 1. Grey values: a C-arm's reconstruction is not calibrated to HU like a CT (scale, offset, beam
 *    hardening). `fitIntensityMap` first takes the baseline into the scan's units by a linear map
 *    (`linear`: scale and offset first matching the LINEAR_QUANTILES of the two over the voxels the scan
 *    sees away from its own metal and cement, then the least-squares line through the knots of a map
 *    fitted on that, over -100..1200 HU), so that every threshold on the baseline (UNKNOWN_HU, the metal,
 *    the bins) is applied in the scan's HU and not in the baseline's uncalibrated units; then fits the
 *    map on the voxels both scans see away from metal and cement: per 25 HU bin of the linearly mapped
 *    baseline the median of the scan (a joint histogram, 5 HU columns), made non-decreasing
 *    (pool-adjacent-violators, weighted by the bins' counts), linear between bin centres and of slope 1
 *    (in the scan's units) past the ends. It is E[scan | baseline], the best prediction of the scan from
 *    the baseline, blur differences included. Any linear grey transform a x + b (a > 0) of the baseline
 *    leaves the map's values at the transformed voxels, so the analysis, as they were (quantiles commute
 *    with it).
 * 2. Resolution and streaks: a CBCT is blurrier than a CT and carries dark streaks; a CT's sharp cortex
 *    then rises a few hundred HU over the CBCT's blurred one. A cement voxel must rise over the largest
 *    mapped baseline in its 26-neighbourhood (cement.ts); the volume (the rise summed) is unchanged,
 *    as blur keeps the sum.
 * 3. Metal bloom: around the trocars a CBCT reads thousands of HU over a shaft twice as wide as the steel;
 *    what was there before the cement is not known. Those baseline voxels (>= UNKNOWN_HU once linearly
 *    mapped, `unknownFrom` in the baseline's own units; grown by
 *    UNKNOWN_MARGIN_MM) are unknown territory: the baseline there is taken as the median of the mapped
 *    baseline just outside it (the bone around the shaft), and the scan's own metal (>= METAL_MIN_HU,
 *    one voxel around it) stays out. The report counts the unknown voxels and says so.
 *
 * Whether a scan is cross-modality: the caller says so (`crossModality: true / false`), or 'auto': a scan
 * brought in by a transform whose fitted map departs from identity by more than MAP_DEPARTURE_HU over
 * the bone's range, or whose metal (>= METAL_MIN_HU) in the compared box is more than METAL_RATIO times
 * the other's (a CBCT's bloom).
 */
import { distanceTransform } from '../volume/edt.js';

/** Baseline voxels at or above this (HU) are metal or its bloom: unknown territory in a cross-modality pair. */
export const UNKNOWN_HU = 1800;
/** ... and their neighbours within this (mm). */
export const UNKNOWN_MARGIN_MM = 1.5;
/** The fit leaves out voxels within this (mm) of anything >= UNKNOWN_HU in either scan. */
export const FIT_MARGIN_MM = 3;
/** 'auto': a map departing from identity by more than this (HU) over -100 to 1200 HU makes a pair cross-modality. */
export const MAP_DEPARTURE_HU = 100;
/** 'auto': one scan's metal voxels more than this many times the other's (bloom) makes a pair cross-modality. */
export const METAL_RATIO = 1.6;

const BIN_HU = 25;
const BIN_LO = -1100;
const BIN_HI = 1800;
const COL_HU = 5;
const COL_LO = -1500;
const COL_HI = 4000;
const MIN_BIN_VOXELS = 30;
/** The two quantiles the linear part matches (between soft tissue and cortex in a pelvic box). */
export const LINEAR_QUANTILES: readonly [number, number] = [0.1, 0.9];

/** The fitted baseline -> scan grey-value map (knots at bin centres). */
export interface IntensityMap {
  /** Knots: baseline grey values (its own units, increasing) and the scan HU they map to. */
  baselineHu: number[];
  scanHu: number[];
  /**
   * The linear part: scale x + offset takes the baseline into the scan's units (quantile matching); the
   * thresholds on the baseline apply to it, and past the end knots the map has slope `scale`.
   */
  linear: { scale: number; offset: number };
  /** Baseline grey value (its own units) from which it is metal or bloom: UNKNOWN_HU linearly mapped back. */
  unknownFrom: number;
  /** Voxels the fit used. */
  voxels: number;
  /** Largest |map(x) - x| over -100 to 1200 HU (HU). */
  maxDepartureHu: number;
}

/** map(x): linear between knots, slope 1 past the ends. */
export function evalMap(map: IntensityMap, x: number): number {
  const bx = map.baselineHu,
    by = map.scanHu;
  const n = bx.length;
  const a = map.linear.scale;
  if (n === 0) return a * x + map.linear.offset;
  if (x <= bx[0]) return by[0] + a * (x - bx[0]);
  if (x >= bx[n - 1]) return by[n - 1] + a * (x - bx[n - 1]);
  let lo = 0,
    hi = n - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (bx[mid] <= x) lo = mid;
    else hi = mid;
  }
  const t = (x - bx[lo]) / (bx[hi] - bx[lo]);
  return by[lo] + t * (by[hi] - by[lo]);
}

/**
 * A lookup table of the map over the linearly mapped baseline, integer HU from `lo` to UNKNOWN_HU: x (the
 * baseline's own units) at index Math.round(scale x + offset) - lo.
 */
export function mapLut(map: IntensityMap, lo = -4096): Float32Array {
  const lut = new Float32Array(UNKNOWN_HU - lo + 1);
  const { scale, offset } = map.linear;
  for (let i = 0; i < lut.length; i++) lut[i] = evalMap(map, (lo + i - offset) / scale);
  return lut;
}

function quantileSorted(s: Float32Array, p: number): number {
  if (s.length === 0) return 0;
  const x = p * (s.length - 1);
  const i = Math.floor(x);
  const t = x - i;
  return i + 1 < s.length ? s[i] * (1 - t) + s[i + 1] * t : s[i];
}

/**
 * Fit the map over the voxels of `box` (origin and dims in the grid's voxels) where both `baseline`
 * (through the linear part) and `scan` (the same grid) lie below UNKNOWN_HU and farther than
 * FIT_MARGIN_MM from any voxel at or above it in either (metal, cement, bloom), and neither is `outside`
 * (a field of view's fill). Equivariant: a x + b (a > 0) of the baseline gives the same map at a x + b.
 */
export function fitIntensityMap(
  baseline: ArrayLike<number>,
  scan: ArrayLike<number>,
  dims: readonly [number, number, number],
  spacing: readonly [number, number, number],
  box: { origin: readonly number[]; dims: readonly number[] },
  outside = -1024,
): IntensityMap & { metalVoxels: { baseline: number; scan: number } } {
  const [nx, ny] = dims;
  const [bx, by, bz] = box.dims;
  const [ox, oy, oz] = box.origin;
  const n = bx * by * bz;
  const clear = new Uint8Array(n);
  // The linear part, from the scan's side alone (its units are the ones thresholds are meant in): the
  // quantiles of both over the voxels away from the scan's metal and cement.
  for (let k = 0, q = 0; k < bz; k++)
    for (let j = 0; j < by; j++) {
      let v = ox + nx * (oy + j + ny * (oz + k));
      for (let i = 0; i < bx; i++, q++, v++) clear[q] = scan[v] >= UNKNOWN_HU ? 0 : 1;
    }
  const scanDist = distanceTransform(clear, [bx, by, bz], spacing);
  let m = 0;
  for (let q = 0; q < n; q++) if (scanDist[q] > FIT_MARGIN_MM) m++;
  const bs = new Float32Array(m),
    ss = new Float32Array(m);
  m = 0;
  for (let k = 0, q = 0; k < bz; k++)
    for (let j = 0; j < by; j++) {
      let v = ox + nx * (oy + j + ny * (oz + k));
      for (let i = 0; i < bx; i++, q++, v++) {
        const b = baseline[v],
          s = scan[v];
        if (!(scanDist[q] > FIT_MARGIN_MM) || s === outside || !Number.isFinite(b)) continue;
        bs[m] = b;
        ss[m++] = s;
      }
    }
  const bSorted = bs.subarray(0, m).sort(),
    sSorted = ss.subarray(0, m).sort();
  const [p0, p1] = LINEAR_QUANTILES;
  const b0 = quantileSorted(bSorted, p0),
    b1 = quantileSorted(bSorted, p1),
    s0 = quantileSorted(sSorted, p0),
    s1 = quantileSorted(sSorted, p1);
  let scale0 = b1 > b0 && s1 > s0 ? (s1 - s0) / (b1 - b0) : 1;
  if (!Number.isFinite(scale0) || scale0 <= 0) scale0 = 1;
  const offset0 = (s0 + s1) / 2 - (scale0 * (b0 + b1)) / 2;

  const nBins = Math.ceil((BIN_HI - BIN_LO) / BIN_HU);
  const nCols = Math.ceil((COL_HI - COL_LO) / COL_HU);
  const hist = new Int32Array(nBins * nCols);
  const count = new Int32Array(nBins);
  /** The map fitted with every baseline threshold and bin on scale x + offset (knots in those units). */
  const fitOn = (scale: number, offset: number) => {
    let metalB = 0,
      metalS = 0;
    for (let k = 0, q = 0; k < bz; k++)
      for (let j = 0; j < by; j++) {
        let v = ox + nx * (oy + j + ny * (oz + k));
        for (let i = 0; i < bx; i++, q++, v++) {
          const b = scale * baseline[v] + offset,
            s = scan[v];
          clear[q] = b >= UNKNOWN_HU || s >= UNKNOWN_HU ? 0 : 1;
          if (b >= 2500) metalB++;
          if (s >= 2500) metalS++;
        }
      }
    const dist = distanceTransform(clear, [bx, by, bz], spacing);
    hist.fill(0);
    count.fill(0);
    let voxels = 0;
    for (let k = 0, q = 0; k < bz; k++)
      for (let j = 0; j < by; j++) {
        let v = ox + nx * (oy + j + ny * (oz + k));
        for (let i = 0; i < bx; i++, q++, v++) {
          if (!(dist[q] > FIT_MARGIN_MM)) continue;
          const raw = baseline[v],
            s = scan[v];
          const b = scale * raw + offset;
          if (raw === outside || s === outside || !(b >= BIN_LO) || !(b < BIN_HI)) continue;
          const bin = Math.floor((b - BIN_LO) / BIN_HU);
          const col = Math.min(nCols - 1, Math.max(0, Math.floor((s - COL_LO) / COL_HU)));
          hist[bin * nCols + col]++;
          count[bin]++;
          voxels++;
        }
      }
    // Per bin the median scan value; then non-decreasing by pool-adjacent-violators.
    const xs: number[] = [],
      ys: number[] = [],
      ws: number[] = [];
    for (let bin = 0; bin < nBins; bin++) {
      if (count[bin] < MIN_BIN_VOXELS) continue;
      const half = count[bin] / 2;
      let acc = 0,
        col = 0;
      for (; col < nCols; col++) {
        acc += hist[bin * nCols + col];
        if (acc >= half) break;
      }
      xs.push(BIN_LO + (bin + 0.5) * BIN_HU);
      ys.push(COL_LO + (col + 0.5) * COL_HU);
      ws.push(count[bin]);
    }
    const blocks: { y: number; w: number; n: number }[] = [];
    for (let t = 0; t < ys.length; t++) {
      blocks.push({ y: ys[t], w: ws[t], n: 1 });
      while (blocks.length > 1 && blocks[blocks.length - 2].y > blocks[blocks.length - 1].y) {
        const b2 = blocks.pop() as { y: number; w: number; n: number };
        const b1 = blocks[blocks.length - 1];
        b1.y = (b1.y * b1.w + b2.y * b2.w) / (b1.w + b2.w);
        b1.w += b2.w;
        b1.n += b2.n;
      }
    }
    const fitted: number[] = [];
    for (const b of blocks) for (let t = 0; t < b.n; t++) fitted.push(Math.round(b.y * 10) / 10);
    return { xs, fitted, ws, voxels, metalB, metalS };
  };
  // Pass 1 on the quantiles' line; the linear part is then the line through its knots over the bone's
  // range (weighted by their voxels, least squares), and pass 2 fits on that.
  const f0 = fitOn(scale0, offset0);
  let sw = 0,
    sx = 0,
    sy = 0,
    sxx = 0,
    sxy = 0;
  f0.xs.forEach((x, t) => {
    if (x < -100 || x > 1200) return;
    const w = f0.ws[t],
      y = f0.fitted[t];
    sw += w;
    sx += w * x;
    sy += w * y;
    sxx += w * x * x;
    sxy += w * x * y;
  });
  const varX = sxx * sw - sx * sx;
  let alpha = varX > 0 ? (sxy * sw - sx * sy) / varX : 1;
  if (!Number.isFinite(alpha) || alpha <= 0) alpha = 1;
  const beta = sw > 0 ? (sy - alpha * sx) / sw : 0;
  const scale = alpha * scale0,
    offset = alpha * offset0 + beta;
  const { xs: xl, fitted, voxels, metalB, metalS } = fitOn(scale, offset);
  const xs = xl.map((x) => (x - offset) / scale);
  const map: IntensityMap = {
    baselineHu: xs,
    scanHu: fitted,
    linear: { scale, offset },
    unknownFrom: (UNKNOWN_HU - offset) / scale,
    voxels,
    maxDepartureHu: 0,
  };
  let dep = 0;
  for (let x = -100; x <= 1200; x += 5) dep = Math.max(dep, Math.abs(evalMap(map, x) - x));
  map.maxDepartureHu = Math.round(dep);
  return { ...map, metalVoxels: { baseline: metalB, scan: metalS } };
}
