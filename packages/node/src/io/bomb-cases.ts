/**
 * The large and hostile inputs whose peak memory is measured (memory.test.ts, and the io benchmark's
 * table): each written to a folder, with the voxel or data-set bytes it justifies. Used by tests and
 * benchmarks only; built from core's writers and Node's zlib, never from the readers under test.
 */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { deflateRawSync, gzipSync } from 'node:zlib';
import { createVolume, writeDicomSeries, writeNifti } from '@corridor/core';

export interface BombCase {
  name: string;
  file: string;
  /** Bytes of the file. */
  fileBytes: number;
  /** Bytes the reader must hold at the end (the volume), or may have to hold (a data set), for the bound. */
  justifiedBytes: number;
  /** What the reader should give: dims and type, or the start of the error. */
  expect: string;
}

const MiB = 2 ** 20;

function niftiOf(dims: [number, number, number], data: Int16Array): Uint8Array {
  return writeNifti(
    createVolume({ data, dims, indexToPatient: Float64Array.of(1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1) }),
    { gzip: false },
  );
}

/** A CT-like int16 volume: smooth anatomy-like values plus noise, so gzip compresses it about 2-4:1. */
function ctLike(n: number, nx: number): Int16Array {
  const d = new Int16Array(n);
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    const col = i % nx;
    const row = Math.floor(i / nx) % nx;
    const r2 = (col - nx / 2) ** 2 + (row - nx / 2) ** 2;
    d[i] = (r2 < (nx * 0.4) ** 2 ? 40 : -1000) + ((x >>> 28) - 8);
  }
  return d;
}

/** Write the cases into dir; `scale` 1 gives 256 MiB volumes (0.25: 64 MiB, for a quicker run). */
export async function writeBombCases(dir: string, scale = 1): Promise<BombCase[]> {
  const nz = Math.max(8, Math.round(512 * scale));
  const cases: BombCase[] = [];
  const put = async (name: string, bytes: Uint8Array, justified: number, expect: string) => {
    const file = path.join(dir, name);
    await writeFile(file, bytes);
    cases.push({ name, file, fileBytes: bytes.length, justifiedBytes: justified, expect });
  };
  const volBytes = 512 * 512 * nz * 2;
  // Uncompressed NIfTI: the voxels must be viewed in the bytes read, not copied.
  await put('raw.nii', niftiOf([512, 512, nz], ctLike(512 * 512 * nz, 512)), volBytes, `512 x 512 x ${nz} Int16Array`);
  // gzip NIfTI of CT-like voxels, and of zeros (1000:1, the output arrives in the largest chunks).
  const ct = niftiOf([512, 512, nz], ctLike(512 * 512 * nz, 512));
  await put('ct.nii.gz', gzipSync(ct, { level: 1 }), volBytes, `512 x 512 x ${nz} Int16Array`);
  const zeros = niftiOf([512, 512, nz], new Int16Array(512 * 512 * nz));
  await put('zeros.nii.gz', gzipSync(zeros, { level: 1 }), volBytes, `512 x 512 x ${nz} Int16Array`);
  // A bomb: the header claims a quarter of what the stream holds; only the claim may be inflated.
  const quarter = Math.round(nz / 4);
  const header = niftiOf([512, 512, quarter], new Int16Array(512 * 512 * quarter)).subarray(0, 352);
  const big = new Uint8Array(352 + volBytes);
  big.set(header);
  await put('claim-quarter.nii.gz', gzipSync(big, { level: 1 }), volBytes / 4, `512 x 512 x ${quarter} Int16Array`);
  // A deflated DICOM (1.2.840.10008.1.2.1.99) whose data set inflates to about 1.5 volumes of zeros.
  const [slice] = writeDicomSeries(
    createVolume({
      data: new Int16Array(512 * 512),
      dims: [512, 512, 1],
      indexToPatient: Float64Array.of(1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1),
    }),
  );
  const b = slice.bytes;
  const metaEnd = 132 + 12 + new DataView(b.buffer, b.byteOffset).getUint32(140, true);
  const body = b.subarray(metaEnd);
  const pad = Math.round(volBytes * 1.5);
  const padded = new Uint8Array(body.length + pad);
  padded.set(body);
  // The pixel data is the last element: give it the padding too (a 512 x 512 frame plus zeros).
  const pxAt = body.length - 512 * 512 * 2 - 12;
  const tag = new DataView(body.buffer, body.byteOffset + pxAt, 4);
  if (tag.getUint16(0, true) !== 0x7fe0 || tag.getUint16(2, true) !== 0x0010)
    throw new Error('the pixel data is not the last element of the slice written');
  new DataView(padded.buffer).setUint32(pxAt + 8, 512 * 512 * 2 + pad, true);
  const deflated = deflateRawSync(padded, { level: 1 });
  const ts = '1.2.840.10008.1.2.1.99';
  const meta = b.slice(0, metaEnd);
  const tsAt = indexOfText(meta, '1.2.840.10008.1.2.1');
  if (tsAt < 0) throw new Error('the writer put no explicit little endian syntax in its meta');
  // Same length (20 characters, no padding) as '1.2.840.10008.1.2.1' plus its NUL: rewrite in place.
  const uid = new TextEncoder().encode(ts + '\0');
  const newMeta = new Uint8Array(meta.length + uid.length - 20);
  newMeta.set(meta.subarray(0, tsAt));
  newMeta.set(uid, tsAt);
  newMeta.set(meta.subarray(tsAt + 20), tsAt + uid.length);
  const dv = new DataView(newMeta.buffer);
  dv.setUint16(tsAt - 2, uid.length, true);
  dv.setUint32(140, dv.getUint32(140, true) + uid.length - 20, true);
  const file = new Uint8Array(newMeta.length + deflated.length);
  file.set(newMeta);
  file.set(deflated, newMeta.length);
  await put('deflated-bomb.dcm', file, padded.length, '512 x 512 x 1');
  return cases;
}

function indexOfText(b: Uint8Array, text: string): number {
  const t = new TextEncoder().encode(text);
  outer: for (let i = 0; i + t.length <= b.length; i++) {
    for (let j = 0; j < t.length; j++) if (b[i + j] !== t[j]) continue outer;
    return i;
  }
  return -1;
}

export interface PeakResult {
  grownMiB: number;
  ms: number;
  result: string;
}

/** Peak RSS growth of a child process (the bundled peak-child) loading `file`. */
export function peakOfLoad(child: string, file: string): Promise<PeakResult> {
  return new Promise((resolve, reject) => {
    // A clean NODE_OPTIONS: a test runner's preloads would set the peak before the load begins.
    const env = { ...process.env, NODE_OPTIONS: '' };
    const p = spawn(process.execPath, [child, file], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '',
      err = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr.on('data', (b: Buffer) => (err += b.toString()));
    p.on('exit', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as PeakResult);
      } catch {
        reject(new Error(`peak child exited ${code}: ${err || out}`));
      }
    });
  });
}

export { MiB };
