/**
 * `corridor verify PLAN SCAN`: the placed instruments of a verification scan against the plan (core's
 * verifyPlacement); a table with PASS / FAIL per path, or the report as JSON (--json, --out). All
 * computation is core's; this module reads files, parses flags and prints.
 *
 * --transform takes a JSON file holding the rigid scan -> plan transform as 4 rows of 4 numbers
 * (row-major), either bare or under "movingToFixed" (the scan moving, the plan's frame fixed) or
 * "scanToPlan"; a flat list of 16 numbers (row-major) is accepted under the same keys.
 *
 * --register-to VOLUME registers the scan to the planning volume first (core's registerScanToReference:
 * rigid, metal left out) and verifies through the transform found; a failed registration is refused.
 *
 * --fractures takes a JSON file of fracture planes for the screws' check: a list of
 * { "name", "point": [x, y, z], "normal": [x, y, z] } (LPS mm, plan frame), bare or under "fractures",
 * or the phantom's truth.json (its "fractures": side, pointOnCleft, normal).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import {
  UsageError,
  VERIFY_TOLERANCE_DEG,
  VERIFY_TOLERANCE_MM,
  mat4FromRows,
  parsePlan,
  RegistrationError,
  registerScanToReference,
  slicerMarkupsToPlan,
  verifyAnatomyFor,
  verifyPlacement,
  type Mat4,
  type Plan,
  type FracturePlane,
  type Point3,
  type ScanRegistrationSummary,
  type VerificationReport,
  type VerifyAnatomy,
  type VerifyOptions,
  type Volume,
  findForamina,
  GeometryError,
  foraminaSourceOf,
  type ForaminaSource,
} from '@corridor/core';
import { loadLabelsPath, loadPath } from '../io/load.js';
import { writeFileAtomic } from '../io/atomic-write.js';
import { checkOutputs } from '../io/output-guard.js';
import { progressBar } from './progress.js';

export async function loadVolume(p: string): Promise<Volume> {
  const { series } = await loadPath(p);
  if (series.length !== 1) throw new UsageError(`expected one image series, found ${series.length}`, p);
  return series[0].volume;
}

export async function readText(p: string, what: string): Promise<string> {
  try {
    return await readFile(p, 'utf8');
  } catch {
    throw new UsageError(`cannot read ${what}`, p);
  }
}

export async function readPlan(p: string, scanPath: string): Promise<Plan> {
  const text = await readText(p, 'plan file');
  if (/\.mrk\.json$/i.test(p)) return slicerMarkupsToPlan(text, p, { volume: { file: scanPath } }).plan;
  return parsePlan(text, p);
}

/** The scan -> plan matrix of a transform file (see the module comment). */
export function parseTransform(text: string, source: string): Mat4 {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`not JSON: ${(err as Error).message}`, source);
  }
  let m: unknown = doc;
  if (typeof doc === 'object' && doc !== null && !Array.isArray(doc)) {
    const o = doc as Record<string, unknown>;
    m = o.movingToFixed ?? o.scanToPlan;
  }
  const flat = Array.isArray(m) && m.length === 4 && m.every(Array.isArray) ? (m as unknown[][]).flat() : m;
  if (!Array.isArray(flat) || flat.length !== 16 || !flat.every((v) => typeof v === 'number' && Number.isFinite(v)))
    throw new UsageError(
      'expected a 4x4 matrix (4 rows of 4 finite numbers, row-major), bare or under "movingToFixed" or "scanToPlan"',
      source,
    );
  return mat4FromRows(flat as number[]);
}

const isP3 = (x: unknown): x is Point3 =>
  Array.isArray(x) && x.length === 3 && x.every((v) => typeof v === 'number' && Number.isFinite(v));

