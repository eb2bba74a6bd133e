/**
 * Isocentric C-arm geometry: angles, source and detector placement, 3x4 projection matrices.
 *
 * The angle convention is docs/conventions.md, "C-arm angles" (DICOM Positioner Primary/Secondary Angle,
 * supine head-first patient), restated only as formulas here:
 *   d = (sin a cos b, -cos a cos b, sin b)  unit vector isocentre -> detector, LPS
 *   R = Rz(a) * Rx(-b),  u = R (1,0,0) (increasing column),  v = R (0,0,-1) (increasing row)
 *   source = isocentre - SOD d,  detector centre = source + SID d
 * Pixels are (column, row) with (0, 0) at the centre of the first pixel; the principal point (foot of
 * the perpendicular from the source) is the detector centre, pixel ((columns-1)/2, (rows-1)/2).
 */
import { CorridorError } from '../errors.js';
import type { Point3 } from '../math/vec3.js';

/** Geometry that a C-arm cannot take or a request that makes no sense for one (bad distances, angles). */
export class CarmError extends CorridorError {
  override readonly name: string = 'CarmError';
}

const DEG = Math.PI / 180;

/** A C-arm model: fixed distances, detector and mechanical limits. Figures in mm and degrees. */
export interface CarmSystem {
  /** Preset key, e.g. "artis-zee-floor". */
  id: string;
  /** Human-readable name. */
  name: string;
  /** Source (focal spot) to isocentre distance, mm (DICOM Distance Source to Patient). */
  sodMm: number;
  /** Default source to detector-centre distance, mm (DICOM Distance Source to Detector). */
  sidMm: number;
  /** Range the detector can travel along the central ray, mm. */
  sidRangeMm: [number, number];
  /** Native detector pixels across (columns) and down (rows). */
  detectorColumns: number;
  detectorRows: number;
  /** Native pixel pitch at the detector surface, mm (square pixels). */
  pixelPitchMm: number;
  /** Primary angle limits (RAO negative, LAO positive), degrees. */
  primaryLimitsDeg: [number, number];
  /** Secondary angle limits (caudal negative, cranial positive), degrees. */
  secondaryLimitsDeg: [number, number];
  /** Usual tube voltage for pelvic fluoroscopy, kV. */
  kvp: number;
  /** Where the figures come from and how sure they are. */
  notes: string;
}

/**
 * Presets. The figures are nominal values from manufacturers' public data sheets for the common
 * configuration (a specific installation may differ: every field can be overridden).
 *
 * The entries share their shape on purpose (`duplicates` lists them as a same-shape run): they are data,
 * one named field a line with its unit in the name, so that each figure can be checked against its data
 * sheet. A constructor taking the figures in order would remove the repetition and bring back the bare
 * positional numbers that conventions warn against.
 */
export const CARM_PRESETS: Readonly<Record<string, CarmSystem>> = {
  'artis-zee-floor': {
    id: 'artis-zee-floor',
    name: 'Siemens Artis zee floor-mounted, 30 x 40 cm flat detector',
    sodMm: 785,
    sidMm: 1200,
    sidRangeMm: [900, 1200],
    detectorColumns: 1920,
    detectorRows: 2480,
    pixelPitchMm: 0.154,
    primaryLimitsDeg: [-120, 120],
    secondaryLimitsDeg: [-55, 55],
    kvp: 75,
    notes:
      'nominal data-sheet figures: focus-isocentre 785 mm, SID 90-120 cm, 30x40 cm a-Si detector at 154 um; ' +
      'angulation limits at the head-end position with the table',
  },
  'cios-spin': {
    id: 'cios-spin',
    name: 'Siemens Cios Spin mobile C-arm, 30 x 30 cm flat detector',
    sodMm: 624,
    sidMm: 1164,
    sidRangeMm: [1164, 1164],
    detectorColumns: 1536,
    detectorRows: 1536,
    pixelPitchMm: 0.194,
    primaryLimitsDeg: [-95, 95],
    secondaryLimitsDeg: [-90, 90],
    kvp: 75,
    notes:
      'nominal data-sheet figures: SID 116.4 cm fixed, 30x30 cm CMOS detector; ' +
      'orbital range +-95 deg mapped to the primary angle, angulation to the secondary',
  },
  'generic-mobile-ii': {
    id: 'generic-mobile-ii',
    name: 'Generic mobile C-arm with a 9-inch image intensifier',
    sodMm: 650,
    sidMm: 1000,
    sidRangeMm: [1000, 1000],
    detectorColumns: 1024,
    detectorRows: 1024,
    pixelPitchMm: 0.225,
    primaryLimitsDeg: [-90, 90],
    secondaryLimitsDeg: [-90, 90],
    kvp: 70,
    notes:
      'typical figures of 9-inch image-intensifier mobile C-arms (SID about 100 cm, 23 cm field); no specific product',
  },
};

