/**
 * `corridor cbct --projections RUN.dcm` then `corridor recon RUN.dcm`: the run written as an XA rotational
 * run, read back and reconstructed equals the direct reconstruction within the 16-bit quantisation, and
 * the spheres of the input sit where they are (centroids against the spheres' true centres).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createVolume, parseDicom, readNifti, writeNifti, type Point3, type Volume } from '@corridor/core';
import { runCli } from '../test-helpers/run-cli.js';

afterEach(() => vi.restoreAllMocks());

/** Water cylinder (radius 35 mm) with bone spheres (radius 2.5 mm, 1500 HU) voxelized with 4^3 subsamples. */
function sphereCt(): { ct: Volume; spheres: Point3[] } {
  const n = 96,
    s = 0.8;
  const origin: Point3 = [-42.7, 118.1, -612.3];
  const c: Point3 = [origin[0] + ((n - 1) * s) / 2, origin[1] + ((n - 1) * s) / 2, origin[2] + ((n - 1) * s) / 2];
  const spheres: Point3[] = [
    [c[0], c[1], c[2]],
    [c[0] + 18, c[1] - 3, c[2] + 4],
    [c[0] - 6, c[1] + 15, c[2] - 11],
    [c[0] - 14, c[1] - 12, c[2] + 13],
    [c[0] + 9, c[1] + 8, c[2] + 20],
  ];
  const data = new Float32Array(n ** 3);
  const S = 4;
  for (let k = 0; k < n; k++)
    for (let j = 0; j < n; j++)
      for (let i = 0; i < n; i++) {
        const x = origin[0] + i * s,
          y = origin[1] + j * s,
          z = origin[2] + k * s;
        let hu = Math.hypot(x - c[0], y - c[1]) <= 35 ? 0 : -1000;
        for (const p of spheres) {
          if (Math.hypot(x - p[0], y - p[1], z - p[2]) > 4) continue;
          let inside = 0;
          for (let a = 0; a < S; a++)
            for (let b = 0; b < S; b++)
              for (let d = 0; d < S; d++) {
                const dx = x + ((a + 0.5) / S - 0.5) * s - p[0],
                  dy = y + ((b + 0.5) / S - 0.5) * s - p[1],
                  dz = z + ((d + 0.5) / S - 0.5) * s - p[2];
                if (dx * dx + dy * dy + dz * dz <= 2.5 * 2.5) inside++;
              }
          hu += (1500 * inside) / S ** 3;
        }
        data[(k * n + j) * n + i] = hu;
      }
  const m = new Float64Array([s, 0, 0, origin[0], 0, s, 0, origin[1], 0, 0, s, origin[2], 0, 0, 0, 1]);
  return { ct: createVolume({ data, dims: [n, n, n], indexToPatient: m, meta: { source: 'spheres' } }), spheres };
}

/** Centroid (LPS mm) of the voxels above half the local peak over the water, in a 6 mm box about p. */
function centroidNear(v: Volume, p: Point3): Point3 {
  const A = v.patientToIndex,
    M = v.indexToPatient;
  const ci = [0, 1, 2].map((r) =>
    Math.round(A[r * 4] * p[0] + A[r * 4 + 1] * p[1] + A[r * 4 + 2] * p[2] + A[r * 4 + 3]),
  );
  const h = [0, 1, 2].map((a) => Math.ceil(6 / v.spacing[a]));
  const [nx, ny] = v.dims;
  const voxels: [number, number, number, number][] = [];
  for (let k = ci[2] - h[2]; k <= ci[2] + h[2]; k++)
    for (let j = ci[1] - h[1]; j <= ci[1] + h[1]; j++)
      for (let i = ci[0] - h[0]; i <= ci[0] + h[0]; i++) voxels.push([i, j, k, v.data[(k * ny + j) * nx + i]]);
  const peak = Math.max(...voxels.map((x) => x[3]));
  const t = peak / 2;
  let sw = 0;
  const sum = [0, 0, 0];
  for (const [i, j, k, val] of voxels) {
    if (val <= t) continue;
    sw += val - t;
    for (let r = 0; r < 3; r++)
      sum[r] += (val - t) * (M[r * 4] * i + M[r * 4 + 1] * j + M[r * 4 + 2] * k + M[r * 4 + 3]);
  }
  return [sum[0] / sw, sum[1] / sw, sum[2] / sw];
}

