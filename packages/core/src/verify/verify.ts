/**
 * verifyPlacement: the one entry point of placement verification (CLI `corridor verify`, later the
 * workstation and the server). Finds the metal instruments of a verification scan (metal.ts), brings
 * them into the plan's frame, matches each to a planned path, measures its deviation, follows it through
 * the labels (along.ts) and gives each path a verdict against the tolerance.
 *
 * Definitions (mm and degrees, LPS of the plan's frame; u = unit vector from the planned entry E to the
 * planned target T; the instrument's axis runs from its outer end to its tip, direction v, v . u > 0):
 * - entryAt: where the instrument's axis crosses the plane through E perpendicular to u;
 *   entryOffsetMm = |entryAt - E| (the sideways miss at the entry).
 * - tipOffsetMm = |tip - T|; depthDifferenceMm = (tip - T) . u (positive: deeper than planned);
 *   lateralAtTargetMm = the part of tip - T across u (so tipOffset^2 = depth^2 + lateral^2).
 * - angleDeg: between v and u.
 * - Matching: a path and an instrument may pair when the instrument's axis passes within
 *   MATCH_MAX_DISTANCE_MM of both E and T and lies within MATCH_MAX_ANGLE_DEG of u; pairs are taken
 *   greedily by the mean of those two distances (smallest first), each path and instrument once. The
 *   instrument's tip is its end farther along u.
 * - A path passes when it has an instrument, entryOffsetMm and tipOffsetMm are at most the tolerance in
 *   mm, angleDeg at most the tolerance in degrees, and the instrument neither enters a critical
 *   structure nor leaves the bone (when labels or a bone mask are given). Each failure says why.
 * - Instruments matched to no path are reported as unplanned, paths with no instrument as missing
 *   (failed): neither is ignored. An unplanned instrument's tip is its end nearer the body's centroid.
 */
import { RIGID_TOLERANCE, rigidityError } from '../register/rigid-transform.js';
import { CancelledError, GeometryError, UsageError } from '../errors.js';
import { mat4Invert, mat4TransformDirection, mat4TransformPoint, mat4ToRows, type ReadonlyMat4 } from '../math/mat4.js';
import type { Point3 } from '../math/vec3.js';
import { VERIFY_TOLERANCE_DEG, VERIFY_TOLERANCE_MM } from '../plan/clinical.js';
import type { PlanPath } from '../plan/model.js';
import type { Volume } from '../volume/volume.js';
import type { ForaminaSource } from './foramina.js';
import { structuresAlong, type BoneRun, type StructureHit, type VerifyAnatomy } from './along.js';
import type { ScanRegistrationSummary } from './register-scan.js';
import { detectInstruments, type DetectedInstrument, type MetalOptions, type MetalResult } from './metal.js';

export const VERIFICATION_SCHEMA_VERSION = 1;
/** Farthest (mm) a path's entry or target may lie from an instrument's axis for the two to be matched. */
export const MATCH_MAX_DISTANCE_MM = 20;
/** Largest angle (deg) between a path and an instrument for the two to be matched. */
export const MATCH_MAX_ANGLE_DEG = 15;
/**
 * Least threaded bone (mm along the axis) on each side of a fracture for the thread to count as
 * crossing it: one turn of a 7.3 mm cancellous screw's thread (pitch about 2.75 mm).
 */
export const THREAD_MIN_PURCHASE_MM = 2.75;

export interface VerifyTolerance {
  mm: number;
  deg: number;
}

