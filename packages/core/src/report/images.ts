/**
 * The procedure report's key images as RGBA rasters (row-major, 4 bytes a pixel), drawn with core's own
 * reslice, DRR and overlay code: the plan on a slice of the CBCT along each path, the plan over a
 * virtual fluoroscopy (DRR) at a view used, the plan over a fluoroscopy frame (real or virtual, motion
 * corrected when it was), and the cement against the nearest foramen. Pure; the node
 * encodePng (png.ts) makes them PNG.
 */
import type { Point3 } from '../math/vec3.js';
import type { Volume } from '../volume/volume.js';
import { reslicePlane } from '../volume/reslice.js';
import { drawCircle, drawOverlay, drawSegment, grayToRgba, overlayGeometry, type Rgb } from '../carm/overlay.js';
import { carmGeometry, projectionMatrix, type CarmGeometry, type CarmSystem } from '../carm/geometry.js';
import { mat4FromRows, mat4TransformPoint } from '../math/mat4.js';
import { UsageError } from '../errors.js';
import { prepareDrrVolume, renderLineIntegrals } from '../drr/drrVolume.js';
import { fluoroscopyImage } from '../drr/fluoro.js';
import { annotateFluoroscopy, drawText } from '../drr/annotate.js';
import { anglesText } from './model.js';
import type { PathLike } from '../carm/views.js';

export interface KeyImage {
  /** Short name for files: 'plan-s1', 'drr-outlet', 'cement-scan-2'. */
  id: string;
  title: string;
  caption: string;
  width: number;
  height: number;
  rgba: Uint8ClampedArray;
}

type V = [number, number, number];
const sub = (a: ArrayLike<number>, b: ArrayLike<number>): V => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const unit = (a: ArrayLike<number>): V => {
  const n = Math.hypot(a[0], a[1], a[2]);
  return [a[0] / n, a[1] / n, a[2] / n];
};

/** A plane through `center` with u along `along` and v the part of `down` (else `alt`) perpendicular to it. */
function planeAround(center: Point3, along: V, down: V, alt: V, fovMm: number, size: number) {
  const u = unit(along);
  let w = sub(down, scaleV(u, dot(down, u)));
  if (Math.hypot(w[0], w[1], w[2]) < 0.2) w = sub(alt, scaleV(u, dot(alt, u)));
  const v = unit(w);
  const px = fovMm / size;
  const half = ((size - 1) / 2) * px;
  const origin: V = [0, 1, 2].map((i) => center[i] - u[i] * half - v[i] * half) as V;
  const toPx = (p: ArrayLike<number>): [number, number] => {
    const d = sub(p, origin);
    return [dot(d, u) / px, dot(d, v) / px];
  };
  return { plane: { origin, u, v, pixelSizeMm: px, width: size, height: size }, toPx };
}

function scaleV(a: ArrayLike<number>, k: number): V {
  return [a[0] * k, a[1] * k, a[2] * k];
}

/** HU to grey with a bone window (centre 300, width 1800 by default). */
function windowed(values: ArrayLike<number>, center = 300, width = 1800): Uint8Array {
  const g = new Uint8Array(values.length);
  const lo = center - width / 2;
  for (let i = 0; i < values.length; i++) {
    const t = ((values[i] - lo) / width) * 255;
    g[i] = t < 0 ? 0 : t > 255 ? 255 : t;
  }
  return g;
}

const PLAN_GREEN: Rgb = [60, 230, 90];
const ACHIEVED_ORANGE: Rgb = [255, 150, 30];

/**
 * The plan on a slice of `volume` containing the whole path (u along it, v toward the feet, or toward
 * the back for a cranio-caudal path), the placed instrument (when given) drawn over it in orange.
 */
