/**
 * Hostile input on disk (issue 14): nothing outside the case is read, and only regular files are.
 * Each test builds its fixture in a fresh temporary folder.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FormatError, UsageError, createVolume, writeNrrd } from '@corridor/core';
import { loadPath } from './load.js';

const fresh = () => mkdtempSync(path.join(tmpdir(), 'corridor-load-'));
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

/** A detached NRRD header: 2 x 2 x 1 uint8 voxels in `dataFile`. */
const nhdr = (dataFile: string) =>
  `NRRD0004\ntype: uint8\ndimension: 3\nsizes: 2 2 1\nspace: LPS\n` +
  `space directions: (1,0,0) (0,1,0) (0,0,1)\nencoding: raw\ndata file: ${dataFile}\n\n`;

/** A MetaImage header with detached data. */
const mhd = (dataFile: string) =>
  `ObjectType = Image\nNDims = 3\nDimSize = 2 2 1\nElementType = MET_UCHAR\nElementDataFile = ${dataFile}\n`;

const smallNrrd = () =>
  writeNrrd(
    createVolume({
      data: new Uint8Array([1, 2, 3, 4]),
      dims: [2, 2, 1],
      indexToPatient: Float64Array.from([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]),
    }),
  );

describe('detached data files: real paths, regular files only', () => {
  it('refuses a data file that is a symbolic link out of the header folder (NRRD and MetaImage)', async () => {
    const dir = fresh();
    mkdirSync(path.join(dir, 'case'));
    mkdirSync(path.join(dir, 'other'));
    writeFileSync(path.join(dir, 'other', 'secret.raw'), Buffer.from([9, 9, 9, 9]));
    symlinkSync(path.join(dir, 'other', 'secret.raw'), path.join(dir, 'case', 'd.raw'));
    const h = path.join(dir, 'case', 'h.nhdr');
    writeFileSync(h, nhdr('d.raw'));
    const m = path.join(dir, 'case', 'm.mhd');
    writeFileSync(m, mhd('d.raw'));
    for (const file of [h, m]) {
      const err = await loadPath(file).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FormatError);
      expect((err as Error).message).toBe(
        `${file}: detached data file "d.raw" lies outside the header's folder (through a symbolic link)`,
      );
    }
  });

  it('refuses a link to /dev/zero at once (it grew memory to 4 GB) and a FIFO without blocking', async () => {
    const dir = fresh();
    symlinkSync('/dev/zero', path.join(dir, 'z.raw'));
    execFileSync('mkfifo', [path.join(dir, 'f.raw')]);
    const hz = path.join(dir, 'z.nhdr');
    writeFileSync(hz, nhdr('z.raw'));
    await expect(loadPath(hz)).rejects.toThrow(
      `${hz}: detached data file "z.raw" lies outside the header's folder (through a symbolic link)`,
    );
    const hf = path.join(dir, 'f.nhdr');
    writeFileSync(hf, nhdr('f.raw'));
    // Opening a FIFO for reading blocks until a writer comes; the test's own timeout would catch a hang.
    await expect(loadPath(hf)).rejects.toThrow(
      `${hf}: detached data file "f.raw" is a FIFO (named pipe), not a regular file: refused`,
    );
    const hm = path.join(dir, 'f.mhd');
    writeFileSync(hm, mhd('f.raw'));
    await expect(loadPath(hm)).rejects.toThrow(FormatError);
  }, 10_000);

  it('still reads a detached data file reached through a link that stays in the folder', async () => {
    const dir = fresh();
    mkdirSync(path.join(dir, 'store'));
    writeFileSync(path.join(dir, 'store', 'voxels.bin'), Buffer.from([1, 2, 3, 4]));
    symlinkSync(path.join('store', 'voxels.bin'), path.join(dir, 'd.raw'));
    writeFileSync(path.join(dir, 'h.nhdr'), nhdr('d.raw'));
    const { series } = await loadPath(path.join(dir, 'h.nhdr'));
    expect([...series[0].volume.data]).toEqual([1, 2, 3, 4]);
  });
});

