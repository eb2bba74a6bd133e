/**
 * `corridor phantom`: writes the synthetic pelvis (core's generatePhantom) as ct.nii.gz, labels.nii.gz,
 * truth.json and optionally a DICOM CT series, and with --cbct cbct.nii.gz: the stage as a simulated C-arm
 * CT (the `corridor cbct` acquisition and FDK, its flags and their parsing shared with cli/cbct.ts) in the
 * same patient frame, so truth.json holds for it unchanged. All computation is core's; this module parses
 * flags and writes files. Same flags give byte-identical files.
 */
import { mkdir, readFile, readdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import {
  FORAMEN_NAMES,
  PHANTOM_ANATOMIES,
  PHANTOM_DEFAULT_VOXEL_MM,
  PHANTOM_STAGES,
  UsageError,
  WriteError,
  cbctDescription,
  generatePhantom,
  parseDicom,
  writeDicomSeries,
  writeNifti,
  type AnatomyVariant,
  type ForamenName,
  type PhantomOptions,
  type PhantomStage,
} from '@corridor/core';
import { writeFileAtomic } from '../io/atomic-write.js';
import { checkOutputs } from '../io/output-guard.js';
import { simulateCbctParallel, type ParallelCbctOptions } from '../recon/cbct.js';
import {
  CBCT_FLAG_DEFAULTS,
  PHANTOM_CBCT_FLAGS,
  addCbctFlags,
  cbctOptionsFrom,
  progressLine,
  writeReconstruction,
  type CbctFlagValues,
} from './cbct.js';

/** The `corridor cbct` flags that --cbct takes (PHANTOM_CBCT_FLAGS), as commander fills them in. */
type PhantomCbctFlags = Partial<Omit<CbctFlagValues, 'voxel' | 'seed' | 'blur'>>;

export interface PhantomCliOptions extends PhantomCbctFlags {
  out: string;
  /** Also write cbct.nii.gz, the stage as a simulated C-arm CT. */
  cbct?: boolean;
  /** Its voxel edge, mm (default 1). */
  cbctVoxel?: string;
  anatomy: string;
  stage: string;
  voxel: string;
  seed: string;
  cementMl?: string;
  leak?: string;
  leakMl?: string;
  dicom?: boolean;
  noise: boolean;
  blur: boolean;
  quiet?: boolean;
  progress?: boolean;
  force?: boolean;
}

function parseOptions(o: PhantomCliOptions): PhantomOptions {
  if (!PHANTOM_ANATOMIES.includes(o.anatomy as AnatomyVariant))
    throw new UsageError(`--anatomy "${o.anatomy}" is not one of ${PHANTOM_ANATOMIES.join(', ')}`);
  if (!PHANTOM_STAGES.includes(o.stage as PhantomStage))
    throw new UsageError(`--stage "${o.stage}" is not one of ${PHANTOM_STAGES.join(', ')}`);
  const voxelMm = Number(o.voxel);
  if (!Number.isFinite(voxelMm)) throw new UsageError(`--voxel "${o.voxel}" is not a number (mm)`);
  if (!/^\d+$/.test(o.seed)) throw new UsageError(`--seed "${o.seed}" is not a non-negative integer`);
  const opts: PhantomOptions = {
    anatomy: o.anatomy as AnatomyVariant,
    stage: o.stage as PhantomStage,
    voxelMm,
    seed: Number(o.seed),
    noise: o.noise,
    blur: o.blur,
  };
  if (o.cementMl !== undefined) {
    const parts = o.cementMl.split(',').map((x) => Number(x.trim()));
    if (parts.length !== 2 || !parts.every(Number.isFinite))
      throw new UsageError(`--cement-ml "${o.cementMl}" is not LEFT,RIGHT (ml)`);
    opts.cementMl = [parts[0], parts[1]];
  }
  if (o.leak !== undefined) {
    if (!FORAMEN_NAMES.includes(o.leak as ForamenName))
      throw new UsageError(`--leak "${o.leak}" is not one of ${FORAMEN_NAMES.join(', ')}`);
    opts.leak = o.leak as ForamenName;
  }
  if (o.leakMl !== undefined) {
    const v = Number(o.leakMl);
    if (!Number.isFinite(v)) throw new UsageError(`--leak-ml "${o.leakMl}" is not a number (ml)`);
    opts.leakMl = v;
  }
  if (opts.stage !== 'cement' && (o.cementMl !== undefined || o.leak !== undefined)) {
    throw new UsageError('--cement-ml and --leak need --stage cement');
  }
  return opts;
}

const PHANTOM_PATIENT = 'Corridor^Phantom';

/** Whether a file is a slice of a series `corridor phantom` wrote (its manufacturer and patient name). */
async function isPhantomSlice(file: string): Promise<boolean> {
  try {
    const ds = parseDicom(await readFile(file), file);
    return ds.string('x00080070') === 'Corridor' && ds.string('x00100010') === PHANTOM_PATIENT;
  } catch {
    return false;
  }
}

/**
 * The files in DIR/dicom that an earlier `corridor phantom --dicom` wrote (removed before the new
 * series is written, so two series never mix). Anything else there (a user's file, a folder) makes the
 * command refuse unless --force; even then it is left alone, never deleted.
 */
async function ownDicomFiles(dicomDir: string, force: boolean): Promise<string[]> {
  let names: string[];
  try {
    const st = await stat(dicomDir);
    if (!st.isDirectory()) {
      throw new WriteError('is not a folder; refusing to replace it with a DICOM series', dicomDir, 'kind');
    }
    names = await readdir(dicomDir);
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return [];
    throw err;
  }
  const own: string[] = [];
  const foreign: string[] = [];
  for (const n of names) {
    const p = path.join(dicomDir, n);
    const st = await stat(p);
    if (st.isFile() && (await isPhantomSlice(p))) own.push(p);
    else foreign.push(n);
  }
  if (foreign.length && !force) {
    const list = foreign.slice(0, 3).join(', ') + (foreign.length > 3 ? `, ... (${foreign.length} in all)` : '');
    throw new WriteError(
      `holds files that are not a phantom series (${list}); refusing to write the series beside ` +
        'them (use another --out, or --force to write beside them; they are never deleted)',
      dicomDir,
      'foreign',
    );
  }
  return own;
}

/**
 * The simulated C-arm CT's options: the cbct flags given (the rest at their cbct defaults), voxel
 * --cbct-voxel, the noise seed the phantom's --seed, the detector blur cbct's default.
 */
function phantomCbctOptions(o: PhantomCliOptions): ParallelCbctOptions {
  const given: Partial<CbctFlagValues> = {};
  for (const k of PHANTOM_CBCT_FLAGS) {
    const v = o[k as keyof PhantomCbctFlags];
    if (v !== undefined) (given as Record<string, unknown>)[k] = v;
  }
  return cbctOptionsFrom({
    ...CBCT_FLAG_DEFAULTS,
    ...given,
    voxel: o.cbctVoxel ?? CBCT_FLAG_DEFAULTS.voxel,
    seed: o.seed,
  });
}

/** Generate and write the phantom; returns the paths written. */
export async function writePhantom(o: PhantomCliOptions): Promise<string[]> {
  const options = parseOptions(o);
  if (!o.cbct && o.cbctVoxel !== undefined) throw new UsageError('--cbct-voxel needs --cbct');
  const cbctOptions = o.cbct ? phantomCbctOptions(o) : undefined;
  const dir = o.out;
  const kinds = [
    ['ct.nii.gz', 'volume'],
    ['labels.nii.gz', 'volume'],
    ['truth.json', 'phantom-truth'],
    ...(cbctOptions ? ([['cbct.nii.gz', 'volume']] as const) : []),
  ] as const;
  await checkOutputs(
    kinds.map(([name, kind]) => ({ file: path.join(dir, name), kind })),
    [],
    { force: o.force },
  );
  const dicomDir = path.join(dir, 'dicom');
  const oldSlices = o.dicom ? await ownDicomFiles(dicomDir, !!o.force) : [];
  const log = (s: string) => {
    if (!o.quiet) process.stderr.write(s);
  };
  let lastPhase = '';
  const t0 = performance.now();
  const { ct, labels, truth } = generatePhantom(options, (p) => {
    if (p.phase !== lastPhase) log(`${lastPhase ? '\n' : ''}phantom: ${p.phase} `);
    else if (p.phase === 'voxelize') log('.');
    lastPhase = p.phase;
  });
  log(
    `\nphantom: generated ${ct.dims.join(' x ')} voxels of ${truth.voxelMm} mm ` +
      `in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
  );
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  const put = async (name: string, bytes: Uint8Array | string) => {
    const p = path.join(dir, name);
    await writeFileAtomic(p, bytes);
    written.push(p);
  };
  await put('ct.nii.gz', writeNifti(ct, { gzip: true }));
  await put('labels.nii.gz', writeNifti(labels, { gzip: true }));
  await put('truth.json', JSON.stringify(truth, null, 2) + '\n');
  if (o.dicom) {
    await mkdir(dicomDir, { recursive: true });
    const files = writeDicomSeries(ct, {
      patientName: PHANTOM_PATIENT,
      patientId: `PHANTOM-${truth.anatomy.toUpperCase()}`,
      studyDescription: 'Corridor synthetic pelvis',
      seriesDescription: `phantom ${truth.anatomy} ${truth.stage} ${truth.voxelMm} mm seed ${truth.seed}`,
      manufacturer: 'Corridor',
      patientPosition: 'HFS',
      bodyPartExamined: 'PELVIS',
      uidSeed:
        `phantom:${truth.anatomy}:${truth.stage}:${truth.voxelMm}:${truth.seed}:` +
        `${options.cementMl?.join(',') ?? ''}:${options.leak ?? ''}:${options.leakMl ?? ''}:${o.noise}:${o.blur}`,
    });
    // A stale series from another run would mix with this one in a folder reader: its slices that this
    // run does not replace are removed (only those: see ownDicomFiles).
    const names = new Set(files.map((f) => path.join(dicomDir, f.name)));
    for (const old of oldSlices) if (!names.has(old)) await unlink(old);
    for (const f of files) await writeFileAtomic(path.join(dicomDir, f.name), f.bytes);
    written.push(dicomDir);
  }
  if (cbctOptions) {
    // The acquisition adds its own noise and blur: it images the phantom without the CT-like noise, and
    // with a blur of half a voxel only, standing in for the partial volume that the phantom's sampling of
    // voxel centres lacks (sharp steps in the CT would alias in the projections).
    const input = generatePhantom({ ...options, noise: false, blur: true, blurSigmaMm: truth.voxelMm / 2 }).ct;
    const t1 = performance.now();
    const progress = progressLine({ quiet: !!o.quiet, progress: !!o.progress }, 'phantom');
    const run = await simulateCbctParallel(input, {
      ...cbctOptions,
      ...(progress.onProgress ? { onProgress: progress.onProgress } : {}),
    });
    progress.clear();
    const p = path.join(dir, 'cbct.nii.gz');
    await writeReconstruction(run.reconstruction, p, undefined, cbctDescription(run.result));
    written.push(p);
    const a = run.result.acquisition;
    log(
      `phantom: simulated C-arm CT ${String(a.system)}, ${String(a.views)} views over ${String(a.arcDeg)} deg, ` +
        `field of view radius ${run.scan.fovRadiusMm.toFixed(1)} mm, in ${((performance.now() - t1) / 1000).toFixed(1)} s\n`,
    );
  }
  log(`phantom: wrote ${written.join(', ')}\n`);
  return written;
}

export function register(program: Command): void {
  const cmd = program
    .command('phantom')
    .description('write the synthetic pelvis phantom: ct.nii.gz, labels.nii.gz, truth.json (and a DICOM series)')
    .requiredOption('--out <dir>', 'output folder')
    .option('--anatomy <variant>', PHANTOM_ANATOMIES.join('|'), 'fracture')
    .option('--stage <stage>', PHANTOM_STAGES.join('|'), 'plan')
    .option('--voxel <mm>', 'isotropic voxel size (mm)', String(PHANTOM_DEFAULT_VOXEL_MM))
    .option('--seed <n>', 'seed of the instrument deviations and the noise', '1')
    .option('--cement-ml <left,right>', 'cement volumes at the alar trocar tips (ml, stage cement)')
    .option('--leak <foramen>', `cement leak into a foramen (${FORAMEN_NAMES.join(', ')}; stage cement)`)
    .option('--leak-ml <ml>', 'leak volume (ml)')
    .option('--dicom', 'also write DIR/dicom/, a CT series (supine, head first)')
    .option('--no-noise', 'no CBCT-like noise')
    .option('--no-blur', 'no CBCT-like blur')
    .option('--cbct', 'also write cbct.nii.gz: the stage as a simulated C-arm CT (corridor cbct), same patient frame')
    .option('--cbct-voxel <mm>', 'voxel edge of cbct.nii.gz, mm (default 1)');
  addCbctFlags(cmd, PHANTOM_CBCT_FLAGS)
    .option('--quiet', 'no progress output')
    .option('--progress', 'a progress bar on stderr even when it is not a terminal')
    .option('--force', 'write over files of another kind, and a series beside foreign files in DIR/dicom')
    .action(async (opts: PhantomCliOptions, command: Command) => {
      // The C-arm flags only mean something with --cbct: given without it, say so rather than ignore them.
      const given = PHANTOM_CBCT_FLAGS.filter((k) => command.getOptionValueSource(k) === 'cli');
      if (!opts.cbct && given.length)
        throw new UsageError(`${given.map((k) => (k === 'aec' ? '--no-aec' : `--${k}`)).join(', ')} need --cbct`);
      await writePhantom(opts);
    });
}
