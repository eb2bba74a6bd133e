/**
 * `corridor register` and `corridor plan-transform` on the real 3 mm CT (../shared/data). The moving
 * image is the CT moved in the test by 8 degrees and 15 mm (with noise) and written as NIfTI; the truth
 * is that motion, so the transform the CLI writes must put the sacrum within 0.5 mm of where the motion
 * does, and a plan carried by it must land on the fixed image's points. A pair that does not overlap
 * must fail with nothing written.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createVolume,
  mat4TransformPoint,
  parseTransformFile,
  readNifti,
  writeNifti,
  type Volume,
} from '@corridor/core';
import { labelPoints, meanPoint, meanTre, movedCopy, rigidMotion } from '../../../core/src/test-helpers/motion.js';
import { runCli } from '../test-helpers/run-cli.js';
import { sharedDataDir } from '../io/shared-data.js';

const ct = path.join(sharedDataDir(), 'abdomen-pelvis-ct', 'ct.nii.gz');
const seg = path.join(sharedDataDir(), 'abdomen-pelvis-ct', 'labels.nii.gz');

describe.skipIf(!existsSync(ct) || !existsSync(seg))('corridor register / plan-transform (real 3 mm CT)', () => {
  let dir: string;
  let fixed: Volume;
  let sacrum: Float64Array;
  let motion: Float64Array;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-register-'));
    fixed = readNifti(new Uint8Array(await readFile(ct)), ct).volume;
    const labels = readNifti(new Uint8Array(await readFile(seg)), seg).volume;
    sacrum = labelPoints(labels, [25, 26]);
    motion = rigidMotion([0.4, 0.3, -0.87], 8, [9, -10, 6.7], meanPoint(sacrum));
    const moving = movedCopy(fixed, motion, 20, 31);
    await writeFile(path.join(dir, 'moving.nii.gz'), writeNifti(moving, { gzip: true }));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes a .tfm and a JSON that put the sacrum within 0.5 mm, and a resampled image', async () => {
    const mov = path.join(dir, 'moving.nii.gz');
    const tfm = path.join(dir, 't.tfm');
    const res = path.join(dir, 'resampled.nii.gz');
    const r = await runCli('register', ct, mov, '--out', tfm, '--resampled', res, '--json');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out) as { movingToFixed: number[][]; verdict: { status: string } };
    expect(doc.verdict.status).toBe('ok');
    expect(meanTre(sacrum, motion, doc.movingToFixed.flat())).toBeLessThan(0.5);
    const t = parseTransformFile(await readFile(tfm, 'utf8'), tfm);
    expect(meanTre(sacrum, motion, t.movingToFixed)).toBeLessThan(0.5);
    expect((await readFile(tfm, 'utf8')).startsWith('#Insight Transform File V1.0')).toBe(true);
    const out = readNifti(new Uint8Array(await readFile(res)), res).volume;
    expect(out.dims).toEqual(fixed.dims);
    // Resampled back onto the fixed grid, the moving image matches the fixed one in the sacrum:
    // mean |difference| well under the bone/soft tissue contrast (~ 300 HU); noise is 20 HU.
    let sum = 0;
    const q = [0, 0, 0];
    const n = sacrum.length / 3;
    for (let s = 0; s < n; s++) {
      const p = [sacrum[3 * s], sacrum[3 * s + 1], sacrum[3 * s + 2]];
      mat4TransformPoint(q, fixed.patientToIndex, p);
      const o = Math.round(q[0]) + fixed.dims[0] * (Math.round(q[1]) + fixed.dims[1] * Math.round(q[2]));
      sum += Math.abs(out.data[o] - fixed.data[o]);
    }
    expect(sum / n).toBeLessThan(60);
  });

  it('carries a plan made on the moving image onto the fixed points', async () => {
    const json = path.join(dir, 't.json');
    expect((await runCli('register', ct, path.join(dir, 'moving.nii.gz'), '--out', json)).code).toBe(0);
    // Two fixed points on the sacrum and where the moving scan saw them (the motion's inverse).
    const a = [sacrum[0], sacrum[1], sacrum[2]];
    const last = sacrum.length - 3;
    const b = [sacrum[last], sacrum[last + 1], sacrum[last + 2]];
    const inv = (p: number[]) => {
      const d = [p[0] - motion[3], p[1] - motion[7], p[2] - motion[11]];
      return [0, 1, 2].map((c) => motion[c] * d[0] + motion[4 + c] * d[1] + motion[8 + c] * d[2]);
    };
    const plan = {
      schemaVersion: 1,
      volume: { file: 'moving.nii.gz' },
      paths: [{ id: 's1', name: 'S1', kind: 'screw', diameterMm: 7.3, entry: inv(a), target: inv(b) }],
    };
    await writeFile(path.join(dir, 'plan.json'), JSON.stringify(plan));
    const out = path.join(dir, 'plan-fixed.json');
    const r = await runCli('plan-transform', path.join(dir, 'plan.json'), json, '--out', out);
    expect(r.code).toBe(0);
    const moved = JSON.parse(await readFile(out, 'utf8')) as {
      volume: { file: string };
      paths: { entry: number[]; target: number[] }[];
    };
    expect(path.resolve(dir, moved.volume.file)).toBe(path.resolve(ct));
    const dist = (p: number[], q: number[]) => Math.hypot(p[0] - q[0], p[1] - q[1], p[2] - q[2]);
    expect(dist(moved.paths[0].entry, a)).toBeLessThan(0.6);
    expect(dist(moved.paths[0].target, b)).toBeLessThan(0.6);
  });

  it('refuses to write a transform over a plan or over its input', async () => {
    const plan = path.join(dir, 'a-plan.json');
    const text = JSON.stringify({ schemaVersion: 1, volume: {}, paths: [] });
    await writeFile(plan, text);
    const r = await runCli('register', ct, path.join(dir, 'moving.nii.gz'), '--out', plan);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/WriteError/);
    expect(await readFile(plan, 'utf8')).toBe(text);
    const own = await runCli('register', ct, path.join(dir, 'moving.nii.gz'), '--resampled', ct);
    expect(own.code).toBe(2);
    expect(own.err).toMatch(/input/);
  });

  it('refuses a bad --cone-ends or --local-mean, naming the flag', async () => {
    const mov = path.join(dir, 'moving.nii.gz');
    const a = await runCli('register', ct, mov, '--cone-ends', 'some');
    expect(a.code).toBe(2);
    expect(a.err).toMatch(/--cone-ends "some" must be auto or none/);
    const b = await runCli('register', ct, mov, '--local-mean', 'wide');
    expect(b.code).toBe(2);
    expect(b.err).toMatch(/--local-mean/);
  });

  it('fails, writing nothing, when the images do not overlap', async () => {
    const far = Float64Array.from(fixed.indexToPatient);
    far[11] += 3000;
    const apart = path.join(dir, 'apart.nii.gz');
    await writeFile(
      apart,
      writeNifti(createVolume({ data: fixed.data, dims: fixed.dims, indexToPatient: far }), { gzip: true }),
    );
    const tfm = path.join(dir, 'never.tfm');
    const r = await runCli('register', ct, apart, '--out', tfm);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/RegistrationError: .*registration failed, nothing written/);
    expect(existsSync(tfm)).toBe(false);
  });
});
