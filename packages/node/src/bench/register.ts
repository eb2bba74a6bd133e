/**
 * Registration benchmarks (issue 17), truth from the benchmark itself: the fixed image is moved by a
 * known rigid motion (core's rigidMotion: axis and angle, Rodrigues), resampled with noise, and the target
 * registration error (TRE, core's meanTre, the same code for Corridor and elastix) is the mean distance
 * over the sacrum's voxel centres (TotalSegmentator labels 25 and 26) between where the estimate and the
 * motion put each point. Debian's elastix (bench/setup-elastix.sh, bench/elastix.ts) runs its usual rigid
 * set-up on the same pairs in the same run.
 * - the 3 mm real CT moved by 8 degrees and 15 mm: time (median of 3) and TRE, Corridor and elastix
 *   (goal: Corridor at least as accurate and at least twice as fast);
 * - a CBCT-like copy of it (cylindrical field of view of 110 mm radius and 160 mm length written as
 *   -1024, HU x 0.85 + 120, 60 HU cupping, 30 HU noise) moved by 9 degrees and 20 mm: Corridor without
 *   a mask (the field of view found from the fill value alone), elastix without a mask and with a mask
 *   of the field of view (the CBCT-like image then as elastix's fixed image, -fMask);
 * - the 1 mm Visible Human pelvis CT (452 x 404 x 150) against a simulated C-arm CT (core's simulateCbct
 *   on worker threads: 250 views, quantum noise; then +100 HU) of it moved by 9
 *   degrees and 20 mm, scatter 0 and 0.01 (the latter also on the raw intensities): one run each (wall
 *   and CPU; goal < 5 s; the simulation not counted), TRE over a 5 mm
 *   lattice of points within 40 mm of S1 (246, 284, 975 LPS mm; that CT has no labels);
 * - a full-size CBCT grid (512 x 512 x 400 at 0.5 x 0.5 x 0.375 mm, Int16, about S1): that CT resampled
 *   onto it as the fixed image, and a CBCT-like moved copy (fill -3024 outside 125 mm) as the moving one:
 *   time, TRE on the same lattice, and the growth of the process's resident memory during the run.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  createVolume,
  indexToPatientFrom,
  labelPoints,
  mat4Multiply,
  mat4TransformPoint,
  meanPoint,
  meanTre,
  movedCopy,
  readNifti,
  registerRigid,
  type RigidRegistrationOptions,
  resample,
  rigidMotion,
  type Mat4,
} from '@corridor/core';
import { timeMedian, type BenchRow } from './types.js';
import { elastixAvailable, runElastix, type ElastixRun } from './elastix.js';
import { simulateCbctParallel } from '../recon/cbct.js';
import { PELVIS_CBCT_OPTIONS } from './recon.js';
import { sharedDataDir } from '../io/shared-data.js';

/**
 * The simulated C-arm CT's scatter (recon/README.md: f x (1 - transmission), blurred, added to the
 * intensity): 0, `corridor cbct`'s default, and 0.01 (the recon bench's, scatter-to-primary about 0.5-5
 * behind the pelvis), the latter also on the raw intensities (no local normalisation); and the
 * Hounsfield offset.
 */
const CBCT_SCATTER = [0, 0.01];
const CBCT_HU_OFFSET = 100;

/** Where the moving scanner saw the fixed point p: motion^-1 (p), R orthonormal. */
function seenAt(m: Mat4, p: readonly number[]): [number, number, number] {
  const d = [p[0] - m[3], p[1] - m[7], p[2] - m[11]];
  return [0, 1, 2].map((q) => m[q] * d[0] + m[4 + q] * d[1] + m[8 + q] * d[2]) as [number, number, number];
}

/** CPU time (user + system, ms) of one call: unlike wall time, not inflated by other processes' load. */
function cpuMs(fn: () => unknown): number {
  const a = process.cpuUsage();
  fn();
  const b = process.cpuUsage(a);
  return (b.user + b.system) / 1000;
}

/** elastix on a pair, median of `runs` (after a warm-up), or why it could not run. */
function elastixMedian(runs: number, run: () => ElastixRun): ElastixRun | string {
  if (!elastixAvailable()) return 'elastix not installed (bench/setup-elastix.sh)';
  try {
    const all: ElastixRun[] = [];
    for (let r = 0; r <= runs; r++) all.push(run());
    const timed = all.slice(1).sort((a, b) => a.ms - b.ms);
    return timed[Math.floor(timed.length / 2)];
  } catch (e) {
    return e instanceof Error ? e.message.slice(0, 300) : String(e);
  }
}

