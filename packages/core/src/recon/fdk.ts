/**
 * FDK (Feldkamp-Davis-Kress) reconstruction of a short scan on a flat detector, with the projection
 * matrices of the scan's views:
 *
 *   f(x) = sum over views of  dBeta * (SOD / w(x))^2 * Q(c(x), r(x))
 *
 * where (c, r, w) = P [x; 1] (column, row, and w the depth of x along the central ray from the source,
 * mm) and Q is the view's projection after (1) the cosine weight SID / sqrt(SID^2 + x_d^2 + y_d^2) (x_d,
 * y_d the pixel's offset from the principal point on the detector, mm), (2) Parker's weight for the short
 * scan, and (3) the ramp filter along each detector row, in the isocentre plane's units (spacing
 * tau = column spacing * SOD / SID), apodized by a window. Q is read with bilinear interpolation. That is
 * Kak and Slaney's equal-spaced fan-beam formula (their ch. 3.4.2, the factor 1/2 of a full turn replaced
 * by Parker's weights, which sum to 1 over each pair of conjugate rays), extended to cone beams by
 * Feldkamp's cosine weight.
 *
 * The output grid is any Volume geometry in the patient frame (LPS mm). Voxels outside the field of view
 * (the cylinder of radius fovRadiusMm about the rotation axis, and any voxel that some view does not see
 * on its detector) are not data: they get `fill` and 0 in the mask.
 */
import { CancelledError } from '../errors.js';
import { mat4Multiply, type Mat4, type ReadonlyMat4 } from '../math/mat4.js';
import { createVolume, type Volume, type VolumeMetadata } from '../volume/volume.js';
import { ReconError, type CbctScan } from './scan.js';
import type { CbctProjections, ReconProgressFn } from './acquire.js';
import { createFdkSimdMemory, fdkSimdContext, type FdkSimdContext } from './fdkWasm.js';

const DEG = Math.PI / 180;

export const RAMP_WINDOWS = ['ram-lak', 'shepp-logan', 'cosine', 'hann'] as const;
export type RampWindow = (typeof RAMP_WINDOWS)[number];

/** The output grid: voxel counts and the index -> LPS mm matrix (row-major 4x4, voxel centres at integers). */
export interface ReconGrid {
  dims: [number, number, number];
  indexToPatient: Mat4 | ReadonlyMat4;
}

export interface GridOptions {
  /** Voxel edge, mm (default 1). */
  voxelMm?: number;
  /** In-plane side of the grid, mm (default the field of view's diameter). */
  fovMm?: number;
  /** Axial extent, mm (default the field of view's height at the isocentre, at most fovMm... see below). */
  heightMm?: number;
}

/**
 * An axial grid centred on the isocentre: i along +x (patient left), j along +y (posterior), k along +z
 * (superior); in-plane side `fovMm` (default the FOV's diameter), height `heightMm` (default twice the
 * scan's fovHalfHeightMm).
 */
export function cbctGrid(scan: CbctScan, o: GridOptions = {}): ReconGrid {
  const vox = o.voxelMm ?? 1;
  if (!(vox > 0.05 && vox <= 20)) throw new ReconError(`voxel ${vox} mm must be within 0.05-20 mm`);
  const fov = o.fovMm ?? 2 * scan.fovRadiusMm;
  if (!(fov > 0 && fov <= 2000)) throw new ReconError(`field of view ${fov} mm must be within 0-2000 mm`);
  const h = o.heightMm ?? 2 * scan.fovHalfHeightMm;
  if (!(h > 0 && h <= 2000)) throw new ReconError(`height ${h} mm must be within 0-2000 mm`);
  const n = Math.max(1, Math.round(fov / vox)),
    nz = Math.max(1, Math.round(h / vox));
  const c = scan.isocenter;
  const m = new Float64Array(16);
  m[0] = vox;
  m[5] = vox;
  m[10] = vox;
  m[15] = 1;
  m[3] = c[0] - ((n - 1) / 2) * vox;
  m[7] = c[1] - ((n - 1) / 2) * vox;
  m[11] = c[2] - ((nz - 1) / 2) * vox;
  return { dims: [n, n, nz], indexToPatient: m };
}

