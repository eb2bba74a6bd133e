import { describe, expect, it } from 'vitest';
import { createDrrSimdMemory, drrSimdAvailable, drrSimdContext, drrWasmBytes } from './wasm.js';
import { defined } from '../test-helpers/defined.js';

// Core is typed without DOM or Node globals: the engine's WebAssembly.validate, as it is.
const validate = (b: Uint8Array) =>
  (globalThis as unknown as { WebAssembly: { validate(b: Uint8Array): boolean } }).WebAssembly.validate(b);

describe('DRR WebAssembly row loops', () => {
  it('assemble to a valid module in this engine (Node 20 runs WebAssembly SIMD)', () => {
    expect(validate(drrWasmBytes({ initialPages: 1 }))).toBe(true);
    expect(validate(drrWasmBytes({ initialPages: 2, maximumPages: 8, shared: true }))).toBe(true);
    expect(drrSimdAvailable()).toBe(true);
  });

  it('resample a row of 16-bit values and blend two rows into a sum, as the formulas say', () => {
    const sm0 = createDrrSimdMemory(40000, false);
    expect(sm0).not.toBeNull();
    const sm = defined(sm0, 'the SIMD memory');
    const ctx = drrSimdContext(sm, sm.scratch);
    const buf = sm.memory.buffer;
    const u16 = new Uint16Array(buf),
      f32 = new Float32Array(buf),
      i32 = new Int32Array(buf);
    for (let i = 0; i < 20000; i++) u16[i] = (i * 7919) % 60000;
    const n = 24,
      row = 1000,
      strideP2 = 6; // strideP 3 elements
    const base = sm.scratch,
      ip = base,
      tp = ip + 4 * n,
      h = tp + 4 * n,
      hb = h + 4 * n,
      acc = hb + 4 * n;
    for (let u = 0; u < n; u++) {
      i32[ip / 4 + u] = 2 * (5 * u + 2);
      f32[tp / 4 + u] = (u % 7) / 7;
      f32[hb / 4 + u] = 1000 + 13 * u;
      f32[acc / 4 + u] = u * 0.5;
    }
    // hrow1: neighbours adjacent in memory; half the addresses are not multiples of 4 (no alignment needed).
    const h1 = acc + 4 * n;
    ctx.hrow1(h1, row, h1 + 4 * n, ip, tp, 2);
    for (let u = 0; u < n; u++) {
      const x = row / 2 + 5 * u + 2;
      expect(f32[h1 / 4 + u]).toBeCloseTo(u16[x] + (u16[x + 1] - u16[x]) * Math.fround((u % 7) / 7), 1);
    }
    // hrow1s: the same as hrow1 from one 16-byte load per block of four (the blocks' first voxel offsets
    // and byte shuffles as drrKernel tabulates them), here for columns 0, 1, 3, 4, 6, 7, ... voxels apart.
    const hs = h1 + 8 * n,
      bases = hs + 4 * n,
      masks = bases + 4 * n;
    const off = (u: number) => 2 * (u + (u >> 1)); // byte offset of column u's first voxel
    for (let g = 0; g < n / 4; g++) {
      i32[bases / 4 + g] = off(4 * g);
      for (let l = 0; l < 4; l++) i32[masks / 4 + 4 * g + l] = (off(4 * g + l) - off(4 * g)) * 0x01010101 + 0x03020100;
    }
    ctx.hrow1s(hs, row, hs + 4 * n, bases, masks, tp);
    for (let u = 0; u < n; u++) {
      const x = row / 2 + off(u) / 2;
      expect(f32[hs / 4 + u]).toBe(Math.fround(u16[x] + Math.fround((u16[x + 1] - u16[x]) * Math.fround((u % 7) / 7))));
    }
    ctx.hrow(h, row, h + 4 * n, ip, tp, strideP2);
    ctx.accrow(acc, acc + 4 * n, h, hb, 0.3);
    for (let u = 0; u < n; u++) {
      const x = row / 2 + 5 * u + 2;
      const t = Math.fround((u % 7) / 7);
      const want = u16[x] + (u16[x + 3] - u16[x]) * t;
      expect(f32[h / 4 + u]).toBeCloseTo(want, 1);
      const blend = want + (1000 + 13 * u - want) * Math.fround(0.3);
      expect(f32[acc / 4 + u] / (u * 0.5 + blend)).toBeCloseTo(1, 6);
    }
    // hrow2: the same row on two planes 2000 bytes (1000 values) apart, resampled, blended by tm = 0.25.
    const h2 = h1 + 4 * n;
    ctx.hrow2(h2, row, h2 + 4 * n, ip, tp, strideP2, 2000, 0.25);
    for (let u = 0; u < n; u++) {
      const x = row / 2 + 5 * u + 2,
        y = x + 1000;
      const t = Math.fround((u % 7) / 7);
      const a = u16[x] + (u16[x + 3] - u16[x]) * t,
        b = u16[y] + (u16[y + 3] - u16[y]) * t;
      expect(f32[h2 / 4 + u]).toBeCloseTo(a + (b - a) * 0.25, 1);
    }
  });
});
