/**
 * A volume prepared for ray casting: attenuation (1/mm) per voxel quantised to 16 bits, an occupancy grid
 * of 8-voxel blocks for empty-space skipping, and the geometry. Prepared once per volume; every projection
 * afterwards only computes the kernels' parameters (`drrParamFields`, packed by `drrParams`) and runs the
 * kernel.
 *
 * The arrays can live in any ArrayBuffer the caller provides (`allocate`), e.g. a SharedArrayBuffer so
 * that worker threads or web workers read the same memory without copies.
 */
import type { Mat4 } from '../math/mat4.js';
import type { Volume } from '../volume/volume.js';
import { carmFrame, validateGeometry, type CarmGeometry } from '../carm/geometry.js';
import { DrrError, huToMu, type AttenuationModel, type HuToMu } from './attenuation.js';
import { DRR_PARAMS_LENGTH, drrKernel, packDrrParams, type DrrParamFields } from './kernel.js';
import { createDrrSimdMemory, drrSimdContext, type DrrSimdContext, type DrrSimdMemory } from './wasm.js';

type Triple = [number, number, number];

export interface DrrVolume {
  /** Voxels along i, j, k. */
  dims: [number, number, number];
  spacing: [number, number, number];
  indexToPatient: Mat4;
  patientToIndex: Mat4;
  /** Linear attenuation quantised to 16 bits, i fastest (same layout as Volume.data): mu = value * muScale. */
  mu: Uint16Array;
  /** 1/mm per unit of `mu`. */
  muScale: number;
  /** 1 where a block or one of its 26 neighbours holds a voxel with mu > 0. */
  occupancy: Uint8Array;
  /** log2 of the block edge in voxels. */
  blockShift: number;
  occupancyDims: [number, number, number];
  /** The HU -> mu model used (absent when the volume was given in mu already). */
  attenuation?: Omit<HuToMu, 'lut'>;
  source?: string;
  /** Present when `mu` lies in a WebAssembly memory for the SIMD row loops (see wasm.ts). */
  simd?: DrrSimdMemory;
}

export interface PrepareOptions {
  /** What the voxels hold: CT numbers (default) or linear attenuation in 1/mm already. */
  values?: 'hu' | 'mu';
  attenuation?: AttenuationModel;
  /** Provides the memory for occupancy, and for mu when it is not in WebAssembly memory (default: new ArrayBuffer). */
  allocate?: (bytes: number) => ArrayBufferLike;
  /**
   * Put mu in a WebAssembly memory so that the plane sweep's row loops run as WebAssembly SIMD (about 4x
   * faster): true (default) for one thread, 'shared' for a shared memory that worker threads can use,
   * false for plain JavaScript. Where the engine lacks WebAssembly SIMD, mu goes to `allocate`.
   */
  wasm?: boolean | 'shared';
  /** Block edge 2^blockShift voxels for empty-space skipping (default 3: 8 voxels). */
  blockShift?: number;
}

export function prepareDrrVolume(volume: Volume, opts: PrepareOptions = {}): DrrVolume {
  const source = volume.meta.source;
  const n = volume.dims[0] * volume.dims[1] * volume.dims[2];
  const src = volume.data;
  if ((opts.values ?? 'hu') === 'mu') {
    let max = 0;
    for (let i = 0; i < n; i++) {
      const v = src[i];
      if (!(v >= 0 && v < 1e3))
        throw new DrrError(`attenuation ${v} at voxel ${i} is not within 0..1000 per mm`, source);
      if (v > max) max = v;
    }
    const muScale = max > 0 ? max / 65535 : 1;
    return prepareDrrVolumeWith(
      volume,
      muScale,
      (mu) => {
        for (let i = 0; i < n; i++) mu[i] = Math.round(src[i] / muScale);
      },
      opts,
    );
  }
  const h = huToMu(opts.attenuation);
  const { lut, hu0 } = h;
  let max = 0;
  for (let i = 0; i < lut.length; i++) if (lut[i] > max) max = lut[i];
  const muScale = max / 65535;
  const qlut = new Uint16Array(lut.length);
  for (let i = 0; i < lut.length; i++) qlut[i] = Math.round(lut[i] / muScale);
  const top = lut.length - 1;
  const { lut: _l, ...rest } = h;
  const dv = prepareDrrVolumeWith(
    volume,
    muScale,
    (mu) => {
      for (let i = 0; i < n; i++) {
        const v = src[i];
        let k = Math.round(v) - hu0;
        if (!(k >= 0))
          k = 0; // also NaN
        else if (k > top) k = top;
        mu[i] = qlut[k];
      }
    },
    opts,
  );
  dv.attenuation = rest;
  return dv;
}