export interface VerifyOptions {
  /** How the labels' foramina were had (findForamina's foraminaSourceOf); default 'labels' with labels. */
  foramina?: ForaminaSource;
  /** Default VERIFY_TOLERANCE_MM and VERIFY_TOLERANCE_DEG (plan/clinical.ts). */
  tolerance?: Partial<VerifyTolerance>;
  /**
   * Rigid transform from the scan's LPS to the plan's (movingToFixed with the scan moving), e.g. from a
   * registration. Default: the scan lies in the plan's frame.
   */
  scanToPlan?: ReadonlyMat4;
  /**
   * Labels to follow each instrument through, with which labels are which. `frame`: the frame their
   * indexToPatient lies in, default 'plan' (a segmentation of the planning CT); 'scan' for labels of the
   * verification scan itself (reached through the inverse of scanToPlan).
   */
  labels?: { volume: Volume; anatomy: VerifyAnatomy; frame?: 'plan' | 'scan' };
  /** Without labels: a bone mask (nonzero = bone) to tell bone exits; `frame` default 'scan' (made from it). */
  boneMask?: { volume: Volume; frame?: 'plan' | 'scan' };
  metal?: MetalOptions;
  /**
   * Fracture lines (planes in the plan's frame: a point on each and its normal), for the screws' check:
   * whether each screw's thread crosses each fracture with bone on both sides. The phantom's truth.json
   * `fractures` give them (pointOnCleft, normal).
   */
  fractures?: readonly FracturePlane[];
  /**
   * Threaded length of the screws (mm from the tip), one for all or per path id; a screw without one is
   * taken as fully threaded.
   */
  threadLengthMm?: number | Readonly<Record<string, number>>;
  /** How scanToPlan was found, when by registration (registerScanToReference): carried into the report. */
  registration?: ScanRegistrationSummary;
  signal?: AbortSignal;
}

export interface InstrumentReport {
  id: string;
  /** Outer end and tip of the metal core, LPS mm in the plan's frame (for an unplanned instrument, the
   * tip is the end nearer the centroid of the body: instruments go in from the skin). */
  outerEnd: Point3;
  tip: Point3;
  /** Unit vector from outerEnd to tip. */
  direction: Point3;
  lengthMm: number;
  apparentDiameterMm: number;
  coreHu: number;
  fitRmsMm: number;
  /** What it passes through (empty without labels or a bone mask). */
  structures: StructureHit[];
}

export interface PathDeviation {
  entryAt: Point3;
  entryOffsetMm: number;
  tipOffsetMm: number;
  angleDeg: number;
  depthDifferenceMm: number;
  lateralAtTargetMm: number;
}

export interface FracturePlane {
  name: string;
  point: Point3;
  normal: Point3;
}

/** One fracture line against one screw (mm along the screw's axis, back from its tip). */
export interface ScrewFracture {
  name: string;
  /** The axis meets the fracture plane between the outer end and the tip. */
  crossed: boolean;
  /** Where (LPS mm) and how far back from the tip; null when not crossed. */
  at: Point3 | null;
  fromTipMm: number | null;
  /** Bone along the axis on the tip's side of the fracture and on the outer side (whole screw). */
  boneTipSideMm: number;
  boneOuterSideMm: number;
  /** The same within the threaded part only. */
  threadTipSideMm: number;
  threadOuterSideMm: number;
  /** The thread holds bone on both sides of the fracture: each side at least THREAD_MIN_PURCHASE_MM. */
  threadCrosses: boolean;
}

export interface ScrewReport {
  /** Metal length found (mm). */
  lengthMm: number;
  /** Length of the axis in bone (mm); null without labels or a bone mask. */
  lengthInBoneMm: number | null;
  threadLengthMm: number;
  threadLengthFrom: 'given' | 'fully threaded (none given)';
  fractures: ScrewFracture[];
  /** Every fracture line given is crossed by the thread with bone on both sides (false with none given). */
  threadCrossesAll: boolean;
}

export interface PathVerification {
  pathId: string;
  name: string;
  kind: PlanPath['kind'];
  diameterMm: number;
  status: 'pass' | 'fail' | 'missing';
  instrument: InstrumentReport | null;
  deviation: PathDeviation | null;
  /** Why it failed (empty when it passed). */
  reasons: string[];
  /** For a screw with an instrument: its length in bone and the fracture lines it crosses; else null. */
  screw: ScrewReport | null;
}

