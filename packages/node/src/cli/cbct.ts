/**
 * `corridor cbct VOLUME --out CBCT.nii.gz`: a simulated C-arm CT (DynaCT-style short scan) of any CT,
 * reconstructed by FDK onto a grid in the CT's patient frame. All computation is core's (recon/), run on
 * worker threads by ../recon/cbct.ts; this module parses flags and writes the file (atomically).
 */
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
  type Point3,
  type RampWindow,
  type RowPadding,
  type DetectorOrientation,
  type Volume,
} from '@corridor/core';
import { loadPath } from '../io/load.js';
import { writeFileAtomic } from '../io/atomic-write.js';
import { checkOutputs } from '../io/output-guard.js';
import { simulateCbctParallel, type ParallelCbctOptions } from '../recon/cbct.js';

interface Opts {
  out: string;
  mask?: string;
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
  json?: boolean;
  aec: boolean;
  quiet?: boolean;
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

/** The core options that the flags describe. */
export function cbctOptionsFrom(o: Opts): ParallelCbctOptions {
  if (!CARM_PRESETS[o.carm])
    throw new UsageError(`--carm "${o.carm}" is not one of ${Object.keys(CARM_PRESETS).join(', ')}`);
  if (!DETECTOR_ORIENTATIONS.includes(o.detector as DetectorOrientation))
    throw new UsageError(`--detector "${o.detector}" is not one of ${DETECTOR_ORIENTATIONS.join(', ')}`);
  if (!ROW_PADDINGS.includes(o.padding as RowPadding))
    throw new UsageError(`--padding "${o.padding}" is not one of ${ROW_PADDINGS.join(', ')}`);
  if (!RAMP_WINDOWS.includes(o.window as RampWindow))
    throw new UsageError(`--window "${o.window}" is not one of ${RAMP_WINDOWS.join(', ')}`);
  let isocenter: Point3 | undefined;
  if (o.isocenter !== undefined) {
    const p = o.isocenter.split(',').map((s) => Number(s.trim()));
    if (p.length !== 3 || !p.every(Number.isFinite))
      throw new UsageError(`--isocenter "${o.isocenter}" is not x,y,z (LPS mm)`);
    isocenter = p as Point3;
  }
  const arcDeg = num(o.arc, '--arc', (x) => x > 180 && x <= 360);
  const views = num(o.views, '--views', (x) => Number.isInteger(x) && x >= 2 && x <= 10000);
  const fovMm = num(o.fov, '--fov', positive);
  const heightMm = num(o.height, '--height', positive);
  const threads = num(o.threads, '--threads', (x) => Number.isInteger(x) && x >= 1 && x <= 64);
  return {
    system: carmPreset(o.carm),
    detectorOrientation: o.detector as DetectorOrientation,
    ...(isocenter ? { isocenter } : {}),
    ...(arcDeg !== undefined ? { arcDeg } : {}),
    ...(views !== undefined ? { views } : {}),
    ...(fovMm !== undefined ? { fovMm } : {}),
    ...(heightMm !== undefined ? { heightMm } : {}),
    ...(threads !== undefined ? { threads } : {}),
    voxelMm: req(o.voxel, '--voxel', positive),
    kvp: req(o.kvp, '--kvp', (x) => x >= 40 && x <= 150),
    photonsPerPixel: req(o.dose, '--dose', (x) => Number.isFinite(x) && x >= 0),
    exposureControl: o.aec,
    scatterFraction: req(o.scatter, '--scatter', (x) => x >= 0 && x <= 1),
    blurSigmaPx: req(o.blur, '--blur', (x) => x >= 0 && x < 50),
    energyBins: req(o.bins, '--bins', (x) => Number.isInteger(x) && x >= 1 && x <= 64),
    detector: { binning: req(o.binning, '--binning', (x) => Number.isInteger(x) && x >= 1 && x <= 16) },
    window: o.window as RampWindow,
    padding: o.padding as RowPadding,
    seed: req(o.seed, '--seed', whole),
  };
}

async function loadVolume(p: string): Promise<Volume> {
  const { series } = await loadPath(p);
  if (series.length !== 1) throw new UsageError(`expected one image series, found ${series.length}`, p);
  return series[0].volume;
}

export function register(program: Command): void {
  const presets = Object.keys(CARM_PRESETS).join(', ');
  program
    .command('cbct')
    .description('simulate a C-arm CT run (short scan, polychromatic, noise, scatter) of a CT and reconstruct it (FDK)')
    .argument('<volume>', 'CT (HU): file or folder')
    .requiredOption('--out <file>', 'reconstruction (.nii.gz or .nii), same patient frame as the input')
    .option('--mask <file>', 'also write the field of view as a 0/1 volume (.nii.gz or .nii): 1 = data')
    .option('--carm <preset>', `C-arm preset (${presets})`, DEFAULT_CARM_PRESET)
    .option('--arc <deg>', 'rotation range, degrees (default 200, or the preset range if smaller)')
    .option('--views <n>', 'number of views (default one every 0.8 degrees)')
    .option(
      '--detector <orientation>',
      `flat detector mounting: ${DETECTOR_ORIENTATIONS.join(', ')} (landscape: the longer side across the rotation)`,
      'landscape',
    )
    .option('--binning <n>', 'detector pixels binned per output pixel along each axis', '4')
    .option('--voxel <mm>', 'output voxel edge, mm', '1')
    .option('--fov <mm>', 'in-plane side of the output grid, mm (default the field of view)')
    .option('--height <mm>', 'axial extent of the output grid, mm (default what the detector covers)')
    .option('--isocenter <x,y,z>', 'patient point at the isocentre, LPS mm (default the volume centre)')
    .option('--kvp <kv>', 'tube voltage', '90')
    .option('--bins <n>', 'energy bins of the spectrum (1 = monochromatic)', '8')
    .option(
      '--dose <photons>',
      'quanta per detector pixel per view behind the patient (detector centre), or unattenuated with --no-aec; 0 = no noise',
      '5000',
    )
    .option('--no-aec', 'no automatic exposure control: --dose unattenuated in every view')
    .option('--scatter <fraction>', 'share of the removed photons reaching the detector as scatter', '0')
    .option('--blur <px>', 'detector blur sigma, pixels', '0.5')
    .option('--window <name>', `ramp apodization (${RAMP_WINDOWS.join(', ')})`, 'shepp-logan')
    .option(
      '--padding <mode>',
      `rows beyond the detector before the ramp filter (${ROW_PADDINGS.join(', ')}; continue: a simple truncation correction)`,
      'continue',
    )
    .option('--seed <n>', 'noise seed', '1')
    .option('--threads <n>', 'worker threads (default: all cores)')
    .option('--json', 'print the acquisition and reconstruction parameters as JSON')
    .option('--quiet', 'no progress on stderr')
    .option('--force', 'write --out even over the input or a file that is not an image volume')
    .action(async (volumePath: string, opts: Opts) => {
      const isNifti = (f: string) => f.toLowerCase().endsWith('.nii.gz') || f.toLowerCase().endsWith('.nii');
      const lower = opts.out.toLowerCase();
      if (!isNifti(opts.out)) throw new UsageError('--out must end in .nii.gz or .nii', opts.out);
      if (opts.mask !== undefined && !isNifti(opts.mask))
        throw new UsageError('--mask must end in .nii.gz or .nii', opts.mask);
      const options = cbctOptionsFrom(opts);
      const outputs = [opts.out, ...(opts.mask !== undefined ? [opts.mask] : [])].map((file) => ({
        file,
        kind: 'volume' as const,
      }));
      await checkOutputs(outputs, [volumePath], { force: !!opts.force });
      const ct = await loadVolume(volumePath);
      const showProgress = !opts.quiet && !opts.json && process.stderr.isTTY;
      let last = '';
      const run = await simulateCbctParallel(ct, {
        ...options,
        ...(showProgress
          ? {
              onProgress: (done: number, total: number, phase: string) => {
                const line = `${phase} ${Math.round((100 * done) / total)}%`;
                if (line !== last) process.stderr.write(`\r${(last = line).padEnd(30)}`);
              },
            }
          : {}),
      });
      if (showProgress) process.stderr.write('\r'.padEnd(31) + '\r');
      const bytes = writeNifti(run.reconstruction.volume, {
        gzip: lower.endsWith('.gz'),
        description: cbctDescription(run.result),
      });
      await writeFileAtomic(opts.out, bytes, { makeDir: true });
      if (opts.mask !== undefined) {
        const v = run.reconstruction.volume;
        const mask = createVolume({
          data: run.reconstruction.mask,
          dims: v.dims,
          indexToPatient: v.indexToPatient,
          meta: { source: `field of view of ${opts.out}` },
        });
        const mb = writeNifti(mask, {
          gzip: opts.mask.toLowerCase().endsWith('.gz'),
          description: 'CBCT field of view (1 = data)',
        });
        await writeFileAtomic(opts.mask, mb, { makeDir: true });
      }
      const timings = Object.fromEntries(
        (Object.entries(run.timings) as [string, number][]).map(([k, v]) => [k, Math.round(v)]),
      );
      if (opts.json) {
        console.log(
          JSON.stringify({ ...run.result, output: opts.out, mask: opts.mask ?? null, timingsMs: timings }, null, 2),
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
      }
    });
}