export const DEFAULT_CARM_PRESET = 'artis-zee-floor';

/** A preset by key, with optional overrides; throws CarmError naming the known keys. */
export function carmPreset(id: string, overrides: Partial<Omit<CarmSystem, 'id'>> = {}): CarmSystem {
  const base = CARM_PRESETS[id];
  if (!base) throw new CarmError(`unknown C-arm preset "${id}" (have ${Object.keys(CARM_PRESETS).join(', ')})`);
  const s: CarmSystem = {
    ...base,
    ...overrides,
    sidRangeMm: [...(overrides.sidRangeMm ?? base.sidRangeMm)] as [number, number],
    primaryLimitsDeg: [...(overrides.primaryLimitsDeg ?? base.primaryLimitsDeg)] as [number, number],
    secondaryLimitsDeg: [...(overrides.secondaryLimitsDeg ?? base.secondaryLimitsDeg)] as [number, number],
  };
  validateSystem(s);
  return s;
}

export function validateSystem(s: CarmSystem): void {
  const bad = (what: string) => {
    throw new CarmError(what, `C-arm "${s.id}"`);
  };
  if (!(s.sodMm > 0)) bad(`sodMm must be positive (got ${s.sodMm})`);
  if (!(s.sidMm > s.sodMm)) bad(`sidMm (${s.sidMm}) must exceed sodMm (${s.sodMm})`);
  if (!(
    Number.isInteger(s.detectorColumns) &&
    s.detectorColumns > 0 &&
    Number.isInteger(s.detectorRows) &&
    s.detectorRows > 0
  )) {
    bad('detector columns and rows must be positive integers');
  }
  if (!(s.pixelPitchMm > 0)) bad('pixelPitchMm must be positive');
  for (const [n, l] of [
    ['primary', s.primaryLimitsDeg],
    ['secondary', s.secondaryLimitsDeg],
  ] as const) {
    if (!(l.length === 2 && l[0] <= l[1] && l[0] >= -180 && l[1] <= 180))
      bad(`${n} limits must be [min, max] within -180..180`);
  }
}

/**
 * Everything that fixes one projection. Pixel spacings are named per axis (no ordered pair): DICOM's
 * Imager Pixel Spacing is [row spacing, column spacing], i.e. [rowSpacingMm, columnSpacingMm].
 */
export interface CarmGeometry {
  /** Source to detector-centre distance, mm. */
  sidMm: number;
  /** Source to isocentre distance, mm. */
  sodMm: number;
  /** Image size in pixels. */
  columns: number;
  rows: number;
  /** Distance between neighbouring columns (along u) and rows (along v) at the detector, mm. */
  columnSpacingMm: number;
  rowSpacingMm: number;
  /** Positioner primary angle (LAO +) and secondary angle (cranial +), degrees. */
  primaryDeg: number;
  secondaryDeg: number;
  /** The isocentre in patient LPS mm (the table position: the patient point brought to the isocentre). */
  isocenter: Point3;
}

export interface DetectorOptions {
  /** Pixels combined per output pixel along each axis (1, 2, 4). Default 1. */
  binning?: number;
  /** Image width in pixels: resamples the whole detector width to this many columns (rows follow at square pixels). */
  size?: number;
  /** Zoom: the side of the field of view used, mm at the detector (the centre of the detector is kept). */
  fieldMm?: number;
  /** Source to detector distance, mm; default the system's. */
  sidMm?: number;
}

/** Geometry for a system, a pose and a detector mode. */
export function carmGeometry(
  system: CarmSystem,
  pose: { primaryDeg: number; secondaryDeg: number; isocenter: Point3 },
  opts: DetectorOptions = {},
): CarmGeometry {
  validateSystem(system);
  let widthMm = system.detectorColumns * system.pixelPitchMm;
  let heightMm = system.detectorRows * system.pixelPitchMm;
  if (opts.fieldMm !== undefined) {
    if (!(opts.fieldMm > 0)) throw new CarmError(`fieldMm must be positive (got ${opts.fieldMm})`);
    widthMm = Math.min(widthMm, opts.fieldMm);
    heightMm = Math.min(heightMm, opts.fieldMm);
  }
  let pitch = system.pixelPitchMm * (opts.binning ?? 1);
  if (opts.binning !== undefined && !(Number.isInteger(opts.binning) && opts.binning >= 1)) {
    throw new CarmError(`binning must be a positive integer (got ${opts.binning})`);
  }
  if (opts.size !== undefined) {
    if (!(Number.isInteger(opts.size) && opts.size >= 2 && opts.size <= 8192))
      throw new CarmError(`size must be an integer 2..8192 (got ${opts.size})`);
    pitch = widthMm / opts.size;
  }
  const columns = Math.max(1, Math.round(widthMm / pitch));
  const rows = Math.max(1, Math.round(heightMm / pitch));
  const g: CarmGeometry = {
    sidMm: opts.sidMm ?? system.sidMm,
    sodMm: system.sodMm,
    columns,
    rows,
    columnSpacingMm: pitch,
    rowSpacingMm: pitch,
    primaryDeg: pose.primaryDeg,
    secondaryDeg: pose.secondaryDeg,
    isocenter: [pose.isocenter[0], pose.isocenter[1], pose.isocenter[2]],
  };
  validateGeometry(g);
  return g;
}

