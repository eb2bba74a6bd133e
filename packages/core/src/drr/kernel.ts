import type { DrrSimdContext } from './wasm.js';
import { DrrError } from './attenuation.js';

/** Three numbers along the index axes (i, j, k) or the patient axes (x, y, z). */
type Triple = [number, number, number];

/**
 * One projection's parameters for the kernels, by name. `drrParamFields` (drrVolume.ts) computes them from a
 * prepared volume and a C-arm geometry; `packDrrParams` writes them into the Float64Array that the kernels
 * read (through `DRR_PARAM`) and that travels to worker threads. "Index space" is continuous voxel indices
 * (i, j, k), voxel centres at whole numbers; "patient" is DICOM LPS in mm.
 */
export interface DrrParamFields {
  /** Voxels along i, j, k. */
  dims: Triple;
  /** Detector pixels per row (columns) and per column (rows); pixel (c, r) is column c of row r. */
  columns: number;
  rows: number;
  /** log2 of the occupancy blocks' edge, voxels. */
  blockShift: number;
  /** Occupancy blocks along i, j, k. */
  occupancyDims: Triple;
  /** The focal spot, index space. */
  sourceIndex: Triple;
  /**
   * The ray from the focal spot to the centre of pixel (0, 0) in index space (the ray parameter runs from 0
   * at the focal spot to 1 at the detector), and its change per column and per row: the ray to pixel (c, r)
   * is rayIndex + c rayIndexPerColumn + r rayIndexPerRow.
   */
  rayIndex: Triple;
  rayIndexPerColumn: Triple;
  rayIndexPerRow: Triple;
  /** The same three vectors in patient space, mm: their lengths turn steps in index space into mm. */
  rayMm: Triple;
  rayMmPerColumn: Triple;
  rayMmPerRow: Triple;
  /**
   * Samples per voxel plane for drrRayKernel, from the central ray: 1 = Joseph's method; n > 1 = n trilinear
   * samples per plane, for rays so oblique to all three axes that one sample per plane would be too sparse.
   */
  samplesPerPlane: number;
  /** Attenuation per unit of the stored 16-bit values, 1/mm. */
  muScale: number;
  /** Largest distance between samples along a ray, voxels (drrKernel chooses its samples per plane from it). */
  maxSampleSpacingVoxels: number;
  /** Byte address of mu with j fastest in the WebAssembly memory (DrrSimdMemory.transposedJ), or -1. */
  transposedJAddress: number;
  /** Byte address of mu with each plane of j contiguous (DrrSimdMemory.planesJ), or -1. */
  planesJAddress: number;
}

/**
 * Where each field lies in the packed parameters: its first slot. The three components of a vector field
 * take three consecutive slots, so `params[DRR_PARAM.sourceIndex + axis]` is one component (axis 0, 1, 2).
 * The kernels read the packed parameters only through this table (it is part of their worker source).
 */
export const DRR_PARAM = {
  dims: 0,
  columns: 3,
  rows: 4,
  blockShift: 5,
  occupancyDims: 6,
  sourceIndex: 9,
  rayIndex: 12,
  rayIndexPerColumn: 15,
  rayIndexPerRow: 18,
  rayMm: 21,
  rayMmPerColumn: 24,
  rayMmPerRow: 27,
  samplesPerPlane: 30,
  muScale: 31,
  maxSampleSpacingVoxels: 32,
  transposedJAddress: 33,
  planesJAddress: 34,
} as const satisfies Record<keyof DrrParamFields, number>;

/** Numbers in a packed parameter block. */
export const DRR_PARAMS_LENGTH = 35;

/** The fields written into a parameter block (`out`, by default a new one) at the slots DRR_PARAM names. */
export function packDrrParams(
  f: DrrParamFields,
  out: Float64Array = new Float64Array(DRR_PARAMS_LENGTH),
): Float64Array {
  if (out.length < DRR_PARAMS_LENGTH) {
    throw new DrrError(`a DRR parameter block holds ${DRR_PARAMS_LENGTH} numbers (got room for ${out.length})`);
  }
  for (const key of Object.keys(DRR_PARAM) as (keyof DrrParamFields)[]) {
    const v = f[key],
      o = DRR_PARAM[key];
    if (typeof v === 'number') {
      out[o] = v;
    } else {
      out[o] = v[0];
      out[o + 1] = v[1];
      out[o + 2] = v[2];
    }
  }
  return out;
}

