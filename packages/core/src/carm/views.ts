/**
 * Bull's-eye and progress views of a straight path, and whether a C-arm can reach them.
 *
 * In a cone beam a line collapses to a point only when it passes through the focal spot, so a bull's-eye
 * view is angles AND an isocentre: with the central ray along the path and the isocentre on the path's
 * line (we use the target), the source lies on that line and entry and target project to one pixel.
 * Given a fixed isocentre instead, the angles that put the focal spot on the line are solved for
 * (`bullseyeForIsocenter`). The progress view puts the path perpendicular to the central ray; with the
 * isocentre at the path's midpoint the path lies in the plane through the isocentre parallel to the
 * detector, so it is imaged at exactly SID/SOD magnification and shows its true length times that.
 */
import type { Point3 } from '../math/vec3.js';
import {
  CarmError,
  anglesForDetectorDirection,
  anglesReachable,
  detectorDirection,
  type CarmSystem,
} from './geometry.js';

/** The parts of a plan path the C-arm needs (structurally compatible with the plan module's PlanPath). */
export interface PathLike {
  id: string;
  name?: string;
  kind?: string;
  diameterMm: number;
  /** Where the tool goes in, LPS mm. */
  entry: Point3;
  /** Where its tip ends, LPS mm. */
  target: Point3;
}

export interface CarmView {
  primaryDeg: number;
  secondaryDeg: number;
  /** Patient point (LPS mm) to bring to the isocentre (the table position). */
  isocenter: Point3;
  /** Within the system's angle limits. */
  reachable: boolean;
  /**
   * When not reachable: the reachable angles nearest to the wanted view, and how far off they are
   * (bull's-eye: angle between the central ray and the path; progress: the path's tilt out of the
   * plane parallel to the detector).
   */
  alternative?: { primaryDeg: number; secondaryDeg: number; errorDeg: number };
}

export interface PathViews {
  id: string;
  name: string;
  lengthMm: number;
  bullseye: CarmView;
  progress: CarmView;
}

const DEG = Math.PI / 180;

function unit(a: ArrayLike<number>, b: ArrayLike<number>, what: string): Point3 {
  const x = a[0] - b[0],
    y = a[1] - b[1],
    z = a[2] - b[2];
  const n = Math.hypot(x, y, z);
  if (!(n > 1e-9)) throw new CarmError(`${what}: entry and target coincide`);
  return [x / n, y / n, z / n];
}

const dot3 = (a: ArrayLike<number>, b: ArrayLike<number>) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];

/**
 * Minimises `cost(d)` over the angle box of a system: a 1-degree grid, then a shrinking pattern search.
 * Used only to find the nearest reachable alternative, so speed does not matter (about 65k evaluations).
 */
export function minimiseOverLimits(
  system: CarmSystem,
  cost: (d: Point3) => number,
): { primaryDeg: number; secondaryDeg: number; cost: number } {
  const [p0, p1] = system.primaryLimitsDeg,
    [s0, s1] = [Math.max(-90, system.secondaryLimitsDeg[0]), Math.min(90, system.secondaryLimitsDeg[1])];
  const clampP = (x: number) => Math.min(p1, Math.max(p0, x));
  const clampS = (x: number) => Math.min(s1, Math.max(s0, x));
  let best = { primaryDeg: p0, secondaryDeg: s0, cost: Infinity };
  const np = Math.max(1, Math.ceil(p1 - p0)),
    ns = Math.max(1, Math.ceil(s1 - s0));
  for (let i = 0; i <= np; i++) {
    const a = clampP(p0 + ((p1 - p0) * i) / np);
    for (let j = 0; j <= ns; j++) {
      const b = clampS(s0 + ((s1 - s0) * j) / ns);
      const c = cost(detectorDirection(a, b));
      if (c < best.cost) best = { primaryDeg: a, secondaryDeg: b, cost: c };
    }
  }
  for (let step = 1; step > 1e-7; step /= 2) {
    let improved = true;
    while (improved) {
      improved = false;
      for (const [da, db] of [
        [step, 0],
        [-step, 0],
        [0, step],
        [0, -step],
        [step, step],
        [-step, -step],
        [step, -step],
        [-step, step],
      ]) {
        const a = clampP(best.primaryDeg + da),
          b = clampS(best.secondaryDeg + db);
        const c = cost(detectorDirection(a, b));
        if (c < best.cost - 1e-15) {
          best = { primaryDeg: a, secondaryDeg: b, cost: c };
          improved = true;
        }
      }
    }
  }
  return best;
}

/** The view whose detector direction is d (isocentre as given), with its reachability. */
export function viewFromDirection(system: CarmSystem, d: Point3, isocenter: Point3): CarmView {
  const { primaryDeg, secondaryDeg } = anglesForDetectorDirection(d);
  return {
    primaryDeg,
    secondaryDeg,
    isocenter: [...isocenter] as Point3,
    reachable: anglesReachable(system, primaryDeg, secondaryDeg),
  };
}

/**
 * Bull's-eye view: central ray along the path, detector on the entry side (where the surgeon's hand and
 * the tool's hub are), isocentre at the target so that the focal spot lies on the path's line. When that
 * direction is out of reach the opposite one (detector on the target side) is tried; when both are,
 * the view is marked unreachable with the nearest reachable angles.
 */
