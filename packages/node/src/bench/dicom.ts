/**
 * DICOM load benchmark: Corridor's series reader (parse, sort, rescale, one typed array) beside
 * dicom-parser reading the same files' pixel data into one typed array with no sorting or rescaling:
 * the floor a full reader can approach. For JPEG 2000 the floor is the bare OpenJPEG WebAssembly codec
 * decoding the same code streams with one reused decoder, as the codec's own examples do.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import dicomParser from 'dicom-parser';
import os from 'node:os';
import {
  TAG,
  TS,
  configureDicomCodecs,
  createVolume,
  describePixels,
  encapsulatedFrame,
  indexToPatientFrom,
  parseDicom,
  readDicomSeries,
  writeDicomSeries,
  type NamedBytes,
} from '@corridor/core';
import type { BenchRow } from './types.js';
import { sharedDataDir } from '../io/shared-data.js';
import { CodecPool } from '../io/codec-pool.js';

interface Htj2kEncoderModule {
  HTJ2KEncoder: new () => {
    getDecodedBuffer(info: object): Uint8Array;
    encode(): void;
    getEncodedBuffer(): Uint8Array;
    delete(): void;
  };
}

function u16(v: number): number[] {
  return [v & 0xff, (v >> 8) & 0xff];
}
function u32(v: number): number[] {
  return [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff];
}

/**
 * The same CT as HTJ2K lossless files: each slice of `files` (explicit little endian) encoded by OpenJPH's
 * own encoder and wrapped as encapsulated pixel data (one fragment, empty offset table).
 */
async function toHtj2k(files: NamedBytes[]): Promise<NamedBytes[]> {
  const specifier = '@cornerstonejs/codec-openjph/wasmjs';
  const mod = (await import(specifier)) as { default: (o?: object) => Promise<Htj2kEncoderModule> };
  const quiet = () => undefined;
  const codec = await mod.default({ print: quiet, printErr: quiet });
  return files.map((f) => {
    const ds = parseDicom(f.bytes, f.name);
    const desc = describePixels(ds);
    const px = ds.element(TAG.PixelData);
    if (!px) throw new Error(`${f.name}: no pixel data`);
    const size = desc.rows * desc.columns * 2;
    const enc = new codec.HTJ2KEncoder();
    const info = { width: desc.columns, height: desc.rows, bitsPerSample: 16, componentCount: 1 };
    enc
      .getDecodedBuffer({ ...info, isSigned: desc.pixelRepresentation === 1, isUsingColorTransform: false })
      .set(ds.bytes.subarray(px.dataOffset, px.dataOffset + size));
    enc.encode();
    let stream = enc.getEncodedBuffer().slice();
    enc.delete();
    if (stream.length % 2) stream = Uint8Array.from([...stream, 0]);
    const uid = [...new TextEncoder().encode(TS.Htj2kLossless), 0];
    const tsElement = [0x02, 0, 0x10, 0, 0x55, 0x49, ...u16(uid.length), ...uid];
    const meta = [0x02, 0, 0, 0, 0x55, 0x4c, 4, 0, ...u32(tsElement.length), ...tsElement];
    const before = ds.bytes.subarray(0, px.dataOffset - 12);
    const pixelHeader = [0xe0, 0x7f, 0x10, 0, 0x4f, 0x42, 0, 0, 0xff, 0xff, 0xff, 0xff];
    const items = [0xfe, 0xff, 0, 0xe0, ...u32(0), 0xfe, 0xff, 0, 0xe0, ...u32(stream.length)];
    const tail = [0xfe, 0xff, 0xdd, 0xe0, ...u32(0)];
    const head = new Uint8Array(132);
    head.set([0x44, 0x49, 0x43, 0x4d], 128);
    const parts = [head, Uint8Array.from(meta), before, Uint8Array.from([...pixelHeader, ...items]), stream];
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0) + tail.length);
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    out.set(tail, o);
    return { name: f.name.replace(/\.dcm$/, '') + '-htj2k.dcm', bytes: out };
  });
}

function dicomParserFloor(files: NamedBytes[], frameVoxels: number): Int16Array {
  const out = new Int16Array(frameVoxels * files.length);
  files.forEach((f, n) => {
    const ds = dicomParser.parseDicom(f.bytes);
    const el = ds.elements.x7fe00010;
    out.set(new Int16Array(f.bytes.buffer, f.bytes.byteOffset + el.dataOffset, frameVoxels), n * frameVoxels);
  });
  return out;
}