export interface VerificationReport {
  schemaVersion: number;
  kind: 'corridor-verification';
  tolerance: VerifyTolerance;
  /** The scan-to-plan transform applied (row-major rows), or null: the scan lay in the plan's frame. */
  scanToPlan: number[][] | null;
  /** The registration that found scanToPlan (its time apart from the verification's), or null. */
  registration: ScanRegistrationSummary | null;
  /** How the anatomy along each instrument was judged. */
  structureSource: 'labels' | 'bone-mask' | 'none';
  /** Where the foramina came from: labels, the image (with how), or none. */
  foramina: ForaminaSource;
  metal: { thresholdHu: number; growHu: number; rejected: MetalResult['rejected'] };
  paths: PathVerification[];
  unplanned: InstrumentReport[];
  /** Every path passed (unplanned instruments are reported, not failed). */
  allPass: boolean;
  notes: string[];
}

const DEG = 180 / Math.PI;

/** The same rigidity rule as the registration's transforms (one tolerance, in register/). */
function checkRigid(m: ReadonlyMat4): void {
  if (m[12] !== 0 || m[13] !== 0 || m[14] !== 0 || m[15] !== 1)
    throw new GeometryError('scanToPlan bottom row must be 0 0 0 1', 'transform');
  const err = rigidityError(m);
  if (!(err <= RIGID_TOLERANCE))
    throw new GeometryError(
      `scanToPlan is not a rigid transform (its 3x3 part is off a rotation by ${err.toExponential(2)})`,
      'transform',
    );
}

const sub = (a: ArrayLike<number>, b: ArrayLike<number>): Point3 => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const norm = (a: ArrayLike<number>) => Math.hypot(a[0], a[1], a[2]);

function distToLine(p: Point3, o: Point3, v: Point3): number {
  const d = sub(p, o);
  const t = dot(d, v);
  return Math.hypot(d[0] - t * v[0], d[1] - t * v[1], d[2] - t * v[2]);
}

/** An instrument in the plan's frame: its ends and direction. */
interface Placed {
  det: DetectedInstrument;
  ends: [Point3, Point3];
  v: Point3;
}

/** Body tissue for bodyCentre: above this (HU), not air nor the table's foam. */
const BODY_HU = -300;

/** Centroid of the body (voxels above BODY_HU, every 4th along each axis), in the plan's frame. */
function bodyCentre(scan: Volume, scanToPlan: ReadonlyMat4 | null): Point3 {
  const [nx, ny, nz] = scan.dims;
  const d = scan.data;
  let n = 0,
    si = 0,
    sj = 0,
    sk = 0;
  for (let k = 0; k < nz; k += 4)
    for (let j = 0; j < ny; j += 4)
      for (let i = 0, o = nx * (j + ny * k); i < nx; i += 4, o += 4) {
        if (d[o] > BODY_HU) {
          n++;
          si += i;
          sj += j;
          sk += k;
        }
      }
  const idx: Point3 = n ? [si / n, sj / n, sk / n] : [(nx - 1) / 2, (ny - 1) / 2, (nz - 1) / 2];
  const p: Point3 = [0, 0, 0];
  mat4TransformPoint(p, scan.indexToPatient, idx);
  if (scanToPlan) mat4TransformPoint(p, scanToPlan, [...p]);
  return p;
}

/** Deviation of an instrument (outer end -> tip, unit direction v) from a planned path. */
export function pathDeviation(path: Pick<PlanPath, 'entry' | 'target'>, tip: Point3, v: Point3): PathDeviation {
  const E = path.entry,
    T = path.target;
  const len = norm(sub(T, E));
  const u: Point3 = [(T[0] - E[0]) / len, (T[1] - E[1]) / len, (T[2] - E[2]) / len];
  const vu = dot(v, u);
  const s = dot(sub(E, tip), u) / vu;
  const entryAt: Point3 = [tip[0] + s * v[0], tip[1] + s * v[1], tip[2] + s * v[2]];
  const dT = sub(tip, T);
  const depth = dot(dT, u);
  return {
    entryAt,
    entryOffsetMm: norm(sub(entryAt, E)),
    tipOffsetMm: norm(dT),
    angleDeg: Math.acos(Math.min(1, Math.max(-1, vu))) * DEG,
    depthDifferenceMm: depth,
    lateralAtTargetMm: Math.hypot(dT[0] - depth * u[0], dT[1] - depth * u[1], dT[2] - depth * u[2]),
  };
}

