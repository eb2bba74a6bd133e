/**
 * Volume: typed voxels on a grid placed in patient space. Geometry conventions (LPS mm, index = voxel
 * centre, row-major matrices) are defined once in docs/conventions.md; every field is defined in
 * README.md next to this file.
 *
 * A Volume is plain data (typed arrays and numbers) so it can be posted to a worker or serialized.
 * Its geometry cannot change after createVolume: the object, dims and spacing are frozen, and the two
 * matrices are typed ReadonlyMat4 (copies, never the caller's arrays), so indexToPatient and
 * patientToIndex stay each other's inverse. The voxel data stays writable.
 */
import { GeometryError, LimitError } from '../errors.js';
import { mat4Invert, type Mat4, type ReadonlyMat4 } from '../math/mat4.js';

export type VoxelArray =
  Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | Float32Array | Float64Array;

export type VoxelType = 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'float32' | 'float64';

export type Dims3 = readonly [number, number, number];

/** Who and what the image is; everything optional because NIfTI and NRRD carry none of it. */
export interface VolumeMetadata {
  patientName?: string;
  patientId?: string;
  patientBirthDate?: string;
  patientSex?: string;
  studyInstanceUid?: string;
  studyDate?: string;
  studyDescription?: string;
  seriesInstanceUid?: string;
  seriesNumber?: number;
  seriesDescription?: string;
  frameOfReferenceUid?: string;
  modality?: string;
  manufacturer?: string;
  manufacturerModelName?: string;
  acquisitionDate?: string;
  acquisitionTime?: string;
  /** Free-form description of the source (file name, format). */
  source?: string;
}

export interface Volume<T extends VoxelArray = VoxelArray> {
  /** Voxel values, real-world units (HU for CT: any rescale is already applied). i fastest, then j, then k. */
  readonly data: T;
  /** Number of voxels along i (row direction), j (column direction), k (slice direction). */
  readonly dims: Dims3;
  /** Distance in mm between neighbouring voxel centres along i, j and k (the column norms of indexToPatient). */
  readonly spacing: readonly [number, number, number];
  /** Maps a continuous voxel index (i, j, k, 1), integer at voxel centres, to LPS mm. Row-major 4x4. */
  readonly indexToPatient: ReadonlyMat4;
  /** Inverse of indexToPatient: LPS mm to continuous voxel index. Computed with it, never changed. */
  readonly patientToIndex: ReadonlyMat4;
  readonly meta: VolumeMetadata;
}

/** Largest voxel count any reader or generator may allocate (2^31 - 1 elements: typed array limit). */
export const MAX_VOXELS = 2 ** 31 - 1;

export function voxelTypeOf(data: VoxelArray): VoxelType {
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Int16Array) return 'int16';
  if (data instanceof Uint16Array) return 'uint16';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Uint32Array) return 'uint32';
  if (data instanceof Float32Array) return 'float32';
  return 'float64';
}

export const BYTES_PER_VOXEL: Record<VoxelType, number> = {
  int8: 1,
  uint8: 1,
  int16: 2,
  uint16: 2,
  int32: 4,
  uint32: 4,
  float32: 4,
  float64: 8,
};

/**
 * Allocate a voxel array after checking the count: readers call this only once they have checked that
 * the input's bytes can justify the size, so a hostile header cannot make us allocate gigabytes.
 */
export function allocateVoxels(type: VoxelType, count: number, source?: string): VoxelArray {
  if (!Number.isSafeInteger(count) || count < 0 || count > MAX_VOXELS) {
    throw new LimitError(`refusing to allocate ${count} voxels (limit ${MAX_VOXELS})`, source);
  }
  switch (type) {
    case 'int8':
      return new Int8Array(count);
    case 'uint8':
      return new Uint8Array(count);
    case 'int16':
      return new Int16Array(count);
    case 'uint16':
      return new Uint16Array(count);
    case 'int32':
      return new Int32Array(count);
    case 'uint32':
      return new Uint32Array(count);
    case 'float32':
      return new Float32Array(count);
    case 'float64':
      return new Float64Array(count);
  }
}

/** Number of voxels for dims, with a typed error when the product is not a safe, allocatable count. */
export function voxelCount(dims: Dims3, source?: string): number {
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 1) throw new GeometryError(`invalid dimensions ${dims.join(' x ')}`, source);
  }
  const n = dims[0] * dims[1] * dims[2];
  if (n > MAX_VOXELS) throw new LimitError(`dimensions ${dims.join(' x ')} exceed ${MAX_VOXELS} voxels`, source);
  return n;
}

