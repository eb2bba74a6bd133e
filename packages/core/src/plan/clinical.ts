/**
 * Clinical constants, defined once: every front end (CLI, workstation, server) and every core step reads
 * them from here, so a margin, a tolerance or a colour band cannot differ between two screens.
 */

/** Default safety margin (mm) between a screw's or pin's surface and any forbidden voxel. */
export const DEFAULT_MARGIN_MM = 1;

/**
 * Default margin (mm) for an alar trocar path: the ala lies next to the S1 and S2 foramina, and an
 * 11-gauge trocar is pushed by hand without a guidewire, so the alar planner keeps more room.
 */
export const DEFAULT_ALAR_MARGIN_MM = 2;

/**
 * Two grids (indexToPatient matrices) are the same when no entry differs by more than this (mm for the
 * origin column, mm per voxel for the others). Large enough for a geometry written to NIfTI's float32
 * sform and read back (about 1e-5 mm at 1000 mm from the origin), far below any clinical distance.
 */
export const SAME_GEOMETRY_TOLERANCE_MM = 1e-3;

/** Largest tool diameter (mm) any plan, tool spec or panel accepts: wider than any bone screw or trocar. */
export const MAX_TOOL_DIAMETER_MM = 40;

/** Clearance (mm, tool surface to forbidden voxel) within this much above the margin is "near". */
export const CLEARANCE_NEAR_BAND_MM = 2;

/**
 * Clearance band of a point or stretch of a path: 'outside' (not in bone, nothing to clear), 'breach'
 * (the tool cuts into a forbidden structure), 'margin' (inside the safety margin), 'near' (within
 * CLEARANCE_NEAR_BAND_MM above it), 'room'.
 */
export type ClearanceBand = 'outside' | 'breach' | 'margin' | 'near' | 'room';

export function clearanceBand(clearanceMm: number | null, marginMm: number): ClearanceBand {
  if (clearanceMm === null || !Number.isFinite(clearanceMm)) return 'outside';
  if (clearanceMm < 0) return 'breach';
  if (clearanceMm < marginMm) return 'margin';
  if (clearanceMm < marginMm + CLEARANCE_NEAR_BAND_MM) return 'near';
  return 'room';
}

/**
 * Placement verification (verify/): a placed instrument passes when its entry and tip lie within
 * VERIFY_TOLERANCE_MM of the plan's and its axis within VERIFY_TOLERANCE_DEG of the planned axis (the
 * reference case's acceptance, close to what known-component registration resolves: about 1.1 mm and
 * 0.7 degrees), and nothing critical lies along it.
 */
export const VERIFY_TOLERANCE_MM = 2;
export const VERIFY_TOLERANCE_DEG = 2;

/**
 * Cement monitoring (cement/): cement whose front comes closer than CEMENT_WARNING_MM (voxel centre to
 * voxel centre) to a foramen or the spinal canal makes the scan's verdict "caution"; cement inside one,
 * or outside the bone, "stop". 3 mm: about the nerve root's room in an S1 foramen beyond its own radius,
 * and two to four CT voxels, so that a front one voxel from the cortex already warns.
 */
export const CEMENT_WARNING_MM = 3;
