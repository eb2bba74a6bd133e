/**
 * Using a registration: resample the moving image onto the fixed grid, and carry a plan made on the
 * moving image into the fixed frame. Both take movingToFixed (moving LPS mm -> fixed LPS mm).
 */
import { GeometryError } from '../errors.js';
import { mat4Multiply, mat4TransformPoint, type ReadonlyMat4 } from '../math/mat4.js';
import type { Point3 } from '../math/vec3.js';
import type { Plan, PlanVolumeRef } from '../plan/model.js';
import { resample, type Grid, type ResampleOptions } from '../volume/resample.js';
import { createVolume, type Volume } from '../volume/volume.js';
import { invertAffine } from './rigid-transform.js';
import { RIGID_TOLERANCE, rigidityError } from './rigid-transform.js';

/**
 * The moving image on the fixed grid: the value at fixed voxel centre x is the moving value at
 * fixedToMoving(x). Voxels that map outside the moving image get `outside` (default 0).
 */
export function resampleOntoFixed(
  moving: Volume,
  fixedGrid: Grid,
  movingToFixed: ReadonlyMat4,
  options: ResampleOptions = {},
): Volume {
  const f2m = invertAffine(movingToFixed);
  // The general inverse can leave rounding (1e-17, 1 + 2e-16) in the bottom row of an affine matrix,
  // which createVolume refuses: it is 0 0 0 1 by definition.
  f2m[12] = f2m[13] = f2m[14] = 0;
  f2m[15] = 1;
  const grid = {
    dims: fixedGrid.dims,
    indexToPatient: mat4Multiply(new Float64Array(16), f2m, fixedGrid.indexToPatient),
  };
  const r = resample(moving, grid, options);
  return createVolume({
    data: r.data,
    dims: fixedGrid.dims,
    indexToPatient: fixedGrid.indexToPatient,
    meta: moving.meta,
  });
}

/**
 * The plan carried by a rigid movingToFixed: every path's entry and target (and the points its map was
 * cropped around) mapped into the fixed frame; the volume reference becomes `fixed`. A transform that
 * is not rigid is refused (GeometryError): it would change the tools' lengths and angles.
 */
export function transformPlan(plan: Plan, movingToFixed: ReadonlyMat4, fixed: PlanVolumeRef): Plan {
  const err = rigidityError(movingToFixed);
  if (!(err <= RIGID_TOLERANCE)) {
    throw new GeometryError(`transform is not rigid (off by ${err.toExponential(2)}); a plan is moved rigidly only`);
  }
  const map = (p: Point3): Point3 => {
    const q = mat4TransformPoint([0, 0, 0], movingToFixed, p);
    return [q[0], q[1], q[2]];
  };
  return {
    schemaVersion: plan.schemaVersion,
    volume: { ...fixed },
    paths: plan.paths.map((p) => ({
      ...p,
      entry: map(p.entry),
      target: map(p.target),
      ...(p.map ? { map: { ...p.map, ...(p.map.cropAround ? { cropAround: p.map.cropAround.map(map) } : {}) } } : {}),
    })),
  };
}
