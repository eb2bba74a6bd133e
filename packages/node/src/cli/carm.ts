/**
 * `corridor views` (bull's-eye and progress views of each planned path), `corridor drr` (virtual
 * fluoroscopy from a CT/CBCT, with the plan overlaid) and `corridor overlay` (the plan on a real XA/RF
 * frame). All computation is core's; this module reads files, parses flags, runs the worker pool, writes.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { encode as encodePng } from 'fast-png';
import {
  CARM_PRESETS,
  DEFAULT_CARM_PRESET,
  UsageError,
  anglesReachable,
  carmFrame,
  carmGeometry,
  carmPreset,
  createVolume,
  anglesLabel,
  annotateFluoroscopy,
  drawOverlay,
  exposureLabel,
  fluoroscopyWithExposure,
  orientationMarkers,
  grayToRgba,
  labelAnatomyFor,
  mat34ToRows,
  overlayGeometry,
  parsePlan,
  pathViews,
  pelvicViews,
  pixelToPatient,
  projectionMatrix,
  readXaFrame,
  writeNifti,
  writeXaFrame,
  type CarmGeometry,
  type CarmSystem,
  type CarmView,
  type PathLike,
  type PelvicViews,
  type Plan,
  type PathOverlay,
  type Point3,
  type Volume,
} from '@corridor/core';
import { loadPath } from '../io/load.js';
import { DrrPool, prepareSharedDrrVolume } from '../drr/pool.js';
import { writeFileAtomic } from '../io/atomic-write.js';
import { checkOutputs } from '../io/output-guard.js';

export type Opts = Record<string, string | boolean | undefined>;

function numberOpt(
  v: string | boolean | undefined,
  name: string,
  check: (x: number) => boolean = Number.isFinite,
): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (typeof v !== 'string' || !check(x)) throw new UsageError(`${name} "${String(v)}" is not a valid number`);
  return x;
}

/** numberOpt for an option that has a default (or is required): missing is a usage error. */
function requiredNumberOpt(v: string | boolean | undefined, name: string, check?: (x: number) => boolean): number {
  const x = numberOpt(v, name, check);
  if (x === undefined) throw new UsageError(`${name} is required`);
  return x;
}

export function pointOpt(v: string | boolean | undefined, name: string): Point3 | undefined {
  if (v === undefined) return undefined;
  const p = String(v)
    .split(',')
    .map((s) => Number(s.trim()));
  if (p.length !== 3 || !p.every(Number.isFinite)) throw new UsageError(`${name} "${String(v)}" is not x,y,z (LPS mm)`);
  return p as Point3;
}

export function systemFrom(opts: Opts): CarmSystem {
  const id = typeof opts.carm === 'string' ? opts.carm : DEFAULT_CARM_PRESET;
  const sid = numberOpt(opts.sid, '--sid', (x) => x > 0);
  const sod = numberOpt(opts.sod, '--sod', (x) => x > 0);
  return carmPreset(id, { ...(sid !== undefined ? { sidMm: sid } : {}), ...(sod !== undefined ? { sodMm: sod } : {}) });
}

export async function readPlan(p: string): Promise<Plan> {
  let text: string;
  try {
    text = await readFile(p, 'utf8');
  } catch {
    throw new UsageError('cannot read plan file', p);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`plan is not JSON: ${(e as Error).message}`, p);
  }
  return parsePlan(json, p);
}

async function readPlanPaths(p: string): Promise<PathLike[]> {
  return (await readPlan(p)).paths;
}

const hasLevel = (paths: readonly PathLike[], id: string) => paths.some((p) => p.id.toLowerCase() === id);

/**
 * Inlet and outlet from the S1/S2 paths and/or the labels; the anterior cortex in the labels, else in the
 * CT (--ct, else the plan's own image when it can be read). Null with a reason when neither levels exist.
 */
