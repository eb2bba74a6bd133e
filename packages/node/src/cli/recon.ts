/**
 * `corridor recon RUN.dcm --out CBCT.nii.gz`: FDK reconstruction of a C-arm CT run stored as a DICOM XA
 * rotational run (ours from `corridor cbct --projections`, or another system's), with the run's nominal
 * geometry: the file's distances, pixel spacing and per-frame angles, the matching C-arm preset for what the
 * file lacks. A real system's accuracy needs its calibrated per-view geometry, which no XA run carries:
 * the command says so on every run. Reading is core's (recon/xa-run.ts), the reconstruction runs on worker
 * threads (../recon/cbct.ts); this module parses flags and writes the files.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import {
  CARM_PRESETS,
  UsageError,
  carmPreset,
  cbctGrid,
  readXaRun,
  scanSummary,
  type VolumeMetadata,
} from '@corridor/core';
import { checkOutputs } from '../io/output-guard.js';
import { reconstructFdkParallel } from '../recon/cbct.js';
import {
  addCbctFlags,
  isNiftiName,
  isocenterFrom,
  progressLine,
  reconFlagsFrom,
  writeReconstruction,
  type CbctFlagValues,
} from './cbct.js';

interface Opts extends Pick<CbctFlagValues, 'voxel' | 'fov' | 'height' | 'window' | 'padding' | 'threads'> {
  out: string;
  mask?: string;
  carm?: string;
  isocenter?: string;
  json?: boolean;
  quiet?: boolean;
  progress?: boolean;
  force?: boolean;
}

export const NOMINAL_GEOMETRY_WARNING =
  "reconstructed with the nominal geometry (the file's distances and angles, the preset for the rest): " +
  "a real system's accuracy needs its calibrated per-view geometry (C-arm flex, detector offset and tilt)";

export function register(program: Command): void {
  const presets = Object.keys(CARM_PRESETS).join(', ');
  const cmd = program
    .command('recon')
    .description('reconstruct a C-arm CT run stored as a DICOM XA rotational run (FDK, nominal geometry)')
    .argument('<run>', 'XA multi-frame rotational run (.dcm): one frame per view, angles from the increments')
    .requiredOption('--out <file>', "reconstruction (.nii.gz or .nii), in the run's patient frame")
    .option('--mask <file>', 'also write the field of view as a 0/1 volume (.nii.gz or .nii): 1 = data')
    .option('--carm <preset>', `C-arm preset for what the file lacks (${presets}; default the file's own, if named)`)
    .option('--isocenter <x,y,z>', 'patient point at the isocentre when the file does not say, LPS mm');
  addCbctFlags(cmd, ['voxel', 'fov', 'height', 'window', 'padding', 'threads'])
    .option('--json', 'print the run and reconstruction parameters as JSON')
    .option('--quiet', 'no progress on stderr')
    .option('--progress', 'a progress bar on stderr even when it is not a terminal')
    .option('--force', 'write --out even over a file that is not an image volume')
    .action(async (runPath: string, opts: Opts) => {
      if (!isNiftiName(opts.out)) throw new UsageError('--out must end in .nii.gz or .nii', opts.out);
      if (opts.mask !== undefined && !isNiftiName(opts.mask))
        throw new UsageError('--mask must end in .nii.gz or .nii', opts.mask);
      if (opts.carm !== undefined && !CARM_PRESETS[opts.carm])
        throw new UsageError(`--carm "${opts.carm}" is not one of ${Object.keys(CARM_PRESETS).join(', ')}`);
      const r = reconFlagsFrom(opts);
      const isocenter = isocenterFrom(opts.isocenter);
      const outputs = [
        { file: opts.out, kind: 'volume' as const },
        ...(opts.mask !== undefined ? [{ file: opts.mask, kind: 'volume' as const }] : []),
      ];
      await checkOutputs(outputs, [runPath], { force: !!opts.force });
      const bytes = new Uint8Array(await readFile(runPath));
      const run = await readXaRun(bytes, runPath, {
        ...(opts.carm !== undefined ? { system: carmPreset(opts.carm) } : {}),
        ...(isocenter ? { isocenter } : {}),
      });
      const warnings = [NOMINAL_GEOMETRY_WARNING, ...run.warnings];
      if (run.assumed.length) warnings.push(`not in the file, assumed: ${run.assumed.join('; ')}`);
      if (!opts.json) for (const w of warnings) process.stderr.write(`corridor recon: warning: ${w}\n`);
      const grid = cbctGrid(run.scan, {
        voxelMm: r.voxelMm,
        ...(r.fovMm !== undefined ? { fovMm: r.fovMm } : {}),
        ...(r.heightMm !== undefined ? { heightMm: r.heightMm } : {}),
      });
      const meta: VolumeMetadata = {
        modality: 'CT',
        seriesDescription: `C-arm CT from ${run.scan.systemId} run, ${run.numberOfFrames} views (nominal geometry)`,
        source: `FDK reconstruction of ${runPath}`,
      };
      const progress = progressLine(opts, 'recon');
      const t0 = performance.now();
      const { reconstruction, filterMs, backprojectionMs } = await reconstructFdkParallel(
        run.projections,
        run.scan,
        grid,
        {
          window: r.window,
          padding: r.padding,
          meta,
          ...(r.threads !== undefined ? { threads: r.threads } : {}),
          ...(progress.onProgress ? { onProgress: progress.onProgress } : {}),
        },
      );
      progress.clear();
      const s = run.scan;
      const description = `CBCT recon ${s.systemId} ${s.arcDeg.toFixed(1)}deg/${s.views.length}v nominal ${r.window}`;
      await writeReconstruction(reconstruction, opts.out, opts.mask, description.slice(0, 79));
      const v = reconstruction.volume;
      if (opts.json) {
        console.log(
          JSON.stringify(
            {
              schemaVersion: 1,
              run: runPath,
              output: opts.out,
              mask: opts.mask ?? null,
              system: run.system.id,
              systemFromFile: run.systemFromFile,
              scan: scanSummary(s),
              frameOfView: run.frameOfView,
              flatField: run.flatField,
              acquisition: run.acquisition,
              reconstruction: {
                dims: v.dims,
                spacingMm: v.spacing,
                indexToPatient: Array.from(v.indexToPatient),
                window: r.window,
                padding: r.padding,
                muReferencePerMm: reconstruction.muReferencePerMm,
                voxelsInside: reconstruction.voxelsInside,
                fovRadiusMm: s.fovRadiusMm,
              },
              assumed: run.assumed,
              warnings,
              timingsMs: {
                filter: Math.round(filterMs),
                backprojection: Math.round(backprojectionMs),
                total: Math.round(performance.now() - t0),
              },
            },
            null,
            2,
          ),
        );
      } else {
        console.log(
          `C-arm CT run ${s.systemId}: ${s.views.length} views over ${s.arcDeg.toFixed(1)} deg ` +
            `(${s.startDeg.toFixed(1)} to ${(s.startDeg + s.arcDeg).toFixed(1)}), ${s.columns} x ${s.rows} detector`,
        );
        console.log(
          `  reconstruction ${v.dims.join(' x ')} at ${v.spacing.map((x) => x.toFixed(2)).join(' x ')} mm, ` +
            `field of view radius ${s.fovRadiusMm.toFixed(1)} mm, ${r.window}`,
        );
        console.log(`  written to ${opts.out}`);
        if (opts.mask !== undefined) console.log(`  field of view written to ${opts.mask}`);
      }
    });
}