export interface VolumeInit<T extends VoxelArray> {
  data: T;
  dims: Dims3;
  /** Copied: later changes to the caller's array do not reach the volume. */
  indexToPatient: ReadonlyMat4;
  meta?: VolumeMetadata;
}

/**
 * The one way to make a Volume: validates sizes and geometry, copies indexToPatient, derives spacing and
 * the inverse, and freezes the result (the object, dims and spacing; not data, not meta's values).
 * Allocates the two matrices, the dims and spacing arrays and the meta copy; never the voxels.
 */
export function createVolume<T extends VoxelArray>(init: VolumeInit<T>): Volume<T> {
  const source = init.meta?.source;
  const n = voxelCount(init.dims, source);
  if (init.data.length !== n) {
    throw new GeometryError(`voxel array holds ${init.data.length} values, dimensions need ${n}`, source);
  }
  const m = init.indexToPatient;
  if (m.length !== 16 || !Array.prototype.every.call(m, Number.isFinite)) {
    throw new GeometryError('indexToPatient must be 16 finite numbers', source);
  }
  if (m[12] !== 0 || m[13] !== 0 || m[14] !== 0 || m[15] !== 1) {
    throw new GeometryError('indexToPatient must be affine (bottom row 0 0 0 1)', source);
  }
  // "+ 0" turns -0 (from negating RAS rows) into 0 so equal geometries compare equal.
  const forward = Float64Array.from(m, (x) => x + 0);
  const inv = mat4Invert(new Float64Array(16), forward);
  if (!inv) throw new GeometryError('indexToPatient is singular', source);
  const f = forward;
  const spacing = Object.freeze([0, 1, 2].map((c) => Math.hypot(f[c], f[4 + c], f[8 + c]))) as unknown as readonly [
    number,
    number,
    number,
  ];
  const volume: Volume<T> = {
    data: init.data,
    dims: Object.freeze([init.dims[0], init.dims[1], init.dims[2]] as const),
    spacing,
    indexToPatient: forward,
    patientToIndex: inv,
    meta: { ...(init.meta ?? {}) },
  };
  return Object.freeze(volume);
}

/**
 * indexToPatient from the usual parts: origin = LPS position of voxel (0,0,0)'s centre; directions =
 * unit vectors (LPS) of increasing i, j and k; spacing in mm along each.
 */
export function indexToPatientFrom(
  origin: ArrayLike<number>,
  spacing: ArrayLike<number>,
  directions: readonly [ArrayLike<number>, ArrayLike<number>, ArrayLike<number>] = [
    [1, 0, 0],
    [0, 1, 0],
    [0, 0, 1],
  ],
): Mat4 {
  // A new, writable matrix (allocates 16 doubles); createVolume copies it again.
  const m = new Float64Array(16);
  for (let c = 0; c < 3; c++) {
    for (let r = 0; r < 3; r++) m[r * 4 + c] = directions[c][r] * spacing[c];
  }
  m[3] = origin[0];
  m[7] = origin[1];
  m[11] = origin[2];
  m[15] = 1;
  return m;
}

/** Unit direction (LPS) of increasing index along axis 0 (i), 1 (j) or 2 (k). */
export function axisDirection(volume: Volume, axis: 0 | 1 | 2): [number, number, number] {
  const m = volume.indexToPatient;
  const s = volume.spacing[axis];
  return [m[axis] / s, m[4 + axis] / s, m[8 + axis] / s];
}

/** LPS position of voxel (0,0,0)'s centre. */
export function volumeOrigin(volume: Volume): [number, number, number] {
  const m = volume.indexToPatient;
  return [m[3], m[7], m[11]];
}

/** A volume of the same grid and metadata with other voxels (e.g. a label map or a float copy). */
export function withData<T extends VoxelArray>(volume: Volume, data: T, meta?: VolumeMetadata): Volume<T> {
  return createVolume({ data, dims: volume.dims, indexToPatient: volume.indexToPatient, meta: meta ?? volume.meta });
}

export interface VolumeStats {
  min: number;
  max: number;
  mean: number;
}

export function volumeStats(volume: Volume): VolumeStats {
  const d = volume.data;
  let min = Infinity,
    max = -Infinity,
    sum = 0;
  for (let i = 0; i < d.length; i++) {
    const v = d[i];
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
  }
  return { min, max, mean: d.length ? sum / d.length : NaN };
}
