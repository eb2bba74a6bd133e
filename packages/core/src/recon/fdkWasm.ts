/**
 * FDK's backprojection for axial grids as WebAssembly SIMD (4 lanes of f32), assembled here from opcodes
 * like the DRR's row loops (drr/wasm.ts): no toolchain, nothing fetched, the same bytes in Node and in
 * browser workers.
 *
 *   bprow(out, qv, lo, hi, nx, nk, sliceBytes, colBytes, cMax, rMax, d0, a0, b0, b2, wj, cj, rj):
 *     one voxel row (fixed j) of nk slices, voxels i = lo..hi, one view. Four neighbouring voxels along i
 *     take the four lanes: w = d0 i + wj, c = (a0 i + cj) / w (their column and depth, the same in every
 *     slice since the grid's k axis is the rotation axis), then per slice r = (b0 i + rj + b2 dk) / w and
 *     out[voxel] += Q(c, r) / w^2, Q read bilinearly at byte address qv (the view's filtered projection,
 *     colBytes per detector row). A voxel that this view does not see (w <= 0, or c, r off the detector)
 *     gets NaN added: it stays NaN, and the caller turns NaN into its "outside" flag.
 *
 * All addresses are byte addresses in the imported memory (env.mem); out points at voxel (0, j, kStart),
 * slices sliceBytes apart. Groups of four that pass the row's end (nx) are moved back to end at nx - 1,
 * the lanes already done masked, so no voxel outside the row is touched (other workers own other slabs).
 */
import {
  body,
  END,
  F32,
  get,
  I32,
  i32const,
  memoryLimits,
  name,
  section,
  set,
  simd,
  tee,
  V128,
  vec,
  wasmApi,
  wasmValidates,
  LOOP,
  I32_ADD,
  V128_LOAD,
  V128_STORE,
  I32X4_SPLAT,
  F32X4_SPLAT,
  I32X4_EXTRACT,
  V128_AND,
  I32X4_ADD,
  F32X4_ADD,
  F32X4_SUB,
  F32X4_MUL,
  BLOCK,
  IF,
  ELSE,
  BR,
  BR_IF,
  SELECT,
  I32_SUB,
  I32_AND,
  I32_GT_S,
  I32_NE,
  type WasmMemory,
  type WasmModule,
} from '../drr/wasmAsm.js';
import { ReconError } from './scan.js';

const I32_SHL = [0x74];
const v128const = (bytes: number[]) => simd(0x0c, ...bytes);
const f32Bytes = (x: number) => Array.from(new Uint8Array(Float32Array.of(x).buffer));
const i32Bytes = (x: number) => Array.from(new Uint8Array(Int32Array.of(x).buffer));
const LOAD64_ZERO = simd(0x5d, 3, 0);
/** v128.load64_lane: 8 bytes at the address into 64-bit lane `lane` of the vector (address, vector on the stack). */
const LOAD64_LANE = (lane: number) => simd(0x57, 3, 0, lane);
const SHUFFLE = (lanes: number[]) => simd(0x0d, ...lanes);
const V128_BITSELECT = simd(0x52);
const I32X4_GE_S = simd(0x3f),
  I32X4_LE_S = simd(0x3d);
const F32X4_LT = simd(0x43),
  F32X4_GT = simd(0x44),
  F32X4_GE = simd(0x46),
  F32X4_DIV = simd(0xe7),
  F32X4_PMIN = simd(0xea),
  F32X4_PMAX = simd(0xeb),
  F32X4_FLOOR = simd(0x68),
  I32X4_SUB = simd(0xb1),
  F32X4_CONVERT_I32X4_S = simd(0xfa),
  I32X4_ALL_TRUE = simd(0xa3);
