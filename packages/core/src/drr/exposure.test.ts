/**
 * Automatic exposure, the dose-tied noise, the body window, orientation markers and the PNG text.
 * Expected figures are recomputed here from the model as README states it (tube output 50 uGy/mAs at
 * 1 m and 75 kV, rising as kV^2.5, inverse square; 30 photons/mm^2/nGy; 70 % detected), or from the
 * projection matrix (a point to the patient's left projects to the right of the centre in AP).
 */
import { describe, expect, it } from 'vitest';
import {
  attenuationScale,
  automaticExposure,
  drawText,
  effectiveAttenuationPerMm,
  fluoroscopyImage,
  orientationMarkers,
  textSize,
} from './index.js';
import { carmGeometry, carmPreset, projectPoint, projectionMatrix } from '../carm/geometry.js';

const uniform = (L: number, n = 64 * 64) => new Float32Array(n).fill(L);
const base = { pixelAreaMm2: 0.5, sidMm: 1200, referenceKvp: 75 };
/** Detector air kerma (nGy) behind a line integral L (at 75 kV) for kV and mAs, from the stated model. */
function doseHere(kv: number, mAs: number, sid: number, L: number): number {
  const s = effectiveAttenuationPerMm('water', { kvp: kv }) / effectiveAttenuationPerMm('water', { kvp: 75 });
  return 50_000 * (kv / 75) ** 2.5 * mAs * (1000 / sid) ** 2 * Math.exp(-s * L);
}

