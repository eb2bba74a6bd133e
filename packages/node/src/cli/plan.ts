/**
 * `corridor plan` (automatic planning of sacral paths) and `corridor analyze` (safety of each path of a
 * plan). All computation is core's; this module reads files, parses flags and prints.
 */
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import {
  BONE_MASK_PRESET_NAMES,
  DEFAULT_ALAR_MARGIN_MM,
  DEFAULT_MARGIN_MM,
  LABEL_ANATOMIES,
  SACRAL_PATH_IDS,
  UsageError,
  analyzePlanPaths,
  boneMaskPresetOptions,
  checkPlanGrid,
  labelAnatomyFor,
  mat4ToRows,
  mergePlanPaths,
  openPlanningCase,
  parseCoordinate,
  coordinateToLps,
  parsePlan,
  parseToolSpec,
  phantomAnatomy,
  planSacralPaths,
  planToJson,
  planToSlicerMarkups,
  slicerMarkupsToPlan,
  steppedCatalogue,
  type BoneMaskPresetName,
  type BoneMaskSettings,
  type CriticalStructure,
  type LabelAnatomy,
  type PathAnalysis,
  type Plan,
  type PlanningCase,
  type Point3,
  type SacralPathId,
  type TypedCoordinate,
  type Volume,
} from '@corridor/core';
import { loadLabelsPath, loadPath } from '../io/load.js';
import { updateFileAtomic, writeFileAtomic } from '../io/atomic-write.js';
import { checkOutputs } from '../io/output-guard.js';
import { progressBar } from './progress.js';

const ANATOMY_CHOICES = ['auto', ...LABEL_ANATOMIES];
const ANATOMY_HELP =
  `which labels are which (${ANATOMY_CHOICES.join('|')}); auto: the phantom when a truth.json lies beside the labels ` +
  '(only its label ids are read) or its label values are present, ' +
  'TotalSegmentator (sacrum 25, S1 26, hips 77/78, canal 79) when its hips are';

async function loadVolume(p: string): Promise<Volume> {
  const { series } = await loadPath(p);
  if (series.length !== 1) throw new UsageError(`expected one image series, found ${series.length}`, p);
  return series[0].volume;
}

function parseGroups(s: string): number[][] {
  const groups = s.split(';').map((g) => g.split(',').map((x) => Number(x.trim())));
  if (!groups.length || groups.some((g) => !g.length || g.some((x) => !Number.isInteger(x) || x < 0))) {
    throw new UsageError(`--bone-groups "${s}" is not label lists separated by ';' (e.g. 25,26;77;78)`);
  }
  return groups;
}

function parseCritical(s: string): CriticalStructure[] {
  if (!s.trim()) return [];
  return s.split(';').map((part) => {
    const m = /^([^=]+)=([0-9,\s]+)$/.exec(part.trim());
    if (!m) throw new UsageError(`--critical "${part}" is not NAME=LABEL[,LABEL...]`);
    return { name: m[1].trim(), labels: m[2].split(',').map((x) => Number(x.trim())) };
  });
}

/**
 * --seed NAME=x,y,z (LPS mm), NAME=lps:x,y,z, NAME=ras:x,y,z (mm, as 3D Slicer shows) or NAME=ijk:i,j,k
 * (voxel index of the CT): core's parseCoordinate, the same reader as the browser's crosshair field.
 */
function parseSeed(s: string): [string, TypedCoordinate] {
  const m = /^([A-Za-z0-9-]+)=(.*)$/.exec(s.trim());
  if (!m) throw new UsageError(`--seed "${s}" is not NAME=x,y,z (LPS mm), NAME=ras:x,y,z or NAME=ijk:i,j,k`);
  return [m[1], parseCoordinate(m[2], `--seed "${s}"`)];
}

interface MapOptions {
  labels?: string;
  anatomy?: string;
  boneGroups?: string;
  critical?: string;
  cortexHu?: string;
  fillPlanes?: string;
  sealMm?: string;
  softTissueHu?: string;
  boneMask?: string;
}

const FILL_PLANES_HELP =
  'without labels: also fill what the cortex encloses slice by slice, in planes normal to these axes ' +
  '(x,y for a demineralized sacrum whose alae open into the foramina)';

