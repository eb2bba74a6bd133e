/**
 * `corridor register FIXED MOVING` (rigid 3D/3D registration) and `corridor plan-transform PLAN
 * TRANSFORM` (carry a plan into another scan's frame). All computation is core's (registerRigid,
 * transformPlan); this module reads files, parses flags, prints, and writes atomically. A registration
 * whose verdict is failed writes nothing and exits with a RegistrationError (status 2).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import {
  RegistrationError,
  UsageError,
  mat4FromRows,
  parsePlan,
  parseTransformFile,
  planToJson,
  registerRigid,
  resampleOntoFixed,
  transformFileText,
  transformPlan,
  type MetricKind,
  type RigidRegistrationResult,
  type Volume,
  volumeStats,
} from '@corridor/core';
import { loadPath } from '../io/load.js';
import { writeFileAtomic } from '../io/atomic-write.js';
import { checkOutputs } from '../io/output-guard.js';
import { progressBar } from './progress.js';
import { encodeForPath } from './convert.js';

async function loadVolume(p: string): Promise<Volume> {
  const { series } = await loadPath(p);
  if (series.length !== 1) throw new UsageError(`expected one image series, found ${series.length}`, p);
  return series[0].volume;
}

async function readText(p: string, what: string): Promise<string> {
  try {
    return await readFile(p, 'utf8');
  } catch {
    throw new UsageError(`cannot read ${what}`, p);
  }
}

function parseList(s: string, flag: string, ok: (x: number) => boolean): number[] {
  const v = s.split(',').map((x) => Number(x.trim()));
  if (!v.length || !v.every((x) => Number.isFinite(x) && ok(x)))
    throw new UsageError(`${flag} "${s}" is not a list of numbers`);
  return v;
}

function fillOption(s: string | undefined, flag: string): number | 'auto' | 'none' | undefined {
  if (s === undefined || s === 'auto' || s === 'none') return s;
  const x = Number(s);
  if (s.trim() === '' || !Number.isFinite(x)) throw new UsageError(`${flag} "${s}" must be a number, auto or none`);
  return x;
}

function coneEndsOption(s: string | undefined): 'auto' | 'none' | undefined {
  if (s === undefined || s === 'auto' || s === 'none') return s;
  throw new UsageError(`--cone-ends "${s}" must be auto or none`);
}

function summary(r: RigidRegistrationResult, seconds: number): string {
  const f = (x: number, d = 2) => x.toFixed(d);
  const p = r.parameters;
  const lines = [
    `verdict: ${r.verdict.status}${r.verdict.reasons.length ? ` (${r.verdict.reasons.join('; ')})` : ''}`,
    `rotation (deg, Rz Ry Rx of fixedToMoving): ${p.rotationDeg.map((x) => f(x)).join(', ')}`,
    `translation (mm): ${p.translationMm.map((x) => f(x)).join(', ')} about centre ${p.centerMm.map((x) => f(x, 1)).join(', ')}`,
    `${r.metric === 'mi' ? 'mutual information' : 'correlation'}: ${f(r.metricValue, 3)} ` +
      `(${f(r.nullMetricValue, 3)} at a 20 mm misalignment); overlap ${f(100 * r.overlapFraction, 0)}%`,
    ...(r.fixedFov || r.movingFov
      ? [
          `cone-beam field of view: ${[r.fixedFov && 'fixed', r.movingFov && 'moving'].filter(Boolean).join(' and ')}, ` +
            `cone ends left out${r.localMeanSigmaMm > 0 ? `; ${localNote(r)}` : ''}`,
        ]
      : r.localMeanSigmaMm > 0
        ? [localNote(r)]
        : []),
    ...(r.coneBeamCheck
      ? [
          `cross-check with the local mean ${r.coneBeamCheck.localMeanSigmaMm} mm subtracted and the local ` +
            `contrast over ${r.coneBeamCheck.localStdSigmaMm} mm divided out: ` +
            `${f(r.coneBeamCheck.meanDisagreementMm)} mm apart on average (${f(r.coneBeamCheck.maxDisagreementMm)} at most)`,
        ]
      : []),
    `${r.iterations} iterations over levels ${r.levels.map((l) => `${l.spacingMm} mm`).join(', ')} in ${f(seconds, 1)} s`,
    'similarity is not accuracy: check the result (e.g. load the .tfm in 3D Slicer)',
  ];
  return lines.join('\n');
}

interface RegisterOptions {
  mask?: string;
  maskLabels?: string;
  maskDilate?: string;
  metric?: string;
  init?: string;
  out?: string;
  resampled?: string;
  levels?: string;
  samples?: string;
  fixedFill?: string;
  movingFill?: string;
  coneEnds?: string;
  localMean?: string;
  json?: boolean;
  quiet?: boolean;
  progress?: boolean;
  force?: boolean;
}

export function register(program: Command): void {
  program
    .command('register')
    .description(
      'rigid 3D/3D registration of MOVING onto FIXED (mutual information, or correlation for the same modality); ' +
        'the transform written maps moving LPS mm to fixed LPS mm (.json) or stores ITK fixed -> moving (.tfm)',
    )
    .argument('<fixed>', 'fixed image (its frame is the result frame, e.g. the intraoperative CBCT)')
    .argument('<moving>', 'moving image (e.g. the diagnostic CT the plan was made on)')
    .option('--mask <labels>', 'label image of the fixed region to match (any grid; nonzero voxels, or --mask-labels)')
    .option('--mask-labels <ids>', 'label values of --mask that count (e.g. 25,26,77,78 for sacrum, S1 and hips)')
    .option('--mask-dilate <mm>', 'grow the --mask region by this distance, so its edges count (default 0)')
    .option('--metric <mi|nc>', 'mi: mutual information (default); nc: normalized correlation (same modality)')
    .option('--init <transform>', 'starting transform (.json or .tfm), e.g. from a previous registration')
    .option('--out <transform>', 'write the transform (.json: movingToFixed; .tfm/.txt: ITK, for 3D Slicer)')
    .option('--resampled <volume>', 'write MOVING resampled onto the fixed grid (.nii.gz, .nii or .nrrd)')
    .option('--levels <mm>', 'pyramid spacings, coarse to fine (default 8,4,2)')
    .option('--samples <n>', 'fixed samples per level (default 20000; 60000 with a local mean, as for a C-arm CT)')
    .option('--fixed-fill <v|auto|none>', 'value FIXED holds outside its field of view (default auto)')
    .option('--moving-fill <v|auto|none>', 'value MOVING holds outside its field of view (default auto)')
    .option(
      '--cone-ends <auto|none>',
      "auto (default): leave out a cone-beam CT's cone-end slabs (its field of view found from the fill value)",
    )
    .option(
      '--local-mean <mm>',
      "subtract each image's local mean over this sigma (default 5 for a C-arm CT, whose cone ends are found, else 0; 0: raw intensities)",
    )
    .option('--json', 'print the result as JSON')
    .option('--force', 'write outputs over files of another kind')
    .option('--progress', 'draw a progress bar on stderr even when it is not a terminal')
    .option('--quiet', 'no progress on stderr')
    .action(async (fixedPath: string, movingPath: string, opts: RegisterOptions) => {
      const metric = (opts.metric ?? 'mi') as MetricKind;
      if (metric !== 'mi' && metric !== 'nc') throw new UsageError(`--metric "${opts.metric}" is not mi or nc`);
      const inputs = [fixedPath, movingPath, ...(opts.mask ? [opts.mask] : []), ...(opts.init ? [opts.init] : [])];
      const outputs = [
        ...(opts.out ? [{ file: opts.out, kind: 'transform' as const }] : []),
        ...(opts.resampled ? [{ file: opts.resampled, kind: 'volume' as const }] : []),
      ];
      if (opts.out) transformFileText(mat4FromRows([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]), opts.out); // checks the name
      if (opts.resampled && !/\.(nii\.gz|nii|nrrd)$/i.test(opts.resampled))
        throw new UsageError('must end in .nii.gz, .nii or .nrrd', opts.resampled);
      await checkOutputs(outputs, inputs, { force: opts.force });
      const [fixed, moving] = [await loadVolume(fixedPath), await loadVolume(movingPath)];
      const mask = opts.mask ? await loadVolume(opts.mask) : undefined;
      const init = opts.init ? parseTransformFile(await readText(opts.init, 'transform'), opts.init) : undefined;
      const levels = opts.levels ? parseList(opts.levels, '--levels', (x) => x > 0) : undefined;
      const samples = opts.samples
        ? parseList(opts.samples, '--samples', (x) => Number.isInteger(x) && x >= 100)[0]
        : undefined;
      const bar = progressBar('register', opts);
      const t0 = performance.now();
      const result = registerRigid(fixed, moving, {
        metric,
        fixedMask: mask,
        maskLabels: opts.maskLabels ? parseList(opts.maskLabels, '--mask-labels', Number.isInteger) : undefined,
        maskDilationMm: opts.maskDilate ? parseList(opts.maskDilate, '--mask-dilate', (x) => x >= 0)[0] : undefined,
        initialMovingToFixed: init?.movingToFixed,
        levelsMm: levels,
        samples,
        fixedFill: fillOption(opts.fixedFill, '--fixed-fill'),
        movingFill: fillOption(opts.movingFill, '--moving-fill'),
        coneEnds: coneEndsOption(opts.coneEnds),
        localMeanSigmaMm: opts.localMean ? parseList(opts.localMean, '--local-mean', (x) => x >= 0)[0] : undefined,
        onProgress: (d, t, phase) => bar.update(d, t, phase),
      });
      const seconds = (performance.now() - t0) / 1000;
      bar.clear();
      const doc = { ...result, fixed: { file: fixedPath }, moving: { file: movingPath }, seconds };
      console.log(opts.json ? JSON.stringify(doc, null, 2) : summary(result, seconds));
      if (result.verdict.status !== 'ok') {
        throw new RegistrationError(
          `registration failed, nothing written: ${result.verdict.reasons.join('; ')}`,
          movingPath,
        );
      }
      const m2f = mat4FromRows(result.movingToFixed);
      if (opts.out) {
        // Image paths relative to the transform file, as a plan's volume path is relative to the plan.
        const rel = (f: string) => path.relative(path.dirname(path.resolve(opts.out as string)), path.resolve(f));
        const extra = { fixed: { file: rel(fixedPath) }, moving: { file: rel(movingPath) }, registration: result };
        await writeFileAtomic(opts.out, transformFileText(m2f, opts.out, extra), { makeDir: true });
        if (!opts.json) console.log(`wrote ${opts.out}`);
      }
      if (opts.resampled) {
        const out = resampleOntoFixed(moving, fixed, m2f, { outside: result.movingFill ?? volumeStats(moving).min });
        await writeFileAtomic(opts.resampled, encodeForPath(out, opts.resampled), { makeDir: true });
        if (!opts.json) console.log(`wrote ${opts.resampled}`);
      }
    });

  program
    .command('plan-transform')
    .description("carry a plan into another scan's frame with a transform from `corridor register` (moving -> fixed)")
    .argument('<plan>', 'plan.json made on the moving image')
    .argument('<transform>', 'transform (.json movingToFixed, or ITK .tfm)')
    .requiredOption('--out <plan>', 'the plan in the fixed frame')
    .option('--fixed <image>', 'the fixed image the plan now refers to (default: the transform file names it)')
    .option('--force', 'write over a file of another kind')
    .action(async (planPath: string, transformPath: string, opts: { out: string; fixed?: string; force?: boolean }) => {
      await checkOutputs([{ file: opts.out, kind: 'plan' }], [planPath, transformPath], { force: opts.force });
      const plan = parsePlan(await readText(planPath, 'plan'), planPath);
      const text = await readText(transformPath, 'transform');
      const t = parseTransformFile(text, transformPath);
      let fixedFile = opts.fixed;
      if (!fixedFile && !/^\s*#/.test(text)) {
        const doc = JSON.parse(text) as { fixed?: { file?: unknown } };
        if (typeof doc.fixed?.file === 'string') fixedFile = path.resolve(path.dirname(transformPath), doc.fixed.file);
      }
      const ref: { file?: string; indexToPatient?: Float64Array } = {};
      if (fixedFile) {
        ref.file = path.relative(path.dirname(path.resolve(opts.out)), path.resolve(fixedFile)) || fixedFile;
        if (opts.fixed) ref.indexToPatient = Float64Array.from((await loadVolume(opts.fixed)).indexToPatient);
      }
      const moved = transformPlan(plan, t.movingToFixed, ref);
      await writeFileAtomic(opts.out, JSON.stringify(planToJson(moved), null, 2) + '\n', { makeDir: true });
      console.log(
        `wrote ${opts.out} (${moved.paths.length} paths moved into the frame of ${fixedFile ?? 'the fixed image'})`,
      );
    });
}

function localNote(r: RigidRegistrationResult): string {
  return (
    `local mean ${r.localMeanSigmaMm} mm subtracted` +
    (r.localStdSigmaMm > 0 ? `, local contrast over ${r.localStdSigmaMm} mm normalised` : '')
  );
}
