/**
 * The planning step of the procedure, owned by core: the one entry point that the CLI, the workstation's
 * case worker and the server call, with the same options, so that they show the same numbers by
 * construction. Front ends only parse input, display results and word messages.
 *
 * - openPlanningCase: the CT, an optional segmentation (checked to share the CT's grid) and its anatomy.
 * - planSacralPaths: automatic S1 / S2 trans-sacral and alar paths with their analyses and clearance
 *   profiles; each path records the margin and the map settings it was planned with.
 * - analyzePlanPaths: any paths (planned, drawn, imported) analysed on the case; a plan made on another
 *   grid is refused.
 *
 * The corridor map of a case is built on demand and kept: from labels, the sacral region of the
 * segmentation (the whole segmentation when a path reaches beyond it); from intensities, the bone mask
 * cropped around the seeds (planning) or around the points the paths recorded (analysis), so that
 * analysing a saved plan rebuilds the very map it was planned on.
 */
import { CancelledError, GeometryError, UsageError } from '../errors.js';
import { mat4MaxAbsDiff, type ReadonlyMat4 } from '../math/mat4.js';
import type { Point3 } from '../math/vec3.js';
import { patientToIndexContinuous, patientToIndexRounded } from '../volume/sample.js';
import type { Volume } from '../volume/volume.js';
import { analyzePath, radialScan, type PathAnalysis } from './analyze.js';
import {
  detectLabelAnatomy,
  phantomAnatomy,
  sacralRegion,
  totalSegmentatorAnatomy,
  type LabelAnatomy,
} from './anatomy.js';
import { planAlar, planTransSacral, type AutoPathResult } from './auto.js';
import { BONE_MASK_PRESET_NAMES, boneMaskPresetOptions, type BoneMaskPresetName } from './bone-mask-presets.js';
import { DEFAULT_ALAR_MARGIN_MM, DEFAULT_MARGIN_MM, SAME_GEOMETRY_TOLERANCE_MM } from './clinical.js';
import {
  corridorMapFromIntensity,
  corridorMapFromLabels,
  type CorridorMap,
  type IntensityMapOptions,
} from './corridor-map.js';
import { PlanError, type Plan, type PlanMapSettings, type PlanPath } from './model.js';
import { sacralSeedsFromLabels, type SacralSeeds } from './seeds.js';
import { DEFAULT_TOOLS, steppedCatalogue, type Catalogue, type ToolSpec } from './tools.js';

export const SACRAL_PATH_IDS = ['s1', 's2', 'alar-left', 'alar-right'] as const;
export type SacralPathId = (typeof SACRAL_PATH_IDS)[number];

/** Display names of the automatic paths, the same in every front end. */
export const SACRAL_PATH_NAMES: Readonly<Record<SacralPathId, string>> = {
  s1: 'S1 trans-sacral',
  s2: 'S2 trans-sacral',
  'alar-left': 'Alar left',
  'alar-right': 'Alar right',
};

/** Radius (mm) of the crop of an intensity map around each of its points. */
export const INTENSITY_CROP_RADIUS_MM = 120;

/** Bin length (mm) of the clearance profile along a path. */
export const PROFILE_STEP_MM = 2;

/** Progress of long work: `done` of `total` steps, in the named phase. */
export type ProgressFn = (done: number, total: number, phase: string) => void;

/** How bone is found from intensities: a preset's name and overrides of its parts. */
export interface BoneMaskSettings {
  preset: BoneMaskPresetName;
  cortexHu?: number;
  sealMm?: number;
  softTissueHu?: number;
  slicePlaneNormals?: ('x' | 'y' | 'z')[];
}

export interface PlanningCaseInit {
  ct: Volume;
  /** A segmentation on the CT's grid. */
  labels?: Volume;
  /** Which labels are which; with labels, default detected from the label values (detectLabelAnatomy). */
  anatomy?: LabelAnatomy;
}

/** An open case for planning: the images and the maps built on them so far (a cache, not state). */
export interface PlanningCase {
  readonly ct: Volume;
  readonly labels: Volume | null;
  readonly anatomy: LabelAnatomy | null;
  /** @internal maps built so far, by key. */
  readonly maps: Map<string, CorridorMap>;
  /** @internal seeds found in the labels (computed once). */
  seeds?: SacralSeeds | null;
}

