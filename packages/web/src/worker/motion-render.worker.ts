/**
 * The motion worker's render helper: holds the prepared levels of the planning scan (core's
 * register2dVolumeFromParts, from the motion worker's register2dVolumeParts) and renders bands of the
 * DRRs of a registration batch with core's kernel, so "Correct for motion" uses two cores. Only the
 * rendered rows travel back.
 */
import {
  register2dVolumeFromParts,
  renderLineIntegrals,
  type CarmGeometry,
  type Register2dVolume,
} from '@corridor/core';
import { serveRpc } from '../rpc.js';

let prepared: Register2dVolume | null = null;
let generation = -1;

/** One band of one DRR: the level, the moved patientToIndex, the geometry and the rows [rowStart, rowEnd). */
export interface BandRequest {
  level: number;
  patientToIndex: Float64Array;
  geometry: CarmGeometry;
  rowStart: number;
  rowEnd: number;
}

serveRpc(self as unknown as Parameters<typeof serveRpc>[0], {
  setLevels(args) {
    const [parts, gen] = args as [Parameters<typeof register2dVolumeFromParts>[0], number];
    prepared = register2dVolumeFromParts(parts);
    generation = gen;
    return { levels: prepared.levels.length };
  },
  render(args) {
    const [bands, gen] = args as [BandRequest[], number];
    const p = prepared;
    if (!p || gen !== generation) throw new Error('the motion render helper holds another volume');
    const out = bands.map((b) => {
      const level = p.levels[b.level];
      if (!level) throw new Error(`the motion render helper has no level ${b.level}`);
      const g = b.geometry;
      const full = new Float32Array(g.columns * g.rows);
      renderLineIntegrals({ ...level.dv, patientToIndex: b.patientToIndex }, g, full, b.rowStart, b.rowEnd);
      return full.slice(b.rowStart * g.columns, b.rowEnd * g.columns);
    });
    return { value: out, transfer: out.map((a) => a.buffer) };
  },
});