/** The options of a map made from intensities (no labels), for plan and analyze alike. */
function addIntensityOptions(cmd: Command, defaultNote = 'default standard'): Command {
  return cmd
    .option(
      '--bone-mask <preset>',
      `without labels: settings of the bone mask (${BONE_MASK_PRESET_NAMES.join('|')}; ${defaultNote}); ` +
        'the options below override its parts',
    )
    .option('--cortex-hu <hu>', 'without labels: HU threshold of the cortex (standard 200)')
    .option('--fill-planes <axes>', FILL_PLANES_HELP)
    .option(
      '--seal-mm <mm>',
      'without labels: cortical gaps narrower than twice this are sealed before the fill (standard 2)',
    )
    .option(
      '--soft-tissue-hu <hu>',
      'without labels: smoothed HU below which tissue connected to the outside is soft tissue, ' +
        'even inside the cortex (standard -20)',
    );
}

/** A number option, or undefined when not given; `ok` says which values are allowed (named in `what`). */
function numberOption(
  value: string | undefined,
  flag: string,
  ok: (x: number) => boolean,
  what: string,
): number | undefined {
  if (value === undefined) return undefined;
  const x = Number(value);
  if (value.trim() === '' || !Number.isFinite(x) || !ok(x)) throw new UsageError(`${flag} "${value}" must be ${what}`);
  return x;
}

/** --fill-planes "x,y": the patient axes normal to the slice planes filled in 2D (see IntensityMapOptions). */
function parseFillPlanes(s: string | undefined): ('x' | 'y' | 'z')[] | undefined {
  if (s === undefined || s === '' || s === 'none') return undefined;
  const axes = s.split(',').map((a) => a.trim().toLowerCase());
  if (!axes.every((a) => a === 'x' || a === 'y' || a === 'z'))
    throw new UsageError(`--fill-planes "${s}" is not a list of the axes x, y, z (e.g. x,y)`);
  return [...new Set(axes)] as ('x' | 'y' | 'z')[];
}

/** The phantom's truth.json beside the labels file, read for its label ids only; null when absent. */
async function phantomIdsBeside(labelsPath: string): Promise<LabelAnatomy | null> {
  const file = path.join(path.dirname(path.resolve(labelsPath)), 'truth.json');
  if (!(await exists(file))) return null;
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`not JSON: ${(err as Error).message}`, file);
  }
  const t = doc as { boneGroups?: unknown; criticalLabelIds?: unknown };
  if (typeof t !== 'object' || t === null || !t.boneGroups || !t.criticalLabelIds) return null; // some other truth file
  return phantomAnatomy(
    {
      boneGroups: t.boneGroups as Record<string, number[]>,
      criticalLabelIds: t.criticalLabelIds as Record<string, number[]>,
    },
    file,
  );
}

/** The label anatomy: named, or detected; --bone-groups / --critical override its parts. */
async function resolveAnatomy(labels: Volume, labelsPath: string, opts: MapOptions): Promise<LabelAnatomy> {
  const name = opts.anatomy ?? 'auto';
  if (!ANATOMY_CHOICES.includes(name))
    throw new UsageError(`--anatomy "${name}" is not one of ${ANATOMY_CHOICES.join(', ')}`);
  let anatomy: LabelAnatomy | null = null;
  const ids = name === 'totalsegmentator' ? null : await phantomIdsBeside(labelsPath);
  try {
    anatomy = labelAnatomyFor(labels, name, ids);
  } catch (err) {
    // Unknown labels are fine when the user names every label.
    if (!(opts.boneGroups && opts.critical !== undefined)) throw err;
  }
  if (opts.boneGroups) {
    const groups = parseGroups(opts.boneGroups);
    // User-named bones: the sacrum is the first group; foramina and canal seeds only if the anatomy is known.
    anatomy = {
      ...(anatomy ?? { name: 'totalsegmentator', critical: [], seeds: {} }),
      boneGroups: groups,
      sacrum: groups[0],
    };
  }
  if (!anatomy)
    throw new UsageError(
      'cannot tell which labels are which: name the anatomy, or give --bone-groups and --critical',
      labelsPath,
    );
  if (opts.critical !== undefined) anatomy = { ...anatomy, critical: parseCritical(opts.critical) };
  return anatomy;
}