/** A grid in words, for messages: dims, spacing and the position of the first voxel. */
export function describeGrid(v: { dims: readonly number[]; indexToPatient: ReadonlyMat4 }): string {
  const m = v.indexToPatient;
  const sp = [0, 1, 2].map((c) => Math.hypot(m[c], m[4 + c], m[8 + c]));
  const f = (x: number) => (Math.abs(x) < 1e-9 ? '0' : x.toFixed(2).replace(/\.?0+$/, ''));
  const origin = [m[3], m[7], m[11]].map(f).join(', ');
  return `${v.dims.join(' x ')} voxels of ${sp.map(f).join(' x ')} mm, first voxel at (${origin}) mm LPS`;
}

/** True when two grids have the same dims and indexToPatient within SAME_GEOMETRY_TOLERANCE_MM. */
export function sameGrid(
  a: { dims: readonly number[]; indexToPatient: ReadonlyMat4 },
  b: { dims: readonly number[]; indexToPatient: ReadonlyMat4 },
): boolean {
  return (
    a.dims.every((d, i) => d === b.dims[i]) &&
    mat4MaxAbsDiff(a.indexToPatient, b.indexToPatient) <= SAME_GEOMETRY_TOLERANCE_MM
  );
}

/**
 * The anatomy of a segmentation: named ('phantom', 'totalsegmentator'), or 'auto' (detected from its
 * label values). `phantomIds` are the phantom's label ids when a truth.json came with the labels.
 */
export function labelAnatomyFor(labels: Volume, choice: string, phantomIds?: LabelAnatomy | null): LabelAnatomy {
  if (choice === 'phantom') return phantomIds ?? phantomAnatomy();
  if (choice === 'totalsegmentator') return totalSegmentatorAnatomy();
  if (choice !== 'auto') throw new UsageError(`anatomy "${choice}" is not one of auto, phantom, totalsegmentator`);
  if (phantomIds) return phantomIds;
  return detectLabelAnatomy(labels) === 'phantom' ? phantomAnatomy() : totalSegmentatorAnatomy();
}

/** Open a case for planning. Labels on another grid than the CT are refused, naming both grids. */
export function openPlanningCase(init: PlanningCaseInit): PlanningCase {
  const { ct } = init;
  const labels = init.labels ?? null;
  if (labels && !sameGrid(ct, labels)) {
    const ls = labels.meta.source ?? 'labels',
      cs = ct.meta.source ?? 'CT';
    throw new GeometryError(
      `the segmentation is not on the CT's grid: labels ${describeGrid(labels)}; CT (${cs}) ${describeGrid(ct)}. ` +
        'Resample the segmentation onto the CT, or give the segmentation made on this CT',
      ls,
    );
  }
  const anatomy = labels ? (init.anatomy ?? labelAnatomyFor(labels, 'auto')) : null;
  return { ct, labels, anatomy, maps: new Map() };
}

/** Refuse a point outside the CT's grid (more than half a voxel beyond its outermost voxel centres). */
function checkInside(c: PlanningCase, p: Point3, what: string): void {
  // Inside means what it means to the samplers: a nearest voxel exists (volume/sample.ts).
  if (patientToIndexRounded(c.ct, p) === null) {
    throw new GeometryError(
      `${what} (${p.map((x) => x.toFixed(1)).join(', ')}) mm LPS lies outside the CT: ${describeGrid(c.ct)}`,
      c.ct.meta.source ?? 'CT',
    );
  }
}

function checkAborted(signal: AbortSignal | undefined) {
  if (signal?.aborted) throw new CancelledError('planning was cancelled');
}

/** The intensity map options of bone mask settings. */
function intensityOptions(s: BoneMaskSettings): IntensityMapOptions {
  const preset = boneMaskPresetOptions(s.preset);
  return {
    cortexHu: s.cortexHu,
    sealMm: s.sealMm ?? preset.sealMm,
    softTissueHu: s.softTissueHu ?? preset.softTissueHu,
    slicePlaneNormals: s.slicePlaneNormals ?? preset.slicePlaneNormals,
  };
}

