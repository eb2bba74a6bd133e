/**
 * The workstation's verification step (the case worker's Procedure) in Node: with the frame set to
 * 'auto', a scan whose frame of reference differs from the planning scan's is registered first (core's
 * registerRigid) and the report says so; one in the same frame is not. The scan is the phantom's pins
 * stage moved by the test's own rigid motion (5 degrees about z, 10 mm); the figures must match
 * truth.json's instruments within 0.5 mm and 0.5 degrees either way.
 */
import { describe, expect, it } from 'vitest';
import {
  createVolume,
  generatePhantom,
  mat4FromRows,
  openPlanningCase,
  resampleOntoFixed,
  type PlanPath,
  type Volume,
} from '@corridor/core';
import { Procedure, verifyAnatomyFor } from './procedure.js';

const VOXEL_MM = 1.5;

describe('Procedure.verify (frame auto)', () => {
  it('registers a scan from another frame of reference first, and not one from the same', () => {
    const plan = generatePhantom({ voxelMm: VOXEL_MM });
    const pins = generatePhantom({ voxelMm: VOXEL_MM, stage: 'pins' });
    const t = pins.truth;
    const withFor = (v: Volume, uid: string) =>
      createVolume({
        data: v.data,
        dims: v.dims,
        indexToPatient: v.indexToPatient,
        meta: { ...v.meta, frameOfReferenceUid: uid },
      });
    const planning = openPlanningCase({ ct: withFor(plan.ct, '1.2.3.plan'), labels: plan.labels });
    const p = new Procedure(planning, verifyAnatomyFor(plan.labels, plan.truth.labels));
    const path4 = (id: string, kind: PlanPath['kind'], d: number, entry: number[], target: number[]): PlanPath => ({
      id,
      name: id,
      kind,
      diameterMm: d,
      entry: [entry[0], entry[1], entry[2]],
      target: [target[0], target[1], target[2]],
    });
    const paths = [
      path4('s1', 'guidepin', 2.8, t.corridors.S1.entry, t.corridors.S1.exit),
      path4('s2', 'guidepin', 2.8, t.corridors.S2.entry, t.corridors.S2.exit),
      path4('alar-left', 'trocar', 3.05, t.alarPaths.left.entry, t.alarPaths.left.target),
      path4('alar-right', 'trocar', 3.05, t.alarPaths.right.entry, t.alarPaths.right.target),
    ];
    const ids: Record<string, string> = {
      'S1 guidepin': 's1',
      'S2 guidepin': 's2',
      'Alar trocar left': 'alar-left',
      'Alar trocar right': 'alar-right',
    };
    const check = (r: ReturnType<Procedure['verify']>['report']) => {
      for (const ins of t.instruments ?? []) {
        const d = r.paths.find((x) => x.pathId === ids[ins.name])?.deviation;
        expect(d, ins.name).toBeTruthy();
        expect(Math.abs((d?.entryOffsetMm ?? NaN) - ins.entryOffsetMm), ins.name).toBeLessThan(0.5);
        expect(Math.abs((d?.tipOffsetMm ?? NaN) - ins.tipOffsetMm), ins.name).toBeLessThan(0.5);
        expect(Math.abs((d?.angleDeg ?? NaN) - ins.angleDeg), ins.name).toBeLessThan(0.5);
      }
    };
    const opts = { tolerance: { mm: 2, deg: 2 }, frame: 'auto' as const };
    const quiet = () => undefined;

    // The same frame of reference: used as it is.
    p.setScan('verification', withFor(pins.ct, '1.2.3.plan'));
    const same = p.verify(paths, opts, quiet);
    expect(same.registration).toBeNull();
    expect(same.report.scanToPlan).toBeNull();
    check(same.report);

    // Another scanner's frame: the anatomy moved by x -> Rz(5 deg) x + (10, 0, 0) about the S1 corridor's middle.
    const c = t.corridors.S1.entry.map((v, a) => (v + t.corridors.S1.exit[a]) / 2);
    const a = (5 * Math.PI) / 180;
    const R = [Math.cos(a), -Math.sin(a), 0, Math.sin(a), Math.cos(a), 0, 0, 0, 1];
    const row = (r: number) => [
      R[3 * r],
      R[3 * r + 1],
      R[3 * r + 2],
      c[r] - (R[3 * r] * c[0] + R[3 * r + 1] * c[1] + R[3 * r + 2] * c[2]) + (r === 0 ? 10 : 0),
    ];
    const planToScan = mat4FromRows([...row(0), ...row(1), ...row(2), 0, 0, 0, 1]);
    const moved = resampleOntoFixed(pins.ct, pins.ct, planToScan, { outside: -3024 });
    p.setScan('verification', withFor(moved, '1.2.3.other'));
    const other = p.verify(paths, opts, quiet);
    expect(other.registration?.verdict.status).toBe('ok');
    expect(other.frameNote).toMatch(/registered to the planning scan/);
    expect(other.report.scanToPlan).not.toBeNull();
    check(other.report);
  }, 120_000);
});
