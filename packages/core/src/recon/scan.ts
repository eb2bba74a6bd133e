/**
 * The geometry of a C-arm CT run (a DynaCT-style short scan): the C-arm's own views (carm/geometry.ts)
 * at primary angles start, start + step, ..., start + arc, secondary 0, one isocentre. Each view is
 * exactly a DRR view: the same CarmGeometry, the same 3x4 projection matrix.
 *
 * Rotation: as the primary angle a grows the detector direction d = (sin a, -cos a, 0) turns
 * counter-clockwise about +z (LPS superior), so the rotation axis is the patient's long axis through the
 * isocentre, and the column axis u = (cos a, sin a, 0) is d turned a further 90 degrees the same way: a
 * ray toward increasing columns has a positive fan angle in the rotation's sense (Parker's convention).
 */
import { CorridorError } from '../errors.js';
import type { Point3 } from '../math/vec3.js';
import {
  anglesReachable,
  carmGeometry,
  projectionMatrix,
  type CarmGeometry,
  type CarmSystem,
  type DetectorOptions,
  type Mat34,
} from '../carm/geometry.js';

/** A C-arm CT request or input that cannot be simulated or reconstructed. */
export class ReconError extends CorridorError {
  override readonly name: string = 'ReconError';
}

const DEG = Math.PI / 180;

export interface CbctScanOptions {
  /** The patient point at the isocentre, LPS mm. */
  isocenter: Point3;
  /** Rotation range, degrees (default 200, or the system's primary range if smaller). */
  arcDeg?: number;
  /** Number of views, first and last included (default one every 0.8 degrees: 251 for 200 degrees). */
  views?: number;
  /** Primary angle of the first view, degrees (default: the arc centred on 0, i.e. -arc / 2). */
  startDeg?: number;
  /** Detector mode (default: 4 x 4 binning, as DynaCT's 20 s runs bin the flat detector). */
  detector?: DetectorOptions;
  /** Allow angles outside the system's primary limits (for tests of the reconstruction alone). */
  ignoreLimits?: boolean;
}

export interface CbctScan {
  schemaVersion: 1;
  systemId: string;
  arcDeg: number;
  startDeg: number;
  /** Angle between neighbouring views, degrees. */
  stepDeg: number;
  /** Each view's geometry, in acquisition order. */
  views: CarmGeometry[];
  /** Each view's 3x4 projection matrix (LPS mm -> pixel), in order; concatenated, 12 numbers a view. */
  projections: Float64Array;
  columns: number;
  rows: number;
  columnSpacingMm: number;
  rowSpacingMm: number;
  sidMm: number;
  sodMm: number;
  isocenter: Point3;
  /** The rotation axis (unit, LPS): +z. */
  axis: Point3;
  /** Largest fan angle that the detector (less one pixel for interpolation) covers, degrees. */
  fanHalfAngleDeg: number;
  /** Radius of the cylinder about the axis that every view sees and Parker's weights cover, mm. */
  fovRadiusMm: number;
  /** Half the axial extent seen by the central ray's plane at the isocentre, mm. */
  fovHalfHeightMm: number;
}

/** The views of a short scan with a system's geometry. */
export function cbctScan(system: CarmSystem, opts: CbctScanOptions): CbctScan {
  const range = system.primaryLimitsDeg[1] - system.primaryLimitsDeg[0];
  const arcDeg = opts.arcDeg ?? Math.min(200, range);
  if (!(arcDeg > 0 && arcDeg <= 360)) throw new ReconError(`arc ${arcDeg} degrees must be within 0-360`);
  const views = opts.views ?? Math.round(arcDeg / 0.8) + 1;
  if (!(Number.isInteger(views) && views >= 2 && views <= 10000))
    throw new ReconError(`views ${views} must be an integer 2-10000`);
  const startDeg = opts.startDeg ?? -arcDeg / 2;
  if (!Number.isFinite(startDeg)) throw new ReconError(`start angle ${startDeg} is not a number`);
  const stepDeg = arcDeg / (views - 1);
  const det = opts.detector ?? { binning: 4 };
  const gs: CarmGeometry[] = [];
  for (let n = 0; n < views; n++) {
    const a = startDeg + n * stepDeg;
    if (!opts.ignoreLimits && !anglesReachable(system, a, 0)) {
      throw new ReconError(
        `primary angle ${a.toFixed(1)} degrees is outside the limits ${system.primaryLimitsDeg.join('..')} ` +
          `of ${system.id} (arc ${arcDeg} from ${startDeg})`,
      );
    }
    gs.push(carmGeometry(system, { primaryDeg: a, secondaryDeg: 0, isocenter: opts.isocenter }, det));
  }
  return scanFromViews(system.id, gs, { arcDeg, startDeg, stepDeg });
}