/**
 * The DRR inner loops, self-contained: `drrKernel`, `drrRayKernel` and the helpers they call reference
 * nothing outside their own bodies except each other and `DRR_PARAM` (no imports, no other module
 * constants), so a worker can be built from their source text (`drrKernelSource()`) in Node and in browsers
 * alike. They allocate no per-ray memory.
 *
 * Both are Joseph's projector: a ray is followed along its dominant index axis m, and at every voxel plane
 * of that axis the attenuation is interpolated bilinearly in the plane (the voxel centres of the other
 * two axes p, q); the sum times the ray length per plane is the line integral (unitless: mu in 1/mm times
 * mm).
 *
 * `drrKernel` (plane sweep) evaluates them plane by plane instead of ray by ray. All rays of the image are
 * described by their slopes u = dp/dm, v = dq/dm; on a grid of (u, v) ("virtual rays") the position in
 * plane m is p = sp + (m - sm) u, q = sq + (m - sm) v, so the in-plane interpolation is separable: each
 * needed row of the plane is resampled once along p onto the virtual columns, and each virtual row then
 * adds one linear blend of two such rows. Both loops run over contiguous memory with no per-sample
 * position arithmetic: in JavaScript about twice as fast as following each ray, and the loops vectorise
 * (wasm.ts). It does not skip empty blocks (the occupancy grid is for drrRayKernel): each plane's rows
 * and columns are limited to those that rays cross inside the grid, and on the benchmark's CT, soft
 * tissue fills nearly every block anyway. When the detector is parallel to the planes and its rows and
 * columns follow p and q (e.g. AP and lateral views of an axis-aligned volume) the virtual rays are the
 * pixels themselves and the image equals the ray-by-ray one (to float32 rounding with `simd`); otherwise
 * the virtual grid has the detector's pixel density at its centre and each pixel takes the bilinear
 * interpolation of the four virtual rays around its own slopes (a small, smooth resampling of the
 * projection). Planes are sub-sampled (trilinear, `sub` samples per plane) when the steepest ray would
 * cross a plane more than `maxSampleSpacingVoxels` apart. Geometries where one axis cannot serve every
 * ray of the image (rays nearly parallel to the planes) fall back to `drrRayKernel`.
 *
 * `drrRayKernel` follows each ray, in 16 x 8 pixel tiles, skipping 8-plane runs whose occupancy block is
 * empty (air, dilated by a block), and picks the dominant axis per ray.
 *
 * params: a parameter block (`packDrrParams`; the fields are DrrParamFields). mu holds attenuation
 * quantised to 16 bits (value * muScale = 1/mm): half the memory traffic of Float32, and the scale is
 * applied once per ray since the sum is linear.
 *
 * With `simd` (wasm.ts: mu must then lie in that WebAssembly memory) the plane sweep's two row loops run
 * as WebAssembly SIMD in float32, about 4 times faster; without it they run here in float64.
 *
 * Both render rows rowStart..rowEnd-1 only, and give the same values for a row whatever band it is
 * rendered in (the virtual grid depends on the whole image's geometry, not on the band).
 */
