/**
 * The plan projected onto a fluoroscopic frame: as geometry in pixel coordinates (for crisp drawing in
 * the browser) and rasterised onto a grey image (for PNG output and DICOM frames).
 */
import type { Point3 } from '../math/vec3.js';
import { projectPoint, type Mat34 } from './geometry.js';
import type { PathLike } from './views.js';

export type Px = [number, number];

export interface PathOverlay {
  id: string;
  name: string;
  diameterMm: number;
  /** Projected entry and target, pixels (column, row). */
  entryPx: Px;
  targetPx: Px;
  /** Projected length, pixels. */
  lengthPx: number;
  /**
   * The tool's silhouette at its diameter: a quadrilateral (entry side +, target side +, target side -,
   * entry side -) from the cylinder's edges facing the source.
   */
  outline: Px[];
  /**
   * The tool's cross-section at the entry, as a circle in pixels: the ring shown at the bull's-eye
   * (its radius is measured across the silhouette, so with non-square pixels it is an approximation).
   */
  ring: { center: Px; radiusPx: number };
  /** True when the path is seen end-on (projected length under the tool's diameter): draw the ring. */
  endOn: boolean;
  /** Both ends in front of the source and inside the image. */
  inImage: boolean;
}

/** Focal spot of a projection matrix: its right null vector (the centre of projection). */
export function projectionCenter(P: Mat34): Point3 {
  // Solve M c = -p4 with M the left 3x3 (Cramer's rule).
  const m = [P[0], P[1], P[2], P[4], P[5], P[6], P[8], P[9], P[10]];
  const b = [-P[3], -P[7], -P[11]];
  const det = (a: number[]) =>
    a[0] * (a[4] * a[8] - a[5] * a[7]) - a[1] * (a[3] * a[8] - a[5] * a[6]) + a[2] * (a[3] * a[7] - a[4] * a[6]);
  const D = det(m);
  const col = (i: number) => {
    const t = m.slice();
    t[i] = b[0];
    t[3 + i] = b[1];
    t[6 + i] = b[2];
    return det(t) / D;
  };
  return [col(0), col(1), col(2)];
}

/**
 * Overlay geometry of paths under a projection. `columns`/`rows` decide `inImage` only; the pixel size
 * at a point comes from the matrix itself (the projection of a small perpendicular offset).
 */
export function overlayGeometry(P: Mat34, paths: readonly PathLike[], columns: number, rows: number): PathOverlay[] {
  const S = projectionCenter(P);
  return paths.map((p) => {
    const e = projectPoint(P, p.entry, [0, 0]),
      t = projectPoint(P, p.target, [0, 0]);
    const entryPx: Px = [e[0], e[1]],
      targetPx: Px = [t[0], t[1]];
    const r = p.diameterMm / 2;
    const axis = [p.target[0] - p.entry[0], p.target[1] - p.entry[1], p.target[2] - p.entry[2]];
    const side = (q: Point3): Point3 => {
      // Offset perpendicular to the axis and to the ray through q: the silhouette edge of the cylinder.
      const ray = [q[0] - S[0], q[1] - S[1], q[2] - S[2]];
      let n: number[] = [
        axis[1] * ray[2] - axis[2] * ray[1],
        axis[2] * ray[0] - axis[0] * ray[2],
        axis[0] * ray[1] - axis[1] * ray[0],
      ];
      let len = Math.hypot(n[0], n[1], n[2]);
      if (len < 1e-9 * Math.hypot(...axis) * Math.hypot(ray[0], ray[1], ray[2])) {
        // End-on: any perpendicular to the ray will do.
        n = Math.abs(ray[0]) < 0.9 * Math.hypot(ray[0], ray[1], ray[2]) ? [0, ray[2], -ray[1]] : [ray[1], -ray[0], 0];
        len = Math.hypot(n[0], n[1], n[2]);
      }
      return [(n[0] / len) * r, (n[1] / len) * r, (n[2] / len) * r];
    };
    const se = side(p.entry),
      st = side(p.target);
    const pr = (q: Point3, o: Point3, s: number): Px => {
      const x = projectPoint(P, [q[0] + s * o[0], q[1] + s * o[1], q[2] + s * o[2]], [0, 0]);
      return [x[0], x[1]];
    };
    const outline = [pr(p.entry, se, 1), pr(p.target, st, 1), pr(p.target, st, -1), pr(p.entry, se, -1)];
    const radiusPx = Math.hypot(outline[0][0] - outline[3][0], outline[0][1] - outline[3][1]) / 2;
    const lengthPx = Math.hypot(t[0] - e[0], t[1] - e[1]);
    const inside = (q: ArrayLike<number>) =>
      Number.isFinite(q[0]) && q[0] >= -0.5 && q[1] >= -0.5 && q[0] <= columns - 0.5 && q[1] <= rows - 0.5;
    return {
      id: p.id,
      name: p.name ?? p.id,
      diameterMm: p.diameterMm,
      entryPx,
      targetPx,
      lengthPx,
      outline,
      ring: { center: entryPx, radiusPx },
      endOn: lengthPx < 2 * radiusPx,
      inImage: inside(e) && inside(t),
    };
  });
}

