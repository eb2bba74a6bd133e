/**
 * Series assembly and the writer on synthetic series: geometry (oblique, tilt, missing and irregular
 * slices, duplicates, splits), value mapping, determinism, and bad input. Expected numbers are built
 * here from the positions and values the test chose.
 */
import dicomParser from 'dicom-parser';
import { describe, expect, it } from 'vitest';
import { FormatError, GeometryError, LimitError } from '../../errors.js';
import { cross, type Point3 } from '../../math/vec3.js';
import { createVolume, indexToPatientFrom } from '../../volume/volume.js';
import { defined } from '../../test-helpers/defined.js';
import type { NamedBytes } from '../types.js';
import { parseDicom } from './parse.js';
import { decodeFrame, describePixels } from './pixels.js';
import { TAG } from './tags.js';
import { readDicomSeries } from './series.js';
import { encodeDicomSeries, writeDicomSeries } from './writer.js';

/** Rotation of the identity frame by angles (rad) about z, then y, then x: an oblique right-handed basis. */
function obliqueBasis(az: number, ay: number, ax: number): [Point3, Point3, Point3] {
  const rz = [
    [Math.cos(az), -Math.sin(az), 0],
    [Math.sin(az), Math.cos(az), 0],
    [0, 0, 1],
  ];
  const ry = [
    [Math.cos(ay), 0, Math.sin(ay)],
    [0, 1, 0],
    [-Math.sin(ay), 0, Math.cos(ay)],
  ];
  const rx = [
    [1, 0, 0],
    [0, Math.cos(ax), -Math.sin(ax)],
    [0, Math.sin(ax), Math.cos(ax)],
  ];
  const mul = (a: number[][], b: number[][]) =>
    a.map((r) => [0, 1, 2].map((c) => r[0] * b[0][c] + r[1] * b[1][c] + r[2] * b[2][c]));
  const r = mul(rx, mul(ry, rz));
  return [0, 1, 2].map((c) => [r[0][c], r[1][c], r[2][c]] as Point3) as [Point3, Point3, Point3];
}

function int16Data(n: number, seed: number): Int16Array {
  const d = new Int16Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    d[i] = (s >>> 20) - 1500;
  }
  return d;
}

/** One single-slice file whose first pixel sits at `position`, in series `seriesUid`. */
function sliceFile(
  position: Point3,
  values: Int16Array | Float32Array,
  opts: {
    seriesUid?: string;
    name: string;
    spacing?: [number, number];
    nx?: number;
    ny?: number;
    dirs?: [Point3, Point3];
  },
): NamedBytes {
  const nx = opts.nx ?? 4;
  const ny = opts.ny ?? 3;
  const [x, y] = opts.dirs ?? [
    [1, 0, 0],
    [0, 1, 0],
  ];
  const spacing = opts.spacing ?? [0.8, 0.6];
  const v = createVolume({
    data: values,
    dims: [nx, ny, 1],
    indexToPatient: indexToPatientFrom(position, [spacing[0], spacing[1], 1], [x, y, cross(x, y)]),
  });
  const f = writeDicomSeries(v, { seriesInstanceUid: opts.seriesUid ?? '1.2.3.4', fileNamePrefix: opts.name })[0];
  return { name: `${opts.name}.dcm`, bytes: f.bytes };
}

function shuffle<T>(a: T[]): T[] {
  return a
    .map((x, i) => ({ x, key: (i * 7919 + 13) % a.length }))
    .sort((p, q) => p.key - q.key)
    .map((p) => p.x);
}

function replaceAscii(bytes: Uint8Array, from: string, to: string): Uint8Array {
  expect(to.length).toBe(from.length);
  const out = bytes.slice();
  const f = Array.from(from, (c) => c.charCodeAt(0));
  for (let i = 0; i + f.length <= out.length; i++) {
    if (f.every((c, j) => out[i + j] === c)) {
      for (let j = 0; j < f.length; j++) out[i + j] = to.charCodeAt(j);
      return out;
    }
  }
  throw new Error(`'${from}' not found`);
}

async function failure(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: Error) => e,
  );
}

