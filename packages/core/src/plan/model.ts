/**
 * The plan: straight tool paths in patient space (LPS mm, docs/conventions.md) on one image volume.
 *
 * plan.json:
 * ```
 * { "schemaVersion": 1,
 *   "volume": { "file": "ct.nii.gz" | "seriesInstanceUid": "1.2...", "indexToPatient": [[...4 rows...]] },
 *   "paths": [ { "id": "s1", "name": "S1 trans-sacral", "kind": "screw", "diameterMm": 7.3,
 *                "entry": [x, y, z], "target": [x, y, z], "marginMm": 1,
 *                "map": { "source": "intensity", "boneMask": "demineralized", "cropAround": [[x, y, z]] } } ] }
 * ```
 * `marginMm` (optional) is the safety margin the path was planned with; analysis uses it unless told
 * otherwise. `map` (optional) records how bone was found when the path was planned (PlanMapSettings), so
 * that analysing the plan later builds the same corridor map and reports the same numbers. Both are per
 * path: paths planned with different settings can share one plan.
 * `entry` is where the tool goes in (skin side or first cortex), `target` where its tip ends.
 */
import { CorridorError } from '../errors.js';
import { mat4FromRows, mat4MaxAbsDiff, mat4ToRows, type ReadonlyMat4 } from '../math/mat4.js';
import type { Point3 } from '../math/vec3.js';
import { MAX_TOOL_DIAMETER_MM, SAME_GEOMETRY_TOLERANCE_MM } from './clinical.js';

/** A plan that is invalid, or a path that cannot be planned or analysed. */
export class PlanError extends CorridorError {
  override readonly name: string = 'PlanError';
}

export const PLAN_SCHEMA_VERSION = 1;

export type ToolKind = 'screw' | 'guidepin' | 'trocar' | 'needle';
export const TOOL_KINDS: readonly ToolKind[] = ['screw', 'guidepin', 'trocar', 'needle'];

export interface PlanPath {
  /** Unique within the plan; letters, digits, '-', '_' and '.'. */
  id: string;
  name: string;
  kind: ToolKind;
  /** Outer diameter of the tool, mm. */
  diameterMm: number;
  /** Where the tool enters, LPS mm. */
  entry: Point3;
  /** Where the tool's tip ends, LPS mm. */
  target: Point3;
  /** Safety margin (mm) the path was planned with; analysis uses it unless given another. */
  marginMm?: number;
  /** How bone was found when the path was planned; absent for a path drawn by hand or imported. */
  map?: PlanMapSettings;
}

/**
 * How the corridor map of a plan was made: from a segmentation (its anatomy's name), or from intensities
 * with a bone mask (a preset's name and any overrides of its parts), cropped around `cropAround` (LPS mm).
 */
export interface PlanMapSettings {
  source: 'labels' | 'intensity';
  /** Labels: the anatomy ('phantom', 'totalsegmentator', or 'custom' for user-named labels). */
  anatomy?: string;
  /** Intensity: the bone mask preset's name. */
  boneMask?: string;
  /** Intensity: overrides of the preset's parts. */
  cortexHu?: number;
  sealMm?: number;
  softTissueHu?: number;
  slicePlaneNormals?: ('x' | 'y' | 'z')[];
  /** Intensity: the points the map was cropped around. */
  cropAround?: Point3[];
}

export interface PlanVolumeRef {
  /** Image file the plan was made on (as given by the user; relative paths relative to the plan file). */
  file?: string;
  seriesInstanceUid?: string;
  /** The volume's indexToPatient when planned: lets a reader check that the plan matches the image. */
  indexToPatient?: ReadonlyMat4;
}

export interface Plan {
  schemaVersion: number;
  volume: PlanVolumeRef;
  paths: PlanPath[];
}

const ID_RE = /^[A-Za-z0-9._-]{1,64}$/;

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function isPoint3(x: unknown): x is Point3 {
  return Array.isArray(x) && x.length === 3 && x.every((v) => typeof v === 'number' && Number.isFinite(v));
}

function point(x: unknown, what: string, source: string): Point3 {
  if (!isPoint3(x)) {
    throw new PlanError(`${what} must be three finite numbers (LPS mm)`, source);
  }
  return [x[0], x[1], x[2]];
}