/** Parker's weight of a ray at scan angle beta (radians from the first view) and fan angle gamma. */
export function parkerWeight(beta: number, gamma: number, delta: number): number {
  const PI = Math.PI;
  if (beta < 0 || beta > PI + 2 * delta) return 0;
  if (beta < 2 * delta - 2 * gamma) {
    const s = Math.sin((PI / 4) * (beta / (delta - gamma)));
    return s * s;
  }
  if (beta <= PI - 2 * gamma) return 1;
  if (beta <= PI + 2 * delta) {
    const s = Math.sin((PI / 4) * ((PI + 2 * delta - beta) / (delta + gamma)));
    return s * s;
  }
  return 0;
}

/** Apodization of the ramp at frequency f (0 at DC, 1 at Nyquist). */
export function rampWindow(window: RampWindow, f: number): number {
  switch (window) {
    case 'ram-lak':
      return 1;
    case 'shepp-logan': {
      const x = (Math.PI * f) / 2;
      return x === 0 ? 1 : Math.sin(x) / x;
    }
    case 'cosine':
      return Math.cos((Math.PI * f) / 2);
    case 'hann':
      return 0.5 * (1 + Math.cos(Math.PI * f));
  }
}

/**
 * In-place radix-2 FFT of (re, im), length a power of two; `inverse` without the 1/N. cosT, sinT: cos and
 * sin of 2 pi k / n for k < n / 2; rev: the bit-reversal permutation. Self-contained (the filtering kernel
 * calls it in workers, see fdkKernelSource). Each stage takes its twiddle once per butterfly column; the
 * first stage (twiddle 1) has no products.
 */
export function fdkFft(
  re: Float64Array,
  im: Float64Array,
  cosT: Float64Array,
  sinT: Float64Array,
  rev: Uint32Array,
  inverse: boolean,
): void {
  const n = re.length;
  for (let i = 0; i < n; i++) {
    const j = rev[i];
    if (j > i) {
      let t = re[i];
      re[i] = re[j];
      re[j] = t;
      t = im[i];
      im[i] = im[j];
      im[j] = t;
    }
  }
  for (let a = 0; a < n; a += 2) {
    const b = a + 1;
    const xr = re[b],
      xi = im[b];
    re[b] = re[a] - xr;
    im[b] = im[a] - xi;
    re[a] += xr;
    im[a] += xi;
  }
  const sg = inverse ? -1 : 1;
  for (let size = 4; size <= n; size <<= 1) {
    const half = size >> 1,
      step = n / size;
    for (let k = 0; k < half; k++) {
      const c = cosT[k * step],
        si = sg * sinT[k * step];
      for (let a = k; a < n; a += size) {
        const b = a + half;
        const xr = re[b] * c + im[b] * si,
          xi = im[b] * c - re[b] * si;
        re[b] = re[a] - xr;
        im[b] = im[a] - xi;
        re[a] += xr;
        im[a] += xi;
      }
    }
  }
}

/** The ramp filter's frequency response (real, even) for rows padded to n, row spacing tau (mm). */
export function rampResponse(n: number, tau: number, window: RampWindow): Float64Array {
  // The band-limited ramp in space (Kak & Slaney 3.61): h(0) = 1/(4 tau^2), h(odd k) = -1/(k pi tau)^2.
  const re = new Float64Array(n),
    im = new Float64Array(n);
  re[0] = 1 / (4 * tau * tau);
  for (let k = 1; k < n / 2; k += 2) {
    const v = -1 / (k * Math.PI * tau) ** 2;
    re[k] = v;
    re[n - k] = v;
  }
  const { cosT, sinT, rev } = fftTables(n);
  fdkFft(re, im, cosT, sinT, rev, false);
  const H = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    const f = Math.min(k, n - k) / (n / 2);
    // tau: the discrete convolution's sum stands for an integral over the row.
    H[k] = re[k] * tau * rampWindow(window, f);
  }
  return H;
}

function fftTables(n: number): { cosT: Float64Array; sinT: Float64Array; rev: Uint32Array } {
  const cosT = new Float64Array(n / 2),
    sinT = new Float64Array(n / 2);
  for (let k = 0; k < n / 2; k++) {
    cosT[k] = Math.cos((2 * Math.PI * k) / n);
    sinT[k] = Math.sin((2 * Math.PI * k) / n);
  }
  const bits = Math.round(Math.log2(n));
  const rev = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    let r = 0;
    for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
    rev[i] = r;
  }
  return { cosT, sinT, rev };
}

