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
 *   vrows(...): one plane's (or plane sample's) pass over a tile of virtual rows, the loop drrKernel ran in
 *       JavaScript: each row's q, the two voxel rows it needs resampled by one of the loops above (kept
 *       while the next virtual rows need the same), then accrow; one call per plane instead of one or two
 *       per virtual row (see VROWS for the parameters)
 *   coltab(...): one plane's column table (each virtual column's voxel offset and weight) and hrow1s's
 *       block tables, the loop drrKernel ran in JavaScript (see COLTAB)
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
// The voxels are 16-bit (0..65535 in a 32-bit lane): the signed conversion is exact and one instruction on
// x86, where the unsigned one takes several (0.88-0.90 of the DRR time on the C-arm CT benchmark's views).
const F32X4_CONVERT_I32X4_S = simd(0xfa);
const F64 = 0x7c;
const CALL = (f: number) => [0x10, f];
const I32_EQZ = [0x45],
  I32_EQ = [0x46],
  I32_GE_S = [0x4e],
  I32_GE_U = [0x4f],
  I32_MUL = [0x6c],
  I32_OR = [0x72],
  I32_XOR = [0x73];
const F64_LT = [0x63],
  F64_GT = [0x64],
  F64_LE = [0x65],
  F64_GE = [0x66],
  F64_ADD = [0xa0],
  F64_SUB = [0xa1],
  F64_MUL = [0xa2],
  I32_TRUNC_F64_S = [0xaa],
  F32_DEMOTE_F64 = [0xb6],
  F64_CONVERT_I32_S = [0xb7];
const F32_STORE = [0x38, 2, 0];
const I32_STORE = [0x36, 2, 0];
const I32_LT_S = [0x48],
  I32_SHL = [0x74];
const I32_TRUNC_SAT_F64_S = [0xfc, 0x02];
const f64const = (x: number) => [0x44, ...new Uint8Array(Float64Array.of(x).buffer)];
const F32_ZERO = [0x43, 0, 0, 0, 0];

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
  c.push(...get(L.a), ...I32X4_EXTEND_LOW_I16X8_U, ...F32X4_CONVERT_I32X4_S, ...tee(L.a));
  c.push(...get(L.b), ...I32X4_EXTEND_LOW_I16X8_U, ...F32X4_CONVERT_I32X4_S, ...get(L.a), ...F32X4_SUB);
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
  c.push(...get(L.pairs), ...V128_LOW16, ...V128_AND, ...F32X4_CONVERT_I32X4_S, ...tee(L.first));
  c.push(...get(L.pairs), ...i32const(16), ...I32X4_SHR_U, ...F32X4_CONVERT_I32X4_S, ...get(L.first), ...F32X4_SUB);
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
  c.push(...get(L.pairs), ...V128_LOW16, ...V128_AND, ...F32X4_CONVERT_I32X4_S, ...tee(L.first));
  c.push(...get(L.pairs), ...i32const(16), ...I32X4_SHR_U, ...F32X4_CONVERT_I32X4_S, ...get(L.first), ...F32X4_SUB);
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
  c.push(...get(L.a), ...I32X4_EXTEND_LOW_I16X8_U, ...F32X4_CONVERT_I32X4_S, ...tee(L.a));
  c.push(...get(L.b), ...I32X4_EXTEND_LOW_I16X8_U, ...F32X4_CONVERT_I32X4_S, ...get(L.a), ...F32X4_SUB);
  c.push(...get(L.tpv), ...F32X4_MUL, ...F32X4_ADD, ...set(L.a));
  c.push(...get(L.c), ...I32X4_EXTEND_LOW_I16X8_U, ...F32X4_CONVERT_I32X4_S, ...tee(L.c));
  c.push(...get(L.d), ...I32X4_EXTEND_LOW_I16X8_U, ...F32X4_CONVERT_I32X4_S, ...get(L.c), ...F32X4_SUB);
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

