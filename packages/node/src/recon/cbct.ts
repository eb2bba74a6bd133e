/**
 * The simulated C-arm CT on worker threads: the same steps and options as core's simulateCbct, with the
 * material line integrals rendered by DrrPool (one pool per material, shared memory) and the
 * backprojection split into slabs of slices that worker threads take as they free up. The filtered
 * projections and the output live in one shared WebAssembly memory (core's SIMD backprojection, fdkWasm.ts;
 * SharedArrayBuffers without it), the matrices in shared memory too: nothing is copied per slab.
 *
 * The workers run core's fdkBackprojectKernel from its source text (fdkKernelSource), as the DRR pool
 * does, so the pool works from TypeScript sources under the test runner and from the built package.
 * Each voxel sums its views in the same order and with the same code as the single-threaded run: the
 * volumes are identical.
 */
import { Worker } from 'node:worker_threads';
import os from 'node:os';
import {
  ACQUISITION_RAYS,
  CancelledError,
  FDK_SLAB_SLICES,
  RECON_MATERIALS,
  ReconError,
  backprojectionSetup,
  cbctMeta,
  cbctPlan,
  cbctResult,
  detectView,
  checkProjections,
  filterSetup,
  fdkFinish,
  fdkKernelSource,
  prepareMaterialVolumes,
  projectionsResult,
  resolveAcquisition,
  viewPhysics,
  createFdkSimdMemory,
  type BackprojectionSetup,
  type FdkSimdMemory,
  type FilterSetup,
  type CbctOptions,
  type CbctProjections,
  type CbctReconstruction,
  type CbctRun,
  type CbctScan,
  type RampWindow,
  type ReconGrid,
  type RowPadding,
  type VolumeMetadata,
  type ReconMaterial,
  type ReconProgressFn,
} from '@corridor/core';
import { DrrPool, sharedAllocate } from '../drr/pool.js';

const WORKER_SOURCE = `
'use strict';
const { parentPort } = require('node:worker_threads');
var __name = (f) => f;
${fdkKernelSource()}
let bp = null, filter = null, re = null, im = null, simd = null;
parentPort.on('message', (m) => {
  if (m.bp) {
    bp = m.bp;
    // The SIMD backprojection: an instance over the shared memory that holds the projections and the sums.
    const s = bp.simd;
    simd = s ? { bprow: new WebAssembly.Instance(s.module, { env: { mem: s.memory } }).exports.bprow,
      qAddress: s.qAddress, outAddress: s.outAddress } : null;
  }
  if (m.filter) {
    filter = m.filter;
    re = new Float64Array(filter.setup.n);
    im = new Float64Array(filter.setup.n);
  }
  if (!m.task) return;
  try {
    const [kind, a, b] = m.task;
    if (kind === 'filter') fdkFilterKernel(filter.setup, filter.data, filter.out, a, b, re, im);
    else fdkBackprojectKernel(bp.q, bp.matrices, bp.rowRanges, bp.nx, bp.ny, bp.columns, bp.rows, bp.out,
      bp.outside, a, b, 0, bp.views, simd);
    parentPort.postMessage({ id: m.id });
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: String((e && e.stack) || e) });
  }
});
`;

const shared = (bytes: number) => new SharedArrayBuffer(Math.max(bytes, 8));

function threadCount(threads: number | undefined): number {
  const t = threads ?? Math.max(1, os.availableParallelism());
  if (!(Number.isInteger(t) && t >= 1 && t <= 256)) throw new ReconError(`threads must be 1..256 (got ${t})`);
  return t;
}

type Task = ['filter' | 'slab', number, number];

/**
 * Worker threads for FDK's two phases: each gets the phase's data once (shared memory, or small arrays
 * copied once), then tasks (view ranges to filter, slabs of slices to backproject) as it frees up.
 */
export class FdkWorkers {
  private readonly workers: Worker[];
  private closed = false;
  constructor(threads?: number) {
    this.workers = Array.from({ length: threadCount(threads) }, () => new Worker(WORKER_SOURCE, { eval: true }));
  }
  get threads(): number {
    return this.workers.length;
  }

