/**
 * DRR rendering on worker threads. The prepared volume (attenuation and occupancy) lives in
 * SharedArrayBuffers: it is handed to each worker once, and every render only posts a parameter
 * block (DRR_PARAMS_LENGTH numbers) and row ranges, so a 2D/3D registration can call `render` thousands of times.
 *
 * The workers run core's `drrKernel` from its source text (`drrKernelSource`: the kernels, their helpers and
 * the parameter table, self-contained by design), so the pool works the same from TypeScript sources under
 * the test runner and from the built package.
 */
import { Worker } from 'node:worker_threads';
import os from 'node:os';
import {
  addDrrPlanesJCopy,
  addDrrScratch,
  addDrrTransposedCopy,
  DRR_PARAMS_LENGTH,
  DrrError,
  drrKernelSource,
  drrParams,
  drrSweepAxis,
  prepareDrrVolume,
  type CarmGeometry,
  type DrrVolume,
  type PrepareOptions,
  type RayOptions,
  type Volume,
} from '@corridor/core';

/** Memory for prepareDrrVolume that worker threads share. */
export const sharedAllocate = (bytes: number): ArrayBufferLike => new SharedArrayBuffer(bytes);

/**
 * Prepare a volume in shared memory (what DrrPool needs): mu in a shared WebAssembly memory for the SIMD
 * row loops (or, with `wasm: false` or without WebAssembly SIMD, a SharedArrayBuffer).
 */
export function prepareSharedDrrVolume(volume: Volume, opts: Omit<PrepareOptions, 'allocate'> = {}): DrrVolume {
  return prepareDrrVolume(volume, { ...opts, wasm: opts.wasm === false ? false : 'shared', allocate: sharedAllocate });
}

const WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
var __name = (f) => f;
${drrKernelSource()}
const mu = workerData.mu, occupancy = workerData.occupancy;
// The SIMD row loops: an instance over the shared memory that holds mu, with this worker's scratch.
let simd = null;
if (workerData.simd) {
  const s = workerData.simd;
  const inst = new WebAssembly.Instance(s.module, { env: { mem: s.memory } });
  simd = {
    hrow: inst.exports.hrow, hrow1: inst.exports.hrow1, hrow1s: inst.exports.hrow1s, hrow2: inst.exports.hrow2,
    accrow: inst.exports.accrow, vrows: inst.exports.vrows, coltab: inst.exports.coltab,
    f32: new Float32Array(s.memory.buffer), i32: new Int32Array(s.memory.buffer),
    scratch: s.scratch, scratchBytes: s.scratchBytes,
  };
}
let out = null, params = null;
parentPort.on('message', (m) => {
  if (m.out) out = m.out;
  if (m.params) params = m.params;
  if (m.rows) {
    try {
      if (simd && simd.f32.byteLength < workerData.simd.memory.buffer.byteLength) {
        // The shared memory grew (a transposed copy for lateral views): views of its new length.
        simd.f32 = new Float32Array(workerData.simd.memory.buffer);
        simd.i32 = new Int32Array(workerData.simd.memory.buffer);
      }
      drrKernel(params, mu, occupancy, out, m.rows[0], m.rows[1], simd);
      parentPort.postMessage({ id: m.id });
    } catch (e) {
      parentPort.postMessage({ id: m.id, error: String(e && e.stack || e) });
    }
  }
});
`;

/** Scratch areas of closed pools, per WebAssembly memory, for the next pool on the same volume. */
const freeScratch = new WeakMap<object, number[]>();

function isSharedBuffer(b: ArrayBufferLike): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && b instanceof SharedArrayBuffer;
}

function isShared(a: ArrayBufferView): boolean {
  return isSharedBuffer(a.buffer);
}

export interface PoolOptions {
  /** Worker threads (default: the machine's available parallelism). */
  threads?: number;
  /**
   * Row bands per thread per image (default 4): more bands balance the load better when other work
   * shares the cores, fewer repeat less work (a band of a tilted view also computes the virtual rays
   * at its edges, see core's drrKernel).
   */
  bandsPerThread?: number;
}

export class DrrPool {
  private readonly workers: Worker[];
  private readonly dv: DrrVolume;
  private readonly bandsPerThread: number;
  private params: Float64Array;
  private out: Float32Array;
  private outVersion = 0;
  private readonly workerOutVersion: number[];
  private busy = false;
  private closed = false;
  /** This pool's scratch areas in the volume's WebAssembly memory, given back on close. */
  private readonly scratch: number[];

  private constructor(dv: DrrVolume, workers: Worker[], bandsPerThread: number, scratch: number[]) {
    this.dv = dv;
    this.scratch = scratch;
    this.workers = workers;
    this.bandsPerThread = bandsPerThread;
    this.workerOutVersion = workers.map(() => 0);
    this.params = new Float64Array(new SharedArrayBuffer(DRR_PARAMS_LENGTH * 8));
    this.out = new Float32Array(new SharedArrayBuffer(4));
    for (const w of workers) w.postMessage({ params: this.params, out: this.out });
  }

  /** Start workers for a volume prepared in shared memory (prepareSharedDrrVolume). */
  static create(dv: DrrVolume, opts: PoolOptions = {}): DrrPool {
    if (!isShared(dv.mu) || !isShared(dv.occupancy)) {
      throw new DrrError(
        'the volume must be prepared in shared memory (prepareSharedDrrVolume) to be used by workers',
        dv.source,
      );
    }
    const threads = opts.threads ?? Math.max(1, os.availableParallelism());
    if (!(Number.isInteger(threads) && threads >= 1 && threads <= 256))
      throw new DrrError(`threads must be 1..256 (got ${threads})`);
    // Each worker gets its own scratch in the shared WebAssembly memory: areas that closed pools gave
    // back, and the memory grown for the rest.
    const sm = dv.simd && isSharedBuffer(dv.simd.memory.buffer) ? dv.simd : undefined;
    let scratch: number[] | null = null;
    if (sm) {
      const free = freeScratch.get(sm.memory) ?? [];
      freeScratch.set(sm.memory, free);
      const reused = free.splice(0, threads);
      const grown = reused.length < threads ? addDrrScratch(sm, threads - reused.length) : [];
      if (grown) scratch = [...reused, ...grown];
      else free.push(...reused);
    }
    const workers = Array.from({ length: threads }, (_, i) => {
      const simd =
        sm && scratch
          ? { memory: sm.memory, module: sm.module, scratch: scratch[i], scratchBytes: sm.scratchBytes }
          : null;
      const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { mu: dv.mu, occupancy: dv.occupancy, simd } });
      w.unref();
      return w;
    });
    return new DrrPool(dv, workers, opts.bandsPerThread ?? 4, sm && scratch ? scratch : []);
  }

  get threads(): number {
    return this.workers.length;
  }

  /**
   * Line integrals for one geometry. The result is a fresh array unless `out` is given (it is filled).
   * One render at a time per pool: a second call while one runs is refused.
   */
  async render(g: CarmGeometry, out?: Float32Array, rays: RayOptions = {}): Promise<Float32Array> {
    if (this.closed) throw new DrrError('the DRR pool is closed');
    if (this.busy) throw new DrrError('the DRR pool is already rendering: await the previous render');
    const n = g.columns * g.rows;
    if (out && out.length !== n) throw new DrrError(`output holds ${out.length} values, the image needs ${n}`);
    this.busy = true;
    try {
      drrParams(this.dv, g, this.params, rays);
      // Views swept along i read rows along j: made contiguous once per volume by a transposed copy; views
      // swept along j read planes of j: made contiguous by a copy with the planes of j one after another.
      const axis = drrSweepAxis(this.params);
      if (
        this.dv.simd &&
        ((axis === 0 && this.dv.simd.transposedJ === undefined && addDrrTransposedCopy(this.dv)) ||
          (axis === 1 && this.dv.simd.planesJ === undefined && addDrrPlanesJCopy(this.dv)))
      ) {
        drrParams(this.dv, g, this.params, rays);
      }
      if (this.out.length !== n) {
        this.out = new Float32Array(new SharedArrayBuffer(n * 4));
        this.outVersion++;
      }
      const bands: [number, number][] = [];
      const nb = Math.min(g.rows, this.workers.length * this.bandsPerThread);
      for (let b = 0; b < nb; b++) bands.push([Math.floor((b * g.rows) / nb), Math.floor(((b + 1) * g.rows) / nb)]);
      let next = 0;
      await Promise.all(
        this.workers.map(
          (w, wi) =>
            new Promise<void>((resolve, reject) => {
              let id = 0;
              const onMessage = (m: { id: number; error?: string }) => {
                if (m.error) {
                  cleanup();
                  reject(new DrrError(`DRR worker ${wi} failed: ${m.error}`));
                  return;
                }
                if (next < bands.length) {
                  w.postMessage({ id: ++id, rows: bands[next++] });
                } else {
                  cleanup();
                  resolve();
                }
              };
              const onError = (e: Error) => {
                cleanup();
                reject(new DrrError(`DRR worker ${wi} died: ${e.message}`));
              };
              const cleanup = () => {
                w.off('message', onMessage);
                w.off('error', onError);
              };
              w.on('message', onMessage);
              w.on('error', onError);
              if (next < bands.length) {
                // A worker that has not seen the current output buffer gets it with its first band.
                const fresh = this.workerOutVersion[wi] !== this.outVersion;
                this.workerOutVersion[wi] = this.outVersion;
                w.postMessage(
                  fresh ? { id: ++id, out: this.out, rows: bands[next++] } : { id: ++id, rows: bands[next++] },
                );
              } else {
                cleanup();
                resolve();
              }
            }),
        ),
      );
      const result = out ?? new Float32Array(n);
      result.set(this.out);
      return result;
    } finally {
      this.busy = false;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
    if (this.dv.simd && this.scratch.length) freeScratch.get(this.dv.simd.memory)?.push(...this.scratch);
  }
}
