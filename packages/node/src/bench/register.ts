/**
 * Registration benchmarks (issue 17), truth from the benchmark itself: the fixed image is moved by a
 * known rigid motion (axis and angle, Rodrigues), resampled with noise, and the target registration
 * error (TRE) is the mean distance over the sacrum's voxel centres (TotalSegmentator labels 25 and 26)
 * between where the estimate and the motion put each point.
 * - the 3 mm real CT moved by 8 degrees and 15 mm: time (median of 3) and TRE (goal: elastix-like
 *   0.3 mm in ~1 s on 2 cores; elastix itself is not run here yet);
 * - a CBCT-like copy of it (cylindrical field of view of 110 mm radius and 160 mm length written as
 *   -1024, HU x 0.85 + 120, 60 HU cupping, 30 HU noise) moved by 9 degrees and 20 mm, no mask: the
 *   field of view is found from the fill value alone;
 * - the 1 mm Visible Human pelvis CT (452 x 404 x 150) against a CBCT-like copy (radius 125 mm), 9
 *   degrees and 20 mm: one run (wall and CPU; goal < 5 s), TRE over a 5 mm lattice of points within
 *   40 mm of S1 (246, 284, 975 LPS mm; that CT has no labels);
 * - a full-size CBCT grid (512 x 512 x 400 at 0.5 x 0.5 x 0.375 mm, Int16, about S1): that CT resampled
 *   onto it as the fixed image, and a CBCT-like moved copy (fill -3024 outside 125 mm) as the moving one:
 *   time, TRE on the same lattice, and the growth of the process's resident memory during the run.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  createVolume,
  indexToPatientFrom,
  mat4Multiply,
  mat4TransformPoint,
  readNifti,
  registerRigid,
  resample,
  Rng,
  type Volume,
} from '@corridor/core';
import { timeMedian, type BenchRow } from './types.js';
import { sharedDataDir } from '../io/shared-data.js';

/** movingToFixed: rotation angleDeg about `axis` through `c`, then translation t (Rodrigues). */
function motion(axis: number[], angleDeg: number, t: number[], c: number[]): Float64Array {
  const n = Math.hypot(axis[0], axis[1], axis[2]);
  const [x, y, z] = axis.map((v) => v / n);
  const a = (angleDeg * Math.PI) / 180;
  const co = Math.cos(a),
    s = Math.sin(a),
    C = 1 - co;
  const r = [
    co + x * x * C,
    x * y * C - z * s,
    x * z * C + y * s,
    y * x * C + z * s,
    co + y * y * C,
    y * z * C - x * s,
    z * x * C - y * s,
    z * y * C + x * s,
    co + z * z * C,
  ];
  const m = new Float64Array(16);
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) m[i * 4 + j] = r[i * 3 + j];
    m[i * 4 + 3] = c[i] + t[i] - (r[i * 3] * c[0] + r[i * 3 + 1] * c[1] + r[i * 3 + 2] * c[2]);
  }
  m[15] = 1;
  return m;
}

function moved(fixed: Volume, m2f: Float64Array, noise: number, seed: number): Volume<Float32Array> {
  const grid = { dims: fixed.dims, indexToPatient: mat4Multiply(new Float64Array(16), m2f, fixed.indexToPatient) };
  const d = resample(fixed, grid, { type: 'float32', outside: -1000 }).data as Float32Array;
  const rng = new Rng(seed);
  for (let o = 0; o < d.length; o++) {
    const u = rng.next() || 1e-12;
    d[o] += noise * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
  }
  return createVolume({ data: d, dims: fixed.dims, indexToPatient: fixed.indexToPatient });
}

function points(labels: Volume, ids: number[]): number[][] {
  const out: number[][] = [];
  const [nx, ny, nz] = labels.dims;
  for (let k = 0, o = 0; k < nz; k++)
    for (let j = 0; j < ny; j++)
      for (let i = 0; i < nx; i++, o++)
        if (ids.includes(labels.data[o]))
          out.push(Array.from(mat4TransformPoint([0, 0, 0], labels.indexToPatient, [i, j, k])));
  return out;
}

/** Mean over fixed points p of |est(truth^-1(p)) - p|; truth^-1 = R^T (p - t). */
function tre(pts: number[][], m: Float64Array, est: number[][]): number {
  const e = est.flat();
  let sum = 0;
  for (const p of pts) {
    const d = [p[0] - m[3], p[1] - m[7], p[2] - m[11]];
    const y = [0, 1, 2].map((c) => m[c] * d[0] + m[4 + c] * d[1] + m[8 + c] * d[2]);
    const q = [0, 1, 2].map((r) => e[r * 4] * y[0] + e[r * 4 + 1] * y[1] + e[r * 4 + 2] * y[2] + e[r * 4 + 3]);
    sum += Math.hypot(q[0] - p[0], q[1] - p[1], q[2] - p[2]);
  }
  return sum / pts.length;
}

/** CPU time (user + system, ms) of one call: unlike wall time, not inflated by other processes' load. */
function cpuMs(fn: () => unknown): number {
  const a = process.cpuUsage();
  fn();
  const b = process.cpuUsage(a);
  return (b.user + b.system) / 1000;
}