/** Bone mask settings as a path records them (PlanMapSettings), and back. */
function recordIntensity(s: BoneMaskSettings, cropAround: Point3[]): PlanMapSettings {
  const out: PlanMapSettings = {
    source: 'intensity',
    boneMask: s.preset,
    cropAround: cropAround.map((p) => [p[0], p[1], p[2]]),
  };
  if (s.cortexHu !== undefined) out.cortexHu = s.cortexHu;
  if (s.sealMm !== undefined) out.sealMm = s.sealMm;
  if (s.softTissueHu !== undefined) out.softTissueHu = s.softTissueHu;
  if (s.slicePlaneNormals !== undefined) out.slicePlaneNormals = [...s.slicePlaneNormals];
  return out;
}

function settingsFromRecord(m: PlanMapSettings, source: string): BoneMaskSettings {
  const preset = m.boneMask ?? 'standard';
  if (!BONE_MASK_PRESET_NAMES.includes(preset as BoneMaskPresetName)) {
    throw new PlanError(`the plan's bone mask "${preset}" is not one of ${BONE_MASK_PRESET_NAMES.join(', ')}`, source);
  }
  return {
    preset: preset as BoneMaskPresetName,
    cortexHu: m.cortexHu,
    sealMm: m.sealMm,
    softTissueHu: m.softTissueHu,
    slicePlaneNormals: m.slicePlaneNormals,
  };
}

function inGrid(v: Volume, p: ArrayLike<number>): boolean {
  const idx = patientToIndexContinuous([0, 0, 0], v, p);
  return idx.every((x, a) => x >= 0 && x <= v.dims[a] - 1);
}

/**
 * The corridor map of the case for these points. Labels: the sacral region (sacralRegion), or the whole
 * segmentation when a point lies outside the region. Intensities: cropped around `cropAround`.
 */
function caseMap(
  c: PlanningCase,
  boneMask: BoneMaskSettings | undefined,
  points: Point3[],
  cropAround: Point3[],
  progress?: ProgressFn,
): CorridorMap {
  if (c.labels && c.anatomy) {
    const anatomy = c.anatomy;
    const labels = c.labels;
    const build = (key: string, make: () => Volume) => {
      let map = c.maps.get(key);
      if (!map) {
        progress?.(0, 1, 'corridor map');
        map = corridorMapFromLabels(make(), { boneGroups: anatomy.boneGroups, critical: anatomy.critical });
        c.maps.set(key, map);
        progress?.(1, 1, 'corridor map');
      }
      return map;
    };
    const region = build('labels:sacral-region', () => sacralRegion(labels, anatomy.sacrum));
    if (points.every((p) => inGrid(region.structures, p))) return region;
    return build('labels:whole', () => labels);
  }
  const settings = boneMask ?? { preset: 'standard' };
  const key = `intensity:${JSON.stringify(settings)}:${JSON.stringify(cropAround)}`;
  let map = c.maps.get(key);
  if (!map) {
    progress?.(0, 1, 'bone from intensities');
    const opts = intensityOptions(settings);
    map = corridorMapFromIntensity(
      c.ct,
      cropAround.length ? { ...opts, seeds: cropAround, seedRadiusMm: INTENSITY_CROP_RADIUS_MM } : opts,
    );
    // Keep a few: the workstation switches presets back and forth.
    if (c.maps.size >= 4) c.maps.delete(c.maps.keys().next().value as string);
    c.maps.set(key, map);
    progress?.(1, 1, 'bone from intensities');
  }
  return map;
}

/** Clearance along a path: per bin of PROFILE_STEP_MM, the smallest clearance of the tool's surface. */
export interface ClearanceProfile {
  /** Bin length along the path, mm, from the entry. */
  stepMm: number;
  /** Per bin: smallest clearance (mm) between the tool's surface and a forbidden voxel; null outside bone. */
  clearanceMm: (number | null)[];
}

/** How far (mm) from the axis the profile looks for forbidden voxels; farther counts as this much room. */
const PROFILE_REACH_MM = 15;

/**
 * The clearance profile of a path on a map: in each bin of stepMm along the intraosseous segment, the
 * smallest clearance radius of the forbidden voxels minus the tool radius (radialScan, every voxel).
 */