export async function pelvicViewsFor(
  planPath: string,
  plan: Plan,
  opts: Opts,
  system: CarmSystem,
): Promise<{ views: PelvicViews | null; reason?: string }> {
  const labelsPath = typeof opts.labels === 'string' ? opts.labels : undefined;
  const levels = hasLevel(plan.paths, 's1') && hasLevel(plan.paths, 's2');
  if (!labelsPath && !levels) return { views: null, reason: 'no S1 and S2 paths in the plan and no --labels' };
  if (labelsPath) {
    const labels = await loadVolume(labelsPath);
    const anatomy = labelAnatomyFor(labels, typeof opts.anatomy === 'string' ? opts.anatomy : 'auto');
    return { views: pelvicViews({ paths: plan.paths, labels, anatomy }, system) };
  }
  const ctFile =
    typeof opts.ct === 'string'
      ? opts.ct
      : plan.volume.file
        ? path.resolve(path.dirname(planPath), plan.volume.file)
        : undefined;
  const ct = ctFile && (typeof opts.ct === 'string' || existsSync(ctFile)) ? await loadVolume(ctFile) : undefined;
  return { views: pelvicViews({ paths: plan.paths, ...(ct ? { ct } : {}) }, system) };
}

export async function loadVolume(p: string): Promise<Volume> {
  const { series } = await loadPath(p);
  if (series.length !== 1) throw new UsageError(`expected one image series, found ${series.length}`, p);
  return series[0].volume;
}

/** Centre of a volume's grid, LPS mm. */
function volumeCenter(v: Volume): Point3 {
  const m = v.indexToPatient;
  const c = v.dims.map((n) => (n - 1) / 2);
  return [0, 1, 2].map((r) => m[r * 4] * c[0] + m[r * 4 + 1] * c[1] + m[r * 4 + 2] * c[2] + m[r * 4 + 3]) as Point3;
}

/** Centroid of the paths' midpoints: where to centre the image when the user does not say. */
export function planCenter(paths: readonly PathLike[]): Point3 {
  const s: Point3 = [0, 0, 0];
  for (const p of paths) for (let i = 0; i < 3; i++) s[i] += (p.entry[i] + p.target[i]) / (2 * paths.length);
  return s;
}

function overlayJson(o: PathOverlay) {
  return {
    id: o.id,
    name: o.name,
    entryPx: o.entryPx,
    targetPx: o.targetPx,
    lengthPx: o.lengthPx,
    outline: o.outline,
    ring: o.ring,
    endOn: o.endOn,
    inImage: o.inImage,
  };
}

export async function writePng(file: string, rgba: Uint8ClampedArray, columns: number, rows: number) {
  const data = new Uint8Array(rgba.buffer, rgba.byteOffset, rgba.length);
  await writeFileAtomic(file, encodePng({ width: columns, height: rows, data, channels: 4, depth: 8 }));
}

/** Line integrals as a 2D float NIfTI placed on the detector plane (i along columns, j along rows). */
function detectorImageVolume(g: CarmGeometry, values: Float32Array): Volume {
  const f = carmFrame(g);
  const o = pixelToPatient(g, f, 0, 0);
  const m = new Float64Array(16);
  for (let r = 0; r < 3; r++) {
    m[r * 4] = f.u[r] * g.columnSpacingMm;
    m[r * 4 + 1] = f.v[r] * g.rowSpacingMm;
    m[r * 4 + 2] = f.d[r];
    m[r * 4 + 3] = o[r];
  }
  m[15] = 1;
  return createVolume({
    data: values,
    dims: [g.columns, g.rows, 1],
    indexToPatient: m,
    meta: { source: 'corridor drr line integrals' },
  });
}

