/**
 * A venous cement leak on the real 3 mm CT (../shared/data/abdomen-pelvis-ct), named by its
 * TotalSegmentator label. Truth is the test's: the class map TotalSegmentator publishes (67
 * iliac_vena_left, 63 inferior_vena_cava, 65 iliac_artery_left, 79 spinal_cord) and the cement the test
 * paints into the left iliac vein's voxels nearest the sacrum (its volume is the voxel count times the
 * voxel volume). Cement in a vein goes to the lungs: it must stop the injection as a leak into that vein,
 * not as an anonymous "outside bone".
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readNifti } from '../io/nifti.js';
import type { PlanPath } from '../plan/model.js';
import { sharedData } from '../test-helpers/data.js';
import { createVolume } from '../volume/volume.js';
import { verifyAnatomyFor } from '../verify/along.js';
import { analyzeCement } from './cement.js';

const ctFile = sharedData('abdomen-pelvis-ct', 'ct.nii.gz');
const labelFile = sharedData('abdomen-pelvis-ct', 'labels.nii.gz');

describe.skipIf(!existsSync(ctFile) || !existsSync(labelFile))('cement leaks into the vessels (real 3 mm CT)', () => {
  const ct = readNifti(new Uint8Array(readFileSync(ctFile)), ctFile).volume;
  const labels = readNifti(new Uint8Array(readFileSync(labelFile)), labelFile).volume;
  const anatomy = verifyAnatomyFor(labels);

  it("TotalSegmentator's labels carry the canal, the pelvic veins and arteries by family", () => {
    const family = (label: number) => anatomy.critical.find((c) => c.label === label);
    expect(family(79)).toEqual({ label: 79, structure: 'canal', name: 'spinal canal' });
    expect(family(67)).toEqual({ label: 67, structure: 'vein', name: 'left iliac vein' });
    expect(family(68)?.structure).toBe('vein');
    expect(family(63)).toEqual({ label: 63, structure: 'vein', name: 'inferior vena cava' });
    expect(family(65)).toEqual({ label: 65, structure: 'artery', name: 'left iliac artery' });
    expect(family(52)?.structure).toBe('artery');
    // The bone is not critical, and no label is both.
    for (const b of [25, 26, 77, 78]) expect(family(b)).toBeUndefined();
  });

  it('cement painted into the left iliac vein is a leak into that vein: STOP', () => {
    const { dims, indexToPatient: m } = labels;
    const at = (v: number): [number, number, number] => {
      const i = v % dims[0];
      const j = Math.floor(v / dims[0]) % dims[1];
      const k = Math.floor(v / (dims[0] * dims[1]));
      return [0, 1, 2].map((r) => m[4 * r] * i + m[4 * r + 1] * j + m[4 * r + 2] * k + m[4 * r + 3]) as [
        number,
        number,
        number,
      ];
    };
    // The sacrum's centre, and a trocar from the left ala towards it (the injection site the leak comes from).
    const c = [0, 0, 0];
    let n = 0;
    for (let v = 0; v < labels.data.length; v++)
      if (labels.data[v] === 25 || labels.data[v] === 26) {
        const p = at(v);
        for (let a = 0; a < 3; a++) c[a] += p[a];
        n++;
      }
    for (let a = 0; a < 3; a++) c[a] /= n;
    const plan: PlanPath[] = [
      {
        id: 'alar-left',
        name: 'Alar left',
        kind: 'trocar',
        diameterMm: 3.05,
        entry: [c[0] + 45, c[1] + 10, c[2]],
        target: [c[0] + 15, c[1], c[2]],
      },
    ];
    // 0.3 ml of cement in the vein's voxels nearest the sacrum's centre (3 mm voxels: 0.027 ml each).
    const vein: { v: number; d: number }[] = [];
    for (let v = 0; v < labels.data.length; v++)
      if (labels.data[v] === 67) {
        const p = at(v);
        vein.push({ v, d: Math.hypot(p[0] - c[0], p[1] - c[1], p[2] - c[2]) });
      }
    vein.sort((a, b) => a.d - b.d);
    const voxelMl = (3 * 3 * 3) / 1000;
    const count = Math.round(0.3 / voxelMl);
    expect(vein.length).toBeGreaterThan(count);
    const data = Int16Array.from(ct.data);
    for (let q = 0; q < count; q++) data[vein[q].v] = 2400;
    const scan = createVolume({ data, dims: ct.dims, indexToPatient: ct.indexToPatient, meta: ct.meta });
    const r = analyzeCement({ plan, baseline: ct, scans: [scan], labels: { volume: labels, anatomy } });
    const s = r.scans[0];
    console.log(
      `vein leak: ${s.leaks.map((l) => `${l.volumeMl} ml in ${l.name} (${l.structure})`).join('; ')} of ` +
        `${(count * voxelMl).toFixed(3)} ml painted ${vein[0].d.toFixed(0)}-${vein[count - 1].d.toFixed(0)} mm ` +
        `from the sacrum's centre; verdict ${s.verdict}`,
    );
    expect(s.verdict).toBe('stop');
    expect(s.leaks.map((l) => [l.structure, l.name])).toEqual([['vein', 'left iliac vein']]);
    expect(Math.abs(s.leaks[0].volumeMl - count * voxelMl) / (count * voxelMl)).toBeLessThan(0.15);
    expect(r.notes.some((x) => x.startsWith('no vein labels'))).toBe(false);
  });
});