const F32_CONVERT_I32_S = [0xb2];
const ZERO4 = v128const(new Array<number>(16).fill(0));
const ONE4 = v128const([0, 1, 2, 3].flatMap(() => f32Bytes(1)));
// The fast loop's margin inside the detector's rows (pixels): far above float32 rounding of r over a slab.
const EDGE = 1 / 64;
const EDGE4 = v128const([0, 1, 2, 3].flatMap(() => f32Bytes(EDGE)));
const FOUR4 = v128const([0, 1, 2, 3].flatMap(() => f32Bytes(4)));
const NAN4 = v128const([0, 1, 2, 3].flatMap(() => i32Bytes(0x7fc00000)));
const LANES4 = v128const([0, 1, 2, 3].flatMap(i32Bytes));
// 2^23: a whole float x in 0..2^23 added to it has x's value in the low bits of its bit pattern.
const MAGIC4 = v128const([0, 1, 2, 3].flatMap(() => f32Bytes(8388608)));
const MAGIC_BITS4 = v128const([0, 1, 2, 3].flatMap(() => i32Bytes(0x4b000000)));
// Of two vectors of (Q[c], Q[c + 1]) pairs for lanes 0, 1 and 2, 3: the four Q[c], or the four Q[c + 1].
const EVENS = [0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27];
const ODDS = EVENS.map((b) => b + 4);

// bprow's parameters (i32 then f32, in the signature's order), then its own locals (i32, then v128): each
// name's local index. The builder below addresses locals only through P and L.
const I32_PARAM_NAMES = ['out', 'qv', 'lo', 'hi', 'nx', 'nk', 'sliceBytes', 'colBytes'] as const;
const F32_PARAM_NAMES = ['cMax', 'rMax', 'd0', 'a0', 'b0', 'b2', 'wj', 'cj', 'rj'] as const;
const I32_LOCAL_NAMES = ['i', 'io', 'lb', 'k', 'o', 'ad0', 'ad1', 'ad2', 'ad3'] as const;
// prettier-ignore
const V128_LOCAL_NAMES = [
  'iv', 'rmask', 'inv', 'c4', 'inC', 'ic', 'fc', 'ww', 'rh', 'base', 'miss', 'r', 'm', 'ir', 'fr', 'a', 'p01',
  'p23', 'q01', 'q23', 'x0', 'w4', 't', 'rMax4', 'irMax4', 'b24', 'col4', 'lim4',
] as const;
const indexOf = <T extends string>(names: readonly T[], first: number) =>
  Object.fromEntries(names.map((n, i) => [n, first + i])) as Record<T, number>;
const P = {
  ...indexOf(I32_PARAM_NAMES, 0),
  ...indexOf(F32_PARAM_NAMES, I32_PARAM_NAMES.length),
};
const NPARAMS = I32_PARAM_NAMES.length + F32_PARAM_NAMES.length;
const L = {
  ...indexOf(I32_LOCAL_NAMES, NPARAMS),
  ...indexOf(V128_LOCAL_NAMES, NPARAMS + I32_LOCAL_NAMES.length),
};

const fsplat = (p: number) => [...get(p), ...F32X4_SPLAT];
const isplat = (p: number) => [...get(p), ...I32X4_SPLAT];
/** a * iv + b, a and b f32 parameters (splat), iv the lanes' i. */
const affine = (a: number, b: number) => [...fsplat(a), ...get(L.iv), ...F32X4_MUL, ...fsplat(b), ...F32X4_ADD];
/** x + (y - x) * t on the stack, for v128 locals. */
const lerp = (x: number, y: number, t: number) => [
  ...get(x),
  ...get(y),
  ...get(x),
  ...F32X4_SUB,
  ...get(t),
  ...F32X4_MUL,
  ...F32X4_ADD,
];

/**
 * floor(x) clamped to 0..max (NaN-safe: pmax(0, NaN) is 0) from the v128 on the stack, left in `fl`, and
 * the fraction x - fl in `frac`; x is also in local `x`.
 */
const clampFloor = (x: number, max: number, fl: number, frac: number) => [
  ...ZERO4,
  ...get(x),
  ...F32X4_PMAX,
  ...get(max),
  ...F32X4_PMIN,
  ...F32X4_FLOOR,
  ...set(fl),
  ...get(x),
  ...get(fl),
  ...F32X4_SUB,
  ...set(frac),
];

/**
 * bprow's loop over the slab's slices for one group of four voxels (k counts down from nk; o, rh, base, fc,
 * ww, miss, inC set). `fast`: every lane sees the view in every slice, so no mask, clamp or select.
 */