/**
 * How rows are padded before the FFT (the filter reaches beyond the detector's edges): 'zero', 'edge'
 * (the edge value, cosine-tapered to zero) or 'continue' (default: the row's trend continued
 * point-symmetrically about its edge, tapered), a simple truncation correction for patients wider than
 * the field of view.
 */
export const ROW_PADDINGS = ['zero', 'edge', 'continue'] as const;
export type RowPadding = (typeof ROW_PADDINGS)[number];

export interface FilterOptions {
  window?: RampWindow;
  padding?: RowPadding;
  onProgress?: ReconProgressFn;
  signal?: AbortSignal;
}

/** Everything the filtering kernel needs besides the projections (small arrays, posted to workers once). */
export interface FilterSetup {
  columns: number;
  rows: number;
  views: number;
  /** Padded row length (power of two, at least twice the columns). */
  n: number;
  /** The apodized ramp's response (rampResponse). */
  H: Float64Array;
  cosT: Float64Array;
  sinT: Float64Array;
  rev: Uint32Array;
  /** Parker's weight of each view's columns, view-major. */
  parker: Float64Array;
  /** Squared offsets of the columns and rows from the principal point on the detector, mm^2. */
  xd2: Float64Array;
  yd2: Float64Array;
  sidMm: number;
  /** dBeta * SOD^2 / n: the backprojection's constant factor with the inverse FFT's 1/n. */
  scale: number;
  /** Row padding: 0 zeros, 1 edge value tapered, 2 point-symmetric continuation tapered (FilterOptions). */
  padding: number;
}

export function filterSetup(
  scan: CbctScan,
  window: RampWindow = 'shepp-logan',
  padding: RowPadding = 'continue',
): FilterSetup {
  if (!RAMP_WINDOWS.includes(window))
    throw new ReconError(`ramp window "${String(window)}" is not one of ${RAMP_WINDOWS.join(', ')}`);
  if (!ROW_PADDINGS.includes(padding))
    throw new ReconError(`row padding "${String(padding)}" is not one of ${ROW_PADDINGS.join(', ')}`);
  const { columns: nc, rows: nr } = scan;
  const nv = scan.views.length;
  const sid = scan.sidMm,
    sod = scan.sodMm;
  const dc = scan.columnSpacingMm,
    dr = scan.rowSpacingMm;
  const c0 = (nc - 1) / 2,
    r0 = (nr - 1) / 2;
  let n = 1;
  while (n < 2 * nc) n <<= 1;
  const H = rampResponse(n, (dc * sod) / sid, window);
  const { cosT, sinT, rev } = fftTables(n);
  const delta = ((scan.arcDeg - 180) / 2) * DEG;
  const dBeta = scan.stepDeg * DEG;
  const parker = new Float64Array(nv * nc),
    xd2 = new Float64Array(nc),
    yd2 = new Float64Array(nr);
  for (let c = 0; c < nc; c++) {
    const x = (c - c0) * dc;
    xd2[c] = x * x;
    const gamma = Math.atan(x / sid);
    for (let v = 0; v < nv; v++) parker[v * nc + c] = parkerWeight(v * dBeta, gamma, delta);
  }
  for (let r = 0; r < nr; r++) yd2[r] = ((r - r0) * dr) ** 2;
  return {
    columns: nc,
    rows: nr,
    views: nv,
    n,
    H,
    cosT,
    sinT,
    rev,
    parker,
    xd2,
    yd2,
    sidMm: sid,
    scale: (dBeta * sod * sod) / n,
    padding: ROW_PADDINGS.indexOf(padding),
  };
}

/**
 * Weights and filters views viewStart..viewEnd-1 of `data` into `out` (same layout): cosine and Parker
 * weights, the ramp by FFT on rows padded to fs.n (two rows at once as the real and imaginary parts: the
 * response is real and even), times fs.scale. `re` and `im` are scratch of fs.n numbers. Self-contained
 * (no imports, no module constants; it calls fdkFft, which fdkKernelSource includes) so that worker threads
 * run it from its source text.
 */