/**
 * vrows's parameters (in the DrrSimdContext signature's order), then its own locals. One call is one
 * plane sample's pass over the virtual rows t0..t1-1 of a tile (all byte addresses):
 *   accBase: the tile's sums at row t0, column ua4; accStride: bytes per row of the sums;
 *   vOff: the band's first virtual row (q of virtual row V is qG + (V + vOff) qB, taken where
 *     -1e-9 <= q <= qHi, clamped to 0 and, as iq, to nq2 = nq - 2);
 *   rowBase: the plane's voxel row 0 (at column 0 of the row loops' tables), sQ2: bytes per row along q;
 *   h0, h1: the two resampled rows (at column ua4), hLen: their bytes (ua4..ub4);
 *   tab1: the resampler's offsets (ipOff, or hrow1s's block bases), mask, tp, strideP2, planeBytes, tm: its
 *     other arguments; mode: 0 hrow, 1 hrow1, 2 hrow1s, 3 hrow2;
 *   zLo, zHi: the bytes of h before zLo and from zHi on (the columns outside ua..ub) are zeroed.
 */
const VROWS = {
  accBase: 0,
  accStride: 1,
  t0: 2,
  t1: 3,
  vOff: 4,
  qG: 5,
  qB: 6,
  qHi: 7,
  nq2: 8,
  rowBase: 9,
  sQ2: 10,
  h0: 11,
  h1: 12,
  hLen: 13,
  tab1: 14,
  mask: 15,
  tp: 16,
  strideP2: 17,
  planeBytes: 18,
  tm: 19,
  mode: 20,
  zLo: 21,
  zHi: 22,
  // locals: i32 ...
  v: 23,
  iq: 24,
  keyA: 25,
  keyB: 26,
  slotA: 27,
  qi: 28,
  h: 29,
  z: 30,
  row: 31,
  // ... f64
  q: 32,
  tq: 33,
} as const;

// Function indices in the module (the order of its function section).
const FN = { hrow: 0, accrow: 1, hrow1: 2, hrow2: 3, hrow1s: 4 } as const;

/** Zero h's bytes from `from` (a local) up to `to` (a local), 4 at a time. */
function zeroBytes(from: number, to: number): number[] {
  const L = VROWS;
  return [
    ...get(from),
    ...set(L.z),
    ...BLOCK,
    ...LOOP,
    ...get(L.z),
    ...get(to),
    ...I32_GE_U,
    ...BR_IF(1),
    ...get(L.h),
    ...get(L.z),
    ...I32_ADD,
    ...F32_ZERO,
    ...F32_STORE,
    ...get(L.z),
    ...i32const(4),
    ...I32_ADD,
    ...set(L.z),
    ...BR(0),
    ...END,
    ...END,
  ];
}

/** Voxel row `qi` of the plane resampled into h by the mode's loop, its columns outside ua..ub zeroed. */
function resampleInto(): number[] {
  const L = VROWS;
  const c: number[] = [...get(L.rowBase), ...get(L.qi), ...get(L.sQ2), ...I32_MUL, ...I32_ADD, ...set(L.row)];
  const head = [...get(L.h), ...get(L.row), ...get(L.h), ...get(L.hLen), ...I32_ADD, ...get(L.tab1)];
  c.push(...get(L.mode), ...i32const(2), ...I32_EQ, ...IF);
  c.push(...head, ...get(L.mask), ...get(L.tp), ...CALL(FN.hrow1s));
  c.push(...ELSE, ...get(L.mode), ...i32const(3), ...I32_EQ, ...IF);
  c.push(...head, ...get(L.tp), ...get(L.strideP2), ...get(L.planeBytes), ...get(L.tm), ...CALL(FN.hrow2));
  c.push(...ELSE, ...get(L.mode), ...IF);
  c.push(...head, ...get(L.tp), ...get(L.strideP2), ...CALL(FN.hrow1));
  c.push(...ELSE, ...head, ...get(L.tp), ...get(L.strideP2), ...CALL(FN.hrow), ...END, ...END, ...END);
  c.push(...i32const(0), ...set(L.row), ...zeroBytes(L.row, L.zLo), ...zeroBytes(L.zHi, L.hLen));
  return c;
}

/** slotA ? a : b (i32 locals). */
const pick = (a: number, b: number) => [...get(a), ...get(b), ...get(VROWS.slotA), ...SELECT];

