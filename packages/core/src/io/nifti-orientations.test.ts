/**
 * NIfTI writer and reader over all 48 axis orientations: every signed permutation of the three axes
 * (6 permutations x 8 sign patterns = 24 rotations x 2 handedness), each with anisotropic spacing
 * (0.7, 1.3, 2.1 mm) and an origin far from zero. The header is also decoded here, field by field at the
 * offsets of nifti1.h / nifti2.h, so the RAS <-> LPS conversion (x and y rows negated) is checked
 * against an answer the code under test did not produce.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../math/random.js';
import { createVolume, indexToPatientFrom, type Volume } from '../volume/volume.js';
import { readNifti, writeNifti } from './nifti.js';

type V3 = [number, number, number];

const SPACING: V3 = [0.7, 1.3, 2.1];
const ORIGIN: V3 = [-312.4, 187.9, 1043.2];
const DIMS = [4, 3, 5] as const; // all different, so a swapped axis changes dims
const MARKS: { at: V3; value: number }[] = [
  { at: [1, 2, 3], value: 30000 },
  { at: [3, 0, 4], value: -30000 },
  { at: [0, 1, 0], value: 12345 },
];

interface Orientation {
  /** e.g. "PLI": the LPS letter that increasing i, j, k point to (R, A, I for the negative axes). */
  code: string;
  /** Unit LPS direction of increasing i, j, k. */
  dirs: [V3, V3, V3];
  /** +1 right-handed, -1 left-handed: sign of the permutation times the product of the signs. */
  handedness: number;
}

function orientations(): Orientation[] {
  const perms: [number[], number][] = [
    [[0, 1, 2], 1],
    [[1, 2, 0], 1],
    [[2, 0, 1], 1],
    [[0, 2, 1], -1],
    [[2, 1, 0], -1],
    [[1, 0, 2], -1],
  ];
  const out: Orientation[] = [];
  for (const [perm, parity] of perms) {
    for (let signs = 0; signs < 8; signs++) {
      const sign = [0, 1, 2].map((c) => ((signs >> c) & 1 ? -1 : 1));
      const dirs = [0, 1, 2].map((c) => {
        const d: V3 = [0, 0, 0];
        d[perm[c]] = sign[c];
        return d;
      }) as [V3, V3, V3];
      const code = [0, 1, 2].map((c) => (sign[c] > 0 ? 'LPS' : 'RAI')[perm[c]]).join('');
      out.push({ code, dirs, handedness: parity * sign[0] * sign[1] * sign[2] });
    }
  }
  return out;
}

/** LPS centre of voxel idx, from the parts (not from any matrix). */
const position = (o: Orientation, idx: V3): V3 =>
  [0, 1, 2].map((r) => ORIGIN[r] + idx.reduce((s, f, a) => s + f * SPACING[a] * o.dirs[a][r], 0)) as V3;

function volumeFor(o: Orientation): Volume<Int16Array> {
  const n = DIMS[0] * DIMS[1] * DIMS[2];
  const data = new Int16Array(n).map((_, i) => i * 7 - 200); // -200 .. 213, distinct from the marks
  for (const m of MARKS) data[m.at[0] + DIMS[0] * (m.at[1] + DIMS[1] * m.at[2])] = m.value;
  return createVolume({ data, dims: DIMS, indexToPatient: indexToPatientFrom(ORIGIN, SPACING, o.dirs) });
}

/** The header's fields, decoded here at nifti1.h offsets (little-endian, as the writer writes). */
function decodeNifti1(bytes: Uint8Array) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    sizeofHdr: dv.getInt32(0, true),
    magic: String.fromCharCode(bytes[344], bytes[345], bytes[346]),
    dim: [0, 1, 2, 3].map((i) => dv.getInt16(40 + 2 * i, true)),
    pixdim: [0, 1, 2, 3].map((i) => dv.getFloat32(76 + 4 * i, true)),
    qformCode: dv.getInt16(252, true),
    sformCode: dv.getInt16(254, true),
    // srow_x at 280, srow_y at 296, srow_z at 312: four float32 each.
    srow: [280, 296, 312].map((at) => [0, 1, 2, 3].map((c) => dv.getFloat32(at + 4 * c, true))),
  };
}

