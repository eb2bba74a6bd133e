/** Test-only: a small CT for the C-arm CT tests (excluded from the build). */
import { createVolume, type Point3 } from '@corridor/core';

/** A 48^3 CT at 2 mm (axis-aligned, origin far from 0): water block with a dense bone bead off-centre. */
export function smallCt() {
  const n = 48,
    s = 2;
  const origin: Point3 = [-130.0, 55.0, -700.0];
  const data = new Float32Array(n ** 3).fill(-1000);
  const bead: Point3 = [origin[0] + 30 * s, origin[1] + 18 * s, origin[2] + 27 * s];
  for (let k = 0; k < n; k++)
    for (let j = 0; j < n; j++)
      for (let i = 0; i < n; i++) {
        const p = [origin[0] + i * s, origin[1] + j * s, origin[2] + k * s];
        const r = Math.hypot(i - 23.5, j - 23.5);
        let v = r < 18 && k > 4 && k < 43 ? 0 : -1000;
        if (Math.hypot(p[0] - bead[0], p[1] - bead[1], p[2] - bead[2]) <= 3.1) v = 1500;
        data[(k * n + j) * n + i] = v;
      }
  const m = new Float64Array([s, 0, 0, origin[0], 0, s, 0, origin[1], 0, 0, s, origin[2], 0, 0, 0, 1]);
  return { ct: createVolume({ data, dims: [n, n, n], indexToPatient: m, meta: { source: 'small ct' } }), bead };
}