  /** Sends `data` to every worker, then hands out the tasks; resolves when all are done. */
  async run(
    data: Record<string, unknown>,
    tasks: Task[],
    opts: { onProgress?: ReconProgressFn; signal?: AbortSignal; phase: string },
  ): Promise<void> {
    if (this.closed) throw new ReconError('the FDK workers are closed');
    let next = 0,
      done = 0;
    await Promise.all(
      this.workers.map(
        (w, wi) =>
          new Promise<void>((resolve, reject) => {
            let id = 0;
            const cleanup = () => {
              w.off('message', onMessage);
              w.off('error', onError);
            };
            const give = () => {
              if (opts.signal?.aborted) {
                cleanup();
                reject(new CancelledError('C-arm CT reconstruction was cancelled'));
              } else if (next < tasks.length) {
                w.postMessage({ id: ++id, task: tasks[next++] });
              } else {
                cleanup();
                resolve();
              }
            };
            const onMessage = (m: { id: number; error?: string }) => {
              if (m.error) {
                cleanup();
                reject(new ReconError(`FDK worker ${wi} failed (${opts.phase}): ${m.error}`));
                return;
              }
              done++;
              opts.onProgress?.(done, tasks.length, opts.phase);
              give();
            };
            const onError = (e: Error) => {
              cleanup();
              reject(new ReconError(`FDK worker ${wi} died: ${e.message}`));
            };
            w.on('message', onMessage);
            w.on('error', onError);
            w.postMessage(data);
            give();
          }),
      ),
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** Filters projections (`data`) into `out` (shared memory) on the workers, a few views a task. */
export async function filterParallel(
  workers: FdkWorkers,
  fs: FilterSetup,
  data: Float32Array,
  out: Float32Array,
  opts: { onProgress?: ReconProgressFn; signal?: AbortSignal } = {},
): Promise<void> {
  const tasks: Task[] = [];
  const per = 4;
  for (let v = 0; v < fs.views; v += per) tasks.push(['filter', v, Math.min(fs.views, v + per)]);
  await workers.run({ filter: { setup: fs, data, out } }, tasks, { ...opts, phase: 'filtering' });
}

/**
 * Backprojects all views of filtered projections `q` (shared) into `out` / `outside` (shared), by slabs;
 * with `simd` (q and out then its memory's arrays) in WebAssembly SIMD.
 */
export async function backprojectParallel(
  workers: FdkWorkers,
  q: Float32Array,
  setup: BackprojectionSetup,
  out: Float32Array,
  outside: Uint8Array,
  opts: { onProgress?: ReconProgressFn; signal?: AbortSignal } = {},
  simd: FdkSimdMemory | null = null,
): Promise<void> {
  const [nx, ny, nz] = setup.dims;
  const bp = {
    q,
    matrices: setup.matrices,
    rowRanges: setup.rowRanges,
    nx,
    ny,
    columns: setup.columns,
    rows: setup.rows,
    out,
    outside,
    views: setup.views,
    simd: simd
      ? { memory: simd.memory, module: simd.module, qAddress: simd.qAddress, outAddress: simd.outAddress }
      : null,
  };
  const tasks: Task[] = [];
  for (let k = 0; k < nz; k += FDK_SLAB_SLICES) tasks.push(['slab', k, Math.min(nz, k + FDK_SLAB_SLICES)]);
  await workers.run({ bp }, tasks, { ...opts, phase: 'backprojection' });
}

export interface ParallelCbctOptions extends CbctOptions {
  /** Worker threads (default: the machine's available parallelism). */
  threads?: number;
}

/** Timings of a parallel run's phases, ms. */
export interface CbctTimings {
  prepareMs: number;
  acquisitionMs: number;
  filterMs: number;
  backprojectionMs: number;
  totalMs: number;
}

/** core's simulateCbct on worker threads (same options, same result), with the time of each phase. */
export async function simulateCbctParallel(
  ct: Parameters<typeof cbctPlan>[0],
  o: ParallelCbctOptions = {},
): Promise<CbctRun & { timings: CbctTimings }> {
  const t0 = performance.now();
  const threads = threadCount(o.threads);
  const { scan, grid } = cbctPlan(ct, o);
  const settings = resolveAcquisition(o);
  const mats = prepareMaterialVolumes(ct, o.attenuation, { wasm: 'shared', allocate: sharedAllocate });
  const ph = viewPhysics(scan, settings, mats.model.metal);
  const pools: [ReconMaterial, DrrPool][] = [];
  // The materials' pools render each view at the same time, so they share the threads: one pool per
  // thread on a small machine (a whole image per worker, one band: no band edges computed twice). On the
  // benchmark (2 cores, water and bone) that took the acquisition from 15.6-16.2 s to 12.6-13.1 s against
  // two threads of four bands per pool.
  const present = RECON_MATERIALS.filter((m) => mats.volumes[m] !== undefined);
  const perPool = Math.max(1, Math.round(threads / Math.max(1, present.length)));
  for (const m of present) {
    const dv = mats.volumes[m];
    if (dv) pools.push([m, DrrPool.create(dv, { threads: perPool, bandsPerThread: perPool > 1 ? 2 : 1 })]);
  }
  const t1 = performance.now();
  const nv = scan.views.length,
    npx = scan.columns * scan.rows;
  // In shared memory from the start: the filtering workers read the projections where they were written.
  const data = new Float32Array(shared(nv * npx * 4), 0, nv * npx);
  // Two sets of buffers: the pools render view v + 1 (each material's pool at once) while this thread
  // turns view v into a projection.
  const bufs: Partial<Record<ReconMaterial, Float32Array>>[] = [{}, {}];
  for (const [m] of pools) for (const b of bufs) b[m] = new Float32Array(npx);
  const renderView = (v: number) =>
    Promise.all(pools.map(([m, pool]) => pool.render(scan.views[v], bufs[v & 1][m], ACQUISITION_RAYS)));
  let pending: Promise<unknown> = renderView(0);
  try {
    for (let v = 0; v < nv; v++) {
      await pending;
      if (o.signal?.aborted) throw new CancelledError('C-arm CT acquisition was cancelled');
      if (v + 1 < nv) pending = renderView(v + 1);
      detectView(ph, bufs[v & 1], data.subarray(v * npx, (v + 1) * npx));
      o.onProgress?.(v + 1, nv, 'acquisition');
    }
  } finally {
    // A render still in flight (cancelled, or an error above) finishes before its pool closes.
    await pending.catch(() => undefined);
    await Promise.all(pools.map(([, p]) => p.close()));
  }
  const projections = projectionsResult(data, scan, ph);
  checkProjections(projections, scan);
  const t2 = performance.now();
  const fill = o.fill ?? -1024;
  const { reconstruction, filterMs, backprojectionMs } = await reconstructFdkParallel(projections, scan, grid, {
    ...o,
    threads,
    fill,
    meta: cbctMeta(ct, scan),
  });
  const t5 = performance.now();
  return {
    scan,
    grid,
    projections,
    reconstruction,
    result: cbctResult(scan, projections, reconstruction, fill),
    timings: {
      prepareMs: t1 - t0,
      acquisitionMs: t2 - t1,
      filterMs,
      backprojectionMs,
      totalMs: t5 - t0,
    },
  };
}

export interface ParallelReconOptions {
  threads?: number;
  window?: RampWindow;
  padding?: RowPadding;
  /** Value outside the field of view (default -1024). */
  fill?: number;
  meta?: VolumeMetadata;
  onProgress?: ReconProgressFn;
  signal?: AbortSignal;
}

/**
 * core's reconstructFdk on worker threads: projections (copied into shared memory unless they are there)
 * filtered and backprojected onto `grid`, with the time of each phase.
 */
export async function reconstructFdkParallel(
  projections: CbctProjections,
  scan: CbctScan,
  grid: ReconGrid,
  o: ParallelReconOptions = {},
): Promise<{ reconstruction: CbctReconstruction; filterMs: number; backprojectionMs: number }> {
  checkProjections(projections, scan);
  const t2 = performance.now();
  let data = projections.data;
  if (!(data.buffer instanceof SharedArrayBuffer)) {
    data = new Float32Array(shared(data.length * 4), 0, data.length);
    data.set(projections.data);
  }
  const fs = filterSetup(scan, o.window ?? 'shepp-logan', o.padding ?? 'continue');
  const prog = {
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  };
  const setup = backprojectionSetup(scan, grid);
  const [nx, ny, nz] = setup.dims;
  // The filtered projections and the sums in one shared WebAssembly memory for the SIMD backprojection
  // (plain shared memory where the engine lacks WebAssembly SIMD).
  const sm = createFdkSimdMemory(data.length, nx * ny * nz, true);
  const q = sm ? sm.q : new Float32Array(shared(data.length * 4), 0, data.length);
  const out = sm ? sm.out : new Float32Array(shared(nx * ny * nz * 4), 0, nx * ny * nz);
  const outside = new Uint8Array(shared(nx * ny * nz), 0, nx * ny * nz);
  const workers = new FdkWorkers(o.threads);
  let t3: number;
  try {
    await filterParallel(workers, fs, data, q, prog);
    t3 = performance.now();
    await backprojectParallel(workers, q, setup, out, outside, prog, sm);
  } finally {
    await workers.close();
  }
  const t4 = performance.now();
  // The volume keeps its own (non-shared) copy so that it can be posted and written like any other.
  const reconstruction = fdkFinish(
    Float32Array.from(out),
    outside,
    setup,
    grid,
    projections.muReferencePerMm,
    o.window ?? 'shepp-logan',
    o.fill ?? -1024,
    o.meta ?? {},
  );
  return { reconstruction, filterMs: t3 - t2, backprojectionMs: t4 - t3 };
}