describe('corridor recon', () => {
  it('reconstructs the XA run written by cbct --projections to the direct reconstruction', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'corridor-recon-'));
    const { ct, spheres } = sphereCt();
    const input = path.join(dir, 'ct.nii.gz');
    writeFileSync(input, writeNifti(ct, { gzip: true }));
    const direct = path.join(dir, 'direct.nii.gz'),
      runFile = path.join(dir, 'run.dcm'),
      fromRun = path.join(dir, 'recon.nii.gz');
    const grid = ['--voxel', '1', '--fov', '76', '--height', '60', '--threads', '2'];
    const a = await runCli(
      'cbct',
      input,
      '--out',
      direct,
      '--projections',
      runFile,
      '--views',
      '91',
      '--binning',
      '8',
      '--dose',
      '20000',
      '--seed',
      '7',
      '--json',
      ...grid,
    );
    expect(a.err).toBe('');
    expect(a.code).toBe(0);
    const aj = JSON.parse(a.out) as { projections: string; timingsMs: Record<string, number> };
    expect(aj.projections).toBe(runFile);
    console.log(`cbct timings ${JSON.stringify(aj.timingsMs)}`);
    const ds = parseDicom(new Uint8Array(readFileSync(runFile)), runFile);
    expect(ds.numbers('x00280008')).toEqual([91]);
    expect(ds.string('x00181500')).toBe('DYNAMIC');

    const b = await runCli('recon', runFile, '--out', fromRun, ...grid);
    expect(b.code).toBe(0);
    expect(b.err).toMatch(/warning: reconstructed with the nominal geometry.*calibrated per-view geometry/);
    expect(b.err).not.toMatch(/assumed/);
    const d = readNifti(new Uint8Array(readFileSync(direct)), direct).volume;
    const r = readNifti(new Uint8Array(readFileSync(fromRun)), fromRun).volume;
    expect(r.dims).toEqual(d.dims);
    let worstM = 0;
    for (let i = 0; i < 16; i++) worstM = Math.max(worstM, Math.abs(r.indexToPatient[i] - d.indexToPatient[i]));
    expect(worstM).toBeLessThan(1e-6);
    let n = 0,
      sq = 0,
      worst = 0,
      maskDiffers = 0;
    for (let i = 0; i < d.data.length; i++) {
      if ((r.data[i] === -1024) !== (d.data[i] === -1024)) maskDiffers++;
      if (d.data[i] === -1024) continue;
      const e = r.data[i] - d.data[i];
      sq += e * e;
      worst = Math.max(worst, Math.abs(e));
      n++;
    }
    expect(maskDiffers).toBe(0);
    const rms = Math.sqrt(sq / n);
    // The 16-bit intensities: p is off by at most 1 / (2 stored) per pixel, a few 1e-5 here.
    console.log(`recon from XA run vs direct: ${n} voxels, RMS ${rms.toFixed(3)} HU, worst ${worst.toFixed(2)} HU`);
    expect(rms).toBeLessThan(1);
    expect(worst).toBeLessThan(10);
    let worstC = 0;
    for (const s of spheres) {
      const c = centroidNear(r, s);
      const e = Math.hypot(c[0] - s[0], c[1] - s[1], c[2] - s[2]);
      worstC = Math.max(worstC, e);
      expect(e).toBeLessThan(0.3);
    }
    console.log(`recon from XA run: worst sphere centroid error ${worstC.toFixed(3)} mm`);
  });

  it('refuses a file that is not a rotational run, naming it', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'corridor-recon-'));
    const f = path.join(dir, 'ct.nii.gz');
    writeFileSync(f, writeNifti(sphereCt().ct, { gzip: true }));
    const r = await runCli('recon', f, '--out', path.join(dir, 'out.nii.gz'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/ct\.nii\.gz/);
  });
});
