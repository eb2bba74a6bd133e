/**
 * DRR benchmark: 512 x 512 images through a CBCT-sized volume (512 x 430 x 480 voxels at 0.7 mm, from
 * the shared 1 mm pelvis CT resampled, mirrored at its ends in z to reach 336 mm), rendered by the worker
 * pool, compared with Debian's `plastimatch drr` (exact algorithm) on the same volume and geometry when
 * it is on PATH (bench/setup-plastimatch.sh installs it). Loading is excluded from both timings:
 * plastimatch renders 1 and then 1 + K identical views in one process each, and the difference over K
 * is its time per image.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import {
  addDrrTransposedCopy,
  createVolume,
  indexToPatientFrom,
  readNifti,
  type CarmGeometry,
  type Point3,
  type Volume,
} from '@corridor/core';
import { DrrPool, prepareSharedDrrVolume } from '../drr/pool.js';
import { sharedDataDir } from '../io/shared-data.js';
import { timeMedian, type BenchRow } from './types.js';

const DIMS: [number, number, number] = [512, 430, 480];
const SPACING = 0.7;

/** The shared CT resampled (trilinear, separable weights) to the CBCT-sized grid, axis-aligned LPS. */
export function benchVolume(): Volume<Int16Array> {
  const file = path.join(sharedDataDir(), 'vhf-pelvis-ct/ct.nii.gz');
  const src = readNifti(readFileSync(file), file).volume;
  const [sx, sy, sz] = src.dims;
  const d = src.data;
  // Centre of the source grid in LPS.
  const m = src.indexToPatient;
  const c = [0, 1, 2].map(
    (r) => m[r * 4] * ((sx - 1) / 2) + m[r * 4 + 1] * ((sy - 1) / 2) + m[r * 4 + 2] * ((sz - 1) / 2) + m[r * 4 + 3],
  );
  const origin = [0, 1, 2].map((a) => c[a] - ((DIMS[a] - 1) / 2) * SPACING);
  const dst = indexToPatientFrom(origin, [SPACING, SPACING, SPACING]);
  const inv = src.patientToIndex;
  // Per-axis source coordinates (the grids are both axis-aligned, possibly flipped).
  const axisMap = (a: number, n: number, ns: number, mirror: boolean) => {
    const i0 = new Int32Array(n),
      w = new Float32Array(n);
    for (let t = 0; t < n; t++) {
      const p = [origin[0], origin[1], origin[2]];
      p[a] += t * SPACING;
      let f = inv[a * 4] * p[0] + inv[a * 4 + 1] * p[1] + inv[a * 4 + 2] * p[2] + inv[a * 4 + 3];
      if (mirror) {
        // Reflect into [0, ns - 1] so the 150 mm CT fills 336 mm with plausible anatomy.
        const L = 2 * (ns - 1);
        f = ((f % L) + L) % L;
        if (f > ns - 1) f = L - f;
      }
      const fi = Math.floor(f);
      if (fi < 0 || fi > ns - 1) {
        i0[t] = -1;
        continue;
      }
      i0[t] = Math.min(fi, ns - 2);
      w[t] = f - i0[t];
    }
    return { i0, w };
  };
  const X = axisMap(0, DIMS[0], sx, false),
    Y = axisMap(1, DIMS[1], sy, false),
    Z = axisMap(2, DIMS[2], sz, true);
  const out = new Int16Array(DIMS[0] * DIMS[1] * DIMS[2]).fill(-1000);
  let o = 0;
  for (let k = 0; k < DIMS[2]; k++) {
    const zk = Z.i0[k],
      wz = Z.w[k];
    for (let j = 0; j < DIMS[1]; j++) {
      const yj = Y.i0[j],
        wy = Y.w[j];
      for (let i = 0; i < DIMS[0]; i++, o++) {
        const xi = X.i0[i];
        if (xi < 0 || yj < 0 || zk < 0) continue;
        const wx = X.w[i];
        const b = xi + sx * (yj + sy * zk);
        const sxy = sx * sy;
        const c00 = d[b] + (d[b + 1] - d[b]) * wx;
        const c10 = d[b + sx] + (d[b + sx + 1] - d[b + sx]) * wx;
        const c01 = d[b + sxy] + (d[b + sxy + 1] - d[b + sxy]) * wx;
        const c11 = d[b + sxy + sx] + (d[b + sxy + sx + 1] - d[b + sxy + sx]) * wx;
        const c0 = c00 + (c10 - c00) * wy,
          c1 = c01 + (c11 - c01) * wy;
        out[o] = Math.round(c0 + (c1 - c0) * wz);
      }
    }
  }
  return createVolume({
    data: out,
    dims: DIMS,
    indexToPatient: dst,
    meta: { source: `${file} resampled to 512x430x480 at 0.7 mm` },
  });
}

