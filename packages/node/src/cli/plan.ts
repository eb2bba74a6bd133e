/**
 * `corridor plan` (automatic planning of sacral paths) and `corridor analyze` (safety of each path of a
 * plan). All computation is core's; this module reads files, parses flags and prints.
 */
import { access, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import {
  BONE_MASK_PRESET_NAMES,
  LABEL_ANATOMIES,
  UsageError,
  analyzePath,
  boneMaskPresetOptions,
  corridorMapFromIntensity,
  corridorMapFromLabels,
  detectLabelAnatomy,
  mat4ToRows,
  mergePlanPaths,
  parsePlan,
  parseToolSpec,
  phantomAnatomy,
  planAlar,
  planToJson,
  planToSlicerMarkups,
  planTransSacral,
  sacralRegion,
  sacralSeedsFromLabels,
  slicerMarkupsToPlan,
  steppedCatalogue,
  totalSegmentatorAnatomy,
  type AutoPathResult,
  type CorridorMap,
  type CriticalStructure,
  type LabelAnatomy,
  type PathAnalysis,
  type Plan,
  type Point3,
  type Volume,
} from '@corridor/core';
import { loadPath } from '../io/load.js';

const AUTO_PATHS = ['s1', 's2', 'alar-left', 'alar-right'] as const;
type AutoName = (typeof AUTO_PATHS)[number];

const ANATOMY_CHOICES = ['auto', ...LABEL_ANATOMIES];
const ANATOMY_HELP =
  `which labels are which (${ANATOMY_CHOICES.join('|')}); auto: the phantom when a truth.json lies beside the labels ` +
  '(only its label ids are read) or its label values are present, TotalSegmentator (sacrum 25, S1 26, hips 77/78, canal 79) when its hips are';

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

function parseSeed(s: string): [string, Point3] {
  const m = /^([A-Za-z0-9-]+)=(-?[0-9.eE+-]+),(-?[0-9.eE+-]+),(-?[0-9.eE+-]+)$/.exec(s.trim());
  const p = m ? [Number(m[2]), Number(m[3]), Number(m[4])] : [];
  if (!m || !p.every(Number.isFinite)) throw new UsageError(`--seed "${s}" is not NAME=x,y,z (LPS mm)`);
  return [m[1], p as Point3];
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
  'without labels: also fill what the cortex encloses slice by slice, in planes normal to these axes (x,y for a demineralized sacrum whose alae open into the foramina)';

/** The options of a map made from intensities (no labels), for plan and analyze alike. */
function addIntensityOptions(cmd: Command): Command {
  return cmd
    .option('--bone-mask <preset>', `without labels: settings of the bone mask (${BONE_MASK_PRESET_NAMES.join('|')}); the three options below override its parts`, 'standard')
    .option('--cortex-hu <hu>', 'without labels: HU threshold of the cortex', '200')
    .option('--fill-planes <axes>', FILL_PLANES_HELP)
    .option('--seal-mm <mm>', 'without labels: cortical gaps narrower than twice this are sealed before the fill (standard 2)')
    .option('--soft-tissue-hu <hu>', 'without labels: smoothed HU below which tissue connected to the outside is soft tissue, even inside the cortex (standard -20)');
}

/** A number option, or undefined when not given; `ok` says which values are allowed (named in `what`). */
function numberOption(value: string | undefined, flag: string, ok: (x: number) => boolean, what: string): number | undefined {
  if (value === undefined) return undefined;
  const x = Number(value);
  if (value.trim() === '' || !Number.isFinite(x) || !ok(x)) throw new UsageError(`${flag} "${value}" must be ${what}`);
  return x;
}

/** --fill-planes "x,y": the patient axes normal to the slice planes filled in 2D (see IntensityMapOptions). */
function parseFillPlanes(s: string | undefined): ('x' | 'y' | 'z')[] | undefined {
  if (s === undefined || s === '' || s === 'none') return undefined;
  const axes = s.split(',').map((a) => a.trim().toLowerCase());
  if (!axes.every((a) => a === 'x' || a === 'y' || a === 'z')) throw new UsageError(`--fill-planes "${s}" is not a list of the axes x, y, z (e.g. x,y)`);
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
  return phantomAnatomy({ boneGroups: t.boneGroups as Record<string, number[]>, criticalLabelIds: t.criticalLabelIds as Record<string, number[]> }, file);
}

/** The label anatomy: named, or detected; --bone-groups / --critical override its parts. */
async function resolveAnatomy(labels: Volume, labelsPath: string, opts: MapOptions): Promise<LabelAnatomy> {
  const name = opts.anatomy ?? 'auto';
  if (!ANATOMY_CHOICES.includes(name)) throw new UsageError(`--anatomy "${name}" is not one of ${ANATOMY_CHOICES.join(', ')}`);
  let anatomy: LabelAnatomy | null = null;
  if (name === 'phantom') anatomy = (await phantomIdsBeside(labelsPath)) ?? phantomAnatomy();
  else if (name === 'totalsegmentator') anatomy = totalSegmentatorAnatomy();
  else {
    anatomy = await phantomIdsBeside(labelsPath);
    if (!anatomy) {
      try {
        anatomy = detectLabelAnatomy(labels) === 'phantom' ? phantomAnatomy() : totalSegmentatorAnatomy();
      } catch (err) {
        // Unknown labels are fine when the user names every label.
        if (!(opts.boneGroups && opts.critical !== undefined)) throw err;
      }
    }
  }
  if (opts.boneGroups) {
    const groups = parseGroups(opts.boneGroups);
    // User-named bones: the sacrum is the first group; foramina and canal seeds only if the anatomy is known.
    anatomy = { ...(anatomy ?? { name: 'totalsegmentator', critical: [], seeds: {} }), boneGroups: groups, sacrum: groups[0] };
  }
  if (opts.critical !== undefined) anatomy = { ...anatomy!, critical: parseCritical(opts.critical) };
  return anatomy!;
}

interface Loaded {
  map: CorridorMap;
  /** The CT, loaded once (when needed: without labels, or for the plan's geometry). */
  ct?: Volume;
  labels?: Volume;
  anatomy?: LabelAnatomy;
}

/**
 * The corridor map. `forPlanning`: the paths to come are sacral, so only the sacral region of the labels
 * is mapped (sacralRegion: a fraction of the cost); the CT is loaded for the plan's geometry.
 */
async function buildMap(volumePath: string, opts: MapOptions, seeds: Point3[], forPlanning: boolean): Promise<Loaded> {
  if (opts.labels) {
    const ct = forPlanning ? await loadVolume(volumePath) : undefined;
    const all = await loadVolume(opts.labels);
    const anatomy = await resolveAnatomy(all, opts.labels, opts);
    const labels = forPlanning ? sacralRegion(all, anatomy.sacrum) : all;
    const map = corridorMapFromLabels(labels, { boneGroups: anatomy.boneGroups, critical: anatomy.critical });
    return { map, ct, labels, anatomy };
  }
  const preset = boneMaskPresetOptions(opts.boneMask ?? 'standard', '--bone-mask');
  const cortexHu = numberOption(opts.cortexHu, '--cortex-hu', () => true, 'a number');
  const sealMm = numberOption(opts.sealMm, '--seal-mm', (x) => x >= 0, 'a non-negative number') ?? preset.sealMm;
  const softTissueHu = numberOption(opts.softTissueHu, '--soft-tissue-hu', () => true, 'a number') ?? preset.softTissueHu;
  const slicePlaneNormals = opts.fillPlanes !== undefined ? parseFillPlanes(opts.fillPlanes) : preset.slicePlaneNormals;
  const ct = await loadVolume(volumePath);
  return { map: corridorMapFromIntensity(ct, { seeds, cortexHu, slicePlaneNormals, sealMm, softTissueHu }), ct };
}

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : String(x));
const fp = (p: Point3 | null) => (p ? `(${p.map(f1).join(', ')})` : '-');

function printAnalysis(a: PathAnalysis) {
  console.log(`${a.name} [${a.id}]: ${a.kind} ${a.diameterMm} mm, length ${f1(a.lengthMm)} mm, in bone ${f1(a.inBoneMm)} mm`);
  console.log(`  cortex entry ${fp(a.cortexEntry)}, exit ${fp(a.cortexExit)}, bone to bone ${f1(a.boneToBoneMm)} mm`);
  console.log(`  min clearance ${f1(a.minClearanceMm)} mm at ${fp(a.narrowestAt)}; widest tool ${f1(a.maxDiameterMm)} mm; ${a.fits ? 'FITS' : 'DOES NOT FIT'} (margin ${a.marginMm} mm)`);
  for (const b of a.breaches) console.log(`  BREACH ${b.structure} at ${fp(b.at)}, ${f1(b.depthMm)} mm deep (${f1(b.fromMm)}-${f1(b.toMm)} mm along the path)`);
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
  if (/\.mrk\.json$/i.test(p)) return slicerMarkupsToPlan(text, p, { volume: { file: volumePath } }).plan;
  return parsePlan(text, p);
}

async function writePlanFile(p: string, plan: Plan) {
  const doc = /\.mrk\.json$/i.test(p) ? planToSlicerMarkups(plan) : planToJson(plan);
  await writeFile(p, JSON.stringify(doc, null, 2) + '\n');
}

export function register(program: Command): void {
  const planCommand = program
    .command('plan')
    .description('plan sacral paths automatically (S1/S2 trans-sacral screws, alar trocars) and write a plan')
    .argument('<volume>', 'CT volume (file or DICOM folder)')
    .requiredOption('--auto <paths>', `comma-separated: ${AUTO_PATHS.join(',')}`)
    .requiredOption('--out <plan>', 'plan file to write (plan.json, or .mrk.json for 3D Slicer)')
    .option('--append', 'add the paths to the plan already in --out (same volume): a path of the same id is replaced, the others kept')
    .option('--labels <labels>', 'segmentation on the same grid (bone and critical labels)')
    .option('--anatomy <name>', ANATOMY_HELP, 'auto')
    .option('--bone-groups <groups>', 'bone labels, one group per bone (sacrum first), groups separated by ; (replaces the anatomy\'s)')
    .option('--critical <list>', 'critical structures NAME=LABELS separated by ; (replaces the anatomy\'s)')
    .option('--tool <spec>', 'screw for S1/S2 as KIND:SIZE (mm or gauge)', 'screw:7.3')
    .option('--alar-tool <spec>', 'tool for the alar paths', 'trocar:11G')
    .option('--margin <mm>', 'safety margin between the tool and any forbidden voxel', '1')
    .option('--catalogue-step <mm>', 'screw length catalogue step', '5');
  addIntensityOptions(planCommand)
    .option('--search-mm <mm>', 'how far (mm) an S1/S2 search may move from a seed given with --seed (default 15)')
    .option('--seed <name=x,y,z>', 'seed point (LPS mm) for a path, repeatable', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--json', 'print the results as JSON')
    .action(async (volumePath: string, opts: Record<string, string | string[] | boolean | undefined>) => {
      const names = String(opts.auto).split(',').map((s) => s.trim()).filter(Boolean);
      for (const n of names) if (!AUTO_PATHS.includes(n as AutoName)) throw new UsageError(`--auto: unknown path "${n}" (have ${AUTO_PATHS.join(', ')})`);
      const seeds = new Map((opts.seed as string[]).map(parseSeed));
      for (const k of seeds.keys()) if (!AUTO_PATHS.includes(k as AutoName)) throw new UsageError(`--seed: unknown path "${k}"`);
      const margin = numberOption(opts.margin as string, '--margin', (x) => x >= 0, 'a non-negative number')!;
      const tool = parseToolSpec(String(opts.tool));
      const alarTool = parseToolSpec(String(opts.alarTool));
      const catalogue = steppedCatalogue(Number(opts.catalogueStep));
      const userSearchMm = numberOption(opts.searchMm as string | undefined, '--search-mm', (x) => x > 0, 'a positive number');
      const { map, ct, labels, anatomy } = await buildMap(volumePath, opts as unknown as MapOptions, [...seeds.values()], true);
      const derived = labels && anatomy ? sacralSeedsFromLabels(labels, anatomy.sacrum, anatomy.seeds) : undefined;
      const seedFor = (n: AutoName): Point3 => {
        const s = seeds.get(n) ?? (derived ? { s1: derived.s1, s2: derived.s2, 'alar-left': derived.alarLeft, 'alar-right': derived.alarRight }[n] : undefined);
        if (!s) throw new UsageError(`no labels: give --seed ${n}=x,y,z (LPS mm) for this path`);
        return s;
      };
      const midlineX = derived?.midlineX ?? seeds.get('s1')?.[0] ?? seeds.get('s2')?.[0];
      const results: AutoPathResult[] = [];
      for (const n of names) {
        if (n === 's1' || n === 's2') {
          // The derived seeds come with a search radius that keeps S1 and S2 apart; a user's seed keeps the
          // default or --search-mm (a narrow S2 next to a wide S1 needs a small one, or S2 drifts to S1).
          const searchMm = seeds.has(n) ? userSearchMm : derived?.levelSearchMm;
          results.push(planTransSacral(map, { id: n, name: `${n.toUpperCase()} trans-sacral`, tool, seed: seedFor(n), midlineX, searchMm, marginMm: margin, catalogue }));
        } else {
          const side = n === 'alar-left' ? 'left' : 'right';
          results.push(planAlar(map, { id: n, name: `Alar ${side}`, tool: alarTool, side, seed: seedFor(n as AutoName), marginMm: Math.max(margin, 2) }));
        }
      }
      const out = String(opts.out);
      let plan: Plan = {
        schemaVersion: 1,
        volume: { file: path.relative(path.dirname(path.resolve(out)), path.resolve(volumePath)), indexToPatient: ct!.indexToPatient },
        paths: results.map((r) => r.path),
      };
      // --append on a file that is not there yet simply writes it; one that cannot be read is left alone.
      if (opts.append && (await exists(out))) plan = mergePlanPaths(await readPlanFile(out, volumePath), plan.paths, ct!.indexToPatient, out);
      await writePlanFile(out, plan);
      if (opts.json) {
        console.log(JSON.stringify({
          schemaVersion: 1,
          plan: planToJson(plan),
          results: results.map((r) => ({ id: r.path.id, analysis: r.analysis, orderLengthMm: r.orderLengthMm ?? null, threadInBoneMm: r.threadInBoneMm ?? null, notes: r.notes })),
          anatomy: anatomy ? { name: anatomy.name, levelsFrom: derived?.levelsFrom ?? null } : null,
          volume: { indexToPatient: mat4ToRows(ct!.indexToPatient) },
        }, null, 2));
      } else {
        for (const r of results) {
          printAnalysis(r.analysis);
          if (r.orderLengthMm !== undefined) console.log(`  order: ${r.orderLengthMm} mm${r.threadInBoneMm ? `; thread in bone ${f1(r.threadInBoneMm.entrySide)} mm entry side, ${f1(r.threadInBoneMm.farSide)} mm far side of the midline` : ''}`);
          for (const n of r.notes) console.log(`  ${n}`);
        }
        console.log(`plan written to ${opts.out}`);
      }
    });

  const analyzeCommand = program
    .command('analyze')
    .description('analyse each path of a plan: bone length, cortex entry/exit, clearance, breaches')
    .argument('<plan>', 'plan.json or a 3D Slicer .mrk.json')
    .argument('<volume>', 'CT volume the plan was made on')
    .option('--labels <labels>', 'segmentation on the same grid (bone and critical labels)')
    .option('--anatomy <name>', ANATOMY_HELP, 'auto')
    .option('--bone-groups <groups>', 'bone labels, one group per bone (sacrum first), groups separated by ; (replaces the anatomy\'s)')
    .option('--critical <list>', 'critical structures NAME=LABELS separated by ; (replaces the anatomy\'s)')
    .option('--margin <mm>', 'safety margin between the tool and any forbidden voxel', '1');
  addIntensityOptions(analyzeCommand)
    .option('--json', 'print the results as JSON')
    .action(async (planPath: string, volumePath: string, opts: Record<string, string | boolean | undefined>) => {
      const plan = await readPlanFile(planPath, volumePath);
      const margin = numberOption(opts.margin as string, '--margin', (x) => x >= 0, 'a non-negative number')!;
      const pts = plan.paths.flatMap((p) => [p.entry, p.target]);
      const { map } = await buildMap(volumePath, opts as unknown as MapOptions, pts, false);
      const analyses = plan.paths.map((p) => analyzePath(map, p, { marginMm: margin }));
      if (opts.json) console.log(JSON.stringify({ schemaVersion: 1, paths: analyses }, null, 2));
      else analyses.forEach(printAnalysis);
    });
}