export function validateGeometry(g: CarmGeometry, source?: string): void {
  const bad = (what: string) => {
    throw new CarmError(what, source);
  };
  if (!(g.sodMm > 0 && Number.isFinite(g.sodMm))) bad(`source to isocentre distance must be positive (got ${g.sodMm})`);
  if (!(g.sidMm > g.sodMm && Number.isFinite(g.sidMm)))
    bad(`source to detector distance (${g.sidMm}) must exceed source to isocentre (${g.sodMm})`);
  if (!(Number.isInteger(g.columns) && g.columns > 0 && Number.isInteger(g.rows) && g.rows > 0))
    bad(`image size ${g.columns} x ${g.rows} is not positive integers`);
  if (!(g.columnSpacingMm > 0 && g.rowSpacingMm > 0)) bad('pixel spacings must be positive');
  if (!Number.isFinite(g.primaryDeg) || !Number.isFinite(g.secondaryDeg)) bad('angles must be finite');
  if (!(Math.abs(g.secondaryDeg) <= 90)) bad(`secondary angle ${g.secondaryDeg} is outside -90..90 degrees`);
  if (!g.isocenter.every(Number.isFinite)) bad('isocentre must be three finite numbers');
}

/** Unit vector from the isocentre toward the detector for the given angles (degrees). */
export function detectorDirection(primaryDeg: number, secondaryDeg: number): Point3 {
  const a = primaryDeg * DEG,
    b = secondaryDeg * DEG;
  return [Math.sin(a) * Math.cos(b), -Math.cos(a) * Math.cos(b), Math.sin(b)];
}

/**
 * Angles whose detector direction is d (need not be unit). Secondary in -90..90, primary in (-180, 180].
 * Looking straight up or down the long axis (cos b = 0) the primary angle is free; 0 is returned.
 */
export function anglesForDetectorDirection(d: ArrayLike<number>): { primaryDeg: number; secondaryDeg: number } {
  const n = Math.hypot(d[0], d[1], d[2]);
  if (!(n > 0)) throw new CarmError('detector direction is the zero vector');
  const z = Math.max(-1, Math.min(1, d[2] / n));
  const secondaryDeg = Math.asin(z) / DEG;
  const horiz = Math.hypot(d[0], d[1]) / n;
  const primaryDeg = horiz < 1e-12 ? 0 : Math.atan2(d[0], -d[1]) / DEG;
  return { primaryDeg: primaryDeg === -180 ? 180 : primaryDeg, secondaryDeg };
}

/** Source, detector and the detector's axes in patient space for a geometry. */
export interface CarmFrame {
  /** Focal spot, LPS mm. */
  source: Point3;
  /** Detector centre, LPS mm (the principal point). */
  detectorCenter: Point3;
  /** Unit vectors: increasing column (u), increasing row (v), isocentre to detector (d). */
  u: Point3;
  v: Point3;
  d: Point3;
  /** Principal point in pixels ((columns-1)/2, (rows-1)/2). */
  principalPoint: [number, number];
  /** SID / SOD: the magnification of an object at the isocentre. */
  magnification: number;
}

export function carmFrame(g: CarmGeometry): CarmFrame {
  validateGeometry(g);
  const a = g.primaryDeg * DEG,
    b = g.secondaryDeg * DEG;
  const ca = Math.cos(a),
    sa = Math.sin(a),
    cb = Math.cos(b),
    sb = Math.sin(b);
  // Columns of R = Rz(a) Rx(-b): R e_x, R e_y, R e_z.
  const u: Point3 = [ca, sa, 0];
  const d: Point3 = [sa * cb, -ca * cb, sb]; // R (0,-1,0)
  const v: Point3 = [sa * sb, -ca * sb, -cb]; // R (0,0,-1)
  const iso = g.isocenter;
  const source: Point3 = [iso[0] - g.sodMm * d[0], iso[1] - g.sodMm * d[1], iso[2] - g.sodMm * d[2]];
  const detectorCenter: Point3 = [source[0] + g.sidMm * d[0], source[1] + g.sidMm * d[1], source[2] + g.sidMm * d[2]];
  return {
    source,
    detectorCenter,
    u,
    v,
    d,
    principalPoint: [(g.columns - 1) / 2, (g.rows - 1) / 2],
    magnification: g.sidMm / g.sodMm,
  };
}

