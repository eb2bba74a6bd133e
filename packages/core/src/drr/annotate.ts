/**
 * Text on RGBA images for the CLI's PNGs (titles, exposure, orientation letters): a 5 x 7 bitmap font,
 * drawn at an integer scale over a dark, half-opaque backdrop so it stays legible on any image.
 * Lower case letters other than k, m, s and x are drawn as capitals.
 */
import { anglesLabel, orientationMarkers, type ImageEdge } from './orientation.js';
import type { CarmGeometry } from '../carm/geometry.js';
import type { Exposure } from './exposure.js';

/** Rows of each glyph, top first; bit 4 is the leftmost of 5 columns. */
const FONT: Record<string, readonly number[]> = {
  A: [14, 17, 17, 31, 17, 17, 17],
  B: [30, 17, 17, 30, 17, 17, 30],
  C: [14, 17, 16, 16, 16, 17, 14],
  D: [30, 17, 17, 17, 17, 17, 30],
  E: [31, 16, 16, 30, 16, 16, 31],
  F: [31, 16, 16, 30, 16, 16, 16],
  G: [14, 17, 16, 23, 17, 17, 15],
  H: [17, 17, 17, 31, 17, 17, 17],
  I: [14, 4, 4, 4, 4, 4, 14],
  J: [7, 2, 2, 2, 2, 18, 12],
  K: [17, 18, 20, 24, 20, 18, 17],
  L: [16, 16, 16, 16, 16, 16, 31],
  M: [17, 27, 21, 21, 17, 17, 17],
  N: [17, 17, 25, 21, 19, 17, 17],
  O: [14, 17, 17, 17, 17, 17, 14],
  P: [30, 17, 17, 30, 16, 16, 16],
  Q: [14, 17, 17, 17, 21, 18, 13],
  R: [30, 17, 17, 30, 20, 18, 17],
  S: [15, 16, 16, 14, 1, 1, 30],
  T: [31, 4, 4, 4, 4, 4, 4],
  U: [17, 17, 17, 17, 17, 17, 14],
  V: [17, 17, 17, 17, 17, 10, 4],
  W: [17, 17, 17, 21, 21, 21, 10],
  X: [17, 17, 10, 4, 10, 17, 17],
  Y: [17, 17, 10, 4, 4, 4, 4],
  Z: [31, 1, 2, 4, 8, 16, 31],
  '0': [14, 17, 19, 21, 25, 17, 14],
  '1': [4, 12, 4, 4, 4, 4, 14],
  '2': [14, 17, 1, 2, 4, 8, 31],
  '3': [31, 2, 4, 2, 1, 17, 14],
  '4': [2, 6, 10, 18, 31, 2, 2],
  '5': [31, 16, 30, 1, 1, 17, 14],
  '6': [6, 8, 16, 30, 17, 17, 14],
  '7': [31, 1, 2, 4, 8, 8, 8],
  '8': [14, 17, 17, 14, 17, 17, 14],
  '9': [14, 17, 17, 15, 1, 2, 12],
  ' ': [0, 0, 0, 0, 0, 0, 0],
  '.': [0, 0, 0, 0, 0, 12, 12],
  ',': [0, 0, 0, 0, 12, 4, 8],
  '-': [0, 0, 0, 31, 0, 0, 0],
  '/': [0, 1, 2, 4, 8, 16, 0],
  ':': [0, 12, 12, 0, 12, 12, 0],
  '(': [2, 4, 8, 8, 8, 4, 2],
  ')': [8, 4, 2, 2, 2, 4, 8],
  '+': [0, 4, 4, 31, 4, 4, 0],
  '°': [12, 18, 18, 12, 0, 0, 0],
  '%': [24, 25, 2, 4, 8, 19, 3],
  '|': [4, 4, 4, 4, 4, 4, 4],
  '?': [14, 17, 1, 2, 4, 0, 4],
  _: [0, 0, 0, 0, 0, 0, 31],
  k: [16, 16, 18, 20, 24, 20, 18],
  m: [0, 0, 26, 21, 21, 21, 21],
  s: [0, 0, 15, 16, 14, 1, 30],
  x: [0, 0, 17, 10, 4, 10, 17],
};
const GLYPH_W = 5,
  GLYPH_H = 7;

function glyph(ch: string): readonly number[] {
  return FONT[ch] ?? FONT[ch.toUpperCase()] ?? FONT['?'];
}

export interface TextStyle {
  /** Pixels per font pixel (integer >= 1). Default 1. */
  scale?: number;
  /** Text colour. Default white. */
  color?: [number, number, number];
  /** Opacity of the black backdrop (0 = none). Default 0.65. */
  backdrop?: number;
  /** Which point (x, y) is: the text box's top left (default), or its centre. */
  anchor?: 'top-left' | 'center' | 'top-right' | 'bottom-left';
}