/** The virtual-row loop of drrKernel's plane sweep (see VROWS), as drrKernel's JavaScript ran it. */
function vrowsBody(): number[] {
  const L = VROWS;
  const c: number[] = [...i32const(-1), ...set(L.keyA), ...i32const(-1), ...set(L.keyB)];
  c.push(...i32const(0), ...set(L.slotA), ...get(L.t0), ...set(L.v));
  c.push(...BLOCK, ...LOOP, ...get(L.v), ...get(L.t1), ...I32_GE_S, ...BR_IF(1), ...BLOCK);
  // q, skipped outside the plane's rows, then iq and tq.
  c.push(...get(L.qG), ...get(L.v), ...get(L.vOff), ...I32_ADD, ...F64_CONVERT_I32_S, ...get(L.qB), ...F64_MUL);
  c.push(...F64_ADD, ...tee(L.q), ...f64const(-1e-9), ...F64_GE, ...get(L.q), ...get(L.qHi), ...F64_LE);
  c.push(...I32_AND, ...I32_EQZ, ...BR_IF(0));
  c.push(...f64const(0), ...get(L.q), ...get(L.q), ...f64const(0), ...F64_LT, ...SELECT, ...set(L.q));
  c.push(...get(L.q), ...I32_TRUNC_F64_S, ...tee(L.iq), ...get(L.nq2), ...I32_GT_S, ...IF);
  c.push(...get(L.nq2), ...set(L.iq), ...END);
  c.push(...get(L.q), ...get(L.iq), ...F64_CONVERT_I32_S, ...F64_SUB, ...tee(L.tq), ...f64const(1), ...F64_GT);
  c.push(...IF, ...f64const(1), ...set(L.tq), ...END);
  // Rows iq (slot slotA) and iq + 1 (the other slot), kept while the next virtual rows need the same.
  const iq1 = [...get(L.iq), ...i32const(1), ...I32_ADD];
  c.push(...get(L.keyA), ...get(L.iq), ...I32_NE, ...get(L.keyB), ...iq1, ...I32_NE, ...I32_OR, ...IF);
  const flip = [...get(L.slotA), ...i32const(1), ...I32_XOR, ...set(L.slotA)];
  c.push(...get(L.keyB), ...get(L.iq), ...I32_EQ, ...IF);
  c.push(...flip, ...get(L.iq), ...set(L.keyA), ...i32const(-1), ...set(L.keyB));
  c.push(...ELSE, ...get(L.keyA), ...iq1, ...I32_EQ, ...IF);
  c.push(...flip, ...iq1, ...set(L.keyB), ...i32const(-1), ...set(L.keyA), ...END, ...END);
  c.push(...get(L.keyA), ...get(L.iq), ...I32_NE, ...IF);
  c.push(...get(L.iq), ...set(L.qi), ...pick(L.h1, L.h0), ...set(L.h), ...resampleInto());
  c.push(...get(L.iq), ...set(L.keyA), ...END);
  c.push(...get(L.keyB), ...iq1, ...I32_NE, ...IF);
  c.push(...iq1, ...set(L.qi), ...pick(L.h0, L.h1), ...set(L.h), ...resampleInto());
  c.push(...iq1, ...set(L.keyB), ...END);
  c.push(...END);
  // The blend into the tile's row v.
  c.push(...get(L.accBase), ...get(L.v), ...get(L.t0), ...I32_SUB, ...get(L.accStride), ...I32_MUL, ...I32_ADD);
  c.push(...tee(L.z), ...get(L.z), ...get(L.hLen), ...I32_ADD, ...pick(L.h1, L.h0), ...pick(L.h0, L.h1));
  c.push(...get(L.tq), ...F32_DEMOTE_F64, ...CALL(FN.accrow));
  c.push(...END, ...get(L.v), ...i32const(1), ...I32_ADD, ...set(L.v), ...BR(0), ...END, ...END);
  return body(
    [
      [9, I32],
      [2, F64],
    ],
    c,
  );
}

/**
 * coltab's parameters, then its locals: one plane's column table, the loop drrKernel ran in JavaScript.
 * For the band's virtual columns ua..ub (p of column U is pG + (U + bU0) pB, clamped to 0 and, as ip, to
 * np2 = np - 2): ipOff[U] = ip * strideP2 (i32 at ip + 4 U) and tp[U] = p - ip (at most 1; f32), the
 * columns ua4..ua-1 and ub+1..ub4-1 read the nearest column's voxel with weight 0; with `want`, hrow1s's
 * tables for the blocks ua4..ub4 (each block's first offset at base + U, its byte shuffle at mask + 4 U),
 * while every block's voxels lie within 12 bytes of its first. Returns whether they all do (hrow1s usable).
 */
