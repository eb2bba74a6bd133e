/**
 * The simulated C-arm CT on worker threads: the same steps and options as core's simulateCbct, with the
 * material line integrals rendered by DrrPool (one pool per material, shared memory) and the
 * backprojection split into slabs of slices that worker threads take as they free up. The filtered
 * projections, the matrices and the output live in SharedArrayBuffers: nothing is copied per slab.
 *
 * The workers run core's fdkBackprojectKernel from its source text (fdkKernelSource), as the DRR pool
 * does, so the pool works from TypeScript sources under the test runner and from the built package.
 * Each voxel sums its views in the same order as the single-threaded run: the volumes are identical.
 */
import { Worker } from 'node:worker_threads';
import os from 'node:os';
import {
  CancelledError,
  FDK_SLAB_SLICES,
  RECON_MATERIALS,
  ReconError,
  backprojectionSetup,
  cbctMeta,
  cbctPlan,
  cbctResult,
  detectView,
  fdkFilter,
  fdkFinish,
  fdkKernelSource,
  prepareMaterialVolumes,
  projectionsResult,
  resolveAcquisition,
  viewPhysics,
  type BackprojectionSetup,
  type CbctOptions,
  type CbctRun,
  type ReconMaterial,
  type ReconProgressFn,
} from '@corridor/core';
import { DrrPool, prepareSharedDrrVolume } from '../drr/pool.js';

const WORKER_SOURCE = `
'use strict';
const { parentPort } = require('node:worker_threads');
var __name = (f) => f;
${fdkKernelSource()}
let job = null;
parentPort.on('message', (m) => {
  if (m.job) job = m.job;
  if (m.slab) {
    try {
      const j = job;
      fdkBackprojectKernel(j.q, j.matrices, j.rowRanges, j.nx, j.ny, j.columns, j.rows, j.out, j.outside,
        m.slab[0], m.slab[1], 0, j.views);
      parentPort.postMessage({ id: m.id });
    } catch (e) {
      parentPort.postMessage({ id: m.id, error: String((e && e.stack) || e) });
    }
  }
});
`;

const shared = (bytes: number) => new SharedArrayBuffer(Math.max(bytes, 8));

function threadCount(threads: number | undefined): number {
  const t = threads ?? Math.max(1, os.availableParallelism());
  if (!(Number.isInteger(t) && t >= 1 && t <= 256)) throw new ReconError(`threads must be 1..256 (got ${t})`);
  return t;
}

/**
 * Backprojects all views of filtered projections `q` (in shared memory) into `out` / `outside` (shared),
 * slab by slab on `threads` workers.
 */
export async function backprojectParallel(
  q: Float32Array,
  setup: BackprojectionSetup,
  out: Float32Array,
  outside: Uint8Array,
  opts: { threads?: number; onProgress?: ReconProgressFn; signal?: AbortSignal } = {},
): Promise<void> {
  const threads = threadCount(opts.threads);
  const [nx, ny, nz] = setup.dims;
  const matrices = new Float64Array(shared(setup.matrices.byteLength));
  matrices.set(setup.matrices);
  const rowRanges = new Int32Array(shared(setup.rowRanges.byteLength));
  rowRanges.set(setup.rowRanges);
  const job = {
    q,
    matrices,
    rowRanges,
    nx,
    ny,
    columns: setup.columns,
    rows: setup.rows,
    out,
    outside,
    views: setup.views,
  };
  const slabs: [number, number][] = [];
  for (let k = 0; k < nz; k += FDK_SLAB_SLICES) slabs.push([k, Math.min(nz, k + FDK_SLAB_SLICES)]);
  const workers = Array.from(
    { length: Math.min(threads, slabs.length) },
    () => new Worker(WORKER_SOURCE, { eval: true }),
  );
  let next = 0,
    done = 0;
  try {
    await Promise.all(
      workers.map(
        (w, wi) =>
          new Promise<void>((resolve, reject) => {
            let id = 0;
            const give = () => {
              if (opts.signal?.aborted) {
                reject(new CancelledError('C-arm CT reconstruction was cancelled'));
                return;
              }
              if (next < slabs.length) w.postMessage({ id: ++id, slab: slabs[next++] });
              else resolve();
            };
            w.on('message', (m: { id: number; error?: string }) => {
              if (m.error) {
                reject(new ReconError(`backprojection worker ${wi} failed: ${m.error}`));
                return;
              }
              done++;
              opts.onProgress?.(done, slabs.length, 'backprojection');
              give();
            });
            w.on('error', (e: Error) => reject(new ReconError(`backprojection worker ${wi} died: ${e.message}`)));
            w.postMessage({ job });
            give();
          }),
      ),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
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
  const mats = prepareMaterialVolumes(ct, o.attenuation, (v) => prepareSharedDrrVolume(v, { values: 'mu' }));
  const ph = viewPhysics(scan, settings, mats.model.metal);
  const pools: [ReconMaterial, DrrPool][] = [];
  for (const m of RECON_MATERIALS) {
    const dv = mats.volumes[m];
    if (dv) pools.push([m, DrrPool.create(dv, { threads })]);
  }
  const t1 = performance.now();
  const nv = scan.views.length,
    npx = scan.columns * scan.rows;
  const data = new Float32Array(nv * npx);
  const bufs: Partial<Record<ReconMaterial, Float32Array>> = {};
  for (const [m] of pools) bufs[m] = new Float32Array(npx);
  try {
    for (let v = 0; v < nv; v++) {
      if (o.signal?.aborted) throw new CancelledError('C-arm CT acquisition was cancelled');
      for (const [m, pool] of pools) await pool.render(scan.views[v], bufs[m]);
      detectView(ph, bufs, data.subarray(v * npx, (v + 1) * npx));
      o.onProgress?.(v + 1, nv, 'acquisition');
    }
  } finally {
    await Promise.all(pools.map(([, p]) => p.close()));
  }
  const projections = projectionsResult(data, scan, ph);
  const t2 = performance.now();
  const q = new Float32Array(shared(data.length * 4), 0, data.length);
  fdkFilter(
    projections,
    scan,
    { ...(o.window ? { window: o.window } : {}), ...(o.signal ? { signal: o.signal } : {}) },
    q,
  );
  const t3 = performance.now();
  const setup = backprojectionSetup(scan, grid);
  const [nx, ny, nz] = setup.dims;
  const out = new Float32Array(shared(nx * ny * nz * 4), 0, nx * ny * nz);
  const outside = new Uint8Array(shared(nx * ny * nz), 0, nx * ny * nz);
  await backprojectParallel(q, setup, out, outside, {
    threads,
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
  const t4 = performance.now();
  const fill = o.fill ?? -1024;
  // The volume keeps its own (non-shared) copy so that it can be posted and written like any other.
  const reconstruction = fdkFinish(
    Float32Array.from(out),
    outside,
    setup,
    grid,
    projections.muReferencePerMm,
    o.window ?? 'shepp-logan',
    fill,
    cbctMeta(ct, scan),
  );
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
      filterMs: t3 - t2,
      backprojectionMs: t4 - t3,
      totalMs: t5 - t0,
    },
  };
}
