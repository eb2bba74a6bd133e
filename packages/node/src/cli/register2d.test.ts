/**
 * `corridor register2d` on the real 3 mm CT (../shared/data/abdomen-pelvis-ct): the frames are DRRs of
 * the CT moved in the test (register2d/trials.ts: 4 degrees and 6 mm, fluoroscopy model with noise),
 * written as DICOM XA at their nominal pose. The transform the CLI writes must put the sacrum (labels 25,
 * 26) within 1 mm of where the motion does, carry the plan with it through plan-transform, and draw the
 * overlays; a frame of noise must fail with nothing written.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  carmGeometry,
  carmPreset,
  parsePlan,
  parseTransformFile,
  prepareDrrVolume,
  readNifti,
  Rng,
  writeXaFrame,
  type Point3,
} from '@corridor/core';
import { motionMatrix, movedFrame, trialErrors } from '../register2d/trials.js';
import { runCli } from '../test-helpers/run-cli.js';
import { sharedDataDir } from '../io/shared-data.js';

const ct = path.join(sharedDataDir(), 'abdomen-pelvis-ct', 'ct.nii.gz');
const seg = path.join(sharedDataDir(), 'abdomen-pelvis-ct', 'labels.nii.gz');

describe.skipIf(!existsSync(ct) || !existsSync(seg))('corridor register2d (real 3 mm CT)', () => {
  let dir: string;
  let sacrum: Float64Array;
  let motion: Float64Array;
  let centre: Point3;
  let plan: string;
  const frames: string[] = [];
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-register2d-'));
    const volume = readNifti(new Uint8Array(await readFile(ct)), ct).volume;
    const labels = readNifti(new Uint8Array(await readFile(seg)), seg).volume;
    const pts: number[] = [];
    const m = labels.indexToPatient;
    const [nx, ny, nz] = labels.dims;
    for (let k = 0, o = 0; k < nz; k++)
      for (let j = 0; j < ny; j++)
        for (let i = 0; i < nx; i++, o++)
          if (labels.data[o] === 25 || labels.data[o] === 26)
            pts.push(
              m[0] * i + m[1] * j + m[2] * k + m[3],
              m[4] * i + m[5] * j + m[6] * k + m[7],
              m[8] * i + m[9] * j + m[10] * k + m[11],
            );
    sacrum = Float64Array.from(pts);
    const n = pts.length / 3;
    centre = [0, 1, 2].map((a) => pts.filter((_, q) => q % 3 === a).reduce((s, v) => s + v, 0) / n) as Point3;
    motion = motionMatrix([0.5, -0.3, 0.8], 4, [3.5, -4, 2.9], centre);
    // A plan path through the sacrum's centre, front to back (its centre is the isocentre and the centre).
    plan = path.join(dir, 'plan.json');
    const entry = [centre[0] - 40, centre[1], centre[2]],
      target = [centre[0] + 40, centre[1], centre[2]];
    await writeFile(
      plan,
      JSON.stringify({
        schemaVersion: 1,
        paths: [{ id: 's1', name: 'S1', kind: 'screw', diameterMm: 7, entry, target }],
      }),
    );
    const dv = prepareDrrVolume(volume);
    const system = carmPreset('artis-zee-floor');
    for (const [i, p] of [0, 70].entries()) {
      const g = carmGeometry(system, { primaryDeg: p, secondaryDeg: 0, isocenter: centre }, { size: 192 });
      const f = path.join(dir, `frame${i + 1}.dcm`);
      await writeFile(f, writeXaFrame({ gray: movedFrame(dv, motion, g, 7 + i), geometry: g }));
      frames.push(f);
    }
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('two frames: the transform puts the sacrum within 1 mm, plan-transform and the overlays follow', async () => {
    const out = path.join(dir, 'motion.json');
    const png = path.join(dir, 'overlay.png');
    const r = await runCli(
      'register2d',
      ct,
      frames[0],
      frames[1],
      '--plan',
      plan,
      '--out',
      out,
      '--overlay',
      png,
      '--json',
    );
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out) as {
      planningToCurrent: number[][];
      verdict: { status: string };
      views: { before: { entryPx: number[] }[]; after: { entryPx: number[] }[] }[];
    };
    expect(doc.verdict.status).toBe('ok');
    const t = parseTransformFile(await readFile(out, 'utf8'), out);
    const rows = [0, 1, 2, 3].map((q) => Array.from(t.movingToFixed.slice(q * 4, q * 4 + 4)));
    const e = trialErrors(sacrum, motion, rows, [0, -1, 0]);
    expect(e.tre).toBeLessThan(1);
    // Before the correction the overlay was off by the motion (several pixels); after, on the moved entry.
    const before = trialErrors(
      sacrum,
      motion,
      [
        [1, 0, 0, 0],
        [0, 1, 0, 0],
        [0, 0, 1, 0],
        [0, 0, 0, 1],
      ],
      [0, -1, 0],
    );
    expect(before.tre).toBeGreaterThan(4);
    for (const f of [png, png.replace(/\.png$/, '-2.png')])
      expect(Array.from((await readFile(f)).subarray(1, 4))).toEqual([0x50, 0x4e, 0x47]);
    const moved = path.join(dir, 'moved-plan.json');
    const r2 = await runCli('plan-transform', plan, out, '--out', moved);
    expect(r2.code, r2.err).toBe(0);
    const p = parsePlan(await readFile(moved, 'utf8'), moved).paths[0];
    const entry = [centre[0] - 40, centre[1], centre[2]];
    const want = [0, 1, 2].map(
      (q) => motion[q * 4] * entry[0] + motion[q * 4 + 1] * entry[1] + motion[q * 4 + 2] * entry[2] + motion[q * 4 + 3],
    );
    expect(Math.hypot(p.entry[0] - want[0], p.entry[1] - want[1], p.entry[2] - want[2])).toBeLessThan(1.5);
  });

  it('a frame of noise: failed, nothing written (exit 2)', async () => {
    const g = carmGeometry(
      carmPreset('artis-zee-floor'),
      { primaryDeg: 0, secondaryDeg: 0, isocenter: centre },
      { size: 96 },
    );
    const rng = new Rng(5);
    const gray = new Uint8Array(g.columns * g.rows).map(() => 30 + Math.floor(rng.next() * 190));
    const f = path.join(dir, 'noise.dcm');
    await writeFile(f, writeXaFrame({ gray, geometry: g }));
    const out = path.join(dir, 'none.json');
    const r = await runCli('register2d', ct, f, '--out', out);
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/verdict: failed/);
    expect(r.err).toMatch(/nothing written/);
    expect(existsSync(out)).toBe(false);
  });
});