/** Fracture planes of a --fractures file (see the module comment). */
export function parseFractures(text: string, source: string): FracturePlane[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`not JSON: ${(err as Error).message}`, source);
  }
  const list =
    typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? (doc as Record<string, unknown>).fractures : doc;
  if (!Array.isArray(list))
    throw new UsageError('expected a list of fracture planes, bare or under "fractures"', source);
  return list.map((f: unknown, i) => {
    const o = (typeof f === 'object' && f !== null ? f : {}) as Record<string, unknown>;
    const point = o.point ?? o.pointOnCleft;
    const name = o.name ?? o.side ?? `fracture ${i + 1}`;
    if (!isP3(point) || !isP3(o.normal) || Math.hypot(...o.normal) < 1e-9 || typeof name !== 'string')
      throw new UsageError(
        `fracture ${i + 1}: needs "point" (or "pointOnCleft") and a nonzero "normal", 3 numbers each`,
        source,
      );
    return { name, point, normal: o.normal };
  });
}

/** --tolerance "MM,DEG" (or "MM": the angle keeps its default). */
export function parseTolerance(s: string | undefined): { mm: number; deg: number } {
  if (s === undefined) return { mm: VERIFY_TOLERANCE_MM, deg: VERIFY_TOLERANCE_DEG };
  const parts = s.split(',').map((x) => x.trim());
  const nums = parts.map(Number);
  if (parts.length < 1 || parts.length > 2 || parts.some((x) => x === '') || !nums.every((x) => x > 0 && x < 90))
    throw new UsageError(`--tolerance "${s}" is not MM,DEG with both above 0 (e.g. 2,2)`);
  return { mm: nums[0], deg: nums[1] ?? VERIFY_TOLERANCE_DEG };
}

/** Which labels are which: the phantom (names from a truth.json beside the labels when there), or TotalSegmentator. */
export async function anatomyFor(labels: Volume, labelsPath: string): Promise<VerifyAnatomy> {
  const truthFile = path.join(path.dirname(path.resolve(labelsPath)), 'truth.json');
  let ids: Record<string, number> | undefined;
  try {
    const doc = JSON.parse(await readFile(truthFile, 'utf8')) as { labels?: unknown };
    if (doc && typeof doc.labels === 'object' && doc.labels !== null) ids = doc.labels as Record<string, number>;
  } catch {
    // No truth.json beside the labels (or not the phantom's): tell the anatomy from the label values.
  }
  return verifyAnatomyFor(labels, ids);
}

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
const fp = (p: Point3) => `(${p.map(f1).join(', ')})`;
const pad = (s: string, n: number) => (s.length >= n ? s + ' ' : s + ' '.repeat(n - s.length));