describe('automatic exposure', () => {
  it('the effective attenuation falls with kV: scale 1 at the reference kV, below 1 above it', () => {
    expect(attenuationScale(75, 75)).toBeCloseTo(1, 12);
    let last = Infinity;
    for (let kv = 50; kv <= 130; kv += 10) {
      const s = attenuationScale(kv, 75);
      expect(s).toBeLessThan(last);
      last = s;
    }
    // Water's spectrum-averaged mu at 120 kV is some 10-25 % lower than at 75 kV.
    expect(attenuationScale(120, 75)).toBeGreaterThan(0.75);
    expect(attenuationScale(120, 75)).toBeLessThan(0.9);
  });

  it('hits the target dose in the measuring field, raising kV and mAs as the patient thickens', () => {
    let prev = { kvp: 0, mAs: 0 };
    for (const L of [3, 4, 5, 6, 7, 8, 9]) {
      const e = automaticExposure(uniform(L), 64, 64, { ...base, targetDoseNGy: 100 });
      expect(e.underexposed).toBe(false);
      expect(e.fieldLineIntegral).toBeCloseTo(L, 2);
      // The dose recomputed from kV, mAs and L by the stated model is the target.
      expect(doseHere(e.kvp, e.mAs, 1200, L) / 100).toBeCloseTo(1, 2);
      expect(e.kvp).toBeGreaterThanOrEqual(prev.kvp);
      expect(e.mAs).toBeGreaterThanOrEqual(prev.mAs);
      expect(e.kvp).toBeGreaterThanOrEqual(60);
      expect(e.kvp).toBeLessThanOrEqual(120);
      // Photons: 30 per mm^2 per nGy, 70 % detected, 0.5 mm^2 pixels.
      expect(e.fieldPhotonsPerPixel).toBeCloseTo(100 * 30 * 0.7 * 0.5, 0);
      expect(e.photonsPerPixel / e.fieldPhotonsPerPixel).toBeCloseTo(Math.exp(e.attenuationScale * L), 3);
      prev = e;
    }
  });

  it('out of reach: kvMax and mAsMax, flagged underexposed; thin: kvMin and less mAs', () => {
    const thick = automaticExposure(uniform(30), 64, 64, base);
    expect([thick.kvp, thick.mAs, thick.underexposed]).toEqual([120, 20, true]);
    const thin = automaticExposure(uniform(1.5), 64, 64, base);
    expect(thin.kvp).toBe(60);
    expect(thin.mAs).toBeLessThan(0.1);
    expect(doseHere(60, thin.mAs, 1200, 1.5)).toBeCloseTo(100, 6);
  });

  it('a fixed kV leaves only mAs to choose', () => {
    const e = automaticExposure(uniform(6), 64, 64, { ...base, kvp: 90 });
    expect(e.mode).toBe('manual-kv');
    expect(e.kvp).toBe(90);
    expect(doseHere(90, e.mAs, 1200, 6)).toBeCloseTo(100, 6);
  });

  it('the measuring field is the central in-body region: air around it does not change the exposure', () => {
    const n = 64;
    const li = new Float32Array(n * n);
    for (let r = 16; r < 48; r++) for (let c = 16; c < 48; c++) li[r * n + c] = 6;
    const e = automaticExposure(li, n, n, base);
    const f = automaticExposure(uniform(6), n, n, base);
    expect(e.kvp).toBeCloseTo(f.kvp, 9);
    expect(e.mAs).toBeCloseTo(f.mAs, 9);
    expect(() => automaticExposure(li, n, n - 1, base)).toThrow(/line integrals/);
  });

  it('quantum noise follows the dose: relative noise = 1 / sqrt(counts x blur gain)', () => {
    const n = 256;
    const e = automaticExposure(uniform(6, n * n), n, n, { ...base, targetDoseNGy: 50 });
    const img = fluoroscopyImage(uniform(6, n * n), n, n, { exposure: e, seed: 3 });
    // Discrete Gaussian of sigma 0.8 (radius 3): a 2D separable blur scales white noise variance by (sum k^2)^2.
    const k: number[] = [];
    for (let i = -3; i <= 3; i++) k.push(Math.exp((-i * i) / (2 * 0.64)));
    const ks = k.reduce((a, b) => a + b);
    const g2 = k.reduce((a, b) => a + (b / ks) ** 2, 0) ** 2;
    let s = 0,
      ss = 0,
      m = 0;
    for (let r = 8; r < n - 8; r++)
      for (let c = 8; c < n - 8; c++) {
        const v = img.intensity[r * n + c];
        s += v;
        ss += v * v;
        m++;
      }
    const mean = s / m,
      sd = Math.sqrt(ss / m - mean * mean);
    expect(mean).toBeCloseTo(Math.exp(-e.attenuationScale * 6), 4);
    const want = Math.sqrt(g2 / e.fieldPhotonsPerPixel);
    expect(sd / mean / want).toBeGreaterThan(0.95);
    expect(sd / mean / want).toBeLessThan(1.05);
  });

  it('the window comes from the pixels inside the body, not the air around them', () => {
    const n = 128;
    const li = new Float32Array(n * n);
    // Body: a square of line integral 5 with a bone bar (+1.5); air around it.
    for (let r = 32; r < 96; r++) for (let c = 32; c < 96; c++) li[r * n + c] = 5 + (c >= 60 && c < 68 ? 1.5 : 0);
    const img = fluoroscopyImage(li, n, n, { photonsPerPixel: 0, edgeEnhance: 0 });
    expect(img.windowFrom).toBe('body');
    // Air (0) would set the low end; the body's edge pixels, blurred by the detector, reach below 5.
    expect(img.window[0]).toBeGreaterThan(2.5);
    expect(img.window[1]).toBeLessThan(6.6);
    // Soft tissue light, bone dark, both inside the grey range.
    expect(img.gray[64 * n + 40]).toBeGreaterThan(200);
    expect(img.gray[64 * n + 64]).toBe(0);
    expect(img.gray[5 * n + 5]).toBe(255);
  });
});

