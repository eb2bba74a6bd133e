import type { Command } from 'commander';
import { UsageError, writeNifti, writeNrrd, type LoadedSeries, type Volume } from '@corridor/core';
import { loadPath } from '../io/load.js';
import { writeFileAtomic } from '../io/atomic-write.js';
import { checkOutputs } from '../io/output-guard.js';

/** Encode a volume for a file name: .nii.gz, .nii, .nrrd (gzip) or .nhdr is not offered (one file only). */
export function encodeForPath(volume: Volume, out: string): Uint8Array {
  const lower = out.toLowerCase();
  if (lower.endsWith('.nii.gz')) return writeNifti(volume, { gzip: true });
  if (lower.endsWith('.nii')) return writeNifti(volume, { gzip: false });
  if (lower.endsWith('.nrrd')) return writeNrrd(volume, { gzip: true });
  throw new UsageError('output must end in .nii.gz, .nii or .nrrd', out);
}

function pickSeries(series: LoadedSeries[], which: string | undefined, input: string): LoadedSeries {
  if (series.length === 0) throw new UsageError('no image series found', input);
  if (which === undefined) {
    if (series.length > 1) {
      const list = series
        .map((s, n) => `${n + 1}: ${s.volume.meta.seriesInstanceUid ?? s.volume.meta.source}`)
        .join('; ');
      throw new UsageError(`${series.length} series found, choose one with --series (${list})`, input);
    }
    return series[0];
  }
  const n = Number(which);
  const byIndex = Number.isInteger(n) && n >= 1 && n <= series.length ? series[n - 1] : undefined;
  const found = byIndex ?? series.find((s) => s.volume.meta.seriesInstanceUid === which);
  if (!found) throw new UsageError(`no series "${which}"`, input);
  return found;
}

export function register(program: Command): void {
  program
    .command('convert')
    .description('convert any readable image to .nii.gz, .nii or .nrrd, geometry preserved')
    .argument('<in>', 'input file or folder')
    .argument('<out>', 'output file (.nii.gz, .nii or .nrrd)')
    .option('--series <n|uid>', 'which series, when the input holds several (1-based number or SeriesInstanceUID)')
    .option('--force', 'write <out> even over the input or a file that is not an image volume')
    .action(async (input: string, out: string, opts: { series?: string; force?: boolean }) => {
      await checkOutputs([{ file: out, kind: 'volume' }], [input], { force: opts.force });
      const { series } = await loadPath(input);
      const s = pickSeries(series, opts.series, input);
      const bytes = encodeForPath(s.volume, out);
      await writeFileAtomic(out, bytes, { makeDir: true });
      for (const w of s.warnings) console.error(`warning: ${w}`);
      console.log(`wrote ${out} (${s.volume.dims.join(' x ')} voxels)`);
    });
}
