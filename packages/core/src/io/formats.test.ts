import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import { FormatError, GeometryError, LimitError } from '../errors.js';
import { mat4TransformPoint } from '../math/mat4.js';
import { createVolume, indexToPatientFrom, type Volume } from '../volume/volume.js';
import { readNifti, writeNifti } from './nifti.js';
import { readNrrd, writeNrrd } from './nrrd.js';
import { readMetaImage } from './metaimage.js';
import { sniffFormat } from './sniff.js';
import { sharedData } from '../test-helpers/data.js';

/** A NIfTI-1 header built field by field at the offsets of nifti1.h, independent of the writer. */
function nifti1(opts: {
  dims: number[];
  datatype: number;
  bitpix: number;
  pixdim: number[];
  qform?: number;
  sform?: number;
  quatern?: number[];
  qoffset?: number[];
  srow?: number[][];
  slope?: number;
  inter?: number;
  le?: boolean;
  data: Uint8Array;
}): Uint8Array {
  const le = opts.le ?? true;
  const out = new Uint8Array(352 + opts.data.length);
  const dv = new DataView(out.buffer);
  dv.setInt32(0, 348, le);
  [3, ...opts.dims, 1, 1, 1, 1].slice(0, 8).forEach((v, i) => dv.setInt16(40 + 2 * i, v, le));
  dv.setInt16(70, opts.datatype, le);
  dv.setInt16(72, opts.bitpix, le);
  opts.pixdim.forEach((v, i) => dv.setFloat32(76 + 4 * i, v, le));
  dv.setFloat32(108, 352, le);
  dv.setFloat32(112, opts.slope ?? 0, le);
  dv.setFloat32(116, opts.inter ?? 0, le);
  out[123] = 2;
  dv.setInt16(252, opts.qform ?? 0, le);
  dv.setInt16(254, opts.sform ?? 0, le);
  (opts.quatern ?? [0, 0, 0]).forEach((v, i) => dv.setFloat32(256 + 4 * i, v, le));
  (opts.qoffset ?? [0, 0, 0]).forEach((v, i) => dv.setFloat32(268 + 4 * i, v, le));
  (
    opts.srow ?? [
      [0, 0, 0, 0],
      [0, 0, 0, 0],
      [0, 0, 0, 0],
    ]
  ).forEach((row, r) => row.forEach((v, c) => dv.setFloat32(280 + 16 * r + 4 * c, v, le)));
  out.set([0x6e, 0x2b, 0x31, 0], 344);
  out.set(opts.data, 352);
  return out;
}

function int16Bytes(values: number[], le = true): Uint8Array {
  const b = new Uint8Array(values.length * 2);
  const dv = new DataView(b.buffer);
  values.forEach((v, i) => dv.setInt16(2 * i, v, le));
  return b;
}

const f32 = Math.fround;

function obliqueVolume(): Volume {
  const c = Math.cos(0.35),
    s = Math.sin(0.35);
  const data = new Int16Array(5 * 4 * 3).map((_, i) => i * 37 - 900);
  return createVolume({
    data,
    dims: [5, 4, 3],
    indexToPatient: indexToPatientFrom(
      [-123.456789, 98.7654321, 1001.1],
      [0.7123, 1.31, 2.5],
      [
        [c, s, 0],
        [-s, c, 0],
        [0, 0, -1],
      ],
    ),
  });
}

