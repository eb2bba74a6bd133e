/**
 * `corridor register2d VOLUME FRAME [FRAME2]`: 2D/3D rigid registration of the volume to one or two
 * fluoroscopic frames (DICOM XA/RF, or DRRs written by `corridor drr --dicom`) at their nominal C-arm
 * pose, i.e. the patient's motion since the volume. All computation is core's (prepareRegister2dVolume,
 * register2dAsync, its DRRs on worker threads: register2d/pool.ts); this module reads files, parses flags,
 * prints, draws and writes atomically. A failed
 * verdict writes nothing and exits with a RegistrationError (status 2).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import {
  CARM_PRESETS,
  DEFAULT_CARM_PRESET,
  RegistrationError,
  UsageError,
  anglesLabel,
  annotateFluoroscopy,
  drawOverlay,
  grayToRgba,
  mat4FromRows,
  parseTransformFile,
  readXaFrame,
  register2dAsync,
  transformFileText,
  type PathLike,
  type Register2dResult,
  type Register2dView,
  type Volume,
  type XaFrame,
} from '@corridor/core';
import { loadPath } from '../io/load.js';
import { prepareSharedRegister2dVolume, Register2dPool } from '../register2d/pool.js';
import { writeFileAtomic } from '../io/atomic-write.js';
import { checkOutputs } from '../io/output-guard.js';
import { planCenter, pointOpt, readPlan, systemFrom, writePng, type Opts } from './carm.js';

async function loadVolume(p: string): Promise<Volume> {
  const { series } = await loadPath(p);
  if (series.length !== 1) throw new UsageError(`expected one image series, found ${series.length}`, p);
  return series[0].volume;
}

async function readBytes(p: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(p));
  } catch {
    throw new UsageError(`cannot read ${what}`, p);
  }
}

/** OUT.png for the first view, OUT-2.png for the second. */
function overlayFile(out: string, view: number): string {
  if (view === 0) return out;
  const ext = path.extname(out);
  return `${out.slice(0, out.length - ext.length)}-${view + 1}${ext}`;
}

const GREY = [150, 150, 150] as [number, number, number];

function summary(r: Register2dResult, seconds: number, assumed: string[][]): string {
  const f = (x: number, d = 2) => x.toFixed(d);
  const p = r.parameters;
  const u = r.uncertainty;
  const lines = [
    `verdict: ${r.verdict.status}${r.verdict.reasons.length ? ` (${r.verdict.reasons.join('; ')})` : ''}`,
    `patient motion planningToCurrent: rotation (deg, Rz Ry Rx) ${p.rotationDeg.map((x) => f(x)).join(', ')}; ` +
      `translation (mm) ${p.translationMm.map((x) => f(x)).join(', ')} about ${p.centerMm.map((x) => f(x, 1)).join(', ')}`,
    `gradient correlation ${f(r.similarity, 3)} (${f(r.nullSimilarity, 3)} with the patient shifted 10 mm); ` +
      `${r.renders} DRRs in ${f(seconds, 1)} s`,
  ];
  for (const [i, v] of r.views.entries()) {
    lines.push(
      `view ${i + 1} (${anglesLabel(v.geometry.primaryDeg, v.geometry.secondaryDeg)}): correlation ` +
        `${f(v.similarityBefore, 3)} before, ${f(v.similarity, 3)} after`,
    );
    for (const [k, a] of v.after.entries()) {
      const b = v.before[k];
      const d = Math.hypot(a.entryPx[0] - b.entryPx[0], a.entryPx[1] - b.entryPx[1]);
      lines.push(
        `  ${a.name}: entry (${b.entryPx.map((x) => f(x, 1)).join(', ')}) -> ` +
          `(${a.entryPx.map((x) => f(x, 1)).join(', ')}) px, moved ${f(d, 1)} px`,
      );
    }
    if (assumed[i].length) lines.push(`  UNVERIFIED GEOMETRY: assumed ${assumed[i].join('; ')}`);
  }
  if (r.singleView)
    lines.push(
      `one view: depth along its central ray is known to about +-${f(u.depthUncertaintyMm, 1)} mm only ` +
        `(across the ray: SD ${f(u.centerSdMm[0])}, ${f(u.centerSdMm[1])} mm); take a second view to fix it`,
    );
  else lines.push(`centre SD (mm, along view 1's u, v, ray): ${u.centerSdMm.map((x) => f(x)).join(', ')}`);
  lines.push('similarity is not accuracy: check the overlay against the anatomy');
  return lines.join('\n');
}

interface Register2dOptions extends Opts {
  plan?: string;
  init?: string;
  out?: string;
  overlay?: string;
  carm?: string;
  isocenter?: string;
  frame?: string;
  json?: boolean;
  force?: boolean;
}

