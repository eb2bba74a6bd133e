/**
 * The plane sweep's two row loops as WebAssembly SIMD (4 lanes of f32), assembled here from opcodes: no
 * toolchain, no build step, nothing fetched; the same bytes work in Node and in browser workers. Measured
 * on the benchmark volume they make the whole projection about 4 times faster than the same loops in
 * JavaScript (typed-array bounds checks and scalar arithmetic are most of those loops' cost).
 *
 *   hrow(h, row, hEnd, ipOff, tp, strideP2): for each 4 floats of h up to hEnd:
 *       x = row + ipOff[i] (byte addresses of 16-bit attenuation),
 *       h[i] = mu(x) + (mu(x + strideP2) - mu(x)) * tp[i]            (one row resampled along p)
 *   hrow1: the same for strideP2 = 2, reading each voxel pair with one 32-bit load
 *   hrow1s(h, row, hEnd, base, mask, tp): hrow1 where each block of four columns reads voxels within 16
 *       bytes of its first: one 16-byte load at row + base[block] and a byte shuffle (mask[block], 16
 *       bytes) put the four voxel pairs in their lanes (same values as hrow1; 0.91-0.96 of the DRR time
 *       on the C-arm CT benchmark's views, measured back to back)
 *   hrow2(h, row, hEnd, ipOff, tp, strideP2, planeBytes, tm): hrow on two planes `planeBytes` apart,
 *       blended: h[i] = ha[i] + (hb[i] - ha[i]) * tm   (samples between planes, several per plane)
 *   accrow(acc, accEnd, ha, hb, tq): acc[i] += ha[i] + (hb[i] - ha[i]) * tq   (blend of two rows)
 *
 * All pointers are byte addresses in the memory the module imports (env.mem), 16-byte aligned, and the
 * lengths are whole multiples of 4 floats. The volume's attenuation must lie in that memory.
 */

import { DrrError } from './attenuation.js';

import {
  body,
  END,
  F32,
  get,
  i32const,
  I32,
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
  type WasmMemory,
  type WasmModule,
} from './wasmAsm.js';

const I32_LT_U = [0x49];
const BR_IF_0 = [0x0d, 0x00];
const I32_LOAD = [0x28, 2, 0];
const V128_LOAD_UNALIGNED = simd(0x00, 0, 0),
  I8X16_SWIZZLE = simd(0x0e);
const V128_ZERO = simd(0x0c, ...new Array<number>(16).fill(0));
const LOAD16_LANE = (lane: number) => simd(0x55, 1, 0, lane);
const I32X4_EXTEND_LOW_I16X8_U = simd(0xa9),
  I32X4_SHR_U = simd(0xad);
const LOAD32_LANE = (lane: number) => simd(0x56, 2, 0, lane);
const V128_LOW16 = simd(0x0c, ...[0, 1, 2, 3].flatMap(() => [0xff, 0xff, 0, 0]));
const F32X4_CONVERT_I32X4_U = simd(0xfb);

/** Advance the listed pointer locals by 16 bytes. */
const advance = (...locals: number[]) => locals.flatMap((l) => [...get(l), ...i32const(16), ...I32_ADD, ...set(l)]);

// Each function's locals by name: its parameters first (in the order of the DrrSimdContext signature),
// then its own locals. The builders below address locals only through these tables.
const HROW = { h: 0, row: 1, hEnd: 2, ipOff: 3, tp: 4, strideP2: 5, offsets: 6, a: 7, b: 8, x: 9 } as const;
const HROW1 = { h: 0, row: 1, hEnd: 2, ipOff: 3, tp: 4, strideP2: 5, offsets: 6, pairs: 7, first: 8 } as const;
const HROW2 = {
  h: 0,
  row: 1,
  hEnd: 2,
  ipOff: 3,
  tp: 4,
  strideP2: 5,
  planeBytes: 6,
  tm: 7,
  offsets: 8,
  a: 9,
  b: 10,
  c: 11,
  d: 12,
  tm4: 13,
  tpv: 14,
  x: 15,
} as const;
const ACCROW = { acc: 0, accEnd: 1, ha: 2, hb: 3, tq: 4, tq4: 5, a: 6 } as const;
const HROW1S = { h: 0, row: 1, hEnd: 2, base: 3, mask: 4, tp: 5, pairs: 6, first: 7 } as const;

