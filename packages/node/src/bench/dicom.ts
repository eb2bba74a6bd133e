/**
 * DICOM load benchmark: Corridor's series reader (parse, sort, rescale, one typed array) beside
 * dicom-parser reading the same files' pixel data into one typed array with no sorting or rescaling:
 * the floor a full reader can approach. For JPEG 2000 the floor is the bare OpenJPEG WebAssembly codec
 * decoding the same code streams with one reused decoder, as the codec's own examples do.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import dicomParser from 'dicom-parser';
import {
  createVolume,
  encapsulatedFrame,
  indexToPatientFrom,
  parseDicom,
  readDicomSeries,
  writeDicomSeries,
  type NamedBytes,
} from '@corridor/core';
import type { BenchRow } from './types.js';
import { sharedDataDir } from '../io/shared-data.js';

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
  return rows;
}