describe('paths that are not regular files', () => {
  it('refuses a FIFO given directly with a usage error, without opening it', async () => {
    const dir = fresh();
    const fifo = path.join(dir, 'pipe.nii');
    execFileSync('mkfifo', [fifo]);
    const err = await loadPath(fifo).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toBe(
      `${fifo}: a FIFO (named pipe), not a regular file: Corridor reads files and folders`,
    );
  }, 10_000);

  it('refuses a character device given directly', async () => {
    await expect(loadPath('/dev/zero')).rejects.toThrow(
      '/dev/zero: a character device, not a regular file: Corridor reads files and folders',
    );
  });

  it('in a folder: skips a FIFO and links out of the folder, follows links inside it, each with a reason', async () => {
    const dir = fresh();
    const caseDir = path.join(dir, 'case');
    mkdirSync(path.join(caseDir, '.store'), { recursive: true });
    writeFileSync(path.join(dir, 'outside.nrrd'), smallNrrd());
    writeFileSync(path.join(caseDir, '.store', 'inside.nrrd'), smallNrrd());
    symlinkSync(path.join(caseDir, '.store', 'inside.nrrd'), path.join(caseDir, 'a-in.nrrd'));
    symlinkSync(path.join(dir, 'outside.nrrd'), path.join(caseDir, 'b-out.nrrd'));
    symlinkSync('/dev/zero', path.join(caseDir, 'c-zero.nrrd'));
    execFileSync('mkfifo', [path.join(caseDir, 'd-pipe.nrrd')]);
    symlinkSync(path.join(caseDir, 'a-in.nrrd'), path.join(caseDir, 'e-again.nrrd'));
    const { series, skipped } = await loadPath(caseDir);
    // Only the link whose real path stays in the folder gives a series (it was skipped before: "holds no files").
    expect(series).toHaveLength(1);
    expect(series[0].volume.meta.source).toBe(path.join(caseDir, 'a-in.nrrd'));
    expect(skipped).toEqual([
      { name: path.join(caseDir, 'b-out.nrrd'), reason: 'symbolic link to a file outside the folder: not followed' },
      { name: path.join(caseDir, 'c-zero.nrrd'), reason: 'symbolic link to a file outside the folder: not followed' },
      { name: path.join(caseDir, 'd-pipe.nrrd'), reason: 'a FIFO (named pipe), not a regular file: not read' },
      { name: path.join(caseDir, 'e-again.nrrd'), reason: 'the same file as one listed before (a link): read once' },
    ]);
  }, 10_000);

  it('says why a folder of links out of it gives nothing', async () => {
    const dir = fresh();
    mkdirSync(path.join(dir, 'case'));
    writeFileSync(path.join(dir, 'x.nrrd'), smallNrrd());
    symlinkSync(path.join(dir, 'x.nrrd'), path.join(dir, 'case', 'x.nrrd'));
    const c = path.join(dir, 'case');
    await expect(loadPath(c)).rejects.toThrow(
      `${c}: folder holds no files; skipped: ` +
        `${path.join(c, 'x.nrrd')}: symbolic link to a file outside the folder: not followed`,
    );
  });
});