/**
 * A prepared volume on a grid (`dims`, `indexToPatient`, `meta.source` of `grid`; its data unused) whose
 * 16-bit values `fill` writes (mu = value * muScale), in the memory and with the occupancy grid that
 * prepareDrrVolume gives them (`opts`: wasm, allocate, blockShift). For callers that compute the values
 * themselves (recon's material volumes, straight from the CT numbers).
 */
export function prepareDrrVolumeWith(
  grid: Pick<Volume, 'dims' | 'spacing' | 'indexToPatient' | 'patientToIndex' | 'meta'>,
  muScale: number,
  fill: (mu: Uint16Array) => void,
  opts: Omit<PrepareOptions, 'values' | 'attenuation'> = {},
): DrrVolume {
  const source = grid.meta.source;
  const [nx, ny, nz] = grid.dims;
  if (nx < 2 || ny < 2 || nz < 2)
    throw new DrrError(`volume ${nx} x ${ny} x ${nz} needs at least 2 voxels along each axis`, source);
  const n = nx * ny * nz;
  const allocate = opts.allocate ?? ((b: number) => new ArrayBuffer(b));
  const wasm = opts.wasm ?? true;
  const simd = wasm ? createDrrSimdMemory(n * 2, wasm === 'shared') : null;
  const mu = simd ? new Uint16Array(simd.memory.buffer, 0, n) : new Uint16Array(allocate(n * 2), 0, n);
  fill(mu);
  const shift = opts.blockShift ?? 3;
  if (!(Number.isInteger(shift) && shift >= 1 && shift <= 6))
    throw new DrrError(`blockShift ${shift} must be 1..6`, source);
  const bnx = ((nx - 1) >> shift) + 1,
    bny = ((ny - 1) >> shift) + 1,
    bnz = ((nz - 1) >> shift) + 1;
  const occ0 = new Uint8Array(bnx * bny * bnz);
  const B = 1 << shift;
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      const row = nx * (j + ny * k);
      const bro = bnx * ((j >> shift) + bny * (k >> shift));
      // A block's run of the row: any non-zero voxel marks it (one test per run, not per voxel).
      for (let b = 0, i0 = 0; b < bnx; b++, i0 += B) {
        let any = 0;
        const i1 = Math.min(nx, i0 + B);
        for (let i = i0; i < i1; i++) any |= mu[row + i];
        if (any) occ0[bro + b] = 1;
      }
    }
  }
  // Dilate by one block along each axis in turn (separable 3x3x3 max).
  const occ = new Uint8Array(allocate(occ0.length), 0, occ0.length);
  const tmp = new Uint8Array(occ0.length);
  const dil = (a: Uint8Array, b: Uint8Array, stride: number, len: number, pos: (idx: number) => number) => {
    for (let idx = 0; idx < a.length; idx++) {
      const p = pos(idx);
      b[idx] = a[idx] | (p > 0 ? a[idx - stride] : 0) | (p < len - 1 ? a[idx + stride] : 0);
    }
  };
  dil(occ0, tmp, 1, bnx, (idx) => idx % bnx);
  dil(tmp, occ0, bnx, bny, (idx) => Math.floor(idx / bnx) % bny);
  dil(occ0, occ, bnx * bny, bnz, (idx) => Math.floor(idx / (bnx * bny)));
  return {
    dims: [nx, ny, nz],
    spacing: [grid.spacing[0], grid.spacing[1], grid.spacing[2]],
    indexToPatient: Float64Array.from(grid.indexToPatient),
    patientToIndex: Float64Array.from(grid.patientToIndex),
    mu,
    muScale,
    occupancy: occ,
    blockShift: shift,
    occupancyDims: [bnx, bny, bnz],
    source,
    ...(simd ? { simd } : {}),
  };
}

export interface RayOptions {
  /**
   * Largest distance between samples along a ray, in index units (voxels, default 1.5). Joseph's method
   * samples once per voxel plane; a ray oblique to all three axes crosses a plane every ~1.7 voxels, and
   * then each plane is sampled several times (the steepest ray of the image decides, see kernel.ts).
   */
  maxSampleSpacingVoxels?: number;
}

