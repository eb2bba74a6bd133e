/**
 * 4x4 affine matrices, Float64, ROW-MAJOR: m[r * 4 + c] (see docs/conventions.md, "Matrix storage").
 * Functions are output-first (gl-matrix style), allocate nothing, and stay correct when `out`
 * aliases an input (mat4.test.ts checks every one of them for exactly that).
 * Inputs are typed ReadonlyMat4, so a Volume's matrices (which are ReadonlyMat4) can be passed in.
 */
export type Mat4 = Float64Array;
export type Vec3 = Float64Array | [number, number, number] | number[];

/**
 * Float64Array members that write into the array (set, fill, copyWithin, sort, reverse) or hand out a
 * writable view of its memory (subarray, buffer). ReadonlyMat4 leaves them out.
 */
type Float64ArrayWriters = 'set' | 'fill' | 'copyWithin' | 'sort' | 'reverse' | 'subarray' | 'buffer';

/**
 * A Mat4 that can only be read: element access is `readonly`, and the members that write are absent.
 * A Float64Array is a ReadonlyMat4 (pass any Mat4 where one is wanted); the reverse needs a copy
 * (`Float64Array.from(m)`). A type only: it costs nothing at run time, indexing is the typed array's.
 */
export type ReadonlyMat4 = { readonly [index: number]: number } & Omit<Float64Array, Float64ArrayWriters | number>;

export function mat4Create(): Mat4 {
  return mat4Identity(new Float64Array(16));
}

export function mat4Identity(out: Mat4): Mat4 {
  out.fill(0);
  out[0] = out[5] = out[10] = out[15] = 1;
  return out;
}

/** Build from 16 numbers given row by row, or from a nested row-major array. */
export function mat4FromRows(rows: ArrayLike<number> | ReadonlyArray<ArrayLike<number>>): Mat4 {
  const out = new Float64Array(16);
  if (rows.length === 16) {
    for (let i = 0; i < 16; i++) out[i] = (rows as ArrayLike<number>)[i];
    return out;
  }
  if (rows.length !== 4) throw new RangeError('mat4FromRows: need 16 numbers or 4 rows of 4');
  for (let r = 0; r < 4; r++) {
    const row = (rows as ReadonlyArray<ArrayLike<number>>)[r];
    if (!row || row.length !== 4) throw new RangeError('mat4FromRows: each row needs 4 numbers');
    for (let c = 0; c < 4; c++) out[r * 4 + c] = row[c];
  }
  return out;
}

/** Nested row-major array, for JSON. */
export function mat4ToRows(m: ReadonlyMat4): number[][] {
  return [0, 1, 2, 3].map((r) => [m[r * 4], m[r * 4 + 1], m[r * 4 + 2], m[r * 4 + 3]]);
}

export function mat4Copy(out: Mat4, a: ReadonlyMat4): Mat4 {
  out.set(a);
  return out;
}

/** out = a * b (apply b first, then a). */
export function mat4Multiply(out: Mat4, a: ReadonlyMat4, b: ReadonlyMat4): Mat4 {
  const a00 = a[0],
    a01 = a[1],
    a02 = a[2],
    a03 = a[3];
  const a10 = a[4],
    a11 = a[5],
    a12 = a[6],
    a13 = a[7];
  const a20 = a[8],
    a21 = a[9],
    a22 = a[10],
    a23 = a[11];
  const a30 = a[12],
    a31 = a[13],
    a32 = a[14],
    a33 = a[15];
  const b00 = b[0],
    b01 = b[1],
    b02 = b[2],
    b03 = b[3];
  const b10 = b[4],
    b11 = b[5],
    b12 = b[6],
    b13 = b[7];
  const b20 = b[8],
    b21 = b[9],
    b22 = b[10],
    b23 = b[11];
  const b30 = b[12],
    b31 = b[13],
    b32 = b[14],
    b33 = b[15];
  out[0] = a00 * b00 + a01 * b10 + a02 * b20 + a03 * b30;
  out[1] = a00 * b01 + a01 * b11 + a02 * b21 + a03 * b31;
  out[2] = a00 * b02 + a01 * b12 + a02 * b22 + a03 * b32;
  out[3] = a00 * b03 + a01 * b13 + a02 * b23 + a03 * b33;
  out[4] = a10 * b00 + a11 * b10 + a12 * b20 + a13 * b30;
  out[5] = a10 * b01 + a11 * b11 + a12 * b21 + a13 * b31;
  out[6] = a10 * b02 + a11 * b12 + a12 * b22 + a13 * b32;
  out[7] = a10 * b03 + a11 * b13 + a12 * b23 + a13 * b33;
  out[8] = a20 * b00 + a21 * b10 + a22 * b20 + a23 * b30;
  out[9] = a20 * b01 + a21 * b11 + a22 * b21 + a23 * b31;
  out[10] = a20 * b02 + a21 * b12 + a22 * b22 + a23 * b32;
  out[11] = a20 * b03 + a21 * b13 + a22 * b23 + a23 * b33;
  out[12] = a30 * b00 + a31 * b10 + a32 * b20 + a33 * b30;
  out[13] = a30 * b01 + a31 * b11 + a32 * b21 + a33 * b31;
  out[14] = a30 * b02 + a31 * b12 + a32 * b22 + a33 * b32;
  out[15] = a30 * b03 + a31 * b13 + a32 * b23 + a33 * b33;
  return out;
}

