import { describe, expect, it } from 'vitest';
import { defined } from '../test-helpers/defined.js';
import { mergePlanPaths, parsePlan, planToJson, PlanError, type Plan } from './model.js';
import { planToSlicerMarkups, slicerMarkupsToPlan } from './markups.js';
import { lengthToOrder, parseToolSpec, steppedCatalogue } from './tools.js';
import { indexToPatientFrom } from '../volume/volume.js';

const plan: Plan = {
  schemaVersion: 1,
  volume: {
    file: 'ct.nii.gz',
    indexToPatient: indexToPatientFrom(
      [177.96, -11.32, 94.3],
      [3, 3, 3],
      [
        [-1, 0, 0],
        [0, -1, 0],
        [0, 0, 1],
      ],
    ),
  },
  paths: [
    {
      id: 's1',
      name: 'S1 trans-sacral',
      kind: 'screw',
      diameterMm: 7.3,
      entry: [-71.123456789, 12.5, 1003.25],
      target: [70.987654321, 10.1, 1001.75],
    },
    {
      id: 'alar-left',
      name: 'Alar left',
      kind: 'trocar',
      diameterMm: 3.048,
      entry: [30.000001, 40.5, 960.2],
      target: [35.1, -5.3, 1000.9],
    },
  ],
};

describe('plan.json', () => {
  it('merges paths into a plan: same id replaced in place, new ids appended; another geometry refused', () => {
    const s1b = { ...plan.paths[0], entry: [-70, 12, 1003] as [number, number, number] };
    const s2 = {
      id: 's2',
      name: 'S2 trans-sacral',
      kind: 'screw' as const,
      diameterMm: 7.3,
      entry: [-60, 30, 980] as [number, number, number],
      target: [60, 30, 980] as [number, number, number],
    };
    const m = mergePlanPaths(plan, [s2, s1b], plan.volume.indexToPatient, 'p.json');
    expect(m.paths.map((p) => p.id)).toEqual(['s1', 'alar-left', 's2']);
    expect(m.paths[0].entry).toEqual([-70, 12, 1003]);
    expect(m.paths[1]).toEqual(plan.paths[1]);
    expect(plan.paths[0].entry[0]).toBe(-71.123456789); // the base plan is not modified
    const shifted = Float64Array.from(defined(plan.volume.indexToPatient, "the plan's indexToPatient"));
    shifted[3] += 0.5;
    expect(() => mergePlanPaths(plan, [s2], shifted, 'p.json')).toThrow(/p\.json: .*another geometry/);
    expect(
      mergePlanPaths({ ...plan, volume: { file: 'ct.nii.gz' } }, [s2], shifted, 'p.json').volume.indexToPatient,
    ).toEqual(shifted);
  });

  it('round-trips through JSON text unchanged', () => {
    const back = parsePlan(JSON.stringify(planToJson(plan)), 'p.json');
    expect(back.paths).toEqual(plan.paths);
    const written = defined(plan.volume.indexToPatient, "the plan's indexToPatient");
    expect([...defined(back.volume.indexToPatient, "the read plan's indexToPatient")]).toEqual([...written]);
    expect(back.volume.file).toBe('ct.nii.gz');
  });

  it('rejects bad plans with a PlanError naming the file and the problem', () => {
    const bad = (p: unknown) => () => parsePlan(p, 'bad.json');
    expect(bad('{')).toThrow(PlanError);
    expect(bad('{')).toThrow(/bad\.json: not valid JSON/);
    expect(bad({ paths: [] })).toThrow(/schemaVersion/);
    expect(bad({ schemaVersion: 99, paths: [] })).toThrow(/newer/);
    const path = planToJson(plan).paths as Record<string, unknown>[];
    expect(bad({ schemaVersion: 1, paths: [{ ...path[0], kind: 'drill' }] })).toThrow(/kind must be one of/);
    expect(bad({ schemaVersion: 1, paths: [{ ...path[0], entry: [1, 2] }] })).toThrow(/entry must be three/);
    expect(bad({ schemaVersion: 1, paths: [{ ...path[0], diameterMm: -1 }] })).toThrow(/diameterMm/);
    expect(bad({ schemaVersion: 1, paths: [path[0], path[0]] })).toThrow(/used twice/);
    expect(bad({ schemaVersion: 1, paths: [{ ...path[0], target: path[0].entry }] })).toThrow(/coincide/);
    expect(bad({ schemaVersion: 1, volume: { indexToPatient: [[1, 0, 0]] }, paths: [] })).toThrow(/indexToPatient/);
  });
});

