/**
 * The case worker: owns the open case (CT, labels, corridor map) and runs every heavy core call on it:
 * phantom generation, file reading, corridor maps, path analysis, automatic planning. The page only
 * displays what comes back.
 */
import {
  PlanError,
  UsageError,
  analyzePath,
  boneMaskPresetOptions,
  corridorMapFromIntensity,
  corridorMapFromLabels,
  planAlar,
  planTransSacral,
  radialScan,
  readDicomSeries,
  sacralSeedsFromLabels,
  type BoneMaskPresetName,
  type CorridorMap,
  type LoadedSeries,
  type NamedBytes,
  type PlanPath,
  type Point3,
  type Volume,
} from '@corridor/core';
import { serveRpc, type ProgressFn } from '../rpc.js';
import { configureCodecs } from '../codecs.js';
import { volumeToMessage } from '../volume-message.js';
import { readImageFile, phantomCase, type CaseAnatomy } from './sources.js';
import type { CaseInfo, PathReport, SeriesSummary, AutoPlanResult } from '../types.js';

configureCodecs();

interface OpenCase {
  ct: Volume;
  labels: Volume | null;
  anatomy: CaseAnatomy | null;
  map: CorridorMap | null;
  /** Where the intensity map was cropped around, to know when a path leaves it. */
  mapSeeds: Point3[];
  /** The bone mask preset the intensity map was made with. */
  mapMask?: BoneMaskPresetName;
}

let current: OpenCase | null = null;
let found: { series: LoadedSeries[]; labels: LoadedSeries[] } = { series: [], labels: [] };

function requireCase(): OpenCase {
  if (!current) throw new UsageError('no case is open');
  return current;
}

function summary(s: LoadedSeries, index: number): SeriesSummary {
  const v = s.volume;
  return {
    index,
    format: s.format,
    description: v.meta.seriesDescription ?? v.meta.source ?? `series ${index + 1}`,
    modality: v.meta.modality ?? '',
    dims: [v.dims[0], v.dims[1], v.dims[2]],
    spacingMm: [v.spacing[0], v.spacing[1], v.spacing[2]],
    warnings: s.warnings,
  };
}

function caseInfo(c: OpenCase, name: string): CaseInfo {
  return {
    name,
    hasLabels: !!c.labels,
    structures: c.anatomy ? c.anatomy.critical.map((s) => s.name) : [],
    suggestedCrosshair: c.anatomy?.focus ?? null,
  };
}

function mapFor(c: OpenCase, points: Point3[], progress: ProgressFn, boneMask: BoneMaskPresetName = 'standard'): CorridorMap {
  if (c.labels && c.anatomy) {
    if (!c.map) {
      progress(0, 1, 'corridor map');
      c.map = corridorMapFromLabels(c.labels, { boneGroups: c.anatomy.boneGroups, critical: c.anatomy.critical });
      progress(1, 1, 'corridor map');
    }
    return c.map;
  }
  // No segmentation: bone from intensities, cropped around the paths (rebuilt when a path leaves the crop).
  const inside = (m: CorridorMap, p: Point3) => {
    const a = m.structures.patientToIndex;
    const d = m.structures.dims;
    for (let r = 0; r < 3; r++) {
      const x = a[r * 4] * p[0] + a[r * 4 + 1] * p[1] + a[r * 4 + 2] * p[2] + a[r * 4 + 3];
      if (x < 0 || x > d[r] - 1) return false;
    }
    return true;
  };
  if (!c.map || c.mapMask !== boneMask || !points.every((p) => inside(c.map as CorridorMap, p))) {
    progress(0, 1, 'bone from intensities');
    c.mapSeeds = points.length ? points : [];
    c.mapMask = boneMask;
    const options = boneMaskPresetOptions(boneMask);
    c.map = corridorMapFromIntensity(c.ct, points.length ? { ...options, seeds: points, seedRadiusMm: 120 } : options);
    progress(1, 1, 'bone from intensities');
  }
  return c.map;
}

