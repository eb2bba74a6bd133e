/**
 * Our FDK against Debian's `plastimatch fdk` (bench/setup-plastimatch.sh installs it) on the very same
 * projections and grid: the C-arm CT benchmark's run, written in plastimatch's format (recon/plastimatch.ts,
 * cosine and Parker weights applied, which plastimatch's fdk lacks). plastimatch's time is its process's
 * wall time (reading the files, ramp filter, backprojection on its OpenMP threads, writing the .mha);
 * ours is the run's filtering plus backprojection on worker threads. Agreement: Pearson r inside the FOV.
 * The pelvis is wider than the field, so the rows are truncated, and on rows as acquired the agreement
 * measures truncation handling, not reconstruction (plastimatch's ramp is circular over the detector's
 * width: r 0.45 against ours). plastimatch therefore also reconstructs the rows padded as ours pads them
 * (a wider detector, the same geometry): r 0.982 on the benchmark's run. Both are reported; the speed-up
 * is against plastimatch's faster run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { CbctRun } from '@corridor/core';
import { findPlastimatch, runPlastimatchFdk, writePlastimatchProjections } from '../recon/plastimatch.js';
import type { BenchRow } from './types.js';

export async function benchFdkVsPlastimatch(run: CbctRun, oursFdkMs: number): Promise<BenchRow[]> {
  const exe = findPlastimatch();
  if (!exe)
    return [
      {
        name: 'plastimatch fdk comparison',
        value: NaN,
        unit: '',
        notes: 'plastimatch not on PATH: run bench/setup-plastimatch.sh',
      },
    ];
  const dir = mkdtempSync(path.join(tmpdir(), 'corridor-bench-fdk-'));
  try {
    const mask = run.reconstruction.mask;
    const ours = run.reconstruction.volume.data;
    // Twice: the projections as acquired (the detector's width), and with each row widened the way our
    // FDK pads it before its ramp (recon/plastimatch.ts `padding`), which is the same reconstruction
    // problem for both programs when the patient is wider than the field.
    const asAcquired = writePlastimatchProjections(path.join(dir, 'proj'), run.projections, run.scan);
    const pmA = await runPlastimatchFdk(asAcquired, run.grid, path.join(dir, 'fdk.mha'), exe);
    rmSync(asAcquired.dir, { recursive: true, force: true });
    const padded = writePlastimatchProjections(path.join(dir, 'padded'), run.projections, run.scan, {
      padding: 'continue',
    });
    const pmP = await runPlastimatchFdk(padded, run.grid, path.join(dir, 'fdk-padded.mha'), exe);
    const rA = pearson(ours, pmA.volume.data, mask),
      rP = pearson(ours, pmP.volume.data, mask);
    const fastest = Math.min(pmA.wallMs, pmP.wallMs);
    const what = `${asAcquired.views} views, ${run.grid.dims.join('x')} grid`;
    return [
      {
        name: 'plastimatch fdk, same projections',
        value: pmA.wallMs / 1000,
        unit: 's',
        notes: `${what}, ${asAcquired.columns}x${asAcquired.rows} as acquired; process wall time (files, ramp, backprojection, .mha)`,
      },
      {
        name: 'plastimatch fdk, same projections, rows padded as ours',
        value: pmP.wallMs / 1000,
        unit: 's',
        notes: `${padded.columns}x${padded.rows}: each row continued beyond its edges as our FDK pads it (tapered)`,
      },
      {
        name: 'FDK speed-up over plastimatch fdk',
        value: fastest / oursFdkMs,
        unit: 'x',
        notes:
          `against plastimatch's faster run (${(fastest / 1000).toFixed(2)} s); ours: filtering + backprojection on ` +
          `worker threads (${(oursFdkMs / 1000).toFixed(2)} s); goal >= 3`,
      },
      {
        name: 'agreement with plastimatch fdk, rows padded as ours (Pearson r)',
        value: rP.r,
        unit: '',
        notes: `all ${rP.n} voxels inside the FOV (the pelvis is truncated laterally); goal >= 0.98`,
      },
      {
        name: 'agreement with plastimatch fdk, rows as acquired (Pearson r)',
        value: rA.r,
        unit: '',
        notes:
          'the same voxels; plastimatch filters the truncated rows circularly over the detector width (each ' +
          'edge wraps onto the other), ours continues them: the truncation handling differs, not the geometry',
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function pearson(a: ArrayLike<number>, b: ArrayLike<number>, mask: ArrayLike<number>): { r: number; n: number } {
  let n = 0,
    sa = 0,
    sb = 0;
  for (let i = 0; i < mask.length; i++)
    if (mask[i]) {
      n++;
      sa += a[i];
      sb += b[i];
    }
  let sab = 0,
    saa = 0,
    sbb = 0;
  for (let i = 0; i < mask.length; i++)
    if (mask[i]) {
      const x = a[i] - sa / n,
        y = b[i] - sb / n;
      sab += x * y;
      saa += x * x;
      sbb += y * y;
    }
  return { r: sab / Math.sqrt(saa * sbb), n };
}
