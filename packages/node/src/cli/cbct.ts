/**
 * `corridor cbct VOLUME --out CBCT.nii.gz`: a simulated C-arm CT (DynaCT-style short scan) of any CT,
 * reconstructed by FDK onto a grid in the CT's patient frame; `--projections RUN.dcm` also writes the
 * acquired projections as an XA rotational run (`corridor recon` reads it). All computation is core's
 * (recon/), run on worker threads by ../recon/cbct.ts; this module parses flags and writes the files
 * (atomically). The flags and their parsing are shared with `corridor recon` and `corridor phantom --cbct`.
 */
import { progressBar, type ProgressFlags } from './progress.js';
import type { Command } from 'commander';
import {
  CARM_PRESETS,
  DEFAULT_CARM_PRESET,
  RAMP_WINDOWS,
  ROW_PADDINGS,
  DETECTOR_ORIENTATIONS,
  UsageError,
  carmPreset,
  cbctDescription,
  createVolume,
  writeNifti,
  writeXaRun,
  type CbctReconstruction,
  type Point3,
  type RampWindow,
  type ReconProgressFn,
  type RowPadding,
  type DetectorOrientation,
  type Volume,
} from '@corridor/core';
import { loadPath } from '../io/load.js';
import { writeFileAtomic } from '../io/atomic-write.js';
import { checkOutputs } from '../io/output-guard.js';
import { simulateCbctParallel, type ParallelCbctOptions } from '../recon/cbct.js';

/** The values of the acquisition and reconstruction flags (see CBCT_FLAGS). */
export interface CbctFlagValues {
  carm: string;
  detector: string;
  arc?: string;
  views?: string;
  voxel: string;
  fov?: string;
  height?: string;
  kvp: string;
  dose: string;
  scatter: string;
  blur: string;
  bins: string;
  binning: string;
  window: string;
  padding: string;
  seed: string;
  isocenter?: string;
  threads?: string;
  aec: boolean;
}

interface Opts extends CbctFlagValues {
  out: string;
  mask?: string;
  projections?: string;
  json?: boolean;
  quiet?: boolean;
  progress?: boolean;
  force?: boolean;
}

function num(v: string | undefined, name: string, check: (x: number) => boolean): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === '' || !check(x)) throw new UsageError(`${name} "${v}" is not a valid number`);
  return x;
}

function req(v: string, name: string, check: (x: number) => boolean): number {
  return num(v, name, check) as number;
}

const positive = (x: number) => Number.isFinite(x) && x > 0;
const whole = (x: number) => Number.isInteger(x) && x >= 0;

/** --isocenter x,y,z (LPS mm), if given. */
export function isocenterFrom(v: string | undefined): Point3 | undefined {
  if (v === undefined) return undefined;
  const p = v.split(',').map((s) => Number(s.trim()));
  if (p.length !== 3 || !p.every(Number.isFinite)) throw new UsageError(`--isocenter "${v}" is not x,y,z (LPS mm)`);
  return p as Point3;
}

/** The reconstruction flags: grid (--voxel, --fov, --height), ramp window, row padding, threads. */
export function reconFlagsFrom(
  o: Pick<CbctFlagValues, 'voxel' | 'fov' | 'height' | 'window' | 'padding' | 'threads'>,
): { voxelMm: number; fovMm?: number; heightMm?: number; window: RampWindow; padding: RowPadding; threads?: number } {
  if (!ROW_PADDINGS.includes(o.padding as RowPadding))
    throw new UsageError(`--padding "${o.padding}" is not one of ${ROW_PADDINGS.join(', ')}`);
  if (!RAMP_WINDOWS.includes(o.window as RampWindow))
    throw new UsageError(`--window "${o.window}" is not one of ${RAMP_WINDOWS.join(', ')}`);
  const fovMm = num(o.fov, '--fov', positive);
  const heightMm = num(o.height, '--height', positive);
  const threads = num(o.threads, '--threads', (x) => Number.isInteger(x) && x >= 1 && x <= 64);
  return {
    voxelMm: req(o.voxel, '--voxel', positive),
    ...(fovMm !== undefined ? { fovMm } : {}),
    ...(heightMm !== undefined ? { heightMm } : {}),
    window: o.window as RampWindow,
    padding: o.padding as RowPadding,
    ...(threads !== undefined ? { threads } : {}),
  };
}

