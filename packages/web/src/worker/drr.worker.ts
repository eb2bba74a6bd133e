/**
 * A DRR worker (CPU fallback of the virtual fluoroscopy): holds the volume prepared by core for ray
 * casting and renders bands of rows with core's kernel.
 */
import {
  prepareDrrVolume,
  renderLineIntegrals,
  resampleToSpacing,
  type CarmGeometry,
  type DrrVolume,
} from '@corridor/core';
import { serveRpc } from '../rpc.js';
import { volumeFromMessage, type VolumeMessage } from '../volume-message.js';

let dv: DrrVolume | null = null;

serveRpc(self as unknown as Parameters<typeof serveRpc>[0], {
  setVolume(args) {
    const [msg, minVoxelMm] = args as [VolumeMessage, number];
    let v = volumeFromMessage(msg);
    // The CPU path projects a copy with voxels of at least minVoxelMm (core's resampling): the ray cost
    // grows with the planes crossed, so this bounds the frame time whatever the CT's resolution.
    if (v.spacing.some((s) => s < minVoxelMm - 1e-6)) {
      v = resampleToSpacing(
        v,
        [Math.max(v.spacing[0], minVoxelMm), Math.max(v.spacing[1], minVoxelMm), Math.max(v.spacing[2], minVoxelMm)],
        { interpolation: 'linear' },
      );
    }
    dv = prepareDrrVolume(v);
    return { dims: dv.dims, spacing: dv.spacing };
  },
  render(args) {
    const [g, rowStart, rowEnd] = args as [CarmGeometry, number, number];
    if (!dv) throw new Error('DRR worker has no volume');
    const t0 = performance.now();
    const full = new Float32Array(g.columns * g.rows);
    renderLineIntegrals(dv, g, full, rowStart, rowEnd);
    // Only the band travels back.
    const band = full.slice(rowStart * g.columns, rowEnd * g.columns);
    return { value: { band, rowStart, rowEnd, ms: performance.now() - t0 }, transfer: [band.buffer] };
  },
});