/**
 * A scan from its views' geometries (a run read from a file: each view at its own primary angle, the
 * detector, distances and isocentre those of the first): ascending primary angles, secondary 0, about
 * evenly spaced (FDK's Parker weights and angular step take the views as start + n step). `arc` is
 * the span of the angles, `step` their mean spacing unless given.
 */
export function scanFromViews(
  systemId: string,
  gs: CarmGeometry[],
  o: { arcDeg?: number; startDeg?: number; stepDeg?: number } = {},
  source?: string,
): CbctScan {
  if (gs.length < 2) throw new ReconError(`a scan needs at least 2 views (got ${gs.length})`, source);
  const views = gs.length;
  const startDeg = o.startDeg ?? gs[0].primaryDeg;
  const arcDeg = o.arcDeg ?? gs[views - 1].primaryDeg - gs[0].primaryDeg;
  const stepDeg = o.stepDeg ?? arcDeg / (views - 1);
  const P = new Float64Array(12 * views);
  for (let n = 0; n < views; n++) P.set(projectionMatrix(gs[n]), 12 * n);
  const g0 = gs[0];
  const halfW = ((g0.columns - 1) / 2 - 1) * g0.columnSpacingMm;
  if (!(halfW > 0)) throw new ReconError(`a detector ${g0.columns} columns wide is too narrow`, source);
  const gammaMax = Math.atan(halfW / g0.sidMm);
  // A short scan covers every ray of fan angle |gamma| <= (arc - 180) / 2 twice at most and once at least.
  const delta = ((arcDeg - 180) / 2) * DEG;
  if (!(delta > 0))
    throw new ReconError(`arc ${arcDeg} degrees is not a short scan: it must exceed 180 degrees`, source ?? systemId);
  const gammaUse = Math.min(gammaMax, delta);
  const halfH = ((g0.rows - 1) / 2 - 1) * g0.rowSpacingMm;
  const iso = g0.isocenter;
  return {
    schemaVersion: 1,
    systemId,
    arcDeg,
    startDeg,
    stepDeg,
    views: gs,
    projections: P,
    columns: g0.columns,
    rows: g0.rows,
    columnSpacingMm: g0.columnSpacingMm,
    rowSpacingMm: g0.rowSpacingMm,
    sidMm: g0.sidMm,
    sodMm: g0.sodMm,
    isocenter: [iso[0], iso[1], iso[2]],
    axis: [0, 0, 1],
    fanHalfAngleDeg: gammaMax / DEG,
    fovRadiusMm: g0.sodMm * Math.sin(gammaUse),
    fovHalfHeightMm: (halfH * g0.sodMm) / g0.sidMm,
  };
}

/** The projection matrix of view n (a view of the scan's concatenated matrices). */
export function scanProjection(scan: CbctScan, n: number): Mat34 {
  return scan.projections.subarray(12 * n, 12 * n + 12);
}

/** A summary for JSON and file headers: the acquisition without its per-view arrays. */
export function scanSummary(scan: CbctScan): Record<string, unknown> {
  return {
    schemaVersion: scan.schemaVersion,
    system: scan.systemId,
    arcDeg: scan.arcDeg,
    startDeg: scan.startDeg,
    stepDeg: scan.stepDeg,
    views: scan.views.length,
    columns: scan.columns,
    rows: scan.rows,
    columnSpacingMm: scan.columnSpacingMm,
    rowSpacingMm: scan.rowSpacingMm,
    sidMm: scan.sidMm,
    sodMm: scan.sodMm,
    isocenter: scan.isocenter,
    fanHalfAngleDeg: scan.fanHalfAngleDeg,
    fovRadiusMm: scan.fovRadiusMm,
    fovHalfHeightMm: scan.fovHalfHeightMm,
  };
}
