/**
 * The cement of stage cement: a deposit at each alar trocar tip and, on request, a leak into a foramen,
 * each sized so that its volume equals the requested ml. Exists because the sizing is a search of its own
 * (a fine grid over the analytic shapes, not the voxels), which the truth records next to the request.
 * Limits: a deposit is an ellipsoid (1 : 0.8 : 1.25 along x, s, a) clipped to sacral cancellous bone and
 * fracture clefts, a leak a sphere clipped to the foramen's channel: no flow, no interdigitation; a volume
 * that does not fit within 5.5 times the radius of the unclipped shape throws a UsageError.
 */
import { UsageError } from '../errors.js';
import type { Point3 } from '../math/vec3.js';
import {
  FORAMEN_NAMES,
  T,
  TISSUE_COUNT,
  depositRadius,
  insideRod,
  type Deposit,
  type ForamenName,
  type PelvisModel,
} from './anatomy.js';
import type { Placement } from './placement.js';
import { r4, round4 } from './truth.js';
import type { CementTruth, ForamenTruth, LeakTruth } from './types.js';

export interface CementRequest {
  /** ml at the left and right trocar tips; 0 = none. */
  cementMl: readonly [number, number];
  leak: ForamenName | undefined;
  leakMl: number;
}

/**
 * Sizes the deposits. `model.rods` must hold the instruments (the trocars at 2 and 3): deposits stay out
 * of the steel. `foramina` is the truth's (the leak starts 4 mm inside the named anterior opening).
 */
export function placeCement(
  model: PelvisModel,
  request: CementRequest,
  foramina: ForamenTruth[],
  place: Placement,
): { deposits: Deposit[]; cement: CementTruth[]; leak?: LeakTruth } {
  const { toWorld } = place;
  const cement: CementTruth[] = [];
  const allowed = new Uint8Array(TISSUE_COUNT);
  allowed[T.S_CANC] = allowed[T.FRACTURE] = allowed[T.SCLEROTIC] = 1;
  const ex: Point3 = [1, 0, 0];
  const axes: [Point3, Point3, Point3] = [ex, model.t0, model.n0];
  const deposits: Deposit[] = [];
  for (const [idx, site] of (['left', 'right'] as const).entries()) {
    const ml = request.cementMl[idx];
    if (ml === 0) continue;
    const trocar = model.rods[2 + idx];
    const d: Deposit = { center: trocar.tip, u: axes, ratios: [1, 0.8, 1.25], rho: 0, allowed, tissue: T.CEMENT };
    const { rho, quadMm3 } = sizeDeposit(model, d, ml * 1000, 0.4, `cement ${site}`);
    d.rho = rho;
    deposits.push(d);
    cement.push({ site, volumeMl: ml, quadratureMl: round4(quadMm3 / 1000), center: r4(toWorld(trocar.tip)) });
  }
  if (!request.leak) return { deposits, cement };
  const f = FORAMEN_NAMES.indexOf(request.leak);
  const allowedLeak = new Uint8Array(TISSUE_COUNT);
  allowedLeak[T.FORAMEN0 + f] = 1;
  // Centre: 4 mm inside the anterior foramen's opening, on its channel axis.
  const c = model.foramina[f][0];
  const len = Math.sqrt(c.dd);
  const open = place.fromWorld(foramina[f].center);
  const tOpen = ((open[0] - c.a[0]) * c.d[0] + (open[1] - c.a[1]) * c.d[1] + (open[2] - c.a[2]) * c.d[2]) / c.dd;
  const t = tOpen - 4 / len;
  const center: Point3 = [c.a[0] + t * c.d[0], c.a[1] + t * c.d[1], c.a[2] + t * c.d[2]];
  const d: Deposit = {
    center,
    u: [
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ],
    ratios: [1, 1, 1],
    rho: 0,
    allowed: allowedLeak,
    tissue: T.LEAK,
  };
  const { rho, quadMm3 } = sizeDeposit(model, d, request.leakMl * 1000, 0.2, `leak ${request.leak}`);
  d.rho = rho;
  deposits.push(d);
  const leak: LeakTruth = {
    foramen: request.leak,
    volumeMl: request.leakMl,
    quadratureMl: round4(quadMm3 / 1000),
    center: r4(toWorld(center)),
  };
  return { deposits, cement, leak };
}

/**
 * Size a deposit so that its volume is `targetMm3`: points on a fine grid (h mm) that the deposit may
 * occupy are ranked by ellipsoidal radius, and rho is set between the n-th and (n+1)-th, n = target/h^3.
 */
function sizeDeposit(
  model: PelvisModel,
  d: Deposit,
  targetMm3: number,
  h: number,
  source: string,
): { rho: number; quadMm3: number } {
  const n = Math.round(targetMm3 / (h * h * h));
  const ratioProduct = d.ratios[0] * d.ratios[1] * d.ratios[2];
  let rhoMax = 1.35 * Math.cbrt(targetMm3 / ((4 / 3) * Math.PI * ratioProduct));
  for (let attempt = 0; attempt < 4; attempt++, rhoMax *= 1.6) {
    const ext = rhoMax * Math.max(...d.ratios);
    const m = Math.ceil(ext / h);
    const radii: number[] = [];
    for (let k = -m; k <= m; k++) {
      for (let j = -m; j <= m; j++) {
        for (let i = -m; i <= m; i++) {
          const x = d.center[0] + (i + 0.5) * h,
            y = d.center[1] + (j + 0.5) * h,
            z = d.center[2] + (k + 0.5) * h;
          const rho = depositRadius(d, x, y, z);
          if (rho > rhoMax) continue;
          let inRod = false;
          for (const r of model.rods) if (insideRod(r, x, y, z)) inRod = true;
          if (inRod || !d.allowed[model.classifyAnatomy(x, y, z)]) continue;
          radii.push(rho);
        }
      }
    }
    if (radii.length > n) {
      radii.sort((a, b) => a - b);
      return { rho: (radii[n - 1] + radii[n]) / 2, quadMm3: n * h * h * h };
    }
  }
  throw new UsageError(`cannot place ${(targetMm3 / 1000).toFixed(2)} ml there: not enough room`, source);
}