/** The core options that the flags describe. */
export function cbctOptionsFrom(o: CbctFlagValues): ParallelCbctOptions {
  if (!CARM_PRESETS[o.carm])
    throw new UsageError(`--carm "${o.carm}" is not one of ${Object.keys(CARM_PRESETS).join(', ')}`);
  if (!DETECTOR_ORIENTATIONS.includes(o.detector as DetectorOrientation))
    throw new UsageError(`--detector "${o.detector}" is not one of ${DETECTOR_ORIENTATIONS.join(', ')}`);
  const isocenter = isocenterFrom(o.isocenter);
  const arcDeg = num(o.arc, '--arc', (x) => x > 180 && x <= 360);
  const views = num(o.views, '--views', (x) => Number.isInteger(x) && x >= 2 && x <= 10000);
  return {
    system: carmPreset(o.carm),
    detectorOrientation: o.detector as DetectorOrientation,
    ...(isocenter ? { isocenter } : {}),
    ...(arcDeg !== undefined ? { arcDeg } : {}),
    ...(views !== undefined ? { views } : {}),
    ...reconFlagsFrom(o),
    kvp: req(o.kvp, '--kvp', (x) => x >= 40 && x <= 150),
    photonsPerPixel: req(o.dose, '--dose', (x) => Number.isFinite(x) && x >= 0),
    exposureControl: o.aec,
    scatterFraction: req(o.scatter, '--scatter', (x) => x >= 0 && x <= 1),
    blurSigmaPx: req(o.blur, '--blur', (x) => x >= 0 && x < 50),
    energyBins: req(o.bins, '--bins', (x) => Number.isInteger(x) && x >= 1 && x <= 64),
    detector: { binning: req(o.binning, '--binning', (x) => Number.isInteger(x) && x >= 1 && x <= 16) },
    seed: req(o.seed, '--seed', whole),
  };
}

/** The flag values' defaults (what commander fills in for a command that declares the flag). */
export const CBCT_FLAG_DEFAULTS: CbctFlagValues = {
  carm: DEFAULT_CARM_PRESET,
  detector: 'landscape',
  voxel: '1',
  kvp: '90',
  dose: '5000',
  scatter: '0',
  blur: '0.5',
  bins: '8',
  binning: '4',
  window: 'shepp-logan',
  padding: 'continue',
  seed: '1',
  aec: true,
};

type FlagName = keyof CbctFlagValues;

