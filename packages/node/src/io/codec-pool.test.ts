/**
 * JPEG 2000 frames decoded on worker threads (issue 14): the real JPEG 2000 series read through the pool
 * must equal, voxel for voxel, the same series decoded on the main thread (core's own path, no pool), and
 * a corrupt code stream must still be a FormatError naming its file.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { FormatError, codecConcurrency, encapsulatedFrame, parseDicom, readDicomSeries } from '@corridor/core';
import { sharedDataDir } from './shared-data.js';
import { installCodecPool, uninstallCodecPool } from './codec-pool.js';
import { bundleForNode } from '../test-helpers/bundle.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../../..');

const dir = path.join(sharedDataDir(), 'ct-dicom-jpeg2000');

async function files() {
  const names = (await readdir(dir)).sort();
  return Promise.all(names.map(async (n) => ({ name: n, bytes: new Uint8Array(await readFile(path.join(dir, n))) })));
}

afterAll(async () => {
  await uninstallCodecPool();
});

describe('codec worker pool', () => {
  it('reads the JPEG 2000 series exactly as the main thread does, with 4 frames in flight', async () => {
    const series = await files();
    await uninstallCodecPool();
    expect(codecConcurrency()).toBe(1);
    const t0 = performance.now();
    const main = (await readDicomSeries(series)).series[0].volume;
    const tMain = performance.now() - t0;
    const pool = installCodecPool(2);
    expect(pool?.size).toBe(2);
    expect(codecConcurrency()).toBe(4);
    await readDicomSeries(series.slice(0, 2)); // the workers load their codec
    const t1 = performance.now();
    const viaPool = (await readDicomSeries(series)).series[0].volume;
    const tPool = performance.now() - t1;
    expect(viaPool.dims).toEqual([512, 512, 20]);
    expect(Array.from(viaPool.indexToPatient)).toEqual(Array.from(main.indexToPatient));
    let diff = 0;
    for (let i = 0; i < main.data.length; i++) if (main.data[i] !== viaPool.data[i]) diff++;
    expect(diff).toBe(0);
    console.log(
      `JPEG 2000 20 frames: main thread ${(tMain / 20).toFixed(1)} ms/frame, 2 workers ${(tPool / 20).toFixed(1)} ms/frame`,
    );
  }, 120_000);

  it('a corrupt code stream decoded by a worker is a FormatError naming the file (the codec or the size check)', async () => {
    installCodecPool(2);
    const [first] = await files();
    const stream = encapsulatedFrame(parseDicom(first.bytes, first.name), 0);
    // Zero the code stream after its first 200 bytes (SIZ kept): the worker's codec cannot decode it.
    const bad = first.bytes.slice();
    bad.fill(0, bad.length - stream.length + 200, bad.length - 16);
    const err = await readDicomSeries([{ name: 'bad.dcm', bytes: bad }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect((err as Error).message).toMatch(/^bad\.dcm: .*JPEG 2000/);
  }, 60_000);

  it('a process that loaded a JPEG 2000 folder exits by itself: idle workers hold nothing', async () => {
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'corridor-pool-'));
    try {
      const child = await bundleForNode(path.join(here, '../test-helpers/pool-exit-child.ts'), path.join(tmp, 'c.mjs'));
      // NODE_PATH: the bundle lies outside the repository, and the pool resolves the codecs from there.
      const env = { ...process.env, NODE_PATH: path.join(repo, 'node_modules'), CORRIDOR_CODEC_THREADS: '2' };
      const t0 = Date.now();
      const { code, out } = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const p = spawn(process.execPath, [child, dir], { stdio: ['ignore', 'pipe', 'inherit'], env });
        let out = '';
        p.stdout.on('data', (b: Buffer) => (out += b.toString()));
        const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
        p.on('exit', (c) => {
          clearTimeout(timer);
          resolve({ code: c, out });
        });
      });
      expect(code).toBe(0); // not killed by the 30 s timer
      expect(JSON.parse(out)).toEqual({ pool: 2, dims: [512, 512, 20] });
      console.log(`child loaded the JPEG 2000 folder with 2 workers and exited after ${Date.now() - t0} ms`);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }, 60_000);
});
