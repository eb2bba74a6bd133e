/**
 * The DRR inner loop, self-contained: it references nothing outside its own body (no imports, no module
 * constants, no helpers), so a worker can be built from its source text (`drrKernel.toString()`) in
 * Node and in browsers alike, and it allocates nothing.
 *
 * Method: Joseph's ray-driven projector. For each detector pixel the ray from the focal spot is followed
 * in voxel-index space along its dominant axis; at every voxel plane of that axis the attenuation is
 * interpolated bilinearly in the plane (the voxel centres of the other two axes), and the sum times the
 * ray length per plane is the line integral (unitless: mu in 1/mm times mm). Rays are clipped to the
 * grid first, and whole 8-plane runs whose occupancy block (air, dilated by a block) is empty are skipped,
 * which clips rays to the body.
 *
 * params layout (Float64Array, DRR_PARAMS_LENGTH):
 *  0-2 nx ny nz   3 columns  4 rows  5 block shift (log2 block size)  6-8 occupancy grid dims
 *  9-11 focal spot, voxel index
 *  12-14 ray direction of pixel (0,0), index space; 15-17 its change per column; 18-20 per row
 *  21-23 the same directions in patient mm: pixel (0,0); 24-26 per column; 27-29 per row
 *  30 samples per plane: 1 = Joseph's method; n > 1 = n trilinear samples per plane, for rays so
 *     oblique to all three axes that one sample per plane would be too sparse along the ray
 *  31 attenuation per unit of the stored integers, 1/mm
 * mu holds attenuation quantised to 16 bits (value * params[31] = 1/mm): half the memory traffic of
 * Float32, and the scale is applied once per ray since the sum is linear.
 */