function volumeCenter(v: Volume): Point3 {
  const m = v.indexToPatient;
  return [0, 1, 2].map(
    (r) =>
      m[r * 4] * ((v.dims[0] - 1) / 2) +
      m[r * 4 + 1] * ((v.dims[1] - 1) / 2) +
      m[r * 4 + 2] * ((v.dims[2] - 1) / 2) +
      m[r * 4 + 3],
  ) as Point3;
}

/** MetaImage (.mha) of an axis-aligned int16 volume, for plastimatch. */
function writeMha(file: string, v: Volume<Int16Array>) {
  const m = v.indexToPatient;
  const header = [
    'ObjectType = Image',
    'NDims = 3',
    'BinaryData = True',
    'BinaryDataByteOrderMSB = False',
    'CompressedData = False',
    `TransformMatrix = ${[0, 1, 2].flatMap((c) => [0, 1, 2].map((r) => m[r * 4 + c] / v.spacing[c])).join(' ')}`,
    `Offset = ${m[3]} ${m[7]} ${m[11]}`,
    'CenterOfRotation = 0 0 0',
    'AnatomicalOrientation = RAI',
    `ElementSpacing = ${v.spacing.join(' ')}`,
    `DimSize = ${v.dims.join(' ')}`,
    'ElementType = MET_SHORT',
    'ElementDataFile = LOCAL',
    '',
  ].join('\n');
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(h.length + v.data.byteLength);
  out.set(h);
  out.set(new Uint8Array(v.data.buffer, v.data.byteOffset, v.data.byteLength), h.length);
  writeFileSync(file, out);
}