export function register(program: Command): void {
  const presets = Object.keys(CARM_PRESETS).join(', ');
  program
    .command('register2d')
    .description(
      "2D/3D rigid registration: the patient's motion since VOLUME from one or two fluoroscopic frames at their " +
        'nominal C-arm pose (gradient correlation of DRRs); the transform written maps planned LPS mm to where ' +
        'the anatomy is now (use it with plan-transform)',
    )
    .argument('<volume>', 'the CT/CBCT the plan was made on (file or DICOM folder)')
    .argument('<frame>', 'DICOM XA/RF frame (or a DRR from `corridor drr --dicom`)')
    .argument('[frame2]', 'a second frame, best 60 degrees or more from the first')
    .option('--plan <plan>', 'plan.json: its paths are overlaid before and after, its centre is the centre of rotation')
    .option('--init <transform>', 'starting transform (.json or .tfm planning -> current), e.g. the last correction')
    .option('--out <transform>', 'write the correction (.json or .tfm; moving = planning, fixed = current)')
    .option('--overlay <png>', 'write each frame with the plan before (grey) and after (colour); OUT-2.png for frame 2')
    .option('--carm <preset>', `C-arm preset for tags the frames lack (${presets})`, DEFAULT_CARM_PRESET)
    .option(
      '--isocenter <x,y,z>',
      'patient point at the isocentre, LPS mm, for frames without it (default: plan centre)',
    )
    .option('--frame <n>', 'frame number of a multi-frame file, 1-based', '1')
    .option('--json', 'print the result as JSON')
    .option('--force', 'write outputs over files of another kind')
    .action(async (volumePath: string, framePath: string, frame2Path: string | undefined, opts: Register2dOptions) => {
      const framePaths = [framePath, ...(frame2Path ? [frame2Path] : [])];
      const inputs = [volumePath, ...framePaths, ...(opts.plan ? [opts.plan] : []), ...(opts.init ? [opts.init] : [])];
      const outputs = [
        ...(opts.out ? [{ file: opts.out, kind: 'transform' as const }] : []),
        ...(opts.overlay
          ? framePaths.map((_, i) => ({ file: overlayFile(opts.overlay as string, i), kind: 'png' as const }))
          : []),
      ];
      if (opts.out) transformFileText(mat4FromRows([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]), opts.out); // checks the name
      await checkOutputs(outputs, inputs, { force: opts.force });
      const frameNumber = Number(opts.frame ?? '1');
      if (!(Number.isInteger(frameNumber) && frameNumber >= 1))
        throw new UsageError(`--frame "${opts.frame}" must be a frame number from 1`);
      const system = systemFrom(opts);
      const plan = opts.plan ? await readPlan(opts.plan) : undefined;
      const paths: PathLike[] = plan ? plan.paths : [];
      const given = pointOpt(opts.isocenter, '--isocenter');
      const iso = given ?? (paths.length ? planCenter(paths) : undefined);
      const frames: XaFrame[] = [];
      for (const p of framePaths) {
        const f = await readXaFrame(await readBytes(p, 'frame'), p, {
          system,
          frame: frameNumber - 1,
          ...(iso ? { isocenter: iso } : {}),
        });
        frames.push(f);
      }
      const init = opts.init
        ? parseTransformFile(new TextDecoder().decode(await readBytes(opts.init, 'transform')), opts.init).movingToFixed
        : undefined;
      const volume = await loadVolume(volumePath);
      const tty = process.stderr.isTTY && !opts.json;
      const t0 = performance.now();
      // The DRRs of the fit on worker threads (one per core), the volume's levels in shared memory.
      const prepared = prepareSharedRegister2dVolume(volume);
      const views: Register2dView[] = frames.map((f, i) => ({
        gray: f.gray,
        geometry: f.geometry,
        name: framePaths[i],
      }));
      const pool = Register2dPool.create(prepared);
      let result: Register2dResult;
      try {
        result = await register2dAsync(
          prepared,
          views,
          {
            paths,
            ...(init ? { initialPlanningToCurrent: init } : {}),
            ...(tty
              ? {
                  onProgress: (d: number, t: number, phase: string) =>
                    process.stderr.write(`\r[${d}/${t}] ${phase}        `),
                }
              : {}),
          },
          pool,
        );
      } finally {
        await pool.close();
      }
      const seconds = (performance.now() - t0) / 1000;
      if (tty) process.stderr.write('\n');
      const assumed = frames.map((f) => f.assumed.filter((a) => !a.includes('given by the caller')));
      const doc = {
        ...result,
        volume: { file: volumePath },
        frames: framePaths.map((file, i) => ({ file, assumed: frames[i].assumed, verified: frames[i].verified })),
        seconds,
      };
      console.log(opts.json ? JSON.stringify(doc, null, 2) : summary(result, seconds, assumed));
      if (result.verdict.status !== 'ok') {
        throw new RegistrationError(
          `2D/3D registration failed, nothing written: ${result.verdict.reasons.join('; ')}`,
          framePath,
        );
      }
      if (opts.overlay) {
        for (const [i, v] of result.views.entries()) {
          const g = v.geometry;
          const grey = { line: GREY, outline: GREY, entry: GREY, target: GREY, ring: GREY };
          let rgba = drawOverlay(grayToRgba(frames[i].gray, g.columns, g.rows), g.columns, g.rows, v.before, {
            style: grey,
          });
          rgba = drawOverlay(rgba, g.columns, g.rows, v.after, { unverified: !frames[i].verified });
          annotateFluoroscopy(rgba, g, {
            title: `Motion-corrected ${anglesLabel(g.primaryDeg, g.secondaryDeg)}`,
            footer: frames[i].verified ? 'grey: before, colour: after' : 'UNVERIFIED GEOMETRY',
          });
          await writePng(overlayFile(opts.overlay, i), rgba, g.columns, g.rows);
          if (!opts.json) console.log(`wrote ${overlayFile(opts.overlay, i)}`);
        }
      }
      if (opts.out) {
        const rel = (f: string) => path.relative(path.dirname(path.resolve(opts.out as string)), path.resolve(f));
        // No fixed image: the fixed frame is the patient now (the C-arm's), not a volume a plan can refer to.
        const extra = { moving: { file: rel(volumePath) }, frames: framePaths.map(rel), registration2d: result };
        await writeFileAtomic(opts.out, transformFileText(mat4FromRows(result.planningToCurrent), opts.out, extra), {
          makeDir: true,
        });
        if (!opts.json) console.log(`wrote ${opts.out}`);
      }
    });
}