/** Check one path object and return a clean copy. `where` names it in messages. */
export function validatePath(p: unknown, where: string, source: string): PlanPath {
  if (!isObject(p)) throw new PlanError(`${where} is not an object`, source);
  const id = p.id;
  if (typeof id !== 'string' || !ID_RE.test(id))
    throw new PlanError(`${where}: id must be 1-64 letters, digits, '.', '_' or '-'`, source);
  const at = `path "${id}"`;
  const name = p.name === undefined ? id : p.name;
  if (typeof name !== 'string') throw new PlanError(`${at}: name must be a string`, source);
  if (typeof p.kind !== 'string' || !TOOL_KINDS.includes(p.kind as ToolKind)) {
    throw new PlanError(`${at}: kind must be one of ${TOOL_KINDS.join(', ')}`, source);
  }
  const d = p.diameterMm;
  if (typeof d !== 'number' || !(d > 0 && d <= MAX_TOOL_DIAMETER_MM)) {
    throw new PlanError(`${at}: diameterMm must be a number above 0 and at most ${MAX_TOOL_DIAMETER_MM}`, source);
  }
  const entry = point(p.entry, `${at}: entry`, source);
  const target = point(p.target, `${at}: target`, source);
  const len = Math.hypot(target[0] - entry[0], target[1] - entry[1], target[2] - entry[2]);
  if (!(len > 1e-3)) throw new PlanError(`${at}: entry and target coincide`, source);
  const out: PlanPath = { id, name, kind: p.kind as ToolKind, diameterMm: d, entry, target };
  if (p.marginMm !== undefined) {
    if (typeof p.marginMm !== 'number' || !(p.marginMm >= 0 && p.marginMm < 20)) {
      throw new PlanError(`${at}: marginMm must be a number from 0 to 20`, source);
    }
    out.marginMm = p.marginMm;
  }
  if (p.map !== undefined) out.map = mapSettings(p.map, `${at}: map`, source);
  return out;
}

/** Parse and check plan JSON (an object or its text). Throws PlanError naming the source and the problem. */
export function parsePlan(json: unknown, source = 'plan'): Plan {
  let obj = json;
  if (typeof json === 'string') {
    try {
      obj = JSON.parse(json);
    } catch (err) {
      throw new PlanError(`not valid JSON: ${(err as Error).message}`, source);
    }
  }
  if (!isObject(obj)) throw new PlanError('plan must be a JSON object', source);
  const sv = obj.schemaVersion;
  if (typeof sv !== 'number' || !Number.isInteger(sv)) throw new PlanError('schemaVersion missing', source);
  if (sv > PLAN_SCHEMA_VERSION)
    throw new PlanError(`schemaVersion ${sv} is newer than this reader (${PLAN_SCHEMA_VERSION})`, source);
  const vol = obj.volume === undefined ? {} : obj.volume;
  if (!isObject(vol)) throw new PlanError('volume must be an object', source);
  const volume: PlanVolumeRef = {};
  if (vol.file !== undefined) {
    if (typeof vol.file !== 'string') throw new PlanError('volume.file must be a string', source);
    volume.file = vol.file;
  }
  if (vol.seriesInstanceUid !== undefined) {
    if (typeof vol.seriesInstanceUid !== 'string')
      throw new PlanError('volume.seriesInstanceUid must be a string', source);
    volume.seriesInstanceUid = vol.seriesInstanceUid;
  }
  if (vol.indexToPatient !== undefined) {
    const rows = vol.indexToPatient;
    if (
      !Array.isArray(rows) ||
      rows.length !== 4 ||
      !rows.every(
        (r) => Array.isArray(r) && r.length === 4 && r.every((v) => typeof v === 'number' && Number.isFinite(v)),
      )
    ) {
      throw new PlanError('volume.indexToPatient must be 4 rows of 4 finite numbers (row-major)', source);
    }
    volume.indexToPatient = mat4FromRows(rows as number[][]);
  }
  if (!Array.isArray(obj.paths)) throw new PlanError('paths must be an array', source);
  const paths = obj.paths.map((p, i) => validatePath(p, `paths[${i}]`, source));
  const seen = new Set<string>();
  for (const p of paths) {
    if (seen.has(p.id)) throw new PlanError(`path id "${p.id}" is used twice`, source);
    seen.add(p.id);
  }
  return { schemaVersion: PLAN_SCHEMA_VERSION, volume, paths };
}