/** The report as a table: one row per path, its reasons under it, then unplanned instruments and notes. */
export function formatReport(r: VerificationReport): string {
  const lines: string[] = [];
  lines.push(`tolerance ${r.tolerance.mm} mm, ${r.tolerance.deg} deg; anatomy checked from: ${r.structureSource}`);
  if (r.registration) {
    const g = r.registration;
    lines.push(
      `scan registered to the planning volume (${g.metric.toUpperCase()} ${g.metricValue.toFixed(3)}, ` +
        `rotation ${g.rotationDeg.map(f1).join(', ')} deg, translation ${g.translationMm.map(f1).join(', ')} mm, ` +
        `${g.seconds.toFixed(1)} s; metal above ${g.excludeHu} HU and ${g.excludeMarginMm} mm around it left out)`,
    );
  } else if (r.scanToPlan) lines.push('scan brought into the plan frame by the given transform (scan -> plan)');
  const head = ['path', 'status', 'entry mm', 'tip mm', 'angle deg', 'depth mm', 'lateral mm', 'instrument'];
  const w = [Math.max(12, ...r.paths.map((p) => p.pathId.length + p.name.length + 4)), 8, 10, 8, 11, 10, 12, 10];
  lines.push(
    head
      .map((h, i) => pad(h, w[i]))
      .join('')
      .trimEnd(),
  );
  for (const p of r.paths) {
    const d = p.deviation;
    const cells = [
      p.name && p.name !== p.pathId ? `${p.pathId} (${p.name})` : p.pathId,
      p.status.toUpperCase(),
      d ? f1(d.entryOffsetMm) : '-',
      d ? f1(d.tipOffsetMm) : '-',
      d ? f1(d.angleDeg) : '-',
      d ? f1(d.depthDifferenceMm) : '-',
      d ? f1(d.lateralAtTargetMm) : '-',
      p.instrument?.id ?? '-',
    ];
    lines.push(
      cells
        .map((c, i) => pad(c, w[i]))
        .join('')
        .trimEnd(),
    );
    for (const why of p.reasons) lines.push(`    ${why}`);
    if (p.screw) {
      const sc = p.screw;
      lines.push(
        `    screw: ${f1(sc.lengthMm)} mm, ${sc.lengthInBoneMm === null ? 'bone not known' : `${f1(sc.lengthInBoneMm)} mm in bone`}` +
          `, thread ${f1(sc.threadLengthMm)} mm (${sc.threadLengthFrom})`,
      );
      for (const f of sc.fractures)
        lines.push(
          f.crossed
            ? `    fracture ${f.name}: crossed ${f1(f.fromTipMm ?? NaN)} mm from the tip; thread in bone ` +
                `${f1(f.threadTipSideMm)} mm tip side, ${f1(f.threadOuterSideMm)} mm outer side: ` +
                (f.threadCrosses ? 'THREAD CROSSES' : 'THREAD DOES NOT CROSS')
            : `    fracture ${f.name}: not crossed`,
        );
    }
  }
  for (const u of r.unplanned) {
    lines.push(`UNPLANNED ${u.id}: ${f1(u.lengthMm)} mm from ${fp(u.outerEnd)} to ${fp(u.tip)}`);
    for (const h of u.structures) lines.push(`    ${h.structure === 'outside bone' ? 'outside bone' : `in ${h.name}`}`);
  }
  lines.push(r.allPass ? 'ALL PATHS PASS' : 'NOT ALL PATHS PASS');
  for (const n of r.notes) lines.push(`note: ${n}`);
  return lines.join('\n');
}