function sliceLoop(fast: boolean): number[] {
  const c: number[] = [...LOOP];
  c.push(...get(L.rh), ...get(L.inv), ...F32X4_MUL, ...set(L.r));
  if (fast) {
    c.push(...get(L.r), ...F32X4_FLOOR, ...set(L.ir), ...get(L.r), ...get(L.ir), ...F32X4_SUB, ...set(L.fr));
  } else {
    // m = inC & 0 <= r < rMax; ir = floor(r) clamped to 0..rMax - 1, fr.
    c.push(...get(L.inC), ...get(L.r), ...ZERO4, ...F32X4_GE, ...V128_AND);
    c.push(...get(L.r), ...get(L.rMax4), ...F32X4_LT, ...V128_AND, ...set(L.m));
    c.push(...clampFloor(L.r, L.irMax4, L.ir, L.fr));
  }
  // a = base + ir * colBytes: each lane's (Q[r][c], Q[r][c + 1]) and the next row's pair.
  c.push(...get(L.ir), ...get(L.col4), ...F32X4_MUL, ...MAGIC4, ...F32X4_ADD, ...get(L.base), ...I32X4_ADD);
  c.push(...set(L.a));
  const xs = [L.ad0, L.ad1, L.ad2, L.ad3];
  for (let lane = 0; lane < 4; lane++) c.push(...get(L.a), ...I32X4_EXTRACT(lane), ...set(xs[lane]));
  // Two lanes' pairs in one vector: lane l's 8 bytes into the low half, lane l + 1's into the high half.
  const pairs = (l: number, below: boolean) => {
    const at = (x: number) => [...get(x), ...(below ? [...get(P.colBytes), ...I32_ADD] : [])];
    return [...at(xs[l + 1]), ...at(xs[l]), ...LOAD64_ZERO, ...LOAD64_LANE(1)];
  };
  c.push(...pairs(0, false), ...set(L.p01), ...pairs(2, false), ...set(L.p23));
  c.push(...pairs(0, true), ...set(L.q01), ...pairs(2, true), ...set(L.q23));
  // x0 = Q[r] at c (lerp by fc), then the next row's into t; value = (x0 + (t - x0) fr) / w^2.
  c.push(...get(L.p01), ...get(L.p23), ...SHUFFLE(EVENS), ...set(L.x0));
  c.push(...get(L.p01), ...get(L.p23), ...SHUFFLE(ODDS), ...set(L.t));
  c.push(...lerp(L.x0, L.t, L.fc), ...set(L.x0));
  c.push(...get(L.q01), ...get(L.q23), ...SHUFFLE(EVENS), ...set(L.p01));
  c.push(...get(L.q01), ...get(L.q23), ...SHUFFLE(ODDS), ...set(L.t));
  c.push(...lerp(L.p01, L.t, L.fc), ...set(L.t));
  c.push(...lerp(L.x0, L.t, L.fr), ...get(L.ww), ...F32X4_MUL);
  // out += seen ? value : miss
  if (!fast) c.push(...get(L.miss), ...get(L.m), ...V128_BITSELECT);
  c.push(...set(L.t));
  c.push(...get(L.o), ...get(L.o), ...V128_LOAD, ...get(L.t), ...F32X4_ADD, ...V128_STORE);
  c.push(...get(L.o), ...get(P.sliceBytes), ...I32_ADD, ...set(L.o));
  c.push(...get(L.rh), ...get(L.b24), ...F32X4_ADD, ...set(L.rh));
  c.push(...get(L.k), ...i32const(1), ...I32_SUB, ...tee(L.k), ...i32const(0), ...I32_NE, ...BR_IF(0));
  c.push(...END);
  return c;
}