export function drrKernel(
  params: Float64Array,
  mu: Uint16Array,
  occupancy: Uint8Array,
  out: Float32Array,
  rowStart: number,
  rowEnd: number,
  simd?: DrrSimdContext | null,
): void {
  const P = DRR_PARAM;
  const nx = params[P.dims] | 0,
    ny = params[P.dims + 1] | 0,
    nz = params[P.dims + 2] | 0;
  const columns = params[P.columns] | 0,
    rows = params[P.rows] | 0;
  const muScale = params[P.muScale];
  const maxSpacing = params[P.maxSampleSpacingVoxels] > 0 ? params[P.maxSampleSpacingVoxels] : 1.5;
  // Dominant axis m from the detector's central ray; p, q the in-plane axes (p the faster in memory).
  const cc = (columns - 1) / 2,
    rc = (rows - 1) / 2;
  const am = drrSweepAxis(params);
  const ap = am === 0 ? 1 : 0,
    aq = am === 2 ? 1 : 2;
  const nm = am === 0 ? nx : am === 1 ? ny : nz;
  const np = ap === 0 ? nx : ny,
    nq = aq === 1 ? ny : nz;
  const strideM = am === 0 ? 1 : am === 1 ? nx : nx * ny;
  const strideP = ap === 0 ? 1 : nx,
    strideQ = aq === 1 ? nx : nx * ny;
  const sm = params[P.sourceIndex + am],
    sp = params[P.sourceIndex + ap],
    sq = params[P.sourceIndex + aq];
  // Ray direction components along m, p, q of pixel (c, r): w0 + c wc + r wr.
  const wm0 = params[P.rayIndex + am],
    wmc = params[P.rayIndexPerColumn + am],
    wmr = params[P.rayIndexPerRow + am];
  const wp0 = params[P.rayIndex + ap],
    wpc = params[P.rayIndexPerColumn + ap],
    wpr = params[P.rayIndexPerRow + ap];
  const wq0 = params[P.rayIndex + aq],
    wqc = params[P.rayIndexPerColumn + aq],
    wqr = params[P.rayIndexPerRow + aq];
  const side = wm0 + cc * wmc + rc * wmr > 0 ? 1 : -1;
  // Over the detector's corners (k < 4) and centre (k = 4): slope range, steepest step, and the slope
  // change per pixel at the centre (the virtual grid's spacing).
  let degenerate = false,
    maxStep = 0;
  let du = 0,
    dv = 0,
    uLo = Infinity,
    uHi = -Infinity,
    vLo = Infinity,
    vHi = -Infinity;
  for (let k = 0; k < 5; k++) {
    const c = k === 4 ? cc : (k & 1) * (columns - 1),
      r = k === 4 ? rc : (k >> 1) * (rows - 1);
    const wm = wm0 + c * wmc + r * wmr,
      wp = wp0 + c * wpc + r * wpr,
      wq = wq0 + c * wqc + r * wqr;
    const u = wp / wm,
      v = wq / wm;
    if (!(wm * side > 0 && Math.abs(u) < 8 && Math.abs(v) < 8)) {
      degenerate = true;
      break;
    }
    const step = Math.sqrt(1 + u * u + v * v);
    if (step > maxStep) maxStep = step;
    if (u < uLo) uLo = u;
    if (u > uHi) uHi = u;
    if (v < vLo) vLo = v;
    if (v > vHi) vHi = v;
    if (k === 4) {
      const w2 = wm * wm;
      const uc = Math.abs((wpc * wm - wp * wmc) / w2),
        ur = Math.abs((wpr * wm - wp * wmr) / w2);
      const vc = Math.abs((wqc * wm - wq * wmc) / w2),
        vr = Math.abs((wqr * wm - wq * wmr) / w2);
      du = uc > ur ? uc : ur;
      dv = vc > vr ? vc : vr;
    }
  }
  if (degenerate || !(du > 0) || !(dv > 0)) {
    drrRayKernel(params, mu, occupancy, out, rowStart, rowEnd);
    return;
  }
  for (let i = rowStart * columns; i < rowEnd * columns; i++) out[i] = 0;
  const sub = Math.min(8, Math.max(1, Math.ceil(maxStep / maxSpacing - 1e-9)));
  // Planes in front of the focal spot only.
  let mFirst = 0,
    mLast = nm - 1;
  if (side > 0 && mFirst < sm) mFirst = Math.ceil(sm);
  if (side < 0 && mLast > sm) mLast = Math.floor(sm);
  if (mFirst > mLast) return;

  // Detector parallel to the planes with columns along p and rows along q: virtual rays = pixels.
  const tol =
    1e-9 *
    (Math.abs(wm0) +
      Math.abs(wmc) +
      Math.abs(wmr) +
      Math.abs(wp0) +
      Math.abs(wpc) +
      Math.abs(wpr) +
      Math.abs(wq0) +
      Math.abs(wqc) +
      Math.abs(wqr));
  const aligned = Math.abs(wmc) < tol && Math.abs(wmr) < tol && Math.abs(wpr) < tol && Math.abs(wqc) < tol;
  let u0: number, v0: number, nU: number, nV: number;
  if (aligned) {
    u0 = wp0 / wm0;
    du = wpc / wm0;
    v0 = wq0 / wm0;
    dv = wqr / wm0;
    nU = columns;
    nV = rows;
  } else {
    // Only slopes of rays that can meet the grid: the corners of the in-plane rectangle at the slab faces
    // (no limit when the focal spot lies between the faces).
    let gLo = Infinity,
      gHi = -Infinity,
      hLo = Infinity,
      hHi = -Infinity,
      bounded = true;
    for (let k = 0; k < 8; k++) {
      const dm = (k & 1 ? mLast + 0.5 : mFirst - 0.5) - sm;
      if (dm * side <= 0) {
        bounded = false;
        break;
      }
      const u = ((k & 2 ? np - 1 : 0) - sp) / dm,
        v = ((k & 4 ? nq - 1 : 0) - sq) / dm;
      if (u < gLo) gLo = u;
      if (u > gHi) gHi = u;
      if (v < hLo) hLo = v;
      if (v > hHi) hHi = v;
    }
    if (bounded) {
      if (gLo > uLo) uLo = gLo;
      if (gHi < uHi) uHi = gHi;
      if (hLo > vLo) vLo = hLo;
      if (hHi < vHi) vHi = hHi;
    }
    if (!(uLo <= uHi && vLo <= vHi)) return;
    // One virtual ray of margin on each side (outside the grid: zero) so edge pixels interpolate to zero.
    u0 = uLo - du;
    v0 = vLo - dv;
    nU = Math.ceil((uHi - uLo) / du) + 3;
    nV = Math.ceil((vHi - vLo) / dv) + 3;
    if (nU > 4 * columns + 8 || nV > 4 * rows + 8) {
      drrRayKernel(params, mu, occupancy, out, rowStart, rowEnd);
      return;
    }
  }
  // The virtual rows and columns this band of pixels needs.
  let bU0 = 0,
    bU1 = nU - 1,
    bV0 = rowStart,
    bV1 = rowEnd - 1;
  if (!aligned) {
    let ulo = Infinity,
      uhi = -Infinity,
      vlo = Infinity,
      vhi = -Infinity;
    for (let k = 0; k < 4; k++) {
      const c = (k & 1) * (columns - 1),
        r = k & 2 ? rowEnd - 1 : rowStart;
      const wm = wm0 + c * wmc + r * wmr;
      const U = ((wp0 + c * wpc + r * wpr) / wm - u0) / du,
        V = ((wq0 + c * wqc + r * wqr) / wm - v0) / dv;
      if (U < ulo) ulo = U;
      if (U > uhi) uhi = U;
      if (V < vlo) vlo = V;
      if (V > vhi) vhi = V;
    }
    bU0 = Math.max(0, Math.floor(ulo));
    bU1 = Math.min(nU - 1, Math.ceil(uhi));
    bV0 = Math.max(0, Math.floor(vlo));
    bV1 = Math.min(nV - 1, Math.ceil(vhi));
    if (bU0 > bU1 || bV0 > bV1) return;
  }
  const width = bU1 - bU0 + 1,
    height = bV1 - bV0 + 1;
  const acc = new Float64Array(width * height);
  const invSub = 1 / sub;
  // The row loops in WebAssembly when its scratch holds, in 4-float blocks, the tile's sums, the column
  // tables and two resampled rows; otherwise in JavaScript (float64).
  const W4 = ((width + 3) & ~3) + 4;
  // Tiles of virtual rows: a tile's rows of the plane stay in cache from one plane to the next, and each
  // plane's column table serves the whole tile. 128 rows where the scratch holds them (on the C-arm CT
  // benchmark's views about 0.9 of the time with 32, the tile before; the same sums either way), else 32.
  const TILE = simd && (128 + 6) * W4 * 4 <= simd.scratchBytes ? 128 : 32;
  const ws = simd && (TILE + 6) * W4 * 4 <= simd.scratchBytes ? simd : null;
  const f32 = ws ? ws.f32 : new Float32Array(0);
  // Swept along i with the j-fastest copy (WebAssembly memory only): rows along j are contiguous there.
  const tJ = params[P.transposedJAddress];
  const tr = ws !== null && am === 0 && tJ >= 0;
  // Swept along j with the copy whose planes of j are contiguous (index i + nx (k + nz j)): a plane's rows
  // lie one after the other instead of nx ny voxels apart (on the C-arm CT benchmark's views along j,
  // WebAssembly memory only).
  const pJ = params[P.planesJAddress];
  const trJ = ws !== null && am === 1 && pJ >= 0;
  const vol = tr
    ? new Uint16Array(f32.buffer, tJ, nx * ny * nz)
    : trJ
      ? new Uint16Array(f32.buffer, pJ, nx * ny * nz)
      : mu;
  const sM = tr ? ny * nz : trJ ? nx * nz : strideM,
    sP = tr ? 1 : strideP,
    sQ = tr ? ny : trJ ? nx : strideQ;
  // Scratch byte addresses: the tile's sums, the column table (offsets, weights), two resampled rows.
  const pAcc = ws ? ws.scratch : 0,
    pIp = pAcc + TILE * W4 * 4,
    pTp = pIp + W4 * 4;
  const pH = [pTp + W4 * 4, pTp + 2 * W4 * 4];
  // hrow1s's tables: a 16-byte shuffle per block of four columns, and each block's first byte offset.
  const pMask = pTp + 3 * W4 * 4,
    pBase = pMask + W4 * 4;
  const muByte = vol.byteOffset,
    strideP2 = sP * 2;
  const planeBytes = sM * 2;
  // In JavaScript: the column table (voxel offset along p and weight of each virtual column in the current
  // plane; with `ws` it lies in the scratch) and the two resampled rows.
  const ipOff = new Int32Array(width),
    tpW = new Float64Array(width);
  const hJs = [new Float64Array(width), new Float64Array(width)];
  // Which of the two row buffers holds row iq (the other holds iq + 1).
  let slotA = 0;
  for (let t0 = 0; t0 < height; t0 += TILE) {
    const t1 = t0 + TILE < height ? t0 + TILE : height;
    if (ws) f32.fill(0, pAcc >> 2, (pAcc >> 2) + TILE * W4);
    for (let m = mFirst; m <= mLast; m++) {
      for (let s = 0; s < sub; s++) {
        let xm = sub === 1 ? m : m - 0.5 + (s + 0.5) * invSub;
        if (xm < 0) xm = 0;
        else if (xm > nm - 1) xm = nm - 1;
        let im = xm | 0;
        if (im > nm - 2) im = nm - 2;
        const tm = xm - im;
        const two = tm > 0;
        const dm = xm - sm;
        // p of virtual column G = bU0 + U is pG + G pB; the columns with p inside [0, np - 1] take part.
        // (Written in the global column so that every band computes the same numbers.)
        const pB = dm * du,
          pG = sp + dm * u0;
        let ua = 0,
          ub = width - 1;
        if (pB !== 0) {
          let lo = Math.ceil(-pG / pB),
            hi = Math.floor((np - 1 - pG) / pB);
          if (pB < 0) {
            const t = Math.ceil((np - 1 - pG) / pB);
            hi = Math.floor(-pG / pB);
            lo = t;
          }
          if (lo - bU0 > ua) ua = lo - bU0;
          if (hi - bU0 < ub) ub = hi - bU0;
        } else if (!(pG >= 0 && pG <= np - 1)) continue;
        if (ua > ub) continue;
        // The WebAssembly loops work on whole 4-float blocks: the columns added around [ua, ub] read the
        // voxel of the nearest column inside and are zeroed after resampling, so they add nothing.
        const ua4 = ua & ~3,
          ub4 = (ub | 3) + 1;
        // Rows along the fastest axis (hrow1): where each block of four columns reads voxels within 7 of
        // its first (16 bytes), one 16-byte load and a byte shuffle (hrow1s) replace four 32-bit reads.
        // With WebAssembly the column table and those blocks' tables come from coltab (wasm.ts), the loop
        // below in WebAssembly.
        let swizzle = false;
        if (ws) {
          swizzle =
            ws.coltab(
              pIp,
              pTp,
              pMask,
              pBase,
              ua,
              ub,
              ua4,
              ub4,
              bU0,
              np - 2,
              strideP2,
              sP === 1 && !two ? 1 : 0,
              pG,
              pB,
            ) !== 0;
        } else {
          for (let U = ua; U <= ub; U++) {
            let p = pG + (U + bU0) * pB;
            if (p < 0) p = 0;
            let ip = p | 0;
            if (ip > np - 2) ip = np - 2;
            let tp = p - ip;
            if (tp > 1) tp = 1;
            ipOff[U] = ip * sP;
            tpW[U] = tp;
          }
        }
        const qB = dm * dv,
          qG = sq + dm * v0;
        const planeA = im * sM,
          planeB = planeA + sM;
        if (ws) {
          // The tile's virtual rows in one call (wasm.ts, vrows): the loop below, in WebAssembly.
          const mode = two ? 3 : swizzle ? 2 : sP === 1 ? 1 : 0;
          ws.vrows(
            pAcc + ua4 * 4,
            W4 * 4,
            t0,
            t1,
            bV0,
            qG,
            qB,
            nq - 1 + 1e-9,
            nq - 2,
            muByte + planeA * 2,
            sQ * 2,
            pH[0] + ua4 * 4,
            pH[1] + ua4 * 4,
            (ub4 - ua4) * 4,
            mode === 2 ? pBase + ua4 : pIp + ua4 * 4,
            pMask + ua4 * 4,
            pTp + ua4 * 4,
            strideP2,
            planeBytes,
            tm,
            mode,
            (ua - ua4) * 4,
            (ub + 1 - ua4) * 4,
          );
          continue;
        }
        let keyA = -1,
          keyB = -1;
        for (let V = t0; V < t1; V++) {
          let q = qG + (V + bV0) * qB;
          if (!(q >= -1e-9 && q <= nq - 1 + 1e-9)) continue;
          if (q < 0) q = 0;
          let iq = q | 0;
          if (iq > nq - 2) iq = nq - 2;
          let tq = q - iq;
          if (tq > 1) tq = 1;
          // Rows iq and iq + 1 resampled along p (and between two planes when between planes), kept while
          // the next virtual rows need the same ones.
          if (keyA !== iq || keyB !== iq + 1) {
            if (keyB === iq) {
              slotA = 1 - slotA;
              keyA = iq;
              keyB = -1;
            } else if (keyA === iq + 1) {
              slotA = 1 - slotA;
              keyB = iq + 1;
              keyA = -1;
            }
            for (let w = 0; w < 2; w++) {
              const qi = iq + w;
              if ((w === 0 ? keyA : keyB) === qi) continue;
              const slot = w === 0 ? slotA : 1 - slotA;
              const rowA = planeA + qi * sQ,
                rowB = planeB + qi * sQ;
              const h = hJs[slot];
              if (two) {
                for (let U = ua; U <= ub; U++) {
                  const x = rowA + ipOff[U],
                    y = rowB + ipOff[U],
                    tp = tpW[U];
                  const va = vol[x] + (vol[x + sP] - vol[x]) * tp;
                  const vb = vol[y] + (vol[y + sP] - vol[y]) * tp;
                  h[U] = va + (vb - va) * tm;
                }
              } else {
                for (let U = ua; U <= ub; U++) {
                  const x = rowA + ipOff[U];
                  const v00 = vol[x];
                  h[U] = v00 + (vol[x + sP] - v00) * tpW[U];
                }
              }
              if (w === 0) keyA = qi;
              else keyB = qi;
            }
          }
          const o = V * width;
          const ha = hJs[slotA],
            hb = hJs[1 - slotA];
          for (let U = ua; U <= ub; U++) {
            const x = ha[U];
            acc[o + U] += x + (hb[U] - x) * tq;
          }
        }
      }
    }
    if (ws) {
      for (let V = t0; V < t1; V++) {
        const src = (pAcc >> 2) + (V - t0) * W4,
          dst = V * width;
        for (let U = 0; U < width; U++) acc[dst + U] = f32[src + U];
      }
    }
  }
  // Each sample stands for 1/sub of a plane step, |W| / |wm| mm per unit of m along the pixel's own ray.
  const Wx0 = params[P.rayMm],
    Wxc = params[P.rayMmPerColumn],
    Wxr = params[P.rayMmPerRow];
  const Wy0 = params[P.rayMm + 1],
    Wyc = params[P.rayMmPerColumn + 1],
    Wyr = params[P.rayMmPerRow + 1];
  const Wz0 = params[P.rayMm + 2],
    Wzc = params[P.rayMmPerColumn + 2],
    Wzr = params[P.rayMmPerRow + 2];
  for (let r = rowStart; r < rowEnd; r++) {
    for (let c = 0; c < columns; c++) {
      const wm = wm0 + c * wmc + r * wmr;
      let val: number;
      if (aligned) {
        val = acc[(r - bV0) * width + c];
      } else {
        const U = ((wp0 + c * wpc + r * wpr) / wm - u0) / du - bU0;
        const V = ((wq0 + c * wqc + r * wqr) / wm - v0) / dv - bV0;
        if (!(U >= 0 && U <= width - 1 && V >= 0 && V <= height - 1)) continue;
        let iu = U | 0,
          iv = V | 0;
        if (iu > width - 2) iu = width - 2;
        if (iv > height - 2) iv = height - 2;
        if (iu < 0 || iv < 0) {
          // A band one virtual ray wide or high: nothing to interpolate across.
          val = acc[(iv < 0 ? 0 : iv) * width + (iu < 0 ? 0 : iu)];
        } else {
          const fu = U - iu,
            fv = V - iv;
          const o = iv * width + iu;
          const x0 = acc[o] + (acc[o + 1] - acc[o]) * fu;
          const x1 = acc[o + width] + (acc[o + width + 1] - acc[o + width]) * fu;
          val = x0 + (x1 - x0) * fv;
        }
      }
      const Wx = Wx0 + c * Wxc + r * Wxr;
      const Wy = Wy0 + c * Wyc + r * Wyr;
      const Wz = Wz0 + c * Wzc + r * Wzr;
      out[r * columns + c] = (val * muScale * invSub * Math.sqrt(Wx * Wx + Wy * Wy + Wz * Wz)) / (wm < 0 ? -wm : wm);
    }
  }
}