function syntheticSeries(nx: number, ny: number, nz: number): NamedBytes[] {
  const data = new Int16Array(nx * ny * nz);
  for (let n = 0; n < data.length; n++) data[n] = ((n * 2654435761) >>> 20) - 1024;
  const volume = createVolume({
    data,
    dims: [nx, ny, nz],
    indexToPatient: indexToPatientFrom([-200, -180, 900], [0.7, 0.7, 0.7]),
  });
  return writeDicomSeries(volume, { seriesDescription: 'benchmark' });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/**
 * Wall times (ms) of variants run in turn, `runs` rounds after one warm-up round: per round, and the
 * median of each. Taking turns lets all see the same machine load (the cores are shared); the order
 * flips every round and the event loop gets a moment between runs, so no variant keeps paying for the
 * garbage of the one before it.
 */
async function timeInTurns<K extends string>(
  runs: number,
  variants: Record<K, () => unknown>,
): Promise<{ rounds: Record<K, number[]>; median: Record<K, number> }> {
  const entries = Object.entries(variants) as [K, () => unknown][];
  const rounds = {} as Record<K, number[]>;
  for (const [name, fn] of entries) {
    await fn();
    rounds[name] = [];
  }
  const pause = () => new Promise((resolve) => setTimeout(resolve, 20));
  for (let r = 0; r < runs; r++) {
    for (const [name, fn] of r % 2 === 0 ? entries : [...entries].reverse()) {
      await pause();
      const t0 = performance.now();
      await fn();
      rounds[name].push(performance.now() - t0);
    }
  }
  const med = {} as Record<K, number>;
  for (const [name] of entries) med[name] = median(rounds[name]);
  return { rounds, median: med };
}

/** Median over rounds of a / b: each pair ran back to back, so slow drifts in machine load cancel. */
function pairedRatio(a: number[], b: number[]): number {
  return median(a.map((x, i) => x / b[i]));
}

interface BareJ2kDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  getDecodedBuffer(): Uint8Array;
  decode(): void;
  delete(): void;
}

/** The OpenJPEG WebAssembly codec as its examples use it, with none of our code around the decode. */
async function bareOpenJpeg(): Promise<{ decodeAll(frames: Uint8Array[]): number; dispose(): void }> {
  // A variable specifier: the node package has no typings for the codec's entry point (core has).
  const specifier = '@cornerstonejs/codec-openjpeg/decodewasmjs';
  const mod = (await import(specifier)) as {
    default: (options?: object) => Promise<{ J2KDecoder: new () => BareJ2kDecoder }>;
  };
  const quiet = () => undefined;
  const codec = await mod.default({ print: quiet, printErr: quiet });
  const decoder = new codec.J2KDecoder();
  return {
    decodeAll(frames) {
      let check = 0;
      for (const f of frames) {
        decoder.getEncodedBuffer(f.length).set(f);
        decoder.decode();
        check += decoder.getDecodedBuffer().length;
      }
      return check;
    },
    dispose: () => decoder.delete(),
  };
}

