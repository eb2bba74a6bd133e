/**
 * DICOM SEG read as a label volume (issue 14). The SEG is built here element by element (explicit VR
 * little endian, nested sequences of undefined length), its 1-bit frames packed here LSB first and
 * continuously across frames; expected labels come from the masks made here, never from the reader.
 */
import { describe, expect, it } from 'vitest';
import { GeometryError } from '../../errors.js';
import { cross, type Point3 } from '../../math/vec3.js';
import { createVolume, type Volume } from '../../volume/volume.js';
import { readDicomSeg } from './seg.js';
import { readDicomSeries } from './series.js';
import { SOP_CLASS } from './tags.js';
import { dicomElements, formatDS, part10File, writeDicomSeries, writeSequence } from './writer.js';

const COLUMNS = 5;
const ROWS = 3;
const DI = 0.7; // column spacing (along a row, i)
const DJ = 0.9; // row spacing (down a column, j)
const DK = 2.5;
const a = 0.4;
const b = 0.3;
const ROW_DIR: Point3 = [Math.cos(a), Math.sin(a), 0];
const COL_DIR: Point3 = [-Math.sin(a) * Math.cos(b), Math.cos(a) * Math.cos(b), Math.sin(b)];
const NORMAL = cross(ROW_DIR, COL_DIR);
const ORIGIN: Point3 = [-12.5, 30.25, 104];

/** Frames in file order: segment and plane k (k 1 holds both segments, so they overlap there). */
const FRAMES = [
  { segment: 1, k: 2 },
  { segment: 2, k: 3 },
  { segment: 1, k: 0 },
  { segment: 2, k: 1 },
  { segment: 1, k: 1 },
];

const ds = (v: readonly number[]) => v.map(formatDS).join('\\');

function position(k: number): Point3 {
  return [0, 1, 2].map((x) => ORIGIN[x] + k * DK * NORMAL[x]) as Point3;
}

/** Deterministic masks: mask[f][r * COLUMNS + c] for each frame of FRAMES. */
function masks(): boolean[][] {
  let seed = 12345;
  const next = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) >>> 16) & 1;
  return FRAMES.map(() => Array.from({ length: ROWS * COLUMNS }, () => next() === 1));
}

function pack(frames: boolean[][]): Uint8Array {
  const bits = frames.flat();
  const out = new Uint8Array(Math.ceil(bits.length / 8) + (Math.ceil(bits.length / 8) % 2)); // even length
  bits.forEach((on, n) => {
    if (on) out[n >> 3] |= 1 << (n & 7);
  });
  return out;
}

function segFile(frameMasks: boolean[][], orientation = [...ROW_DIR, ...COL_DIR], spacing = [DJ, DI]): Uint8Array {
  const body = dicomElements((w) => {
    w.str(0x0008, 0x0016, 'UI', SOP_CLASS.Segmentation);
    w.str(0x0008, 0x0018, 'UI', '1.2.3.4.5');
    w.str(0x0008, 0x0060, 'CS', 'SEG');
    w.str(0x0020, 0x000e, 'UI', '1.2.3.4.6');
    w.str(0x0020, 0x0052, 'UI', '1.2.3.4.7');
    w.us(0x0028, 0x0002, 1);
    w.str(0x0028, 0x0004, 'CS', 'MONOCHROME2');
    w.str(0x0028, 0x0008, 'IS', String(FRAMES.length));
    w.us(0x0028, 0x0010, ROWS);
    w.us(0x0028, 0x0011, COLUMNS);
    w.us(0x0028, 0x0100, 1);
    w.us(0x0028, 0x0101, 1);
    w.us(0x0028, 0x0102, 0);
    w.us(0x0028, 0x0103, 0);
    w.str(0x0062, 0x0001, 'CS', 'BINARY');
    // Listed out of order on purpose: the reader sorts by number.
    const segment = (n: number, label: string) =>
      dicomElements((s) => {
        s.us(0x0062, 0x0004, n);
        s.str(0x0062, 0x0005, 'LO', label);
      });
    writeSequence(w, 0x0062, 0x0002, [segment(2, 'spleen'), segment(1, 'liver')]);
    const shared = dicomElements((s) => {
      writeSequence(s, 0x0020, 0x9116, [dicomElements((o) => o.str(0x0020, 0x0037, 'DS', ds(orientation)))]);
      writeSequence(s, 0x0028, 0x9110, [
        dicomElements((m) => {
          m.str(0x0018, 0x0050, 'DS', formatDS(DK));
          m.str(0x0028, 0x0030, 'DS', ds(spacing));
        }),
      ]);
    });
    writeSequence(w, 0x5200, 0x9229, [shared]);
    const perFrame = FRAMES.map((f) =>
      dicomElements((s) => {
        writeSequence(s, 0x0020, 0x9113, [dicomElements((p) => p.str(0x0020, 0x0032, 'DS', ds(position(f.k))))]);
        writeSequence(s, 0x0062, 0x000a, [dicomElements((g) => g.us(0x0062, 0x000b, f.segment))]);
      }),
    );
    writeSequence(w, 0x5200, 0x9230, perFrame);
    w.ob(0x7fe0, 0x0010, pack(frameMasks));
  });
  return part10File(SOP_CLASS.Segmentation, '1.2.3.4.5', body);
}

/** Expected label of SEG voxel (c, r, k): 2 where segment 2's mask is set there, else 1 where segment 1's. */
function expectedLabel(frameMasks: boolean[][], c: number, r: number, k: number): number {
  let label = 0;
  for (const seg of [1, 2]) {
    FRAMES.forEach((f, n) => {
      if (f.segment === seg && f.k === k && frameMasks[n][r * COLUMNS + c]) label = seg;
    });
  }
  return label;
}

