/**
 * `corridor cement --plan PLAN --baseline SCAN0 --scan SCAN1 [--scan SCAN2 ...]`: the new cement of each
 * injection scan against the baseline (core's analyzeCement); a table per scan with the volume per site,
 * its growth, the leaks, the distances of the front and the verdict (CONTINUE / CAUTION / STOP), or the
 * report as JSON (--json, --out). All computation is core's; this module reads files, parses flags and
 * prints. The scans must lie on the baseline's grid (no registration yet).
 */
import type { Command } from 'commander';
import {
  CEMENT_WARNING_MM,
  UsageError,
  analyzeCement,
  type CementOptions,
  type CementReport,
  type Point3,
} from '@corridor/core';
import { loadLabelsPath } from '../io/load.js';
import { writeFileAtomic } from '../io/atomic-write.js';
import { checkOutputs } from '../io/output-guard.js';
import { anatomyFor, loadVolume, readPlan } from './verify.js';

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '-');
const fp = (p: Point3) => `(${p.map(f1).join(', ')})`;
const pad = (s: string, n: number) => (s.length >= n ? s + ' ' : s + ' '.repeat(n - s.length));

/** --warning-mm: a finite number >= 0. */
export function parseWarningMm(s: string | undefined): number {
  if (s === undefined) return CEMENT_WARNING_MM;
  const v = Number(s);
  if (s.trim() === '' || !Number.isFinite(v) || v < 0) throw new UsageError(`--warning-mm "${s}" is not a number >= 0`);
  return v;
}

/** The report as text: per scan its verdict, a row per site, the leaks and reasons, the nearest structures. */
export function formatCementReport(r: CementReport): string {
  const lines: string[] = [];
  lines.push(`warning distance ${r.warningMm} mm; anatomy from: ${r.structureSource}`);
  for (const s of r.scans) {
    lines.push('');
    lines.push(`scan ${s.index + 1} (${s.source}): ${s.verdict.toUpperCase()}, ${f2(s.totalMl)} ml new cement`);
    const w = [Math.max(8, ...s.sites.map((x) => x.pathId.length + 2)), 11, 11, 10, 12];
    lines.push(
      ['site', 'volume ml', 'growth ml', 'voxels', 'contrast HU']
        .map((h, i) => pad(h, w[i]))
        .join('')
        .trimEnd(),
    );
    for (const x of s.sites) {
      lines.push(
        [
          x.pathId,
          f2(x.volumeMl),
          (x.growthMl >= 0 ? '+' : '') + f2(x.growthMl),
          String(x.voxelCount),
          String(x.contrastHu),
        ]
          .map((c, i) => pad(c, w[i]))
          .join('')
          .trimEnd(),
      );
    }
    if (s.unassignedMl > 0) lines.push(`unassigned ${f2(s.unassignedMl)} ml (no planned site within reach)`);
    for (const why of s.reasons) lines.push(`  ${why.verdict.toUpperCase()}: ${why.reason} at ${fp(why.at)}`);
    const near = s.distances.filter((d) => d.distanceMm !== null);
    if (near.length)
      lines.push(
        '  front to: ' +
          near
            .sort((a, b) => (a.distanceMm ?? 0) - (b.distanceMm ?? 0))
            .map((d) => `${d.name} ${f1(d.distanceMm ?? NaN)} mm`)
            .join(', '),
      );
    for (const n of s.notes) lines.push(`  note: ${n}`);
  }
  lines.push('');
  lines.push(`LATEST SCAN: ${r.verdict.toUpperCase()}`);
  for (const n of r.notes) lines.push(`note: ${n}`);
  return lines.join('\n');
}

const collect = (v: string, prev: string[]) => [...prev, v];

export function register(program: Command): void {
  program
    .command('cement')
    .description('new cement in each injection scan against the baseline: volume per site, leaks, verdict')
    .requiredOption('--plan <plan>', 'plan.json or a 3D Slicer .mrk.json (the trocars are the injection sites)')
    .requiredOption('--baseline <scan>', 'scan before the injection (file or DICOM folder)')
    .requiredOption(
      '--scan <scan>',
      'scan during the injection, on the baseline grid (repeat, in time order)',
      collect,
      [],
    )
    .option('--labels <labels>', 'segmentation of the baseline: foramina, canal, bone')
    .option(
      '--warning-mm <mm>',
      'caution when the cement front is closer than this to a foramen or the canal',
      String(CEMENT_WARNING_MM),
    )
    .option('--json', 'print the report as JSON')
    .option('--out <report>', 'write the report (JSON) to this file')
    .option('--force', 'write --out even over a file that is not a cement report')
    .action(async (opts: Record<string, string | string[] | boolean | undefined>) => {
      const planPath = String(opts.plan),
        basePath = String(opts.baseline);
      const scanPaths = (opts.scan as string[] | undefined) ?? [];
      if (scanPaths.length === 0) throw new UsageError('give at least one --scan');
      const labelsPath = typeof opts.labels === 'string' ? opts.labels : undefined;
      const out = typeof opts.out === 'string' ? opts.out : undefined;
      const inputs = [planPath, basePath, ...scanPaths, ...(labelsPath ? [labelsPath] : [])];
      if (out) await checkOutputs([{ file: out, kind: 'cement' }], inputs, { force: !!opts.force });
      const warningMm = parseWarningMm(opts.warningMm as string | undefined);
      const plan = await readPlan(planPath, basePath);
      const baseline = await loadVolume(basePath);
      const scans = [];
      for (const p of scanPaths) scans.push(await loadVolume(p));
      let labels: CementOptions['labels'];
      if (labelsPath) {
        const loaded = await loadLabelsPath(labelsPath, baseline);
        for (const w of loaded.warnings) console.error(`warning: ${w}`);
        labels = { volume: loaded.volume, anatomy: await anatomyFor(loaded.volume, labelsPath) };
      }
      const report = analyzeCement({ plan: plan.paths, baseline, scans, labels, warningMm });
      const json = JSON.stringify(report, null, 2) + '\n';
      if (out) await writeFileAtomic(out, json);
      if (opts.json) process.stdout.write(json);
      else {
        console.log(formatCementReport(report));
        if (out) console.log(`report written to ${out}`);
      }
    });
}