/** Each flag's declaration, once, for every command that takes it. */
const CBCT_FLAGS: Record<FlagName, (c: Command) => Command> = {
  carm: (c) =>
    c.option('--carm <preset>', `C-arm preset (${Object.keys(CARM_PRESETS).join(', ')})`, CBCT_FLAG_DEFAULTS.carm),
  arc: (c) => c.option('--arc <deg>', 'rotation range, degrees (default 200, or the preset range if smaller)'),
  views: (c) => c.option('--views <n>', 'number of views (default one every 0.8 degrees)'),
  detector: (c) =>
    c.option(
      '--detector <orientation>',
      `flat detector mounting: ${DETECTOR_ORIENTATIONS.join(', ')} (landscape: the longer side across the rotation)`,
      CBCT_FLAG_DEFAULTS.detector,
    ),
  binning: (c) =>
    c.option('--binning <n>', 'detector pixels binned per output pixel along each axis', CBCT_FLAG_DEFAULTS.binning),
  voxel: (c) => c.option('--voxel <mm>', 'output voxel edge, mm', CBCT_FLAG_DEFAULTS.voxel),
  fov: (c) => c.option('--fov <mm>', 'in-plane side of the output grid, mm (default the field of view)'),
  height: (c) => c.option('--height <mm>', 'axial extent of the output grid, mm (default what the detector covers)'),
  isocenter: (c) =>
    c.option('--isocenter <x,y,z>', 'patient point at the isocentre, LPS mm (default the volume centre)'),
  kvp: (c) => c.option('--kvp <kv>', 'tube voltage', CBCT_FLAG_DEFAULTS.kvp),
  bins: (c) => c.option('--bins <n>', 'energy bins of the spectrum (1 = monochromatic)', CBCT_FLAG_DEFAULTS.bins),
  dose: (c) =>
    c.option(
      '--dose <photons>',
      'quanta per detector pixel per view behind the patient (detector centre), or unattenuated with --no-aec; 0 = no noise',
      CBCT_FLAG_DEFAULTS.dose,
    ),
  aec: (c) => c.option('--no-aec', 'no automatic exposure control: --dose unattenuated in every view'),
  scatter: (c) =>
    c.option(
      '--scatter <fraction>',
      'share of the removed photons reaching the detector as scatter',
      CBCT_FLAG_DEFAULTS.scatter,
    ),
  blur: (c) => c.option('--blur <px>', 'detector blur sigma, pixels', CBCT_FLAG_DEFAULTS.blur),
  window: (c) =>
    c.option('--window <name>', `ramp apodization (${RAMP_WINDOWS.join(', ')})`, CBCT_FLAG_DEFAULTS.window),
  padding: (c) =>
    c.option(
      '--padding <mode>',
      `rows beyond the detector before the ramp filter (${ROW_PADDINGS.join(', ')}; continue: a simple truncation correction)`,
      CBCT_FLAG_DEFAULTS.padding,
    ),
  seed: (c) => c.option('--seed <n>', 'noise seed', CBCT_FLAG_DEFAULTS.seed),
  threads: (c) => c.option('--threads <n>', 'worker threads (default: all cores)'),
};

/** The acquisition flags that `corridor phantom --cbct` takes (its --voxel, --seed and --no-blur are its own). */
export const PHANTOM_CBCT_FLAGS: readonly FlagName[] = [
  'carm',
  'arc',
  'views',
  'detector',
  'binning',
  'fov',
  'height',
  'isocenter',
  'kvp',
  'bins',
  'dose',
  'aec',
  'scatter',
  'window',
  'padding',
  'threads',
];

/** Declares these flags on a command (in this order). */
export function addCbctFlags(c: Command, names: readonly FlagName[]): Command {
  for (const n of names) CBCT_FLAGS[n](c);
  return c;
}

/** Progress on stderr (the shared bar of progress.ts): the reporter and a function that clears the line. */
export function progressLine(flags: ProgressFlags, name: string): { onProgress?: ReconProgressFn; clear: () => void } {
  const bar = progressBar(name, flags);
  if (!bar.active) return { clear: () => undefined };
  return { onProgress: (done, total, phase) => bar.update(done, total, phase), clear: () => bar.clear() };
}

export const isNiftiName = (f: string) => f.toLowerCase().endsWith('.nii.gz') || f.toLowerCase().endsWith('.nii');

/** Writes a reconstruction (and its field of view with `mask`) as NIfTI, atomically. */
export async function writeReconstruction(
  rec: CbctReconstruction,
  out: string,
  mask: string | undefined,
  description: string,
): Promise<void> {
  const bytes = writeNifti(rec.volume, { gzip: out.toLowerCase().endsWith('.gz'), description });
  await writeFileAtomic(out, bytes, { makeDir: true });
  if (mask !== undefined) {
    const v = rec.volume;
    const m = createVolume({
      data: rec.mask,
      dims: v.dims,
      indexToPatient: v.indexToPatient,
      meta: { source: `field of view of ${out}` },
    });
    const mb = writeNifti(m, {
      gzip: mask.toLowerCase().endsWith('.gz'),
      description: 'CBCT field of view (1 = data)',
    });
    await writeFileAtomic(mask, mb, { makeDir: true });
  }
}

async function loadVolume(p: string): Promise<Volume> {
  const { series } = await loadPath(p);
  if (series.length !== 1) throw new UsageError(`expected one image series, found ${series.length}`, p);
  return series[0].volume;
}

