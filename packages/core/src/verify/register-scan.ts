/**
 * A verification or cement scan from another scanner (or another frame) brought into the plan's frame:
 * rigid registration of the scan (moving) to the planning or baseline volume (fixed), with the metal
 * and the cement left out of the match on both sides, so that neither pulls the registration: the
 * instruments are new in the scan, and the cement is what the cement check must find, not fit.
 *
 * Left out: every voxel at or above `excludeHu` (default EXCLUDE_HU: above any cortex, below cement
 * and steel) and every voxel within `excludeMarginMm` (default EXCLUDE_MARGIN_MM) of one (the blurred
 * edge, a CBCT's bloom next to the metal). They become no data (NaN) for the registration, as a field
 * of view's outside does; what the registration then does is register/'s registerRigid (its pyramid,
 * metric and verdict). A scanner's fill value outside its field of view (the eight corners equal) is
 * no data too.
 */
import { UsageError } from '../errors.js';
import { mat4FromRows, type Mat4 } from '../math/mat4.js';
import { registerRigid, type RigidRegistrationOptions, type RigidRegistrationResult } from '../register/rigid.js';
import { withData, type Volume } from '../volume/volume.js';

/** Voxels at or above this (HU) are left out of the registration: steel, cement, their blurred cores. */
export const EXCLUDE_HU = 1800;
/** ... and their neighbours within this (mm). */
export const EXCLUDE_MARGIN_MM = 3;

export interface ScanRegistrationOptions extends Omit<RigidRegistrationOptions, 'fixedFill' | 'movingFill'> {
  excludeHu?: number;
  excludeMarginMm?: number;
}

/** What a report says about the registration that brought its scan into the plan's frame. */
export interface ScanRegistrationSummary {
  /** movingToFixed: scan LPS -> plan (or baseline) LPS, row-major rows. */
  scanToPlan: number[][];
  metric: RigidRegistrationResult['metric'];
  metricValue: number;
  overlapFraction: number;
  rotationDeg: [number, number, number];
  translationMm: [number, number, number];
  status: 'ok' | 'failed';
  reasons: string[];
  /** Voxels left out (metal, cement and their margin), scan and reference. */
  excludedVoxels: { scan: number; reference: number };
  excludeHu: number;
  excludeMarginMm: number;
  seconds: number;
}

export interface ScanRegistration {
  scanToPlan: Mat4;
  summary: ScanRegistrationSummary;
  result: RigidRegistrationResult;
}

/** The value of all eight corners when they agree (a scanner's fill outside its field of view), else null. */
function cornerFill(v: Volume): number | null {
  const [nx, ny, nz] = v.dims;
  let fill: number | null = null;
  for (const k of [0, nz - 1])
    for (const j of [0, ny - 1])
      for (const i of [0, nx - 1]) {
        const x = v.data[i + nx * (j + ny * k)];
        if (fill === null) fill = x;
        else if (x !== fill) return null;
      }
  return fill;
}

/**
 * A Float32 copy with NaN at the fill value and over everything at or above `hu` grown by `marginMm`
 * (a ball on the voxel grid). Returns the copy and how many voxels were left out for brightness.
 */
export function withBrightAsNoData(v: Volume, hu: number, marginMm: number): { volume: Volume; excluded: number } {
  const [nx, ny, nz] = v.dims;
  const nxy = nx * ny;
  const src = v.data;
  const out = new Float32Array(src.length);
  const fill = cornerFill(v);
  for (let o = 0; o < src.length; o++) out[o] = src[o] === fill ? NaN : src[o];
  const [sx, sy, sz] = v.spacing;
  const ri = Math.floor(marginMm / sx),
    rj = Math.floor(marginMm / sy),
    rk = Math.floor(marginMm / sz);
  // The ball's offsets, once.
  const offs: [number, number, number][] = [];
  for (let dk = -rk; dk <= rk; dk++)
    for (let dj = -rj; dj <= rj; dj++)
      for (let di = -ri; di <= ri; di++)
        if ((di * sx) ** 2 + (dj * sy) ** 2 + (dk * sz) ** 2 <= marginMm * marginMm + 1e-9) offs.push([di, dj, dk]);
  const mark = new Uint8Array(src.length);
  let excluded = 0;
  for (let k = 0, o = 0; k < nz; k++)
    for (let j = 0; j < ny; j++)
      for (let i = 0; i < nx; i++, o++) {
        if (!(src[o] >= hu) || src[o] === fill) continue;
        for (const [di, dj, dk] of offs) {
          const I = i + di,
            J = j + dj,
            K = k + dk;
          if (I < 0 || J < 0 || K < 0 || I >= nx || J >= ny || K >= nz) continue;
          const q = I + nx * J + nxy * K;
          if (!mark[q]) {
            mark[q] = 1;
            excluded++;
            out[q] = NaN;
          }
        }
      }
  return { volume: withData(v, out), excluded };
}

/** Register `scan` (moving) to `reference` (fixed: the planning CT or the cement baseline); see the module comment. */
export function registerScanToReference(
  reference: Volume,
  scan: Volume,
  options: ScanRegistrationOptions = {},
): ScanRegistration {
  const hu = options.excludeHu ?? EXCLUDE_HU;
  const margin = options.excludeMarginMm ?? EXCLUDE_MARGIN_MM;
  if (!Number.isFinite(hu) || !(margin >= 0 && margin <= 20))
    throw new UsageError(`exclusion ${hu} HU, ${margin} mm: a finite HU and a margin of 0-20 mm`, 'registration');
  const t0 = Date.now();
  const fixed = withBrightAsNoData(reference, hu, margin);
  const moving = withBrightAsNoData(scan, hu, margin);
  const { excludeHu: _h, excludeMarginMm: _m, ...rigid } = options;
  const result = registerRigid(fixed.volume, moving.volume, { ...rigid, fixedFill: 'none', movingFill: 'none' });
  const scanToPlan = mat4FromRows(result.movingToFixed.flat());
  const summary: ScanRegistrationSummary = {
    scanToPlan: result.movingToFixed,
    metric: result.metric,
    metricValue: result.metricValue,
    overlapFraction: result.overlapFraction,
    rotationDeg: result.parameters.rotationDeg,
    translationMm: result.parameters.translationMm,
    status: result.verdict.status,
    reasons: result.verdict.reasons,
    excludedVoxels: { scan: moving.excluded, reference: fixed.excluded },
    excludeHu: hu,
    excludeMarginMm: margin,
    seconds: Math.round((Date.now() - t0) / 10) / 100,
  };
  return { scanToPlan, summary, result };
}