describe('writer -> reader round trip', () => {
  const [x, y, z] = obliqueBasis(0.3, -0.2, 0.15);
  const spacing: [number, number, number] = [0.7, 0.9, 1.3];
  const origin: Point3 = [-201.25, 148.5, 903.75];
  const dims: [number, number, number] = [7, 5, 6];
  const volume = createVolume({
    data: int16Data(7 * 5 * 6, 42),
    dims,
    indexToPatient: indexToPatientFrom(origin, spacing, [x, y, z]),
    meta: { patientName: 'Døe^Jåne', patientId: 'P1' },
  });

  it('an oblique int16 volume comes back with the same voxels and geometry (files shuffled)', async () => {
    const enc = encodeDicomSeries(volume, { seriesDescription: 'round trip', studyDate: '20240102' });
    expect(enc.exact).toBe(true);
    expect(enc.warnings).toEqual([]);
    expect(enc.files).toHaveLength(6);
    const { series, skipped } = await readDicomSeries(shuffle(enc.files));
    expect(skipped).toEqual([]);
    expect(series).toHaveLength(1);
    const v = series[0].volume;
    expect(v.dims).toEqual(dims);
    expect(v.data).toBeInstanceOf(Int16Array);
    expect(Array.from(v.data)).toEqual(Array.from(volume.data));
    for (let i = 0; i < 16; i++) expect(Math.abs(v.indexToPatient[i] - volume.indexToPatient[i])).toBeLessThan(1e-9);
    expect(series[0].warnings).toEqual([]);
    expect(v.meta).toMatchObject({
      patientName: 'Døe^Jåne',
      patientId: 'P1',
      seriesDescription: 'round trip',
      modality: 'CT',
      studyDate: '20240102',
      seriesInstanceUid: enc.seriesInstanceUid,
      studyInstanceUid: enc.studyInstanceUid,
      frameOfReferenceUid: enc.frameOfReferenceUid,
    });
  });

  it('files are valid CT Image Storage as dicom-parser reads them (PixelSpacing is row spacing first)', () => {
    const f = writeDicomSeries(volume)[2];
    expect(Array.from(f.bytes.subarray(128, 132))).toEqual([0x44, 0x49, 0x43, 0x4d]);
    const ds = dicomParser.parseDicom(f.bytes);
    expect(ds.string('x00020010')).toBe('1.2.840.10008.1.2.1');
    expect(ds.string('x00020002')).toBe('1.2.840.10008.5.1.4.1.1.2');
    expect(ds.string('x00080016')).toBe('1.2.840.10008.5.1.4.1.1.2');
    expect(ds.string('x00020003')).toBe(ds.string('x00080018'));
    expect(ds.uint32('x00020000')).toBe(ds.elements.x00020013.dataOffset + ds.elements.x00020013.length - 144);
    expect([ds.uint16('x00280010'), ds.uint16('x00280011')]).toEqual([5, 7]);
    const ps = defined(ds.string('x00280030'), 'PixelSpacing').split('\\').map(Number);
    expect(ps[0]).toBeCloseTo(0.9, 12);
    expect(ps[1]).toBeCloseTo(0.7, 12);
    const ipp = defined(ds.string('x00200032'), 'ImagePositionPatient').split('\\').map(Number);
    for (let r = 0; r < 3; r++) expect(ipp[r]).toBeCloseTo(origin[r] + z[r] * spacing[2] * 2, 9);
    const iop = defined(ds.string('x00200037'), 'ImageOrientationPatient').split('\\').map(Number);
    for (let r = 0; r < 3; r++) {
      expect(iop[r]).toBeCloseTo(x[r], 12);
      expect(iop[3 + r]).toBeCloseTo(y[r], 12);
    }
    expect(ds.elements.x7fe00010.length).toBe(7 * 5 * 2);
    for (const uid of ['x00080018', 'x0020000d', 'x0020000e', 'x00200052']) {
      expect(ds.string(uid)).toMatch(/^2\.25\.\d{1,39}$/);
      expect(ds.elements[uid].length % 2).toBe(0);
    }
  });

  it('is deterministic: the same input gives byte-identical files; another seed other UIDs', () => {
    const a = writeDicomSeries(volume, { seriesDescription: 's' });
    const b = writeDicomSeries(volume, { seriesDescription: 's' });
    expect(a.map((f) => f.name)).toEqual(b.map((f) => f.name));
    for (let i = 0; i < a.length; i++) expect(Buffer.compare(a[i].bytes, b[i].bytes)).toBe(0);
    const c = writeDicomSeries(volume, { seriesDescription: 's', uidSeed: 'other' });
    const uid = (f: NamedBytes) => dicomParser.parseDicom(f.bytes).string('x00080018');
    expect(uid(c[0])).not.toBe(uid(a[0]));
    expect(new Set(a.map(uid)).size).toBe(a.length);
  });

  it('float data are stored with a slope and come back within half a step (and it says so)', async () => {
    const data = new Float32Array(4 * 3 * 2).map((_, i) => Math.sin(i) * 1000.25);
    const v = createVolume({ data, dims: [4, 3, 2], indexToPatient: indexToPatientFrom([0, 0, 0], [1, 1, 2]) });
    const enc = encodeDicomSeries(v);
    expect(enc.exact).toBe(false);
    expect(enc.warnings.join(' ')).toMatch(/RescaleSlope/);
    const range = Math.max(...data) - Math.min(...data);
    expect(enc.rescaleSlope).toBeGreaterThanOrEqual((range / 65535) * 0.999999);
    const back = (await readDicomSeries(enc.files)).series[0].volume;
    expect(back.data).toBeInstanceOf(Float32Array);
    for (let i = 0; i < data.length; i++)
      expect(Math.abs(back.data[i] - data[i])).toBeLessThanOrEqual(enc.rescaleSlope / 2 + 1e-3);
  });

  it('integers beyond int16 are stored unsigned with an intercept, exactly', async () => {
    const data = new Int32Array(4 * 3 * 2).map((_, i) => 40000 + i * 997);
    const v = createVolume({ data, dims: [4, 3, 2], indexToPatient: indexToPatientFrom([0, 0, 0], [1, 1, 2]) });
    const enc = encodeDicomSeries(v);
    expect(enc.exact).toBe(true);
    expect(enc.rescaleIntercept).toBe(40000);
    const back = (await readDicomSeries(enc.files)).series[0].volume;
    expect(back.data).toBeInstanceOf(Float32Array); // beyond int16, so not Int16Array
    expect(Array.from(back.data)).toEqual(Array.from(data));
  });

  it('a k axis against row x column comes back reversed in k, same voxels in patient space', async () => {
    const m = indexToPatientFrom(
      [10, 20, 30],
      [1, 1, 2],
      [
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, -1],
      ],
    );
    const v = createVolume({ data: int16Data(4 * 3 * 3, 7), dims: [4, 3, 3], indexToPatient: m });
    const enc = encodeDicomSeries(v);
    expect(enc.warnings.join(' ')).toMatch(/reverse k order/);
    const back = (await readDicomSeries(enc.files)).series[0].volume;
    expect(Array.from(back.indexToPatient)).toEqual([1, 0, 0, 10, 0, 1, 0, 20, 0, 0, 2, 26, 0, 0, 0, 1]);
    for (let k = 0; k < 3; k++) {
      for (let i = 0; i < 12; i++) expect(back.data[k * 12 + i]).toBe(v.data[(2 - k) * 12 + i]);
    }
  });

  it('refuses a sheared grid (it cannot be CT Image Storage)', () => {
    const m = indexToPatientFrom([0, 0, 0], [1, 1, 1]);
    m[2] = 0.3; // k column gets an x component
    const v = createVolume({ data: new Int16Array(8), dims: [2, 2, 2], indexToPatient: m });
    expect(() => writeDicomSeries(v)).toThrow(GeometryError);
  });
});

