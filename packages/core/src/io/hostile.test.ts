/**
 * Hostile input (issue 14): headers that claim absurd sizes, bombs and broken files. Each case builds
 * its fixture here and expects the exact typed error, named after the file.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync, zlibSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { FormatError, LimitError } from '../errors.js';
import { createVolume } from '../volume/volume.js';
import { readDicomSeries } from './dicom/series.js';
import { writeDicomSeries } from './dicom/writer.js';
import { readMetaImage } from './metaimage.js';
import { readNifti, writeNifti } from './nifti.js';
import { readNrrd } from './nrrd.js';
import { sniffFormat } from './sniff.js';

const text = (s: string) => new TextEncoder().encode(s);

describe('NRRD header parsing is linear and refuses absurd dimension counts', () => {
  it('refuses an endian other than little or big, naming the file (it was read as little)', () => {
    const nrrd = (endian: string) =>
      text(
        `NRRD0004\ntype: short\ndimension: 3\nsizes: 2 1 1\nendian: ${endian}\nencoding: raw\n\n\u0001\u0000\u0000\u0001`,
      );
    expect([...readNrrd(nrrd('little'), 'l.nrrd').volume.data]).toEqual([1, 256]);
    expect([...readNrrd(nrrd('BIG'), 'b.nrrd').volume.data]).toEqual([256, 1]);
    for (const odd of ['middle', 'le', 'little-endian', '', 'big big']) {
      expect(() => readNrrd(nrrd(odd), 'e.nrrd')).toThrow(
        new FormatError(`endian "${odd}" is not "little" or "big"`, 'e.nrrd'),
      );
    }
  });
  it('refuses dimension 500000 at once (it took 108 s when the parser was quadratic)', () => {
    const n = 500000;
    const header = `NRRD0004\ntype: uchar\ndimension: ${n}\nsizes: ${'1 '.repeat(n)}\nencoding: raw\n\n`;
    const t0 = performance.now();
    expect(() => readNrrd(text(header), 'd.nrrd')).toThrow(FormatError);
    expect(() => readNrrd(text(header), 'd.nrrd')).toThrow('d.nrrd: dimension 500000: NRRD allows 1 to 16 axes');
    // Two parses of a 1 MB header; linear work takes milliseconds, 1 s leaves room for a slow machine.
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('still reads 16 axes, 13 of them non-spatial of size 1, in linear time', () => {
    const kinds = [...Array<string>(13).fill('list'), 'domain', 'domain', 'domain'].join(' ');
    const sizes = `${'1 '.repeat(13)}2 1 1`;
    const header = `NRRD0004\ntype: uchar\ndimension: 16\nsizes: ${sizes}\nkinds: ${kinds}\nencoding: raw\n\n`;
    const bytes = new Uint8Array([...text(header), 7, 9]);
    const v = readNrrd(bytes, 'k.nrrd').volume;
    expect([...v.dims]).toEqual([2, 1, 1]);
    expect([...v.data]).toEqual([7, 9]);
  });
});

/** Incompressible bytes (xorshift32), the same on every run. */
function noiseBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = 2463534242;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const eye = () => Float64Array.from([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);

/** An uncompressed NIfTI (version 1 or 2) of a 2 x 2 x 1 int16 volume, to patch header fields in. */
function nifti(version: 1 | 2 = 1): { bytes: Uint8Array; dv: DataView } {
  const v = createVolume({ data: new Int16Array([1, 2, 3, 4]), dims: [2, 2, 1], indexToPatient: eye() });
  const bytes = writeNifti(v, { gzip: false, version });
  return { bytes, dv: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
}

/** NIfTI-1 header + payload with dims and datatype set (offsets from nifti1.h), 352-byte voxel offset. */
function nifti1Claiming(dims: [number, number, number], payload: Uint8Array, datatype = 2, bitpix = 8): Uint8Array {
  const { bytes } = nifti(1);
  const out = new Uint8Array(352 + payload.length);
  out.set(bytes.subarray(0, 352));
  out.set(payload, 352);
  const dv = new DataView(out.buffer);
  dims.forEach((d, i) => dv.setInt16(42 + 2 * i, d, true));
  dv.setInt16(70, datatype, true);
  dv.setInt16(72, bitpix, true);
  return out;
}

describe('implausible geometry is refused before anything is inflated', () => {
  it('a NIfTI-2 .nii.gz claiming 2^31-1 x 1 x 1 voxels (6.3 GB and accepted before): LimitError', () => {
    const { bytes, dv } = nifti(2);
    dv.setBigInt64(16 + 8, BigInt(2 ** 31 - 1), true); // dim[1]
    dv.setBigInt64(16 + 16, 1n, true); // dim[2]
    const file = new Uint8Array(bytes.length + (1 << 20));
    file.set(bytes);
    const gz = gzipSync(file);
    expect(() => readNifti(gz, 'bomb.nii.gz')).toThrow(LimitError);
    expect(() => readNifti(gz, 'bomb.nii.gz')).toThrow(
      'bomb.nii.gz: header claims 2147483647 x 1 x 1 voxels: ' +
        'axis 0 has 2147483647, more than 65536 (no medical image has)',
    );
  });

  it('a claim over the voxel-byte budget (default 2 GiB, configurable) is a LimitError naming the claim', () => {
    const claim = nifti1Claiming([2048, 2048, 1024], new Uint8Array(16), 4, 16);
    expect(() => readNifti(claim, 'big.nii')).toThrow(
      'big.nii: header claims 2048 x 2048 x 1024 voxels of 2 byte(s), 8.00 GiB: ' +
        'more than the 2.00 GiB budget (maxVoxelBytes)',
    );
    const small = nifti1Claiming([128, 128, 64], new Uint8Array(128 * 128 * 64 * 2), 4, 16);
    expect(readNifti(small, 'ok.nii').volume.dims).toEqual([128, 128, 64]);
    expect(() => readNifti(small, 'ok.nii', { maxVoxelBytes: 1 << 20 })).toThrow(
      'ok.nii: header claims 128 x 128 x 64 voxels of 2 byte(s), 2.0 MiB: more than the 1.0 MiB budget (maxVoxelBytes)',
    );
    const nrrd = `NRRD0004\ntype: uchar\ndimension: 3\nsizes: 70000 1 1\nencoding: raw\n\n`;
    expect(() => readNrrd(new TextEncoder().encode(nrrd), 'n.nrrd')).toThrow(
      'n.nrrd: header claims 70000 x 1 x 1 voxels: axis 0 has 70000, more than 65536 (no medical image has)',
    );
    const mha =
      'ObjectType = Image\nNDims = 3\nDimSize = 2048 1024 1024\nElementType = MET_SHORT\nElementDataFile = LOCAL\n';
    expect(() => readMetaImage(new TextEncoder().encode(mha), 'm.mha')).toThrow(LimitError);
  });

  it('gzip: a claim the stream cannot hold (1032:1) and one its ISIZE trailer contradicts, before allocating', () => {
    // 64 MiB claimed from a 1 KB stream: deflate cannot expand that far.
    const tiny = gzipSync(nifti1Claiming([1024, 1024, 64], new Uint8Array(600)));
    expect(() => readNifti(tiny, 'r.nii.gz')).toThrow(LimitError);
    expect(() => readNifti(tiny, 'r.nii.gz')).toThrow(
      /^r\.nii\.gz: header needs 67109216 bytes, more than a \d+-byte gzip stream can hold$/,
    );
    // 1 MiB claimed, 200 KB of incompressible voxels present: the trailer says 200352 bytes.
    const noise = noiseBytes(200000);
    const short = gzipSync(nifti1Claiming([1024, 1024, 1], noise));
    expect(() => readNifti(short, 's.nii.gz')).toThrow(
      's.nii.gz: truncated gzip data: its trailer gives 200352 bytes uncompressed, the header needs 1048928',
    );
  });
});

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

/** Peak RSS growth (MiB) of a child process reading `file` with readNifti, and what it read or threw. */
function peakOfRead(file: string): { grownMiB: number; result: string } {
  const dir = path.dirname(file);
  const script = path.join(dir, 'measure.ts');
  writeFileSync(
    script,
    [
      `import { readFileSync } from 'node:fs';`,
      `import { readNifti } from ${JSON.stringify(path.join(repo, 'packages/core/src/io/nifti.ts'))};`,
      `const bytes = new Uint8Array(readFileSync(${JSON.stringify(file)}));`,
      `const before = process.resourceUsage().maxRSS;`,
      `let result;`,
      `try { result = readNifti(bytes, 'bomb.nii.gz').volume.dims.join(' x '); } catch (e) { result = String(e); }`,
      `console.log(JSON.stringify({ grownMiB: (process.resourceUsage().maxRSS - before) / 1024, result }));`,
    ].join('\n'),
  );
  const out = execFileSync('npx', ['vite-node', '-c', path.join(repo, 'vitest.config.ts'), script], {
    cwd: repo,
    encoding: 'utf8',
  });
  return JSON.parse(out.trim().split('\n').pop() ?? '{}') as { grownMiB: number; result: string };
}

describe("gzip inflates into the final voxel array: peak memory near the volume's bytes", () => {
  it('a 256 MiB int16 volume from a small gzip file, and a stream holding 8x more than its header claims', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'corridor-bomb-'));
    try {
      // 512 x 512 x 512 int16 = 256 MiB of zeros: about 256 KB of gzip. Before, the reader held the inflated
      // chunks, their concatenation and the voxel copy at once (about 3 x 256 MiB).
      const volBytes = 512 * 512 * 512 * 2;
      const honest = path.join(dir, 'honest.nii.gz');
      writeFileSync(honest, gzipSync(nifti1Claiming([512, 512, 512], new Uint8Array(volBytes), 4, 16), { level: 1 }));
      const a = peakOfRead(honest);
      expect(a.result).toBe('512 x 512 x 512');
      // The voxels (256 MiB): its trailer says header + voxels exactly, so it inflates in one pass into one
      // buffer (measured 264-267 MiB; streamed, 330-365 MiB; the old path 626 MiB). 448 MiB leaves room.
      expect(a.grownMiB).toBeLessThan(448);
      // A bomb: the header claims 128 x 512 x 512 (64 MiB), the stream holds 512 MiB; only 64 MiB is inflated.
      const bomb = path.join(dir, 'bomb.nii.gz');
      writeFileSync(bomb, gzipSync(nifti1Claiming([128, 512, 512], new Uint8Array(2 * volBytes), 4, 16), { level: 1 }));
      const b = peakOfRead(bomb);
      expect(b.result).toBe('128 x 512 x 512');
      // The claim plus an allowance for inflate's chunks, which V8 frees late (measured 106-196 MiB on a
      // loaded 2-core machine): half the stream's 512 MiB, so reading the whole stream still fails here.
      expect(b.grownMiB).toBeLessThan(64 + 192);
      console.log(
        `peak RSS growth: 256 MiB volume ${a.grownMiB.toFixed(0)} MiB; ` +
          `64 MiB claim in a 512 MiB stream ${b.grownMiB.toFixed(0)} MiB`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('small ones: empty, corrupt and truncated files say so; bad vox_offset and scaling', () => {
  it('a zero-byte, a non-gzip and a corrupt .nii.gz are NIfTI errors, not "not a DICOM file"', () => {
    expect(sniffFormat('e.nii.gz', new Uint8Array(0))).toBe('nifti');
    expect(() => readNifti(new Uint8Array(0), 'e.nii.gz')).toThrow(new FormatError('empty file', 'e.nii.gz'));
    const plain = nifti(1).bytes;
    expect(sniffFormat('p.nii.gz', plain)).toBe('nifti'); // its content says NIfTI; the name says gzip
    expect(() => readNifti(new TextEncoder().encode('hello, world'), 'p.nii.gz')).toThrow(
      new FormatError('not gzip data (no 1f 8b magic)', 'p.nii.gz'),
    );
    const corrupt = new Uint8Array([
      0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0,
    ]);
    expect(sniffFormat('c.nii.gz', corrupt)).toBe('nifti');
    expect(() => readNifti(corrupt, 'c.nii.gz')).toThrow(/^c\.nii\.gz: corrupt gzip data: invalid block type$/);
  });

  it('a truncated .nii.gz says "truncated gzip data"', () => {
    const noise = noiseBytes(100000);
    const gz = gzipSync(nifti1Claiming([100, 100, 10], noise));
    // Cut in the middle of the voxels, and cut inside the header's first 540 bytes of output.
    expect(() => readNifti(gz.subarray(0, 60000), 't.nii.gz')).toThrow(/^t\.nii\.gz: truncated gzip data: /);
    expect(() => readNifti(gz.subarray(0, 200), 'h.nii.gz')).toThrow(/^h\.nii\.gz: truncated gzip data: /);
  });

  it('refuses a vox_offset of -1e9 (it was taken as 352 silently)', () => {
    const { bytes, dv } = nifti(1);
    dv.setFloat32(108, -1e9, true);
    expect(() => readNifti(bytes, 'o.nii')).toThrow(
      new FormatError('vox_offset -1000000000 is not a byte offset (a whole number, not negative)', 'o.nii'),
    );
    dv.setFloat32(108, 352.5, true);
    expect(() => readNifti(bytes, 'o.nii')).toThrow(FormatError);
  });

  it('non-finite scl_slope means no scaling, a non-finite scl_inter is 0, each with a warning', () => {
    const { bytes, dv } = nifti(1);
    dv.setFloat32(112, Infinity, true);
    dv.setFloat32(116, 5, true);
    const a = readNifti(bytes, 'inf.nii');
    expect([...a.volume.data]).toEqual([1, 2, 3, 4]);
    expect(a.warnings).toEqual([
      'inf.nii: scl_slope Infinity, scl_inter 5: a value that is not finite is taken as 0: no scaling applied',
    ]);
    dv.setFloat32(112, 2, true);
    dv.setFloat32(116, NaN, true);
    const b = readNifti(bytes, 'nan.nii');
    expect([...b.volume.data]).toEqual([2, 4, 6, 8]);
    expect(b.warnings).toEqual([
      'nan.nii: scl_slope 2, scl_inter NaN: a value that is not finite is taken as 0 (the intercept)',
    ]);
  });
});

describe("a truncated DICOM file says it is truncated, not dicom-parser's internals", () => {
  it('a CT slice cut inside its elements', async () => {
    const v = createVolume({
      data: new Int16Array(16 * 16 * 2),
      dims: [16, 16, 2],
      indexToPatient: eye(),
      meta: { modality: 'CT' },
    });
    const [file] = writeDicomSeries(v);
    // Cut 40 bytes past the file meta: inside the data set's first elements (well before the pixel data).
    const metaEnd = 132 + 12 + new DataView(file.bytes.buffer, file.bytes.byteOffset).getUint32(140, true);
    const cut = { name: 'cut.dcm', bytes: file.bytes.slice(0, metaEnd + 40) };
    const err = await readDicomSeries([cut]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect((err as Error).message).toBe(
      'cut.dcm: data set cannot be parsed: ' +
        `the file is truncated (an element runs past its last byte, ${metaEnd + 40} bytes)`,
    );
    expect((err as Error).message).not.toMatch(/dicomParser|overrun/);
  });
});

describe('MetaImage zlib data inflates into the voxel array', () => {
  const mha = (extra: string) =>
    new TextEncoder().encode(
      'ObjectType = Image\nNDims = 3\nDimSize = 2 2 1\nElementType = MET_SHORT\n' +
        `CompressedData = True\nElementByteOrderMSB = True\n${extra}ElementDataFile = LOCAL\n`,
    );
  // Big-endian int16 values 1, -2, 300, -400.
  const be = new Uint8Array([0, 1, 0xff, 0xfe, 1, 0x2c, 0xfe, 0x70]);
  it('reads big-endian voxels from a zlib stream', () => {
    const head = mha('');
    const z = zlibSync(be);
    const bytes = new Uint8Array(head.length + z.length);
    bytes.set(head);
    bytes.set(z, head.length);
    expect([...readMetaImage(bytes, 'z.mha').volume.data]).toEqual([1, -2, 300, -400]);
  });
  it('a zlib stream with fewer bytes than the header claims is truncated', () => {
    const head = mha('');
    const z = zlibSync(be.subarray(0, 6));
    const bytes = new Uint8Array(head.length + z.length);
    bytes.set(head);
    bytes.set(z, head.length);
    expect(() => readMetaImage(bytes, 't.mha')).toThrow(
      new FormatError('truncated: voxel data needs 8 bytes, the zlib data hold 6', 't.mha'),
    );
  });
});