/** The bone mask settings the flags give, or undefined when none was given (analyze then uses the plan's). */
function boneMaskFromFlags(opts: MapOptions): BoneMaskSettings | undefined {
  const given = [opts.boneMask, opts.cortexHu, opts.sealMm, opts.softTissueHu, opts.fillPlanes].some(
    (x) => x !== undefined,
  );
  if (!given) return undefined;
  const preset = opts.boneMask ?? 'standard';
  boneMaskPresetOptions(preset, '--bone-mask'); // a clear error for an unknown name
  const settings: BoneMaskSettings = { preset: preset as BoneMaskPresetName };
  const cortexHu = numberOption(opts.cortexHu, '--cortex-hu', () => true, 'a number');
  const sealMm = numberOption(opts.sealMm, '--seal-mm', (x) => x >= 0, 'a non-negative number');
  const softTissueHu = numberOption(opts.softTissueHu, '--soft-tissue-hu', () => true, 'a number');
  if (cortexHu !== undefined) settings.cortexHu = cortexHu;
  if (sealMm !== undefined) settings.sealMm = sealMm;
  if (softTissueHu !== undefined) settings.softTissueHu = softTissueHu;
  if (opts.fillPlanes !== undefined) settings.slicePlaneNormals = parseFillPlanes(opts.fillPlanes) ?? [];
  return settings;
}

/** The case core plans on: the CT, and the labels with their anatomy when given. */
async function openCase(volumePath: string, opts: MapOptions): Promise<PlanningCase> {
  const ct = await loadVolume(volumePath);
  if (!opts.labels) return openPlanningCase({ ct });
  // A DICOM SEG is read onto the CT's grid; its segment numbers are taken as they are when the user names
  // the labels (--bone-groups with --critical), else mapped by segment name where they are TotalSegmentator's.
  const byNumber = !!opts.boneGroups && opts.critical !== undefined;
  const loaded = await loadLabelsPath(opts.labels, ct, { segValues: byNumber ? 'number' : 'auto' });
  if (loaded.from === 'seg') for (const w of loaded.warnings) console.error(`warning: ${w}`);
  const labels = loaded.volume;
  const anatomy = await resolveAnatomy(labels, opts.labels, opts);
  return openPlanningCase({ ct, labels, anatomy });
}

const f1 = (x: number | null) => (x !== null && Number.isFinite(x) ? x.toFixed(1) : '-');
const fp = (p: Point3 | null) => (p ? `(${p.map(f1).join(', ')})` : '-');

