/**
 * The case worker: owns the open case (CT, labels, their anatomy and core's planning case) and runs every
 * heavy core call on it: phantom generation, file reading, automatic planning and path analysis, through
 * the same core entry points as the CLI (planSacralPaths, analyzePlanPaths). The page only displays what
 * comes back.
 */
import {
  UsageError,
  analyzePlanPaths,
  describeGrid,
  encodeKeyImage,
  labelAnatomyFor,
  looksLikeDicomSeg,
  openPlanningCase,
  pelvicViews,
  planSacralPaths,
  readDicomSegLabels,
  readDicomSeries,
  reportKeyImages,
  reportModel,
  sameGrid,
  type BoneMaskPresetName,
  type CarmSystem,
  type LoadedSeries,
  type NamedBytes,
  type PlanPath,
  type PelvicViews,
  type PlanningCase,
  type Point3,
  type SacralPathId,
  type ToolSpec,
} from '@corridor/core';
import { serveRpc, type ProgressFn } from '../rpc.js';
import { configureCodecs } from '../codecs.js';
import { volumeToMessage } from '../volume-message.js';
import { readImageFile, phantomCase } from './sources.js';
import { Procedure, verifyAnatomyFor, type ScanFrame } from './procedure.js';
import type {
  CaseInfo,
  SeriesSummary,
  AutoPlanResult,
  PathReport,
  ReportImagesReply,
  ReportImagesRequest,
} from '../types.js';
import { putBlobs } from '../case-client.js';

configureCodecs();

interface OpenCase {
  planning: PlanningCase;
  focus: Point3 | null;
  warnings: string[];
  /** The verification and cement scans loaded into the case, and their checks. */
  procedure: Procedure;
}

let current: OpenCase | null = null;
/** Series found, label volumes, and DICOM SEG files (read onto the series chosen, whose grid they need). */
let found: { series: LoadedSeries[]; labels: LoadedSeries[]; segs: NamedBytes[] } = {
  series: [],
  labels: [],
  segs: [],
};

/**
 * The files last read, per purpose ('opened': the case's files; else a scan's role), kept until the page
 * has them stored in the case store (storeFiles), then let go. Only when the page asks (it has a store).
 */
const kept = new Map<string, NamedBytes[]>();

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
  const a = c.planning.anatomy;
  return {
    name,
    hasLabels: !!c.planning.labels,
    structures: a ? a.critical.map((s) => s.name) : [],
    suggestedCrosshair: c.focus,
    warnings: c.warnings,
  };
}

const bone = (boneMask: BoneMaskPresetName | undefined) => (boneMask ? { preset: boneMask } : undefined);

/** Every image series, label volume and DICOM SEG in the files (core's readers). */
async function readFiles(files: NamedBytes[], progress: ProgressFn) {
  const series: LoadedSeries[] = [];
  const labels: LoadedSeries[] = [];
  const skipped: { name: string; reason: string }[] = [];
  const dicom: NamedBytes[] = [];
  const segs: NamedBytes[] = [];
  for (const f of files) {
    const s = readImageFile(f);
    if (s === 'dicom' && looksLikeDicomSeg(f.bytes)) segs.push(f);
    else if (s === 'dicom') dicom.push(f);
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
    throw new UsageError(
      `no image series found in ${files.length} file(s)${
        skipped.length
          ? `: ${skipped
              .slice(0, 3)
              .map((s) => `${s.name}: ${s.reason}`)
              .join('; ')}`
          : ''
      }`,
    );
  }
  return { series, labels, segs, skipped };
}

