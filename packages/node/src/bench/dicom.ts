/**
 * DICOM load benchmark: Corridor's series reader (parse, sort, rescale, one typed array) beside
 * dicom-parser reading the same files' pixel data into one typed array with no sorting or rescaling:
 * the floor a full reader can approach.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import dicomParser from 'dicom-parser';
import { createVolume, indexToPatientFrom, readDicomSeries, writeDicomSeries, type NamedBytes } from '@corridor/core';
import { timeMedian, type BenchRow } from './types.js';
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
  const volume = createVolume({ data, dims: [nx, ny, nz], indexToPatient: indexToPatientFrom([-200, -180, 900], [0.7, 0.7, 0.7]) });
  return writeDicomSeries(volume, { seriesDescription: 'benchmark' });
}

export async function benchDicom(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const series = syntheticSeries(512, 512, 400);
  // Shuffle so the reader has to sort, as with real file orders.
  const shuffled = series.map((f, n) => ({ f, key: (n * 7919) % series.length })).sort((a, b) => a.key - b.key).map((x) => x.f);
  const mb = shuffled.reduce((s, f) => s + f.bytes.length, 0) / 1e6;
  const ours = await timeMedian(3, () => readDicomSeries(shuffled));
  const floor = await timeMedian(3, () => dicomParserFloor(shuffled, 512 * 512));
  rows.push({ name: 'DICOM 512x512x400 uncompressed, corridor', value: mb / (ours.ms / 1000), unit: 'MB/s', notes: `${ours.ms.toFixed(0)} ms for ${mb.toFixed(0)} MB, sorted and rescaled` });
  rows.push({ name: 'DICOM 512x512x400 uncompressed, dicom-parser floor', value: mb / (floor.ms / 1000), unit: 'MB/s', notes: `${floor.ms.toFixed(0)} ms, parse + copy only` });
  rows.push({ name: 'DICOM uncompressed, corridor / dicom-parser', value: (floor.ms / ours.ms) * 100, unit: '%', notes: 'goal >= 80%' });

  const dir = path.join(sharedDataDir(), 'ct-dicom-jpeg2000');
  const names = (await readdir(dir)).sort();
  const j2k = await Promise.all(names.map(async (n) => ({ name: path.join(dir, n), bytes: new Uint8Array(await readFile(path.join(dir, n))) })));
  const j2kMb = j2k.reduce((s, f) => s + f.bytes.length, 0) / 1e6;
  const jt = await timeMedian(3, () => readDicomSeries(j2k));
  rows.push({ name: 'DICOM JPEG 2000 lossless 512x512x20 (shared), corridor', value: jt.ms / j2k.length, unit: 'ms/frame', notes: `${jt.ms.toFixed(0)} ms total, ${(j2kMb / (jt.ms / 1000)).toFixed(1)} MB/s of files, one core; goal <= 40 ms/frame` });
  return rows;
}