function hrowBody(): number[] {
  const L = HROW; // locals offsets, a, b: v128; x: i32
  const c: number[] = [...LOOP];
  c.push(...get(L.ipOff), ...V128_LOAD, ...get(L.row), ...I32X4_SPLAT, ...I32X4_ADD, ...set(L.offsets));
  c.push(...V128_ZERO, ...set(L.a), ...V128_ZERO, ...set(L.b));
  for (let lane = 0; lane < 4; lane++) {
    c.push(...get(L.offsets), ...I32X4_EXTRACT(lane), ...tee(L.x), ...get(L.a), ...LOAD16_LANE(lane), ...set(L.a));
    c.push(...get(L.x), ...get(L.strideP2), ...I32_ADD, ...get(L.b), ...LOAD16_LANE(lane), ...set(L.b));
  }
  c.push(...get(L.a), ...I32X4_EXTEND_LOW_I16X8_U, ...F32X4_CONVERT_I32X4_U, ...tee(L.a));
  c.push(...get(L.b), ...I32X4_EXTEND_LOW_I16X8_U, ...F32X4_CONVERT_I32X4_U, ...get(L.a), ...F32X4_SUB);
  c.push(...get(L.tp), ...V128_LOAD, ...F32X4_MUL, ...F32X4_ADD, ...set(L.b));
  c.push(...get(L.h), ...get(L.b), ...V128_STORE);
  c.push(...advance(L.h, L.ipOff, L.tp));
  c.push(...get(L.h), ...get(L.hEnd), ...I32_LT_U, ...BR_IF_0, ...END);
  return body(
    [
      [3, V128],
      [1, I32],
    ],
    c,
  );
}

/** hrow for rows along the fastest axis (strideP2 = 2): one 32-bit load gives a voxel and its neighbour. */
function hrow1Body(): number[] {
  const L = HROW1; // strideP2 unused; locals offsets, pairs, first: v128
  const c: number[] = [...LOOP];
  c.push(...get(L.ipOff), ...V128_LOAD, ...get(L.row), ...I32X4_SPLAT, ...I32X4_ADD, ...set(L.offsets));
  c.push(...V128_ZERO, ...set(L.pairs));
  for (let lane = 0; lane < 4; lane++) {
    c.push(...get(L.offsets), ...I32X4_EXTRACT(lane), ...get(L.pairs), ...LOAD32_LANE(lane), ...set(L.pairs));
  }
  c.push(...get(L.pairs), ...V128_LOW16, ...V128_AND, ...F32X4_CONVERT_I32X4_U, ...tee(L.first));
  c.push(...get(L.pairs), ...i32const(16), ...I32X4_SHR_U, ...F32X4_CONVERT_I32X4_U, ...get(L.first), ...F32X4_SUB);
  c.push(...get(L.tp), ...V128_LOAD, ...F32X4_MUL, ...F32X4_ADD, ...set(L.pairs));
  c.push(...get(L.h), ...get(L.pairs), ...V128_STORE);
  c.push(...advance(L.h, L.ipOff, L.tp));
  c.push(...get(L.h), ...get(L.hEnd), ...I32_LT_U, ...BR_IF_0, ...END);
  return body([[3, V128]], c);
}

/**
 * hrow1 for blocks whose four voxel pairs lie within 16 bytes of the block's first voxel: one 16-byte
 * load at row + base[block] and a byte shuffle (mask[block]) put each lane's pair in place.
 */