export function clearanceProfile(
  map: CorridorMap,
  path: PlanPath,
  analysis: PathAnalysis,
  stepMm = PROFILE_STEP_MM,
): ClearanceProfile {
  const e = path.entry,
    g = path.target;
  const L = analysis.lengthMm;
  const u = [(g[0] - e[0]) / L, (g[1] - e[1]) / L, (g[2] - e[2]) / L];
  const dist = (q: Point3 | null) => (q ? Math.hypot(q[0] - e[0], q[1] - e[1], q[2] - e[2]) : NaN);
  const t0 = analysis.cortexEntry ? dist(analysis.cortexEntry) : L;
  const t1 = analysis.cortexExit ? dist(analysis.cortexExit) : L;
  const r = path.diameterMm / 2;
  const n = Math.max(1, Math.ceil(L / stepMm));
  const out: (number | null)[] = [];
  for (let b = 0; b < n; b++) {
    const a = b * stepMm,
      z = Math.min(L, (b + 1) * stepMm);
    if (z <= t0 || a >= t1) {
      out.push(null); // outside the intraosseous segment: the tool is in soft tissue there by design
      continue;
    }
    const scan = radialScan(map, e, u, Math.max(a, t0), Math.min(z, t1), r, PROFILE_REACH_MM);
    out.push((Number.isNaN(scan.minAtT) ? PROFILE_REACH_MM : scan.minRadiusMm) - r);
  }
  return { stepMm, clearanceMm: out };
}

/** One path with everything the front ends show about it. */
export interface PlannedPath {
  path: PlanPath;
  analysis: PathAnalysis;
  profile: ClearanceProfile;
  /** Screws and pins: the catalogue length to order; null for trocars. */
  orderLengthMm: number | null;
  /** Screws and pins: thread in bone on the entry side / far side of the midline; null when unknown. */
  threadInBoneMm: { entrySide: number; farSide: number } | null;
  /** Sentences for the reader, each beginning with the path's name. */
  notes: string[];
}

export interface PlanSacralOptions {
  paths: readonly SacralPathId[];
  /** Seed points (LPS mm) given by the user; without labels one is needed per path. */
  seeds?: Partial<Record<SacralPathId, Point3>>;
  /** Without labels: how bone is found (default the standard preset). Ignored with labels. */
  boneMask?: BoneMaskSettings;
  /** S1 / S2 tool (default a 7.3 mm screw). */
  screw?: ToolSpec;
  /** Alar tool (default an 11-gauge trocar). */
  alarTool?: ToolSpec;
  /** Margin (mm) for S1 / S2. Default DEFAULT_MARGIN_MM. */
  marginMm?: number;
  /** Margin (mm) for alar paths. Default the larger of marginMm and DEFAULT_ALAR_MARGIN_MM. */
  alarMarginMm?: number;
  /** How far (mm) an S1 / S2 search may move from a user's seed (default planTransSacral's 15 mm). */
  searchMm?: number;
  /** Screw length catalogue (default 5 mm steps). */
  catalogue?: Catalogue;
  onProgress?: ProgressFn;
  signal?: AbortSignal;
}

export interface SacralPlanResult {
  schemaVersion: 1;
  paths: PlannedPath[];
  /** The anatomy that named the labels and which anatomy defined the S1/S2 levels; null without labels. */
  anatomy: { name: string; levelsFrom: SacralSeeds['levelsFrom'] | null } | null;
}

function labelSeeds(c: PlanningCase): SacralSeeds | null {
  if (c.seeds === undefined) {
    c.seeds = c.labels && c.anatomy ? sacralSeedsFromLabels(c.labels, c.anatomy.sacrum, c.anatomy.seeds) : null;
  }
  return c.seeds;
}

/** The margin each kind of automatic path is planned with. */
export function autoPathMarginMm(id: SacralPathId, marginMm = DEFAULT_MARGIN_MM, alarMarginMm?: number): number {
  return id.startsWith('alar') ? (alarMarginMm ?? Math.max(marginMm, DEFAULT_ALAR_MARGIN_MM)) : marginMm;
}

