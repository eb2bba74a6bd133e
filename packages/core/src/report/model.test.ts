/**
 * The report model from small hand-made inputs (each figure written here, so the expected values are
 * the inputs themselves), and the plan slice image: the path lies where the plane's geometry puts it.
 */
import { describe, expect, it } from 'vitest';
import { UsageError } from '../errors.js';
import { parsePlan } from '../plan/model.js';
import { createVolume } from '../volume/volume.js';
import type { VerificationReport } from '../verify/verify.js';
import type { CementReport } from '../cement/cement.js';
import type { CarmView } from '../carm/views.js';
import { anglesText, buildProcedureReport } from './model.js';
import { planSliceImage } from './images.js';

const plan = parsePlan({
  schemaVersion: 1,
  volume: { file: 'ct.nii.gz' },
  paths: [
    { id: 's1', name: 'S1', kind: 'screw', diameterMm: 7.3, entry: [-80, 20, -170], target: [80, 20, -170] },
    {
      id: 'alar-left',
      name: 'Alar left',
      kind: 'trocar',
      diameterMm: 3.05,
      entry: [30, 60, -220],
      target: [30, 30, -180],
    },
  ],
});

const view = (p: number, s: number, reachable = true): CarmView => ({
  primaryDeg: p,
  secondaryDeg: s,
  isocenter: [0, 20, -170],
  reachable,
});

const verification = {
  schemaVersion: 1,
  kind: 'corridor-verification',
  tolerance: { mm: 2, deg: 2 },
  scanToPlan: null,
  structureSource: 'labels',
  metal: { thresholdHu: 2500, growHu: 1500, rejected: [] },
  paths: [
    {
      pathId: 's1',
      name: 'S1',
      kind: 'screw',
      diameterMm: 7.3,
      status: 'pass',
      instrument: null,
      deviation: {
        entryAt: [-80, 21, -170],
        entryOffsetMm: 1.25,
        tipOffsetMm: 0.75,
        angleDeg: 0.5,
        depthDifferenceMm: -0.5,
        lateralAtTargetMm: 0.7,
      },
      reasons: [],
    },
    {
      pathId: 'alar-left',
      name: 'Alar left',
      kind: 'trocar',
      diameterMm: 3.05,
      status: 'fail',
      instrument: null,
      deviation: null,
      reasons: ['tip 4.2 mm off (tolerance 2 mm)'],
    },
  ],
  unplanned: [],
  allPass: false,
  notes: [],
} as unknown as VerificationReport;

const cement = {
  schemaVersion: 1,
  kind: 'corridor-cement',
  warningMm: 3,
  thresholds: { minHu: 0, minRiseHu: 0, minComponentMl: 0, leakMinMl: 0 },
  structureSource: 'labels',
  verdict: 'stop',
  notes: [],
  scans: [
    {
      index: 0,
      source: 'c1.nii.gz',
      verdict: 'stop',
      reasons: [
        { verdict: 'stop', reason: '0.3 ml of cement in S2L', structure: 'foramen', name: 'S2L', at: [1, 2, 3] },
      ],
      totalMl: 4.25,
      sites: [
        {
          pathId: 'alar-left',
          name: 'Alar left',
          volumeMl: 4.25,
          growthMl: 4.25,
          voxelCount: 10,
          contrastHu: 1,
          components: 1,
        },
      ],
      unassignedMl: 0,
      leaks: [{ structure: 'foramen', name: 'S2L', volumeMl: 0.3, at: [1, 2, 3], site: 'alar-left' }],
      distances: [
        { structure: 'foramen', name: 'S1L', distanceMm: 6, at: [0, 0, 0], cementAt: [0, 0, 6], site: 'alar-left' },
        { structure: 'foramen', name: 'S2L', distanceMm: 0, at: [1, 2, 3], cementAt: [1, 2, 3], site: 'alar-left' },
        { structure: 'canal', name: 'spinal canal', distanceMm: null, at: null, cementAt: null, site: null },
      ],
      newMetal: [],
      notes: [],
    },
  ],
} as unknown as CementReport;