/**
 * The kernels' parameters for one projection, by name (the fields are described in kernel.ts,
 * DrrParamFields): the focal spot and the rays to the detector's pixels in index space and in patient mm.
 */
export function drrParamFields(dv: DrrVolume, g: CarmGeometry, rays: RayOptions = {}): DrrParamFields {
  validateGeometry(g);
  const f = carmFrame(g);
  const A = dv.patientToIndex;
  const [c0, r0] = f.principalPoint;
  // Patient-space ray to pixel (c, r): W = SID d + (c - c0) dc u + (r - r0) dr v.
  const W0 = [0, 1, 2].map((i) => g.sidMm * f.d[i] - c0 * g.columnSpacingMm * f.u[i] - r0 * g.rowSpacingMm * f.v[i]);
  const Wc = f.u.map((x) => x * g.columnSpacingMm);
  const Wr = f.v.map((x) => x * g.rowSpacingMm);
  const lin = (v: ArrayLike<number>, r: number) => A[r * 4] * v[0] + A[r * 4 + 1] * v[1] + A[r * 4 + 2] * v[2];
  const toIndex = (v: ArrayLike<number>): Triple => [lin(v, 0), lin(v, 1), lin(v, 2)];
  // Samples per plane from the central ray: the index-space distance between its planes (1 along an
  // axis, sqrt(3) along a cube diagonal), in voxels.
  const wc = toIndex(f.d);
  const mAbs = Math.max(Math.abs(wc[0]), Math.abs(wc[1]), Math.abs(wc[2]));
  const stepVoxels = Math.hypot(wc[0], wc[1], wc[2]) / mAbs;
  const maxSpacing = rays.maxSampleSpacingVoxels ?? 1.5;
  if (!(maxSpacing > 0)) throw new DrrError(`maxSampleSpacingVoxels must be positive (got ${maxSpacing})`);
  return {
    dims: [dv.dims[0], dv.dims[1], dv.dims[2]],
    columns: g.columns,
    rows: g.rows,
    blockShift: dv.blockShift,
    occupancyDims: [dv.occupancyDims[0], dv.occupancyDims[1], dv.occupancyDims[2]],
    sourceIndex: [0, 1, 2].map((r) => lin(f.source, r) + A[r * 4 + 3]) as Triple,
    rayIndex: toIndex(W0),
    rayIndexPerColumn: toIndex(Wc),
    rayIndexPerRow: toIndex(Wr),
    rayMm: [W0[0], W0[1], W0[2]],
    rayMmPerColumn: [Wc[0], Wc[1], Wc[2]],
    rayMmPerRow: [Wr[0], Wr[1], Wr[2]],
    samplesPerPlane: Math.min(8, Math.max(1, Math.ceil(stepVoxels / maxSpacing - 1e-9))),
    muScale: dv.muScale,
    maxSampleSpacingVoxels: maxSpacing,
    transposedJAddress: dv.simd?.transposedJ ?? -1,
    planesJAddress: dv.simd?.planesJ ?? -1,
  };
}

/** The kernels' packed parameter block for one projection: drrParamFields packed into `out`. */
export function drrParams(
  dv: DrrVolume,
  g: CarmGeometry,
  out: Float64Array = new Float64Array(DRR_PARAMS_LENGTH),
  rays: RayOptions = {},
): Float64Array {
  return packDrrParams(drrParamFields(dv, g, rays), out);
}

/**
 * Room for one more copy of `n` uint16 voxels at the end of a shared WebAssembly memory, with 16 bytes of
 * slack after it (hrow1s reads 16 bytes from a row's voxel, past the row's end); null where the memory is
 * not shared (growing would detach `mu`) or cannot grow.
 */
function growForCopy(sm: NonNullable<DrrVolume['simd']>, n: number): { t: Uint16Array; start: number } | null {
  if (!(typeof SharedArrayBuffer !== 'undefined' && sm.memory.buffer instanceof SharedArrayBuffer)) return null;
  const start = sm.memory.buffer.byteLength;
  try {
    sm.memory.grow(Math.ceil((n * 2 + 16) / 65536));
  } catch {
    return null;
  }
  return { t: new Uint16Array(sm.memory.buffer, start, n), start };
}