serveRpc(self as unknown as Parameters<typeof serveRpc>[0], {
  openPhantom(args, progress) {
    const [voxelMm] = args as [number];
    progress(0, 1, 'generating the phantom');
    const ph = phantomCase(voxelMm, (f, phase) => progress(f, 1, `phantom: ${phase}`));
    const planning = openPlanningCase({ ct: ph.ct, labels: ph.labels, anatomy: ph.anatomy });
    current = {
      planning,
      focus: ph.focus,
      warnings: [],
      procedure: new Procedure(planning, verifyAnatomyFor(ph.labels, ph.truthLabels)),
    };
    progress(1, 1, 'generating the phantom');
    const { msg, transfer } = volumeToMessage(ph.ct, true);
    return { value: { volume: msg, info: caseInfo(current, ph.name) }, transfer };
  },
  async openFiles(args, progress) {
    const [files, keep] = args as [NamedBytes[], boolean | undefined];
    const { series, labels, segs, skipped } = await readFiles(files, progress);
    found = { series, labels, segs };
    if (keep) kept.set('opened', files);
    return { series: series.map(summary), skipped };
  },

  chooseSeries(args) {
    const [index] = args as [number];
    const s = found.series[index];
    if (!s) throw new UsageError(`no series ${index} (found ${found.series.length})`);
    // A segmentation dropped with the image is used for planning when it lies on the same grid; one on
    // another grid is set aside with a warning that names both grids.
    const warnings: string[] = [];
    // A DICOM SEG is read onto the chosen series' grid; one of another series or grid is set aside.
    const fromSeg: LoadedSeries[] = [];
    for (const f of found.segs) {
      try {
        const r = readDicomSegLabels(f.bytes, f.name, s.volume);
        fromSeg.push({ volume: r.volume, format: 'dicom', warnings: r.warnings });
        warnings.push(...r.warnings);
      } catch (err) {
        warnings.push(`${(err as Error).message}: not used`);
      }
    }
    const lab = fromSeg[0] ?? found.labels.find((l) => sameGrid(l.volume, s.volume));
    for (const l of found.labels) {
      if (l === lab || sameGrid(l.volume, s.volume)) continue;
      warnings.push(
        `${l.volume.meta.source ?? 'a segmentation'} is not on the image's grid ` +
          `(labels ${describeGrid(l.volume)}; image ${describeGrid(s.volume)}): not used`,
      );
    }
    let planning: PlanningCase;
    if (lab) {
      try {
        planning = openPlanningCase({ ct: s.volume, labels: lab.volume, anatomy: labelAnatomyFor(lab.volume, 'auto') });
      } catch (err) {
        warnings.push(
          `${lab.volume.meta.source ?? 'the segmentation'}: ${(err as Error).message}; ` +
            'planning from intensities instead',
        );
        planning = openPlanningCase({ ct: s.volume });
      }
    } else planning = openPlanningCase({ ct: s.volume });
    current = {
      planning,
      focus: null,
      warnings,
      procedure: new Procedure(planning, verifyAnatomyFor(planning.labels)),
    };
    const { msg, transfer } = volumeToMessage(s.volume, true);
    return {
      value: {
        volume: msg,
        info: caseInfo(current, s.volume.meta.seriesDescription ?? s.volume.meta.source ?? 'case'),
      },
      transfer,
    };
  },

  analyze(args, progress) {
    const [paths, marginMm, boneMask] = args as [PlanPath[], number, BoneMaskPresetName | undefined];
    const c = requireCase();
    if (!paths.length) return [];
    // The panel's margin is for paths that carry none; a planned path keeps the margin it was planned with.
    const reports: PathReport[] = analyzePlanPaths(c.planning, paths, {
      defaultMarginMm: marginMm,
      boneMask: bone(boneMask),
      onProgress: progress,
    });
    return reports;
  },

  /** Core's inlet and outlet views: levels from the S1/S2 paths or the labels, cortex in the labels or CT. */
  pelvicViews(args) {
    const [paths, system] = args as [PlanPath[], CarmSystem];
    const c = requireCase().planning;
    return pelvicViews(
      { paths, ct: c.ct, ...(c.labels && c.anatomy ? { labels: c.labels, anatomy: c.anatomy } : {}) },
      system,
    );
  },

  autoPlan(args, progress) {
    const [opts] = args as [
      {
        marginMm: number;
        screw: ToolSpec;
        alar: ToolSpec;
        /** Which paths to plan (default all four). */
        only?: SacralPathId[];
        /** Seed points given by the user (the crosshair), LPS mm, replacing those from the segmentation. */
        seeds?: Partial<Record<SacralPathId, Point3>>;
        /** Bone mask preset, for a case without a segmentation. */
        boneMask?: BoneMaskPresetName;
      },
    ];
    const c = requireCase();
    const r = planSacralPaths(c.planning, {
      paths: opts.only ?? ['s1', 's2', 'alar-left', 'alar-right'],
      seeds: opts.seeds,
      boneMask: bone(opts.boneMask),
      screw: opts.screw,
      alarTool: opts.alar,
      marginMm: opts.marginMm,
      onProgress: progress,
    });
    const out: AutoPlanResult = {
      paths: r.paths.map((p) => p.path),
      reports: r.paths.map((p) => ({ analysis: p.analysis, profile: p.profile })),
      // Each note begins with the path's name.
      notes: r.paths.flatMap((p) => [
        ...p.notes,
        ...(p.orderLengthMm !== null ? [`${p.path.name}: order a ${p.orderLengthMm} mm screw`] : []),
      ]),
    };
    return out;
  },

  /** A scan of the procedure (verification, cement baseline, cement) read into the open case. */
  async loadScan(args, progress) {
    const [files, role, keep] = args as [NamedBytes[], 'verification' | 'cement-baseline' | 'cement', boolean?];
    const c = requireCase();
    const { series, skipped } = await readFiles(files, progress);
    if (keep) kept.set(role, files);
    if (series.length !== 1)
      throw new UsageError(
        `expected one image series, found ${series.length}` +
          (skipped.length ? ` (${skipped.map((x) => `${x.name}: ${x.reason}`).join('; ')})` : ''),
        files[0]?.name ?? 'scan',
      );
    c.procedure.setScan(role, series[0].volume);
    return { summary: summary(series[0], 0), cementScans: c.procedure.cementScans.length };
  },

  /** Store the files kept for `key` in the case store (PUT /api/blobs): their references; then let go. */
  async storeFiles(args, progress) {
    const [key] = args as [string];
    const files = kept.get(key);
    if (!files) throw new UsageError(`no files kept for ${key}`);
    kept.delete(key);
    return putBlobs(files, '/api', (d, t) => progress(d, t, 'storing the files in the case'));
  },

  register(_args, progress) {
    return requireCase().procedure.register(progress);
  },

  verify(args, progress) {
    const [paths, opts] = args as [PlanPath[], { tolerance: { mm: number; deg: number }; frame: ScanFrame }];
    return requireCase().procedure.verify(paths, opts, progress);
  },

  /**
   * The report's key images from the volumes this worker holds, by core's reportModel and
   * reportKeyImages (as `corridor report` makes them), PNG by core's encodePng; with the pelvic views.
   */
  reportImages(args, progress) {
    const [r] = args as [ReportImagesRequest];
    const c = requireCase();
    const pc = c.planning;
    const notes: string[] = [];
    progress(0, 1, 'drawing the key images');
    let pelvic: PelvicViews | null = null;
    try {
      pelvic = pelvicViews(
        {
          paths: r.plan.paths,
          ct: pc.ct,
          ...(pc.labels && pc.anatomy ? { labels: pc.labels, anatomy: pc.anatomy } : {}),
        },
        r.system,
      );
    } catch (err) {
      notes.push(`no inlet/outlet views: ${(err as Error).message}`);
    }
    const model = reportModel({
      plan: r.plan,
      system: r.system,
      pelvic,
      ...(r.verification ? { verification: r.verification } : {}),
      ...(r.cement ? { cement: r.cement } : {}),
      generatedAt: new Date().toISOString(),
    });
    const scan = r.verification ? c.procedure.verificationInPlanFrame() : null;
    if (r.verification && !scan)
      notes.push('the verification scan was registered to the plan: the slices and DRRs show the planning scan');
    const cementScan = r.cement ? c.procedure.cementScans[c.procedure.cementScans.length - 1] : undefined;
    const k = reportKeyImages(model, {
      system: r.system,
      pelvic,
      ct: pc.ct,
      ...(scan ? { verificationScan: scan } : {}),
      ...(cementScan ? { cementScan } : {}),
      ...(pc.labels ? { labels: pc.labels, criticalLabels: c.procedure.criticalLabels() } : {}),
      ...(r.fluoroscopy ? { fluoroscopy: [r.fluoroscopy] } : {}),
    });
    const images = k.images.map(encodeKeyImage);
    progress(1, 1, 'drawing the key images');
    const reply: ReportImagesReply = { images, notes: [...notes, ...k.notes], pelvic };
    return { value: reply, transfer: images.map((i) => i.png.buffer) };
  },

  cement(args, progress) {
    const [paths, warningMm] = args as [PlanPath[], number | undefined];
    const out = requireCase().procedure.cement(paths, warningMm, progress);
    return { value: out, transfer: out.mask ? [out.mask.data.buffer] : [] };
  },
});