/** 3x4 projection matrix, row-major Float64Array(12): (x, y, z, 1) LPS mm -> homogeneous (column, row, 1). */
export type Mat34 = Float64Array;

/**
 * P = K [ u^T; v^T; d^T ] [ I | -source ], K = [[SID/Δc, 0, c0], [0, SID/Δr, r0], [0, 0, 1]].
 * The third homogeneous coordinate is the depth of the point along the central ray from the source (mm),
 * positive in front of the source.
 */
export function projectionMatrix(g: CarmGeometry): Mat34 {
  const f = carmFrame(g);
  const fu = g.sidMm / g.columnSpacingMm,
    fv = g.sidMm / g.rowSpacingMm;
  const [c0, r0] = f.principalPoint;
  const P = new Float64Array(12);
  const rowsE = [f.u, f.v, f.d];
  const s = f.source;
  const E = new Float64Array(12);
  for (let r = 0; r < 3; r++) {
    const a = rowsE[r];
    E[r * 4] = a[0];
    E[r * 4 + 1] = a[1];
    E[r * 4 + 2] = a[2];
    E[r * 4 + 3] = -(a[0] * s[0] + a[1] * s[1] + a[2] * s[2]);
  }
  for (let c = 0; c < 4; c++) {
    P[c] = fu * E[c] + c0 * E[8 + c];
    P[4 + c] = fv * E[4 + c] + r0 * E[8 + c];
    P[8 + c] = E[8 + c];
  }
  return P;
}

/** Projects an LPS point to (column, row); NaNs when the point is at or behind the source plane. */
export function projectPoint(
  P: Mat34,
  p: ArrayLike<number>,
  out: number[] | Float64Array = [0, 0],
): number[] | Float64Array {
  const x = p[0],
    y = p[1],
    z = p[2];
  const w = P[8] * x + P[9] * y + P[10] * z + P[11];
  if (!(w > 0)) {
    out[0] = NaN;
    out[1] = NaN;
    return out;
  }
  out[0] = (P[0] * x + P[1] * y + P[2] * z + P[3]) / w;
  out[1] = (P[4] * x + P[5] * y + P[6] * z + P[7]) / w;
  return out;
}

/** Nested row-major array, for JSON. */
export function mat34ToRows(P: Mat34): number[][] {
  return [0, 1, 2].map((r) => [P[r * 4], P[r * 4 + 1], P[r * 4 + 2], P[r * 4 + 3]]);
}

/** Largest absolute difference between two projection matrices after scaling each so that |row 3 (x,y,z)| = 1. */
export function mat34MaxAbsDiff(a: Mat34, b: Mat34): number {
  const na = Math.hypot(a[8], a[9], a[10]),
    nb = Math.hypot(b[8], b[9], b[10]);
  let m = 0;
  for (let i = 0; i < 12; i++) m = Math.max(m, Math.abs(a[i] / na - b[i] / nb));
  return m;
}

/** Point on the detector (LPS mm) of pixel (column, row). */
export function pixelToPatient(g: CarmGeometry, f: CarmFrame, col: number, row: number): Point3 {
  const x = (col - f.principalPoint[0]) * g.columnSpacingMm,
    y = (row - f.principalPoint[1]) * g.rowSpacingMm;
  const c = f.detectorCenter;
  return [c[0] + x * f.u[0] + y * f.v[0], c[1] + x * f.u[1] + y * f.v[1], c[2] + x * f.u[2] + y * f.v[2]];
}

/** Magnification of a point: SID over its depth along the central ray from the source. */
export function magnificationAt(g: CarmGeometry, f: CarmFrame, p: ArrayLike<number>): number {
  const depth = (p[0] - f.source[0]) * f.d[0] + (p[1] - f.source[1]) * f.d[1] + (p[2] - f.source[2]) * f.d[2];
  return g.sidMm / depth;
}

/** Whether angles lie within a system's limits (inclusive, with 1e-9 degree slack). */
export function anglesReachable(system: CarmSystem, primaryDeg: number, secondaryDeg: number): boolean {
  const e = 1e-9;
  const [p0, p1] = system.primaryLimitsDeg,
    [s0, s1] = system.secondaryLimitsDeg;
  return primaryDeg >= p0 - e && primaryDeg <= p1 + e && secondaryDeg >= s0 - e && secondaryDeg <= s1 + e;
}