export function register(program: Command): void {
  const presets = Object.keys(CARM_PRESETS).join(', ');

  program
    .command('views')
    .description("bull's-eye and progress C-arm views of each planned path, with reachability")
    .argument('<plan>', 'plan.json')
    .option('--carm <preset>', `C-arm preset (${presets})`, DEFAULT_CARM_PRESET)
    .option('--json', 'print the results as JSON')
    .option('--labels <file>', 'segmentation with the sacrum: S1/S2 levels and anterior cortex of the inlet/outlet')
    .option('--anatomy <name>', 'which labels are which (auto, phantom, totalsegmentator)', 'auto')
    .option('--ct <file>', "CT for the inlet/outlet's anterior cortex without labels (default: the plan's image)")
    .action(async (planPath: string, opts: Opts) => {
      const system = systemFrom(opts);
      const plan = await readPlan(planPath);
      const paths = plan.paths;
      const views = paths.map((p) => pathViews(p, system));
      const pelvic = await pelvicViewsFor(planPath, plan, opts, system);
      if (opts.json) {
        console.log(
          JSON.stringify(
            {
              schemaVersion: 1,
              carm: system.id,
              paths: views,
              pelvic: pelvic.views,
              ...(pelvic.reason ? { pelvicMissing: pelvic.reason } : {}),
            },
            null,
            2,
          ),
        );
        return;
      }
      const f = (x: number) => x.toFixed(1);
      const ang = (a: number, b: number) =>
        `${a >= 0 ? 'LAO' : 'RAO'} ${f(Math.abs(a))}, ${b >= 0 ? 'CRAN' : 'CAUD'} ${f(Math.abs(b))}`;
      const line = (label: string, w: CarmView) => {
        const alt = w.alternative
          ? `; nearest reachable ${ang(w.alternative.primaryDeg, w.alternative.secondaryDeg)} ` +
            `(${f(w.alternative.errorDeg)} deg off)`
          : '';
        console.log(
          `  ${label} ${ang(w.primaryDeg, w.secondaryDeg)}, isocentre (${w.isocenter.map(f).join(', ')}) ` +
            `${w.reachable ? 'reachable' : 'NOT REACHABLE'}${alt}`,
        );
      };
      console.log(`C-arm: ${system.name}`);
      for (const v of views) {
        console.log(`${v.name} [${v.id}], ${f(v.lengthMm)} mm`);
        line("bull's-eye", v.bullseye);
        line('progress  ', v.progress);
      }
      const pv = pelvic.views;
      if (pv) {
        console.log(`Pelvis (S1/S2 levels from ${pv.levelsFrom}, anterior cortex from ${pv.cortexFrom})`);
        line('inlet     ', pv.inlet);
        line('outlet    ', pv.outlet);
        for (const n of pv.notes) console.log(`  note: ${n}`);
      } else console.log(`Pelvis: no inlet/outlet views (${pelvic.reason ?? ''})`);
    });

  program
    .command('drr')
    .description('virtual fluoroscopy (DRR) of a CT/CBCT for a C-arm pose, optionally with the plan overlaid')
    .argument('<volume>', 'CT/CBCT volume (file or DICOM folder)')
    .option('--plan <plan>', 'plan.json to overlay')
    .option('--primary <deg>', 'primary angle, LAO + / RAO -', '0')
    .option('--secondary <deg>', 'secondary angle, cranial + / caudal -', '0')
    .option('--carm <preset>', `C-arm preset (${presets})`, DEFAULT_CARM_PRESET)
    .option('--sid <mm>', 'source to detector distance (overrides the preset)')
    .option('--sod <mm>', 'source to isocentre distance (overrides the preset)')
    .option(
      '--isocenter <x,y,z>',
      'patient point at the isocentre, LPS mm (default: the plan centre, else the volume centre)',
    )
    .option('--size <pixels>', 'image width in pixels', '512')
    .option('--kvp <kv>', 'fixed tube voltage, kV (default: automatic exposure chooses kV and mAs)')
    .option('--dose <nGy>', 'detector dose the automatic exposure aims for, nGy per image', '100')
    .option('--seed <n>', 'noise seed', '1')
    .option('--threads <n>', 'worker threads (default: all cores)')
    .option('--out <png>', 'write the fluoroscopy-like image (with the overlay) as PNG')
    .option('--raw <nii>', 'write the line integrals as a 2D float NIfTI')
    .option('--dicom <dcm>', 'write the image as a DICOM XA frame')
    .option('--json', 'print the projection matrix, isocentre and projected paths as JSON')
    .option('--force', 'write the outputs even over an input or a file of another kind')
    .option('--ignore-limits', "render angles beyond the C-arm preset's limits")
    .action(async (volumePath: string, opts: Opts) => {
      const outputs = (
        [
          ['out', 'png'],
          ['raw', 'volume'],
          ['dicom', 'dicom'],
        ] as const
      )
        .filter(([flag]) => opts[flag])
        .map(([flag, kind]) => ({ file: String(opts[flag]), kind }));
      const drrInputs = [volumePath, ...(opts.plan ? [String(opts.plan)] : [])];
      await checkOutputs(outputs, drrInputs, { force: !!opts.force });
      const system = systemFrom(opts);
      const primaryDeg = requiredNumberOpt(opts.primary, '--primary');
      const secondaryDeg = requiredNumberOpt(opts.secondary, '--secondary', (x) => Math.abs(x) <= 90);
      if (!opts.ignoreLimits && !anglesReachable(system, primaryDeg, secondaryDeg)) {
        const [p0, p1] = system.primaryLimitsDeg,
          [s0, s1] = system.secondaryLimitsDeg;
        throw new UsageError(
          `angles ${primaryDeg} / ${secondaryDeg} deg are beyond the limits of "${system.id}" ` +
            `(primary ${p0} to ${p1}, secondary ${s0} to ${s1} deg): choose another --carm or pass --ignore-limits`,
        );
      }
      const size = requiredNumberOpt(opts.size, '--size', (x) => Number.isInteger(x) && x >= 16 && x <= 4096);
      const manualKvp = numberOpt(opts.kvp, '--kvp', (x) => x >= 40 && x <= 150);
      // Line integrals at the preset's kV (or the fixed one); the exposure scales them to the kV it picks.
      const referenceKvp = manualKvp ?? system.kvp;
      const targetDoseNGy = requiredNumberOpt(opts.dose, '--dose', (x) => x > 0 && x <= 1e6);
      const seed = requiredNumberOpt(opts.seed, '--seed', Number.isInteger);
      const threads = numberOpt(opts.threads, '--threads', (x) => Number.isInteger(x) && x >= 1 && x <= 64);
      const paths = opts.plan ? await readPlanPaths(String(opts.plan)) : [];
      const volume = await loadVolume(volumePath);
      const isocenter =
        pointOpt(opts.isocenter, '--isocenter') ?? (paths.length ? planCenter(paths) : volumeCenter(volume));
      const g = carmGeometry(system, { primaryDeg, secondaryDeg, isocenter }, { size });
      const P = projectionMatrix(g);
      const dv = prepareSharedDrrVolume(volume, { attenuation: { kvp: referenceKvp } });
      const pool = DrrPool.create(dv, threads !== undefined ? { threads } : {});
      let lineIntegrals: Float32Array;
      try {
        lineIntegrals = await pool.render(g);
      } finally {
        await pool.close();
      }
      const img = fluoroscopyWithExposure(lineIntegrals, g, {
        seed,
        exposure: { referenceKvp, targetDoseNGy, ...(manualKvp !== undefined ? { kvp: manualKvp } : {}) },
      });
      const exposure = img.exposure;
      const kvp = exposure.kvp;
      const overlays = overlayGeometry(P, paths, g.columns, g.rows);
      if (opts.out) {
        const rgba = drawOverlay(grayToRgba(img.gray, g.columns, g.rows), g.columns, g.rows, overlays);
        annotateFluoroscopy(rgba, g, {
          title: `DRR ${anglesLabel(primaryDeg, secondaryDeg)}`,
          footer: exposureLabel(exposure),
        });
        await writePng(String(opts.out), rgba, g.columns, g.rows);
      }
      if (opts.raw) await writeFileAtomic(String(opts.raw), writeNifti(detectorImageVolume(g, lineIntegrals)));
      if (opts.dicom) {
        const xa = writeXaFrame({
          gray: img.gray,
          geometry: g,
          kvp,
          mAs: exposure.mAs,
          seriesDescription: `Corridor DRR ${system.id}`,
        });
        await writeFileAtomic(String(opts.dicom), xa);
      }
      const result = {
        schemaVersion: 1,
        carm: system.id,
        geometry: g,
        projectionMatrix: mat34ToRows(P),
        isocenter,
        kvp,
        mAs: exposure.mAs,
        exposure,
        orientation: orientationMarkers(g),
        paths: overlays.map(overlayJson),
      };
      if (opts.json) console.log(JSON.stringify(result, null, 2));
      else {
        const join1 = (p: readonly number[]) => p.map((x) => x.toFixed(1)).join(', ');
        console.log(
          `DRR ${g.columns} x ${g.rows}, ${primaryDeg} / ${secondaryDeg} deg, ` +
            `isocentre (${join1(isocenter)}), ${exposureLabel(exposure)} ` +
            `(${exposure.mode === 'automatic' ? 'automatic exposure' : 'fixed kV'}, ` +
            `${Math.round(exposure.fieldDoseNGy)} nGy, ${Math.round(exposure.fieldPhotonsPerPixel)} photons/pixel ` +
            `in the measuring field)`,
        );
        for (const o of overlays)
          console.log(
            `  ${o.name}: entry (${join1(o.entryPx)}) px, target (${join1(o.targetPx)}) px` +
              `${o.inImage ? '' : ' (outside the image)'}`,
          );
        for (const [flag, what] of [
          ['out', 'image'],
          ['raw', 'line integrals'],
          ['dicom', 'DICOM XA frame'],
        ] as const)
          if (opts[flag]) console.log(`  ${what} written to ${String(opts[flag])}`);
      }
    });

  program
    .command('overlay')
    .description('overlay the plan on a real fluoroscopy frame (DICOM XA/RF), using its positioner tags')
    .argument('<frame>', 'DICOM XA or RF file')
    .requiredOption('--plan <plan>', 'plan.json')
    .option('--carm <preset>', `C-arm preset for missing tags (${presets})`, DEFAULT_CARM_PRESET)
    .option(
      '--isocenter <x,y,z>',
      'patient point at the isocentre, LPS mm (default: from the file, else the plan centre)',
    )
    .option('--frame <n>', 'frame number of a multi-frame file, 1-based as DICOM numbers frames (1 = first)', '1')
    .option('--out <png>', 'write the frame with the overlay as PNG')
    .option('--json', 'print the geometry, what was assumed and the projected paths as JSON')
    .option('--force', 'write --out even over an input or a file that is not a PNG')
    .action(async (framePath: string, opts: Opts) => {
      const overlayOut = opts.out ? [{ file: String(opts.out), kind: 'png' as const }] : [];
      await checkOutputs(overlayOut, [framePath, String(opts.plan)], { force: !!opts.force });
      const system = systemFrom(opts);
      const paths = await readPlanPaths(String(opts.plan));
      // DICOM numbers frames from 1 (Frame Increment Pointer, Referenced Frame Number), as the browser shows them.
      const frameNumber = requiredNumberOpt(opts.frame, '--frame', Number.isInteger);
      if (frameNumber < 1)
        throw new UsageError(`--frame ${frameNumber}: frames are numbered from 1 (the first frame is --frame 1)`);
      const frame = frameNumber - 1;
      let bytes: Uint8Array;
      try {
        bytes = await readFile(framePath);
      } catch {
        throw new UsageError('cannot read frame file', framePath);
      }
      const given = pointOpt(opts.isocenter, '--isocenter');
      const f = await readXaFrame(bytes, framePath, {
        system,
        frame,
        isocenter: given ?? (paths.length ? planCenter(paths) : undefined),
      });
      if (!given) {
        // The plan centre is a guess, not a registration: say so.
        f.assumed = f.assumed.map((a) =>
          a.replace(/given by the caller$/, 'guessed from the plan centre (no registration)'),
        );
        if (f.assumed.some((a) => a.includes('guessed'))) f.verified = false;
      }
      const P = projectionMatrix(f.geometry);
      const overlays = overlayGeometry(P, paths, f.geometry.columns, f.geometry.rows);
      if (opts.out) {
        const rgba = drawOverlay(
          grayToRgba(f.gray, f.geometry.columns, f.geometry.rows),
          f.geometry.columns,
          f.geometry.rows,
          overlays,
          { unverified: !f.verified },
        );
        annotateFluoroscopy(rgba, f.geometry, {
          title: `Frame ${f.frameIndex + 1}/${f.numberOfFrames} ${anglesLabel(f.geometry.primaryDeg, f.geometry.secondaryDeg)}`,
          ...(f.verified ? {} : { footer: 'UNVERIFIED GEOMETRY' }),
        });
        await writePng(String(opts.out), rgba, f.geometry.columns, f.geometry.rows);
      }
      const result = {
        schemaVersion: 1,
        carm: system.id,
        /** 1-based, as DICOM and the browser number frames. */
        frame: f.frameIndex + 1,
        numberOfFrames: f.numberOfFrames,
        geometry: f.geometry,
        projectionMatrix: mat34ToRows(P),
        assumed: f.assumed,
        verified: f.verified,
        paths: overlays.map(overlayJson),
      };
      if (opts.json) console.log(JSON.stringify(result, null, 2));
      else {
        const join1 = (p: readonly number[]) => p.map((x) => x.toFixed(1)).join(', ');
        console.log(
          `${framePath}: frame ${f.frameIndex + 1} of ${f.numberOfFrames}, ` +
            `${f.geometry.primaryDeg} / ${f.geometry.secondaryDeg} deg`,
        );
        if (!f.verified) console.log(`  UNVERIFIED GEOMETRY: assumed ${f.assumed.join('; ')}`);
        for (const o of overlays)
          console.log(`  ${o.name}: entry (${join1(o.entryPx)}) px, target (${join1(o.targetPx)}) px`);
        if (opts.out) console.log(`  image written to ${String(opts.out)}`);
      }
    });
}
