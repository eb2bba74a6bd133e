import { it } from 'vitest';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { createVolume, indexToPatientFrom } from '../volume/volume.js';
import { resample } from '../volume/resample.js';
import { prepareDrrVolume, renderLineIntegrals } from './drrVolume.js';
it('perf', () => {
  const b = gunzipSync(readFileSync('/work/shared/data/vhf-pelvis-ct/ct.nii.gz'));
  const dv = new DataView(b.buffer, b.byteOffset);
  const dims = [dv.getInt16(42, true), dv.getInt16(44, true), dv.getInt16(46, true)] as [number, number, number];
  const off = dv.getFloat32(108, true);
  const n = dims[0] * dims[1] * dims[2];
  const data = new Int16Array(n);
  for (let i = 0; i < n; i++) data[i] = dv.getInt16(off + 2 * i, true);
  const vol = createVolume({ data, dims, indexToPatient: indexToPatientFrom([16, 96, 900], [1, 1, 1], [[-1, 0, 0], [0, -1, 0], [0, 0, 1]]) });
  console.log(dims);
  const hist = new Map<number, number>();
  for (let i = 0; i < n; i += 7) { const k = Math.floor(data[i] / 50) * 50; hist.set(k, (hist.get(k) ?? 0) + 1); }
  console.log([...hist.entries()].sort((a, b) => a[0] - b[0]).filter((e) => e[1] > 200).map((e) => e.join(':')).join(' '));
  // Target: 512 x 430 x 480 centred on the source volume's centre: 0.7 x 0.7 x (150/480) mm.
  const c = [16 - 225.5, 96 - 201.5, 900 + 74.5];
  const sp = [0.7, 0.7, 149 / 479];
  const tdims: [number, number, number] = [512, 430, 480];
  const org = [c[0] + 255.5 * 0.7, c[1] + 214.5 * 0.7, c[2] - 239.5 * sp[2]];
  let t0 = performance.now();
  const big = resample(vol, { dims: tdims, indexToPatient: indexToPatientFrom(org, sp, [[-1, 0, 0], [0, -1, 0], [0, 0, 1]]) }, { outside: -1000 });
  console.log('resample ms', performance.now() - t0);
  t0 = performance.now();
  const d = prepareDrrVolume(big);
  console.log('prepare ms', performance.now() - t0, 'occupied blocks', d.occupancy.reduce((a, x) => a + x, 0) / d.occupancy.length);
  for (const [a, bb] of [[0, 0], [0, -35], [0, 35], [90, 0], [30, 20]]) {
    const g = { sidMm: 1200, sodMm: 785, columns: 512, rows: 512, columnSpacingMm: 0.8, rowSpacingMm: 0.8, primaryDeg: a, secondaryDeg: bb, isocenter: c as [number, number, number] };
    const out = new Float32Array(512 * 512);
    const times = [];
    for (let r = 0; r < 4; r++) { t0 = performance.now(); renderLineIntegrals(d, g, out); times.push(performance.now() - t0); }
    console.log(a, bb, times.map((x) => x.toFixed(0)).join(' '), 'max', out.reduce((a, x) => Math.max(a, x), 0).toFixed(2));
  }
});