export function drrKernel(
  params: Float64Array,
  mu: Uint16Array,
  occupancy: Uint8Array,
  out: Float32Array,
  rowStart: number,
  rowEnd: number,
): void {
  const nx = params[0] | 0, ny = params[1] | 0, nz = params[2] | 0;
  const columns = params[3] | 0;
  const shift = params[5] | 0;
  const bnx = params[6] | 0, bny = params[7] | 0;
  const bmask = (1 << shift) - 1;
  const si = params[9], sj = params[10], sk = params[11];
  const EPS = 1e-4;
  const sub = params[30] | 0 || 1;
  const muScale = params[31];
  // Tiles of 16 x 8 pixels: neighbouring rays read the same cache lines, so a tile's working set stays
  // in the core's cache while a whole detector row's would not.
  for (let tr = rowStart; tr < rowEnd; tr += 8) {
   const trEnd = tr + 8 < rowEnd ? tr + 8 : rowEnd;
   for (let tc = 0; tc < columns; tc += 16) {
    const tcEnd = tc + 16 < columns ? tc + 16 : columns;
    for (let r = tr; r < trEnd; r++) {
    for (let c = tc; c < tcEnd; c++) {
      const wi = params[12] + c * params[15] + r * params[18];
      const wj = params[13] + c * params[16] + r * params[19];
      const wk = params[14] + c * params[17] + r * params[20];
      const Wx = params[21] + c * params[24] + r * params[27];
      const Wy = params[22] + c * params[25] + r * params[28];
      const Wz = params[23] + c * params[26] + r * params[29];
      const lenPerLambda = Math.sqrt(Wx * Wx + Wy * Wy + Wz * Wz);
      // Clip lambda to the grid: voxel centres on the in-plane axes, slab edges on the dominant one.
      const ai = wi < 0 ? -wi : wi, aj = wj < 0 ? -wj : wj, ak = wk < 0 ? -wk : wk;
      let axis = 0;
      if (aj > ai && aj >= ak) axis = 1;
      else if (ak > ai && ak > aj) axis = 2;
      let lo = -Infinity, hi = Infinity;
      // i
      {
        const a = axis === 0 ? -0.5 + EPS : EPS, b = axis === 0 ? nx - 0.5 - EPS : nx - 1 - EPS;
        if (wi !== 0) {
          let t0 = (a - si) / wi, t1 = (b - si) / wi;
          if (t0 > t1) { const t = t0; t0 = t1; t1 = t; }
          if (t0 > lo) lo = t0;
          if (t1 < hi) hi = t1;
        } else if (si < a || si > b) hi = -Infinity;
      }
      {
        const a = axis === 1 ? -0.5 + EPS : EPS, b = axis === 1 ? ny - 0.5 - EPS : ny - 1 - EPS;
        if (wj !== 0) {
          let t0 = (a - sj) / wj, t1 = (b - sj) / wj;
          if (t0 > t1) { const t = t0; t0 = t1; t1 = t; }
          if (t0 > lo) lo = t0;
          if (t1 < hi) hi = t1;
        } else if (sj < a || sj > b) hi = -Infinity;
      }
      {
        const a = axis === 2 ? -0.5 + EPS : EPS, b = axis === 2 ? nz - 0.5 - EPS : nz - 1 - EPS;
        if (wk !== 0) {
          let t0 = (a - sk) / wk, t1 = (b - sk) / wk;
          if (t0 > t1) { const t = t0; t0 = t1; t1 = t; }
          if (t0 > lo) lo = t0;
          if (t1 < hi) hi = t1;
        } else if (sk < a || sk > b) hi = -Infinity;
      }
      if (lo < 0) lo = 0; // nothing behind the focal spot
      let sum = 0;
      if (hi > lo) {
        // Dominant axis m, in-plane axes p and q: positions along the ray as functions of the plane index.
        let sm: number, wm: number, sp: number, wp: number, sq: number, wq: number;
        let strideM: number, strideP: number, strideQ: number, nm: number, np: number, nq: number;
        let bStrideM: number, bStrideP: number, bStrideQ: number;
        if (axis === 0) {
          sm = si; wm = wi; sp = sj; wp = wj; sq = sk; wq = wk;
          strideM = 1; strideP = nx; strideQ = nx * ny; nm = nx; np = ny; nq = nz;
          bStrideM = 1; bStrideP = bnx; bStrideQ = bnx * bny;
        } else if (axis === 1) {
          sm = sj; wm = wj; sp = si; wp = wi; sq = sk; wq = wk;
          strideM = nx; strideP = 1; strideQ = nx * ny; nm = ny; np = nx; nq = nz;
          bStrideM = bnx; bStrideP = 1; bStrideQ = bnx * bny;
        } else {
          sm = sk; wm = wk; sp = si; wp = wi; sq = sj; wq = wj;
          strideM = nx * ny; strideP = 1; strideQ = nx; nm = nz; np = nx; nq = ny;
          bStrideM = bnx * bny; bStrideP = 1; bStrideQ = bnx;
        }
        // Plane m = q: lambda = (m - sm) / wm; p(m) = sp + (m - sm) * wp / wm.
        const dp = wp / wm, dq = wq / wm;
        const p0 = sp - sm * dp, q0 = sq - sm * dq;
        const mA = sm + lo * wm, mB = sm + hi * wm;
        const first = Math.ceil(mA < mB ? mA : mB), last = Math.floor(mA < mB ? mB : mA);
        // The sum does not depend on the order: walk planes upward in runs that end at block edges.
        let m = first;
        while (m <= last) {
          let runEnd = m | bmask;
          if (runEnd > last) runEnd = last;
          const fp = p0 + m * dp, fq = q0 + m * dq;
          const blk = (m >> shift) * bStrideM + ((fp | 0) >> shift) * bStrideP + ((fq | 0) >> shift) * bStrideQ;
          if (occupancy[blk] === 0) {
            m = runEnd + 1;
            continue;
          }
          if (sub === 1) {
            for (; m <= runEnd; m++) {
              const xp = p0 + m * dp, xq = q0 + m * dq;
              const ip = xp | 0, iq = xq | 0;
              const tp = xp - ip, tq = xq - iq;
              const base = m * strideM + ip * strideP + iq * strideQ;
              const v00 = mu[base], v10 = mu[base + strideP];
              const v01 = mu[base + strideQ], v11 = mu[base + strideP + strideQ];
              const a0 = v00 + (v10 - v00) * tp;
              const a1 = v01 + (v11 - v01) * tp;
              sum += a0 + (a1 - a0) * tq;
            }
          } else {
            for (; m <= runEnd; m++) {
              for (let s = 0; s < sub; s++) {
                const xm = m - 0.5 + (s + 0.5) / sub;
                let im = Math.floor(xm), tm = xm - im;
                if (im < 0) { im = 0; tm = 0; } else if (im > nm - 2) { im = nm - 2; tm = 1; }
                let xp = p0 + xm * dp, xq = q0 + xm * dq;
                if (xp < 0) xp = 0; else if (xp > np - 1.000001) xp = np - 1.000001;
                if (xq < 0) xq = 0; else if (xq > nq - 1.000001) xq = nq - 1.000001;
                const ip = xp | 0, iq = xq | 0;
                const tp = xp - ip, tq = xq - iq;
                let base = im * strideM + ip * strideP + iq * strideQ;
                let v00 = mu[base], v10 = mu[base + strideP];
                let v01 = mu[base + strideQ], v11 = mu[base + strideP + strideQ];
                let a0 = v00 + (v10 - v00) * tp;
                let a1 = v01 + (v11 - v01) * tp;
                const b0 = a0 + (a1 - a0) * tq;
                base += strideM;
                v00 = mu[base]; v10 = mu[base + strideP];
                v01 = mu[base + strideQ]; v11 = mu[base + strideP + strideQ];
                a0 = v00 + (v10 - v00) * tp;
                a1 = v01 + (v11 - v01) * tp;
                const b1 = a0 + (a1 - a0) * tq;
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

export const DRR_PARAMS_LENGTH = 32;
