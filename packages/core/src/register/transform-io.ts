/**
 * Rigid transforms on file: Corridor's JSON and ITK / 3D Slicer's text format (.tfm, .txt).
 *
 * JSON (`corridor register --out T.json`, schemaVersion 1):
 * ```
 * { "schemaVersion": 1, "kind": "rigid",
 *   "movingToFixed": [[r00, r01, r02, tx], [..], [..], [0, 0, 0, 1]],   // moving LPS mm -> fixed LPS mm
 *   "fixedToMoving": [[...]],                                           // its inverse (informative)
 *   "fixed": { "file": "cbct.nii.gz" }, "moving": { "file": "ct.nii.gz" }, "registration": {...} }
 * ```
 * A reader takes `movingToFixed` (or, when only that is present, inverts `fixedToMoving`); a registration
 * result (`corridor register --json`) is a valid transform file too.
 *
 * ITK "Insight Transform File V1.0": coordinates are LPS mm (ITK's physical space, the same as ours),
 * and the transform stored is ITK's registration output, which maps a point of the FIXED image to the
 * MOVING image (the resampling direction): our `fixedToMoving`. 3D Slicer reads such a file as the
 * inverse: its "transform to parent" (RAS) of the moving image is movingToFixed (with the LPS/RAS flip),
 * so a .tfm written here and applied in Slicer to the moving image puts it on the fixed one. We write
 * `AffineTransform_double_3_3` with `Parameters: a00 a01 a02 a10 .. a22 tx ty tz` (matrix row-major,
 * then translation) and `FixedParameters: 0 0 0` (the centre), full double precision. We read that type
 * (also `_float_`, `MatrixOffsetTransformBase`), `Euler3DTransform` (angles x y z in radians, then
 * translation; centre; R = Rz Rx Ry, or Rz Ry Rx when the fourth fixed parameter, ComputeZYX, is 1),
 * `VersorRigid3DTransform` (versor vector part, then translation; centre) and `TranslationTransform`;
 * all as y = A (x - c) + c + t. A composite of one transform is accepted; more are refused.
 */
import { FormatError, UsageError } from '../errors.js';
import { mat4FromRows, mat4ToRows, type Mat4, type ReadonlyMat4 } from '../math/mat4.js';
import { invertAffine } from './rigid-transform.js';

export const TRANSFORM_SCHEMA_VERSION = 1;

export interface TransformFileContent {
  /** Moving LPS mm -> fixed LPS mm. */
  movingToFixed: Mat4;
  /** Fixed LPS mm -> moving LPS mm (the inverse). */
  fixedToMoving: Mat4;
  /** What the file held: 'json', or the ITK transform type. */
  kind: string;
}

function isRows(x: unknown): x is number[][] {
  return (
    Array.isArray(x) &&
    x.length === 4 &&
    x.every((r) => Array.isArray(r) && r.length === 4 && r.every((v) => typeof v === 'number' && Number.isFinite(v)))
  );
}

function checkAffine(m: ReadonlyMat4, source: string) {
  if (Math.abs(m[12]) > 1e-12 || Math.abs(m[13]) > 1e-12 || Math.abs(m[14]) > 1e-12 || Math.abs(m[15] - 1) > 1e-12)
    throw new FormatError('transform must be affine (bottom row 0 0 0 1)', source);
}

/** Corridor's transform JSON for movingToFixed (pretty-printed); `extra` fields are added as they are. */
export function transformToJson(movingToFixed: ReadonlyMat4, extra: Record<string, unknown> = {}): string {
  const body = {
    schemaVersion: TRANSFORM_SCHEMA_VERSION,
    kind: 'rigid',
    movingToFixed: mat4ToRows(movingToFixed),
    fixedToMoving: mat4ToRows(invertAffine(movingToFixed)),
    ...extra,
  };
  return JSON.stringify(body, null, 2) + '\n';
}