describe('buildProcedureReport', () => {
  const report = buildProcedureReport({
    plan,
    verification,
    cement,
    views: {
      carm: 'test',
      paths: [
        { id: 's1', name: 'S1', lengthMm: 160, bullseye: view(90, 0, false), progress: view(0, 0) },
        { id: 'alar-left', name: 'Alar left', lengthMm: 50, bullseye: view(-20, 35.25), progress: view(70, -5) },
      ],
    },
    patient: { name: 'Doe^Jane', id: 'P1' },
    generatedAt: '2026-01-02T03:04:05.000Z',
  });

  it('carries the planned and the achieved geometry of every path', () => {
    expect(report.paths.map((p) => p.id)).toEqual(['s1', 'alar-left']);
    expect(report.paths[0].lengthMm).toBe(160);
    expect(report.paths[0].direction).toEqual([1, 0, 0]);
    expect(report.paths[1].lengthMm).toBe(50);
    expect(report.paths[0].achieved).toMatchObject({ status: 'pass', entryOffsetMm: 1.25, tipOffsetMm: 0.75 });
    expect(report.paths[1].achieved).toMatchObject({ status: 'fail', reasons: ['tip 4.2 mm off (tolerance 2 mm)'] });
    expect(report.paths[1].views.map((v) => v.text)).toEqual(['RAO 20.0, CRAN 35.3', 'LAO 70.0, CAUD 5.0']);
    expect(report.patient).toEqual({ name: 'Doe^Jane', id: 'P1' });
    expect(report.planImage.file).toBe('ct.nii.gz');
  });

  it('keeps the nearest structure of each family and the cement volumes', () => {
    const s = report.cement?.scans[0];
    expect(s?.totalMl).toBe(4.25);
    expect(s?.nearest.map((n) => [n.structure, n.name, n.distanceMm])).toEqual([
      ['foramen', 'S2L', 0],
      ['canal', 'spinal canal', null],
    ]);
  });

  it('lists the alerts, STOP first: the failed path, the leak and the cement verdict, then the unreachable view', () => {
    expect(report.alerts.map((a) => a.severity)).toEqual(['stop', 'stop', 'stop', 'warning']);
    expect(report.alerts[0].text).toBe('Alar left FAIL: tip 4.2 mm off (tolerance 2 mm)');
    expect(report.alerts.some((a) => a.text === 'cement scan 1: 0.30 ml leaked into S2L from alar-left')).toBe(true);
    expect(report.alerts[3].text).toMatch(/^S1: the bull's-eye view \(LAO 90\.0, CRAN 0\.0\) is beyond/);
  });

  it('refuses reports of paths the plan does not have', () => {
    const foreign = { ...verification, paths: [{ ...verification.paths[0], pathId: 'l5' }] };
    expect(() => buildProcedureReport({ plan, verification: foreign, generatedAt: '' })).toThrow(UsageError);
    expect(() => buildProcedureReport({ plan, verification: foreign, generatedAt: '' })).toThrow(/"l5"/);
  });

  it('writes angles as the C-arm shows them', () => {
    expect(anglesText(-0.04, -12.34)).toBe('RAO 0.0, CAUD 12.3');
  });
});

describe('planSliceImage', () => {
  it('draws the path through the image centre, along the rows, from entry to target', () => {
    // A uniform 1 mm volume: only the overlay is coloured.
    const n = 64;
    const volume = createVolume({
      data: new Int16Array(n * n * n).fill(100),
      dims: [n, n, n],
      indexToPatient: Float64Array.from([1, 0, 0, -32, 0, 1, 0, -32, 0, 0, 1, -32, 0, 0, 0, 1]),
    });
    const path = { id: 'p', name: 'P', diameterMm: 2, entry: [-20, 0, 0] as const, target: [20, 0, 0] as const };
    const size = 101;
    const img = planSliceImage(volume, { ...path, entry: [...path.entry], target: [...path.target] }, { sizePx: size });
    // Field of view 1.3 x 40 + 30 = 82 mm over 101 pixels; the midpoint at the centre pixel (50, 50).
    const px = 82 / size;
    const green = (x: number, y: number) => {
      const o = 4 * (y * size + x);
      return img.rgba[o + 1] > 150 && img.rgba[o] < 120;
    };
    expect(green(50, 50)).toBe(true);
    // 15 mm toward the entry and toward the target: still on the line; 10 mm off it, not.
    expect(green(Math.round(50 - 15 / px), 50)).toBe(true);
    expect(green(Math.round(50 + 15 / px), 50)).toBe(true);
    expect(green(50, Math.round(50 + 10 / px))).toBe(false);
    // Beyond the target (u runs entry -> target), past the target cross: grey again.
    expect(green(Math.round(50 + 30 / px), 50)).toBe(false);
  });
});
