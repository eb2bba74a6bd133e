/**
 * Resampling onto another grid, and cropping. The target grid is any dims + indexToPatient (any
 * orientation, either handedness); each target voxel centre is mapped to a continuous source index by one
 * affine (patientToIndex(source) * indexToPatient(target)), stepped incrementally so the loop allocates
 * nothing but the result. Inside/outside follows sample.ts (EDGE_EPS for linear, half a voxel for nearest).
 */
import { GeometryError } from '../errors.js';
import { mat4Multiply, type ReadonlyMat4 } from '../math/mat4.js';
import { sampleIndexNearest, sampleIndexTrilinear } from './sample.js';
import {
  allocateVoxels,
  axisDirection,
  createVolume,
  indexToPatientFrom,
  voxelCount,
  voxelTypeOf,
  type Dims3,
  type Volume,
  type VoxelType,
} from './volume.js';

export type Interpolation = 'nearest' | 'linear';

/** Where voxels lie without the voxels: a Volume is a Grid. */
export interface Grid {
  /** Voxel counts along i, j, k. */
  dims: Dims3;
  /** Continuous voxel index (i, j, k, 1) to LPS mm, row-major; copied by resample. */
  indexToPatient: ReadonlyMat4;
}

export interface ResampleOptions {
  interpolation?: Interpolation;
  /** Value for target voxels whose centre is outside the source (default 0; pass e.g. -1024 for CT air). */
  outside?: number;
  /** Voxel type of the result (default: the source's type; integer types round the interpolated value). */
  type?: VoxelType;
}

function isIntegerType(t: VoxelType) {
  return t !== 'float32' && t !== 'float64';
}

/** A new volume on `target` (allocates its voxels) with the source's values; the source is not changed. */
export function resample(source: Volume, target: Grid, options: ResampleOptions = {}): Volume {
  const interpolation = options.interpolation ?? 'linear';
  const outside = options.outside ?? 0;
  const type = options.type ?? voxelTypeOf(source.data);
  const n = voxelCount(target.dims, source.meta.source);
  const out = allocateVoxels(type, n, source.meta.source);
  const m = mat4Multiply(new Float64Array(16), source.patientToIndex, target.indexToPatient);
  const round = isIntegerType(type);
  const [nx, ny, nz] = target.dims;
  let o = 0;
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      let fi = m[1] * j + m[2] * k + m[3];
      let fj = m[5] * j + m[6] * k + m[7];
      let fk = m[9] * j + m[10] * k + m[11];
      for (let i = 0; i < nx; i++) {
        const v =
          interpolation === 'nearest'
            ? sampleIndexNearest(source, fi, fj, fk, outside)
            : sampleIndexTrilinear(source, fi, fj, fk, outside);
        out[o++] = round ? Math.round(v) : v;
        fi += m[0];
        fj += m[4];
        fk += m[8];
      }
    }
  }
  return createVolume({ data: out, dims: target.dims, indexToPatient: target.indexToPatient, meta: source.meta });
}

/**
 * The grid with the same orientation and handedness at another spacing: the first voxel centre is kept,
 * and as many voxels follow as fit up to the source's last centre (never beyond it, but for 1e-9 of a
 * step of slack so that an exact multiple is not lost to round-off). So every centre lies in the source.
 */
export function gridWithSpacing(source: Volume, spacing: readonly [number, number, number]): Grid {
  if (!spacing.every((s) => s > 0 && Number.isFinite(s))) {
    throw new GeometryError(`invalid spacing ${spacing.join(', ')}`, source.meta.source);
  }
  const dims = [0, 1, 2].map((a) =>
    Math.max(1, Math.floor(((source.dims[a] - 1) * source.spacing[a]) / spacing[a] + 1e-9) + 1),
  ) as unknown as Dims3;
  const m = source.indexToPatient;
  const dirs = [axisDirection(source, 0), axisDirection(source, 1), axisDirection(source, 2)] as const;
  return { dims, indexToPatient: indexToPatientFrom([m[3], m[7], m[11]], spacing, dirs) };
}

export function resampleToSpacing(
  source: Volume,
  spacing: readonly [number, number, number],
  options: ResampleOptions = {},
): Volume {
  return resample(source, gridWithSpacing(source, spacing), options);
}

/** Sub-volume of voxels min..max inclusive (indices), geometry shifted so every voxel keeps its position. */
export function crop(source: Volume, min: readonly number[], max: readonly number[]): Volume {
  const [nx, ny] = source.dims;
  for (let a = 0; a < 3; a++) {
    if (!(
      Number.isInteger(min[a]) &&
      Number.isInteger(max[a]) &&
      min[a] >= 0 &&
      max[a] < source.dims[a] &&
      min[a] <= max[a]
    )) {
      throw new GeometryError(
        `crop box [${min.join(',')}]..[${max.join(',')}] outside dims ${source.dims.join(' x ')}`,
        source.meta.source,
      );
    }
  }
  const dims: Dims3 = [max[0] - min[0] + 1, max[1] - min[1] + 1, max[2] - min[2] + 1];
  const out = allocateVoxels(voxelTypeOf(source.data), dims[0] * dims[1] * dims[2]);
  let o = 0;
  for (let k = min[2]; k <= max[2]; k++) {
    for (let j = min[1]; j <= max[1]; j++) {
      const start = min[0] + nx * (j + ny * k);
      out.set(source.data.subarray(start, start + dims[0]), o);
      o += dims[0];
    }
  }
  const m = Float64Array.from(source.indexToPatient);
  for (let r = 0; r < 3; r++) m[r * 4 + 3] += m[r * 4] * min[0] + m[r * 4 + 1] * min[1] + m[r * 4 + 2] * min[2];
  return createVolume({ data: out, dims, indexToPatient: m, meta: source.meta });
}