function hrow1sBody(): number[] {
  const L = HROW1S; // locals pairs, first: v128
  const c: number[] = [...LOOP];
  c.push(...get(L.row), ...get(L.base), ...I32_LOAD, ...I32_ADD, ...V128_LOAD_UNALIGNED);
  c.push(...get(L.mask), ...V128_LOAD, ...I8X16_SWIZZLE, ...set(L.pairs));
  c.push(...get(L.pairs), ...V128_LOW16, ...V128_AND, ...F32X4_CONVERT_I32X4_U, ...tee(L.first));
  c.push(...get(L.pairs), ...i32const(16), ...I32X4_SHR_U, ...F32X4_CONVERT_I32X4_U, ...get(L.first), ...F32X4_SUB);
  c.push(...get(L.tp), ...V128_LOAD, ...F32X4_MUL, ...F32X4_ADD, ...set(L.pairs));
  c.push(...get(L.h), ...get(L.pairs), ...V128_STORE);
  c.push(...advance(L.h, L.mask, L.tp));
  c.push(...get(L.base), ...i32const(4), ...I32_ADD, ...set(L.base));
  c.push(...get(L.h), ...get(L.hEnd), ...I32_LT_U, ...BR_IF_0, ...END);
  return body([[2, V128]], c);
}

/** hrow on two planes and their blend by tm: the plane sweep's samples between planes (sub > 1). */
function hrow2Body(): number[] {
  const L = HROW2; // locals offsets, a, b, c, d, tm4, tpv: v128; x: i32
  const c: number[] = [...get(L.tm), ...F32X4_SPLAT, ...set(L.tm4), ...LOOP];
  c.push(...get(L.ipOff), ...V128_LOAD, ...get(L.row), ...I32X4_SPLAT, ...I32X4_ADD, ...set(L.offsets));
  c.push(...V128_ZERO, ...set(L.a), ...V128_ZERO, ...set(L.b), ...V128_ZERO, ...set(L.c), ...V128_ZERO, ...set(L.d));
  for (let lane = 0; lane < 4; lane++) {
    c.push(...get(L.offsets), ...I32X4_EXTRACT(lane), ...tee(L.x), ...get(L.a), ...LOAD16_LANE(lane), ...set(L.a));
    c.push(...get(L.x), ...get(L.strideP2), ...I32_ADD, ...get(L.b), ...LOAD16_LANE(lane), ...set(L.b));
    c.push(...get(L.x), ...get(L.planeBytes), ...I32_ADD, ...tee(L.x), ...get(L.c), ...LOAD16_LANE(lane), ...set(L.c));
    c.push(...get(L.x), ...get(L.strideP2), ...I32_ADD, ...get(L.d), ...LOAD16_LANE(lane), ...set(L.d));
  }
  c.push(...get(L.tp), ...V128_LOAD, ...set(L.tpv));
  // a = mu(x) + (mu(x + strideP2) - mu(x)) tp on the first plane, c the same on the second.
  c.push(...get(L.a), ...I32X4_EXTEND_LOW_I16X8_U, ...F32X4_CONVERT_I32X4_U, ...tee(L.a));
  c.push(...get(L.b), ...I32X4_EXTEND_LOW_I16X8_U, ...F32X4_CONVERT_I32X4_U, ...get(L.a), ...F32X4_SUB);
  c.push(...get(L.tpv), ...F32X4_MUL, ...F32X4_ADD, ...set(L.a));
  c.push(...get(L.c), ...I32X4_EXTEND_LOW_I16X8_U, ...F32X4_CONVERT_I32X4_U, ...tee(L.c));
  c.push(...get(L.d), ...I32X4_EXTEND_LOW_I16X8_U, ...F32X4_CONVERT_I32X4_U, ...get(L.c), ...F32X4_SUB);
  c.push(...get(L.tpv), ...F32X4_MUL, ...F32X4_ADD);
  // h = a + (c - a) tm
  c.push(...get(L.a), ...F32X4_SUB, ...get(L.tm4), ...F32X4_MUL, ...get(L.a), ...F32X4_ADD, ...set(L.b));
  c.push(...get(L.h), ...get(L.b), ...V128_STORE);
  c.push(...advance(L.h, L.ipOff, L.tp));
  c.push(...get(L.h), ...get(L.hEnd), ...I32_LT_U, ...BR_IF_0, ...END);
  return body(
    [
      [7, V128],
      [1, I32],
    ],
    c,
  );
}

