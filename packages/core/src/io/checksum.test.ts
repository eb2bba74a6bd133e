/**
 * gzip CRC-32 / ISIZE and zlib Adler-32 are checked as data inflate (issue 14). Expected checksums are the
 * published check values ("123456789": CRC-32 0xCBF43926, Adler-32 0x091E01DE) and the trailers written by
 * Node's zlib; a corrupted byte that still inflates must be refused with a FormatError naming the file.
 */
import { gzipSync, zlibSync } from 'fflate';
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../errors.js';
import { adler32, crc32 } from './checksum.js';
import { inflateCapped, inflateInto } from './inflate.js';
import { readNifti, writeNifti } from './nifti.js';
import { createVolume } from '../volume/volume.js';

const text = (s: string) => new TextEncoder().encode(s);

function noise(n: number, seed = 7): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = (x >>> 24) & 0x0f; // compressible, yet every block holds literals
  }
  return b;
}

/** A byte of a stored (uncompressed) deflate block changed: the stream still inflates, to wrong data. */
function storedGzipWithFlip(data: Uint8Array): { good: Uint8Array; bad: Uint8Array } {
  const good = new Uint8Array(zlib.gzipSync(data, { level: 0 }));
  const bad = good.slice();
  bad[Math.floor(good.length / 2)] ^= 0x10;
  return { good, bad };
}

describe('checksums', () => {
  it('CRC-32 and Adler-32 give the published check values and match Node zlib trailers', () => {
    expect(crc32(text('123456789'))).toBe(0xcbf43926);
    expect(adler32(text('123456789'))).toBe(0x091e01de);
    expect(crc32(new Uint8Array(0))).toBe(0);
    const d = noise(100_003);
    const gz = zlib.gzipSync(d);
    expect(crc32(d)).toBe(gz.readUInt32LE(gz.length - 8));
    const z = zlib.deflateSync(d);
    expect(adler32(d)).toBe(z.readUInt32BE(z.length - 4));
    // Adler-32 over more than 5552 bytes of 0xff (the modulo step) equals zlib's.
    const ff = new Uint8Array(70_000).fill(0xff);
    const zf = zlib.deflateSync(ff);
    expect(adler32(ff)).toBe(zf.readUInt32BE(zf.length - 4));
  });
});

describe('inflate verifies the trailer', () => {
  it('inflateInto refuses a gzip member whose flipped byte still inflates: "CRC mismatch", naming the file', () => {
    const data = noise(50_000);
    const { good, bad } = storedGzipWithFlip(data);
    const into = (b: Uint8Array) => {
      const dest = new Uint8Array(data.length);
      inflateInto(b, { container: 'gzip', headBytes: 0, plan: () => ({ skip: 0, dest }), source: 'ct.nii.gz' });
      return dest;
    };
    expect(into(good)).toEqual(data);
    expect(() => into(bad)).toThrow(FormatError);
    expect(() => into(bad)).toThrow(/^ct\.nii\.gz: corrupt gzip data: CRC mismatch \(trailer 0x[0-9a-f]{8}, data/);
  });

  it('inflateInto checks each member of a multi-member gzip file', () => {
    const a = noise(30_000, 1),
      b = noise(20_000, 2);
    const good = new Uint8Array([...gzipSync(a), ...zlib.gzipSync(b, { level: 0 })]);
    const dest = new Uint8Array(50_000);
    const run = (bytes: Uint8Array) =>
      inflateInto(bytes, { container: 'gzip', headBytes: 0, plan: () => ({ skip: 0, dest }), source: 'x.gz' });
    expect(run(good).filled).toBe(50_000);
    expect(dest.subarray(30_000)).toEqual(b);
    const first = gzipSync(a);
    const badFirstCrc = good.slice();
    badFirstCrc[first.length - 8] ^= 1; // the first member's stored CRC
    expect(() => run(badFirstCrc)).toThrow(/CRC mismatch \(trailer/);
    const badSecond = good.slice();
    badSecond[first.length + 5000] ^= 0x04; // inside the second (stored) member's data
    expect(() => run(badSecond)).toThrow(/CRC mismatch of member 2/);
  });

  it('inflateInto and inflateCapped refuse a zlib stream with a wrong Adler-32', () => {
    const data = noise(40_000);
    const z = zlibSync(data);
    const bad = z.slice();
    bad[bad.length - 1] ^= 0x01;
    const dest = new Uint8Array(data.length);
    const into = (b: Uint8Array) =>
      inflateInto(b, { container: 'zlib', headBytes: 0, plan: () => ({ skip: 0, dest }), source: 'v.mha' });
    expect(into(z).filled).toBe(data.length);
    expect(() => into(bad)).toThrow(/^v\.mha: corrupt zlib data: Adler-32 mismatch/);
    expect(inflateCapped(z, { container: 'zlib', source: 'v.mha' })).toEqual(data);
    expect(() => inflateCapped(bad, { container: 'zlib', source: 'v.mha', maxBytes: data.length })).toThrow(
      /Adler-32 mismatch/,
    );
  });

  it('inflateCapped refuses a gzip CRC mismatch; a peek (verify false) does not look', () => {
    const data = noise(50_000);
    const { good, bad } = storedGzipWithFlip(data);
    expect(inflateCapped(good, { container: 'gzip', source: 'a.img.gz' })).toEqual(data);
    expect(() => inflateCapped(bad, { container: 'gzip', source: 'a.img.gz', maxBytes: data.length })).toThrow(
      /^a\.img\.gz: corrupt gzip data: CRC mismatch/,
    );
    expect(inflateCapped(bad, { container: 'gzip', maxBytes: 600, verify: false }).length).toBe(600);
  });

  it('readNifti refuses a .nii.gz with a flipped voxel byte that still inflates', () => {
    const v = createVolume({
      data: Int16Array.from({ length: 40 * 30 * 20 }, (_, i) => (i * 37) % 2000),
      dims: [40, 30, 20],
      indexToPatient: Float64Array.of(1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1),
    });
    const raw = writeNifti(v, { gzip: false });
    const gz = new Uint8Array(zlib.gzipSync(raw, { level: 0 }));
    expect(Array.from(readNifti(gz, 'ct.nii.gz').volume.data.subarray(0, 5))).toEqual([0, 37, 74, 111, 148]);
    const bad = gz.slice();
    bad[gz.length - 1000] ^= 0x01; // a voxel byte of the stored block
    expect(() => readNifti(bad, 'ct.nii.gz')).toThrow(/^ct\.nii\.gz: corrupt gzip data: CRC mismatch/);
    // A compressed file takes the one-pass path (its trailer says header + voxels exactly): checked too.
    const packed = new Uint8Array(zlib.gzipSync(raw, { level: 6 }));
    expect(readNifti(packed, 'ct.nii.gz').volume.data[3]).toBe(111);
    packed[packed.length - 8] ^= 0x01; // the stored CRC-32
    expect(() => readNifti(packed, 'ct.nii.gz')).toThrow(/^ct\.nii\.gz: corrupt gzip data: CRC mismatch/);
  });
});