function bprowBody(): number[] {
  const c: number[] = [];
  // Loop invariants: rMax, the largest row index (rMax - 1), b2 and the row's bytes as f32 lanes.
  c.push(...fsplat(P.rMax), ...tee(L.rMax4), ...ONE4, ...F32X4_SUB, ...set(L.irMax4));
  c.push(...get(L.rMax4), ...EDGE4, ...F32X4_SUB, ...set(L.lim4));
  c.push(...fsplat(P.b2), ...set(L.b24));
  c.push(...get(P.colBytes), ...F32_CONVERT_I32_S, ...F32X4_SPLAT, ...set(L.col4));
  // i = lo & ~3
  c.push(...get(P.lo), ...i32const(-4), ...I32_AND, ...set(L.i));
  c.push(...BLOCK, ...LOOP);
  c.push(...get(L.i), ...get(P.hi), ...I32_GT_S, ...BR_IF(1));
  // lb = max(lo, i); io = i + 4 > nx ? nx - 4 : i (the lanes before lb are masked).
  c.push(...get(P.lo), ...get(L.i), ...get(P.lo), ...get(L.i), ...I32_GT_S, ...SELECT, ...set(L.lb));
  c.push(...get(P.nx), ...i32const(4), ...I32_SUB, ...get(L.i));
  c.push(...get(L.i), ...i32const(4), ...I32_ADD, ...get(P.nx), ...I32_GT_S, ...SELECT, ...set(L.io));
  // Lanes' i (integers, then f32) and the mask of lanes within lb..hi.
  c.push(...isplat(L.io), ...LANES4, ...I32X4_ADD, ...tee(L.t), ...F32X4_CONVERT_I32X4_S, ...set(L.iv));
  c.push(...get(L.t), ...isplat(L.lb), ...I32X4_GE_S, ...get(L.t), ...isplat(P.hi), ...I32X4_LE_S, ...V128_AND);
  c.push(...set(L.rmask));
  // w, 1 / w, column c, and whether the column is on the detector in front of the source.
  c.push(...affine(P.d0, P.wj), ...set(L.w4));
  c.push(...ONE4, ...get(L.w4), ...F32X4_DIV, ...set(L.inv));
  c.push(...affine(P.a0, P.cj), ...get(L.inv), ...F32X4_MUL, ...set(L.c4));
  c.push(...get(L.rmask), ...get(L.c4), ...ZERO4, ...F32X4_GE, ...V128_AND);
  c.push(...get(L.c4), ...fsplat(P.cMax), ...F32X4_LT, ...V128_AND);
  c.push(...get(L.w4), ...ZERO4, ...F32X4_GT, ...V128_AND, ...set(L.inC));
  // ic = floor(c) clamped to 0..cMax - 1 (lanes off the detector read a valid pixel, then are masked), fc.
  c.push(...fsplat(P.cMax), ...ONE4, ...F32X4_SUB, ...set(L.t));
  c.push(...clampFloor(L.c4, L.t, L.ic, L.fc));
  c.push(...get(L.inv), ...get(L.inv), ...F32X4_MUL, ...set(L.ww));
  c.push(...affine(P.b0, P.rj), ...set(L.rh));
  // base = qv + 4 ic - 2^23's bits (each row's address adds the bits of ir * colBytes + 2^23).
  c.push(...get(L.ic), ...FOUR4, ...F32X4_MUL, ...MAGIC4, ...F32X4_ADD, ...isplat(P.qv), ...I32X4_ADD);
  c.push(...MAGIC_BITS4, ...I32X4_SUB, ...MAGIC_BITS4, ...I32X4_SUB, ...set(L.base));
  // miss = NaN in the lanes within the row range, 0 elsewhere.
  c.push(...get(L.rmask), ...NAN4, ...V128_AND, ...set(L.miss));
  // o = out + 4 io; k = nk
  c.push(...get(P.out), ...get(L.io), ...i32const(2), ...I32_SHL, ...I32_ADD, ...set(L.o));
  c.push(...get(P.nk), ...set(L.k));
  // r is linear in the slice: when every lane sees this view in the slab's first and last slices (rows
  // EDGE inside the detector), it does in all of them, and the slices need neither the mask nor the clamp
  // (floor(r) is then within the rows): the same sums, fewer instructions.
  c.push(...get(L.inC), ...get(L.rh), ...get(L.inv), ...F32X4_MUL, ...tee(L.r), ...EDGE4, ...F32X4_GE, ...V128_AND);
  c.push(...get(L.r), ...get(L.lim4), ...F32X4_LT, ...V128_AND);
  c.push(...get(P.nk), ...i32const(1), ...I32_SUB, ...F32_CONVERT_I32_S, ...F32X4_SPLAT, ...get(L.b24), ...F32X4_MUL);
  c.push(...get(L.rh), ...F32X4_ADD, ...get(L.inv), ...F32X4_MUL, ...tee(L.r), ...EDGE4, ...F32X4_GE, ...V128_AND);
  c.push(...get(L.r), ...get(L.lim4), ...F32X4_LT, ...V128_AND, ...I32X4_ALL_TRUE);
  c.push(...IF, ...sliceLoop(true), ...ELSE, ...sliceLoop(false), ...END);
  c.push(...get(L.i), ...i32const(4), ...I32_ADD, ...set(L.i), ...BR(0), ...END, ...END);
  return body(
    [
      [I32_LOCAL_NAMES.length, I32],
      [V128_LOCAL_NAMES.length, V128],
    ],
    c,
  );
}