/**
 * Ray by ray (see drrKernel's description). It takes drrKernel's arguments less `simd`, the same on purpose
 * (`duplicates` pairs the two signatures): drrKernel hands its call over unchanged where the plane sweep
 * cannot serve a geometry, and tests call either on the same parameters.
 */
export function drrRayKernel(
  params: Float64Array,
  mu: Uint16Array,
  occupancy: Uint8Array,
  out: Float32Array,
  rowStart: number,
  rowEnd: number,
): void {
  const P = DRR_PARAM;
  const nx = params[P.dims] | 0,
    ny = params[P.dims + 1] | 0,
    nz = params[P.dims + 2] | 0;
  const columns = params[P.columns] | 0;
  const shift = params[P.blockShift] | 0;
  const bnx = params[P.occupancyDims] | 0,
    bny = params[P.occupancyDims + 1] | 0;
  const bmask = (1 << shift) - 1;
  const si = params[P.sourceIndex],
    sj = params[P.sourceIndex + 1],
    sk = params[P.sourceIndex + 2];
  const EPS = 1e-4;
  const sub = params[P.samplesPerPlane] | 0 || 1;
  const muScale = params[P.muScale];
  // Rays in index space (w) and patient mm (W) of pixel (c, r): 0 + c * per column + r * per row.
  const wi0 = params[P.rayIndex],
    wic = params[P.rayIndexPerColumn],
    wir = params[P.rayIndexPerRow];
  const wj0 = params[P.rayIndex + 1],
    wjc = params[P.rayIndexPerColumn + 1],
    wjr = params[P.rayIndexPerRow + 1];
  const wk0 = params[P.rayIndex + 2],
    wkc = params[P.rayIndexPerColumn + 2],
    wkr = params[P.rayIndexPerRow + 2];
  const Wx0 = params[P.rayMm],
    Wxc = params[P.rayMmPerColumn],
    Wxr = params[P.rayMmPerRow];
  const Wy0 = params[P.rayMm + 1],
    Wyc = params[P.rayMmPerColumn + 1],
    Wyr = params[P.rayMmPerRow + 1];
  const Wz0 = params[P.rayMm + 2],
    Wzc = params[P.rayMmPerColumn + 2],
    Wzr = params[P.rayMmPerRow + 2];
  // Tiles of 16 x 8 pixels: neighbouring rays read the same cache lines, so a tile's working set stays
  // in the core's cache while a whole detector row's would not.
  for (let tr = rowStart; tr < rowEnd; tr += 8) {
    const trEnd = tr + 8 < rowEnd ? tr + 8 : rowEnd;
    for (let tc = 0; tc < columns; tc += 16) {
      const tcEnd = tc + 16 < columns ? tc + 16 : columns;
      for (let r = tr; r < trEnd; r++) {
        for (let c = tc; c < tcEnd; c++) {
          const wi = wi0 + c * wic + r * wir;
          const wj = wj0 + c * wjc + r * wjr;
          const wk = wk0 + c * wkc + r * wkr;
          const Wx = Wx0 + c * Wxc + r * Wxr;
          const Wy = Wy0 + c * Wyc + r * Wyr;
          const Wz = Wz0 + c * Wzc + r * Wzr;
          const lenPerLambda = Math.sqrt(Wx * Wx + Wy * Wy + Wz * Wz);
          const ai = wi < 0 ? -wi : wi,
            aj = wj < 0 ? -wj : wj,
            ak = wk < 0 ? -wk : wk;
          let axis = 0;
          if (aj > ai && aj >= ak) axis = 1;
          else if (ak > ai && ak > aj) axis = 2;
          // Clip lambda to the grid: voxel centres on the in-plane axes, slab edges on the dominant one.
          let lo = -Infinity,
            hi = Infinity;
          for (let a = 0; a < 3; a++) {
            const s = a === 0 ? si : a === 1 ? sj : sk,
              w = a === 0 ? wi : a === 1 ? wj : wk;
            const n = a === 0 ? nx : a === 1 ? ny : nz;
            const lower = axis === a ? -0.5 + EPS : EPS,
              upper = axis === a ? n - 0.5 - EPS : n - 1 - EPS;
            if (w !== 0) {
              let t0 = (lower - s) / w,
                t1 = (upper - s) / w;
              if (t0 > t1) {
                const t = t0;
                t0 = t1;
                t1 = t;
              }
              if (t0 > lo) lo = t0;
              if (t1 < hi) hi = t1;
            } else if (s < lower || s > upper) hi = -Infinity;
          }
          if (lo < 0) lo = 0; // nothing behind the focal spot
          let sum = 0;
          if (hi > lo) {
            // Dominant axis m, in-plane axes p and q: positions along the ray as functions of the plane index.
            let sm: number, wm: number, sp: number, wp: number, sq: number, wq: number;
            let strideM: number, strideP: number, strideQ: number, nm: number, np: number, nq: number;
            let bStrideM: number, bStrideP: number, bStrideQ: number;
            if (axis === 0) {
              sm = si;
              wm = wi;
              sp = sj;
              wp = wj;
              sq = sk;
              wq = wk;
              strideM = 1;
              strideP = nx;
              strideQ = nx * ny;
              nm = nx;
              np = ny;
              nq = nz;
              bStrideM = 1;
              bStrideP = bnx;
              bStrideQ = bnx * bny;
            } else if (axis === 1) {
              sm = sj;
              wm = wj;
              sp = si;
              wp = wi;
              sq = sk;
              wq = wk;
              strideM = nx;
              strideP = 1;
              strideQ = nx * ny;
              nm = ny;
              np = nx;
              nq = nz;
              bStrideM = bnx;
              bStrideP = 1;
              bStrideQ = bnx * bny;
            } else {
              sm = sk;
              wm = wk;
              sp = si;
              wp = wi;
              sq = sj;
              wq = wj;
              strideM = nx * ny;
              strideP = 1;
              strideQ = nx;
              nm = nz;
              np = nx;
              nq = ny;
              bStrideM = bnx * bny;
              bStrideP = 1;
              bStrideQ = bnx;
            }
            // Plane m = q: lambda = (m - sm) / wm; p(m) = sp + (m - sm) * wp / wm.
            const dp = wp / wm,
              dq = wq / wm;
            const p0 = sp - sm * dp,
              q0 = sq - sm * dq;
            const mA = sm + lo * wm,
              mB = sm + hi * wm;
            const first = Math.ceil(mA < mB ? mA : mB),
              last = Math.floor(mA < mB ? mB : mA);
            // The sum does not depend on the order: walk planes upward in runs that end at block edges.
            let m = first;
            while (m <= last) {
              let runEnd = m | bmask;
              if (runEnd > last) runEnd = last;
              const fp = p0 + m * dp,
                fq = q0 + m * dq;
              const blk = (m >> shift) * bStrideM + ((fp | 0) >> shift) * bStrideP + ((fq | 0) >> shift) * bStrideQ;
              if (occupancy[blk] === 0) {
                m = runEnd + 1;
                continue;
              }
              if (sub === 1) {
                for (; m <= runEnd; m++) {
                  const xp = p0 + m * dp,
                    xq = q0 + m * dq;
                  const ip = xp | 0,
                    iq = xq | 0;
                  sum += drrBilinear(mu, m * strideM + ip * strideP + iq * strideQ, strideP, strideQ, xp - ip, xq - iq);
                }
              } else {
                for (; m <= runEnd; m++) {
                  for (let s = 0; s < sub; s++) {
                    const xm = m - 0.5 + (s + 0.5) / sub;
                    let im = Math.floor(xm),
                      tm = xm - im;
                    if (im < 0) {
                      im = 0;
                      tm = 0;
                    } else if (im > nm - 2) {
                      im = nm - 2;
                      tm = 1;
                    }
                    let xp = p0 + xm * dp,
                      xq = q0 + xm * dq;
                    if (xp < 0) xp = 0;
                    else if (xp > np - 1.000001) xp = np - 1.000001;
                    if (xq < 0) xq = 0;
                    else if (xq > nq - 1.000001) xq = nq - 1.000001;
                    const ip = xp | 0,
                      iq = xq | 0;
                    const tp = xp - ip,
                      tq = xq - iq;
                    const base = im * strideM + ip * strideP + iq * strideQ;
                    const b0 = drrBilinear(mu, base, strideP, strideQ, tp, tq);
                    const b1 = drrBilinear(mu, base + strideM, strideP, strideQ, tp, tq);
                    sum += (b0 + (b1 - b0) * tm) / sub;
                  }
                }
              }
            }
            // Each plane stands for one index step along m: lambda step 1/|wm|, length |W|/|wm| mm.
            sum *= (muScale * lenPerLambda) / (wm < 0 ? -wm : wm);
          }
          out[r * columns + c] = sum;
        }
      }
    }
  }
}