function threadLengthOf(t: VerifyOptions['threadLengthMm'], id: string): number | undefined {
  const v = typeof t === 'number' ? t : t?.[id];
  if (v === undefined) return undefined;
  if (!(v > 0 && Number.isFinite(v))) throw new UsageError(`thread length ${v} mm of ${id} must be above 0`);
  return v;
}

/** Length of the bone runs within [a, b] mm back from the tip. */
function boneWithin(runs: readonly BoneRun[], a: number, b: number): number {
  let sum = 0;
  for (const r of runs) sum += Math.max(0, Math.min(b, r.fromTipMm) - Math.max(a, r.toTipMm));
  return sum;
}

/**
 * A screw against the fracture lines: where its axis (outer -> tip) crosses each plane, and the bone
 * (from the axis's bone runs; the metal itself when there are none) on each side, in the whole screw
 * and in its threaded part (the last `thread` mm, default the whole length).
 */
export function screwReport(
  outer: Point3,
  tip: Point3,
  runs: readonly BoneRun[] | null,
  fractures: readonly FracturePlane[],
  thread: number | undefined,
): ScrewReport {
  const L = norm(sub(tip, outer));
  const u: Point3 = [(tip[0] - outer[0]) / L, (tip[1] - outer[1]) / L, (tip[2] - outer[2]) / L];
  const bone = runs ?? [{ fromTipMm: L, toTipMm: 0 }];
  const th = Math.min(L, thread ?? L);
  const out: ScrewFracture[] = fractures.map((f) => {
    const n = f.normal,
      ln = norm(n);
    const nu = dot(n, u) / ln;
    // Signed distance of the tip and of the outer end from the plane.
    const dTip = dot(sub(tip, f.point), n) / ln;
    const dOut = dot(sub(outer, f.point), n) / ln;
    const crossed = Math.abs(nu) > 1e-9 && dTip * dOut < 0;
    if (!crossed)
      return {
        name: f.name,
        crossed: false,
        at: null,
        fromTipMm: null,
        boneTipSideMm: 0,
        boneOuterSideMm: 0,
        threadTipSideMm: 0,
        threadOuterSideMm: 0,
        threadCrosses: false,
      };
    const back = dTip / nu; // mm back from the tip along -u to the plane
    const at: Point3 = [tip[0] - back * u[0], tip[1] - back * u[1], tip[2] - back * u[2]];
    const tts = boneWithin(bone, 0, Math.min(back, th)),
      tos = boneWithin(bone, back, Math.max(back, th));
    return {
      name: f.name,
      crossed: true,
      at,
      fromTipMm: back,
      boneTipSideMm: boneWithin(bone, 0, back),
      boneOuterSideMm: boneWithin(bone, back, L),
      threadTipSideMm: tts,
      threadOuterSideMm: tos,
      threadCrosses: tts >= THREAD_MIN_PURCHASE_MM && tos >= THREAD_MIN_PURCHASE_MM,
    };
  });
  return {
    lengthMm: L,
    lengthInBoneMm: runs ? boneWithin(runs, 0, L) : null,
    threadLengthMm: th,
    threadLengthFrom: thread === undefined ? 'fully threaded (none given)' : 'given',
    fractures: out,
    threadCrossesAll: out.length > 0 && out.every((f) => f.threadCrosses),
  };
}