export function fdkFilterKernel(
  fs: FilterSetup,
  data: Float32Array,
  out: Float32Array,
  viewStart: number,
  viewEnd: number,
  re: Float64Array,
  im: Float64Array,
): void {
  const nc = fs.columns,
    nr = fs.rows,
    n = fs.n;
  const { H, cosT, sinT, rev, parker, xd2, yd2 } = fs;
  const sid = fs.sidMm,
    sid2 = sid * sid,
    scale = fs.scale;
  const pad = n - nc,
    half = pad >> 1;
  // Per padded column: the edge it continues, the column mirrored about that edge, and the cosine taper
  // (see the padding below).
  const padEdge = new Int32Array(pad),
    padMirror = new Int32Array(pad),
    padTaper = new Float64Array(pad);
  for (let k = 0; k < pad; k++) {
    const right = k < half;
    const tIdx = right ? k + 1 : pad - k;
    const t = right ? (k + 0.5) / half : (pad - k - 0.5) / (pad - half);
    padTaper[k] = fs.padding === 0 ? 0 : 0.5 * (1 + Math.cos(Math.PI * t));
    padEdge[k] = right ? nc - 1 : 0;
    padMirror[k] = right ? (nc - 1 - tIdx > 0 ? nc - 1 - tIdx : 0) : tIdx < nc - 1 ? tIdx : nc - 1;
  }
  const np = nc * nr;
  for (let v = viewStart; v < viewEnd; v++) {
    const base = v * np,
      pw = v * nc;
    for (let r = 0; r < nr; r += 2) {
      const two = r + 1 < nr;
      const oa = base + r * nc,
        ob = oa + nc;
      for (let c = 0; c < nc; c++) {
        const w = parker[pw + c] * sid;
        re[c] = (data[oa + c] * w) / Math.sqrt(sid2 + xd2[c] + yd2[r]);
        im[c] = two ? (data[ob + c] * w) / Math.sqrt(sid2 + xd2[c] + yd2[r + 1]) : 0;
      }
      // Pad beyond each edge (half the pad per side), so that a projection cut off by the detector (a
      // patient wider than the field) does not step to zero there: fs.padding 0 zeros; 1 the edge value
      // tapered to zero (cosine); 2 (default) the row continued point-symmetrically about its edge value,
      // 2 p(edge) - p(edge - t), at least 0, under the same taper.
      const mode = fs.padding;
      for (let k = 0; k < pad; k++) {
        const e = padEdge[k],
          mi = padMirror[k],
          taper = padTaper[k];
        let vr = re[e],
          vi = im[e];
        if (mode === 2) {
          vr = 2 * vr - re[mi];
          vi = 2 * vi - im[mi];
          if (vr < 0) vr = 0;
          if (vi < 0) vi = 0;
        }
        re[nc + k] = vr * taper;
        im[nc + k] = vi * taper;
      }
      fdkFft(re, im, cosT, sinT, rev, false);
      for (let k = 0; k < n; k++) {
        re[k] *= H[k];
        im[k] *= H[k];
      }
      fdkFft(re, im, cosT, sinT, rev, true);
      for (let c = 0; c < nc; c++) out[oa + c] = re[c] * scale;
      if (two) for (let c = 0; c < nc; c++) out[ob + c] = im[c] * scale;
    }
  }
}

/** Checks that projections fit a scan. */
export function checkProjections(proj: CbctProjections, scan: CbctScan): void {
  const { columns: nc, rows: nr } = scan;
  const nv = scan.views.length;
  if (proj.columns !== nc || proj.rows !== nr || proj.views !== nv || proj.data.length !== nc * nr * nv)
    throw new ReconError(
      `projections of ${proj.views} views of ${proj.columns} x ${proj.rows} do not match the scan's ${nv} of ${nc} x ${nr}`,
    );
}

/**
 * Weighted and filtered projections Q (same layout as the projections), scaled by dBeta * SOD^2 so that
 * backprojection only adds Q / w^2. `out` may be any Float32Array of the right length (shared memory).
 */
export function fdkFilter(
  proj: CbctProjections,
  scan: CbctScan,
  opts: FilterOptions = {},
  out: Float32Array = new Float32Array(proj.data.length),
): Float32Array {
  checkProjections(proj, scan);
  if (out.length !== proj.data.length)
    throw new ReconError(`output holds ${out.length} values, need ${proj.data.length}`);
  const fs = filterSetup(scan, opts.window ?? 'shepp-logan', opts.padding ?? 'continue');
  const re = new Float64Array(fs.n),
    im = new Float64Array(fs.n);
  for (let v = 0; v < fs.views; v++) {
    if (opts.signal?.aborted) throw new CancelledError('C-arm CT reconstruction was cancelled');
    fdkFilterKernel(fs, proj.data, out, v, v + 1, re, im);
    opts.onProgress?.(v + 1, fs.views, 'filtering');
  }
  return out;
}