export function register(program: Command): void {
  const cmd = program
    .command('cbct')
    .description('simulate a C-arm CT run (short scan, polychromatic, noise, scatter) of a CT and reconstruct it (FDK)')
    .argument('<volume>', 'CT (HU): file or folder')
    .requiredOption('--out <file>', 'reconstruction (.nii.gz or .nii), same patient frame as the input')
    .option('--mask <file>', 'also write the field of view as a 0/1 volume (.nii.gz or .nii): 1 = data')
    .option(
      '--projections <file>',
      'also write the acquired projections as a DICOM XA rotational run (.dcm), for corridor recon',
    );
  addCbctFlags(cmd, Object.keys(CBCT_FLAGS) as FlagName[])
    .option('--json', 'print the acquisition and reconstruction parameters as JSON')
    .option('--quiet', 'no progress on stderr')
    .option('--progress', 'a progress bar on stderr even when it is not a terminal')
    .option('--force', 'write --out even over the input or a file that is not an image volume')
    .action(async (volumePath: string, opts: Opts) => {
      if (!isNiftiName(opts.out)) throw new UsageError('--out must end in .nii.gz or .nii', opts.out);
      if (opts.mask !== undefined && !isNiftiName(opts.mask))
        throw new UsageError('--mask must end in .nii.gz or .nii', opts.mask);
      if (opts.projections !== undefined && !opts.projections.toLowerCase().endsWith('.dcm'))
        throw new UsageError('--projections must end in .dcm', opts.projections);
      const options = cbctOptionsFrom(opts);
      const outputs = [
        { file: opts.out, kind: 'volume' as const },
        ...(opts.mask !== undefined ? [{ file: opts.mask, kind: 'volume' as const }] : []),
        ...(opts.projections !== undefined ? [{ file: opts.projections, kind: 'dicom' as const }] : []),
      ];
      await checkOutputs(outputs, [volumePath], { force: !!opts.force });
      const ct = await loadVolume(volumePath);
      const progress = progressLine(opts, 'cbct');
      const run = await simulateCbctParallel(ct, {
        ...options,
        ...(progress.onProgress ? { onProgress: progress.onProgress } : {}),
      });
      progress.clear();
      await writeReconstruction(run.reconstruction, opts.out, opts.mask, cbctDescription(run.result));
      if (opts.projections !== undefined) {
        const m = ct.meta;
        const xa = writeXaRun(run.projections, run.scan, {
          acquisition: run.result.acquisition,
          ...(m.patientName !== undefined ? { patientName: m.patientName } : {}),
          ...(m.patientId !== undefined ? { patientId: m.patientId } : {}),
          ...(m.studyInstanceUid !== undefined ? { studyInstanceUid: m.studyInstanceUid } : {}),
          ...(m.frameOfReferenceUid !== undefined ? { frameOfReferenceUid: m.frameOfReferenceUid } : {}),
        });
        await writeFileAtomic(opts.projections, xa, { makeDir: true });
      }
      const timings = Object.fromEntries(
        (Object.entries(run.timings) as [string, number][]).map(([k, v]) => [k, Math.round(v)]),
      );
      if (opts.json) {
        console.log(
          JSON.stringify(
            {
              ...run.result,
              output: opts.out,
              mask: opts.mask ?? null,
              projections: opts.projections ?? null,
              timingsMs: timings,
            },
            null,
            2,
          ),
        );
      } else {
        const a = run.result.acquisition,
          r = run.result.reconstruction;
        console.log(
          `C-arm CT ${String(a.system)}: ${String(a.views)} views over ${String(a.arcDeg)} deg, ` +
            `${String(a.columns)} x ${String(a.rows)} detector, ${String(a.kvp)} kV`,
        );
        console.log(
          `  reconstruction ${r.dims.join(' x ')} at ${r.spacingMm.map((s) => s.toFixed(2)).join(' x ')} mm, ` +
            `field of view radius ${r.fovRadiusMm.toFixed(1)} mm, ${r.window}`,
        );
        console.log(`  written to ${opts.out} in ${(run.timings.totalMs / 1000).toFixed(1)} s`);
        if (opts.mask !== undefined) console.log(`  field of view written to ${opts.mask}`);
        if (opts.projections !== undefined) console.log(`  projections written to ${opts.projections} (XA run)`);
      }
    });
}