function finite(x: unknown, what: string, source: string): number | undefined {
  if (x === undefined) return undefined;
  if (typeof x !== 'number' || !Number.isFinite(x)) throw new PlanError(`${what} must be a finite number`, source);
  return x;
}

function mapSettings(m: unknown, at: string, source: string): PlanMapSettings {
  if (!isObject(m) || (m.source !== 'labels' && m.source !== 'intensity')) {
    throw new PlanError(`${at} must be an object whose source is "labels" or "intensity"`, source);
  }
  const out: PlanMapSettings = { source: m.source };
  for (const k of ['anatomy', 'boneMask'] as const) {
    if (m[k] === undefined) continue;
    if (typeof m[k] !== 'string') throw new PlanError(`${at}.${k} must be a string`, source);
    out[k] = m[k];
  }
  for (const k of ['cortexHu', 'sealMm', 'softTissueHu'] as const) {
    const v = finite(m[k], `${at}.${k}`, source);
    if (v !== undefined) out[k] = v;
  }
  if (m.slicePlaneNormals !== undefined) {
    const a = m.slicePlaneNormals;
    if (!Array.isArray(a) || !a.every((x) => x === 'x' || x === 'y' || x === 'z')) {
      throw new PlanError(`${at}.slicePlaneNormals must be a list of "x", "y", "z"`, source);
    }
    out.slicePlaneNormals = a as ('x' | 'y' | 'z')[];
  }
  if (m.cropAround !== undefined) {
    if (!Array.isArray(m.cropAround)) throw new PlanError(`${at}.cropAround must be a list of points`, source);
    out.cropAround = m.cropAround.map((p, i) => point(p, `${at}.cropAround[${i}]`, source));
  }
  return out;
}

/** The plan as plain JSON (matrices as nested row-major arrays). */
export function planToJson(plan: Plan): Record<string, unknown> {
  const volume: Record<string, unknown> = {};
  if (plan.volume.file !== undefined) volume.file = plan.volume.file;
  if (plan.volume.seriesInstanceUid !== undefined) volume.seriesInstanceUid = plan.volume.seriesInstanceUid;
  if (plan.volume.indexToPatient) volume.indexToPatient = mat4ToRows(plan.volume.indexToPatient);
  return {
    schemaVersion: PLAN_SCHEMA_VERSION,
    volume,
    paths: plan.paths.map((p) => ({
      id: p.id,
      name: p.name,
      kind: p.kind,
      diameterMm: p.diameterMm,
      entry: [...p.entry],
      target: [...p.target],
      ...(p.marginMm !== undefined ? { marginMm: p.marginMm } : {}),
      ...(p.map ? { map: JSON.parse(JSON.stringify(p.map)) as unknown } : {}),
    })),
  };
}

/** Length of a path, mm. */
export function pathLengthMm(p: Pick<PlanPath, 'entry' | 'target'>): number {
  return Math.hypot(p.target[0] - p.entry[0], p.target[1] - p.entry[1], p.target[2] - p.entry[2]);
}

/**
 * `base` with `paths` added: a path whose id is already in the plan replaces it in place, the others go at
 * the end. Refuses (PlanError naming `source`) when the two were planned on volumes of different geometry
 * (indexToPatient differing by more than SAME_GEOMETRY_TOLERANCE_MM in any element), where the same LPS
 * points would mean different anatomy. Used to plan a path with other settings and add it to a plan already
 * saved.
 */
export function mergePlanPaths(
  base: Plan,
  paths: PlanPath[],
  indexToPatient: ReadonlyMat4 | undefined,
  source: string,
): Plan {
  const a = base.volume.indexToPatient;
  if (a && indexToPatient && mat4MaxAbsDiff(a, indexToPatient) > SAME_GEOMETRY_TOLERANCE_MM) {
    throw new PlanError(
      'this plan was made on a volume of another geometry (indexToPatient differs); not adding to it',
      source,
    );
  }
  const merged = base.paths.map((p) => paths.find((q) => q.id === p.id) ?? p);
  for (const q of paths) if (!base.paths.some((p) => p.id === q.id)) merged.push(q);
  return { ...base, volume: { ...base.volume, indexToPatient: a ?? indexToPatient }, paths: merged };
}