export function register(program: Command): void {
  program
    .command('verify')
    .description('verify placed instruments (guidepins, trocars) in a scan against the plan: PASS / FAIL per path')
    .argument('<plan>', 'plan.json or a 3D Slicer .mrk.json')
    .argument('<scan>', 'verification scan (CT or CBCT, file or DICOM folder)')
    .option('--labels <labels>', 'segmentation to follow each instrument through (canal, foramina, bone)')
    .option('--labels-frame <frame>', "the labels' frame: plan (of the planning CT) or scan", 'plan')
    .option('--transform <file>', 'JSON: rigid scan -> plan transform (movingToFixed, 4 rows of 4)')
    .option(
      '--register-to <volume>',
      'register the scan to this planning volume first (rigid, metal left out) and verify in its frame',
    )
    .option(
      '--tolerance <mm,deg>',
      'tolerance of entry and tip (mm) and of the angle (deg)',
      `${VERIFY_TOLERANCE_MM},${VERIFY_TOLERANCE_DEG}`,
    )
    .option('--fractures <file>', 'JSON: fracture planes (name, point, normal) for the screws, or a truth.json')
    .option('--thread-mm <mm>', 'threaded length of the screws (mm from the tip); default fully threaded')
    .option('--metal-hu <hu>', 'metal threshold (HU); default adaptive, at least 2500')
    .option('--json', 'print the report as JSON')
    .option('--out <report>', 'write the report (JSON) to this file')
    .option('--force', 'write --out even over a file that is not a verification report')
    .option('--progress', 'draw a progress bar on stderr even when it is not a terminal')
    .option('--quiet', 'no progress on stderr')
    .action(async (planPath: string, scanPath: string, opts: Record<string, string | boolean | undefined>) => {
      const inputs = [
        planPath,
        scanPath,
        ...[opts.labels, opts.transform, opts.registerTo, opts.fractures].filter((x) => typeof x === 'string'),
      ];
      if (typeof opts.transform === 'string' && typeof opts.registerTo === 'string')
        throw new UsageError('give --transform or --register-to, not both');
      const out = typeof opts.out === 'string' ? opts.out : undefined;
      if (out) await checkOutputs([{ file: out, kind: 'verification' }], inputs, { force: !!opts.force });
      const frame = String(opts.labelsFrame);
      if (frame !== 'plan' && frame !== 'scan') throw new UsageError(`--labels-frame "${frame}" is not plan or scan`);
      const tolerance = parseTolerance(opts.tolerance as string | undefined);
      let thresholdHu: number | undefined;
      if (opts.metalHu !== undefined) {
        thresholdHu = Number(opts.metalHu);
        if (!Number.isFinite(thresholdHu) || String(opts.metalHu).trim() === '')
          throw new UsageError(`--metal-hu "${String(opts.metalHu)}" must be a number`);
      }
      let threadLengthMm: number | undefined;
      if (opts.threadMm !== undefined) {
        threadLengthMm = Number(opts.threadMm);
        if (!(threadLengthMm > 0) || !Number.isFinite(threadLengthMm))
          throw new UsageError(`--thread-mm "${String(opts.threadMm)}" must be a number above 0`);
      }
      const fractures =
        typeof opts.fractures === 'string'
          ? parseFractures(await readText(opts.fractures, 'fractures file'), opts.fractures)
          : undefined;
      const plan = await readPlan(planPath, scanPath);
      const scan = await loadVolume(scanPath);
      let scanToPlan =
        typeof opts.transform === 'string'
          ? parseTransform(await readText(opts.transform, 'transform file'), opts.transform)
          : undefined;
      let registration: ScanRegistrationSummary | undefined;
      let planningVolume: Volume | undefined;
      if (typeof opts.registerTo === 'string') {
        const reference = await loadVolume(opts.registerTo);
        planningVolume = reference;
        const reg = registerScanToReference(reference, scan);
        if (reg.summary.status !== 'ok')
          throw new RegistrationError(
            `registration of the scan to the planning volume failed: ${reg.summary.reasons.join(' ')}`,
            scanPath,
          );
        scanToPlan = reg.scanToPlan;
        registration = reg.summary;
      }
      let labels: VerifyOptions['labels'];
      if (typeof opts.labels === 'string') {
        const loaded = await loadLabelsPath(opts.labels, scan);
        for (const w of loaded.warnings) console.error(`warning: ${w}`);
        labels = { volume: loaded.volume, anatomy: await anatomyFor(loaded.volume, opts.labels), frame };
      }
      let foramina: ForaminaSource | undefined;
      if (!labels) {
        // No labels: the foramina found in the planning volume when given (no metal in them yet), else in
        // the scan itself (where an instrument placed through a foramen fills it and hides it).
        try {
          const found = findForamina(planningVolume ?? scan);
          for (const w of found.warnings) console.error(`warning: foramina: ${w}`);
          labels = { volume: found.labels, anatomy: found.anatomy, frame: planningVolume ? 'plan' : 'scan' };
          foramina = foraminaSourceOf(found);
          if (!planningVolume) {
            foramina.warnings?.push(
              'found in the verification scan: an instrument through a foramen fills it and may hide it ' +
                '(give --register-to the planning CT, or labels)',
            );
          }
        } catch (e) {
          if (!(e instanceof GeometryError)) throw e;
          console.error(`warning: foramina not found in the image: ${e.message}`);
          foramina = { source: 'none', warnings: [e.message] };
        }
      }
      // verifyPlacement reports no progress of its own: the bar names the step while it runs.
      const bar = progressBar('verify', { quiet: !!opts.quiet, progress: !!opts.progress });
      bar.update(0, 1, `checking ${plan.paths.length} path(s)`);
      const report = verifyPlacement(plan.paths, scan, {
        tolerance,
        scanToPlan,
        labels,
        foramina,
        metal: thresholdHu === undefined ? undefined : { thresholdHu },
        registration,
        fractures,
        threadLengthMm,
      });
      bar.clear();
      const json = JSON.stringify(report, null, 2) + '\n';
      if (out) await writeFileAtomic(out, json);
      if (opts.json) process.stdout.write(json);
      else {
        console.log(formatReport(report));
        if (out) console.log(`report written to ${out}`);
      }
    });
}