/** Clearance along the path in bins of stepMm: min over the bin of (clearance radius - tool radius). */
function clearanceProfile(map: CorridorMap, path: PlanPath, t0: number, t1: number, stepMm: number): number[] {
  const e = path.entry, g = path.target;
  const L = Math.hypot(g[0] - e[0], g[1] - e[1], g[2] - e[2]);
  const u = [(g[0] - e[0]) / L, (g[1] - e[1]) / L, (g[2] - e[2]) / L];
  const n = Math.max(1, Math.ceil(L / stepMm));
  const out: number[] = [];
  for (let b = 0; b < n; b++) {
    const a = b * stepMm, z = Math.min(L, (b + 1) * stepMm);
    if (z <= t0 || a >= t1) {
      out.push(NaN); // outside the intraosseous segment: the tool is in soft tissue there by design
      continue;
    }
    const scan = radialScan(map, e, u, Math.max(a, t0), Math.min(z, t1), path.diameterMm / 2, 15);
    out.push(Number.isFinite(scan.minRadiusMm) ? scan.minRadiusMm - path.diameterMm / 2 : 15 - path.diameterMm / 2);
  }
  return out;
}

const PROFILE_STEP_MM = 2;

function report(map: CorridorMap, p: PlanPath, marginMm: number): PathReport {
  const analysis = analyzePath(map, p, { marginMm });
  const dist = (q: Point3 | null) => (q ? Math.hypot(q[0] - p.entry[0], q[1] - p.entry[1], q[2] - p.entry[2]) : NaN);
  const t0 = analysis.cortexEntry ? dist(analysis.cortexEntry) : 0;
  const t1 = analysis.cortexExit ? dist(analysis.cortexExit) : analysis.lengthMm;
  return { analysis, profile: { stepMm: PROFILE_STEP_MM, clearanceMm: clearanceProfile(map, p, t0, t1, PROFILE_STEP_MM) } };
}

