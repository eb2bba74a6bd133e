import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decode as decodePng } from 'fast-png';
import {
  carmPreset,
  generatePhantom,
  readXaFrame,
  writeNifti,
  type CarmGeometry,
  type PathLike,
  type PathOverlay,
  type PathViews,
  type Point3,
} from '@corridor/core';
import { runCli } from '../test-helpers/run-cli.js';
import { sharedDataDir } from '../io/shared-data.js';

const run = runCli;

/** What the commands print with --json, as far as these tests read it. */
interface ViewsJson {
  paths: PathViews[];
}
type PathPxJson = Pick<PathOverlay, 'id' | 'entryPx' | 'targetPx'>;
interface DrrJson {
  isocenter: Point3;
  geometry: CarmGeometry;
  paths: PathPxJson[];
}
interface OverlayJson {
  frame: number;
  verified: boolean;
  geometry: CarmGeometry;
  assumed: string[];
  paths: PathPxJson[];
}
afterEach(() => vi.restoreAllMocks());

/** Independent pinhole from docs/conventions.md, written out again here (not the code under test). */
function pinhole(
  a: number,
  b: number,
  iso: number[],
  sid: number,
  sod: number,
  cols: number,
  rows: number,
  px: number,
  p: number[],
) {
  const ra = (a * Math.PI) / 180,
    rb = (b * Math.PI) / 180;
  const d = [Math.sin(ra) * Math.cos(rb), -Math.cos(ra) * Math.cos(rb), Math.sin(rb)];
  const u = [Math.cos(ra), Math.sin(ra), 0];
  const v = [Math.sin(ra) * Math.sin(rb), -Math.cos(ra) * Math.sin(rb), -Math.cos(rb)];
  const S = iso.map((x, i) => x - sod * d[i]);
  const w = p.map((x, i) => x - S[i]);
  const depth = w[0] * d[0] + w[1] * d[1] + w[2] * d[2];
  const k = sid / depth;
  return [
    (cols - 1) / 2 + (k * (w[0] * u[0] + w[1] * u[1] + w[2] * u[2])) / px,
    (rows - 1) / 2 + (k * (w[0] * v[0] + w[1] * v[1] + w[2] * v[2])) / px,
  ];
}