/** What backprojection needs besides the filtered projections: per-view index -> pixel matrices and row ranges. */
export interface BackprojectionSetup {
  /** Per view, P * indexToPatient (3x4 row-major): voxel index (i, j, k, 1) -> homogeneous (column, row, depth). */
  matrices: Float64Array;
  /** Per voxel row (j, k), k major: the first and last i inside the FOV cylinder (first > last: none). */
  rowRanges: Int32Array;
  dims: [number, number, number];
  views: number;
  columns: number;
  rows: number;
}

export function backprojectionSetup(scan: CbctScan, grid: ReconGrid): BackprojectionSetup {
  const [nx, ny, nz] = grid.dims;
  if (![nx, ny, nz].every((d) => Number.isInteger(d) && d >= 1))
    throw new ReconError(`grid ${grid.dims.join(' x ')} is not positive integers`);
  if (nx * ny * nz > 2 ** 30) throw new ReconError(`grid ${grid.dims.join(' x ')} is too large`);
  const M = grid.indexToPatient;
  const nv = scan.views.length;
  const mats = new Float64Array(12 * nv);
  const P4 = new Float64Array(16),
    A = new Float64Array(16);
  for (let v = 0; v < nv; v++) {
    P4.set(scan.projections.subarray(12 * v, 12 * v + 12));
    P4[12] = 0;
    P4[13] = 0;
    P4[14] = 0;
    P4[15] = 1;
    mat4Multiply(A, P4, M);
    mats.set(A.subarray(0, 12), 12 * v);
  }
  // Cylinder about the axis through the isocentre: |(x - iso) - ((x - iso) . a) a|^2 <= R^2, x = x0 + i e.
  const a = scan.axis,
    iso = scan.isocenter,
    R = scan.fovRadiusMm;
  const e = [M[0], M[4], M[8]];
  const ea = e[0] * a[0] + e[1] * a[1] + e[2] * a[2];
  const ep = [e[0] - ea * a[0], e[1] - ea * a[1], e[2] - ea * a[2]];
  const qa = ep[0] ** 2 + ep[1] ** 2 + ep[2] ** 2;
  const ranges = new Int32Array(2 * ny * nz);
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      const d = [0, 1, 2].map((r) => M[r * 4 + 1] * j + M[r * 4 + 2] * k + M[r * 4 + 3] - iso[r]);
      const da = d[0] * a[0] + d[1] * a[1] + d[2] * a[2];
      const dp = [d[0] - da * a[0], d[1] - da * a[1], d[2] - da * a[2]];
      const qb = 2 * (dp[0] * ep[0] + dp[1] * ep[1] + dp[2] * ep[2]);
      const qc = dp[0] ** 2 + dp[1] ** 2 + dp[2] ** 2 - R * R;
      let lo = 0,
        hi = nx - 1;
      if (qa < 1e-12) {
        if (qc > 0) hi = -1;
      } else {
        const disc = qb * qb - 4 * qa * qc;
        if (disc < 0) hi = -1;
        else {
          const s = Math.sqrt(disc);
          lo = Math.max(0, Math.ceil((-qb - s) / (2 * qa)));
          hi = Math.min(nx - 1, Math.floor((-qb + s) / (2 * qa)));
        }
      }
      const o = 2 * (k * ny + j);
      ranges[o] = lo;
      ranges[o + 1] = hi;
    }
  }
  return { matrices: mats, rowRanges: ranges, dims: [nx, ny, nz], views: nv, columns: scan.columns, rows: scan.rows };
}

/**
 * Voxel-driven backprojection of views viewStart..viewEnd-1 into slices kStart..kEnd-1 of `out` (the whole
 * grid, i fastest), adding Q(c, r) / w^2 with bilinear interpolation; a voxel that projects outside a
 * view's detector gets outside[voxel] = 1. With `simd` (fdkWasm.ts: q and out must then be the views of
 * that memory at its qAddress and outAddress) axial grids run as WebAssembly SIMD in float32, tiles of
 * voxel rows at a time so that the tile's sums stay in cache over all the views; otherwise JavaScript in
 * float64. Self-contained (no imports, no module constants), so worker threads can run it from its
 * source text (`fdkKernelSource`); allocates nothing.
 */