describe('DicomDataset.retaining', () => {
  it('keeps the named elements with their values, drops the rest, and leaves the original whole', async () => {
    const volume = createVolume({
      data: int16Data(4 * 3 * 2, 7),
      dims: [4, 3, 2],
      indexToPatient: indexToPatientFrom([1, 2, 3], [0.5, 0.5, 2]),
      meta: { patientName: 'Døe^Jåne' },
    });
    const file = writeDicomSeries(volume, { seriesDescription: 'retain' })[0];
    const ds = parseDicom(file.bytes, file.name);
    const kept = ds.retaining([TAG.PixelData, TAG.PatientName, TAG.SeriesDescription]);
    expect(kept.name).toBe(file.name);
    expect(kept.string(TAG.PatientName)).toBe('Døe^Jåne');
    expect(kept.string(TAG.SeriesDescription)).toBe('retain');
    expect(kept.element(TAG.Rows)).toBeUndefined();
    expect(kept.string(TAG.Modality)).toBeUndefined();
    expect(ds.uint16(TAG.Rows)).toBe(3);
    expect(ds.string(TAG.Modality)).toBe('CT');
    expect(kept.warnings).toBe(ds.warnings);
    // The pixels read through the slim data set are the file's own bytes, as dicom-parser locates them.
    const raw = dicomParser.parseDicom(file.bytes);
    const px = raw.elements.x7fe00010;
    const expected = new Int16Array(file.bytes.slice(px.dataOffset, px.dataOffset + 24).buffer);
    const frame = await decodeFrame(kept, 0, describePixels(ds));
    expect(Array.from(frame.data)).toEqual(Array.from(expected));
  });
});

