/**
 * `corridor cement --plan PLAN --baseline SCAN0 --scan SCAN1 [--scan SCAN2 ...]`: the new cement of each
 * injection scan against the baseline (core's analyzeCement); a table per scan with the volume per site,
 * its growth, the leaks, the distances of the front and the verdict (CONTINUE / CAUTION / STOP), or the
 * report as JSON (--json, --out). All computation is core's; this module reads files, parses flags and
 * prints. A scan that is not on the baseline's grid (another scanner, another frame) is registered to
 * the baseline first (core's registerScanToReference: rigid, metal and cement left out) and resampled
 * onto its grid; --register always does so for every scan, --register never refuses such a scan.
 */
import type { Command } from 'commander';
import {
  CEMENT_WARNING_MM,
  UsageError,
  RegistrationError,
  analyzeCement,
  mat4MaxAbsDiff,
  registerScanToReference,
  type CementOptions,
  type CementReport,
  type Point3,
  type ReadonlyMat4,
  type ScanRegistrationSummary,
  type Volume,
  findForamina,
  GeometryError,
  foraminaSourceOf,
  type ForaminaSource,
} from '@corridor/core';
import { loadLabelsPath } from '../io/load.js';
import { writeFileAtomic } from '../io/atomic-write.js';
import { checkOutputs } from '../io/output-guard.js';
import { progressBar } from './progress.js';
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
    if (s.registration) {
      const g = s.registration;
      lines.push(
        `  registered to the baseline (rotation ${g.rotationDeg.map(f1).join(', ')} deg, translation ` +
          `${g.translationMm.map(f1).join(', ')} mm, ${g.seconds.toFixed(1)} s; above ${g.excludeHu} HU left out)`,
      );
    }
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

/** The scan lies on the baseline's grid (same dimensions and indexToPatient, as core compares them). */
function onGrid(s: Volume, b: Volume): boolean {
  return (
    s.dims[0] === b.dims[0] &&
    s.dims[1] === b.dims[1] &&
    s.dims[2] === b.dims[2] &&
    mat4MaxAbsDiff(s.indexToPatient, b.indexToPatient) < 1e-3
  );
}

export function register(program: Command): void {
  program
    .command('cement')
    .description('new cement in each injection scan against the baseline: volume per site, leaks, verdict')
    .requiredOption('--plan <plan>', 'plan.json or a 3D Slicer .mrk.json (the trocars are the injection sites)')
    .requiredOption('--baseline <scan>', 'scan before the injection (file or DICOM folder)')
    .requiredOption(
      '--scan <scan>',
      'scan during the injection (repeat, in time order); registered to the baseline when not on its grid',
      collect,
      [],
    )
    .option('--labels <labels>', 'segmentation of the baseline: foramina, canal, bone')
    .option('--register <when>', 'register scans to the baseline: auto (those not on its grid), always, never', 'auto')
    .option(
      '--warning-mm <mm>',
      'caution when the cement front is closer than this to a foramen or the canal',
      String(CEMENT_WARNING_MM),
    )
    .option('--json', 'print the report as JSON')
    .option('--out <report>', 'write the report (JSON) to this file')
    .option('--force', 'write --out even over a file that is not a cement report')
    .option('--progress', 'draw a progress bar on stderr even when it is not a terminal')
    .option('--quiet', 'no progress on stderr')
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
      let foramina: ForaminaSource | undefined;
      if (!labels) {
        // No labels: the foramina found in the baseline (the canal and the bone surface are not).
        try {
          const found = findForamina(baseline);
          for (const w of found.warnings) console.error(`warning: foramina: ${w}`);
          labels = { volume: found.labels, anatomy: found.anatomy };
          foramina = foraminaSourceOf(found);
        } catch (e) {
          if (!(e instanceof GeometryError)) throw e;
          console.error(`warning: foramina not found in the image: ${e.message}`);
          foramina = { source: 'none', warnings: [e.message] };
        }
      }
      const when = String(opts.register);
      if (when !== 'auto' && when !== 'always' && when !== 'never')
        throw new UsageError(`--register "${when}" is not auto, always or never`);
      const scanToBaseline: (ReadonlyMat4 | null)[] = [];
      const registrations: (ScanRegistrationSummary | null)[] = [];
      for (let i = 0; i < scans.length; i++) {
        const s = scans[i];
        if (when === 'never' || (when === 'auto' && onGrid(s, baseline))) {
          scanToBaseline.push(null);
          registrations.push(null);
          continue;
        }
        const reg = registerScanToReference(baseline, s);
        if (reg.summary.status !== 'ok')
          throw new RegistrationError(
            `registration of the scan to the baseline failed: ${reg.summary.reasons.join(' ')}`,
            scanPaths[i],
          );
        scanToBaseline.push(reg.scanToPlan);
        registrations.push(reg.summary);
      }
      const bar = progressBar('cement', { quiet: !!opts.quiet, progress: !!opts.progress });
      const report = analyzeCement({
        onProgress: (d, t) => bar.update(d, t, `scan ${Math.min(d + 1, t)} of ${t}`),
        plan: plan.paths,
        baseline,
        scans,
        labels,
        foramina,
        warningMm,
        scanToBaseline,
        registrations,
      });
      const json = JSON.stringify(report, null, 2) + '\n';
      if (out) await writeFileAtomic(out, json);
      if (opts.json) process.stdout.write(json);
      else {
        console.log(formatCementReport(report));
        if (out) console.log(`report written to ${out}`);
      }
    });
}