export async function benchDicom(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const series = syntheticSeries(512, 512, 400);
  // Shuffle so the reader has to sort, as with real file orders.
  const shuffled = series
    .map((f, n) => ({ f, key: (n * 7919) % series.length }))
    .sort((a, b) => a.key - b.key)
    .map((x) => x.f);
  const mb = shuffled.reduce((s, f) => s + f.bytes.length, 0) / 1e6;
  const runs = 11;
  const { rounds: ur, median: u } = await timeInTurns(runs, {
    ours: () => readDicomSeries(shuffled),
    floor: () => dicomParserFloor(shuffled, 512 * 512),
  });
  rows.push({
    name: 'DICOM 512x512x400 uncompressed, corridor',
    value: mb / (u.ours / 1000),
    unit: 'MB/s',
    notes:
      `${u.ours.toFixed(0)} ms for ${mb.toFixed(0)} MB, sorted and rescaled ` +
      `(median of ${runs}, taking turns with dicom-parser)`,
  });
  rows.push({
    name: 'DICOM 512x512x400 uncompressed, dicom-parser floor',
    value: mb / (u.floor / 1000),
    unit: 'MB/s',
    notes: `${u.floor.toFixed(0)} ms, parse + copy only`,
  });
  rows.push({
    name: 'DICOM uncompressed, corridor / dicom-parser',
    value: pairedRatio(ur.floor, ur.ours) * 100,
    unit: '%',
    notes:
      `median of the ${runs} back-to-back pairs ` +
      `(ratio of the medians ${((u.floor / u.ours) * 100).toFixed(1)}%); goal >= 80%`,
  });

  const dir = path.join(sharedDataDir(), 'ct-dicom-jpeg2000');
  const names = (await readdir(dir)).sort();
  const j2k = await Promise.all(
    names.map(async (n) => ({ name: path.join(dir, n), bytes: new Uint8Array(await readFile(path.join(dir, n))) })),
  );
  const j2kMb = j2k.reduce((s, f) => s + f.bytes.length, 0) / 1e6;
  // The bare codec gets the code streams already cut out of the files: only the decode is timed.
  const frames = j2k.map((f) => encapsulatedFrame(parseDicom(f.bytes, f.name), 0));
  const bare = await bareOpenJpeg();
  try {
    const { rounds: jr, median: j } = await timeInTurns(5, {
      ours: () => readDicomSeries(j2k),
      bare: () => bare.decodeAll(frames),
    });
    const oursMs = j.ours / j2k.length;
    const bareMs = j.bare / frames.length;
    const oursPerBare = pairedRatio(jr.ours, jr.bare) * 100;
    rows.push({
      name: 'DICOM JPEG 2000 lossless 512x512x20 (shared), corridor',
      value: oursMs,
      unit: 'ms/frame',
      notes:
        `${j.ours.toFixed(0)} ms total, ${(j2kMb / (j.ours / 1000)).toFixed(1)} MB/s of files, one core, ` +
        'sorted and rescaled; goal <= 40 ms/frame',
    });
    rows.push({
      name: 'DICOM JPEG 2000 lossless, bare OpenJPEG WASM decode (floor)',
      value: bareMs,
      unit: 'ms/frame',
      notes:
        '@cornerstonejs/codec-openjpeg, one reused decoder, same code streams, decode only; ' +
        `corridor / bare ${oursPerBare.toFixed(1)}% (median of 5 back-to-back pairs)`,
    });
  } finally {
    bare.dispose();
  }

  // Frames decoded in parallel on worker threads (what `corridor` does when it loads a folder), taking
  // turns with the same read on this thread; then HTJ2K, the same CT transcoded losslessly by OpenJPH.
  const workers = Math.min(8, os.availableParallelism());
  const pool = new CodecPool(workers);
  const onPool = () => configureDicomCodecs({ runner: pool.run, concurrency: workers * 2 });
  const onThread = () => configureDicomCodecs({});
  try {
    const viaPool = async (files: NamedBytes[]) => {
      onPool();
      try {
        return await readDicomSeries(files);
      } finally {
        onThread();
      }
    };
    const { median: p } = await timeInTurns(7, {
      workers: () => viaPool(j2k),
      thread: () => readDicomSeries(j2k),
    });
    rows.push({
      name: `DICOM JPEG 2000 lossless 512x512x20 (shared), ${workers} worker threads`,
      value: p.workers / j2k.length,
      unit: 'ms/frame',
      notes:
        `${p.workers.toFixed(0)} ms total wall time (one thread: ${(p.thread / j2k.length).toFixed(1)} ms/frame; ` +
        `median of 7, taking turns); goal <= 20 ms/frame on 2 cores`,
    });
    const volume = (await readDicomSeries(j2k)).series[0].volume;
    const ht = await toHtj2k(writeDicomSeries(volume, { seriesDescription: 'htj2k benchmark' }));
    const htMb = ht.reduce((n, f) => n + f.bytes.length, 0) / 1e6;
    const check = (await viaPool(ht)).series[0].volume;
    let diff = 0;
    for (let i = 0; i < volume.data.length; i++) if (check.data[i] !== volume.data[i]) diff++;
    const { median: h } = await timeInTurns(7, {
      workers: () => viaPool(ht),
      thread: () => readDicomSeries(ht),
    });
    rows.push({
      name: `DICOM HTJ2K lossless 512x512x20 (the shared CT transcoded), ${workers} worker threads`,
      value: h.workers / ht.length,
      unit: 'ms/frame',
      notes:
        `${h.workers.toFixed(0)} ms total, ${htMb.toFixed(1)} MB of files (one thread: ` +
        `${(h.thread / ht.length).toFixed(1)} ms/frame); ${diff} voxels differ from the JPEG 2000 read; ` +
        'goal <= 8 ms/frame',
    });
  } finally {
    onThread();
    await pool.close();
  }
  return rows;
}