describe('series geometry from positions', () => {
  const nx = 4,
    ny = 3,
    n = nx * ny;
  const values = (k: number) => int16Data(n, 100 + k);

  it(
    'gantry tilt: sheared indexToPatient whose k column is the mean step, ' + 'with a warning giving the angle',
    async () => {
      const step: Point3 = [0, 0.5, 2]; // 0.5 mm in-plane (y) per 2 mm along the normal (z)
      const files = [0, 1, 2, 3, 4].map((k) =>
        sliceFile([-50 + step[0] * k, 30 + step[1] * k, 100 + step[2] * k], values(k), { name: `t${k}` }),
      );
      const { series } = await readDicomSeries(shuffle(files));
      const v = series[0].volume;
      expect(v.dims).toEqual([nx, ny, 5]);
      for (let r = 0; r < 3; r++) expect(v.indexToPatient[r * 4 + 2]).toBeCloseTo(step[r], 9);
      expect([v.indexToPatient[3], v.indexToPatient[7], v.indexToPatient[11]]).toEqual([-50, 30, 100]);
      const tiltDeg = (Math.atan(0.5 / 2) * 180) / Math.PI;
      expect(series[0].warnings.join('\n')).toContain(`gantry tilt of ${Number(tiltDeg.toFixed(2))} deg`);
      for (let k = 0; k < 5; k++)
        expect(Array.from(v.data.subarray(k * n, (k + 1) * n))).toEqual(Array.from(values(k)));
    },
  );

  it('missing slices: reported by index and filled by linear interpolation on the even grid', async () => {
    const z = [0, 2, 4, 8, 10];
    const files = z.map((zz, i) => sliceFile([0, 0, zz], values(i), { name: `m${i}` }));
    const { series } = await readDicomSeries(files);
    const v = series[0].volume;
    expect(v.dims).toEqual([nx, ny, 6]);
    expect(v.indexToPatient[10]).toBeCloseTo(2, 12);
    expect(series[0].warnings.join('\n')).toMatch(/1 slice\(s\) missing .*k=3 \(6 mm/);
    const a = values(2),
      b = values(3);
    for (let i = 0; i < n; i++) expect(v.data[3 * n + i]).toBeCloseTo((a[i] + b[i]) / 2, 5);
    for (let i = 0; i < n; i++) expect(v.data[5 * n + i]).toBe(values(4)[i]);
  });

  it('irregular spacing: resampled to the smallest step with a warning', async () => {
    const z = [0, 1, 2.5, 3.5];
    const files = z.map((zz, i) => sliceFile([0, 0, zz], values(i), { name: `u${i}` }));
    const { series } = await readDicomSeries(files);
    const v = series[0].volume;
    expect(v.dims).toEqual([nx, ny, 4]);
    expect(v.indexToPatient[10]).toBeCloseTo(1, 12);
    expect(series[0].warnings.join('\n')).toMatch(/uneven slice spacing/);
    // Grid z = 2 lies 1/1.5 of the way from z = 1 to z = 2.5; z = 3 halfway from 2.5 to 3.5.
    for (let i = 0; i < n; i++) {
      expect(v.data[2 * n + i]).toBeCloseTo(values(1)[i] + (values(2)[i] - values(1)[i]) / 1.5, 3);
      expect(v.data[3 * n + i]).toBeCloseTo((values(2)[i] + values(3)[i]) / 2, 3);
    }
  });

  it('duplicate positions: one kept, with a warning naming the others', async () => {
    const files = [0, 1, 1, 2].map((zz, i) => sliceFile([0, 0, zz * 3], values(i), { name: `d${i}` }));
    const { series } = await readDicomSeries(files);
    expect(series[0].volume.dims).toEqual([nx, ny, 3]);
    expect(series[0].warnings.join('\n')).toMatch(/repeat a position.*d[12]\.dcm/);
  });

  it('a series whose PixelSpacing changes is split in two volumes, each saying why', async () => {
    const a = [0, 1, 2].map((k) => sliceFile([0, 0, k], values(k), { name: `a${k}`, spacing: [0.5, 0.5] }));
    const b = [3, 4].map((k) => sliceFile([0, 0, k], values(k), { name: `b${k}`, spacing: [0.7, 0.7] }));
    const { series } = await readDicomSeries([...b, ...a]);
    expect(series).toHaveLength(2);
    expect(series.map((s) => s.volume.dims[2]).sort()).toEqual([2, 3]);
    for (const s of series) expect(s.warnings.join('\n')).toMatch(/split into 2 volumes because PixelSpacing/);
  });

  it('two series in one folder give two volumes', async () => {
    const a = [0, 1].map((k) => sliceFile([0, 0, k], values(k), { name: `s1_${k}`, seriesUid: '1.2.3.1' }));
    const b = [0, 1, 2].map((k) => sliceFile([0, 0, k], values(k), { name: `s2_${k}`, seriesUid: '1.2.3.2' }));
    const { series } = await readDicomSeries([a[0], b[0], a[1], b[1], b[2]]);
    expect(series.map((s) => [s.volume.meta.seriesInstanceUid, s.volume.dims[2]])).toEqual([
      ['1.2.3.1', 2],
      ['1.2.3.2', 3],
    ]);
  });

  it('rescale intercepts that differ per slice are applied per slice', async () => {
    const f0 = sliceFile(
      [0, 0, 0],
      Float32Array.from({ length: n }, (_, i) => 40000 + i),
      { name: 'r0' },
    );
    const f1 = sliceFile(
      [0, 0, 1],
      Float32Array.from({ length: n }, (_, i) => 60000 + 2 * i),
      { name: 'r1' },
    );
    const intercepts = [f0, f1].map((f) => Number(dicomParser.parseDicom(f.bytes).string('x00281052')));
    expect(intercepts).toEqual([40000, 60000]);
    const v = (await readDicomSeries([f1, f0])).series[0].volume;
    for (let i = 0; i < n; i++) {
      expect(v.data[i]).toBe(40000 + i);
      expect(v.data[n + i]).toBe(60000 + 2 * i);
    }
  });

  it('MONOCHROME1 is kept as stored, with a warning', async () => {
    const f = sliceFile([0, 0, 0], values(0), { name: 'mono1' });
    const g = { name: f.name, bytes: replaceAscii(f.bytes, 'MONOCHROME2', 'MONOCHROME1') };
    const r = await readDicomSeries([g]);
    expect(r.series[0].warnings.join('\n')).toMatch(/MONOCHROME1/);
    expect(Array.from(r.series[0].volume.data)).toEqual(Array.from(values(0)));
  });

  it('refuses positions that wander off a line by more than half a pixel', async () => {
    const files = [0, 1, 2, 3].map((k) => sliceFile([k === 2 ? 3 : 0, 0, k * 2], values(k), { name: `w${k}` }));
    const e = await failure(readDicomSeries(files));
    expect(e).toBeInstanceOf(GeometryError);
    expect(e.message).toMatch(/straight line/);
  });

  it('honours maxVoxels with a LimitError', async () => {
    const files = [0, 1].map((k) => sliceFile([0, 0, k], values(k), { name: `l${k}` }));
    const e = await failure(readDicomSeries(files, { maxVoxels: 10 }));
    expect(e).toBeInstanceOf(LimitError);
  });
});

describe('bad input', () => {
  const good = [0, 1, 2].map((k) => sliceFile([0, 0, k], int16Data(12, k), { name: `g${k}` }));
  const pixelTag = (bytes: Uint8Array) => dicomParser.parseDicom(bytes).elements.x7fe00010.dataOffset - 12;

  it('truncated files give FormatError naming the file and the problem', async () => {
    const f = good[0];
    const cuts = [0, 50, 131, 140, 300, pixelTag(f.bytes) + 12 + 5, f.bytes.length - 1];
    for (const cut of cuts) {
      const t = { name: `cut${cut}.dcm`, bytes: f.bytes.slice(0, cut) };
      const e = await failure(readDicomSeries([t]));
      expect(e, `cut at ${cut}`).toBeInstanceOf(FormatError);
      expect(e.message).toContain(`cut${cut}.dcm`);
    }
    const mid = { name: 'mid.dcm', bytes: f.bytes.slice(0, f.bytes.length - 7) };
    expect((await failure(readDicomSeries([mid]))).message).toMatch(/overrun|truncated|holds/);
  });

  it('a file cut just before its pixel data has no pixels: skipped beside a series, an error alone', async () => {
    const f = good[0];
    const nopix = { name: 'nopixels.dcm', bytes: f.bytes.slice(0, pixelTag(f.bytes)) };
    const alone = await failure(readDicomSeries([nopix]));
    expect(alone).toBeInstanceOf(FormatError);
    expect(alone.message).toMatch(/nopixels\.dcm: no pixel data/);
    const r = await readDicomSeries([...good, nopix]);
    expect(r.series).toHaveLength(1);
    expect(r.series[0].volume.dims[2]).toBe(3);
    expect(r.skipped.map((s) => s.name)).toEqual(['nopixels.dcm']);
    expect(r.skipped[0].reason).toMatch(/no pixel data/);
  });

  it('wrong magic: not DICOM', async () => {
    const text = {
      name: 'notes.txt',
      bytes: new TextEncoder().encode('hello, this is not a DICOM file at all; '.repeat(10)),
    };
    const e = await failure(readDicomSeries([text]));
    expect(e).toBeInstanceOf(FormatError);
    expect(e.message).toMatch(/notes\.txt: not a DICOM file/);
    const r = await readDicomSeries([...good, text]);
    expect(r.skipped.map((s) => s.name)).toEqual(['notes.txt']);
  });

  it('an unsupported transfer syntax is named', async () => {
    const f = {
      name: 'odd-syntax.dcm',
      bytes: replaceAscii(good[0].bytes, '1.2.840.10008.1.2.1\0', '1.2.840.10008.9.9.9\0'),
    };
    const e = await failure(readDicomSeries([f]));
    expect(e).toBeInstanceOf(FormatError);
    expect(e.message).toMatch(/odd-syntax\.dcm: transfer syntax 1\.2\.840\.10008\.9\.9\.9 is not supported/);
  });

  it('nothing readable among several files: one FormatError listing them', async () => {
    const a = { name: 'a.bin', bytes: new Uint8Array(300) };
    const b = { name: 'b.bin', bytes: new Uint8Array([1, 2, 3]) };
    const e = await failure(readDicomSeries([a, b]));
    expect(e).toBeInstanceOf(FormatError);
    expect(e.message).toMatch(/a\.bin.*b\.bin/);
  });
});