function cpuNote(e: ElastixRun): string {
  return e.cpuMs === undefined ? '' : `; CPU ${e.cpuMs.toFixed(0)} ms`;
}

export async function benchRegister(): Promise<BenchRow[]> {
  const dir = path.join(sharedDataDir(), 'abdomen-pelvis-ct');
  const ctFile = path.join(dir, 'ct.nii.gz');
  const fixed = readNifti(new Uint8Array(await readFile(ctFile)), ctFile).volume;
  const labels = readNifti(new Uint8Array(await readFile(path.join(dir, 'labels.nii.gz'))), 'labels').volume;
  const sacrum = labelPoints(labels, [25, 26]);
  const c = meanPoint(sacrum);
  const rows: BenchRow[] = [];
  const elastixSetup =
    'elastix 5.0.1 (Debian), EulerTransform, Mattes MI, 4 resolutions, ASGD, 2048 samples x 250 iterations';

  const m1 = rigidMotion([0.4, 0.3, -0.87], 8, [9, -10, 6.7], c); // |t| = 15.0 mm
  const mov1 = movedCopy(fixed, m1, 20, 41);
  const r1 = await timeMedian(3, () => registerRigid(fixed, mov1));
  const e1 = meanTre(sacrum, m1, r1.result.movingToFixed.flat());
  const cpu1 = cpuMs(() => registerRigid(fixed, mov1));
  const x1 = elastixMedian(3, () => runElastix(fixed, mov1));
  rows.push({
    name: 'real CT 3 mm, 8 deg + 15 mm, MI: time',
    value: r1.ms,
    unit: 'ms',
    notes:
      `median of 3, wall; CPU ${cpu1.toFixed(0)} ms (one thread); ${fixed.dims.join('x')} voxels; ` +
      `verdict ${r1.result.verdict.status}, ${r1.result.iterations} iterations; goal: half of elastix's time or less`,
  });
  rows.push({
    name: 'real CT 3 mm, 8 deg + 15 mm, MI: TRE over sacrum',
    value: e1,
    unit: 'mm',
    notes: `mean over ${sacrum.length / 3} voxel centres of labels 25, 26; goal: at most elastix's TRE`,
  });
  if (typeof x1 === 'string') {
    rows.push({ name: 'real CT 3 mm, 8 deg + 15 mm, elastix: time', value: NaN, unit: 'ms', notes: x1 });
  } else {
    const ex1 = meanTre(sacrum, m1, x1.movingToFixed);
    rows.push({
      name: 'real CT 3 mm, 8 deg + 15 mm, elastix: time',
      value: x1.ms,
      unit: 'ms',
      notes: `median of 3, wall${cpuNote(x1)}; ${elastixSetup}; the same pair in the same run`,
    });
    rows.push({
      name: 'real CT 3 mm, 8 deg + 15 mm, elastix: TRE over sacrum',
      value: ex1,
      unit: 'mm',
      notes: 'the same points and code (meanTre) as Corridor',
    });
    rows.push({
      name: 'real CT 3 mm, 8 deg + 15 mm: elastix time / Corridor time',
      value: x1.ms / r1.ms,
      unit: 'x',
      notes: `goal >= 2, and Corridor's TRE <= elastix's: ${e1 <= ex1 ? 'met' : 'not met'} (${e1.toFixed(2)} vs ${ex1.toFixed(2)} mm)`,
    });
  }

  const m2 = rigidMotion([-0.5, 0.7, 0.5], 9, [12, -11, 11.5], c); // |t| = 20.0 mm
  const mov2 = movedCopy(fixed, m2, 30, 42);
  // The field of view about the sacrum where the moving scanner saw it.
  const cm = seenAt(m2, c);
  const fov2 = new Uint8Array(mov2.data.length);
  {
    const [nx, ny, nz] = mov2.dims;
    const p = [0, 0, 0];
    for (let k = 0, o = 0; k < nz; k++)
      for (let j = 0; j < ny; j++)
        for (let i = 0; i < nx; i++, o++) {
          mat4TransformPoint(p, mov2.indexToPatient, [i, j, k]);
          const r = Math.hypot(p[0] - cm[0], p[1] - cm[1]);
          const inside = r <= 110 && Math.abs(p[2] - cm[2]) <= 80;
          fov2[o] = inside ? 1 : 0;
          mov2.data[o] = inside ? mov2.data[o] * 0.85 + 120 + 60 * (r / 110) ** 2 : -1024;
        }
  }
  const r2 = await timeMedian(3, () => registerRigid(fixed, mov2));
  const cpu2 = cpuMs(() => registerRigid(fixed, mov2));
  rows.push({
    name: 'CBCT-like copy of the 3 mm CT, 9 deg + 20 mm, MI, no mask: time',
    value: r2.ms,
    unit: 'ms',
    notes: `median of 3, wall; CPU ${cpu2.toFixed(0)} ms; field of view from the fill value (${String(r2.result.movingFill)}); verdict ${r2.result.verdict.status}, overlap ${(100 * r2.result.overlapFraction).toFixed(0)}%`,
  });
  rows.push({
    name: 'CBCT-like copy of the 3 mm CT, 9 deg + 20 mm, MI, no mask: TRE over sacrum',
    value: meanTre(sacrum, m2, r2.result.movingToFixed.flat()),
    unit: 'mm',
    notes: 'Corridor finds the field of view itself',
  });
  const fovMask = createVolume({ data: fov2, dims: mov2.dims, indexToPatient: mov2.indexToPatient });
  // With the field of view as a mask: elastix stops when a moving mask is this much smaller than the
  // fixed image ("Too many samples map outside moving image buffer"), so the CBCT-like image is elastix's
  // fixed image with -fMask, and the transform it finds (CBCT-like to CT) is our movingToFixed.
  const elastixCbct = [
    ['no mask', () => runElastix(fixed, mov2), (x: ElastixRun) => x.movingToFixed],
    [
      'field-of-view mask (the CBCT-like image as fixed, -fMask)',
      () => runElastix(mov2, fixed, { fixedMask: fovMask }),
      (x: ElastixRun) => x.fixedToMoving,
    ],
  ] as const;
  for (const [what, run, movingToFixed] of elastixCbct) {
    const x = elastixMedian(1, run);
    const name = `CBCT-like copy of the 3 mm CT, 9 deg + 20 mm, elastix, ${what}`;
    if (typeof x === 'string') {
      rows.push({ name: `${name}: TRE over sacrum`, value: NaN, unit: 'mm', notes: x });
      continue;
    }
    rows.push({
      name: `${name}: TRE over sacrum`,
      value: meanTre(sacrum, m2, movingToFixed(x)),
      unit: 'mm',
      notes: `one run after a warm-up: ${x.ms.toFixed(0)} ms wall${cpuNote(x)}; ${elastixSetup}`,
    });
  }

  const vhfFile = path.join(sharedDataDir(), 'vhf-pelvis-ct', 'ct.nii.gz');
  const vhf = readNifti(new Uint8Array(await readFile(vhfFile)), vhfFile).volume;
  const s1 = [246, 284, 975];
  const m3 = rigidMotion([-0.5, 0.7, 0.5], 9, [12, -11, 11.5], [246, 284, 975]);
  const c3 = seenAt(m3, s1);
  const lattice: number[] = [];
  for (let x = -40; x <= 40; x += 5)
    for (let y = -40; y <= 40; y += 5) for (let z = -40; z <= 40; z += 5) lattice.push(s1[0] + x, s1[1] + y, s1[2] + z);
  const latticePts = Float64Array.from(lattice);
  // The simulated C-arm CT of the moved patient, about S1 as the moving C-arm saw it (not timed), with the
  // Hounsfield offset of an uncalibrated C-arm CT inside its field of view; scatter as behind an
  // anti-scatter grid (recon bench) and nearly none (the phantom test's level).
  for (const scatter of CBCT_SCATTER) {
    const sim = await simulateCbctParallel(movedCopy(vhf, m3, 0, 43), {
      ...PELVIS_CBCT_OPTIONS,
      isocenter: c3,
      scatterFraction: scatter,
      seed: 43,
    });
    const cbct = sim.reconstruction.volume;
    for (let o = 0; o < cbct.data.length; o++) if (sim.reconstruction.mask[o]) cbct.data[o] += CBCT_HU_OFFSET;
    // The default (local normalisation for a C-arm CT) and, at strong scatter, the raw intensities.
    const variants: [string, RigidRegistrationOptions][] = [['', {}]];
    if (scatter > 0.001) variants.push([', raw intensities (local mean 0)', { localMeanSigmaMm: 0 }]);
    for (const [label, opts] of variants) {
      const a = process.cpuUsage();
      const w = performance.now();
      const r3 = registerRigid(vhf, cbct, opts);
      const wall3 = performance.now() - w;
      const b = process.cpuUsage(a);
      const name = `VHF pelvis CT 1 mm vs its simulated C-arm CT (scatter ${scatter}), 9 deg + 20 mm, MI${label}`;
      const fov = r3.movingFov
        ? `cone ends cut: ${(r3.movingFov.keepMm[1] - r3.movingFov.keepMm[0]).toFixed(0)} of ${(r3.movingFov.extentMm[1] - r3.movingFov.extentMm[0]).toFixed(0)} mm kept`
        : 'no cone-beam field of view found';
      rows.push({
        name: `${name}: time`,
        value: wall3,
        unit: 'ms',
        notes:
          `one run, wall; CPU ${((b.user + b.system) / 1000).toFixed(0)} ms (one thread); ${vhf.dims.join('x')} voxels against ` +
          `${cbct.dims.join('x')} at 1 mm (250 views, +${CBCT_HU_OFFSET} HU; simulation ` +
          `${(sim.timings.totalMs / 1000).toFixed(1)} s, not counted); fill ${String(r3.movingFill)}; ${fov}; ` +
          `verdict ${r3.verdict.status}; goal < 5000 ms`,
      });
      rows.push({
        name: `${name}: TRE near S1`,
        value: meanTre(latticePts, m3, r3.movingToFixed.flat()),
        unit: 'mm',
        notes: `mean over ${lattice.length / 3} lattice points within 40 mm of S1 (no labels on that CT); verdict ${r3.verdict.status}`,
      });
    }
  }

  const dims = [512, 512, 400] as const;
  const g = indexToPatientFrom([s1[0] - 128, s1[1] - 128, s1[2] - 75], [0.5, 0.5, 0.375]);
  const big = resample(vhf, { dims, indexToPatient: g }, { type: 'int16', outside: -1024 });
  const grid4 = { dims, indexToPatient: mat4Multiply(new Float64Array(16), m3, g) };
  // The moved anatomy on the CBCT's own grid g (resample returns grid4's geometry: put it back on g).
  const bigMoving = createVolume({
    data: resample(vhf, grid4, { type: 'int16', outside: -1024 }).data,
    dims,
    indexToPatient: g,
  });
  {
    const d4 = bigMoving.data;
    const p = [0, 0, 0];
    for (let k = 0, o = 0; k < dims[2]; k++)
      for (let j = 0; j < dims[1]; j++)
        for (let i = 0; i < dims[0]; i++, o++) {
          mat4TransformPoint(p, g, [i, j, k]);
          // The moving scanner's field of view about S1 as it saw it (c3 = m3^-1 (S1)).
          const r = Math.hypot(p[0] - c3[0], p[1] - c3[1]);
          d4[o] = r > 125 ? -3024 : Math.round(d4[o] * 0.85 + 120);
        }
  }
  const rss0 = process.memoryUsage().rss;
  let rssPeak = rss0;
  const w4 = performance.now();
  const r4 = registerRigid(big, bigMoving, {
    onProgress: () => void (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)),
  });
  const wall4 = performance.now() - w4;
  rows.push({
    name: 'full-size CBCT grid 512x512x400 (Int16), CT vs CBCT-like, 9 deg + 20 mm: time',
    value: wall4,
    unit: 'ms',
    notes: `one run, wall; verdict ${r4.verdict.status}; memory growth ${((rssPeak - rss0) / 2 ** 20).toFixed(0)} MiB RSS at progress points over ${(rss0 / 2 ** 20).toFixed(0)} MiB held (inputs 400 MiB)`,
  });
  rows.push({
    name: 'full-size CBCT grid 512x512x400 (Int16), CT vs CBCT-like, 9 deg + 20 mm: TRE near S1',
    value: meanTre(latticePts, m3, r4.movingToFixed.flat()),
    unit: 'mm',
    notes: 'the same lattice within 40 mm of S1',
  });
  return rows;
}
