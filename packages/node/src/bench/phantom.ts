/**
 * Phantom benchmark: generation of the default case (fracture, plan stage, default voxel, noise and
 * blur on) in-process, median of 3 after a warm-up. Goal: under 10 s on the 2-core reference machine.
 */
import { generatePhantom, PHANTOM_DEFAULT_VOXEL_MM } from '@corridor/core';
import { timeMedian, type BenchRow } from './types.js';

export async function benchPhantom(): Promise<BenchRow[]> {
  const { ms, result } = await timeMedian(3, () => generatePhantom({}));
  const [nx, ny, nz] = result.ct.dims;
  const stage = await timeMedian(1, () => generatePhantom({ stage: 'cement', leak: 'S1L' }));
  return [
    {
      name: `Phantom generation, default (fracture, plan, ${PHANTOM_DEFAULT_VOXEL_MM} mm)`,
      value: ms / 1000,
      unit: 's',
      notes:
        `${nx} x ${ny} x ${nz} = ${((nx * ny * nz) / 1e6).toFixed(1)} M voxels, ` +
        'noise + blur, truth included; median of 3; goal < 10 s',
    },
    {
      name: `Phantom generation, cement stage with a leak (${PHANTOM_DEFAULT_VOXEL_MM} mm)`,
      value: stage.ms / 1000,
      unit: 's',
      notes: 'instruments, two 4 ml deposits and a 0.2 ml leak sized on a fine grid; 1 run after a warm-up',
    },
  ];
}
