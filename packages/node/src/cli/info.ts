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

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;
/**
 * Text from a file (patient names, descriptions, file names) with C0 and C1 control characters and DEL
 * written as \xNN, so an escape sequence in a header cannot reach the terminal.
 */
export function printable(text: string): string {
  return text.replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** JSON.stringify escapes C0 but writes DEL and C1 (U+0080-U+009F, e.g. CSI) raw: escape those too. */
export function jsonForTerminal(value: unknown): string {
  const escape = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  return JSON.stringify(value, null, 2).replace(/[\u007f-\u009f]/g, escape);
}

function printHuman(info: ReturnType<typeof seriesInfo>[], skipped: { name: string; reason: string }[]) {
  const log = (line: string) => console.log(printable(line));
  info.forEach((s, n) => {
    const description = s.seriesDescription ? ` "${s.seriesDescription}"` : '';
    log(`Series ${n + 1}: ${s.format}${s.modality ? ` ${s.modality}` : ''}${description}`);
    if (s.seriesInstanceUid) log(`  SeriesInstanceUID: ${s.seriesInstanceUid}`);
    if (s.patientName || s.patientId) log(`  Patient: ${s.patientName ?? ''} ${s.patientId ? `(${s.patientId})` : ''}`);
    if (s.manufacturer) log(`  Manufacturer: ${s.manufacturer}`);
    if (s.acquisitionDate) log(`  Acquired: ${s.acquisitionDate} ${s.acquisitionTime ?? ''}`);
    log(`  Dimensions: ${s.dims.join(' x ')} voxels`);
    log(`  Spacing: ${s.spacing.map((x) => fmt(x)).join(' x ')} mm`);
    log(`  indexToPatient (LPS mm):`);
    for (const row of s.indexToPatient) log(`    [${row.map((x) => fmt(x).padStart(11)).join(' ')} ]`);
    log(`  Values: min ${fmt(s.min, 2)}, max ${fmt(s.max, 2)}, mean ${fmt(s.mean, 2)}`);
    for (const w of s.warnings) log(`  warning: ${w}`);
  });
  if (skipped.length) {
    log(`Skipped ${skipped.length} file(s):`);
    for (const s of skipped.slice(0, 20)) log(`  ${s.name}: ${s.reason}`);
    if (skipped.length > 20) log(`  ... and ${skipped.length - 20} more`);
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
      if (opts.json) console.log(jsonForTerminal(info));
      else printHuman(info, skipped);
    });
}
