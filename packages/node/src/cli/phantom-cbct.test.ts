/**
 * `corridor phantom --cbct`: the stage also written as a simulated C-arm CT (cbct.nii.gz) in the phantom's
 * patient frame; ct.nii.gz, labels.nii.gz and truth.json are the files the run without --cbct writes.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readNifti, sampleTrilinear, type PhantomTruth, type Volume } from '@corridor/core';
import { runCli } from '../test-helpers/run-cli.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function volume(file: string): Promise<Volume> {
  return readNifti(new Uint8Array(await readFile(file)), file).volume;
}

describe('corridor phantom --cbct', () => {
  it('writes the pins stage as a simulated C-arm CT in the same patient frame, truth unchanged', async () => {
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'corridor-phantom-cbct-'));
    dirs.push(tmp);
    const plain = path.join(tmp, 'plain'),
      withCbct = path.join(tmp, 'cbct');
    const common = ['--voxel', '2', '--stage', 'pins', '--seed', '5', '--quiet'];
    const a = await runCli('phantom', '--out', plain, ...common);
    expect(a.code).toBe(0);
    const b = await runCli(
      'phantom',
      '--out',
      withCbct,
      ...common,
      '--cbct',
      '--cbct-voxel',
      '2',
      '--views',
      '61',
      '--binning',
      '16',
      '--dose',
      '20000',
      '--threads',
      '2',
    );
    expect(b.err).toBe('');
    expect(b.code).toBe(0);
    for (const f of ['ct.nii.gz', 'labels.nii.gz', 'truth.json'])
      expect(Buffer.compare(await readFile(path.join(plain, f)), await readFile(path.join(withCbct, f)))).toBe(0);
    const truth = JSON.parse(await readFile(path.join(withCbct, 'truth.json'), 'utf8')) as PhantomTruth;
    const ct = await volume(path.join(withCbct, 'ct.nii.gz'));
    const cb = await volume(path.join(withCbct, 'cbct.nii.gz'));
    expect(cb.spacing.map((s) => +s.toFixed(6))).toEqual([2, 2, 2]);
    // Same frame: the CT sampled at each CBCT voxel's patient point agrees with the CBCT inside the field
    // (a flip, a swap of axes or a shift of a few mm would scatter the pelvis' bone against soft tissue).
    const M = cb.indexToPatient;
    const [nx, ny, nz] = cb.dims;
    const centre = [0, 1, 2].map(
      (r) => (M[r * 4] * (nx - 1)) / 2 + (M[r * 4 + 1] * (ny - 1)) / 2 + (M[r * 4 + 2] * (nz - 1)) / 2 + M[r * 4 + 3],
    );
    /** Correlation of the CBCT with the CT sampled at `frame(p)` for each CBCT voxel p inside the field. */
    const correlation = (frame: (p: number[]) => number[]): number => {
      const xs: number[] = [],
        ys: number[] = [];
      for (let k = 0; k < nz; k += 2)
        for (let j = 0; j < ny; j += 2)
          for (let i = 0; i < nx; i += 2) {
            const v = cb.data[(k * ny + j) * nx + i];
            if (v === -1024) continue;
            const p = [0, 1, 2].map((r) => M[r * 4] * i + M[r * 4 + 1] * j + M[r * 4 + 2] * k + M[r * 4 + 3]);
            xs.push(Math.max(-1000, Math.min(2000, sampleTrilinear(ct, frame(p), -1000))));
            ys.push(Math.max(-1000, Math.min(2000, v)));
          }
      const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
      const mx = mean(xs),
        my = mean(ys);
      let sxy = 0,
        sxx = 0,
        syy = 0;
      for (let i = 0; i < xs.length; i++) {
        sxy += (xs[i] - mx) * (ys[i] - my);
        sxx += (xs[i] - mx) ** 2;
        syy += (ys[i] - my) ** 2;
      }
      return sxy / Math.sqrt(sxx * syy);
    };
    const same = correlation((p) => p);
    const others = {
      'flipped head-feet': correlation((p) => [p[0], p[1], 2 * centre[2] - p[2]]),
      'flipped front-back': correlation((p) => [p[0], 2 * centre[1] - p[1], p[2]]),
      'shifted 6 mm': correlation((p) => [p[0], p[1] + 6, p[2]]),
    };
    console.log(
      `phantom --cbct: correlation with the CT inside the field ${same.toFixed(3)}; ${JSON.stringify(others)}`,
    );
    expect(same).toBeGreaterThan(0.7);
    for (const r of Object.values(others)) expect(same).toBeGreaterThan(r + 0.1);
    // Every instrument shows at its shaft's midpoint (truth.json's positions in the CBCT): brighter than
    // any soft tissue or cancellous bone, though a 2.8 mm shaft averages over 2 mm voxels.
    const instruments = truth.instruments ?? [];
    expect(instruments.length).toBe(4);
    for (const ins of instruments) {
      const mid = [0, 1, 2].map((a) => (ins.tip[a] + ins.hub[a]) / 2);
      expect(sampleTrilinear(cb, mid, -1024)).toBeGreaterThan(600);
    }
  });
  it('refuses the C-arm flags without --cbct', async () => {
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'corridor-phantom-cbct-'));
    dirs.push(tmp);
    const r = await runCli('phantom', '--out', tmp, '--voxel', '3', '--dose', '100', '--no-aec', '--quiet');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--dose, --no-aec need --cbct/);
  });
});