export async function benchRegister(): Promise<BenchRow[]> {
  const dir = path.join(sharedDataDir(), 'abdomen-pelvis-ct');
  const ctFile = path.join(dir, 'ct.nii.gz');
  const fixed = readNifti(new Uint8Array(await readFile(ctFile)), ctFile).volume;
  const labels = readNifti(new Uint8Array(await readFile(path.join(dir, 'labels.nii.gz'))), 'labels').volume;
  const sacrum = points(labels, [25, 26]);
  const c = [0, 1, 2].map((a) => sacrum.reduce((s, p) => s + p[a], 0) / sacrum.length);
  const rows: BenchRow[] = [];

  const m1 = motion([0.4, 0.3, -0.87], 8, [9, -10, 6.7], c); // |t| = 15.0 mm
  const mov1 = moved(fixed, m1, 20, 41);
  const r1 = await timeMedian(3, () => registerRigid(fixed, mov1));
  const e1 = tre(sacrum, m1, r1.result.movingToFixed);
  const cpu1 = cpuMs(() => registerRigid(fixed, mov1));
  rows.push({
    name: 'real CT 3 mm, 8 deg + 15 mm, MI: time',
    value: r1.ms,
    unit: 'ms',
    notes:
      `median of 3, wall; CPU ${cpu1.toFixed(0)} ms (one thread); ${fixed.dims.join('x')} voxels; ` +
      `verdict ${r1.result.verdict.status}, ${r1.result.iterations} iterations; goal ~1000 ms (elastix 2.2 s)`,
  });
  rows.push({
    name: 'real CT 3 mm, 8 deg + 15 mm, MI: TRE over sacrum',
    value: e1,
    unit: 'mm',
    notes: `mean over ${sacrum.length} voxel centres of labels 25, 26; goal <= 0.3 mm (elastix 0.30)`,
  });

  const m2 = motion([-0.5, 0.7, 0.5], 9, [12, -11, 11.5], c); // |t| = 20.0 mm
  const mov2 = moved(fixed, m2, 30, 42);
  // The field of view about the sacrum where the moving scanner saw it: m2^-1 (c).
  const d = [c[0] - m2[3], c[1] - m2[7], c[2] - m2[11]];
  const cm = [0, 1, 2].map((q) => m2[q] * d[0] + m2[4 + q] * d[1] + m2[8 + q] * d[2]);
  const [nx, ny, nz] = mov2.dims;
  for (let k = 0, o = 0; k < nz; k++)
    for (let j = 0; j < ny; j++)
      for (let i = 0; i < nx; i++, o++) {
        const p = mat4TransformPoint([0, 0, 0], mov2.indexToPatient, [i, j, k]);
        const r = Math.hypot(p[0] - cm[0], p[1] - cm[1]);
        mov2.data[o] = r > 110 || Math.abs(p[2] - cm[2]) > 80 ? -1024 : mov2.data[o] * 0.85 + 120 + 60 * (r / 110) ** 2;
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
    value: tre(sacrum, m2, r2.result.movingToFixed),
    unit: 'mm',
    notes: 'elastix standard set-up: 42 mm off; with a field-of-view mask 0.14 mm (issue 17)',
  });

  const vhfFile = path.join(sharedDataDir(), 'vhf-pelvis-ct', 'ct.nii.gz');
  const vhf = readNifti(new Uint8Array(await readFile(vhfFile)), vhfFile).volume;
  const s1 = [246, 284, 975];
  const m3 = motion([-0.5, 0.7, 0.5], 9, [12, -11, 11.5], s1);
  const mov3 = moved(vhf, m3, 30, 43);
  const e3 = [s1[0] - m3[3], s1[1] - m3[7], s1[2] - m3[11]];
  const c3 = [0, 1, 2].map((q) => m3[q] * e3[0] + m3[4 + q] * e3[1] + m3[8 + q] * e3[2]);
  {
    const [nx, ny, nz] = mov3.dims;
    for (let k = 0, o = 0; k < nz; k++)
      for (let j = 0; j < ny; j++)
        for (let i = 0; i < nx; i++, o++) {
          const p = mat4TransformPoint([0, 0, 0], mov3.indexToPatient, [i, j, k]);
          const r = Math.hypot(p[0] - c3[0], p[1] - c3[1]);
          mov3.data[o] = r > 125 ? -1024 : mov3.data[o] * 0.85 + 120 + 60 * (r / 125) ** 2;
        }
  }
  const lattice: number[][] = [];
  for (let x = -40; x <= 40; x += 5)
    for (let y = -40; y <= 40; y += 5)
      for (let z = -40; z <= 40; z += 5) lattice.push([s1[0] + x, s1[1] + y, s1[2] + z]);
  const a = process.cpuUsage();
  const w = performance.now();
  const r3 = registerRigid(vhf, mov3);
  const wall3 = performance.now() - w;
  const b = process.cpuUsage(a);
  rows.push({
    name: 'VHF pelvis CT 1 mm vs CBCT-like copy, 9 deg + 20 mm, MI: time',
    value: wall3,
    unit: 'ms',
    notes: `one run, wall; CPU ${((b.user + b.system) / 1000).toFixed(0)} ms; ${vhf.dims.join('x')} voxels; verdict ${r3.verdict.status}; goal < 5000 ms`,
  });
  rows.push({
    name: 'VHF pelvis CT 1 mm vs CBCT-like copy, 9 deg + 20 mm, MI: TRE near S1',
    value: tre(lattice, m3, r3.movingToFixed),
    unit: 'mm',
    notes: `mean over ${lattice.length} lattice points within 40 mm of S1 (no labels on that CT)`,
  });

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
    value: tre(lattice, m3, r4.movingToFixed),
    unit: 'mm',
    notes: 'the same lattice within 40 mm of S1',
  });
  return rows;
}
