/**
 * Planning benchmarks:
 * - the exact Euclidean distance transform of a 512 x 430 x 480 mask (anisotropic spacing) beside
 *   SciPy's `ndimage.distance_transform_edt` on the same mask, in the same run: time ratio and the largest
 *   difference over every voxel (goal: identical to 1e-6 mm, at least 5 times faster);
 * - automatic planning of S1, S2 and both alar paths on the phantom at its default voxel size (goal < 3 s)
 *   and on the real CT's labels, distance transforms included;
 * - planning from intensities alone on the real 1 mm CT (Visible Human pelvis), with the seeds and bone
 *   mask presets that core's vhf.test.ts checks against the CT: bone masks and distance transforms included.
 * SciPy comes from Debian's python3-scipy (bench/setup-scipy.sh installs it when absent), so the script
 * runs on Debian's own interpreter, /usr/bin/python3: another python3 first on PATH (pyenv) lacks it.
 * Without SciPy its rows are reported as skipped; the rest of the suite still runs.
 */
import { execFile } from 'node:child_process';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  PHANTOM_DEFAULT_VOXEL_MM,
  boneMaskPresetOptions,
  corridorMapFromIntensity,
  distanceTransform,
  SACRAL_PATH_IDS,
  generatePhantom,
  openPlanningCase,
  planSacralPaths,
  parseToolSpec,
  phantomAnatomy,
  planAlar,
  planTransSacral,
  totalSegmentatorAnatomy,
  type LabelAnatomy,
  type Point3,
  type Volume,
} from '@corridor/core';
import { timeMedian, type BenchRow } from './types.js';
import { sharedDataDir } from '../io/shared-data.js';
import { loadPath } from '../io/load.js';

const run = promisify(execFile);

/** Debian's interpreter, where python3-scipy installs. */
const DEBIAN_PYTHON = '/usr/bin/python3';

/** A CT-sized mask like a bone segmentation: a thick ellipsoidal shell with pin-holes, 25% foreground. */
export function benchMask(nx = 512, ny = 430, nz = 480): Uint8Array {
  const mask = new Uint8Array(nx * ny * nz);
  for (let k = 0, o = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++, o++) {
        const x = (i - nx / 2) / (0.39 * nx),
          y = (j - ny / 2) / (0.37 * ny),
          z = (k - nz / 2) / (0.42 * nz);
        const r = x * x + y * y + z * z;
        const h = ((i * 73856093) ^ (j * 19349663) ^ (k * 83492791)) >>> 0;
        mask[o] = r < 1 && r > 0.05 && h % 1000 > 2 ? 1 : 0;
      }
    }
  }
  return mask;
}

const SCIPY = `
import sys, time, numpy as np
from scipy import ndimage
nx, ny, nz = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
sp = [float(v) for v in sys.argv[5:8]]
m = np.fromfile(sys.argv[1] + '/mask.u8', dtype=np.uint8).reshape(nz, ny, nx)
t = time.perf_counter()
d = ndimage.distance_transform_edt(m, sampling=(sp[2], sp[1], sp[0]))
print(time.perf_counter() - t)
d.astype(np.float64).tofile(sys.argv[1] + '/scipy.f64')
`;

