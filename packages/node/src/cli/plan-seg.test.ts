/**
 * `corridor plan --labels SEG.dcm` (issue 14): a DICOM SEG is read as the labels on the CT's grid. The SEG
 * is written here (core's writeDicomSeg) from the very labels of a NIfTI segmentation, so the paths planned
 * with it must equal, to the last digit, the paths planned with the NIfTI labels: that plan is the
 * independent answer. A SEG on another grid is refused with a GeometryError naming both grids.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PHANTOM_LABELS, createVolume, readNifti, writeDicomSeg, type Volume } from '@corridor/core';
import { runCli } from '../test-helpers/run-cli.js';
import { sharedDataDir } from '../io/shared-data.js';

type P3 = [number, number, number];
interface PlanFile {
  paths: { id: string; entry: P3; target: P3; diameterMm: number }[];
}

async function readLabels(file: string): Promise<Volume> {
  return readNifti(new Uint8Array(await readFile(file)), file).volume;
}

function valuesPresent(v: Volume): number[] {
  const seen = new Set<number>();
  for (const x of v.data) if (x > 0) seen.add(x);
  return [...seen].sort((a, b) => a - b);
}

async function planWith(ct: string, labels: string, out: string, paths: string, ...extra: string[]) {
  const r = await runCli('plan', ct, '--labels', labels, '--auto', paths, '--out', out, ...extra);
  return { ...r, plan: r.code === 0 ? (JSON.parse(await readFile(out, 'utf8')) as PlanFile) : null };
}

function geometry(p: PlanFile | null) {
  return p?.paths.map((x) => ({ id: x.id, entry: x.entry, target: x.target, diameterMm: x.diameterMm }));
}

describe('corridor plan --labels with a DICOM SEG', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-seg-'));
    const r = await runCli('phantom', '--out', dir, '--voxel', '2', '--quiet');
    expect(r.code, r.err).toBe(0);
  }, 120_000);
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('plans the phantom with a SEG of its labels (segment number = label id) exactly as with the NIfTI', async () => {
    const ct = path.join(dir, 'ct.nii.gz');
    const labels = await readLabels(path.join(dir, 'labels.nii.gz'));
    const names = new Map(Object.entries(PHANTOM_LABELS).map(([k, v]) => [v as number, k]));
    const present = valuesPresent(labels);
    expect(present).toContain(PHANTOM_LABELS.canal);
    const seg = writeDicomSeg(labels, {
      segments: present.map((v) => ({ number: v, label: names.get(v) ?? `label ${v}`, values: [v] })),
    });
    const segFile = path.join(dir, 'labels-seg.dcm');
    await writeFile(segFile, seg);
    const all = 's1,s2,alar-left,alar-right';
    const fromNifti = await planWith(ct, path.join(dir, 'labels.nii.gz'), path.join(dir, 'plan-nii.json'), all);
    expect(fromNifti.code, fromNifti.err).toBe(0);
    const fromSeg = await planWith(ct, segFile, path.join(dir, 'plan-seg.json'), all);
    expect(fromSeg.code, fromSeg.err).toBe(0);
    // Four paths planned, and the SEG's plan is the NIfTI's, number for number.
    expect(fromNifti.plan?.paths.map((p) => p.id)).toEqual(['s1', 's2', 'alar-left', 'alar-right']);
    expect(geometry(fromSeg.plan)).toEqual(geometry(fromNifti.plan));
    // A folder holding the SEG reads the same.
    const folder = path.join(dir, 'segdir');
    await rm(folder, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(folder));
    await writeFile(path.join(folder, 'SEG0001'), seg);
    const fromFolder = await planWith(ct, folder, path.join(dir, 'plan-folder.json'), 's1', '--anatomy', 'phantom');
    expect(fromFolder.code, fromFolder.err).toBe(0);
    expect(geometry(fromFolder.plan)).toEqual(geometry(fromNifti.plan)?.filter((p) => p.id === 's1'));
  }, 300_000);

  it('refuses a SEG on another grid with a GeometryError that names both grids', async () => {
    const labels = await readLabels(path.join(dir, 'labels.nii.gz'));
    // The same labels, one column narrower and with 1.1 x the pixel spacing: not the CT's grid.
    const m = Float64Array.from(labels.indexToPatient);
    for (const r of [0, 1, 2]) for (const c of [0, 1]) m[4 * r + c] *= 1.1;
    const other = createVolume({ data: labels.data, dims: labels.dims, indexToPatient: m, meta: { source: 'x' } });
    const segFile = path.join(dir, 'other-grid-seg.dcm');
    await writeFile(segFile, writeDicomSeg(other, { segments: [{ number: 1, label: 'sacrum', values: [10, 11] }] }));
    const r = await planWith(path.join(dir, 'ct.nii.gz'), segFile, path.join(dir, 'plan-x.json'), 's1');
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/GeometryError/);
    expect(r.err).toContain('other-grid-seg.dcm');
    expect(r.err).toContain("the SEG's grid");
    expect(r.err).toContain('ct.nii.gz');
  }, 120_000);
});

describe('corridor plan --labels with a TotalSegmentator-style SEG (abdomen-pelvis-ct)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-seg-ts-'));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('maps segments by TotalSegmentator name (numbered 1..n) and plans S1 as with the NIfTI labels', async () => {
    const data = path.join(sharedDataDir(), 'abdomen-pelvis-ct');
    const labelsFile = path.join(data, 'labels.nii.gz');
    const labels = await readLabels(labelsFile);
    // Segments numbered in another order than the class ids, as TotalSegmentator's SEG output does.
    const classes: [string, number][] = [
      ['hip_right', 78],
      ['spinal_cord', 79],
      ['sacrum', 25],
      ['vertebrae_S1', 26],
      ['hip_left', 77],
      ['liver', 5],
    ];
    const segFile = path.join(dir, 'ts-seg.dcm');
    await writeFile(
      segFile,
      writeDicomSeg(labels, {
        segments: classes.map(([label, v], n) => ({ number: n + 1, label, values: [v] })),
      }),
    );
    const ct = path.join(data, 'ct.nii.gz');
    const fromNifti = await planWith(ct, labelsFile, path.join(dir, 'plan-nii.json'), 's1');
    expect(fromNifti.code, fromNifti.err).toBe(0);
    const fromSeg = await planWith(ct, segFile, path.join(dir, 'plan-seg.json'), 's1');
    expect(fromSeg.code, fromSeg.err).toBe(0);
    expect(fromSeg.err).toContain('sacrum (segment 3) = 25');
    expect(fromSeg.err).toContain('liver (segment 6)'); // left out: the planner does not use it
    expect(geometry(fromSeg.plan)).toEqual(geometry(fromNifti.plan));
  }, 300_000);
});