// --- rasterisation -----------------------------------------------------------------------------------

export type Rgb = [number, number, number];

export interface OverlayStyle {
  line: Rgb;
  outline: Rgb;
  entry: Rgb;
  target: Rgb;
  ring: Rgb;
  /** Line half-width, pixels. */
  halfWidthPx: number;
}

export const DEFAULT_OVERLAY_STYLE: OverlayStyle = {
  line: [255, 214, 0],
  outline: [0, 200, 255],
  entry: [40, 220, 70],
  target: [255, 60, 60],
  ring: [255, 0, 220],
  halfWidthPx: 1,
};

/** An RGBA image (row-major, 4 bytes per pixel) from grey levels. */
export function grayToRgba(gray: ArrayLike<number>, columns: number, rows: number): Uint8ClampedArray {
  const out = new Uint8ClampedArray(columns * rows * 4);
  for (let i = 0; i < columns * rows; i++) {
    const g = gray[i];
    out[4 * i] = g;
    out[4 * i + 1] = g;
    out[4 * i + 2] = g;
    out[4 * i + 3] = 255;
  }
  return out;
}

function blend(img: Uint8ClampedArray, columns: number, rows: number, c: number, r: number, rgb: Rgb, alpha: number) {
  if (c < 0 || r < 0 || c >= columns || r >= rows || !(alpha > 0)) return;
  const a = alpha > 1 ? 1 : alpha;
  const o = 4 * (r * columns + c);
  img[o] = img[o] + (rgb[0] - img[o]) * a;
  img[o + 1] = img[o + 1] + (rgb[1] - img[o + 1]) * a;
  img[o + 2] = img[o + 2] + (rgb[2] - img[o + 2]) * a;
}

/** Antialiased segment: coverage from the distance of each pixel centre to the segment. */
export function drawSegment(
  img: Uint8ClampedArray,
  columns: number,
  rows: number,
  a: Px,
  b: Px,
  rgb: Rgb,
  halfWidthPx: number,
): void {
  if (![a[0], a[1], b[0], b[1]].every(Number.isFinite)) return;
  const pad = halfWidthPx + 1;
  const c0 = Math.max(0, Math.floor(Math.min(a[0], b[0]) - pad)),
    c1 = Math.min(columns - 1, Math.ceil(Math.max(a[0], b[0]) + pad));
  const r0 = Math.max(0, Math.floor(Math.min(a[1], b[1]) - pad)),
    r1 = Math.min(rows - 1, Math.ceil(Math.max(a[1], b[1]) + pad));
  const dx = b[0] - a[0],
    dy = b[1] - a[1];
  const L2 = dx * dx + dy * dy;
  for (let r = r0; r <= r1; r++) {
    for (let c = c0; c <= c1; c++) {
      let t = L2 > 0 ? ((c - a[0]) * dx + (r - a[1]) * dy) / L2 : 0;
      t = t < 0 ? 0 : t > 1 ? 1 : t;
      const d = Math.hypot(c - (a[0] + t * dx), r - (a[1] + t * dy));
      blend(img, columns, rows, c, r, rgb, halfWidthPx + 0.5 - d);
    }
  }
}

