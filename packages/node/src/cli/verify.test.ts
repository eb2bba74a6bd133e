/**
 * `corridor verify` end to end on a pins-stage phantom written by `corridor phantom` (1 mm), its plan
 * made here from truth.json's planned paths. Expected figures come from truth.json (each instrument's
 * seeded entry offset, angle and tip), never from the code under test.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVolume, mat4FromRows, mat4Multiply, writeNifti } from '@corridor/core';
import { runCli } from '../test-helpers/run-cli.js';
import { defined } from '../test-helpers/defined.js';
import { loadVolume, parseFractures, parseTolerance, parseTransform } from './verify.js';

type P3 = [number, number, number];
interface Truth {
  corridors: Record<'S1' | 'S2', { entry: P3; exit: P3 }>;
  alarPaths: Record<'left' | 'right', { entry: P3; target: P3 }>;
  instruments: { name: string; tip: P3; entryOffsetMm: number; angleDeg: number; tipOffsetMm: number }[];
}
interface Report {
  kind: string;
  allPass: boolean;
  structureSource: string;
  foramina: { source: string; method?: string };
  scanToPlan: number[][] | null;
  registration: { status: string; seconds: number } | null;
  paths: {
    pathId: string;
    status: string;
    deviation: { entryOffsetMm: number; tipOffsetMm: number; angleDeg: number } | null;
    instrument: { tip: P3 } | null;
  }[];
  unplanned: unknown[];
}
const PATH_OF: Record<string, string> = {
  'S1 guidepin': 's1',
  'S2 guidepin': 's2',
  'Alar trocar left': 'alar-left',
  'Alar trocar right': 'alar-right',
};

describe('corridor verify on the phantom pins stage', () => {
  let dir: string, ph: string, planFile: string;
  let truth: Truth;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-verify-'));
    ph = path.join(dir, 'ph');
    const r = await runCli('phantom', '--out', ph, '--stage', 'pins', '--voxel', '1', '--quiet');
    expect(r.code, r.err).toBe(0);
    truth = JSON.parse(await readFile(path.join(ph, 'truth.json'), 'utf8')) as Truth;
    const t = truth;
    const pin = (id: string, e: P3, x: P3) => ({ id, kind: 'guidepin', diameterMm: 2.8, entry: e, target: x });
    const trocar = (id: string, e: P3, x: P3) => ({ id, kind: 'trocar', diameterMm: 3.05, entry: e, target: x });
    planFile = path.join(dir, 'plan.json');
    await writeFile(
      planFile,
      JSON.stringify({
        schemaVersion: 1,
        volume: {},
        paths: [
          pin('s1', t.corridors.S1.entry, t.corridors.S1.exit),
          pin('s2', t.corridors.S2.entry, t.corridors.S2.exit),
          trocar('alar-left', t.alarPaths.left.entry, t.alarPaths.left.target),
          trocar('alar-right', t.alarPaths.right.entry, t.alarPaths.right.target),
        ],
      }),
    );
  }, 120_000);
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('prints a PASS / FAIL table and writes the report, figures within 0.5 mm / 0.5 deg of truth', async () => {
    const out = path.join(dir, 'report.json');
    const labels = path.join(ph, 'labels.nii.gz');
    const r = await runCli('verify', planFile, path.join(ph, 'ct.nii.gz'), '--labels', labels, '--out', out);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^path +status +entry mm/m);
    expect(r.out).toMatch(/^s1 +FAIL +1\.\d +3\.\d/m); // truth: entry 1.4 mm, tip 3.9 mm off
    const rep = JSON.parse(await readFile(out, 'utf8')) as Report;
    expect(rep.kind).toBe('corridor-verification');
    expect(rep.structureSource).toBe('labels');
    expect(rep.foramina.source).toBe('labels');
    expect(rep.unplanned).toEqual([]);
    for (const ins of truth.instruments) {
      const p = defined(
        rep.paths.find((x) => x.pathId === PATH_OF[ins.name]),
        ins.name,
      );
      const d = defined(p.deviation, `${ins.name} deviation`);
      expect(Math.abs(d.entryOffsetMm - ins.entryOffsetMm), ins.name).toBeLessThan(0.5);
      expect(Math.abs(d.angleDeg - ins.angleDeg), ins.name).toBeLessThan(0.5);
      expect(Math.abs(d.tipOffsetMm - ins.tipOffsetMm), ins.name).toBeLessThan(0.5);
      // Seed 1 draws every instrument with an angle or tip beyond 2 deg / 2 mm but the left trocar's
      // tip (1.97 mm) - so every path fails (the left trocar by its 4.0 deg angle).
      expect(p.status).toBe('fail');
    }
    // The same report on stdout with --json; a tighter or looser tolerance changes the verdicts only.
    const j = await runCli(
      'verify',
      planFile,
      path.join(ph, 'ct.nii.gz'),
      '--json',
      '--tolerance',
      '10,10',
      '--transform',
      await identity(),
    );
    expect(j.code, j.err).toBe(0);
    const rep2 = JSON.parse(j.out) as Report;
    // Without --labels the foramina come from the image (1 mm): the pins, all in place, meet none of them.
    expect(rep2.structureSource).toBe('labels');
    expect(rep2.foramina.source).toBe('image');
    expect(rep2.foramina.method).toMatch(/image/);
    expect(rep2.scanToPlan).not.toBeNull();
    expect(rep2.allPass).toBe(true);
    for (let k = 0; k < 4; k++)
      expect(defined(rep2.paths[k].deviation, 'dev').angleDeg).toBeCloseTo(
        defined(rep.paths[k].deviation, 'dev').angleDeg,
        9,
      );
  });

  it('registers a scan from another frame to the planning CT (--register-to)', async () => {
    // The pins scan placed 4 deg about x and 12 mm away; the planning CT: the plan stage at 2 mm.
    const planCt = path.join(dir, 'plan-ct');
    const p = await runCli('phantom', '--out', planCt, '--stage', 'plan', '--voxel', '2', '--quiet');
    expect(p.code, p.err).toBe(0);
    const c = Math.cos((4 * Math.PI) / 180),
      s = Math.sin((4 * Math.PI) / 180);
    const M = mat4FromRows([1, 0, 0, -7, 0, c, -s, 6, 0, s, c, 8, 0, 0, 0, 1]);
    const v = await loadVolume(path.join(ph, 'ct.nii.gz'));
    const movedFile = path.join(dir, 'pins-moved.nii');
    await writeFile(
      movedFile,
      writeNifti(
        createVolume({
          data: v.data,
          dims: v.dims,
          indexToPatient: mat4Multiply(new Float64Array(16), M, v.indexToPatient),
        }),
      ),
    );
    const planVol = path.join(planCt, 'ct.nii.gz');
    const out = path.join(dir, 'registered.json');
    const r = await runCli('verify', planFile, movedFile, '--register-to', planVol, '--out', out);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/scan registered to the planning volume/);
    const rep = JSON.parse(await readFile(out, 'utf8')) as Report;
    expect(rep.registration?.status).toBe('ok');
    expect(rep.scanToPlan).not.toBeNull();
    for (const ins of truth.instruments) {
      const q = defined(
        rep.paths.find((x) => x.pathId === PATH_OF[ins.name]),
        ins.name,
      );
      const d = defined(q.deviation, `${ins.name} deviation`);
      expect(Math.abs(d.entryOffsetMm - ins.entryOffsetMm), ins.name).toBeLessThan(0.5);
      expect(Math.abs(d.angleDeg - ins.angleDeg), ins.name).toBeLessThan(0.5);
      expect(Math.abs(d.tipOffsetMm - ins.tipOffsetMm), ins.name).toBeLessThan(0.5);
    }
    const both = await runCli('verify', planFile, movedFile, '--register-to', planVol, '--transform', await identity());
    expect(both.code).toBe(2);
    expect(both.err).toMatch(/not both/);
  });

  it('refuses to write the report over an input or a file of another kind', async () => {
    const r = await runCli('verify', planFile, path.join(ph, 'ct.nii.gz'), '--out', planFile);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/WriteError.*input/);
    const r2 = await runCli('verify', planFile, path.join(ph, 'ct.nii.gz'), '--out', path.join(ph, 'truth.json'));
    expect(r2.code).toBe(2);
    expect(r2.err).toMatch(/not a verification report/);
  });

  async function identity(): Promise<string> {
    const f = path.join(dir, 'identity.json');
    const rows = [
      [1, 0, 0, 0],
      [0, 1, 0, 0],
      [0, 0, 1, 0],
      [0, 0, 0, 1],
    ];
    await writeFile(f, JSON.stringify({ movingToFixed: rows }));
    return f;
  }
});

describe('verify flags', () => {
  it('reads fracture planes bare, under "fractures" or from a truth.json, and refuses a plane without a normal', () => {
    // The phantom's truth.json form: side, widthMm, pointOnCleft, normal.
    const truthLike = {
      schemaVersion: 1,
      fractures: [
        { side: 'left', widthMm: 1.8, pointOnCleft: [35, 4, -150], normal: [0.99, 0.03, 0.05] },
        { side: 'right', widthMm: 1.8, pointOnCleft: [-33, 4, -150], normal: [-0.99, 0.03, 0.05] },
      ],
    };
    const fromTruth = parseFractures(JSON.stringify(truthLike), 'truth.json');
    expect(fromTruth.map((f) => f.name)).toEqual(['left', 'right']);
    expect(fromTruth[1].point).toEqual([-33, 4, -150]);
    const bare = parseFractures(JSON.stringify([{ name: 'a', point: [1, 2, 3], normal: [1, 0, 0] }]), 'f.json');
    expect(bare).toEqual([{ name: 'a', point: [1, 2, 3], normal: [1, 0, 0] }]);
    expect(parseFractures(JSON.stringify({ fractures: [{ point: [0, 0, 0], normal: [0, 0, 1] }] }), 'f')[0].name).toBe(
      'fracture 1',
    );
    expect(() => parseFractures(JSON.stringify([{ point: [0, 0, 0], normal: [0, 0, 0] }]), 'f.json')).toThrow(
      /f\.json.*normal|normal/,
    );
    expect(() => parseFractures('{', 'f.json')).toThrow(/not JSON/);
  });

  it('reads a tolerance as MM,DEG and refuses nonsense', () => {
    expect(parseTolerance('1.5,3')).toEqual({ mm: 1.5, deg: 3 });
    expect(parseTolerance('1')).toEqual({ mm: 1, deg: 2 });
    expect(() => parseTolerance('0,2')).toThrow(/tolerance/);
    expect(() => parseTolerance('a,b')).toThrow(/tolerance/);
  });
  it('reads a transform bare, under movingToFixed or flat, and refuses a 3x4', () => {
    const rows = [
      [1, 0, 0, 5],
      [0, 1, 0, 6],
      [0, 0, 1, 7],
      [0, 0, 0, 1],
    ];
    for (const doc of [rows, { movingToFixed: rows }, { scanToPlan: rows.flat() }]) {
      const m = parseTransform(JSON.stringify(doc), 't.json');
      expect([m[3], m[7], m[11]]).toEqual([5, 6, 7]); // row-major: translation in the last column
    }
    expect(() => parseTransform(JSON.stringify(rows.slice(0, 3)), 't.json')).toThrow(/4x4/);
  });
});