describe('orientation markers', () => {
  const sys = carmPreset('artis-zee-floor');
  const iso: [number, number, number] = [10, -20, 950];
  /** The image edge a patient direction points to, from the projection matrix (not the code under test). */
  function edgeOf(primaryDeg: number, secondaryDeg: number, dir: number[]): string {
    const g = carmGeometry(sys, { primaryDeg, secondaryDeg, isocenter: iso }, { size: 256 });
    const P = projectionMatrix(g);
    const a = projectPoint(P, iso),
      b = projectPoint(P, [iso[0] + 50 * dir[0], iso[1] + 50 * dir[1], iso[2] + 50 * dir[2]]);
    const dc = b[0] - a[0],
      dr = b[1] - a[1];
    return Math.abs(dc) >= Math.abs(dr) ? (dc > 0 ? 'right' : 'left') : dr > 0 ? 'bottom' : 'top';
  }
  const geom = (a: number, b: number) =>
    carmGeometry(sys, { primaryDeg: a, secondaryDeg: b, isocenter: iso }, { size: 256 });

  it("AP: the patient's left on the image's right, head at the top", () => {
    const m = orientationMarkers(geom(0, 0));
    expect(m.edges).toEqual({ left: 'R', right: 'L', top: 'H', bottom: 'F' });
    expect(m.side).toEqual({ left: 'right', right: 'left' });
    expect(edgeOf(0, 0, [1, 0, 0])).toBe('right');
    expect(edgeOf(0, 0, [0, 0, 1])).toBe('top');
  });

  it('every pose: the letters agree with where the projection puts each patient direction', () => {
    const dirs: [string, number[]][] = [
      ['L', [1, 0, 0]],
      ['P', [0, 1, 0]],
      ['H', [0, 0, 1]],
    ];
    for (const [a, b] of [
      [0, 35],
      [0, -30],
      [90, 0],
      [-90, 0],
      [30, 20],
      [-45, -25],
      [180, 0],
    ]) {
      const m = orientationMarkers(geom(a, b));
      for (const [letter, d] of dirs) {
        const e = edgeOf(a, b, d);
        // Where this direction is the edge's dominant one, the edge carries its letter.
        const labelled = Object.entries(m.edges).filter(([, l]) => l === letter);
        for (const [edge] of labelled) expect(edge, `${letter} at ${a}/${b}`).toBe(e);
      }
      const lat = Math.abs(a) === 90;
      expect(m.side === null, `side at ${a}/${b}`).toBe(lat);
      if (m.side) expect(m.side.left).toBe(edgeOf(a, b, [1, 0, 0]));
    }
    expect(orientationMarkers(geom(90, 0)).edges.right).toBe('P');
    expect(orientationMarkers(geom(180, 0)).edges.right).toBe('R');
  });
});

describe('text on images', () => {
  it('draws glyphs over a darkened backdrop, clipped to the image', () => {
    const w = 40,
      h = 20;
    const img = new Uint8ClampedArray(w * h * 4).fill(200);
    drawText(img, w, h, 'L', 0, 0);
    const [tw, th] = textSize('L');
    expect([tw, th]).toEqual([9, 11]);
    // 'L': the glyph's left column and bottom row are lit (padding 2 px); the backdrop darkens the rest.
    const px = (c: number, r: number) => img[4 * (r * w + c)];
    expect(px(2, 2)).toBe(255);
    expect(px(6, 8)).toBe(255);
    expect(px(4, 4)).toBe(70);
    expect(px(20, 10)).toBe(200);
    drawText(img, w, h, 'A LONG TITLE', 30, 15);
    expect(img.length).toBe(w * h * 4);
  });
});

describe('erodeMask', () => {
  it('equals a brute-force square erosion', async () => {
    const { erodeMask } = await import('./exposure.js');
    const w = 23,
      h = 17;
    let seed = 5;
    const m = new Uint8Array(w * h).map(() => ((seed = (seed * 1103515245 + 12345) >>> 0) % 10 < 8 ? 1 : 0));
    for (const r of [1, 2, 3]) {
      const want = new Uint8Array(w * h);
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          let ok = 1;
          for (let dy = -r; dy <= r; dy++)
            for (let dx = -r; dx <= r; dx++) {
              const xx = x + dx,
                yy = y + dy;
              if (xx >= 0 && yy >= 0 && xx < w && yy < h && !m[yy * w + xx]) ok = 0;
            }
          want[y * w + x] = ok;
        }
      expect(Array.from(erodeMask(m.slice(), w, h, r))).toEqual(Array.from(want));
    }
  });
});