export function fdkBackprojectKernel(
  q: Float32Array,
  matrices: Float64Array,
  rowRanges: Int32Array,
  nx: number,
  ny: number,
  columns: number,
  rows: number,
  out: Float32Array,
  outside: Uint8Array,
  kStart: number,
  kEnd: number,
  viewStart: number,
  viewEnd: number,
  simd?: { bprow: (...a: number[]) => void; qAddress: number; outAddress: number } | null,
): void {
  const plane = columns * rows;
  const cMax = columns - 1,
    rMax = rows - 1;
  const sliceStride = nx * ny;
  // Grid slices perpendicular to the rotation axis (k along it): column and depth do not change along k,
  // so each (i, j) computes them once and only the row moves, by b2 / w per slice.
  const isAxial = (m: number) =>
    Math.abs(matrices[m + 2]) <=
      1e-12 * (Math.abs(matrices[m]) + Math.abs(matrices[m + 1]) + Math.abs(matrices[m + 2])) &&
    Math.abs(matrices[m + 10]) <=
      1e-12 * (Math.abs(matrices[m + 8]) + Math.abs(matrices[m + 9]) + Math.abs(matrices[m + 10]));
  let allAxial = true;
  for (let v = viewStart; v < viewEnd; v++) if (!isAxial(v * 12)) allAxial = false;
  // Axial grids (k along the axis): the FOV cylinder cuts every slice alike, so one row range for the slab, cut
  // further to the voxels that every view can see in some slice of the slab (the cone's ends are not
  // data). Each view's constraints are linear in i along a row (w > 0, 0 <= c < cMax, 0 <= r < rMax times
  // w), the r ones taken at the slab's most favourable slice, so the cut only drops voxels that some view
  // misses in every slice; with a voxel of margin against rounding. The dropped voxels are flagged here.
  const seen = new Int32Array(allAxial ? 2 * ny : 0);
  let lo = -Infinity,
    hi = Infinity;
  const bound = (alpha: number, beta: number) => {
    // alpha i + beta >= 0
    if (alpha > 0) {
      const t = -beta / alpha;
      if (t > lo) lo = t;
    } else if (alpha < 0) {
      const t = -beta / alpha;
      if (t < hi) hi = t;
    } else if (beta < 0) hi = -Infinity;
  };
  for (let j = 0; allAxial && j < ny; j++) {
    const ri = 2 * (kStart * ny + j);
    lo = -Infinity;
    hi = Infinity;
    for (let v = viewStart; v < viewEnd && lo <= hi; v++) {
      const m = v * 12;
      const d0 = matrices[m + 8],
        dw = matrices[m + 9] * j + matrices[m + 11];
      const a0 = matrices[m],
        ac = matrices[m + 1] * j + matrices[m + 3];
      const b0 = matrices[m + 4],
        b2 = matrices[m + 6],
        br = matrices[m + 5] * j + matrices[m + 7];
      const kHigh = b2 > 0 ? kEnd - 1 : kStart,
        kLow = b2 > 0 ? kStart : kEnd - 1;
      bound(d0, dw);
      bound(a0, ac);
      bound(cMax * d0 - a0, cMax * dw - ac);
      bound(b0, br + b2 * kHigh);
      bound(rMax * d0 - b0, rMax * dw - br - b2 * kLow);
    }
    const cylLo = rowRanges[ri],
      cylHi = rowRanges[ri + 1];
    const sLo = lo <= hi ? Math.max(cylLo, Math.ceil(lo) - 1) : cylHi + 1,
      sHi = lo <= hi ? Math.min(cylHi, Math.floor(hi) + 1) : cylHi;
    seen[2 * j] = sLo;
    seen[2 * j + 1] = sHi;
    for (let k = kStart; k < kEnd; k++) {
      const o = (k * ny + j) * nx;
      for (let i = cylLo; i <= cylHi; i++) if (i < sLo || i > sHi) outside[o + i] = 1;
    }
  }
  if (simd && allAxial && nx >= 4 && kEnd > kStart && columns >= 2 && rows >= 2) {
    const TILE = 16;
    const nk = kEnd - kStart,
      sliceBytes = sliceStride * 4,
      colBytes = columns * 4;
    for (let j0 = 0; j0 < ny; j0 += TILE) {
      const j1 = j0 + TILE < ny ? j0 + TILE : ny;
      for (let v = viewStart; v < viewEnd; v++) {
        const m = v * 12;
        const qv = simd.qAddress + v * plane * 4;
        for (let j = j0; j < j1; j++) {
          const lo = seen[2 * j],
            hi = seen[2 * j + 1];
          if (lo > hi) continue;
          simd.bprow(
            simd.outAddress + (kStart * ny + j) * nx * 4,
            qv,
            lo,
            hi,
            nx,
            nk,
            sliceBytes,
            colBytes,
            cMax,
            rMax,
            matrices[m + 8],
            matrices[m],
            matrices[m + 4],
            matrices[m + 6],
            matrices[m + 9] * j + matrices[m + 11],
            matrices[m + 1] * j + matrices[m + 3],
            matrices[m + 5] * j + matrices[m + 6] * kStart + matrices[m + 7],
          );
        }
      }
    }
    // The SIMD rows add NaN where a view does not see a voxel: that is the outside flag.
    for (let o = kStart * sliceStride; o < kEnd * sliceStride; o++) {
      if (out[o] !== out[o]) {
        out[o] = 0;
        outside[o] = 1;
      }
    }
    return;
  }
  for (let v = viewStart; v < viewEnd; v++) {
    const m = v * 12;
    const a0 = matrices[m],
      a1 = matrices[m + 1],
      a2 = matrices[m + 2],
      a3 = matrices[m + 3];
    const b0 = matrices[m + 4],
      b1 = matrices[m + 5],
      b2 = matrices[m + 6],
      b3 = matrices[m + 7];
    const d0 = matrices[m + 8],
      d1 = matrices[m + 9],
      d2 = matrices[m + 10],
      d3 = matrices[m + 11];
    const qo = v * plane;
    // Axial: (i, j) outer and the slab's slices inner, with column and depth fixed (a2, d2 are 0 to
    // rounding) and the row range cut to what the views see (above); otherwise slice by slice.
    const axial = allAxial;
    const nOuter = axial ? 1 : kEnd - kStart;
    const nInner = axial ? kEnd - kStart : 1;
    for (let ko = 0; ko < nOuter; ko++) {
      const kRow = kStart + ko;
      for (let j = 0; j < ny; j++) {
        const ri = 2 * (kRow * ny + j);
        const i0 = axial ? seen[2 * j] : rowRanges[ri],
          i1 = axial ? seen[2 * j + 1] : rowRanges[ri + 1];
        for (let i = i0; i <= i1; i++) {
          const w = d0 * i + d1 * j + d2 * kRow + d3;
          const inv = 1 / w;
          const c = (a0 * i + a1 * j + a2 * kRow + a3) * inv;
          const inC = c >= 0 && c < cMax && w > 0;
          const ic = inC ? c | 0 : 0;
          const fc = c - ic;
          const ww = inv * inv;
          let rh = b0 * i + b1 * j + b2 * kRow + b3;
          let o = (kRow * ny + j) * nx + i;
          for (let s = 0; s < nInner; s++, rh += b2, o += sliceStride) {
            const r = rh * inv;
            if (inC && r >= 0 && r < rMax) {
              const ir = r | 0;
              const fr = r - ir;
              const b = qo + ir * columns + ic;
              const q00 = q[b],
                q10 = q[b + columns];
              const x0 = q00 + (q[b + 1] - q00) * fc;
              const x1 = q10 + (q[b + columns + 1] - q10) * fc;
              out[o] += (x0 + (x1 - x0) * fr) * ww;
            } else {
              outside[o] = 1;
            }
          }
        }
      }
    }
  }
}

