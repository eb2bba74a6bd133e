/**
 * `corridor phantom` end to end: determinism of every file, and read-back of ct.nii.gz and the DICOM
 * series by the project's readers and by independent ones written here (a NIfTI-1 header parser on
 * fflate, and dicom-parser), all compared with the in-process generator's volume.
 */
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gunzipSync } from 'fflate';
import dicomParser from 'dicom-parser';
import { generatePhantom, type GeneratedPhantom, type PhantomTruth } from '@corridor/core';
import { main } from './main.js';
import { loadPath } from '../io/load.js';
import { defined } from '../test-helpers/defined.js';

const ARGS = [
  '--voxel',
  '3',
  '--stage',
  'cement',
  '--leak',
  'S2L',
  '--seed',
  '9',
  '--cement-ml',
  '3.5,4.5',
  '--dicom',
  '--quiet',
];

async function listAll(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listAll(p)));
    else out.push(p);
  }
  return out.sort();
}

describe('corridor phantom', () => {
  let tmp: string;
  let dirA: string;
  let dirB: string;
  let ref: GeneratedPhantom;

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'corridor-phantom-'));
    dirA = path.join(tmp, 'a');
    dirB = path.join(tmp, 'b');
    expect(await main(['node', 'corridor', 'phantom', '--out', dirA, ...ARGS])).toBe(0);
    expect(await main(['node', 'corridor', 'phantom', '--out', dirB, ...ARGS])).toBe(0);
    ref = generatePhantom({ voxelMm: 3, stage: 'cement', leak: 'S2L', seed: 9, cementMl: [3.5, 4.5] });
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('writes byte-identical files for the same flags', async () => {
    const a = await listAll(dirA),
      b = await listAll(dirB);
    expect(a.map((p) => path.relative(dirA, p))).toEqual(b.map((p) => path.relative(dirB, p)));
    expect(a.map((p) => path.relative(dirA, p)).slice(0, 1)).toEqual(['ct.nii.gz']);
    expect(a.some((p) => p.endsWith('truth.json'))).toBe(true);
    expect(a.some((p) => p.endsWith('labels.nii.gz'))).toBe(true);
    for (let i = 0; i < a.length; i++) {
      expect(Buffer.compare(await readFile(a[i]), await readFile(b[i])), a[i]).toBe(0);
    }
    const truth = JSON.parse(await readFile(path.join(dirA, 'truth.json'), 'utf8')) as PhantomTruth;
    expect(truth).toEqual(JSON.parse(JSON.stringify(ref.truth)));
    expect(defined(truth.cement, 'cement truth').map((c) => c.volumeMl)).toEqual([3.5, 4.5]);
    expect(defined(truth.leak, 'leak truth').foramen).toBe('S2L');
  });

  it('ct.nii.gz and labels.nii.gz read back (project reader) to the generated voxels and geometry', async () => {
    for (const [name, vol] of [
      ['ct.nii.gz', ref.ct],
      ['labels.nii.gz', ref.labels],
    ] as const) {
      const { series } = await loadPath(path.join(dirA, name));
      expect(series).toHaveLength(1);
      const v = series[0].volume;
      expect(v.dims).toEqual(vol.dims);
      for (let e = 0; e < 16; e++) expect(v.indexToPatient[e]).toBeCloseTo(vol.indexToPatient[e], 4);
      expect(Array.from(v.data)).toEqual(Array.from(vol.data));
    }
  });

  it('ct.nii.gz: the right header for an independent NIfTI-1 parser (RAS affine = LPS with x, y negated)', async () => {
    const bytes = gunzipSync(new Uint8Array(await readFile(path.join(dirA, 'ct.nii.gz'))));
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    expect(dv.getInt32(0, true)).toBe(348);
    const dims = [1, 2, 3].map((i) => dv.getInt16(40 + 2 * i, true));
    expect(dims).toEqual([...ref.ct.dims]);
    expect(dv.getInt16(70, true)).toBe(4); // DT_INT16
    expect(dv.getInt16(254, true)).toBeGreaterThan(0); // sform_code
    const m = ref.ct.indexToPatient;
    for (let r = 0; r < 3; r++) {
      for (let c = 0; c < 4; c++) {
        const ras = dv.getFloat32(280 + 16 * r + 4 * c, true);
        const lps = r < 2 ? -ras : ras;
        expect(lps).toBeCloseTo(m[r * 4 + c], 3);
      }
    }
    const off = Math.round(dv.getFloat32(108, true));
    const slope = dv.getFloat32(112, true) || 1,
      inter = dv.getFloat32(116, true);
    const n = ref.ct.data.length;
    const data = new Int16Array(bytes.slice(off, off + 2 * n).buffer);
    let diff = 0;
    for (let i = 0; i < n; i++) diff = Math.max(diff, Math.abs(data[i] * slope + inter - ref.ct.data[i]));
    expect(diff).toBe(0);
  });

  it('the DICOM series reads back (project reader) to the same voxels and geometry as ct.nii.gz', async () => {
    const { series } = await loadPath(path.join(dirA, 'dicom'));
    expect(series).toHaveLength(1);
    const v = series[0].volume;
    expect(v.dims).toEqual(ref.ct.dims);
    for (let e = 0; e < 16; e++) expect(v.indexToPatient[e]).toBeCloseTo(ref.ct.indexToPatient[e], 3);
    expect(Array.from(v.data)).toEqual(Array.from(ref.ct.data));
  });

  it('the DICOM series has supine head-first geometry, matches for an independent reader (dicom-parser)', async () => {
    const files = (await readdir(path.join(dirA, 'dicom'))).sort();
    const [nx, ny, nz] = ref.ct.dims;
    expect(files).toHaveLength(nz);
    const m = ref.ct.indexToPatient;
    const seen = new Set<number>();
    for (const f of files) {
      const ds = dicomParser.parseDicom(new Uint8Array(await readFile(path.join(dirA, 'dicom', f))));
      // Supine head first shows in the geometry: rows run to the patient's left, columns to posterior,
      // slices from feet to head; PatientPosition says so too.
      expect(ds.string('x00080060')).toBe('CT');
      expect(ds.string('x00185100')).toBe('HFS');
      const iop = defined(ds.string('x00200037'), 'ImageOrientationPatient').split('\\').map(Number);
      expect(iop).toEqual([1, 0, 0, 0, 1, 0]);
      const ps = defined(ds.string('x00280030'), 'PixelSpacing').split('\\').map(Number);
      expect(ps[0]).toBeCloseTo(m[5], 4);
      expect(ps[1]).toBeCloseTo(m[0], 4);
      expect(ds.uint16('x00280010')).toBe(ny);
      expect(ds.uint16('x00280011')).toBe(nx);
      const ipp = defined(ds.string('x00200032'), 'ImagePositionPatient').split('\\').map(Number);
      expect(ipp[0]).toBeCloseTo(m[3], 3);
      expect(ipp[1]).toBeCloseTo(m[7], 3);
      const k = Math.round((ipp[2] - m[11]) / m[10]);
      expect(ipp[2]).toBeCloseTo(m[11] + k * m[10], 3);
      expect(k >= 0 && k < nz && !seen.has(k)).toBe(true);
      seen.add(k);
      const slope = Number(ds.string('x00281053') ?? 1),
        inter = Number(ds.string('x00281052') ?? 0);
      const el = ds.elements.x7fe00010;
      const signed = ds.uint16('x00280103') === 1;
      const raw = signed
        ? new Int16Array(
            ds.byteArray.buffer.slice(
              ds.byteArray.byteOffset + el.dataOffset,
              ds.byteArray.byteOffset + el.dataOffset + el.length,
            ),
          )
        : new Uint16Array(
            ds.byteArray.buffer.slice(
              ds.byteArray.byteOffset + el.dataOffset,
              ds.byteArray.byteOffset + el.dataOffset + el.length,
            ),
          );
      let diff = 0;
      for (let i = 0; i < nx * ny; i++)
        diff = Math.max(diff, Math.abs(raw[i] * slope + inter - ref.ct.data[k * nx * ny + i]));
      expect(diff, f).toBe(0);
    }
    expect(seen.size).toBe(nz);
  });

  it('refuses bad flags with exit code 2', async () => {
    expect(
      await main(['node', 'corridor', 'phantom', '--out', path.join(tmp, 'c'), '--anatomy', 'broken', '--quiet']),
    ).toBe(2);
    expect(await main(['node', 'corridor', 'phantom', '--out', path.join(tmp, 'c'), '--leak', 'S1L', '--quiet'])).toBe(
      2,
    );
    expect(
      await main([
        'node',
        'corridor',
        'phantom',
        '--out',
        path.join(tmp, 'c'),
        '--stage',
        'cement',
        '--cement-ml',
        '4',
        '--quiet',
      ]),
    ).toBe(2);
  });
});