serveRpc(self as unknown as Parameters<typeof serveRpc>[0], {
  async openPhantom(args, progress) {
    const [voxelMm] = args as [number];
    progress(0, 1, 'generating the phantom');
    const ph = phantomCase(voxelMm, (f, phase) => progress(f, 1, `phantom: ${phase}`));
    current = { ct: ph.ct, labels: ph.labels, anatomy: ph.anatomy, map: null, mapSeeds: [] };
    progress(1, 1, 'generating the phantom');
    const { msg, transfer } = volumeToMessage(ph.ct, true);
    return { value: { volume: msg, info: caseInfo(current, ph.name) }, transfer };
  },

  async openFiles(args, progress) {
    const [files] = args as [NamedBytes[]];
    const series: LoadedSeries[] = [];
    const labels: LoadedSeries[] = [];
    const skipped: { name: string; reason: string }[] = [];
    const dicom: NamedBytes[] = [];
    for (const f of files) {
      const s = readImageFile(f);
      if (s === 'dicom') dicom.push(f);
      else if (s === null) skipped.push({ name: f.name, reason: 'not a DICOM, NIfTI, NRRD or MetaImage file' });
      else if (/label|seg|mask/i.test(f.name)) labels.push(s);
      else series.push(s);
    }
    if (dicom.length) {
      const r = await readDicomSeries(dicom, { onProgress: (d, t) => progress(d, t, 'reading DICOM') });
      series.push(...r.series);
      skipped.push(...r.skipped);
    }
    if (!series.length) {
      throw new UsageError(`no image series found in ${files.length} file(s)${skipped.length ? `: ${skipped.slice(0, 3).map((s) => `${s.name}: ${s.reason}`).join('; ')}` : ''}`);
    }
    found = { series, labels };
    return { series: series.map(summary), skipped };
  },

  async chooseSeries(args) {
    const [index] = args as [number];
    const s = found.series[index];
    if (!s) throw new UsageError(`no series ${index} (found ${found.series.length})`);
    // A segmentation dropped with the image is used for planning when it lies on the same grid.
    const lab = found.labels.find((l) => l.volume.dims.every((d, a) => d === s.volume.dims[a]));
    const anatomy: CaseAnatomy | null = lab ? totalSegmentatorAnatomy() : null;
    current = { ct: s.volume, labels: lab ? lab.volume : null, anatomy, map: null, mapSeeds: [] };
    const { msg, transfer } = volumeToMessage(s.volume, true);
    return { value: { volume: msg, info: caseInfo(current, s.volume.meta.seriesDescription ?? s.volume.meta.source ?? 'case') }, transfer };
  },

  async analyze(args, progress) {
    const [paths, marginMm, boneMask] = args as [PlanPath[], number, BoneMaskPresetName | undefined];
    const c = requireCase();
    if (!paths.length) return [];
    const map = mapFor(c, paths.flatMap((p) => [p.entry, p.target]), progress, boneMask);
    return paths.map((p) => report(map, p, marginMm));
  },

  async autoPlan(args, progress) {
    type AutoId = 's1' | 's2' | 'alar-left' | 'alar-right';
    const [opts] = args as [{
      marginMm: number;
      screw: { kind: PlanPath['kind']; diameterMm: number };
      alar: { kind: PlanPath['kind']; diameterMm: number };
      /** Which paths to plan (default all four). */
      only?: AutoId[];
      /** Seed points given by the user (the crosshair), LPS mm, replacing those from the segmentation. */
      seeds?: Partial<Record<AutoId, Point3>>;
      /** Bone mask preset, for a case without a segmentation. */
      boneMask?: BoneMaskPresetName;
    }];
    const c = requireCase();
    const critical = (re: RegExp) => c.anatomy?.critical.find((x) => re.test(x.name))?.labels;
    // Foramina, where labelled (the phantom), set the S1 and S2 levels; the canal keeps the seeds in the body.
    const derived = c.labels && c.anatomy ? sacralSeedsFromLabels(c.labels, c.anatomy.sacrum, { s1: c.anatomy.s1, foramina: critical(/foram/i), canal: critical(/canal/i) }) : null;
    const ids: AutoId[] = opts.only ?? ['s1', 's2', 'alar-left', 'alar-right'];
    const seedFor = (id: AutoId): Point3 => {
      const s = opts.seeds?.[id] ?? (derived ? { s1: derived.s1, s2: derived.s2, 'alar-left': derived.alarLeft, 'alar-right': derived.alarRight }[id] : undefined);
      if (!s) throw new PlanError(`no segmentation to find the ${id} seed in: put the crosshair in the ${id.startsWith('alar') ? 'ala' : `${id.toUpperCase()} body`} and use "Plan at crosshair"`);
      return s;
    };
    const seeds = ids.map(seedFor);
    const map = mapFor(c, seeds, progress, opts.boneMask);
    const midlineX = derived?.midlineX;
    const out: AutoPlanResult = { paths: [], reports: [], notes: [] };
    for (let n = 0; n < ids.length; n++) {
      const id = ids[n];
      progress(n, ids.length, `planning ${id}`);
      const seed = seeds[n];
      const r = id === 's1' || id === 's2'
        ? planTransSacral(map, { id, name: `${id.toUpperCase()} trans-sacral`, tool: opts.screw, seed, midlineX: midlineX ?? seed[0], searchMm: opts.seeds?.[id] ? undefined : derived?.levelSearchMm, marginMm: opts.marginMm })
        : planAlar(map, { id, name: id === 'alar-left' ? 'Alar left' : 'Alar right', tool: opts.alar, side: id === 'alar-left' ? 'left' : 'right', seed, marginMm: Math.max(opts.marginMm, 2) });
      out.paths.push(r.path);
      out.reports.push(report(map, r.path, opts.marginMm));
      out.notes.push(...r.notes); // each begins with the path's name
      if (r.orderLengthMm !== undefined) out.notes.push(`${r.path.name}: order a ${r.orderLengthMm} mm screw`);
    }
    progress(ids.length, ids.length, 'planned');
    return out;
  },
});

/** TotalSegmentator's labels (as in ../shared/data/abdomen-pelvis-ct): sacrum 25 + S1 26, hips 77/78, canal 79. */
function totalSegmentatorAnatomy(): CaseAnatomy {
  return { boneGroups: [[25, 26], [77], [78]], critical: [{ name: 'spinal canal', labels: [79] }], sacrum: [25, 26], s1: [26], focus: null };
}