/** The filtering and backprojection kernels as the text of a script for a worker (each bound to its name). */
export function fdkKernelSource(): string {
  return [fdkFft, fdkBackprojectKernel, fdkFilterKernel].map((f) => `const ${f.name} = (${f.toString()});`).join('\n');
}

/** Slices per slab: backprojection runs all views over one slab at a time, so the slab stays in cache. */
export const FDK_SLAB_SLICES = 8;

/** Single-threaded backprojection of all views (slab by slab); `simd` as fdkBackprojectKernel takes it. */
export function fdkBackproject(
  q: Float32Array,
  setup: BackprojectionSetup,
  out: Float32Array,
  outside: Uint8Array,
  opts: { onProgress?: ReconProgressFn; signal?: AbortSignal } = {},
  simd: FdkSimdContext | null = null,
): void {
  const [nx, ny, nz] = setup.dims;
  for (let k = 0; k < nz; k += FDK_SLAB_SLICES) {
    if (opts.signal?.aborted) throw new CancelledError('C-arm CT reconstruction was cancelled');
    const k1 = Math.min(nz, k + FDK_SLAB_SLICES);
    fdkBackprojectKernel(
      q,
      setup.matrices,
      setup.rowRanges,
      nx,
      ny,
      setup.columns,
      setup.rows,
      out,
      outside,
      k,
      k1,
      0,
      setup.views,
      simd,
    );
    opts.onProgress?.(k1, nz, 'backprojection');
  }
}