/** Width and height in pixels of a text at a scale, backdrop padding included. */
export function textSize(text: string, scale = 1): [number, number] {
  const pad = 2 * scale;
  return [text.length * (GLYPH_W + 1) * scale - scale + 2 * pad, GLYPH_H * scale + 2 * pad];
}

/** Draw text into an RGBA image (row-major, 4 bytes a pixel) in place; clipped at the image's edges. */
export function drawText(
  img: Uint8ClampedArray,
  columns: number,
  rows: number,
  text: string,
  x: number,
  y: number,
  style: TextStyle = {},
): void {
  const s = Math.max(1, Math.round(style.scale ?? 1));
  const color = style.color ?? [255, 255, 255];
  const alpha = style.backdrop ?? 0.65;
  const [w, h] = textSize(text, s);
  let x0 = Math.round(x),
    y0 = Math.round(y);
  const anchor = style.anchor ?? 'top-left';
  if (anchor === 'center') {
    x0 -= Math.round(w / 2);
    y0 -= Math.round(h / 2);
  } else if (anchor === 'top-right') x0 -= w;
  else if (anchor === 'bottom-left') y0 -= h;
  x0 = Math.max(0, Math.min(columns - w, x0));
  y0 = Math.max(0, Math.min(rows - h, y0));
  if (alpha > 0)
    for (let r = Math.max(0, y0); r < Math.min(rows, y0 + h); r++)
      for (let c = Math.max(0, x0); c < Math.min(columns, x0 + w); c++) {
        const o = 4 * (r * columns + c);
        img[o] *= 1 - alpha;
        img[o + 1] *= 1 - alpha;
        img[o + 2] *= 1 - alpha;
      }
  const pad = 2 * s;
  for (let k = 0; k < text.length; k++) {
    const g = glyph(text[k]);
    const gx = x0 + pad + k * (GLYPH_W + 1) * s;
    for (let gr = 0; gr < GLYPH_H; gr++)
      for (let gc = 0; gc < GLYPH_W; gc++) {
        if (!((g[gr] >> (GLYPH_W - 1 - gc)) & 1)) continue;
        for (let dy = 0; dy < s; dy++)
          for (let dx = 0; dx < s; dx++) {
            const c = gx + gc * s + dx,
              r = y0 + pad + gr * s + dy;
            if (c < 0 || r < 0 || c >= columns || r >= rows) continue;
            const o = 4 * (r * columns + c);
            img[o] = color[0];
            img[o + 1] = color[1];
            img[o + 2] = color[2];
          }
      }
  }
}

/** The exposure as the caption says it, e.g. "81 kV 0.66 mAs". */
export function exposureLabel(e: Pick<Exposure, 'kvp' | 'mAs' | 'underexposed'>): string {
  const mAs = e.mAs >= 10 ? e.mAs.toFixed(1) : e.mAs >= 0.1 ? e.mAs.toFixed(2) : e.mAs.toFixed(3);
  return `${Math.round(e.kvp)} kV ${mAs} mAs${e.underexposed ? ' (under target dose)' : ''}`;
}

/**
 * A fluoroscopy image's annotations, as a C-arm draws them: the title (top left), a second line (the
 * exposure, bottom left) and the patient-direction letter at the middle of each edge (the side letter,
 * L or R, in yellow), all over dark backdrops.
 */
export function annotateFluoroscopy(
  img: Uint8ClampedArray,
  g: Pick<CarmGeometry, 'columns' | 'rows'> & CarmGeometry,
  opts: { title?: string; footer?: string } = {},
): void {
  const { columns, rows } = g;
  const s = Math.max(1, Math.round(Math.min(columns, rows) / 256));
  const m = orientationMarkers(g);
  const title = opts.title ?? anglesLabel(g.primaryDeg, g.secondaryDeg);
  drawText(img, columns, rows, title, 4 * s, 4 * s, { scale: s });
  if (opts.footer) drawText(img, columns, rows, opts.footer, 4 * s, rows - 4 * s, { scale: s, anchor: 'bottom-left' });
  // The top and bottom letters sit one text line in from the edge, clear of the title and footer lines.
  const line = textSize('X', s)[1] + 4 * s;
  const half = textSize('X', 2 * s)[1] / 2;
  const at: Record<ImageEdge, [number, number]> = {
    left: [10 * s, rows / 2],
    right: [columns - 10 * s, rows / 2],
    top: [columns / 2, line + half + s],
    bottom: [columns / 2, rows - line - half - s],
  };
  for (const edge of ['left', 'right', 'top', 'bottom'] as const) {
    const letter = m.edges[edge];
    const side = letter === 'L' || letter === 'R';
    drawText(img, columns, rows, letter, at[edge][0], at[edge][1], {
      scale: 2 * s,
      anchor: 'center',
      color: side ? [255, 220, 0] : [255, 255, 255],
    });
  }
}