const COLTAB = {
  ip: 0,
  tp: 1,
  mask: 2,
  base: 3,
  ua: 4,
  ub: 5,
  ua4: 6,
  ub4: 7,
  bU0: 8,
  np2: 9,
  strideP2: 10,
  want: 11,
  pG: 12,
  pB: 13,
  // locals: i32 ...
  u: 14,
  ipv: 15,
  lo: 16,
  hi: 17,
  x: 18,
  sw: 19,
  first: 20,
  last: 21,
  // ... f64
  p: 22,
  tpv: 23,
} as const;

function coltabBody(): number[] {
  const L = COLTAB;
  const at = (table: number, col: number[]) => [...get(table), ...col, ...i32const(2), ...I32_SHL, ...I32_ADD];
  const c: number[] = [...get(L.ua), ...set(L.u), ...BLOCK, ...LOOP];
  c.push(...get(L.u), ...get(L.ub), ...I32_GT_S, ...BR_IF(1));
  c.push(...get(L.pG), ...get(L.u), ...get(L.bU0), ...I32_ADD, ...F64_CONVERT_I32_S, ...get(L.pB), ...F64_MUL);
  c.push(...F64_ADD, ...set(L.p));
  c.push(...f64const(0), ...get(L.p), ...get(L.p), ...f64const(0), ...F64_LT, ...SELECT, ...set(L.p));
  c.push(...get(L.p), ...I32_TRUNC_SAT_F64_S, ...tee(L.ipv), ...get(L.np2), ...I32_GT_S, ...IF);
  c.push(...get(L.np2), ...set(L.ipv), ...END);
  c.push(...get(L.p), ...get(L.ipv), ...F64_CONVERT_I32_S, ...F64_SUB, ...tee(L.tpv), ...f64const(1), ...F64_GT);
  c.push(...IF, ...f64const(1), ...set(L.tpv), ...END);
  c.push(...at(L.ip, get(L.u)), ...get(L.ipv), ...get(L.strideP2), ...I32_MUL, ...I32_STORE);
  c.push(...at(L.tp, get(L.u)), ...get(L.tpv), ...F32_DEMOTE_F64, ...F32_STORE);
  c.push(...get(L.u), ...i32const(1), ...I32_ADD, ...set(L.u), ...BR(0), ...END, ...END);
  // The columns around ua..ub: the nearest column's voxel, weight 0.
  c.push(...at(L.ip, get(L.ua)), ...I32_LOAD, ...set(L.first), ...at(L.ip, get(L.ub)), ...I32_LOAD, ...set(L.last));
  const fill = (from: number[], to: number[], value: number) => [
    ...from,
    ...set(L.u),
    ...BLOCK,
    ...LOOP,
    ...get(L.u),
    ...to,
    ...I32_GE_S,
    ...BR_IF(1),
    ...at(L.ip, get(L.u)),
    ...get(value),
    ...I32_STORE,
    ...at(L.tp, get(L.u)),
    ...F32_ZERO,
    ...F32_STORE,
    ...get(L.u),
    ...i32const(1),
    ...I32_ADD,
    ...set(L.u),
    ...BR(0),
    ...END,
    ...END,
  ];
  c.push(...fill(get(L.ua4), get(L.ua), L.first));
  c.push(...fill([...get(L.ub), ...i32const(1), ...I32_ADD], get(L.ub4), L.last));
  // hrow1s's tables, while every block fits one 16-byte load.
  c.push(...get(L.want), ...set(L.sw), ...get(L.ua4), ...set(L.u), ...BLOCK, ...LOOP);
  c.push(...get(L.sw), ...I32_EQZ, ...get(L.u), ...get(L.ub4), ...I32_GE_S, ...I32_OR, ...BR_IF(1));
  const lane = (l: number) => [...at(L.ip, [...get(L.u), ...i32const(l), ...I32_ADD]), ...I32_LOAD];
  c.push(...lane(0), ...tee(L.lo), ...set(L.hi));
  for (let l = 1; l < 4; l++) {
    c.push(...lane(l), ...set(L.x));
    c.push(...get(L.x), ...get(L.lo), ...get(L.x), ...get(L.lo), ...I32_LT_S, ...SELECT, ...set(L.lo));
    c.push(...get(L.x), ...get(L.hi), ...get(L.x), ...get(L.hi), ...I32_GT_S, ...SELECT, ...set(L.hi));
  }
  c.push(...get(L.hi), ...get(L.lo), ...I32_SUB, ...i32const(12), ...I32_GT_S, ...IF);
  c.push(...i32const(0), ...set(L.sw), ...END);
  c.push(...get(L.base), ...get(L.u), ...I32_ADD, ...get(L.lo), ...I32_STORE);
  for (let l = 0; l < 4; l++) {
    c.push(...at(L.mask, [...get(L.u), ...i32const(l), ...I32_ADD]), ...lane(l), ...get(L.lo), ...I32_SUB);
    c.push(...i32const(0x01010101), ...I32_MUL, ...i32const(0x03020100), ...I32_ADD, ...I32_STORE);
  }
  c.push(...get(L.u), ...i32const(4), ...I32_ADD, ...set(L.u), ...BR(0), ...END, ...END);
  c.push(...get(L.sw));
  return body(
    [
      [8, I32],
      [2, F64],
    ],
    c,
  );
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
      [
        0x60,
        ...vec([
          ...new Array<number[]>(5).fill([I32]),
          [F64],
          [F64],
          [F64],
          ...new Array<number[]>(11).fill([I32]),
          [F32],
          [I32],
          [I32],
          [I32],
        ]),
        0,
      ],
      [0x60, ...vec([...new Array<number[]>(12).fill([I32]), [F64], [F64]]), ...vec([[I32]])],
    ]),
  );
  const imports = section(2, vec([[...name('env'), ...name('mem'), 0x02, ...limits]]));
  const funcs = section(3, vec([[0], [1], [0], [2], [0], [3], [4]]));
  const exports = section(
    7,
    vec([
      [...name('hrow'), 0x00, 0],
      [...name('accrow'), 0x00, 1],
      [...name('hrow1'), 0x00, 2],
      [...name('hrow2'), 0x00, 3],
      [...name('hrow1s'), 0x00, 4],
      [...name('vrows'), 0x00, 5],
      [...name('coltab'), 0x00, 6],
    ]),
  );
  const code = section(
    10,
    vec([hrowBody(), accrowBody(), hrow1Body(), hrow2Body(), hrow1sBody(), vrowsBody(), coltabBody()]),
  );
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
  /** One plane's column table (see COLTAB in wasm.ts); whether hrow1s's tables hold. */
  coltab: (
    ip: number,
    tp: number,
    mask: number,
    base: number,
    ua: number,
    ub: number,
    ua4: number,
    ub4: number,
    bU0: number,
    np2: number,
    strideP2: number,
    want: number,
    pG: number,
    pB: number,
  ) => number;
  /** One plane sample's pass over a tile of virtual rows (see VROWS in wasm.ts). */
  vrows: (
    accBase: number,
    accStride: number,
    t0: number,
    t1: number,
    vOff: number,
    qG: number,
    qB: number,
    qHi: number,
    nq2: number,
    rowBase: number,
    sQ2: number,
    h0: number,
    h1: number,
    hLen: number,
    tab1: number,
    mask: number,
    tp: number,
    strideP2: number,
    planeBytes: number,
    tm: number,
    mode: number,
    zLo: number,
    zHi: number,
  ) => void;
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
  const e = inst.exports as unknown as Pick<
    DrrSimdContext,
    'hrow' | 'hrow1' | 'hrow1s' | 'hrow2' | 'accrow' | 'vrows' | 'coltab'
  >;
  const buf = sm.memory.buffer;
  return {
    hrow: e.hrow,
    hrow1: e.hrow1,
    hrow1s: e.hrow1s,
    hrow2: e.hrow2,
    accrow: e.accrow,
    vrows: e.vrows,
    coltab: e.coltab,
    f32: new Float32Array(buf),
    i32: new Int32Array(buf),
    scratch,
    scratchBytes: sm.scratchBytes,
  };
}