export interface ReconOptions extends FilterOptions {
  /** Output grid (default cbctGrid(scan, gridOptions)). */
  grid?: ReconGrid;
  gridOptions?: GridOptions;
  /** Value of voxels outside the field of view (default -1024 HU). */
  fill?: number;
  /** Metadata for the output volume (the input CT's, typically). */
  meta?: VolumeMetadata;
}

export interface CbctReconstruction {
  /** Hounsfield units, 1000 (mu - muReference) / muReference; `fill` outside the field of view. */
  volume: Volume<Float32Array>;
  /** 1 inside the field of view (data), 0 outside; same layout as the volume. */
  mask: Uint8Array;
  muReferencePerMm: number;
  window: RampWindow;
  /** Voxels inside the field of view. */
  voxelsInside: number;
}

/** From the summed backprojection (mu, 1/mm) and outside flags to the HU volume and its mask. */
export function fdkFinish(
  mu: Float32Array,
  outside: Uint8Array,
  setup: BackprojectionSetup,
  grid: ReconGrid,
  muReference: number,
  window: RampWindow,
  fill: number,
  meta: VolumeMetadata = {},
): CbctReconstruction {
  const [nx, ny, nz] = setup.dims;
  const mask = new Uint8Array(nx * ny * nz);
  const r = setup.rowRanges;
  const s = 1000 / muReference;
  let inside = 0;
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      const o = (k * ny + j) * nx;
      const i0 = r[2 * (k * ny + j)],
        i1 = r[2 * (k * ny + j) + 1];
      for (let i = 0; i < nx; i++) {
        const x = o + i;
        if (i >= i0 && i <= i1 && outside[x] === 0) {
          mu[x] = (mu[x] - muReference) * s;
          mask[x] = 1;
          inside++;
        } else {
          mu[x] = fill;
        }
      }
    }
  }
  const volume = createVolume({ data: mu, dims: [nx, ny, nz], indexToPatient: grid.indexToPatient, meta });
  return { volume, mask, muReferencePerMm: muReference, window, voxelsInside: inside };
}

/**
 * FDK reconstruction of a scan's projections onto a grid, single-threaded (the backprojection in
 * WebAssembly SIMD where the engine has it and the grid is axial, see fdkBackprojectKernel).
 */
export function reconstructFdk(proj: CbctProjections, scan: CbctScan, opts: ReconOptions = {}): CbctReconstruction {
  const grid = opts.grid ?? cbctGrid(scan, opts.gridOptions);
  const window = opts.window ?? 'shepp-logan';
  checkProjections(proj, scan);
  const setup = backprojectionSetup(scan, grid);
  const [nx, ny, nz] = setup.dims;
  const sm = createFdkSimdMemory(proj.data.length, nx * ny * nz, false);
  const q = fdkFilter(proj, scan, opts, sm ? sm.q : undefined);
  const mu = sm ? sm.out : new Float32Array(nx * ny * nz);
  const outside = new Uint8Array(nx * ny * nz);
  fdkBackproject(q, setup, mu, outside, opts, sm ? fdkSimdContext(sm) : null);
  // The volume gets its own copy: the WebAssembly memory (projections included) can then go.
  return fdkFinish(
    sm ? mu.slice() : mu,
    outside,
    setup,
    grid,
    proj.muReferencePerMm,
    window,
    opts.fill ?? -1024,
    opts.meta,
  );
}