export function planSliceImage(
  volume: Volume,
  path: PathLike,
  opts: { sizePx?: number; achieved?: { outerEnd: Point3; tip: Point3 }; label?: string } = {},
): KeyImage {
  const size = opts.sizePx ?? 320;
  const d = sub(path.target, path.entry);
  const len = Math.hypot(d[0], d[1], d[2]);
  const center: Point3 = [0, 1, 2].map((i) => (path.entry[i] + path.target[i]) / 2) as Point3;
  const { plane, toPx } = planeAround(center, d, [0, 0, -1], [0, 1, 0], len * 1.3 + 30, size);
  const rgba = grayToRgba(windowed(reslicePlane(null, volume, plane, { outside: -1024 })), size, size);
  const w = Math.max(1, size / 256);
  if (opts.achieved)
    drawSegment(rgba, size, size, toPx(opts.achieved.outerEnd), toPx(opts.achieved.tip), ACHIEVED_ORANGE, w);
  drawSegment(rgba, size, size, toPx(path.entry), toPx(path.target), PLAN_GREEN, w);
  drawCircle(rgba, size, size, toPx(path.entry), 2.5 * w + 1, PLAN_GREEN, w, true);
  const [tc, tr] = toPx(path.target);
  const s = 3 * w + 2;
  drawSegment(rgba, size, size, [tc - s, tr - s], [tc + s, tr + s], PLAN_GREEN, w);
  drawSegment(rgba, size, size, [tc - s, tr + s], [tc + s, tr - s], PLAN_GREEN, w);
  const name = path.name ?? path.id;
  drawText(rgba, size, size, `${opts.label ?? 'CT'}: ${name}`, 4, 4, { scale: Math.round(w) });
  return {
    id: `plan-${path.id}`,
    title: `${name} on the ${opts.label ?? 'CT'}`,
    caption:
      `Slice containing the planned path (green, entry disc, target cross, ${len.toFixed(1)} mm)` +
      (opts.achieved ? '; the placed instrument in orange.' : '.'),
    width: size,
    height: size,
    rgba,
  };
}

/** The plan over a noise-free virtual fluoroscopy of `volume` at the given C-arm pose. */
export function drrOverlayImage(
  volume: Volume,
  paths: readonly PathLike[],
  system: CarmSystem,
  pose: { primaryDeg: number; secondaryDeg: number; isocenter: Point3; label: string },
  opts: { sizePx?: number } = {},
): KeyImage {
  const g = carmGeometry(system, pose, { size: opts.sizePx ?? 384 });
  const dv = prepareDrrVolume(volume, { attenuation: { kvp: system.kvp }, wasm: false });
  const li = renderLineIntegrals(dv, g);
  const img = fluoroscopyImage(li, g.columns, g.rows, { noiseFree: true });
  const angles = anglesText(pose.primaryDeg, pose.secondaryDeg);
  const k = fluoroOverlayImage({ gray: img.gray, geometry: g }, paths, { title: `DRR ${pose.label}: ${angles}` });
  return {
    ...k,
    id: `drr-${pose.label.replace(/[^A-Za-z0-9]+/g, '-').toLowerCase()}`,
    title: `Virtual fluoroscopy, ${pose.label} (${angles})`,
    caption: `Planned paths projected on a DRR at the ${pose.label} view (${system.name}).`,
  };
}

const BEFORE_GREY: Rgb = [170, 170, 170];

/**
 * The plan over a fluoroscopy frame (a real XA/RF frame or a virtual one, grey levels row-major with row
 * 0 at the top) for the frame's geometry, with the C-arm's annotations. With `planningToCurrent` (4 x 4
 * rows, a motion correction) the paths are moved by it and the uncorrected plan is drawn under them in
 * grey; `unverified` marks a geometry partly assumed (dashed border).
 */