/** Antialiased circle outline (ring) or disc. */
export function drawCircle(
  img: Uint8ClampedArray,
  columns: number,
  rows: number,
  center: Px,
  radiusPx: number,
  rgb: Rgb,
  halfWidthPx: number,
  filled = false,
): void {
  if (!Number.isFinite(center[0]) || !Number.isFinite(center[1]) || !(radiusPx >= 0)) return;
  const pad = radiusPx + halfWidthPx + 1;
  for (let r = Math.max(0, Math.floor(center[1] - pad)); r <= Math.min(rows - 1, Math.ceil(center[1] + pad)); r++) {
    for (
      let c = Math.max(0, Math.floor(center[0] - pad));
      c <= Math.min(columns - 1, Math.ceil(center[0] + pad));
      c++
    ) {
      const d = Math.hypot(c - center[0], r - center[1]);
      const cover = filled ? radiusPx + 0.5 - d : halfWidthPx + 0.5 - Math.abs(d - radiusPx);
      blend(img, columns, rows, c, r, rgb, cover);
    }
  }
}

/**
 * Draws overlays onto an RGBA image in place: outline, path line, entry disc, target cross, and the ring
 * when the path is seen end-on. `unverified` adds a dashed frame border: the geometry was partly assumed.
 */
export function drawOverlay(
  img: Uint8ClampedArray,
  columns: number,
  rows: number,
  overlays: readonly PathOverlay[],
  opts: { style?: Partial<OverlayStyle>; unverified?: boolean } = {},
): Uint8ClampedArray {
  const st = { ...DEFAULT_OVERLAY_STYLE, ...(opts.style ?? {}) };
  const w = st.halfWidthPx;
  for (const o of overlays) {
    const q = o.outline;
    for (let i = 0; i < 4; i++) drawSegment(img, columns, rows, q[i], q[(i + 1) % 4], st.outline, w * 0.6);
    drawSegment(img, columns, rows, o.entryPx, o.targetPx, st.line, w);
    if (o.endOn) drawCircle(img, columns, rows, o.ring.center, Math.max(o.ring.radiusPx, 3), st.ring, w);
    drawCircle(img, columns, rows, o.entryPx, 2.5 * w + 1, st.entry, w, true);
    const s = 3 * w + 2;
    const [tc, tr] = o.targetPx;
    drawSegment(img, columns, rows, [tc - s, tr - s], [tc + s, tr + s], st.target, w);
    drawSegment(img, columns, rows, [tc - s, tr + s], [tc + s, tr - s], st.target, w);
  }
  if (opts.unverified) {
    const dash = Math.max(6, Math.round(columns / 40));
    const col: Rgb = [255, 140, 0];
    for (let x = 0; x < columns; x += 2 * dash) {
      drawSegment(img, columns, rows, [x, 1], [Math.min(columns - 1, x + dash), 1], col, 1.5);
      drawSegment(img, columns, rows, [x, rows - 2], [Math.min(columns - 1, x + dash), rows - 2], col, 1.5);
    }
    for (let y = 0; y < rows; y += 2 * dash) {
      drawSegment(img, columns, rows, [1, y], [1, Math.min(rows - 1, y + dash)], col, 1.5);
      drawSegment(img, columns, rows, [columns - 2, y], [columns - 2, Math.min(rows - 1, y + dash)], col, 1.5);
    }
  }
  return img;
}