function planned(map: CorridorMap, r: AutoPathResult): PlannedPath {
  return {
    path: r.path,
    analysis: r.analysis,
    profile: clearanceProfile(map, r.path, r.analysis),
    orderLengthMm: r.orderLengthMm ?? null,
    threadInBoneMm: r.threadInBoneMm ?? null,
    notes: r.notes,
  };
}

/** Plan the asked sacral paths automatically. See the module comment. */
export function planSacralPaths(c: PlanningCase, options: PlanSacralOptions): SacralPlanResult {
  const ids = [...new Set(options.paths)];
  if (!ids.length) throw new UsageError('no path to plan: name at least one of ' + SACRAL_PATH_IDS.join(', '));
  for (const id of ids)
    if (!SACRAL_PATH_IDS.includes(id))
      throw new UsageError(`unknown path "${String(id)}" (have ${SACRAL_PATH_IDS.join(', ')})`);
  const userSeeds = options.seeds ?? {};
  for (const [id, p] of Object.entries(userSeeds)) {
    if (!SACRAL_PATH_IDS.includes(id as SacralPathId)) throw new UsageError(`seed for an unknown path "${id}"`);
    if (p) checkInside(c, p, `the ${id} seed`);
  }
  const marginMm = options.marginMm ?? DEFAULT_MARGIN_MM;
  if (!(marginMm >= 0) || !(options.alarMarginMm === undefined || options.alarMarginMm >= 0)) {
    throw new UsageError('margins must be non-negative numbers (mm)');
  }
  const screw = options.screw ?? DEFAULT_TOOLS.screw;
  const alarTool = options.alarTool ?? DEFAULT_TOOLS.trocar;
  const catalogue = options.catalogue ?? steppedCatalogue();
  const derived = labelSeeds(c);
  const seedFor = (id: SacralPathId): Point3 => {
    const s =
      userSeeds[id] ??
      (derived
        ? { s1: derived.s1, s2: derived.s2, 'alar-left': derived.alarLeft, 'alar-right': derived.alarRight }[id]
        : undefined);
    if (!s) {
      const where = id.startsWith('alar') ? 'the ala' : `the ${id.toUpperCase()} body`;
      throw new PlanError(`no segmentation to find the ${id} seed in: give a seed point in ${where} (LPS mm)`, id);
    }
    return s;
  };
  const seeds = ids.map(seedFor);
  const progress = options.onProgress;
  checkAborted(options.signal);
  const map = caseMap(c, options.boneMask, seeds, seeds, progress);
  const record: PlanMapSettings =
    c.labels && c.anatomy
      ? { source: 'labels', anatomy: c.anatomy.name }
      : recordIntensity(options.boneMask ?? { preset: 'standard' }, seeds);
  // The midline: from the labels, else the user's S1 (or S2) seed, else each trans-sacral seed's own x.
  const midlineX = derived?.midlineX ?? userSeeds.s1?.[0] ?? userSeeds.s2?.[0];
  const out: PlannedPath[] = [];
  for (let n = 0; n < ids.length; n++) {
    checkAborted(options.signal);
    const id = ids[n];
    progress?.(n, ids.length, `planning ${id}`);
    const seed = seeds[n];
    const pathMargin = autoPathMarginMm(id, marginMm, options.alarMarginMm);
    let r: AutoPathResult;
    if (id === 's1' || id === 's2') {
      // The derived seeds come with a search radius that keeps S1 and S2 apart; a user's seed keeps the
      // default or searchMm (a narrow S2 next to a wide S1 needs a small one, or S2 drifts to S1).
      const searchMm = userSeeds[id] ? options.searchMm : derived?.levelSearchMm;
      r = planTransSacral(map, {
        id,
        name: SACRAL_PATH_NAMES[id],
        tool: screw,
        seed,
        midlineX: midlineX ?? seed[0],
        searchMm,
        marginMm: pathMargin,
        catalogue,
      });
    } else {
      const side = id === 'alar-left' ? 'left' : 'right';
      r = planAlar(map, {
        id,
        name: SACRAL_PATH_NAMES[id],
        tool: alarTool,
        side,
        seed,
        marginMm: pathMargin,
        lateralAxis: derived?.lateralAxis,
      });
    }
    r.path = { ...r.path, marginMm: pathMargin, map: record };
    out.push(planned(map, r));
  }
  progress?.(ids.length, ids.length, 'planned');
  return {
    schemaVersion: 1,
    paths: out,
    anatomy: c.anatomy ? { name: c.anatomy.name, levelsFrom: derived?.levelsFrom ?? null } : null,
  };
}