export function fluoroOverlayImage(
  frame: { gray: ArrayLike<number>; geometry: CarmGeometry },
  paths: readonly PathLike[],
  opts: {
    title?: string;
    id?: string;
    caption?: string;
    planningToCurrent?: ArrayLike<number> | ReadonlyArray<ArrayLike<number>>;
    unverified?: boolean;
  } = {},
): KeyImage {
  const g = frame.geometry;
  const { columns, rows } = g;
  if (frame.gray.length !== columns * rows)
    throw new UsageError(`a fluoroscopy frame of ${frame.gray.length} pixels is not ${columns} x ${rows}`);
  const P = projectionMatrix(g);
  const rgba = grayToRgba(frame.gray, columns, rows);
  let shown = paths;
  if (opts.planningToCurrent) {
    const m = mat4FromRows(opts.planningToCurrent);
    const move = (p: Point3): Point3 => {
      const q = mat4TransformPoint([0, 0, 0], m, p);
      return [q[0], q[1], q[2]];
    };
    shown = paths.map((p) => ({ ...p, entry: move(p.entry), target: move(p.target) }));
    const w = Math.max(1, columns / 384);
    for (const o of overlayGeometry(P, paths, columns, rows)) {
      drawSegment(rgba, columns, rows, o.entryPx, o.targetPx, BEFORE_GREY, w);
      drawCircle(rgba, columns, rows, o.entryPx, 2.5 * w + 1, BEFORE_GREY, w);
      drawCircle(rgba, columns, rows, o.targetPx, 2.5 * w + 1, BEFORE_GREY, w);
    }
  }
  drawOverlay(rgba, columns, rows, overlayGeometry(P, shown, columns, rows), { unverified: !!opts.unverified });
  const angles = anglesText(g.primaryDeg, g.secondaryDeg);
  const title = opts.title ?? `Fluoroscopy: ${angles}`;
  annotateFluoroscopy(rgba, g, { title });
  return {
    id: opts.id ?? 'fluoro',
    title,
    caption:
      opts.caption ??
      `Planned paths projected on the fluoroscopy frame (${angles})` +
        (opts.planningToCurrent ? ', moved by the motion correction (the uncorrected plan in grey).' : '.'),
    width: columns,
    height: rows,
    rgba,
  };
}

/**
 * The cement against the nearest critical structure: a slice through the cement point nearest the
 * structure and the structure's point nearest the cement, the line between them and its length; the
 * critical labels' outline (when labels on the same frame are given) in red.
 */
export function cementSliceImage(
  scan: Volume,
  nearest: { name: string; distanceMm: number | null; cementAt: Point3; at: Point3 },
  opts: { sizePx?: number; labels?: Volume; criticalLabels?: readonly number[]; scanLabel?: string } = {},
): KeyImage {
  const size = opts.sizePx ?? 320;
  const center: Point3 = [0, 1, 2].map((i) => (nearest.cementAt[i] + nearest.at[i]) / 2) as Point3;
  const gap = sub(nearest.at, nearest.cementAt);
  const along: V = Math.hypot(gap[0], gap[1], gap[2]) > 0.5 ? gap : [1, 0, 0];
  const { plane, toPx } = planeAround(center, along, [0, 0, -1], [0, 1, 0], 70, size);
  const rgba = grayToRgba(windowed(reslicePlane(null, scan, plane, { outside: -1024 })), size, size);
  if (opts.labels && opts.criticalLabels?.length) {
    const lab = reslicePlane(null, opts.labels, plane, { interpolation: 'nearest' });
    const crit = new Set(opts.criticalLabels);
    const red: Rgb = [240, 50, 50];
    for (let y = 1; y < size - 1; y++)
      for (let x = 1; x < size - 1; x++) {
        const i = y * size + x;
        if (!crit.has(lab[i])) continue;
        if (lab[i - 1] !== lab[i] || lab[i + 1] !== lab[i] || lab[i - size] !== lab[i] || lab[i + size] !== lab[i]) {
          rgba[4 * i] = red[0];
          rgba[4 * i + 1] = red[1];
          rgba[4 * i + 2] = red[2];
        }
      }
  }
  const w = Math.max(1, size / 256);
  const yellow: Rgb = [255, 230, 40];
  drawSegment(rgba, size, size, toPx(nearest.cementAt), toPx(nearest.at), yellow, w);
  drawCircle(rgba, size, size, toPx(nearest.cementAt), 2 * w + 1, yellow, w, true);
  drawCircle(rgba, size, size, toPx(nearest.at), 2 * w + 1, [240, 50, 50], w, true);
  const dist = nearest.distanceMm === null ? 'beyond reach' : `${nearest.distanceMm.toFixed(1)} mm`;
  drawText(rgba, size, size, `${opts.scanLabel ?? 'cement'}: ${nearest.name} ${dist}`, 4, 4, {
    scale: Math.round(w),
  });
  return {
    id: `cement-${nearest.name.replace(/[^A-Za-z0-9]+/g, '-').toLowerCase()}`,
    title: `Cement against ${nearest.name} (${dist})`,
    caption:
      `Slice through the cement front (yellow disc) and the nearest point of ${nearest.name} (red disc)` +
      (opts.labels ? ', critical structures outlined in red.' : '.'),
    width: size,
    height: size,
    rgba,
  };
}