/** The same at nifti2.h offsets: srow_x at 400, srow_y at 432, srow_z at 464, float64. */
function decodeNifti2(bytes: Uint8Array) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    sizeofHdr: dv.getInt32(0, true),
    magic: String.fromCharCode(bytes[4], bytes[5], bytes[6]),
    qformCode: dv.getInt32(344, true),
    sformCode: dv.getInt32(348, true),
    srow: [400, 432, 464].map((at) => [0, 1, 2, 3].map((c) => dv.getFloat64(at + 8 * c, true))),
  };
}

/** The expected RAS row r, column c: NIfTI's x and y point Right and Anterior, LPS's Left and Posterior. */
function rasExpected(o: Orientation, r: number, c: number): number {
  const lps = c < 3 ? o.dirs[c][r] * SPACING[c] : ORIGIN[r];
  return r < 2 ? -lps : lps;
}

/** Largest |a - b| over the 12 affine elements of two row-major 4x4 matrices. */
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < 12; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

const ALL = orientations();

describe('NIfTI: all 48 axis orientations', () => {
  it('there are 48 distinct orientations, 24 right-handed and 24 left-handed', () => {
    expect(new Set(ALL.map((o) => o.code)).size).toBe(48);
    expect(ALL.filter((o) => o.handedness > 0).length).toBe(24);
    expect(ALL.filter((o) => o.handedness < 0).length).toBe(24);
    // The identity is LPS; negating i and j gives NIfTI's "RAS+" (the LPS volume of a canonical NIfTI).
    expect(ALL.map((o) => o.code)).toContain('LPS');
    expect(ALL.map((o) => o.code)).toContain('RAS');
  });

  // Float32 (NIfTI-1 sform) geometry: 1043.2 lies in [1024, 2048), where float32 steps are 2^-13 mm
  // = 1.22e-4 mm, so rounding moves it by at most 6.1e-5 mm; 1e-4 mm bounds every element.
  it.each(ALL.map((o) => [o.code, o] as const))('%s, NIfTI-1 (float32): header, geometry, voxels', (_, o) => {
    const vol = volumeFor(o);
    const bytes = writeNifti(vol, { gzip: false, version: 1 });
    const h = decodeNifti1(bytes);
    expect(h.sizeofHdr).toBe(348);
    expect(h.magic).toBe('n+1');
    expect(h.dim).toEqual([3, 4, 3, 5]);
    // Both codes 1 (scanner); the qform is written because every signed permutation is a rotation
    // (det +1) times positive spacing once qfac = pixdim[0] takes the handedness.
    expect(h.sformCode).toBe(1);
    expect(h.qformCode).toBe(1);
    expect(h.pixdim[0]).toBe(o.handedness); // det(RAS) = det(diag(-1,-1,1)) det(LPS) = det(LPS)
    expect(h.pixdim.slice(1)).toEqual(SPACING.map(Math.fround));
    // srow: the LPS matrix with rows x and y negated, each element the float32 nearest to it.
    for (let r = 0; r < 3; r++) {
      for (let c = 0; c < 4; c++) expect(h.srow[r][c] + 0).toBe(Math.fround(rasExpected(o, r, c)) + 0);
    }

    const back = readNifti(bytes, `${o.code}.nii`);
    expect(back.warnings).toEqual([]);
    const v = back.volume;
    expect(v.dims).toEqual([4, 3, 5]);
    expect(v.data).toBeInstanceOf(Int16Array);
    expect(Array.from(v.data)).toEqual(Array.from(vol.data));
    expect(maxDiff(v.indexToPatient, vol.indexToPatient)).toBeLessThan(1e-4);
    // Exactly: each element is the float32 of the original (negated twice for x and y: no further loss).
    for (let i = 0; i < 12; i++) expect(v.indexToPatient[i] + 0).toBe(Math.fround(vol.indexToPatient[i]) + 0);
    // A marked voxel, found by its value wherever the reader put it, sits where it was written.
    for (const mark of MARKS) {
      const n = Array.from(v.data).indexOf(mark.value);
      const idx: V3 = [n % 4, Math.floor(n / 4) % 3, Math.floor(n / 12)];
      const m = v.indexToPatient;
      const got = [0, 1, 2].map(
        (r) => m[r * 4] * idx[0] + m[r * 4 + 1] * idx[1] + m[r * 4 + 2] * idx[2] + m[r * 4 + 3],
      );
      const want = position(o, mark.at);
      for (let r = 0; r < 3; r++) expect(Math.abs(got[r] - want[r])).toBeLessThan(1e-4);
    }
  });

  // The qform alone (sform_code set to 0 in the bytes) must place the volume the same way: a reader that
  // prefers the qform sees the same geometry. The 180-degree rotations (trace -1) take the quaternion
  // code's other branches. Quaternion components here are 0, +-1/2, +-1/sqrt(2) or +-1; their float32
  // rounding (<= 3e-8 relative) moves direction elements by < 1e-7 mm per mm of spacing.
  it.each(ALL.map((o) => [o.code, o] as const))('%s, NIfTI-1 qform only: same geometry', (_, o) => {
    const vol = volumeFor(o);
    const bytes = writeNifti(vol, { gzip: false, version: 1 });
    new DataView(bytes.buffer, bytes.byteOffset).setInt16(254, 0, true);
    const v = readNifti(bytes, `${o.code}-qform.nii`).volume;
    expect(maxDiff(v.indexToPatient, vol.indexToPatient)).toBeLessThan(1e-4);
    expect(Array.from(v.data)).toEqual(Array.from(vol.data));
  });

  // 0.7 mm is not a float32, so by default the writer chooses NIfTI-2 (float64): geometry survives exactly.
  it.each(ALL.map((o) => [o.code, o] as const))('%s, NIfTI-2 (default, float64, gzip): exact', (_, o) => {
    const vol = volumeFor(o);
    const raw = writeNifti(vol, { gzip: false });
    const h = decodeNifti2(raw);
    expect(h.sizeofHdr).toBe(540);
    expect(h.magic).toBe('n+2');
    expect(h.sformCode).toBe(1);
    expect(h.qformCode).toBe(1);
    for (let r = 0; r < 3; r++) {
      for (let c = 0; c < 4; c++) expect(h.srow[r][c] + 0).toBe(rasExpected(o, r, c) + 0);
    }
    const v = readNifti(writeNifti(vol), `${o.code}.nii.gz`).volume;
    expect(maxDiff(v.indexToPatient, vol.indexToPatient)).toBe(0);
    expect(Array.from(v.data)).toEqual(Array.from(vol.data));
    // NIfTI-2's qform alone (sform_code int32 at 348 set to 0): float64 quaternion, so to ~1e-12 mm.
    new DataView(raw.buffer, raw.byteOffset).setInt32(348, 0, true);
    expect(maxDiff(readNifti(raw, `${o.code}-q.nii`).volume.indexToPatient, vol.indexToPatient)).toBeLessThan(1e-9);
  });

  // Beyond the 48: random oblique rotations (seeded), either handedness, through the qform alone. The
  // axis orientations only give quaternions with a = 0 or a >= 1/2; these reach the branches where the
  // writer must flip the quaternion's sign (a < 0), which a reader (a = +sqrt(...)) cannot undo.
  it('200 random oblique rotations, both handedness: the qform alone places the volume to 1e-4 mm', () => {
    const rng = new Rng(13);
    let worst = 0;
    for (let n = 0; n < 200; n++) {
      // A random rotation from a random unit quaternion (w, x, y, z).
      let q = [0, 0, 0, 0].map(() => rng.range(-1, 1));
      const len = Math.hypot(...q);
      q = q.map((v) => v / len);
      const [w, x, y, z] = q;
      const cols: [V3, V3, V3] = [
        [1 - 2 * (y * y + z * z), 2 * (x * y + w * z), 2 * (x * z - w * y)],
        [2 * (x * y - w * z), 1 - 2 * (x * x + z * z), 2 * (y * z + w * x)],
        [2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)],
      ];
      if (n % 2) cols[2] = cols[2].map((v) => -v) as V3; // odd n: left-handed
      const vol = createVolume({
        data: new Int16Array(60).map((_, i) => i),
        dims: DIMS,
        indexToPatient: indexToPatientFrom(ORIGIN, SPACING, cols),
      });
      const bytes = writeNifti(vol, { gzip: false, version: 1 });
      expect(decodeNifti1(bytes).qformCode).toBe(1);
      new DataView(bytes.buffer, bytes.byteOffset).setInt16(254, 0, true);
      worst = Math.max(worst, maxDiff(readNifti(bytes, `r${n}.nii`).volume.indexToPatient, vol.indexToPatient));
    }
    expect(worst).toBeLessThan(1e-4);
  });
});