function accrowBody(): number[] {
  const L = ACCROW; // tq is f32; locals tq4 (tq in 4 lanes), a: v128
  const c: number[] = [...get(L.tq), ...F32X4_SPLAT, ...set(L.tq4), ...LOOP];
  c.push(...get(L.ha), ...V128_LOAD, ...tee(L.a), ...get(L.hb), ...V128_LOAD, ...get(L.a), ...F32X4_SUB);
  c.push(...get(L.tq4), ...F32X4_MUL, ...F32X4_ADD);
  c.push(...get(L.acc), ...V128_LOAD, ...F32X4_ADD, ...set(L.a), ...get(L.acc), ...get(L.a), ...V128_STORE);
  c.push(...advance(L.acc, L.ha, L.hb));
  c.push(...get(L.acc), ...get(L.accEnd), ...I32_LT_U, ...BR_IF_0, ...END);
  return body([[2, V128]], c);
}

/** The module's bytes, importing env.mem with these limits (pages of 64 KiB; shared needs a maximum). */
export function drrWasmBytes(memory: { initialPages: number; maximumPages?: number; shared?: boolean }): Uint8Array {
  const { initialPages, maximumPages, shared } = memory;
  const limits = memoryLimits(initialPages, maximumPages, shared);
  const types = section(
    1,
    vec([
      [0x60, ...vec([[I32], [I32], [I32], [I32], [I32], [I32]]), 0],
      [0x60, ...vec([[I32], [I32], [I32], [I32], [F32]]), 0],
      [0x60, ...vec([[I32], [I32], [I32], [I32], [I32], [I32], [I32], [F32]]), 0],
    ]),
  );
  const imports = section(2, vec([[...name('env'), ...name('mem'), 0x02, ...limits]]));
  const funcs = section(3, vec([[0], [1], [0], [2], [0]]));
  const exports = section(
    7,
    vec([
      [...name('hrow'), 0x00, 0],
      [...name('accrow'), 0x00, 1],
      [...name('hrow1'), 0x00, 2],
      [...name('hrow2'), 0x00, 3],
      [...name('hrow1s'), 0x00, 4],
    ]),
  );
  const code = section(10, vec([hrowBody(), accrowBody(), hrow1Body(), hrow2Body(), hrow1sBody()]));
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0, ...types, ...imports, ...funcs, ...exports, ...code]);
}

/** What drrKernel needs to run its row loops in WebAssembly: an instance and this thread's scratch. */
export interface DrrSimdContext {
  hrow: (h: number, row: number, hEnd: number, ipOff: number, tp: number, strideP2: number) => void;
  /** hrow for strideP2 = 2 (rows along the volume's fastest axis). */
  hrow1: (h: number, row: number, hEnd: number, ipOff: number, tp: number, strideP2: number) => void;
  /**
   * hrow1 from one 16-byte load per block of four columns: base holds each block's first byte offset
   * (i32), mask its 16-byte shuffle (each lane's voxel pair), tp the weights.
   */
  hrow1s: (h: number, row: number, hEnd: number, base: number, mask: number, tp: number) => void;
  /** hrow on two planes `planeBytes` apart, blended by tm (samples between planes). */
  hrow2: (
    h: number,
    row: number,
    hEnd: number,
    ipOff: number,
    tp: number,
    strideP2: number,
    planeBytes: number,
    tm: number,
  ) => void;
  accrow: (acc: number, accEnd: number, ha: number, hb: number, tq: number) => void;
  /** Views of the whole memory (taken after its last growth). */
  f32: Float32Array;
  i32: Int32Array;
  /** This thread's scratch: byte address (16-aligned) and size. */
  scratch: number;
  scratchBytes: number;
}