describe('NIfTI', () => {
  it('real CT (abdomen-pelvis): indexToPatient is the sform RAS affine with x and y rows negated', () => {
    const file = sharedData('abdomen-pelvis-ct', 'ct.nii.gz');
    const gz = readFileSync(file);
    const raw = gunzipSync(gz);
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const srow = [0, 1, 2].map((r) => [0, 1, 2, 3].map((c) => dv.getFloat32(280 + 16 * r + 4 * c, true)));
    const { volume, format } = readNifti(new Uint8Array(gz), file);
    expect(format).toBe('nifti');
    expect(volume.dims).toEqual([122, 101, 112]);
    for (let r = 0; r < 3; r++)
      for (let c = 0; c < 4; c++) expect(volume.indexToPatient[r * 4 + c]).toBe((r < 2 ? -1 : 1) * srow[r][c] + 0);
    expect([...volume.spacing]).toEqual([3, 3, 3]);
    // Voxels straight from the bytes: datatype int32 (code 8) at vox_offset.
    expect(dv.getInt16(70, true)).toBe(8);
    const off = dv.getFloat32(108, true);
    for (const idx of [0, 12345, 500000, 122 * 101 * 112 - 1])
      expect(volume.data[idx]).toBe(dv.getInt32(off + 4 * idx, true));
  });

  it('real CT (VHF pelvis): dims, spacing and LPS origin from its README', () => {
    const file = sharedData('vhf-pelvis-ct', 'ct.nii.gz');
    const { volume } = readNifti(new Uint8Array(readFileSync(file)), file);
    expect(volume.dims).toEqual([452, 404, 150]);
    expect([...volume.spacing]).toEqual([1, 1, 1]);
    // RAS affine [[-1,0,0,-16],[0,-1,0,-96],[0,0,1,900]] -> LPS origin (16, 96, 900), i toward +L, j toward +P.
    expect(mat4TransformPoint([0, 0, 0], volume.indexToPatient, [0, 0, 0])).toEqual([16, 96, 900]);
    expect(mat4TransformPoint([0, 0, 0], volume.indexToPatient, [1, 1, 1])).toEqual([17, 97, 901]);
  });

  it('qform only: quaternion rotation with qfac -1, spacing and offset, as nifti1.h defines', () => {
    // Rotation of 30 degrees about +z (RAS): quaternion (a,b,c,d) = (cos 15, 0, 0, sin 15).
    const t = (30 * Math.PI) / 180;
    const bytes = nifti1({
      dims: [2, 2, 2],
      datatype: 4,
      bitpix: 16,
      pixdim: [-1, 0.5, 0.75, 2.5],
      qform: 1,
      quatern: [0, 0, Math.sin(t / 2)],
      qoffset: [10, -20, 30],
      data: int16Bytes([1, 2, 3, 4, 5, 6, 7, 8]),
    });
    const { volume, warnings } = readNifti(bytes, 'q.nii');
    expect(warnings).toEqual([]);
    // RAS columns: R * diag(0.5, 0.75, -2.5); LPS negates rows x and y.
    const ras = [
      [Math.cos(t) * 0.5, -Math.sin(t) * 0.75, 0, 10],
      [Math.sin(t) * 0.5, Math.cos(t) * 0.75, 0, -20],
      [0, 0, -2.5, 30],
    ];
    for (let r = 0; r < 3; r++)
      for (let c = 0; c < 4; c++) expect(volume.indexToPatient[r * 4 + c]).toBeCloseTo((r < 2 ? -1 : 1) * ras[r][c], 6);
    expect([...volume.data]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('sform wins over qform; method 1 warns; scl_slope/scl_inter are applied', () => {
    const srow = [
      [0, 0, 2, -5],
      [1.5, 0, 0, 7],
      [0, 3, 0, 11],
    ];
    const both = readNifti(
      nifti1({
        dims: [2, 1, 1],
        datatype: 4,
        bitpix: 16,
        pixdim: [1, 1, 1, 1],
        qform: 1,
        sform: 2,
        quatern: [0, 0, 1],
        srow,
        data: int16Bytes([3, 4]),
      }),
      's.nii',
    );
    const expected = [
      [-0, -0, -2, 5],
      [-1.5, -0, -0, -7],
      [0, 3, 0, 11],
    ];
    for (let r = 0; r < 3; r++)
      for (let c = 0; c < 4; c++) expect(both.volume.indexToPatient[r * 4 + c] + 0).toBe(expected[r][c] + 0);
    const m1 = readNifti(
      nifti1({
        dims: [2, 1, 1],
        datatype: 4,
        bitpix: 16,
        pixdim: [1, 0.8, 0.9, 1.2],
        data: int16Bytes([1000, 1100]),
        slope: 1,
        inter: -1024,
      }),
      'm1.nii',
    );
    expect(m1.warnings.join()).toMatch(/m1\.nii.*no qform or sform/);
    expect(m1.volume.spacing.map(f32)).toEqual([0.8, 0.9, 1.2].map(f32));
    expect([...m1.volume.data]).toEqual([-24, 76]);
    expect(m1.volume.data).toBeInstanceOf(Int16Array);
    const frac = readNifti(
      nifti1({
        dims: [2, 1, 1],
        datatype: 4,
        bitpix: 16,
        pixdim: [1, 1, 1, 1],
        sform: 1,
        srow: [
          [1, 0, 0, 0],
          [0, 1, 0, 0],
          [0, 0, 1, 0],
        ],
        data: int16Bytes([10, 20]),
        slope: 0.5,
        inter: 0.25,
      }),
      'f.nii',
    );
    expect([...frac.volume.data]).toEqual([5.25, 10.25]);
  });

  it('reads big-endian headers and data', () => {
    const v = readNifti(
      nifti1({
        dims: [3, 1, 1],
        datatype: 4,
        bitpix: 16,
        pixdim: [1, 1, 1, 1],
        sform: 1,
        srow: [
          [1, 0, 0, 1],
          [0, 1, 0, 2],
          [0, 0, 1, 3],
        ],
        data: int16Bytes([-5, 300, 7], false),
        le: false,
      }),
      'be.nii',
    );
    expect([...v.volume.data]).toEqual([-5, 300, 7]);
    expect(mat4TransformPoint([0, 0, 0], v.volume.indexToPatient, [0, 0, 0])).toEqual([-1, -2, 3]);
  });

  it('writes NIfTI-1 when the geometry is float32-exact, NIfTI-2 otherwise; both read back exactly', () => {
    const exact = createVolume({
      data: new Int16Array([1, 2, 3, 4, 5, 6, 7, 8]),
      dims: [2, 2, 2],
      indexToPatient: indexToPatientFrom([-10.5, 20.25, 300], [0.5, 0.75, 2]),
    });
    const b1 = writeNifti(exact, { gzip: false });
    expect(new DataView(b1.buffer, b1.byteOffset).getInt32(0, true)).toBe(348);
    const back1 = readNifti(b1, 'w1.nii').volume;
    expect([...back1.indexToPatient]).toEqual([...exact.indexToPatient]);
    const ob = obliqueVolume();
    const b2 = writeNifti(ob);
    // gunzipSync may return a view into a shared pool (Node 24 does): read at its byteOffset.
    const raw2 = gunzipSync(b2);
    expect(new DataView(raw2.buffer, raw2.byteOffset).getInt32(0, true)).toBe(540);
    const back2 = readNifti(b2, 'w2.nii.gz').volume;
    expect([...back2.indexToPatient]).toEqual([...ob.indexToPatient]);
    expect([...back2.data]).toEqual([...ob.data]);
    // Same input, same bytes.
    expect(Buffer.from(writeNifti(ob)).equals(Buffer.from(b2))).toBe(true);
  });

  it('refuses bad input with typed errors naming the file, before allocating', () => {
    const good = nifti1({
      dims: [4, 4, 4],
      datatype: 4,
      bitpix: 16,
      pixdim: [1, 1, 1, 1],
      sform: 1,
      srow: [
        [1, 0, 0, 0],
        [0, 1, 0, 0],
        [0, 0, 1, 0],
      ],
      data: int16Bytes(new Array<number>(64).fill(1)),
    });
    expect(() => readNifti(good.subarray(0, 200), 'short.nii')).toThrow(/short\.nii.*truncated/);
    expect(() => readNifti(good.subarray(0, 400), 'cut.nii')).toThrow(FormatError);
    const bad = good.slice();
    bad[344] = 0x78;
    expect(() => readNifti(bad, 'magic.nii')).toThrow(/magic\.nii.*magic/);
    expect(() => readNifti(new Uint8Array(10), 'zero.nii')).toThrow(FormatError);
    const huge = nifti1({
      dims: [30000, 30000, 30000],
      datatype: 4,
      bitpix: 16,
      pixdim: [1, 1, 1, 1],
      sform: 1,
      srow: [
        [1, 0, 0, 0],
        [0, 1, 0, 0],
        [0, 0, 1, 0],
      ],
      data: new Uint8Array(0),
    });
    const t0 = performance.now();
    expect(() => readNifti(huge, 'huge.nii')).toThrow(LimitError);
    expect(() => readNifti(new Uint8Array(gzipSync(huge)), 'huge.nii.gz')).toThrow(LimitError);
    expect(performance.now() - t0).toBeLessThan(500);
    const singular = nifti1({
      dims: [2, 1, 1],
      datatype: 4,
      bitpix: 16,
      pixdim: [1, 1, 1, 1],
      sform: 1,
      srow: [
        [1, 0, 0, 0],
        [1, 0, 0, 0],
        [0, 0, 1, 0],
      ],
      data: int16Bytes([1, 2]),
    });
    expect(() => readNifti(singular, 'sing.nii')).toThrow(GeometryError);
    const rgb = nifti1({ dims: [1, 1, 1], datatype: 128, bitpix: 24, pixdim: [1, 1, 1, 1], data: new Uint8Array(3) });
    expect(() => readNifti(rgb, 'rgb.nii')).toThrow(/rgb\.nii.*datatype code 128/);
  });
});

describe('NRRD', () => {
  it('NIfTI -> NRRD -> NIfTI keeps voxels and geometry exactly (real CT)', () => {
    const file = sharedData('abdomen-pelvis-ct', 'ct.nii.gz');
    const a = readNifti(new Uint8Array(readFileSync(file)), file).volume;
    const b = readNrrd(writeNrrd(a), 'a.nrrd').volume;
    const c = readNifti(writeNifti(b), 'c.nii.gz').volume;
    for (const v of [b, c]) {
      expect([...v.indexToPatient]).toEqual([...a.indexToPatient]);
      expect(v.dims).toEqual(a.dims);
      expect(
        Buffer.from(v.data.buffer, v.data.byteOffset, v.data.byteLength).equals(
          Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength),
        ),
      ).toBe(true);
    }
  });

  it('reads RAS space, detached data and raw big-endian as a hand-written header says', () => {
    const header = [
      'NRRD0004',
      'type: short',
      'dimension: 3',
      'space: right-anterior-superior',
      'sizes: 2 1 1',
      'space directions: (0.5,0,0) (0,0.6,0) (0,0,2)',
      'endian: big',
      'encoding: raw',
      'space origin: (10,20,30)',
      'data file: x.raw',
      '',
    ].join('\n');
    const raw = int16Bytes([-7, 1234], false);
    const v = readNrrd(new TextEncoder().encode(header), 'x.nhdr', (name) => {
      expect(name).toBe('x.raw');
      return raw;
    }).volume;
    expect([...v.data]).toEqual([-7, 1234]);
    expect(mat4TransformPoint([0, 0, 0], v.indexToPatient, [1, 0, 0])).toEqual([-10.5, -20, 30]);
  });

  it('an oblique, flipped, anisotropic volume survives NRRD exactly', () => {
    const ob = obliqueVolume();
    const back = readNrrd(writeNrrd(ob, { gzip: false }), 'ob.nrrd').volume;
    expect([...back.indexToPatient]).toEqual([...ob.indexToPatient]);
    expect([...back.data]).toEqual([...ob.data]);
  });

  it('refuses truncated data, unknown types and non-spatial axes', () => {
    const bytes = writeNrrd(obliqueVolume(), { gzip: false });
    expect(() => readNrrd(bytes.subarray(0, bytes.length - 10), 't.nrrd')).toThrow(/t\.nrrd.*truncated/);
    const text = (t: string) => new TextEncoder().encode(t);
    expect(() =>
      readNrrd(text('NRRD0004\ntype: complex\ndimension: 1\nsizes: 2\nencoding: raw\n\n'), 'c.nrrd'),
    ).toThrow(/unsupported type/);
    expect(() =>
      readNrrd(
        text(
          'NRRD0004\ntype: short\ndimension: 4\nsizes: 3 2 2 2\nspace: LPS\n' +
            'space directions: none (1,0,0) (0,1,0) (0,0,1)\nencoding: raw\n\n',
        ),
        'v.nrrd',
      ),
    ).toThrow(/non-spatial axis/);
    expect(() =>
      readNrrd(text('NRRD0004\ntype: short\ndimension: 3\nsizes: 100000 100000 100000\nencoding: raw\n\n'), 'h.nrrd'),
    ).toThrow(LimitError);
    expect(() => readNrrd(text('not nrrd'), 'n.nrrd')).toThrow(FormatError);
  });
});

describe('MetaImage', () => {
  it('reads an .mha whose TransformMatrix lists each axis direction in turn (ITK order)', () => {
    const c = Math.cos(0.5),
      s = Math.sin(0.5);
    const header = [
      'ObjectType = Image',
      'NDims = 3',
      'BinaryData = True',
      'BinaryDataByteOrderMSB = False',
      'CompressedData = False',
      `TransformMatrix = ${c} ${s} 0 ${-s} ${c} 0 0 0 1`,
      'Offset = -5 6 -7',
      'CenterOfRotation = 0 0 0',
      'ElementSpacing = 0.5 0.25 3',
      'DimSize = 2 2 1',
      'ElementType = MET_SHORT',
      'ElementDataFile = LOCAL',
      '',
    ].join('\n');
    const head = new TextEncoder().encode(header);
    const bytes = new Uint8Array(head.length + 8);
    bytes.set(head);
    bytes.set(int16Bytes([1, -2, 3, -4]), head.length);
    expect(sniffFormat('x.mha', bytes)).toBe('metaimage');
    const v = readMetaImage(bytes, 'x.mha').volume;
    // Voxel (1,0,0) lies one i-step along the first direction (c, s, 0) times 0.5 mm from the offset.
    const p = mat4TransformPoint([0, 0, 0], v.indexToPatient, [1, 0, 0]);
    [-5 + 0.5 * c, 6 + 0.5 * s, -7].forEach((x, i) => expect(p[i]).toBeCloseTo(x, 12));
    const q = mat4TransformPoint([0, 0, 0], v.indexToPatient, [0, 1, 0]);
    [-5 - 0.25 * s, 6 + 0.25 * c, -7].forEach((x, i) => expect(q[i]).toBeCloseTo(x, 12));
    expect([...v.data]).toEqual([1, -2, 3, -4]);
    expect(() => readMetaImage(bytes.subarray(0, bytes.length - 3), 'cut.mha')).toThrow(/cut\.mha.*truncated/);
  });
});

describe('sniffFormat', () => {
  it('recognizes formats by content, whatever the name', () => {
    const ob = obliqueVolume();
    expect(sniffFormat('a.bin', writeNifti(ob))).toBe('nifti');
    expect(sniffFormat('a.bin', writeNifti(ob, { gzip: false }))).toBe('nifti');
    expect(sniffFormat('a.bin', writeNrrd(ob))).toBe('nrrd');
    expect(sniffFormat('a.bin', new Uint8Array(10))).toBeNull();
  });
});
