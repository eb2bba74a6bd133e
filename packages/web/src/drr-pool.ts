/**
 * CPU virtual fluoroscopy: core's DRR kernel in a pool of web workers, each rendering a band of rows.
 * Only the newest request is rendered; requests that arrive while one runs replace each other.
 */
import type { CarmGeometry, Volume } from '@corridor/core';
import { WorkerClient } from './rpc.js';
import { volumeToMessage } from './volume-message.js';

export interface DrrFrame {
  geometry: CarmGeometry;
  /** Line integrals of attenuation (unitless), row-major, columns fastest. */
  lineIntegrals: Float32Array;
  ms: number;
}

export class DrrPool {
  private workers: WorkerClient[] = [];
  private ready: Promise<void> = Promise.resolve();
  private running = false;
  private queued: { g: CarmGeometry; resolve: (f: DrrFrame | null) => void; reject: (e: unknown) => void } | null =
    null;

  constructor(readonly size = Math.max(1, Math.min(4, navigator.hardwareConcurrency || 2))) {
    for (let i = 0; i < size; i++) {
      this.workers.push(
        new WorkerClient(
          new Worker(new URL('./worker/drr.worker.ts', import.meta.url), { type: 'module' }),
          `DRR ${i + 1}`,
        ),
      );
    }
  }

  /** Voxel size (mm) of the copy the CPU path projects: fluoroscopy is about this sharp anyway. */
  static readonly MIN_VOXEL_MM = 2;
  /** Voxels of the projected copy, for the benchmark's notes. */
  dims: number[] = [];

  setVolume(v: Volume): Promise<void> {
    this.ready = Promise.all(
      this.workers.map((w) => {
        const { msg, transfer } = volumeToMessage(v, true);
        return w.call<{ dims: number[] }>('setVolume', [msg, DrrPool.MIN_VOXEL_MM], transfer);
      }),
    ).then((r) => {
      this.dims = r[0]?.dims ?? [];
    });
    return this.ready;
  }

  /** Render g; resolves null when a newer request replaced this one before it started. */
  render(g: CarmGeometry): Promise<DrrFrame | null> {
    return new Promise((resolve, reject) => {
      if (this.queued) this.queued.resolve(null);
      this.queued = { g, resolve, reject };
      void this.pump();
    });
  }

  private async pump() {
    if (this.running || !this.queued) return;
    const job = this.queued;
    this.queued = null;
    this.running = true;
    try {
      await this.ready;
      const t0 = performance.now();
      const g = job.g;
      const out = new Float32Array(g.columns * g.rows);
      const n = this.workers.length;
      const bands = await Promise.all(
        this.workers.map((w, i) => {
          const r0 = Math.floor((g.rows * i) / n),
            r1 = Math.floor((g.rows * (i + 1)) / n);
          return w.call<{ band: Float32Array; rowStart: number }>('render', [g, r0, r1]);
        }),
      );
      for (const b of bands) out.set(b.band, b.rowStart * g.columns);
      job.resolve({ geometry: g, lineIntegrals: out, ms: performance.now() - t0 });
    } catch (err) {
      job.reject(err);
    } finally {
      this.running = false;
      void this.pump();
    }
  }
}