export interface AnalyzePathsOptions {
  /** Margin (mm) for every path, overriding each path's own (PlanPath.marginMm, else DEFAULT_MARGIN_MM). */
  marginMm?: number;
  /** Margin (mm) for paths that carry none (drawn by hand, imported); default DEFAULT_MARGIN_MM. */
  defaultMarginMm?: number;
  /**
   * Without labels: how bone is found, overriding what each path recorded. Paths that recorded nothing
   * (drawn by hand, imported) use this, else the standard preset.
   */
  boneMask?: BoneMaskSettings;
  onProgress?: ProgressFn;
  signal?: AbortSignal;
}

/** One path's analysis on the case. */
export interface PathReport {
  analysis: PathAnalysis;
  profile: ClearanceProfile;
}

/**
 * Refuse a plan made on another grid than the case's CT (naming both); a plan that records no grid
 * (a Slicer markup, a hand-written file) cannot be checked, and the returned note says so.
 */
export function checkPlanGrid(c: PlanningCase, plan: Pick<Plan, 'volume'>, source = 'plan'): string | null {
  const m = plan.volume.indexToPatient;
  if (!m) return 'the plan records no image geometry: it could not be checked against this CT';
  if (mat4MaxAbsDiff(m, c.ct.indexToPatient) > SAME_GEOMETRY_TOLERANCE_MM) {
    throw new GeometryError(
      `the plan was made on another grid: plan ${describeGrid({ dims: c.ct.dims, indexToPatient: m })}; ` +
        `CT ${describeGrid(c.ct)} (the plan records no dims: the CT's are shown). ` +
        'Analyse it on the volume it was made on',
      source,
    );
  }
  return null;
}

/** Analyse paths on the case, each with its own margin and map settings unless overridden. */
export function analyzePlanPaths(
  c: PlanningCase,
  paths: readonly PlanPath[],
  options: AnalyzePathsOptions = {},
): PathReport[] {
  if (options.marginMm !== undefined && !(options.marginMm >= 0))
    throw new UsageError('the margin must be a non-negative number (mm)');
  // Without labels, paths sharing map settings share a map cropped around all their recorded points.
  const groups = new Map<string, { settings?: BoneMaskSettings; crop: Point3[]; idx: number[] }>();
  paths.forEach((p, i) => {
    for (const q of [p.entry, p.target]) checkInside(c, q, `path "${p.id}": its ${q === p.entry ? 'entry' : 'target'}`);
    const rec = p.map?.source === 'intensity' ? p.map : undefined;
    const settings = c.labels ? undefined : (options.boneMask ?? (rec ? settingsFromRecord(rec, p.id) : undefined));
    const key = JSON.stringify(settings ?? null);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { settings, crop: [], idx: [] }));
    g.idx.push(i);
    g.crop.push(...(rec?.cropAround ?? [p.entry, p.target]));
  });
  const out: PathReport[] = new Array<PathReport>(paths.length);
  for (const g of groups.values()) {
    checkAborted(options.signal);
    const pts = g.idx.flatMap((i) => [paths[i].entry, paths[i].target]);
    let map = caseMap(c, g.settings, pts, dedupe(g.crop), options.onProgress);
    // A path moved beyond the crop it recorded: crop around its points as well.
    if (!c.labels && !pts.every((p) => inGrid(map.structures, p)))
      map = caseMap(c, g.settings, pts, dedupe([...g.crop, ...pts]), options.onProgress);
    for (const i of g.idx) {
      const marginMm = options.marginMm ?? paths[i].marginMm ?? options.defaultMarginMm;
      const analysis = analyzePath(map, paths[i], { marginMm });
      out[i] = { analysis, profile: clearanceProfile(map, paths[i], analysis) };
    }
  }
  return out;
}

function dedupe(points: Point3[]): Point3[] {
  const seen = new Set<string>();
  return points.filter((p) => {
    const k = p.join(',');
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
