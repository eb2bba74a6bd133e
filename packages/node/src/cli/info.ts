import type { Command } from 'commander';
import { mat4ToRows, volumeStats, type LoadedSeries } from '@corridor/core';
import { loadPath } from '../io/load.js';

/** One series as `corridor info --json` prints it (schema in the issue; extra fields are additive). */
export function seriesInfo(s: LoadedSeries) {
  const v = s.volume;
  const stats = volumeStats(v);
  return {
    format: s.format,
    dims: [...v.dims],
    spacing: [...v.spacing],
    indexToPatient: mat4ToRows(v.indexToPatient),
    modality: v.meta.modality ?? null,
    seriesInstanceUid: v.meta.seriesInstanceUid ?? null,
    min: stats.min,
    max: stats.max,
    mean: stats.mean,
    warnings: s.warnings,
    source: v.meta.source ?? null,
    patientName: v.meta.patientName ?? null,
    patientId: v.meta.patientId ?? null,
    studyInstanceUid: v.meta.studyInstanceUid ?? null,
    seriesDescription: v.meta.seriesDescription ?? null,
    manufacturer: v.meta.manufacturer ?? null,
    acquisitionDate: v.meta.acquisitionDate ?? null,
    acquisitionTime: v.meta.acquisitionTime ?? null,
  };
}

const fmt = (x: number, d = 4) => (Number.isInteger(x) ? String(x) : x.toFixed(d));

function printHuman(info: ReturnType<typeof seriesInfo>[], skipped: { name: string; reason: string }[]) {
  info.forEach((s, n) => {
    console.log(`Series ${n + 1}: ${s.format}${s.modality ? ` ${s.modality}` : ''}${s.seriesDescription ? ` "${s.seriesDescription}"` : ''}`);
    if (s.seriesInstanceUid) console.log(`  SeriesInstanceUID: ${s.seriesInstanceUid}`);
    if (s.patientName || s.patientId) console.log(`  Patient: ${s.patientName ?? ''} ${s.patientId ? `(${s.patientId})` : ''}`);
    if (s.manufacturer) console.log(`  Manufacturer: ${s.manufacturer}`);
    if (s.acquisitionDate) console.log(`  Acquired: ${s.acquisitionDate} ${s.acquisitionTime ?? ''}`);
    console.log(`  Dimensions: ${s.dims.join(' x ')} voxels`);
    console.log(`  Spacing: ${s.spacing.map((x) => fmt(x)).join(' x ')} mm`);
    console.log(`  indexToPatient (LPS mm):`);
    for (const row of s.indexToPatient) console.log(`    [${row.map((x) => fmt(x).padStart(11)).join(' ')} ]`);
    console.log(`  Values: min ${fmt(s.min, 2)}, max ${fmt(s.max, 2)}, mean ${fmt(s.mean, 2)}`);
    for (const w of s.warnings) console.log(`  warning: ${w}`);
  });
  if (skipped.length) {
    console.log(`Skipped ${skipped.length} file(s):`);
    for (const s of skipped.slice(0, 20)) console.log(`  ${s.name}: ${s.reason}`);
    if (skipped.length > 20) console.log(`  ... and ${skipped.length - 20} more`);
  }
}

export function register(program: Command): void {
  program
    .command('info')
    .description('describe every image series in a file or folder (DICOM, NIfTI, NRRD, MetaImage)')
    .argument('<path>', 'a file or a folder')
    .option('--json', 'print a JSON array, one object per series')
    .action(async (p: string, opts: { json?: boolean }) => {
      const { series, skipped } = await loadPath(p);
      const info = series.map(seriesInfo);
      if (opts.json) console.log(JSON.stringify(info, null, 2));
      else printHuman(info, skipped);
    });
}