export function bullseyeView(path: PathLike, system: CarmSystem): CarmView {
  const e = unit(path.entry, path.target, `path "${path.id}"`); // target -> entry: detector toward entry
  const iso: Point3 = [path.target[0], path.target[1], path.target[2]];
  const preferred = viewFromDirection(system, e, iso);
  if (preferred.reachable) return preferred;
  const flipped = viewFromDirection(system, [-e[0], -e[1], -e[2]], iso);
  if (flipped.reachable) return flipped;
  const alt = minimiseOverLimits(system, (d) => Math.acos(Math.min(1, Math.abs(dot3(d, e)))) / DEG);
  return {
    ...preferred,
    alternative: { primaryDeg: alt.primaryDeg, secondaryDeg: alt.secondaryDeg, errorDeg: alt.cost },
  };
}

/**
 * Bull's-eye for a fixed isocentre (the table is not moved): the angles whose focal spot, at SOD from
 * the isocentre, lies on the path's line beyond the target, so entry and target still project to one
 * pixel. Null when the line passes farther than SOD from the isocentre.
 */
export function bullseyeForIsocenter(path: PathLike, system: CarmSystem, isocenter: Point3): CarmView | null {
  const e = unit(path.entry, path.target, `path "${path.id}"`);
  // Source S = target - s e (s > 0 beyond the target), |S - iso| = SOD.
  const w: Point3 = [path.target[0] - isocenter[0], path.target[1] - isocenter[1], path.target[2] - isocenter[2]];
  const b = -dot3(w, e);
  const c = dot3(w, w) - system.sodMm * system.sodMm;
  const disc = b * b - c;
  if (disc < 0) return null;
  const roots = [-b + Math.sqrt(disc), -b - Math.sqrt(disc)].filter((s) => s > 0);
  if (!roots.length) return null;
  // |S - iso|^2 = |w - s e|^2 = s^2 - 2 s (w.e) + |w|^2; with b = -(w.e): s^2 + 2 b s + c = 0.
  const views = roots.map((s) => {
    const S: Point3 = [path.target[0] - s * e[0], path.target[1] - s * e[1], path.target[2] - s * e[2]];
    const d: Point3 = [isocenter[0] - S[0], isocenter[1] - S[1], isocenter[2] - S[2]];
    return viewFromDirection(system, d, isocenter);
  });
  return views.find((v) => v.reachable) ?? views[0];
}

/**
 * Progress view: central ray perpendicular to the path, as close as possible to the neutral AP position
 * (detector anterior), isocentre at the path's midpoint. When the direction nearest AP is out of reach
 * the reachable perpendicular direction nearest to it is taken; when no perpendicular direction is
 * reachable, the view is marked unreachable with the reachable angles of least tilt.
 */
export function progressView(path: PathLike, system: CarmSystem): CarmView {
  const e = unit(path.entry, path.target, `path "${path.id}"`);
  const mid: Point3 = [
    (path.entry[0] + path.target[0]) / 2,
    (path.entry[1] + path.target[1]) / 2,
    (path.entry[2] + path.target[2]) / 2,
  ];
  // Basis of the plane perpendicular to the path; p1 = AP direction projected into it (lateral if the path is AP).
  let ref: Point3 = [0, -1, 0];
  if (Math.abs(dot3(ref, e)) > 0.999) {
    // An AP path: every perpendicular is equally far from AP; prefer a true lateral that can be reached.
    ref = anglesReachable(system, 90, 0) || !anglesReachable(system, -90, 0) ? [1, 0, 0] : [-1, 0, 0];
  }
  const k = dot3(ref, e);
  const p1 = unit([ref[0] - k * e[0], ref[1] - k * e[1], ref[2] - k * e[2]], [0, 0, 0], `path "${path.id}"`);
  const p2: Point3 = [e[1] * p1[2] - e[2] * p1[1], e[2] * p1[0] - e[0] * p1[2], e[0] * p1[1] - e[1] * p1[0]];
  const first = viewFromDirection(system, p1, mid);
  if (first.reachable) return first;
  // Walk the circle outward from p1 in both senses; the first reachable direction is the nearest.
  for (let t = 1; t <= 18000; t++) {
    const th = t * 0.01 * DEG;
    for (const sgn of [1, -1]) {
      const c = Math.cos(th),
        s = sgn * Math.sin(th);
      const d: Point3 = [c * p1[0] + s * p2[0], c * p1[1] + s * p2[1], c * p1[2] + s * p2[2]];
      const v = viewFromDirection(system, d, mid);
      if (v.reachable) return v;
    }
  }
  const alt = minimiseOverLimits(system, (d) => Math.asin(Math.min(1, Math.abs(dot3(d, e)))) / DEG);
  return { ...first, alternative: { primaryDeg: alt.primaryDeg, secondaryDeg: alt.secondaryDeg, errorDeg: alt.cost } };
}

export function pathViews(path: PathLike, system: CarmSystem): PathViews {
  return {
    id: path.id,
    name: path.name ?? path.id,
    lengthMm: Math.hypot(
      path.target[0] - path.entry[0],
      path.target[1] - path.entry[1],
      path.target[2] - path.entry[2],
    ),
    bullseye: bullseyeView(path, system),
    progress: progressView(path, system),
  };
}
