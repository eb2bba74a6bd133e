/**
 * JPEG 2000 and HTJ2K frames decoded on worker threads, so that a series' frames decode in parallel
 * (core's series reader keeps `concurrency` frames in flight through the runner; see codecs.ts). Each
 * worker loads the same emscripten codecs core loads (OpenJPEG, OpenJPH) and decodes exactly as core does:
 * a new decoder per frame, OpenJPH's failure read from getLastErrorMessage / getIsHeaderValid, the pixels
 * copied out and transferred back. Workers hold the process alive only while they have frames to decode.
 *
 * CORRIDOR_CODEC_THREADS=N sets the number of workers (0: decode on the main thread, as in the browser).
 */
import { createRequire } from 'node:module';
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { configureDicomCodecs, type CodecFrame, type CodecKind, type CodecRunner } from '@corridor/core';

/** The worker: plain CommonJS, so it runs from the built package and from sources under test alike. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const modules = new Map();
let messages = [];
const remember = (t) => { messages.push(String(t)); if (messages.length > 4) messages.shift(); };
function load(kind) {
  let p = modules.get(kind);
  if (!p) {
    const m = require(workerData.paths[kind]);
    let f = typeof m === 'function' ? m : m.default;
    if (f && typeof f === 'object' && 'default' in f) f = f.default;
    p = f({ print: remember, printErr: remember });
    modules.set(kind, p);
  }
  return p;
}
function text(e) {
  if (e instanceof Error) return e.message;
  if (typeof e === 'number') return 'codec error ' + e;
  return String(e);
}
parentPort.on('message', async ({ id, kind, className, data }) => {
  let decoder;
  try {
    const mod = await load(kind);
    decoder = new mod[className]();
    messages = [];
    decoder.getEncodedBuffer(data.length).set(data);
    decoder.decode();
    const failure = decoder.getLastErrorMessage ? decoder.getLastErrorMessage() : '';
    if (failure || (decoder.getIsHeaderValid && decoder.getIsHeaderValid() === false))
      throw new Error(failure || 'the header is not valid');
    const info = decoder.getFrameInfo();
    const out = decoder.getDecodedBuffer().slice();
    parentPort.postMessage(
      { id, frame: { width: info.width, height: info.height, bitsPerSample: info.bitsPerSample,
        componentCount: info.componentCount, isSigned: info.isSigned, data: out } },
      [out.buffer],
    );
  } catch (e) {
    const detail = messages.length ? ' (' + messages.join('; ') + ')' : '';
    parentPort.postMessage({ id, error: text(e) + detail });
  } finally {
    if (decoder) decoder.delete();
  }
});
`;

const MODULES: Readonly<Record<string, string>> = {
  openjpeg: '@cornerstonejs/codec-openjpeg/decodewasmjs',
  openjph: '@cornerstonejs/codec-openjph/wasmjs',
};

interface Job {
  id: number;
  kind: CodecKind;
  className: string;
  data: Uint8Array<ArrayBuffer>;
  resolve: (f: CodecFrame) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  busy: Job | null;
}

/** A fixed set of decoding workers with one queue. */
export class CodecPool {
  private slots: Slot[] = [];
  private queue: Job[] = [];
  private nextId = 1;
  private closed = false;

  private readonly paths: Record<string, string> = {};

  /** Workers start with the first frames (a worker costs ~10-20 MB), up to `size`. */
  constructor(readonly size: number) {
    const require = createRequire(import.meta.url);
    for (const [kind, spec] of Object.entries(MODULES)) this.paths[kind] = require.resolve(spec);
  }

  private spawn(paths: Record<string, string>): Slot {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { paths } });
    const slot: Slot = { worker, busy: null };
    worker.on('message', (msg: { id: number; frame?: CodecFrame; error?: string }) => {
      const job = slot.busy;
      slot.busy = null;
      if (job && job.id === msg.id) {
        if (msg.frame) job.resolve(msg.frame);
        else job.reject(new Error(msg.error ?? 'the codec worker gave no frame'));
      }
      this.pump();
    });
    worker.on('error', (err) => {
      const job = slot.busy;
      slot.busy = null;
      job?.reject(err);
      // A dead worker is replaced, so the pool keeps its size.
      const i = this.slots.indexOf(slot);
      if (i >= 0 && !this.closed) this.slots[i] = this.spawn(paths);
      this.pump();
    });
    worker.unref(); // after the listeners: adding one refs the worker again
    return slot;
  }

  private pump(): void {
    while (this.slots.length < Math.min(this.size, this.queue.length + this.slots.filter((x) => x.busy).length)) {
      this.slots.push(this.spawn(this.paths));
    }
    for (const slot of this.slots) {
      if (slot.busy) continue;
      const job = this.queue.shift();
      if (!job) {
        slot.worker.unref(); // idle: the process may exit
        continue;
      }
      slot.busy = job;
      slot.worker.ref(); // a frame in flight keeps the process alive until it comes back
      slot.worker.postMessage({ id: job.id, kind: job.kind, className: job.className, data: job.data }, [
        job.data.buffer,
      ]);
    }
  }

  readonly run: CodecRunner = (kind, className, data) =>
    new Promise<CodecFrame>((resolve, reject) => {
      if (this.closed) return reject(new Error('the codec pool is closed'));
      // A copy of just the code stream: posting a view would clone its whole file's buffer.
      this.queue.push({ id: this.nextId++, kind, className, data: data.slice(), resolve, reject });
      this.pump();
    });

  async close(): Promise<void> {
    this.closed = true;
    for (const j of this.queue.splice(0)) j.reject(new Error('the codec pool is closed'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}

let installed: CodecPool | null | undefined;

/** Workers by default: one per core, at most 8 (CORRIDOR_CODEC_THREADS overrides; 0 turns them off). */
function defaultSize(): number {
  const env = process.env.CORRIDOR_CODEC_THREADS;
  if (env !== undefined && env !== '' && Number.isInteger(Number(env)) && Number(env) >= 0) return Number(env);
  return Math.min(8, os.availableParallelism());
}

/**
 * Route JPEG 2000 and HTJ2K decoding through a worker pool (once per process; later calls return it).
 * Frames in flight: two per worker, so none waits for the main thread between frames.
 */
export function installCodecPool(size = defaultSize()): CodecPool | null {
  if (installed !== undefined) return installed;
  if (size < 1) return (installed = null);
  let pool: CodecPool;
  try {
    pool = new CodecPool(size);
  } catch {
    // The codecs cannot be found from here (e.g. a bundle moved away from node_modules): decode on this thread.
    return (installed = null);
  }
  configureDicomCodecs({ runner: pool.run, runnerKinds: ['openjpeg', 'openjph'], concurrency: size * 2 });
  return (installed = pool);
}

/** Undo installCodecPool (tests, benchmarks): frames decode on this thread again. */
export async function uninstallCodecPool(): Promise<void> {
  const pool = installed;
  installed = undefined;
  configureDicomCodecs({});
  await pool?.close();
}
