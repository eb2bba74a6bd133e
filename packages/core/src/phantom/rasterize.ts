/**
 * Voxelization: each voxel centre of the grid is classified once by the analytic model
 * (PelvisModel.classifyWith) and written as its label id and nominal CT number. Exists because this is
 * the generator's hot loop: it walks the grid row by row in design coordinates (one add per voxel), fills
 * rows above the world-flat table top without classifying, and hands the model only the instruments and
 * deposits whose bounds meet the row. Limits: point sampling at voxel centres (no partial volume; the
 * blur in ct.ts stands in for it); the table is modelled only as flat layers under the patient.
 */
import { T, type Deposit, type PelvisModel, type Rod } from './anatomy.js';
import { LABEL_OF_TISSUE } from './labels.js';
import { throwIfCancelled } from './options.js';
import { OFFSET, TABLE_TOP_Y, type PhantomGrid, type Placement } from './placement.js';
import type { PhantomProgress } from './types.js';

/** Label ids and nominal HU (before noise and blur) of every voxel, i fastest. */
export function rasterize(
  model: PelvisModel,
  grid: PhantomGrid,
  place: Placement,
  huOf: Float32Array,
  onProgress?: (p: PhantomProgress) => void,
  signal?: AbortSignal,
): { labels: Uint8Array; hu: Float32Array } {
  const { origin, n, voxelMm: v } = grid;
  const Rm = place.R;
  const [nx, ny, nz] = grid.dims;
  const labels = new Uint8Array(n);
  const hu = new Float32Array(n);
  // Design coordinates of a world point: q = R^T (p - OFFSET); along i only p.x changes.
  const dqx = Rm[0] * v,
    dqy = Rm[1] * v,
    dqz = Rm[2] * v;
  const tableTop = OFFSET[1] + TABLE_TOP_Y;
  const rowRods: Rod[] = model.rods.slice();
  const rowDeposits: Deposit[] = model.deposits.slice();
  // A deposit lies within rho * (largest semi-axis ratio) of its centre.
  const depositExtent = model.deposits.map((d) => d.rho * Math.max(...d.ratios) + 1e-6);
  for (let k = 0; k < nz; k++) {
    const pz = origin[2] + k * v - OFFSET[2];
    for (let j = 0; j < ny; j++) {
      const yw = origin[1] + j * v;
      const py = yw - OFFSET[1];
      const px0 = origin[0] - OFFSET[0];
      const row = nx * (j + ny * k);
      if (yw > tableTop) {
        // 40 mm of table below the top: a 3 mm carbon shell each side of a foam core, then air.
        const shell = yw < tableTop + 3 || yw > tableTop + 37;
        const tissue = yw > tableTop + 40 ? T.AIR : shell ? T.TABLE_SHELL : T.TABLE_CORE;
        labels.fill(LABEL_OF_TISSUE[tissue], row, row + nx);
        hu.fill(huOf[tissue], row, row + nx);
        continue;
      }
      let qx = Rm[0] * px0 + Rm[3] * py + Rm[6] * pz;
      let qy = Rm[1] * px0 + Rm[4] * py + Rm[7] * pz;
      let qz = Rm[2] * px0 + Rm[5] * py + Rm[8] * pz;
      // Overlays whose bounds meet this row's (narrow) band of design y and z.
      const y0 = Math.min(qy, qy + (nx - 1) * dqy),
        y1 = Math.max(qy, qy + (nx - 1) * dqy);
      const z0 = Math.min(qz, qz + (nx - 1) * dqz),
        z1 = Math.max(qz, qz + (nx - 1) * dqz);
      let nr = 0,
        nd = 0;
      for (const r of model.rods) {
        if (r.max[1] >= y0 && r.min[1] <= y1 && r.max[2] >= z0 && r.min[2] <= z1) rowRods[nr++] = r;
      }
      for (let d = 0; d < model.deposits.length; d++) {
        const e = depositExtent[d],
          c = model.deposits[d].center;
        if (c[1] + e >= y0 && c[1] - e <= y1 && c[2] + e >= z0 && c[2] - e <= z1) {
          rowDeposits[nd++] = model.deposits[d];
        }
      }
      for (let i = 0; i < nx; i++) {
        const t = model.classifyWith(qx, qy, qz, rowRods, nr, rowDeposits, nd);
        labels[row + i] = LABEL_OF_TISSUE[t];
        hu[row + i] = huOf[t];
        qx += dqx;
        qy += dqy;
        qz += dqz;
      }
    }
    if ((k & 7) === 0) {
      onProgress?.({ phase: 'voxelize', fraction: k / nz });
      throwIfCancelled(signal);
    }
  }
  onProgress?.({ phase: 'voxelize', fraction: 1 });
  return { labels, hu };
}
