import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync, copyFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import dicomParser from 'dicom-parser';
import { runCli } from '../test-helpers/run-cli.js';
import { sharedDataDir } from '../io/shared-data.js';
import { loadPath } from '../io/load.js';
import { defined } from '../test-helpers/defined.js';
import type { seriesInfo } from './info.js';

/** One series as `corridor info --json` prints it. */
type SeriesJson = ReturnType<typeof seriesInfo>;

/** The series `corridor info --json` printed. */
function seriesOf(out: string): SeriesJson[] {
  return JSON.parse(out) as SeriesJson[];
}

const data = sharedDataDir();

const run = runCli;

afterEach(() => vi.restoreAllMocks());

/** The sform rows of a NIfTI-1 file read straight from its header bytes (offsets from nifti1.h). */
function niftiSformRas(file: string): number[][] {
  const b = gunzipSync(readFileSync(file));
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const le = dv.getInt32(0, true) === 348;
  const rows = [0, 1, 2].map((r) => [0, 1, 2, 3].map((c) => dv.getFloat32(280 + r * 16 + c * 4, le)));
  return [...rows, [0, 0, 0, 1]];
}

describe('corridor info', () => {
  it('--help lists the commands, and each command has --help', async () => {
    const r = await run('--help');
    expect(r.out).toMatch(/info/);
    expect(r.out).toMatch(/convert/);
    const i = await run('info', '--help');
    expect(i.out).toMatch(/--json/);
  });

  it('prints the NIfTI geometry as LPS: the RAS affine with x and y rows negated', async () => {
    const file = path.join(data, 'abdomen-pelvis-ct', 'ct.nii.gz');
    const r = await run('info', file, '--json');
    expect(r.code).toBe(0);
    const [s] = seriesOf(r.out);
    expect(s.format).toBe('nifti');
    expect(s.dims).toEqual([122, 101, 112]);
    const ras = niftiSformRas(file);
    const lps = ras.map((row, n) => (n < 2 ? row.map((x) => -x) : row));
    for (let r2 = 0; r2 < 4; r2++)
      for (let c = 0; c < 4; c++) expect(s.indexToPatient[r2][c]).toBeCloseTo(lps[r2][c], 5);
    expect(s.spacing).toEqual([3, 3, 3]);
    expect(Array.isArray(s.warnings)).toBe(true);
    expect(s.min).toBeLessThan(-900); // air in a CT is about -1000 HU
    expect(s.max).toBeGreaterThan(1000); // cortical bone
  });

  it('reads a DICOM folder as one series with the schema the issue asks for', async () => {
    const r = await run('info', path.join(data, 'ct-dicom-jpeg2000'), '--json');
    expect(r.code).toBe(0);
    const list = seriesOf(r.out);
    expect(list).toHaveLength(1);
    const s = list[0];
    expect(s.format).toBe('dicom');
    expect(s.dims).toEqual([512, 512, 20]);
    expect(s.spacing[0]).toBeCloseTo(0.9766, 4);
    expect(s.spacing[2]).toBeCloseTo(2.0, 6); // from positions, not SliceThickness (3 mm)
    expect(s.modality).toBe('CT');
    // These files carry no SeriesInstanceUID (0020,000E): the reader groups them and says so.
    const dir = path.join(data, 'ct-dicom-jpeg2000');
    const first = dicomParser.parseDicom(readFileSync(path.join(dir, readdirSync(dir)[0])), { untilTag: 'x7fe00010' });
    expect(s.seriesInstanceUid).toBe(first.string('x0020000e') ?? null);
    expect(s.warnings.join(' ')).toMatch(/SeriesInstanceUID/);
    for (const key of ['min', 'max', 'mean'] as const) expect(typeof s[key]).toBe('number');
  });

  it('gives a typed error naming the file for a missing path and for junk', async () => {
    const missing = await run('info', '/nonexistent/corridor.nii.gz');
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/nonexistent\/corridor\.nii\.gz/);
    const dir = mkdtempSync(path.join(tmpdir(), 'corridor-'));
    const junk = path.join(dir, 'junk.nii');
    writeFileSync(junk, Buffer.from('this is not an image at all, just text'.repeat(20)));
    const r = await run('info', junk);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/junk\.nii/);
  });

  it('reports two series in one folder as two', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'corridor-two-'));
    const j2k = path.join(data, 'ct-dicom-jpeg2000');
    for (const f of readdirSync(j2k).slice(0, 3)) copyFileSync(path.join(j2k, f), path.join(dir, f));
    const singles = path.join(data, 'transfer-syntaxes', 'ct-single-frame');
    const explicitLe = defined(
      readdirSync(singles).find((n) => n.includes('1.2.840.10008.1.2.1')),
      'explicit LE',
    );
    copyFileSync(path.join(singles, explicitLe), path.join(dir, 'other.dcm'));
    const r = await run('info', dir, '--json');
    expect(r.code).toBe(0);
    const list = seriesOf(r.out);
    expect(list).toHaveLength(2);
    expect(new Set(list.map((s) => s.seriesInstanceUid)).size).toBe(2);
  });
});

describe('corridor convert', () => {
  it('DICOM -> NIfTI keeps voxels and geometry exactly; NIfTI -> NRRD -> NIfTI too', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'corridor-conv-'));
    const nii = path.join(dir, 'ct.nii.gz');
    expect((await run('convert', path.join(data, 'ct-dicom-jpeg2000'), nii)).code).toBe(0);
    const a = seriesOf((await run('info', path.join(data, 'ct-dicom-jpeg2000'), '--json')).out)[0];
    const b = seriesOf((await run('info', nii, '--json')).out)[0];
    expect(b.dims).toEqual(a.dims);
    expect(b.indexToPatient).toEqual(a.indexToPatient);
    // Voxel for voxel, not just the same statistics.
    const [va, vb] = [
      (await loadPath(path.join(data, 'ct-dicom-jpeg2000'))).series[0].volume,
      (await loadPath(nii)).series[0].volume,
    ];
    expect(vb.data.constructor).toBe(va.data.constructor);
    expect(
      Buffer.from(vb.data.buffer, vb.data.byteOffset, vb.data.byteLength).equals(
        Buffer.from(va.data.buffer, va.data.byteOffset, va.data.byteLength),
      ),
    ).toBe(true);
    const nrrd = path.join(dir, 'ct.nrrd');
    const back = path.join(dir, 'back.nii.gz');
    expect((await run('convert', nii, nrrd)).code).toBe(0);
    expect((await run('convert', nrrd, back)).code).toBe(0);
    const c = seriesOf((await run('info', back, '--json')).out)[0];
    expect(c.indexToPatient).toEqual(b.indexToPatient);
    expect([c.min, c.max, c.mean]).toEqual([b.min, b.max, b.mean]);
  });
  it('refuses an unknown output extension with a usage error', async () => {
    const r = await run('convert', path.join(data, 'abdomen-pelvis-ct', 'ct.nii.gz'), '/tmp/x.png');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/x\.png/);
  });
});