/** Read Corridor's transform JSON (or a registration result). Throws FormatError naming the problem. */
export function parseTransformJson(text: string, source = 'transform'): TransformFileContent {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (err) {
    throw new FormatError(`not valid JSON: ${(err as Error).message}`, source);
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new FormatError('not a JSON object', source);
  const o = obj as Record<string, unknown>;
  if (o.schemaVersion !== undefined && o.schemaVersion !== TRANSFORM_SCHEMA_VERSION)
    throw new FormatError(
      `schemaVersion ${JSON.stringify(o.schemaVersion)} is not ${TRANSFORM_SCHEMA_VERSION}`,
      source,
    );
  if (isRows(o.movingToFixed)) {
    const m = mat4FromRows(o.movingToFixed);
    checkAffine(m, source);
    return { movingToFixed: m, fixedToMoving: invertAffine(m, source), kind: 'json' };
  }
  if (isRows(o.fixedToMoving)) {
    const f = mat4FromRows(o.fixedToMoving);
    checkAffine(f, source);
    return { movingToFixed: invertAffine(f, source), fixedToMoving: f, kind: 'json' };
  }
  throw new FormatError('no movingToFixed (4 rows of 4 finite numbers)', source);
}

/** Shortest text that reads back as the same double. */
function num(x: number): string {
  return String(x + 0);
}

/** ITK .tfm text storing fixedToMoving (the inverse of movingToFixed) as AffineTransform_double_3_3. */
export function transformToTfm(movingToFixed: ReadonlyMat4): string {
  const f = invertAffine(movingToFixed);
  const params = [f[0], f[1], f[2], f[4], f[5], f[6], f[8], f[9], f[10], f[3], f[7], f[11]].map(num).join(' ');
  return (
    '#Insight Transform File V1.0\n' +
    '#Transform 0\n' +
    'Transform: AffineTransform_double_3_3\n' +
    `Parameters: ${params}\n` +
    'FixedParameters: 0 0 0\n'
  );
}

function numbers(s: string, what: string, source: string): number[] {
  const parts = s.trim().split(/\s+/).filter(Boolean);
  const v = parts.map(Number);
  if (!v.every(Number.isFinite))
    throw new FormatError(`${what} are not all numbers: "${s.trim().slice(0, 80)}"`, source);
  return v;
}

function rot(axis: 0 | 1 | 2, a: number): number[] {
  const c = Math.cos(a),
    s = Math.sin(a);
  if (axis === 0) return [1, 0, 0, 0, c, -s, 0, s, c];
  if (axis === 1) return [c, 0, s, 0, 1, 0, -s, 0, c];
  return [c, -s, 0, s, c, 0, 0, 0, 1];
}

function mul(a: number[], b: number[]): number[] {
  const o = new Array<number>(9);
  for (let r = 0; r < 3; r++)
    for (let c = 0; c < 3; c++) o[r * 3 + c] = a[r * 3] * b[c] + a[r * 3 + 1] * b[3 + c] + a[r * 3 + 2] * b[6 + c];
  return o;
}

/** y = A (x - c) + c + t as a 4x4. */
function fromCentred(a: number[], t: number[], c: number[]): Mat4 {
  const m = new Float64Array(16);
  for (let i = 0; i < 3; i++) {
    m[i * 4] = a[i * 3];
    m[i * 4 + 1] = a[i * 3 + 1];
    m[i * 4 + 2] = a[i * 3 + 2];
    m[i * 4 + 3] = t[i] + c[i] - (a[i * 3] * c[0] + a[i * 3 + 1] * c[1] + a[i * 3 + 2] * c[2]);
  }
  m[15] = 1;
  return m;
}

/** Read an ITK transform text file (see the header for the types). Throws FormatError. */
export function parseTfm(text: string, source = 'transform'): TransformFileContent {
  const lines = text.split(/\r?\n/);
  if (!/^#\s*Insight Transform File V1\.0/.test(lines[0] ?? '')) {
    throw new FormatError('not an ITK transform file (no "#Insight Transform File V1.0" header)', source);
  }
  const blocks: { type: string; params?: number[]; fixed?: number[] }[] = [];
  for (const line of lines.slice(1)) {
    const m = /^\s*(Transform|Parameters|FixedParameters)\s*:\s*(.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === 'Transform') blocks.push({ type: m[2].trim() });
    else {
      const b = blocks[blocks.length - 1];
      if (!b) throw new FormatError(`${m[1]} before any Transform line`, source);
      if (m[1] === 'Parameters') b.params = numbers(m[2], 'Parameters', source);
      else b.fixed = numbers(m[2], 'FixedParameters', source);
    }
  }
  const real = blocks.filter((b) => !/^CompositeTransform_/.test(b.type));
  if (real.length !== 1) {
    throw new FormatError(`holds ${real.length} transforms; one linear transform is supported`, source);
  }
  const b = real[0];
  const type = b.type;
  const p = b.params ?? [];
  const fixed = b.fixed ?? [];
  const centre = fixed.length >= 3 ? fixed.slice(0, 3) : [0, 0, 0];
  const need = (n: number) => {
    if (p.length !== n) throw new FormatError(`${type} needs ${n} parameters, found ${p.length}`, source);
  };
  let f2m: Mat4;
  if (/^(AffineTransform|MatrixOffsetTransformBase)_(double|float)_3_3$/.test(type)) {
    need(12);
    f2m = fromCentred(p.slice(0, 9), p.slice(9, 12), centre);
  } else if (/^Euler3DTransform_(double|float)_3_3$/.test(type)) {
    need(6);
    const [ax, ay, az] = p;
    const zyx = fixed.length >= 4 && fixed[3] === 1;
    const r = zyx ? mul(rot(2, az), mul(rot(1, ay), rot(0, ax))) : mul(rot(2, az), mul(rot(0, ax), rot(1, ay)));
    f2m = fromCentred(r, p.slice(3, 6), centre);
  } else if (/^VersorRigid3DTransform_(double|float)_3_3$/.test(type)) {
    need(6);
    const [x, y, z] = p;
    const w2 = 1 - (x * x + y * y + z * z);
    if (w2 < -1e-9) throw new FormatError('versor has norm above 1', source);
    const w = Math.sqrt(Math.max(0, w2));
    const r = [
      1 - 2 * (y * y + z * z),
      2 * (x * y - z * w),
      2 * (x * z + y * w),
      2 * (x * y + z * w),
      1 - 2 * (x * x + z * z),
      2 * (y * z - x * w),
      2 * (x * z - y * w),
      2 * (y * z + x * w),
      1 - 2 * (x * x + y * y),
    ];
    f2m = fromCentred(r, p.slice(3, 6), centre);
  } else if (/^TranslationTransform_(double|float)_3_3$/.test(type)) {
    need(3);
    f2m = fromCentred([1, 0, 0, 0, 1, 0, 0, 0, 1], p, [0, 0, 0]);
  } else {
    throw new FormatError(`transform type "${type.slice(0, 60)}" is not supported`, source);
  }
  return { movingToFixed: invertAffine(f2m, source), fixedToMoving: f2m, kind: type };
}

/** Read a transform file by its content: ITK text when it starts with the Insight header, else JSON. */
export function parseTransformFile(text: string, source = 'transform'): TransformFileContent {
  return /^\s*#\s*Insight Transform File/.test(text) ? parseTfm(text, source) : parseTransformJson(text, source);
}

/** The text of a transform file for a name: .tfm / .txt -> ITK, .json -> Corridor JSON. */
export function transformFileText(
  movingToFixed: ReadonlyMat4,
  fileName: string,
  extra: Record<string, unknown> = {},
): string {
  const lower = fileName.toLowerCase();
  if (lower.endsWith('.tfm') || lower.endsWith('.txt')) return transformToTfm(movingToFixed);
  if (lower.endsWith('.json')) return transformToJson(movingToFixed, extra);
  throw new UsageError('transform file name must end in .json, .tfm or .txt', fileName);
}
