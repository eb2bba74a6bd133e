/**
 * `corridor views` prints the inlet and outlet views (core's pelvicViews) besides each path's views, from
 * the plan's S1/S2 paths with the anterior cortex in the plan's CT, or with --labels; `corridor drr`
 * refuses angles beyond the C-arm preset's limits unless told --ignore-limits. Phantom at 2 mm, no noise.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  carmPreset,
  generatePhantom,
  pelvicViews,
  phantomAnatomy,
  writeNifti,
  type GeneratedPhantom,
  type PathLike,
  type PelvicViews,
} from '@corridor/core';
import { runCli as run } from '../test-helpers/run-cli.js';

const dir = mkdtempSync(path.join(tmpdir(), 'corridor-pelvic-'));
const ct = path.join(dir, 'ct.nii.gz'),
  labels = path.join(dir, 'labels.nii.gz'),
  plan = path.join(dir, 'plan.json'),
  alarOnly = path.join(dir, 'alar.json');
let ph: GeneratedPhantom;
let paths: PathLike[];

beforeAll(() => {
  ph = generatePhantom({ voxelMm: 2, noise: false });
  writeFileSync(ct, writeNifti(ph.ct));
  writeFileSync(labels, writeNifti(ph.labels));
  const c = ph.truth.corridors;
  paths = [
    { id: 's1', name: 'S1 trans-sacral', kind: 'screw', diameterMm: 7.3, entry: c.S1.entry, target: c.S1.exit },
    { id: 's2', name: 'S2 trans-sacral', kind: 'screw', diameterMm: 7.3, entry: c.S2.entry, target: c.S2.exit },
  ] as PathLike[];
  writeFileSync(plan, JSON.stringify({ schemaVersion: 1, volume: { file: 'ct.nii.gz' }, paths }));
  const alar = ph.truth.alarPaths.left;
  writeFileSync(
    alarOnly,
    JSON.stringify({
      schemaVersion: 1,
      volume: {},
      paths: [{ id: 'alar-left', kind: 'trocar', diameterMm: 3, entry: alar.entry, target: alar.target }],
    }),
  );
}, 60_000);

describe('corridor views: inlet and outlet', () => {
  it("from the plan (its S1/S2 paths, the cortex in its CT): core's numbers, inlet cranial, outlet caudal", async () => {
    const r = await run('views', plan, '--json');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as { pelvic: PelvicViews; paths: { id: string }[] };
    const core = pelvicViews({ paths, ct: ph.ct }, carmPreset('artis-zee-floor'));
    expect(j.pelvic.cortexFrom).toBe('ct');
    expect(j.pelvic.inlet.secondaryDeg).toBeCloseTo(core.inlet.secondaryDeg, 9);
    expect(j.pelvic.outlet.primaryDeg).toBeCloseTo(core.outlet.primaryDeg, 9);
    // The phantom's inlet is about CRAN 45, its outlet about CAUD 45 (core's test checks them to 1 degree).
    expect(j.pelvic.inlet.secondaryDeg).toBeGreaterThan(35);
    expect(j.pelvic.outlet.secondaryDeg).toBeLessThan(-35);
    expect(j.paths.map((p) => p.id)).toEqual(['s1', 's2']);
  });

  it('with --labels: levels from the paths, cortex from the labels; the text names both views', async () => {
    const r = await run('views', plan, '--labels', labels);
    expect(r.code).toBe(0);
    const core = pelvicViews({ paths, labels: ph.labels, anatomy: phantomAnatomy() }, carmPreset('artis-zee-floor'));
    const f = (x: number) => Math.abs(x).toFixed(1);
    expect(r.out).toContain('anterior cortex from labels');
    expect(r.out).toMatch(new RegExp(`inlet +LAO ${f(core.inlet.primaryDeg)}, CRAN ${f(core.inlet.secondaryDeg)},`));
    expect(r.out).toMatch(
      new RegExp(`outlet +\\w+ ${f(core.outlet.primaryDeg)}, CAUD ${f(core.outlet.secondaryDeg)},`),
    );
  });

  it('a plan without S1/S2 paths and no labels: the path views, and a line saying why there is no inlet', async () => {
    const r = await run('views', alarOnly);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/no inlet\/outlet views \(no S1 and S2 paths/);
    const l = await run('views', alarOnly, '--labels', labels, '--json');
    expect((JSON.parse(l.out) as { pelvic: PelvicViews }).pelvic.levelsFrom).toBe('labels');
  });
});

describe('corridor drr: the C-arm limits', () => {
  it('refuses CRAN 60 on the Artis (limit 55), saying how to override; --ignore-limits renders it', async () => {
    const r = await run('drr', ct, '--secondary', '60', '--size', '16', '--threads', '1');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/beyond the limits of "artis-zee-floor".*secondary -55 to 55.*--ignore-limits/);
    const ok = await run('drr', ct, '--secondary', '60', '--size', '16', '--threads', '1', '--ignore-limits');
    expect(ok.err).toBe('');
    expect(ok.code).toBe(0);
    // The generic mobile C-arm reaches 60 without the override.
    const mobile = await run('drr', ct, '--secondary', '60', '--carm', 'generic-mobile-ii', '--size', '16');
    expect(mobile.code).toBe(0);
  }, 60_000);
});
