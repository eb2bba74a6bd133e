/**
 * Test-only: how well a displayed fluoroscopy image shows the anatomy, written independently of core's
 * fluoroscopy code (issue 15's measure). Inside the body (noise-free line integral above 1, eroded by a
 * 31-pixel square: 15 pixels in from the outline): the fraction of pixels saturated (grey 0 or 255), and
 * the Pearson correlation between the fine structure (difference of Gaussians, sigma 1 and 6 pixels, edges
 * clamped) of the displayed grey levels and that of the noise-free line integrals. Bone is dark on the
 * display and high in the line integrals, so r is negative for a faithful image: |r| is the measure.
 */
function gauss(src: Float64Array, w: number, h: number, sigma: number): Float64Array {
  const r = Math.ceil(3 * sigma);
  const k: number[] = [];
  let ks = 0;
  for (let i = -r; i <= r; i++) {
    const v = Math.exp((-i * i) / (2 * sigma * sigma));
    k.push(v);
    ks += v;
  }
  const tmp = new Float64Array(w * h),
    out = new Float64Array(w * h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      let a = 0;
      for (let i = -r; i <= r; i++) a += k[i + r] * src[y * w + Math.min(w - 1, Math.max(0, x + i))];
      tmp[y * w + x] = a / ks;
    }
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      let a = 0;
      for (let i = -r; i <= r; i++) a += k[i + r] * tmp[Math.min(h - 1, Math.max(0, y + i)) * w + x];
      out[y * w + x] = a / ks;
    }
  return out;
}

export interface FluoroMetric {
  /** Pixels inside the eroded body. */
  pixels: number;
  /** Fraction of them at grey 0 or 255. */
  saturated: number;
  /** Correlation of the DoG(1, 6) of the display with that of the line integrals. */
  r: number;
}

export function fluoroMetric(
  gray: ArrayLike<number>,
  lineIntegrals: ArrayLike<number>,
  w: number,
  h: number,
  opts: { bodyThreshold?: number; inset?: number } = {},
): FluoroMetric {
  const thr = opts.bodyThreshold ?? 1,
    R = opts.inset ?? 15;
  if (gray.length !== w * h || lineIntegrals.length !== w * h) throw new Error('image sizes differ');
  // Summed-area table of the body mask: a pixel is kept when its whole (2R + 1)^2 square is body.
  const S = new Int32Array((w + 1) * (h + 1));
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      S[(y + 1) * (w + 1) + x + 1] =
        (lineIntegrals[y * w + x] > thr ? 1 : 0) +
        S[y * (w + 1) + x + 1] +
        S[(y + 1) * (w + 1) + x] -
        S[y * (w + 1) + x];
  const mask = new Uint8Array(w * h);
  let n = 0;
  for (let y = R; y < h - R; y++)
    for (let x = R; x < w - R; x++) {
      const s =
        S[(y + R + 1) * (w + 1) + x + R + 1] -
        S[(y - R) * (w + 1) + x + R + 1] -
        S[(y + R + 1) * (w + 1) + x - R] +
        S[(y - R) * (w + 1) + x - R];
      if (s === (2 * R + 1) ** 2) {
        mask[y * w + x] = 1;
        n++;
      }
    }
  const g = Float64Array.from(gray),
    l = Float64Array.from(lineIntegrals);
  const g1 = gauss(g, w, h, 1),
    g6 = gauss(g, w, h, 6),
    l1 = gauss(l, w, h, 1),
    l6 = gauss(l, w, h, 6);
  let sat = 0,
    sa = 0,
    sb = 0,
    saa = 0,
    sbb = 0,
    sab = 0;
  for (let i = 0; i < w * h; i++) {
    if (!mask[i]) continue;
    if (gray[i] === 0 || gray[i] === 255) sat++;
    const a = g1[i] - g6[i],
      b = l1[i] - l6[i];
    sa += a;
    sb += b;
    saa += a * a;
    sbb += b * b;
    sab += a * b;
  }
  const r = (sab - (sa * sb) / n) / Math.sqrt((saa - (sa * sa) / n) * (sbb - (sb * sb) / n));
  return { pixels: n, saturated: n ? sat / n : NaN, r };
}