describe('a folder is read file by file', () => {
  it('skips 400 MB of non-image files without reading them whole: peak RSS stays far below their size', () => {
    const dir = fresh();
    const caseDir = path.join(dir, 'case');
    mkdirSync(caseDir);
    const junk = Buffer.alloc(50 * 1024 * 1024, 0x41); // 'AAAA...': no image format, not a DICOM data set
    for (let i = 0; i < 8; i++) writeFileSync(path.join(caseDir, `junk${i}.bin`), junk);
    writeFileSync(path.join(caseDir, 'ct.nrrd'), smallNrrd());
    const script = path.join(dir, 'measure.ts');
    writeFileSync(
      script,
      [
        `import { loadPath } from ${JSON.stringify(path.join(repo, 'packages/node/src/io/load.ts'))};`,
        `const before = process.resourceUsage().maxRSS;`,
        `const r = await loadPath(${JSON.stringify(caseDir)});`,
        `const grownKiB = process.resourceUsage().maxRSS - before;`,
        `console.log(JSON.stringify({ series: r.series.length, skipped: r.skipped.length, grownKiB }));`,
      ].join('\n'),
    );
    let out: string;
    try {
      out = execFileSync('npx', ['vite-node', '-c', path.join(repo, 'vitest.config.ts'), script], {
        cwd: repo,
        encoding: 'utf8',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const result = JSON.parse(out.trim().split('\n').pop() ?? '{}') as {
      series: number;
      skipped: number;
      grownKiB: number;
    };
    expect(result.series).toBe(1);
    expect(result.skipped).toBe(8);
    // Reading the 8 files whole would add at least 400 MB (they were all held at once before); 4 KB heads
    // of each add nothing measurable. 64 MB leaves room for the module loading done after `before`.
    expect(result.grownKiB).toBeLessThan(64 * 1024);
  }, 60_000);
});

describe('corridor info prints no control characters from a file', () => {
  it('a patient name and a description holding ESC and CSI sequences are printed escaped', async () => {
    const { runCli } = await import('../test-helpers/run-cli.js');
    const { writeDicomSeries } = await import('@corridor/core');
    const dir = fresh();
    const v = createVolume({
      data: new Int16Array(8 * 8 * 2),
      dims: [8, 8, 2],
      indexToPatient: Float64Array.from([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]),
      meta: { modality: 'CT', patientName: 'Doe^\u001b]0;pwned\u0007\u001b[2J', seriesDescription: 'a\u009b31mred' },
    });
    for (const f of writeDicomSeries(v)) writeFileSync(path.join(dir, path.basename(f.name)), f.bytes);
    const r = await runCli('info', dir);
    expect(r.code).toBe(0);
    expect(r.out).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    expect(r.out).toContain('Patient: Doe^\\x1b]0;pwned\\x07\\x1b[2J');
    expect(r.out).toContain('"a\\x9b31mred"');
    const j = await runCli('info', dir, '--json');
    expect(j.out).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    const [s] = JSON.parse(j.out) as { patientName: string; seriesDescription: string }[];
    expect(s.patientName).toBe('Doe^\u001b]0;pwned\u0007\u001b[2J'); // the JSON keeps the value, escaped
    expect(s.seriesDescription).toBe('a\u009b31mred');
  });
});

describe('corridor info on a broken .nii.gz says what is wrong with it', () => {
  it('zero bytes: "empty file"; text: "not gzip data"; cut short: "truncated gzip data"', async () => {
    const { runCli } = await import('../test-helpers/run-cli.js');
    const { writeNifti } = await import('@corridor/core');
    const dir = fresh();
    const empty = path.join(dir, 'empty.nii.gz');
    writeFileSync(empty, new Uint8Array(0));
    const text = path.join(dir, 'text.nii.gz');
    writeFileSync(text, 'not an image');
    const v = createVolume({
      data: new Int16Array(4096),
      dims: [16, 16, 16],
      indexToPatient: Float64Array.from([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]),
    });
    const cut = path.join(dir, 'cut.nii.gz');
    writeFileSync(cut, writeNifti(v).subarray(0, 30));
    expect((await runCli('info', empty)).err).toBe(`corridor: FormatError: ${empty}: empty file`);
    expect((await runCli('info', text)).err).toBe(`corridor: FormatError: ${text}: not gzip data (no 1f 8b magic)`);
    expect((await runCli('info', cut)).err).toMatch(/^corridor: FormatError: .*cut\.nii\.gz: truncated gzip data: /);
  });
});