/** Verify placed instruments in `scan` against `paths` (see the module comment). */
export function verifyPlacement(
  paths: readonly PlanPath[],
  scan: Volume,
  options: VerifyOptions = {},
): VerificationReport {
  const tol: VerifyTolerance = {
    mm: options.tolerance?.mm ?? VERIFY_TOLERANCE_MM,
    deg: options.tolerance?.deg ?? VERIFY_TOLERANCE_DEG,
  };
  if (!(tol.mm > 0 && tol.deg > 0)) throw new UsageError(`tolerance ${tol.mm} mm, ${tol.deg} deg must be above 0`);
  const scanToPlan = options.scanToPlan ?? null;
  let planToScan: ReadonlyMat4 | undefined;
  if (scanToPlan) {
    checkRigid(scanToPlan);
    const inv = mat4Invert(new Float64Array(16), scanToPlan);
    if (!inv) throw new GeometryError('scanToPlan cannot be inverted', 'transform');
    planToScan = inv;
  }
  const notes: string[] = [];
  const metal = detectInstruments(scan, options.metal);
  if (options.signal?.aborted) throw new CancelledError('verification was cancelled');
  const placed: Placed[] = metal.instruments.map((det) => {
    const e0: Point3 = [...det.ends[0]],
      e1: Point3 = [...det.ends[1]],
      v: Point3 = [...det.direction];
    if (scanToPlan) {
      mat4TransformPoint(e0, scanToPlan, det.ends[0]);
      mat4TransformPoint(e1, scanToPlan, det.ends[1]);
      mat4TransformDirection(v, scanToPlan, det.direction);
    }
    return { det, ends: [e0, e1], v };
  });

  // Structure source, in the plan's frame.
  let structureSource: VerificationReport['structureSource'] = 'none';
  let along: ((outer: Point3, tip: Point3, radiusMm: number) => { hits: StructureHit[]; boneRuns: BoneRun[] }) | null =
    null;
  if (options.labels || options.boneMask) {
    const lab = options.labels;
    const mask = options.boneMask;
    const vol = lab ? lab.volume : (mask as NonNullable<typeof mask>).volume;
    const frame = (lab ? lab.frame : mask?.frame) ?? (lab ? 'plan' : 'scan');
    const src = { volume: vol, anatomy: lab?.anatomy, planToVolume: frame === 'scan' ? planToScan : undefined };
    structureSource = lab ? 'labels' : 'bone-mask';
    along = (outer, tip, r) => structuresAlong(src, outer, tip, r);
    if (!lab) notes.push('no labels: bone exits from the bone mask; canal and foramina not checked');
  } else notes.push('no labels or bone mask: canal, foramina and bone exits not checked');
  if (options.labels && options.foramina?.source === 'image')
    notes.push('foramina found in the image (no labels): canal and bone exits not checked');
  for (const w of options.foramina?.warnings ?? []) notes.push(`foramina: ${w}`);

  // Matching: candidate pairs by cost, taken greedily.
  const pairs: { p: number; i: number; cost: number }[] = [];
  paths.forEach((path, p) => {
    const E = path.entry,
      T = path.target;
    const len = norm(sub(T, E));
    const u: Point3 = [(T[0] - E[0]) / len, (T[1] - E[1]) / len, (T[2] - E[2]) / len];
    placed.forEach((ins, i) => {
      const ang = Math.acos(Math.min(1, Math.abs(dot(u, ins.v)))) * DEG;
      const dE = distToLine(E, ins.ends[0], ins.v),
        dT = distToLine(T, ins.ends[0], ins.v);
      if (ang <= MATCH_MAX_ANGLE_DEG && dE <= MATCH_MAX_DISTANCE_MM && dT <= MATCH_MAX_DISTANCE_MM)
        pairs.push({ p, i, cost: (dE + dT) / 2 });
    });
  });
  pairs.sort((a, b) => a.cost - b.cost || a.p - b.p || a.i - b.i);
  const pathOf = new Int32Array(placed.length).fill(-1);
  const insOf = new Int32Array(paths.length).fill(-1);
  for (const { p, i } of pairs) {
    if (pathOf[i] >= 0 || insOf[p] >= 0) continue;
    pathOf[i] = p;
    insOf[p] = i;
  }

  const report = (
    ins: Placed,
    outer: Point3,
    tip: Point3,
    radiusMm: number,
  ): InstrumentReport & { runs: BoneRun[] | null } => {
    const d = sub(tip, outer);
    const a = along ? along(outer, tip, radiusMm) : null;
    const l = norm(d);
    if (options.signal?.aborted) throw new CancelledError('verification was cancelled');
    return {
      id: ins.det.id,
      outerEnd: outer,
      tip,
      direction: [d[0] / l, d[1] / l, d[2] / l],
      lengthMm: ins.det.lengthMm,
      apparentDiameterMm: ins.det.apparentDiameterMm,
      coreHu: ins.det.coreHu,
      fitRmsMm: ins.det.fitRmsMm,
      structures: a ? a.hits : [],
      runs: a ? a.boneRuns : null,
    };
  };

  const results: PathVerification[] = paths.map((path, p) => {
    const base = { pathId: path.id, name: path.name, kind: path.kind, diameterMm: path.diameterMm };
    const i = insOf[p];
    if (i < 0) {
      return {
        ...base,
        status: 'missing',
        instrument: null,
        deviation: null,
        reasons: ['no instrument found'],
        screw: null,
      };
    }
    const ins = placed[i];
    const u = sub(path.target, path.entry);
    const forward = dot(ins.v, u) >= 0;
    const [outer, tip] = forward ? ins.ends : [ins.ends[1], ins.ends[0]];
    const v: Point3 = forward ? ins.v : [-ins.v[0], -ins.v[1], -ins.v[2]];
    const deviation = pathDeviation(path, tip, v);
    const { runs, ...instrument } = report(ins, outer, tip, path.diameterMm / 2);
    const screw =
      path.kind === 'screw'
        ? screwReport(outer, tip, runs, options.fractures ?? [], threadLengthOf(options.threadLengthMm, path.id))
        : null;
    const reasons: string[] = [];
    const f = (x: number) => x.toFixed(1);
    if (deviation.entryOffsetMm > tol.mm)
      reasons.push(`entry ${f(deviation.entryOffsetMm)} mm off (tolerance ${tol.mm} mm)`);
    if (deviation.tipOffsetMm > tol.mm) reasons.push(`tip ${f(deviation.tipOffsetMm)} mm off (tolerance ${tol.mm} mm)`);
    if (deviation.angleDeg > tol.deg) reasons.push(`angle ${f(deviation.angleDeg)} deg off (tolerance ${tol.deg} deg)`);
    for (const h of instrument.structures) {
      const where = `${f(h.fromTipMm)}-${f(h.toTipMm)} mm from the tip at (${h.at.map(f).join(', ')})`;
      reasons.push(h.structure === 'outside bone' ? `leaves the bone ${where}` : `enters ${h.name} ${where}`);
    }
    return { ...base, status: reasons.length ? 'fail' : 'pass', instrument, deviation, reasons, screw };
  });

  const unplanned: InstrumentReport[] = [];
  let centre: Point3 | undefined;
  placed.forEach((ins, i) => {
    if (pathOf[i] >= 0) return;
    // No plan says which end is the tip: the one nearer the body's centre (instruments go in from the skin).
    centre ??= bodyCentre(scan, scanToPlan);
    const c = centre;
    const tipFirst = norm(sub(ins.ends[0], c)) < norm(sub(ins.ends[1], c));
    const [outer, tip] = tipFirst ? [ins.ends[1], ins.ends[0]] : ins.ends;
    const { runs: _runs, ...r } = report(ins, outer, tip, ins.det.apparentDiameterMm / 2);
    unplanned.push(r);
  });
  if (unplanned.length) notes.push(`${unplanned.length} instrument(s) match no planned path`);

  return {
    schemaVersion: VERIFICATION_SCHEMA_VERSION,
    kind: 'corridor-verification',
    tolerance: tol,
    scanToPlan: scanToPlan ? mat4ToRows(scanToPlan) : null,
    registration: options.registration ?? null,
    structureSource,
    foramina: options.foramina ?? { source: options.labels ? 'labels' : 'none' },
    metal: { thresholdHu: metal.thresholdHu, growHu: metal.growHu, rejected: metal.rejected },
    paths: results,
    unplanned,
    allPass: results.every((r) => r.status === 'pass'),
    notes,
  };
}