export async function edtVersusScipy(): Promise<BenchRow[]> {
  const dims = [512, 430, 480] as const;
  const spacing = [0.78, 0.82, 1.25];
  const mask = benchMask(...dims);
  const ours = await timeMedian(3, () => distanceTransform(mask, dims, spacing));
  const rows: BenchRow[] = [
    {
      name: 'EDT 512x430x480, corridor (FH, float64, 1 thread)',
      value: ours.ms / 1000,
      unit: 's',
      notes: `spacing ${spacing.join(' x ')} mm, median of 3`,
    },
  ];
  const dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-edt-'));
  try {
    await writeFile(path.join(dir, 'mask.u8'), mask);
    const script = path.join(dir, 'edt.py');
    await writeFile(script, SCIPY);
    const skipped = (why: string) =>
      rows.push({
        name: 'EDT 512x430x480, SciPy distance_transform_edt',
        value: NaN,
        unit: 's',
        notes: `skipped: ${why} (bench/setup-scipy.sh installs python3-scipy)`,
      });
    try {
      await access(DEBIAN_PYTHON);
      await run(DEBIAN_PYTHON, ['-c', 'import scipy.ndimage']);
    } catch {
      skipped(`no SciPy for ${DEBIAN_PYTHON}`);
      return rows;
    }
    let scipyS: number;
    try {
      const { stdout } = await run(DEBIAN_PYTHON, [script, dir, ...dims.map(String), ...spacing.map(String)], {
        maxBuffer: 1 << 20,
      });
      scipyS = Number(stdout.trim());
    } catch (err) {
      skipped(`SciPy failed: ${(err as Error).message.split('\n')[0]}`);
      return rows;
    }
    const buf = await readFile(path.join(dir, 'scipy.f64'));
    const ref = new Float64Array(buf.buffer, buf.byteOffset, buf.byteLength / 8);
    const d = ours.result;
    let maxDiff = 0;
    for (let i = 0; i < d.length; i++) {
      const e = Math.abs(d[i] - ref[i]);
      if (e > maxDiff) maxDiff = e;
    }
    rows.push({
      name: 'EDT 512x430x480, SciPy distance_transform_edt',
      value: scipyS,
      unit: 's',
      notes: 'same mask and spacing, one run',
    });
    rows.push({ name: 'EDT speed-up over SciPy', value: scipyS / (ours.ms / 1000), unit: 'x', notes: 'goal >= 5' });
    rows.push({
      name: 'EDT largest difference from SciPy',
      value: maxDiff,
      unit: 'mm',
      notes: `over all ${d.length} voxels; goal <= 1e-6`,
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return rows;
}

/**
 * The four automatic paths on one segmentation, as every front end plans them (core's planSacralPaths):
 * sacral region, corridor map (distance transforms), seeds, the four optimizations and their analyses.
 */
function planFour(ct: Volume, labels: Volume, anatomy: LabelAnatomy) {
  return planSacralPaths(openPlanningCase({ ct, labels, anatomy }), { paths: SACRAL_PATH_IDS }).paths;
}

async function planPhantom(): Promise<BenchRow[]> {
  const ph = generatePhantom({ voxelMm: PHANTOM_DEFAULT_VOXEL_MM });
  const anatomy = phantomAnatomy(ph.truth);
  const r = await timeMedian(3, () => planFour(ph.ct, ph.labels, anatomy));
  const fits = r.result
    .map(
      (x) => `${x.path.id} ${x.analysis.fits ? 'fits' : 'no fit'} (${x.analysis.minClearanceMm?.toFixed(1) ?? '-'} mm)`,
    )
    .join(', ');
  return [
    {
      name: `Auto-plan S1, S2, 2 alar (phantom fracture, ${PHANTOM_DEFAULT_VOXEL_MM} mm)`,
      value: r.ms / 1000,
      unit: 's',
      notes:
        `${ph.labels.dims.join('x')} voxels; sacral region, distance transforms, seeds and the four optimizations ` +
        `included, median of 3; goal < 3 s; ${fits}`,
    },
  ];
}

async function planRealCt(): Promise<BenchRow[]> {
  const file = path.join(sharedDataDir(), 'abdomen-pelvis-ct', 'labels.nii.gz');
  const labels = (await loadPath(file)).series[0].volume;
  const ct = (await loadPath(path.join(path.dirname(file), 'ct.nii.gz'))).series[0].volume;
  const r = await timeMedian(3, () => planFour(ct, labels, totalSegmentatorAnatomy()));
  return [
    {
      name: 'Auto-plan S1, S2, 2 alar (real CT labels, 3 mm)',
      value: r.ms / 1000,
      unit: 's',
      notes: `${labels.dims.join('x')} voxels, distance transforms included, median of 3`,
    },
  ];
}

/** The seeds a user clicks on the Visible Human pelvis (core's vhf.test.ts explains each). */
const VHF_SEEDS: Record<'s1' | 's2' | 'alarLeft' | 'alarRight', Point3> = {
  s1: [246, 284, 982],
  s2: [246, 316, 961],
  alarLeft: [300, 292, 972],
  alarRight: [200, 300, 966],
};

async function planFromIntensities(): Promise<BenchRow[]> {
  const name = 'Auto-plan S1, S2, 2 alar from intensities (real CT, 1 mm)';
  const file = path.join(sharedDataDir(), 'vhf-pelvis-ct', 'ct.nii.gz');
  try {
    await access(file);
  } catch {
    return [{ name, value: NaN, unit: 's', notes: `skipped: ${file} is missing` }];
  }
  const { series } = await loadPath(file);
  const ct = series[0].volume;
  const screw = parseToolSpec('screw:7.3'),
    trocar = parseToolSpec('trocar:11G');
  const s = VHF_SEEDS,
    midlineX = s.s1[0];
  const r = await timeMedian(3, () => {
    // Two maps, as a user plans this sacrum: S1 and the alae on "demineralized", S2 on "demineralized-faint-cortex".
    const map = corridorMapFromIntensity(ct, {
      seeds: [s.s1, s.alarLeft, s.alarRight],
      ...boneMaskPresetOptions('demineralized'),
    });
    const mapS2 = corridorMapFromIntensity(ct, {
      seeds: [s.s2],
      ...boneMaskPresetOptions('demineralized-faint-cortex'),
    });
    return [
      planTransSacral(map, { id: 's1', tool: screw, seed: s.s1, midlineX }),
      planTransSacral(mapS2, { id: 's2', tool: screw, seed: s.s2, midlineX }),
      planAlar(map, { id: 'alar-left', tool: trocar, side: 'left', seed: s.alarLeft }),
      planAlar(map, { id: 'alar-right', tool: trocar, side: 'right', seed: s.alarRight }),
    ];
  });
  const fits = r.result
    .map(
      (x) => `${x.path.id} ${x.analysis.fits ? 'fits' : 'no fit'} (${x.analysis.minClearanceMm?.toFixed(1) ?? '-'} mm)`,
    )
    .join(', ');
  return [
    {
      name,
      value: r.ms / 1000,
      unit: 's',
      notes:
        `${ct.dims.join('x')} voxels; two bone masks (crops of 240 mm about the seeds), distance transforms ` +
        `and the four optimizations included, median of 3; ${fits}`,
    },
  ];
}

export async function benchPlan(): Promise<BenchRow[]> {
  return [
    ...(await planPhantom()),
    ...(await planRealCt()),
    ...(await planFromIntensities()),
    ...(await edtVersusScipy()),
  ];
}