function hasPlastimatch(): boolean {
  try {
    execFileSync('plastimatch', ['--version'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

/** Pearson correlation of two images. */
function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sa = 0,
    sb = 0;
  const n = a.length;
  for (let i = 0; i < n; i++) {
    sa += a[i];
    sb += b[i];
  }
  const ma = sa / n,
    mb = sb / n;
  let sab = 0,
    saa = 0,
    sbb = 0;
  for (let i = 0; i < n; i++) {
    const x = a[i] - ma,
      y = b[i] - mb;
    sab += x * y;
    saa += x * x;
    sbb += y * y;
  }
  return sab / Math.sqrt(saa * sbb);
}

export async function benchDrr(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const vol = benchVolume();
  const t0 = performance.now();
  const dv = prepareSharedDrrVolume(vol);
  const prepMs = performance.now() - t0;
  // The pool makes this copy on the first view swept along i (lateral); timed here on its own.
  const t1 = performance.now();
  const transposed = addDrrTransposedCopy(dv);
  const transposeMs = performance.now() - t1;
  const iso = volumeCenter(vol);
  const pool = DrrPool.create(dv);
  const size = 512,
    pitch = 0.8,
    sid = 1200,
    sod = 785;
  const geometry = (primaryDeg: number, secondaryDeg: number): CarmGeometry => ({
    sidMm: sid,
    sodMm: sod,
    columns: size,
    rows: size,
    columnSpacingMm: pitch,
    rowSpacingMm: pitch,
    primaryDeg,
    secondaryDeg,
    isocenter: iso,
  });
  const views: [string, number, number][] = [
    ['AP', 0, 0],
    // DICOM secondary: cranial +. An inlet tilts the detector toward the head, an outlet toward the feet.
    ['outlet (caudal 30)', 0, -30],
    ['inlet (cranial 35)', 0, 35],
    ['lateral (LAO 90)', 90, 0],
  ];
  const out = new Float32Array(size * size);
  const ours: Record<string, number> = {};
  try {
    rows.push({
      name: 'DRR volume preparation (HU to 16-bit attenuation, occupancy)',
      value: prepMs,
      unit: 'ms',
      notes: `512x430x480 at 0.7 mm (105.7 M voxels), once per volume`,
    });
    if (transposed)
      rows.push({
        name: 'DRR j-fastest copy for lateral views',
        value: transposeMs,
        unit: 'ms',
        notes: 'once per volume, made by the pool on the first view swept along i',
      });
    // The first image of a fresh pool includes compiling the kernel in each worker (the JIT tiers up over a
    // few images); reported on its own, and the per-view figures are of warm workers.
    const tFirst = performance.now();
    await pool.render(geometry(0, 0), out);
    rows.push({
      name: 'DRR 512x512, first image of a new pool (AP)',
      value: performance.now() - tFirst,
      unit: 'ms',
      notes: `${pool.threads} worker threads just started: includes their JIT compilation`,
    });
    for (let i = 0; i < 3; i++) await pool.render(geometry(0, 0), out);
    for (const [name, a, b] of views) {
      await pool.render(geometry(a, b), out);
      const { ms } = await timeMedian(7, () => pool.render(geometry(a, b), out));
      ours[name] = ms;
      rows.push({
        name: `DRR 512x512, ${name}`,
        value: ms,
        unit: 'ms',
        notes:
          `median of 7 after 2 of warm-up, ${pool.threads} worker threads, Joseph's method by plane sweep` +
          `${dv.simd ? ' (WebAssembly SIMD row loops)' : ' (JavaScript row loops: no WebAssembly SIMD here)'}; ` +
          'goal < 200 ms',
      });
    }
  } finally {
    await pool.close();
  }
  if (!hasPlastimatch()) {
    rows.push({
      name: 'plastimatch drr comparison',
      value: NaN,
      unit: '',
      notes: 'plastimatch not on PATH: run bench/setup-plastimatch.sh',
    });
    return rows;
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'corridor-bench-drr-'));
  try {
    const mha = path.join(dir, 'vol.mha');
    writeMha(mha, vol);
    // An explicit --nrm would disable -a (several views in one process), so the AP view is given as a
    // gantry angle: Debian's plastimatch 1.9.4 reads -y and -N in radians (-y 90 gives a panel normal of
    // (cos 90 rad, sin 90 rad)); 3 pi / 2 gives the normal (0, -1, 0) that --nrm "0 1 0" prints.
    const g = geometry(0, 0);
    const args = (n: number, prefix: string) => [
      'drr',
      '-i',
      'exact',
      '-t',
      'raw',
      '-r',
      `${size} ${size}`,
      '-z',
      `${size * pitch} ${size * pitch}`,
      '--sad',
      String(sod),
      '--sid',
      String(sid),
      '-o',
      iso.join(' '),
      '-y',
      String((3 * Math.PI) / 2),
      '-a',
      String(n),
      '-N',
      '0.00001',
      '-I',
      mha,
      '-O',
      path.join(dir, prefix),
    ];
    const run = (n: number, prefix: string) => {
      const t = performance.now();
      execFileSync('plastimatch', args(n, prefix), { stdio: 'pipe' });
      return performance.now() - t;
    };
    const K = 4;
    const t1 = Math.min(run(1, 'one'), run(1, 'one'));
    const tk = run(1 + K, 'many');
    const perImage = (tk - t1) / K;
    rows.push({
      name: 'plastimatch drr 512x512 AP (exact)',
      value: perImage,
      unit: 'ms',
      notes:
        `(time of ${1 + K} views 1e-5 rad apart - time of 1) / ${K}, loading excluded; ` +
        `same volume and geometry, ${os.cpus().length} cores`,
    });
    rows.push({ name: 'speed-up over plastimatch, AP', value: perImage / ours['AP'], unit: 'x', notes: 'goal >= 3' });
    // Agreement: plastimatch's raw output (float32 line integrals, its own HU conversion) vs ours.
    const raw = readFileSync(path.join(dir, 'one0000.raw'));
    const theirs = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + size * size * 4));
    const pool2 = DrrPool.create(dv);
    let mine: Float32Array;
    try {
      mine = await pool2.render(g);
    } finally {
      await pool2.close();
    }
    // Orientation of plastimatch's rows/columns relative to ours is found, not assumed: best of 4 flips.
    let best = { r: -2, flip: '' };
    for (const [fc, fr] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ] as const) {
      const t = new Float32Array(size * size);
      for (let r = 0; r < size; r++)
        for (let c = 0; c < size; c++)
          t[r * size + c] = theirs[(fr ? size - 1 - r : r) * size + (fc ? size - 1 - c : c)];
      const rr = correlation(mine, t);
      if (rr > best.r)
        best = { r: rr, flip: `${fc ? 'columns flipped' : 'columns as is'}, ${fr ? 'rows flipped' : 'rows as is'}` };
    }
    rows.push({
      name: 'agreement with plastimatch, AP (Pearson r)',
      value: best.r,
      unit: '',
      notes: `line integrals, ours (kV-weighted attenuation) vs plastimatch's HU conversion; ${best.flip}`,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