/**
 * Bilinear interpolation of mu in one voxel plane: `base` is voxel (ip, iq) of the plane, tp and tq the
 * fractions toward ip + 1 (strideP away) and iq + 1 (strideQ away).
 */
function drrBilinear(mu: Uint16Array, base: number, strideP: number, strideQ: number, tp: number, tq: number): number {
  const v00 = mu[base],
    v10 = mu[base + strideP];
  const v01 = mu[base + strideQ],
    v11 = mu[base + strideP + strideQ];
  const a0 = v00 + (v10 - v00) * tp;
  const a1 = v01 + (v11 - v01) * tp;
  return a0 + (a1 - a0) * tq;
}

/** The index axis (0 i, 1 j, 2 k) that the kernels sweep for these parameters (the central ray's largest). */
export function drrSweepAxis(params: Float64Array): number {
  const P = DRR_PARAM;
  const cc = (params[P.columns] - 1) / 2,
    rc = (params[P.rows] - 1) / 2;
  const w0 = P.rayIndex,
    wc = P.rayIndexPerColumn,
    wr = P.rayIndexPerRow;
  const a0 = Math.abs(params[w0] + cc * params[wc] + rc * params[wr]);
  const a1 = Math.abs(params[w0 + 1] + cc * params[wc + 1] + rc * params[wr + 1]);
  const a2 = Math.abs(params[w0 + 2] + cc * params[wc + 2] + rc * params[wr + 2]);
  return a1 > a0 && a1 >= a2 ? 1 : a2 > a0 && a2 > a1 ? 2 : 0;
}

/**
 * The kernels as the text of a script for a worker: `DRR_PARAM` and each function (drrKernel, drrRayKernel
 * and their helpers) bound to its own name. Evaluated where `__name` exists (esbuild's keepNames helper,
 * which test runners insert: `var __name = (f) => f;` will do).
 */
export function drrKernelSource(): string {
  const parts = [drrBilinear, drrSweepAxis, drrRayKernel, drrKernel];
  const table = `const DRR_PARAM = ${JSON.stringify(DRR_PARAM)};`;
  return [table, ...parts.map((f) => `const ${f.name} = (${f.toString()});`)].join('\n');
}
