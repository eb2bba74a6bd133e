/**
 * A few helpers to assemble WebAssembly modules from opcodes (no toolchain, no build step): LEB128
 * numbers, sections, local access, SIMD opcodes and function bodies. Used by the DRR row loops (wasm.ts)
 * and the FDK backprojector (recon/fdkWasm.ts). Not part of core's public exports.
 */

// Core is built without DOM or Node typings: the few WebAssembly APIs used, as the engines define them.
export interface WasmMemory {
  readonly buffer: ArrayBufferLike;
  grow(pages: number): number;
}
/** A compiled module (WebAssembly.Module): opaque here, cloneable to workers. */
export type WasmModule = object;
export interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Memory: new (d: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { exports: Record<string, unknown> };
}
export const wasmApi = (): WasmApi | undefined => (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

/** Whether this engine has WebAssembly and validates a module's bytes (SIMD modules: whether it runs SIMD). */
export function wasmValidates(bytes: () => Uint8Array): boolean {
  try {
    const api = wasmApi();
    return !!api && api.validate(bytes());
  } catch {
    return false;
  }
}

export const leb = (value: number): number[] => {
  const out: number[] = [];
  let n = value >>> 0;
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
};
export const sleb = (value: number): number[] => {
  const out: number[] = [];
  let n = value | 0;
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(b & 0x40)) || (n === -1 && b & 0x40)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
};
export const name = (s: string) => [...leb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
export const vec = (items: number[][]) => [...leb(items.length), ...items.flat()];
export const section = (id: number, body: number[]) => [id, ...leb(body.length), ...body];

/** Value types. */
export const I32 = 0x7f,
  F32 = 0x7d,
  V128 = 0x7b;
export const get = (i: number) => [0x20, ...leb(i)];
export const set = (i: number) => [0x21, ...leb(i)];
export const tee = (i: number) => [0x22, ...leb(i)];
export const i32const = (v: number) => [0x41, ...sleb(v)];
export const END = [0x0b];
/** SIMD instructions: prefix 0xfd, LEB128 opcode, immediates (memarg = log2 alignment, offset). */
export const simd = (op: number, ...imm: number[]) => [0xfd, ...leb(op), ...imm];

/** The instructions both emitters (the DRR row loops, the FDK backprojector) use. */
export const LOOP = [0x03, 0x40],
  BLOCK = [0x02, 0x40],
  IF = [0x04, 0x40],
  ELSE = [0x05],
  BR = (d: number) => [0x0c, d],
  BR_IF = (d: number) => [0x0d, d],
  SELECT = [0x1b];
export const I32_ADD = [0x6a],
  I32_SUB = [0x6b],
  I32_AND = [0x71],
  I32_GT_S = [0x4a],
  I32_NE = [0x47];
export const V128_LOAD = simd(0x00, 4, 0),
  V128_STORE = simd(0x0b, 4, 0),
  V128_AND = simd(0x4e);
export const I32X4_SPLAT = simd(0x11),
  F32X4_SPLAT = simd(0x13),
  I32X4_ADD = simd(0xae);
export const I32X4_EXTRACT = (lane: number) => simd(0x1b, lane);
export const F32X4_ADD = simd(0xe4),
  F32X4_SUB = simd(0xe5),
  F32X4_MUL = simd(0xe6);

/** A function body: its locals ([count, type] runs) and code, with its size in front and `end` after. */
export function body(locals: [number, number][], code: number[]): number[] {
  const b = [...vec(locals.map(([n, t]) => [...leb(n), t])), ...code, ...END];
  return [...leb(b.length), ...b];
}

/** The limits of an imported memory (pages of 64 KiB; a shared memory needs a maximum). */
export function memoryLimits(initialPages: number, maximumPages?: number, shared?: boolean): number[] {
  return shared
    ? [0x03, ...leb(initialPages), ...leb(maximumPages ?? initialPages)]
    : maximumPages !== undefined
      ? [0x01, ...leb(initialPages), ...leb(maximumPages)]
      : [0x00, ...leb(initialPages)];
}
