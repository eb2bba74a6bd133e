/**
 * Derivative-free minimization for small problems (a handful of parameters, objectives sampled on
 * voxel grids, so gradients are noisy or undefined): Nelder-Mead with restarts, and a multistart
 * driver that runs it from several points and keeps the best.
 *
 * Nelder-Mead as in Lagarias et al., "Convergence properties of the Nelder-Mead simplex method in low
 * dimensions" (SIAM J. Optim. 9, 1998): reflection 1, expansion 2, contraction 1/2, shrink 1/2. A
 * simplex can collapse onto a non-stationary point; restarting with a fresh simplex at the best point
 * until a restart no longer improves is the usual remedy (Kelley, "Detection and remediation of
 * stagnation in the Nelder-Mead algorithm", 1999).
 */
import { UsageError } from '../errors.js';

export type Objective = (x: number[]) => number;

export interface NelderMeadOptions {
  /** Edge length of the initial simplex per parameter (or one for all). Default 1. */
  initialStep?: number | readonly number[];
  /** Stop when every vertex lies within this distance (max-norm) of the best one. Default 1e-6. */
  xTolerance?: number;
  /** ... and the values differ by at most this much. Default 1e-9. */
  fTolerance?: number;
  /** Budget of objective evaluations over all restarts. Default 2000 * n. */
  maxEvaluations?: number;
  /** Fresh simplices started at the best point after convergence, while they improve. Default 3. */
  maxRestarts?: number;
}

export interface OptimizeResult {
  /** Best parameters found. */
  x: number[];
  /** Objective value there. */
  value: number;
  evaluations: number;
  /** True when the tolerances were met (not stopped by the evaluation budget). */
  converged: boolean;
}

function validateStart(x0: ArrayLike<number>): number[] {
  if (x0.length < 1) throw new UsageError('optimizer needs at least one parameter');
  const x = Array.from(x0);
  if (!x.every(Number.isFinite)) throw new UsageError(`optimizer start point is not finite: [${x.join(', ')}]`);
  return x;
}

/** Minimize f from x0. NaN values count as +Infinity, so a caller can reject a region by returning NaN or Infinity. */
export function nelderMead(f: Objective, x0: ArrayLike<number>, options: NelderMeadOptions = {}): OptimizeResult {
  const start = validateStart(x0);
  const n = start.length;
  const steps =
    typeof options.initialStep === 'number' || options.initialStep === undefined
      ? new Array<number>(n).fill(options.initialStep ?? 1)
      : Array.from(options.initialStep);
  if (steps.length !== n || !steps.every((s) => Number.isFinite(s) && s !== 0)) {
    throw new UsageError(`initialStep needs ${n} finite non-zero values`);
  }
  const xTol = options.xTolerance ?? 1e-6;
  const fTol = options.fTolerance ?? 1e-9;
  const maxEval = options.maxEvaluations ?? 2000 * n;
  const maxRestarts = options.maxRestarts ?? 3;
  let evaluations = 0;
  const evalf = (x: number[]): number => {
    evaluations++;
    const v = f(x.slice());
    return Number.isNaN(v) ? Infinity : v;
  };

  let best = { x: start, value: evalf(start) };
  let converged = false;
  for (let restart = 0; restart <= maxRestarts && evaluations < maxEval; restart++) {
    const run = simplexRun(evalf, best.x, best.value, steps, xTol, fTol, () => evaluations >= maxEval);
    converged = run.converged;
    const improved = run.value < best.value - fTol;
    if (run.value <= best.value) best = { x: run.x, value: run.value };
    if (!improved && restart > 0) break;
  }
  return { x: best.x, value: best.value, evaluations, converged };
}

function simplexRun(
  evalf: (x: number[]) => number,
  x0: number[],
  f0: number,
  steps: number[],
  xTol: number,
  fTol: number,
  outOfBudget: () => boolean,
): { x: number[]; value: number; converged: boolean } {
  const n = x0.length;
  const pts: number[][] = [x0.slice()];
  const vals: number[] = [f0];
  for (let d = 0; d < n; d++) {
    const p = x0.slice();
    p[d] += steps[d];
    pts.push(p);
    vals.push(evalf(p));
  }
  const order = Array.from({ length: n + 1 }, (_, i) => i);
  const centroid = new Array<number>(n);
  const along = (c: number[], worst: number[], t: number) => c.map((ci, d) => ci + t * (worst[d] - ci));
  let converged = false;
  while (!outOfBudget()) {
    order.sort((a, b) => vals[a] - vals[b]);
    const b = order[0],
      w = order[n],
      sw = order[n - 1];
    // Converged: simplex small around the best vertex and values flat.
    let size = 0;
    for (const i of order) for (let d = 0; d < n; d++) size = Math.max(size, Math.abs(pts[i][d] - pts[b][d]));
    if (size <= xTol && Math.abs(vals[w] - vals[b]) <= fTol + 1e-12 * Math.abs(vals[b])) {
      converged = true;
      break;
    }
    if (!Number.isFinite(vals[b]) && size <= xTol) break; // nowhere finite nearby
    centroid.fill(0);
    for (const i of order) if (i !== w) for (let d = 0; d < n; d++) centroid[d] += pts[i][d] / n;
    const xr = along(centroid, pts[w], -1);
    const fr = evalf(xr);
    if (fr < vals[b]) {
      const xe = along(centroid, pts[w], -2);
      const fe = evalf(xe);
      if (fe < fr) {
        pts[w] = xe;
        vals[w] = fe;
      } else {
        pts[w] = xr;
        vals[w] = fr;
      }
      continue;
    }
    if (fr < vals[sw]) {
      pts[w] = xr;
      vals[w] = fr;
      continue;
    }
    // Contraction: outside when the reflected point beats the worst, inside otherwise.
    const outside = fr < vals[w];
    const xc = along(centroid, pts[w], outside ? -0.5 : 0.5);
    const fc = evalf(xc);
    if (outside ? fc <= fr : fc < vals[w]) {
      pts[w] = xc;
      vals[w] = fc;
      continue;
    }
    // Shrink toward the best vertex.
    for (const i of order) {
      if (i === b) continue;
      pts[i] = pts[i].map((v, d) => pts[b][d] + 0.5 * (v - pts[b][d]));
      vals[i] = evalf(pts[i]);
    }
  }
  let bi = 0;
  for (let i = 1; i <= n; i++) if (vals[i] < vals[bi]) bi = i;
  return { x: pts[bi], value: vals[bi], converged };
}

export interface MultistartResult extends OptimizeResult {
  /** Every local run, in the order of the starts. */
  runs: OptimizeResult[];
  /** Index in `starts` of the run that gave the best value. */
  bestStart: number;
}

/**
 * Run Nelder-Mead (with restarts) from each start point and keep the best: a global search for
 * objectives with several basins. Ties keep the earlier start, so results do not depend on timing.
 */
export function multistart(
  f: Objective,
  starts: readonly ArrayLike<number>[],
  options: NelderMeadOptions = {},
): MultistartResult {
  if (starts.length === 0) throw new UsageError('multistart needs at least one start point');
  const runs = starts.map((s) => nelderMead(f, s, options));
  let bestStart = 0;
  for (let i = 1; i < runs.length; i++) if (runs[i].value < runs[bestStart].value) bestStart = i;
  const best = runs[bestStart];
  return {
    x: best.x,
    value: best.value,
    evaluations: runs.reduce((s, r) => s + r.evaluations, 0),
    converged: best.converged,
    runs,
    bestStart,
  };
}