/** A memory holding a volume's attenuation for the SIMD loops, with the module compiled for it. */
export interface DrrSimdMemory {
  /** WebAssembly.Memory (shared: its buffer is a SharedArrayBuffer, and it can be posted to workers). */
  memory: WasmMemory;
  /** WebAssembly.Module compiled for that memory. */
  module: WasmModule;
  /** Scratch bytes per thread (drrKernel falls back to JavaScript loops if an image needs more). */
  scratchBytes: number;
  /** Byte address of the first thread's scratch (the thread that prepared the volume). */
  scratch: number;
  /**
   * Byte address of a copy of mu with j fastest (index j + ny (k + nz i)), made on demand for views along
   * i (addDrrTransposedCopy): their rows along j are then contiguous instead of nx voxels apart.
   */
  transposedJ?: number;
  /**
   * Byte address of a copy of mu with each plane of j contiguous (index i + nx (k + nz j)), made on demand
   * for views along j (addDrrPlanesJCopy): a plane's rows are then adjacent instead of nx ny voxels apart.
   */
  planesJ?: number;
}

export const DRR_SCRATCH_BYTES = 2 * 1024 * 1024;
const PAGE = 65536;

/** Whether this engine runs WebAssembly SIMD (it validates the module's bytes). */
export function drrSimdAvailable(): boolean {
  return wasmValidates(() => drrWasmBytes({ initialPages: 1 }));
}

/**
 * A WebAssembly memory with `dataBytes` at address 0 (for the attenuation) and one thread's scratch after
 * it; shared memories can take more threads' scratch later (`addDrrScratch`). Null where WebAssembly SIMD
 * is not available or the data would not fit in 32-bit memory.
 */
export function createDrrSimdMemory(dataBytes: number, shared: boolean): DrrSimdMemory | null {
  const api = wasmApi();
  if (!api || !drrSimdAvailable()) return null;
  const scratch = Math.ceil(dataBytes / 16) * 16;
  const pages = Math.ceil((scratch + DRR_SCRATCH_BYTES) / PAGE);
  // A shared memory may later hold two reordered copies of the data and more threads' scratch.
  const maximumPages = Math.min(65536, shared ? 3 * pages + 1024 : pages);
  if (pages > 65536) return null;
  try {
    const memory = new api.Memory(
      shared ? { initial: pages, maximum: maximumPages, shared: true } : { initial: pages },
    );
    const module = new api.Module(
      drrWasmBytes({ initialPages: pages, maximumPages: shared ? maximumPages : undefined, shared }),
    );
    return { memory, module, scratchBytes: DRR_SCRATCH_BYTES, scratch };
  } catch {
    return null; // e.g. not enough memory for one more large allocation: the JavaScript loops still work
  }
}

/** Grow a shared memory by `threads` scratch areas; their byte addresses (null if it cannot grow). */
export function addDrrScratch(sm: DrrSimdMemory, threads: number): number[] | null {
  const start = sm.memory.buffer.byteLength;
  try {
    sm.memory.grow(Math.ceil((threads * sm.scratchBytes) / PAGE));
  } catch {
    return null;
  }
  return Array.from({ length: threads }, (_, i) => start + i * sm.scratchBytes);
}

/** An instance over the memory and the row-loop context for the scratch at `scratch`. */
export function drrSimdContext(sm: DrrSimdMemory, scratch: number): DrrSimdContext {
  const api = wasmApi();
  if (!api) throw new DrrError('WebAssembly is not available in this engine');
  const inst = new api.Instance(sm.module, { env: { mem: sm.memory } });
  const e = inst.exports as unknown as Pick<DrrSimdContext, 'hrow' | 'hrow1' | 'hrow1s' | 'hrow2' | 'accrow'>;
  const buf = sm.memory.buffer;
  return {
    hrow: e.hrow,
    hrow1: e.hrow1,
    hrow1s: e.hrow1s,
    hrow2: e.hrow2,
    accrow: e.accrow,
    f32: new Float32Array(buf),
    i32: new Int32Array(buf),
    scratch,
    scratchBytes: sm.scratchBytes,
  };
}
