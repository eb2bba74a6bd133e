/**
 * A DRR worker (CPU fallback of the virtual fluoroscopy): holds the volume prepared by core for ray
 * casting and renders bands of rows with core's kernel.
 */
import { prepareDrrVolume, renderLineIntegrals, type CarmGeometry, type DrrVolume } from '@corridor/core';
import { serveRpc } from '../rpc.js';
import { volumeFromMessage, type VolumeMessage } from '../volume-message.js';

let dv: DrrVolume | null = null;

serveRpc(self as unknown as Parameters<typeof serveRpc>[0], {
  setVolume(args) {
    const [msg] = args as [VolumeMessage];
    dv = prepareDrrVolume(volumeFromMessage(msg));
    return { dims: dv.dims };
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
