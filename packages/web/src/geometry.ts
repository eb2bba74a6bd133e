/**
 * Display geometry: screen planes in patient space (LPS mm). A plane view shows the plane through
 * `origin` spanned by `u` (screen right) and `v` (screen down), both unit vectors; `mmPerPx` is the zoom.
 */
import { cross, dot, normalize, sub, type Point3, type Volume } from '@corridor/core';

export interface ScreenFrame {
  /** Patient point at the centre of the screen, LPS mm. */
  origin: Point3;
  u: Point3;
  v: Point3;
  /** u x v: toward the viewer is -n (screen "into" the page is n). */
  n: Point3;
  mmPerPx: number;
  width: number;
  height: number;
}

export function screenToPatient(f: ScreenFrame, x: number, y: number): Point3 {
  const a = (x - f.width / 2) * f.mmPerPx,
    b = (y - f.height / 2) * f.mmPerPx;
  return [
    f.origin[0] + a * f.u[0] + b * f.v[0],
    f.origin[1] + a * f.u[1] + b * f.v[1],
    f.origin[2] + a * f.u[2] + b * f.v[2],
  ];
}

/** Screen position of p and its signed distance from the plane (mm, along n). */
export function patientToScreen(f: ScreenFrame, p: ArrayLike<number>): { x: number; y: number; depthMm: number } {
  const d = sub(p, f.origin);
  return { x: f.width / 2 + dot(d, f.u) / f.mmPerPx, y: f.height / 2 + dot(d, f.v) / f.mmPerPx, depthMm: dot(d, f.n) };
}

/** The eight corner voxel centres of a volume, LPS mm. */
export function volumeCorners(v: Volume): Point3[] {
  const m = v.indexToPatient;
  const out: Point3[] = [];
  for (const k of [0, v.dims[2] - 1])
    for (const j of [0, v.dims[1] - 1])
      for (const i of [0, v.dims[0] - 1]) {
        out.push([
          m[0] * i + m[1] * j + m[2] * k + m[3],
          m[4] * i + m[5] * j + m[6] * k + m[7],
          m[8] * i + m[9] * j + m[10] * k + m[11],
        ]);
      }
  return out;
}

export function volumeCenter(v: Volume): Point3 {
  const c = volumeCorners(v);
  return [(c[0][0] + c[7][0]) / 2, (c[0][1] + c[7][1]) / 2, (c[0][2] + c[7][2]) / 2];
}

/** Two unit vectors perpendicular to d and to each other; the first lies in the axial plane when it can. */
export function perpendiculars(d: ArrayLike<number>): [Point3, Point3] {
  const dn = normalize(d);
  // Prefer a first axis without a z component so the along-path view keeps the head up when it can.
  let a = cross(dn, [0, 0, 1]);
  if (Math.hypot(a[0], a[1], a[2]) < 1e-3) a = cross(dn, [0, 1, 0]);
  a = normalize(a);
  const b = normalize(cross(dn, a));
  return [a, b];
}

/** Rotate v about the unit axis k by angle (radians), Rodrigues' formula. */
export function rotateAbout(v: ArrayLike<number>, k: ArrayLike<number>, angleRad: number): Point3 {
  const c = Math.cos(angleRad),
    s = Math.sin(angleRad);
  const kxv = cross(k, v);
  const kv = dot(k, v);
  return [
    v[0] * c + kxv[0] * s + k[0] * kv * (1 - c),
    v[1] * c + kxv[1] * s + k[1] * kv * (1 - c),
    v[2] * c + kxv[2] * s + k[2] * kv * (1 - c),
  ];
}

export const fmt1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '–');
export const fmtPoint = (p: ArrayLike<number>): string => `(${fmt1(p[0])}, ${fmt1(p[1])}, ${fmt1(p[2])}) mm`;