describe('corridor views / drr / overlay', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'corridor-carm-'));
  const ct = path.join(dir, 'ct.nii.gz');
  const plan = path.join(dir, 'plan.json');
  let paths: PathLike[] = [];

  beforeAll(() => {
    const ph = generatePhantom({ voxelMm: 2.5, noise: false });
    writeFileSync(ct, writeNifti(ph.ct));
    const t = ph.truth;
    paths = [
      {
        id: 's1',
        name: 'S1 trans-sacral',
        kind: 'screw',
        diameterMm: 7.3,
        entry: t.corridors.S1.entry,
        target: t.corridors.S1.exit,
      },
      {
        id: 'alar-left',
        name: 'Alar left',
        kind: 'trocar',
        diameterMm: 3.05,
        entry: t.alarPaths.left.entry,
        target: t.alarPaths.left.target,
      },
    ] as PathLike[];
    writeFileSync(plan, JSON.stringify({ schemaVersion: 1, volume: { file: 'ct.nii.gz' }, paths }));
  });

  it("views --json gives per path bull's-eye and progress views; the S1 screw is seen end-on laterally", async () => {
    const r = await run('views', plan, '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as ViewsJson;
    expect(j.paths.map((p) => p.id)).toEqual(['s1', 'alar-left']);
    const s1 = j.paths[0];
    // S1 runs right (entry, x = -80) to left: detector on the right = RAO, about 90 (patient rotated 2 deg).
    expect(s1.bullseye.primaryDeg).toBeGreaterThan(-95);
    expect(s1.bullseye.primaryDeg).toBeLessThan(-85);
    expect(s1.bullseye.reachable).toBe(true);
    expect(s1.bullseye.isocenter).toEqual(paths[0].target);
    expect(Math.abs(s1.progress.primaryDeg)).toBeLessThan(5);
    for (const k of ['primaryDeg', 'secondaryDeg', 'isocenter', 'reachable']) expect(s1.progress).toHaveProperty(k);
  });

  it('drr --json: matrix and projected paths match a pinhole computed here; PNG, raw and DICOM written', async () => {
    const png = path.join(dir, 'ap.png'),
      raw = path.join(dir, 'ap.nii.gz'),
      dcm = path.join(dir, 'ap.dcm');
    const r = await run(
      'drr',
      ct,
      '--plan',
      plan,
      '--primary',
      '10',
      '--secondary',
      '-25',
      '--size',
      '128',
      '--threads',
      '2',
      '--out',
      png,
      '--raw',
      raw,
      '--dicom',
      dcm,
      '--json',
    );
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as DrrJson;
    const s = carmPreset('artis-zee-floor');
    const px = (1920 * 0.154) / 128;
    for (const [i, p] of paths.entries()) {
      const want = pinhole(10, -25, j.isocenter, s.sidMm, s.sodMm, 128, j.geometry.rows, px, p.entry);
      expect(j.paths[i].entryPx[0]).toBeCloseTo(want[0], 6);
      expect(j.paths[i].entryPx[1]).toBeCloseTo(want[1], 6);
    }
    const img = decodePng(readFileSync(png));
    expect([img.width, img.height]).toEqual([128, j.geometry.rows]);
    expect(existsSync(raw)).toBe(true);
    const back = await readXaFrame(readFileSync(dcm), dcm, { system: s });
    expect(back.verified).toBe(true);
    expect(back.geometry.primaryDeg).toBe(10);
    // The overlay command on our own frame reproduces the drr's projected points.
    const o = await run('overlay', dcm, '--plan', plan, '--json');
    expect(o.code).toBe(0);
    const oj = JSON.parse(o.out) as OverlayJson;
    expect(oj.verified).toBe(true);
    expect(oj.paths[0].entryPx[0]).toBeCloseTo(j.paths[0].entryPx[0], 3);
    expect(oj.paths[1].targetPx[1]).toBeCloseTo(j.paths[1].targetPx[1], 3);
  });

  const xa = path.join(sharedDataDir(), 'xa-rf/xa_rubo_multiframe_jpeg_baseline.dcm');
  it.skipIf(!existsSync(xa))('overlay on the real angiography run says which geometry was assumed', async () => {
    const out = path.join(dir, 'xa.png');
    const r = await run('overlay', xa, '--plan', plan, '--frame', '11', '--out', out, '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as OverlayJson;
    // --frame 11 is the eleventh frame: 1-based, as DICOM numbers frames and the browser shows them.
    expect(j.frame).toBe(11);
    // The guessed isocentre is printed to 0.1 mm, not to 16 digits.
    expect(j.assumed.join(' ')).toMatch(/isocentre \(-?\d+\.\d, -?\d+\.\d, -?\d+\.\d\)/);
    expect(j.verified).toBe(false);
    expect(j.geometry.primaryDeg).toBe(-32);
    expect(j.assumed.join(' ')).toMatch(/DistanceSourceToDetector/);
    expect(j.assumed.join(' ')).toMatch(/guessed from the plan centre/);
    const png = decodePng(readFileSync(out));
    expect(png.width).toBe(512);
    // Orientation letters drawn from the frame's geometry (RAO 32, CRAN 2: column runs to the patient's
    // left mostly, u = (cos 32, -sin 32, 0)): the side letter L in yellow at the middle of the right edge.
    let yellow = 0;
    for (let y = png.height / 2 - 24; y < png.height / 2 + 24; y++)
      for (let x = 512 - 40; x < 512; x++) {
        const o = 4 * (y * 512 + x);
        if (png.data[o] === 255 && png.data[o + 1] === 220 && png.data[o + 2] === 0) yellow++;
      }
    expect(yellow).toBeGreaterThan(20);
  });

  it('bad flags give a usage error', async () => {
    const r = await run('drr', ct, '--secondary', '120');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--secondary/);
    const r0 = await run('overlay', ct, '--plan', plan, '--frame', '0');
    expect(r0.code).toBe(2);
    expect(r0.err).toMatch(/--frame 0: frames are numbered from 1/);
    const r2 = await run('views', plan, '--carm', 'nope');
    expect(r2.err).toMatch(/unknown C-arm preset/);
  });
});