/** out = inverse(a); returns null (out untouched) when a is singular. */
export function mat4Invert(out: Mat4, a: ReadonlyMat4): Mat4 | null {
  const a00 = a[0],
    a01 = a[1],
    a02 = a[2],
    a03 = a[3];
  const a10 = a[4],
    a11 = a[5],
    a12 = a[6],
    a13 = a[7];
  const a20 = a[8],
    a21 = a[9],
    a22 = a[10],
    a23 = a[11];
  const a30 = a[12],
    a31 = a[13],
    a32 = a[14],
    a33 = a[15];
  const b00 = a00 * a11 - a01 * a10;
  const b01 = a00 * a12 - a02 * a10;
  const b02 = a00 * a13 - a03 * a10;
  const b03 = a01 * a12 - a02 * a11;
  const b04 = a01 * a13 - a03 * a11;
  const b05 = a02 * a13 - a03 * a12;
  const b06 = a20 * a31 - a21 * a30;
  const b07 = a20 * a32 - a22 * a30;
  const b08 = a20 * a33 - a23 * a30;
  const b09 = a21 * a32 - a22 * a31;
  const b10 = a21 * a33 - a23 * a31;
  const b11 = a22 * a33 - a23 * a32;
  const det = b00 * b11 - b01 * b10 + b02 * b09 + b03 * b08 - b04 * b07 + b05 * b06;
  if (!Number.isFinite(det) || det === 0) return null;
  const id = 1 / det;
  // The 16 lines below look alike (the duplicates tool pairs them) but each is a different cofactor of
  // the closed-form inverse (gl-matrix's mat4.invert, transposed for row-major). Written out, each line
  // can be checked against the formula; a loop over index tables would hide that and cost time. All
  // inputs are read into locals above, so out may alias a.
  out[0] = (a11 * b11 - a12 * b10 + a13 * b09) * id;
  out[1] = (a02 * b10 - a01 * b11 - a03 * b09) * id;
  out[2] = (a31 * b05 - a32 * b04 + a33 * b03) * id;
  out[3] = (a22 * b04 - a21 * b05 - a23 * b03) * id;
  out[4] = (a12 * b08 - a10 * b11 - a13 * b07) * id;
  out[5] = (a00 * b11 - a02 * b08 + a03 * b07) * id;
  out[6] = (a32 * b02 - a30 * b05 - a33 * b01) * id;
  out[7] = (a20 * b05 - a22 * b02 + a23 * b01) * id;
  out[8] = (a10 * b10 - a11 * b08 + a13 * b06) * id;
  out[9] = (a01 * b08 - a00 * b10 - a03 * b06) * id;
  out[10] = (a30 * b04 - a31 * b02 + a33 * b00) * id;
  out[11] = (a21 * b02 - a20 * b04 - a23 * b00) * id;
  out[12] = (a11 * b07 - a10 * b09 - a12 * b06) * id;
  out[13] = (a00 * b09 - a01 * b07 + a02 * b06) * id;
  out[14] = (a31 * b01 - a30 * b03 - a32 * b00) * id;
  out[15] = (a20 * b03 - a21 * b01 + a22 * b00) * id;
  return out;
}

/** out = M * [p, 1] (affine point transform; M's bottom row is assumed 0 0 0 1). */
export function mat4TransformPoint(out: Vec3, m: ReadonlyMat4, p: Readonly<Vec3>): Vec3 {
  const x = p[0],
    y = p[1],
    z = p[2];
  out[0] = m[0] * x + m[1] * y + m[2] * z + m[3];
  out[1] = m[4] * x + m[5] * y + m[6] * z + m[7];
  out[2] = m[8] * x + m[9] * y + m[10] * z + m[11];
  return out;
}

/** out = M * [v, 0] (direction transform, no translation). */
export function mat4TransformDirection(out: Vec3, m: ReadonlyMat4, v: Readonly<Vec3>): Vec3 {
  const x = v[0],
    y = v[1],
    z = v[2];
  out[0] = m[0] * x + m[1] * y + m[2] * z;
  out[1] = m[4] * x + m[5] * y + m[6] * z;
  out[2] = m[8] * x + m[9] * y + m[10] * z;
  return out;
}

/** Determinant of the upper-left 3x3 (sign = handedness of an affine grid). */
export function mat4Det3(m: ReadonlyMat4): number {
  return m[0] * (m[5] * m[10] - m[6] * m[9]) - m[1] * (m[4] * m[10] - m[6] * m[8]) + m[2] * (m[4] * m[9] - m[5] * m[8]);
}

export function mat4MaxAbsDiff(a: ReadonlyMat4, b: ReadonlyMat4): number {
  let d = 0;
  for (let i = 0; i < 16; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}