/**
 * For views swept along i (lateral), a copy of mu with j fastest in the same shared WebAssembly memory,
 * made once (the memory grows by the volume's size; about half a second for 100 M voxels): rows along j
 * are then read contiguously, about twice as fast. Only for shared memories, which grow without
 * detaching `mu`. Returns whether the volume has the copy.
 */
export function addDrrTransposedCopy(dv: DrrVolume): boolean {
  const sm = dv.simd;
  if (!sm) return false;
  if (sm.transposedJ !== undefined) return true;
  const room = growForCopy(sm, dv.mu.length);
  if (!room) return false;
  const { t, start } = room;
  const [nx, ny, nz] = dv.dims;
  const mu = dv.mu;
  // Slice by slice (k), in 32 x 32 blocks of (i, j) so that reads and writes both stay in cache.
  const B = 32;
  for (let k = 0; k < nz; k++) {
    for (let j0 = 0; j0 < ny; j0 += B) {
      const j1 = Math.min(ny, j0 + B);
      for (let i0 = 0; i0 < nx; i0 += B) {
        const i1 = Math.min(nx, i0 + B);
        for (let i = i0; i < i1; i++) {
          const dst = ny * (k + nz * i),
            src = i + nx * ny * k;
          for (let j = j0; j < j1; j++) t[dst + j] = mu[src + nx * j];
        }
      }
    }
  }
  sm.transposedJ = start;
  return true;
}

/**
 * For views swept along j (AP), a copy of mu whose planes of j are contiguous (index i + nx (k + nz j)) in
 * the same shared WebAssembly memory, made once (the memory grows by the volume's size): a plane's rows
 * are then adjacent instead of one slice apart, which the row loops read about 1.6 times faster (the C-arm
 * CT benchmark's views along j, measured back to back). The same values in the same order: the same image.
 * Only for shared memories, as addDrrTransposedCopy. Returns whether the volume has the copy.
 */
export function addDrrPlanesJCopy(dv: DrrVolume): boolean {
  const sm = dv.simd;
  if (!sm) return false;
  if (sm.planesJ !== undefined) return true;
  const room = growForCopy(sm, dv.mu.length);
  if (!room) return false;
  const { t, start } = room;
  const [nx, ny, nz] = dv.dims;
  const mu = dv.mu;
  // Row by row (each row of i moves whole).
  for (let k = 0; k < nz; k++)
    for (let j = 0; j < ny; j++) {
      const src = nx * (j + ny * k);
      t.set(mu.subarray(src, src + nx), nx * (k + nz * j));
    }
  sm.planesJ = start;
  return true;
}

/**
 * Line integrals of attenuation (unitless) for every pixel, single-threaded; row-major, columns fastest.
 * `rowStart`/`rowEnd` render a band only (the other rows of `out` are left as they are).
 */
export function renderLineIntegrals(
  dv: DrrVolume,
  g: CarmGeometry,
  out: Float32Array = new Float32Array(g.columns * g.rows),
  rowStart = 0,
  rowEnd = g.rows,
  rays: RayOptions = {},
): Float32Array {
  if (out.length !== g.columns * g.rows)
    throw new DrrError(`output holds ${out.length} values, the image needs ${g.columns * g.rows}`);
  if (!(
    Number.isInteger(rowStart) &&
    Number.isInteger(rowEnd) &&
    rowStart >= 0 &&
    rowEnd <= g.rows &&
    rowStart <= rowEnd
  )) {
    throw new DrrError(`row range ${rowStart}..${rowEnd} is outside 0..${g.rows}`);
  }
  drrKernel(
    drrParams(dv, g, undefined, rays),
    dv.mu,
    dv.occupancy,
    out,
    rowStart,
    rowEnd,
    dv.simd ? simdContext(dv.simd) : null,
  );
  return out;
}

// One instance per memory for the thread that prepared the volume (its scratch is the memory's first).
const contexts = new WeakMap<object, DrrSimdContext>();
function simdContext(sm: DrrSimdMemory): DrrSimdContext {
  let c = contexts.get(sm.memory);
  if (!c) {
    c = drrSimdContext(sm, sm.scratch);
    contexts.set(sm.memory, c);
  } else if (c.f32.byteLength < sm.memory.buffer.byteLength) {
    // The (shared) memory grew: views of its new length, so that the transposed copy is in reach.
    c.f32 = new Float32Array(sm.memory.buffer);
    c.i32 = new Int32Array(sm.memory.buffer);
  }
  return c;
}