describe('3D Slicer markups (.mrk.json)', () => {
  it('a plan survives export and import unchanged (to 1e-6 mm)', () => {
    const text = JSON.stringify(planToSlicerMarkups(plan));
    const { plan: back, skipped } = slicerMarkupsToPlan(text, 'plan.mrk.json', { volume: plan.volume });
    expect(skipped).toEqual([]);
    expect(back.paths.length).toBe(2);
    back.paths.forEach((p, i) => {
      const q = plan.paths[i];
      expect([p.id, p.name, p.kind, p.diameterMm]).toEqual([q.id, q.name, q.kind, q.diameterMm]);
      for (let a = 0; a < 3; a++) {
        expect(Math.abs(p.entry[a] - q.entry[a])).toBeLessThan(1e-6);
        expect(Math.abs(p.target[a] - q.target[a])).toBeLessThan(1e-6);
      }
    });
  });

  it('writes Line markups in LPS with two control points, as the Slicer schema defines', () => {
    const doc = planToSlicerMarkups(plan) as { '@schema': string; markups: Record<string, unknown>[] };
    expect(doc['@schema']).toMatch(/markups-schema-v1\.0\.3\.json#$/);
    const m = doc.markups[0] as { type: string; coordinateSystem: string; controlPoints: { position: number[] }[] };
    expect(m.type).toBe('Line');
    expect(m.coordinateSystem).toBe('LPS');
    expect(m.controlPoints.map((c) => c.position)).toEqual([plan.paths[0].entry, plan.paths[0].target]);
  });

  it('reads a line saved by Slicer in RAS (x and y negated) and keeps tool data encoded in the name', () => {
    // What Slicer writes after a save: its own properties only (our "corridor" object dropped), RAS.
    const slicerDoc = {
      '@schema':
        'https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/Resources/Schema/' +
        'markups-schema-v1.0.3.json#',
      markups: [
        {
          type: 'Line',
          coordinateSystem: 'RAS',
          coordinateUnits: 'mm',
          name: 'S2 trans-sacral [s2, screw, 7.3 mm]',
          controlPoints: [
            { id: '1', label: 's2-entry', position: [71.5, -12.25, 980.0], positionStatus: 'defined' },
            { id: '2', label: 's2-target', position: [-70.5, -14.0, 979.5], positionStatus: 'defined' },
          ],
        },
        { type: 'Fiducial', name: 'F', controlPoints: [{ position: [0, 0, 0] }] },
        { type: 'Line', name: 'my line', controlPoints: [{ position: [1, 2, 3] }, { position: [4, 5, 6] }] },
      ],
    };
    const { plan: p, skipped } = slicerMarkupsToPlan(slicerDoc, 'slicer.mrk.json');
    expect(skipped).toEqual(['F (Fiducial)']);
    expect(p.paths[0]).toEqual({
      id: 's2',
      name: 'S2 trans-sacral',
      kind: 'screw',
      diameterMm: 7.3,
      entry: [-71.5, 12.25, 980],
      target: [70.5, 14, 979.5],
    });
    // A line drawn in Slicer: LPS by default, id from its name, default kind and diameter.
    expect(p.paths[1]).toMatchObject({
      id: 'my-line',
      kind: 'guidepin',
      diameterMm: 2.8,
      entry: [1, 2, 3],
      target: [4, 5, 6],
    });
  });

  it('rejects files that are not markups, other coordinate systems, and lines without two points', () => {
    expect(() => slicerMarkupsToPlan({ foo: 1 }, 'x.json')).toThrow(/x\.json: not a Slicer markups file/);
    expect(() =>
      slicerMarkupsToPlan({ markups: [{ type: 'Line', coordinateSystem: 'XYZ', controlPoints: [] }] }, 'x'),
    ).toThrow(/neither LPS nor RAS/);
    expect(() =>
      slicerMarkupsToPlan({ markups: [{ type: 'Line', controlPoints: [{ position: [0, 0, 0] }] }] }, 'x'),
    ).toThrow(/exactly two/);
  });
});

describe('tools and lengths', () => {
  it('parses tool specifications, sizes in mm and needle gauges', () => {
    expect(parseToolSpec('screw:7.3')).toEqual({ kind: 'screw', diameterMm: 7.3 });
    expect(parseToolSpec('screw')).toEqual({ kind: 'screw', diameterMm: 7.3 });
    // 11 gauge: 0.120 inch = 3.048 mm outer diameter.
    expect(parseToolSpec('trocar:11G').diameterMm).toBeCloseTo(0.12 * 25.4, 6);
    expect(parseToolSpec('guidepin:2.8mm')).toEqual({ kind: 'guidepin', diameterMm: 2.8 });
    expect(() => parseToolSpec('drill:3')).toThrow(/not one of/);
    expect(() => parseToolSpec('needle:9G')).toThrow(/gauge/);
  });

  it('rounds the bone-to-bone length down to the catalogue', () => {
    expect(lengthToOrder(142.7)).toBe(140);
    expect(lengthToOrder(145)).toBe(145);
    expect(lengthToOrder(144.99)).toBe(140);
    expect(lengthToOrder(10)).toBe(20);
    expect(lengthToOrder(101, steppedCatalogue(10, 60, 160))).toBe(100);
  });
});
