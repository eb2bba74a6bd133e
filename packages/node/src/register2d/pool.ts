/**
 * 2D/3D registration's DRRs on worker threads: core's `register2dAsync` hands each batch of independent
 * renders (the +- probes of a direction, the capture grid, the depth profile, the views) to this pool,
 * which spreads them over its workers: whole images where the batch has one or more per thread, bands of
 * rows of each image where it has fewer. Every prepared level of the volume (its attenuation,
 * occupancy and WebAssembly memory) lives in shared memory and is handed to each worker once; a render
 * posts a parameter block (DRR_PARAMS_LENGTH numbers) and a row range.
 *
 * The workers run core's `drrKernel` from its source text, as DrrPool's do (drr/pool.ts): the images are
 * exactly those of renderLineIntegrals, so a fit gives the same result as register2d on one thread.
 */
import { Worker } from 'node:worker_threads';
import os from 'node:os';
import {
  addDrrScratch,
  addDrrTransposedCopy,
  DRR_PARAMS_LENGTH,
  DrrError,
  drrKernelSource,
  drrParams,
  drrSweepAxis,
  prepareRegister2dVolume,
  type PrepareRegister2dOptions,
  type Register2dRenderer,
  type Register2dRenderJob,
  type Register2dVolume,
  type Volume,
} from '@corridor/core';
import { sharedAllocate } from '../drr/pool.js';

/** prepareRegister2dVolume with every level in shared memory, as Register2dPool needs. */
export function prepareSharedRegister2dVolume(
  volume: Volume,
  opts: Omit<PrepareRegister2dOptions, 'allocate'> = {},
): Register2dVolume {
  return prepareRegister2dVolume(volume, {
    ...opts,
    wasm: opts.wasm === false ? false : 'shared',
    allocate: sharedAllocate,
  });
}

const WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
var __name = (f) => f;
${drrKernelSource()}
// Per level: mu, occupancy and the SIMD row loops over the shared memory that holds mu (this worker's scratch).
const levels = workerData.levels.map((l) => {
  let simd = null;
  if (l.simd) {
    const s = l.simd;
    const inst = new WebAssembly.Instance(s.module, { env: { mem: s.memory } });
    simd = {
      hrow: inst.exports.hrow, hrow1: inst.exports.hrow1, hrow1s: inst.exports.hrow1s, hrow2: inst.exports.hrow2,
      accrow: inst.exports.accrow, vrows: inst.exports.vrows, coltab: inst.exports.coltab,
      f32: new Float32Array(s.memory.buffer), i32: new Int32Array(s.memory.buffer),
      scratch: s.scratch, scratchBytes: s.scratchBytes, memory: s.memory,
    };
  }
  return { mu: l.mu, occupancy: l.occupancy, simd };
});
parentPort.on('message', (m) => {
  try {
    const l = levels[m.level];
    const simd = l.simd;
    if (simd && simd.f32.byteLength < simd.memory.buffer.byteLength) {
      // The shared memory grew (a transposed copy for views swept along i): views of its new length.
      simd.f32 = new Float32Array(simd.memory.buffer);
      simd.i32 = new Int32Array(simd.memory.buffer);
    }
    drrKernel(m.params, l.mu, l.occupancy, m.out, m.rows[0], m.rows[1], simd);
    parentPort.postMessage({ id: m.id });
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: String(e && e.stack || e) });
  }
});
`;

function isSharedBuffer(b: ArrayBufferLike): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && b instanceof SharedArrayBuffer;
}

export interface Register2dPoolOptions {
  /** Worker threads (default: the machine's available parallelism). */
  threads?: number;
}

interface Unit {
  job: number;
  rows: [number, number];
}

export class Register2dPool implements Register2dRenderer {
  private readonly workers: Worker[];
  private readonly volume: Register2dVolume;
  /** Shared outputs, one per job of a batch (grown on demand, reused between batches of equal sizes). */
  private outs: Float32Array[] = [];
  private busy = false;
  private closed = false;

  private constructor(volume: Register2dVolume, workers: Worker[]) {
    this.volume = volume;
    this.workers = workers;
  }

  /** Start workers for a volume prepared in shared memory (prepareSharedRegister2dVolume). */
  static create(volume: Register2dVolume, opts: Register2dPoolOptions = {}): Register2dPool {
    for (const l of volume.levels)
      if (!isSharedBuffer(l.dv.mu.buffer) || !isSharedBuffer(l.dv.occupancy.buffer))
        throw new DrrError(
          'the volume must be prepared in shared memory (prepareSharedRegister2dVolume) to be used by workers',
          volume.source,
        );
    const threads = opts.threads ?? Math.max(1, os.availableParallelism());
    if (!(Number.isInteger(threads) && threads >= 1 && threads <= 256))
      throw new DrrError(`threads must be 1..256 (got ${threads})`);
    // Each worker gets its own scratch in each level's shared WebAssembly memory.
    const scratch = volume.levels.map((l) => {
      const sm = l.dv.simd;
      return sm && isSharedBuffer(sm.memory.buffer) ? addDrrScratch(sm, threads) : null;
    });
    const workers = Array.from({ length: threads }, (_, i) => {
      const levels = volume.levels.map((l, li) => {
        const sm = l.dv.simd;
        const sc = scratch[li];
        return {
          mu: l.dv.mu,
          occupancy: l.dv.occupancy,
          simd:
            sm && sc ? { memory: sm.memory, module: sm.module, scratch: sc[i], scratchBytes: sm.scratchBytes } : null,
        };
      });
      const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { levels } });
      w.unref();
      return w;
    });
    return new Register2dPool(volume, workers);
  }

  get threads(): number {
    return this.workers.length;
  }

  /**
   * Renders every job of the batch into its `out`. One batch at a time: a second call while one runs is
   * refused.
   */
  async render(jobs: readonly Register2dRenderJob[]): Promise<void> {
    if (this.closed) throw new DrrError('the registration pool is closed');
    if (this.busy) throw new DrrError('the registration pool is already rendering: await the previous batch');
    if (!jobs.length) return;
    this.busy = true;
    try {
      const params = jobs.map((j) => {
        const level = this.volume.levels[j.level];
        if (!level) throw new DrrError(`no prepared level ${j.level}`);
        const n = j.geometry.columns * j.geometry.rows;
        if (j.out.length !== n) throw new DrrError(`output holds ${j.out.length} values, the image needs ${n}`);
        const dv = { ...level.dv, patientToIndex: j.patientToIndex };
        const p = new Float64Array(DRR_PARAMS_LENGTH);
        drrParams(dv, j.geometry, p);
        // Views swept along i read rows along j: made contiguous once per level by a transposed copy.
        if (level.dv.simd && level.dv.simd.transposedJ === undefined && drrSweepAxis(p) === 0) {
          if (addDrrTransposedCopy(level.dv))
            drrParams({ ...level.dv, patientToIndex: j.patientToIndex }, j.geometry, p);
        }
        return p;
      });
      while (this.outs.length < jobs.length) this.outs.push(new Float32Array(new SharedArrayBuffer(4)));
      for (const [k, j] of jobs.entries())
        if (this.outs[k].length !== j.out.length)
          this.outs[k] = new Float32Array(new SharedArrayBuffer(j.out.length * 4));
      // Whole images where there is at least one per thread, else bands of rows (every band of a tilted
      // view recomputes the virtual rays at its edges, so no more bands than threads).
      const per = Math.max(1, Math.ceil(this.workers.length / jobs.length));
      const units: Unit[] = [];
      for (const [k, j] of jobs.entries()) {
        const rows = j.geometry.rows;
        const nb = Math.min(rows, per);
        for (let b = 0; b < nb; b++)
          units.push({ job: k, rows: [Math.floor((b * rows) / nb), Math.floor(((b + 1) * rows) / nb)] });
      }
      let next = 0;
      await Promise.all(
        this.workers.map(
          (w, wi) =>
            new Promise<void>((resolve, reject) => {
              const post = () => {
                const u = units[next++];
                w.postMessage({
                  id: next,
                  level: jobs[u.job].level,
                  params: params[u.job],
                  out: this.outs[u.job],
                  rows: u.rows,
                });
              };
              const onMessage = (m: { id: number; error?: string }) => {
                if (m.error) {
                  cleanup();
                  reject(new DrrError(`registration DRR worker ${wi} failed: ${m.error}`));
                } else if (next < units.length) post();
                else {
                  cleanup();
                  resolve();
                }
              };
              const onError = (e: Error) => {
                cleanup();
                reject(new DrrError(`registration DRR worker ${wi} died: ${e.message}`));
              };
              const cleanup = () => {
                w.off('message', onMessage);
                w.off('error', onError);
              };
              w.on('message', onMessage);
              w.on('error', onError);
              if (next < units.length) post();
              else {
                cleanup();
                resolve();
              }
            }),
        ),
      );
      for (const [k, j] of jobs.entries()) j.out.set(this.outs[k]);
    } finally {
      this.busy = false;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