function printAnalysis(a: PathAnalysis) {
  console.log(
    `${a.name} [${a.id}]: ${a.kind} ${a.diameterMm} mm, length ${f1(a.lengthMm)} mm, in bone ${f1(a.inBoneMm)} mm`,
  );
  console.log(`  cortex entry ${fp(a.cortexEntry)}, exit ${fp(a.cortexExit)}, bone to bone ${f1(a.boneToBoneMm)} mm`);
  console.log(
    `  min clearance ${f1(a.minClearanceMm)} mm at ${fp(a.narrowestAt)}; widest tool ${f1(a.maxDiameterMm)} mm; ` +
      `${a.fits ? 'FITS' : 'DOES NOT FIT'} (margin ${a.marginMm} mm)`,
  );
  for (const b of a.breaches)
    console.log(
      `  BREACH ${b.structure} at ${fp(b.at)}, ${f1(b.depthMm)} mm deep ` +
        `(${f1(b.fromMm)}-${f1(b.toMm)} mm along the path)`,
    );
  for (const n of a.notes) console.log(`  note: ${n}`);
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

async function readPlanFile(p: string, volumePath: string): Promise<Plan> {
  let text: string;
  try {
    text = await readFile(p, 'utf8');
  } catch {
    throw new UsageError('cannot read plan file', p);
  }
  return parsePlanText(text, p, volumePath);
}

function parsePlanText(text: string, p: string, volumePath: string): Plan {
  if (/\.mrk\.json$/i.test(p)) return slicerMarkupsToPlan(text, p, { volume: { file: volumePath } }).plan;
  return parsePlan(text, p);
}

function planFileText(p: string, plan: Plan): string {
  const doc = /\.mrk\.json$/i.test(p) ? planToSlicerMarkups(plan) : planToJson(plan);
  return JSON.stringify(doc, null, 2) + '\n';
}

/**
 * --append: merge `plan`'s paths into the plan in `p` under a lock, compared before the rename, so
 * concurrent writers each keep their paths (see updateFileAtomic). Returns the plan written.
 */
export async function appendToPlanFile(p: string, plan: Plan, volumePath: string, hook?: () => Promise<void>) {
  let merged = plan;
  await updateFileAtomic(
    p,
    (current) => {
      if (current === null) merged = plan;
      else {
        const base = parsePlanText(new TextDecoder().decode(current), p, volumePath);
        merged = mergePlanPaths(base, plan.paths, plan.volume.indexToPatient, p);
      }
      return planFileText(p, merged);
    },
    { afterRead: hook },
  );
  return merged;
}

export function register(program: Command): void {
  const planCommand = program
    .command('plan')
    .description('plan sacral paths automatically (S1/S2 trans-sacral screws, alar trocars) and write a plan')
    .argument('<volume>', 'CT volume (file or DICOM folder)')
    .requiredOption('--auto <paths>', `comma-separated: ${SACRAL_PATH_IDS.join(',')}`)
    .requiredOption('--out <plan>', 'plan file to write (plan.json, or .mrk.json for 3D Slicer)')
    .option(
      '--append',
      'add the paths to the plan already in --out (same volume): a path of the same id is replaced, the others kept',
    )
    .option('--labels <labels>', "segmentation on the CT's grid (bone and critical labels), or a DICOM SEG of it")
    .option('--anatomy <name>', ANATOMY_HELP, 'auto')
    .option(
      '--bone-groups <groups>',
      "bone labels, one group per bone (sacrum first), groups separated by ; (replaces the anatomy's)",
    )
    .option('--critical <list>', "critical structures NAME=LABELS separated by ; (replaces the anatomy's)")
    .option('--tool <spec>', 'screw for S1/S2 as KIND:SIZE (mm or gauge)', 'screw:7.3')
    .option('--alar-tool <spec>', 'tool for the alar paths', 'trocar:11G')
    .option(
      '--margin <mm>',
      'safety margin (mm) between an S1/S2 tool and any forbidden voxel',
      String(DEFAULT_MARGIN_MM),
    )
    .option(
      '--alar-margin <mm>',
      `safety margin (mm) of the alar paths (default the larger of --margin and ${DEFAULT_ALAR_MARGIN_MM})`,
    )
    .option('--catalogue-step <mm>', 'screw length catalogue step', '5');
  addIntensityOptions(planCommand)
    .option('--search-mm <mm>', 'how far (mm) an S1/S2 search may move from a seed given with --seed (default 15)')
    .option(
      '--seed <name=x,y,z>',
      'seed point for a path, repeatable: NAME=x,y,z or NAME=lps:x,y,z (LPS mm), NAME=ras:x,y,z ' +
        '(RAS mm, as 3D Slicer shows it), NAME=ijk:i,j,k (voxel index of the CT)',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option('--json', 'print the results as JSON')
    .option('--force', 'write --out even over an input or a file that is not a plan')
    .option('--progress', 'draw a progress bar on stderr even when it is not a terminal')
    .option('--quiet', 'no progress on stderr')
    .action(async (volumePath: string, opts: Record<string, string | string[] | boolean | undefined>) => {
      const inputs = [volumePath, ...(opts.labels ? [String(opts.labels)] : [])];
      const outFile = String(opts.out);
      const allowInput = opts.append ? [outFile] : []; // --append reads and updates it
      await checkOutputs([{ file: outFile, kind: 'plan' }], inputs, { force: !!opts.force, allowInput });
      const names = String(opts.auto)
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      for (const n of names)
        if (!SACRAL_PATH_IDS.includes(n as SacralPathId))
          throw new UsageError(`--auto: unknown path "${n}" (have ${SACRAL_PATH_IDS.join(', ')})`);
      const seeds = new Map((opts.seed as string[]).map(parseSeed));
      for (const k of seeds.keys())
        if (!SACRAL_PATH_IDS.includes(k as SacralPathId)) throw new UsageError(`--seed: unknown path "${k}"`);
      const marginMm = numberOption(opts.margin as string, '--margin', (x) => x >= 0, 'a non-negative number');
      const alarMarginMm = numberOption(
        opts.alarMargin as string | undefined,
        '--alar-margin',
        (x) => x >= 0,
        'a non-negative number',
      );
      const step = numberOption(opts.catalogueStep as string, '--catalogue-step', (x) => x > 0, 'a positive number');
      const searchMm = numberOption(
        opts.searchMm as string | undefined,
        '--search-mm',
        (x) => x > 0,
        'a positive number',
      );
      const mapOpts = opts as unknown as MapOptions;
      const boneMask = boneMaskFromFlags(mapOpts);
      const pc = await openCase(volumePath, mapOpts);
      const bar = progressBar('plan', { quiet: !!opts.quiet, progress: !!opts.progress });
      const result = planSacralPaths(pc, {
        onProgress: (d, t, label) => bar.update(d, t, label),
        paths: names as SacralPathId[],
        seeds: Object.fromEntries(
          [...seeds].map(([k, c]) => [k, coordinateToLps(c, pc.ct, `--seed ${k}`)] as [string, Point3]),
        ),
        boneMask,
        screw: parseToolSpec(String(opts.tool)),
        alarTool: parseToolSpec(String(opts.alarTool)),
        marginMm,
        alarMarginMm,
        searchMm,
        catalogue: steppedCatalogue(step),
      });
      bar.clear();
      const out = String(opts.out);
      const indexToPatient = Float64Array.from(pc.ct.indexToPatient);
      let plan: Plan = {
        schemaVersion: 1,
        volume: { file: path.relative(path.dirname(path.resolve(out)), path.resolve(volumePath)), indexToPatient },
        paths: result.paths.map((r) => r.path),
      };
      // --append on a file that is not there yet simply writes it; one that cannot be read is left alone.
      if (opts.append) plan = await appendToPlanFile(out, plan, volumePath);
      else await writeFileAtomic(out, planFileText(out, plan));
      if (opts.json) {
        console.log(
          JSON.stringify(
            {
              schemaVersion: 1,
              plan: planToJson(plan),
              results: result.paths.map((r) => ({
                id: r.path.id,
                analysis: r.analysis,
                profile: r.profile,
                orderLengthMm: r.orderLengthMm,
                threadInBoneMm: r.threadInBoneMm,
                notes: r.notes,
              })),
              anatomy: result.anatomy,
              volume: { indexToPatient: mat4ToRows(indexToPatient) },
            },
            null,
            2,
          ),
        );
      } else {
        for (const r of result.paths) {
          printAnalysis(r.analysis);
          if (r.orderLengthMm !== null) {
            const thread = r.threadInBoneMm
              ? `; thread in bone ${f1(r.threadInBoneMm.entrySide)} mm entry side, ` +
                `${f1(r.threadInBoneMm.farSide)} mm far side of the midline`
              : '';
            console.log(`  order: ${r.orderLengthMm} mm${thread}`);
          }
          for (const n of r.notes) console.log(`  ${n}`);
        }
        console.log(`plan written to ${out}`);
      }
    });

  const analyzeCommand = program
    .command('analyze')
    .description('analyse each path of a plan: bone length, cortex entry/exit, clearance, breaches')
    .argument('<plan>', 'plan.json or a 3D Slicer .mrk.json')
    .argument('<volume>', 'CT volume the plan was made on')
    .option('--labels <labels>', "segmentation on the CT's grid (bone and critical labels), or a DICOM SEG of it")
    .option('--anatomy <name>', ANATOMY_HELP, 'auto')
    .option(
      '--bone-groups <groups>',
      "bone labels, one group per bone (sacrum first), groups separated by ; (replaces the anatomy's)",
    )
    .option('--critical <list>', "critical structures NAME=LABELS separated by ; (replaces the anatomy's)")
    .option(
      '--margin <mm>',
      `safety margin (mm) for every path (default: the margin each path was planned with, else ${DEFAULT_MARGIN_MM})`,
    );
  addIntensityOptions(analyzeCommand, 'default: the settings each path was planned with, else standard')
    .option('--json', 'print the results as JSON')
    .action(async (planPath: string, volumePath: string, opts: Record<string, string | boolean | undefined>) => {
      const plan = await readPlanFile(planPath, volumePath);
      const marginMm = numberOption(
        opts.margin as string | undefined,
        '--margin',
        (x) => x >= 0,
        'a non-negative number',
      );
      const mapOpts = opts as unknown as MapOptions;
      const boneMask = boneMaskFromFlags(mapOpts);
      const pc = await openCase(volumePath, mapOpts);
      const warning = checkPlanGrid(pc, plan, planPath);
      const reports = analyzePlanPaths(pc, plan.paths, { marginMm, boneMask });
      const warnings = warning ? [warning] : [];
      if (opts.json) {
        console.log(
          JSON.stringify(
            {
              schemaVersion: 1,
              paths: reports.map((r) => r.analysis),
              profiles: reports.map((r) => r.profile),
              warnings,
            },
            null,
            2,
          ),
        );
      } else {
        for (const w of warnings) console.log(`warning: ${w}`);
        reports.forEach((r) => printAnalysis(r.analysis));
      }
    });
}