/** The module's bytes, importing env.mem with these limits (pages of 64 KiB; shared needs a maximum). */
export function fdkWasmBytes(memory: { initialPages: number; maximumPages?: number; shared?: boolean }): Uint8Array {
  const params = [...I32_PARAM_NAMES.map(() => [I32]), ...F32_PARAM_NAMES.map(() => [F32])];
  const types = section(1, vec([[0x60, ...vec(params), 0]]));
  const imports = section(
    2,
    vec([
      [...name('env'), ...name('mem'), 0x02, ...memoryLimits(memory.initialPages, memory.maximumPages, memory.shared)],
    ]),
  );
  const funcs = section(3, vec([[0]]));
  const exports = section(7, vec([[...name('bprow'), 0x00, 0]]));
  const code = section(10, vec([bprowBody()]));
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0, ...types, ...imports, ...funcs, ...exports, ...code]);
}

/** bprow's signature (see the module comment). */
export type FdkBprow = (
  out: number,
  qv: number,
  lo: number,
  hi: number,
  nx: number,
  nk: number,
  sliceBytes: number,
  colBytes: number,
  cMax: number,
  rMax: number,
  d0: number,
  a0: number,
  b0: number,
  b2: number,
  wj: number,
  cj: number,
  rj: number,
) => void;

/**
 * The memory FDK's SIMD backprojection works in: the filtered projections at qAddress and the summed
 * volume at outAddress (16-byte aligned byte addresses), with the module compiled for that memory.
 */
export interface FdkSimdMemory {
  /** WebAssembly.Memory (shared: its buffer is a SharedArrayBuffer, and it can be posted to workers). */
  memory: WasmMemory;
  /** WebAssembly.Module compiled for that memory. */
  module: WasmModule;
  qAddress: number;
  outAddress: number;
  /** Views of the two arrays in the memory. */
  q: Float32Array;
  out: Float32Array;
}

/** What fdkBackprojectKernel needs to run its rows in WebAssembly. */
export interface FdkSimdContext {
  bprow: FdkBprow;
  qAddress: number;
  outAddress: number;
}

const PAGE = 65536;

/** Whether this engine runs WebAssembly SIMD (it validates the module's bytes). */
export function fdkSimdAvailable(): boolean {
  return wasmValidates(() => fdkWasmBytes({ initialPages: 1 }));
}

/**
 * A WebAssembly memory holding `qValues` filtered-projection floats and `outValues` output floats (zeroed),
 * shared for worker threads or not. Null where WebAssembly SIMD is missing or the arrays would not fit in
 * 32-bit memory (the JavaScript loops then serve).
 */
export function createFdkSimdMemory(qValues: number, outValues: number, shared: boolean): FdkSimdMemory | null {
  const api = wasmApi();
  if (!api || !fdkSimdAvailable()) return null;
  const qAddress = 0,
    outAddress = Math.ceil((qValues * 4) / 16) * 16;
  const pages = Math.ceil((outAddress + outValues * 4 + 16) / PAGE);
  if (pages > 65536) return null;
  try {
    const memory = new api.Memory(shared ? { initial: pages, maximum: pages, shared: true } : { initial: pages });
    const module = new api.Module(
      fdkWasmBytes({ initialPages: pages, maximumPages: shared ? pages : undefined, shared }),
    );
    return {
      memory,
      module,
      qAddress,
      outAddress,
      q: new Float32Array(memory.buffer, qAddress, qValues),
      out: new Float32Array(memory.buffer, outAddress, outValues),
    };
  } catch {
    return null; // e.g. not enough memory for one more large allocation
  }
}

/** An instance over the memory (one per thread) and the context the kernel takes. */
export function fdkSimdContext(
  sm: Pick<FdkSimdMemory, 'memory' | 'module' | 'qAddress' | 'outAddress'>,
): FdkSimdContext {
  const api = wasmApi();
  if (!api) throw new ReconError('WebAssembly is not available in this engine');
  const inst = new api.Instance(sm.module, { env: { mem: sm.memory } });
  return { bprow: inst.exports.bprow as FdkBprow, qAddress: sm.qAddress, outAddress: sm.outAddress };
}