function gridVolume(di: number, offset: [number, number, number], nk: number, name: string): Volume {
  // k runs against the normal: SEG plane k is grid slice offset[2] - k.
  const o = [0, 1, 2].map(
    (x) => ORIGIN[x] - offset[0] * di * ROW_DIR[x] - offset[1] * DJ * COL_DIR[x] + offset[2] * DK * NORMAL[x],
  );
  const m = [0, 1, 2].flatMap((x) => [ROW_DIR[x] * di, COL_DIR[x] * DJ, -NORMAL[x] * DK, o[x]]);
  return createVolume({
    data: new Int16Array(9 * 6 * nk),
    dims: [9, 6, nk],
    indexToPatient: Float64Array.from([...m, 0, 0, 0, 1]),
    meta: { source: name },
  });
}

describe('readDicomSeg', () => {
  it('unpacks 1-bit frames across byte boundaries onto the SEG grid, later segment winning', () => {
    const frameMasks = masks();
    expect((FRAMES.length * ROWS * COLUMNS) % 8).not.toBe(0);
    // Segment 1 and 2 share at least one voxel on plane 1, so the overlap rule is exercised.
    const overlap = frameMasks[3].some((on, p) => on && frameMasks[4][p]);
    expect(overlap).toBe(true);
    const { volume, segments, warnings } = readDicomSeg(segFile(frameMasks), 'seg.dcm');
    expect(segments).toEqual([
      { number: 1, label: 'liver' },
      { number: 2, label: 'spleen' },
    ]);
    expect(volume.data).toBeInstanceOf(Uint8Array);
    expect(volume.dims).toEqual([COLUMNS, ROWS, 4]);
    let ones = 0;
    for (let k = 0; k < 4; k++)
      for (let r = 0; r < ROWS; r++)
        for (let c = 0; c < COLUMNS; c++) {
          const want = expectedLabel(frameMasks, c, r, k);
          if (want === 1) ones++;
          expect(volume.data[(k * ROWS + r) * COLUMNS + c], `voxel ${c},${r},${k}`).toBe(want);
        }
    expect(ones).toBeGreaterThan(0);
    const m = volume.indexToPatient;
    for (let x = 0; x < 3; x++) {
      expect(m[4 * x]).toBeCloseTo(ROW_DIR[x] * DI, 9);
      expect(m[4 * x + 1]).toBeCloseTo(COL_DIR[x] * DJ, 9);
      expect(m[4 * x + 2]).toBeCloseTo(NORMAL[x] * DK, 6);
      expect(m[4 * x + 3]).toBeCloseTo(ORIGIN[x], 6);
    }
    expect(volume.meta.modality).toBe('SEG');
    expect(warnings.some((w) => /more than one segment/.test(w))).toBe(true);
  });

  it('puts the labels on exactly the reference grid, matching frames to slices by position', () => {
    const frameMasks = masks();
    const grid = gridVolume(DI, [1, 2, 4], 6, 'CT series 9');
    const { volume } = readDicomSeg(segFile(frameMasks), 'seg.dcm', { grid });
    expect(volume.dims).toEqual(grid.dims);
    expect(Array.from(volume.indexToPatient)).toEqual(Array.from(grid.indexToPatient));
    const [ni, nj, nk] = grid.dims;
    for (let kk = 0; kk < nk; kk++)
      for (let j = 0; j < nj; j++)
        for (let i = 0; i < ni; i++) {
          const c = i - 1;
          const r = j - 2;
          const k = 4 - kk;
          const inside = c >= 0 && c < COLUMNS && r >= 0 && r < ROWS && k >= 0 && k < 4;
          const want = inside ? expectedLabel(frameMasks, c, r, k) : 0;
          expect(volume.data[(kk * nj + j) * ni + i], `voxel ${i},${j},${kk}`).toBe(want);
        }
  });

  it('refuses a reference grid whose spacing or orientation differs, naming both grids', () => {
    const bytes = segFile(masks());
    const grid = gridVolume(0.8, [1, 2, 4], 6, 'CT series 9');
    const read = () => readDicomSeg(bytes, 'seg.dcm', { grid });
    expect(read).toThrow(GeometryError);
    expect(read).toThrow(
      /^seg\.dcm: the SEG's grid \(orientation .*spacing \[0\.7, 0\.9\].*does not match CT series 9 /,
    );
    expect(read).toThrow(/CT series 9 \(orientation .*spacing \[0\.8, 0\.9, 2\.5\]/);
    const turned = segFile(masks(), [...COL_DIR, ...ROW_DIR]);
    expect(() => readDicomSeg(turned, 'seg.dcm', { grid: gridVolume(DI, [1, 2, 4], 6, 'CT') })).toThrow(GeometryError);
  });

  it('is skipped by readDicomSeries with a reason that names readDicomSeg', async () => {
    const files = [{ name: 'seg.dcm', bytes: segFile(masks()) }];
    await expect(readDicomSeries(files)).rejects.toThrow('seg.dcm: DICOM SEG: read with readDicomSeg');
    const ct = writeDicomSeries(gridVolume(DI, [1, 2, 4], 6, 'CT'), { uidSeed: 'seg test' });
    const read = await readDicomSeries([...ct, ...files]);
    expect(read.series).toHaveLength(1);
    expect(read.skipped).toEqual([{ name: 'seg.dcm', reason: 'seg.dcm: DICOM SEG: read with readDicomSeg' }]);
  });
});
