import { afterAll, describe, expect, it } from 'vitest';
import {
  createVolume,
  indexToPatientFrom,
  renderLineIntegrals,
  prepareDrrVolume,
  type CarmGeometry,
} from '@corridor/core';
import { DrrPool, prepareSharedDrrVolume } from './pool.js';
import { defined } from '../test-helpers/defined.js';

/** A 64^3 grid holding a ball of water-like attenuation and a denser rod. */
function volume() {
  const n = 64;
  const data = new Float32Array(n * n * n);
  for (let k = 0; k < n; k++)
    for (let j = 0; j < n; j++)
      for (let i = 0; i < n; i++) {
        const r = Math.hypot(i - 31.5, j - 30, k - 33);
        let v = r < 25 ? 0.02 : 0;
        if (Math.hypot(i - 40, k - 20) < 4) v += 0.1;
        data[i + n * (j + n * k)] = v;
      }
  return createVolume({ data, dims: [n, n, n], indexToPatient: indexToPatientFrom([-40, -30, 950], [1.25, 1, 1.1]) });
}

describe('DrrPool', () => {
  const vol = volume();
  const shared = prepareSharedDrrVolume(vol, { values: 'mu' });
  const pool = DrrPool.create(shared, { threads: 2 });
  afterAll(() => pool.close());

  it(
    'gives exactly the single-threaded image, for several geometries and sizes in turn ' +
      '(WebAssembly and JavaScript row loops)',
    async () => {
      expect(shared.simd).toBeDefined();
      const sharedJs = prepareSharedDrrVolume(vol, { values: 'mu', wasm: false });
      expect(sharedJs.simd).toBeUndefined();
      const poolJs = DrrPool.create(sharedJs, { threads: 2 });
      try {
        for (const [p, wasm] of [
          [pool, true],
          [poolJs, false],
        ] as const) {
          const plain = prepareDrrVolume(vol, { values: 'mu', wasm });
          for (const [a, b, cols, rows] of [
            [0, 0, 96, 80],
            [75, -20, 64, 64],
            [-140, 35, 96, 80],
            [10, 80, 33, 17],
          ]) {
            const g: CarmGeometry = {
              sidMm: 1000,
              sodMm: 650,
              columns: cols,
              rows,
              columnSpacingMm: 1.6,
              rowSpacingMm: 1.6,
              primaryDeg: a,
              secondaryDeg: b,
              isocenter: [0, 2, 985],
            };
            const want = renderLineIntegrals(plain, g);
            const got = await p.render(g);
            expect(got.length).toBe(cols * rows);
            expect(Math.max(...want)).toBeGreaterThan(0.5);
            expect(Array.from(got)).toEqual(Array.from(want));
          }
        }
        // LAO 75 is swept along i: the pool read rows from the j-fastest copy, and still matched exactly.
        expect(defined(shared.simd, 'the shared SIMD memory').transposedJ).toBeDefined();
      } finally {
        await poolJs.close();
      }
    },
  );

  it("gives a closed pool's WebAssembly scratch to the volume's next pool instead of growing the memory", async () => {
    const d = prepareSharedDrrVolume(vol, { values: 'mu' });
    const g: CarmGeometry = {
      sidMm: 1000,
      sodMm: 650,
      columns: 40,
      rows: 30,
      columnSpacingMm: 2,
      rowSpacingMm: 2,
      primaryDeg: 20,
      secondaryDeg: 10,
      isocenter: [0, 0, 985],
    };
    const want = renderLineIntegrals(prepareDrrVolume(vol, { values: 'mu' }), g);
    const sizes: number[] = [];
    for (let i = 0; i < 3; i++) {
      const p = DrrPool.create(d, { threads: 2 });
      expect(Array.from(await p.render(g))).toEqual(Array.from(want));
      await p.close();
      sizes.push(defined(d.simd, 'the shared SIMD memory').memory.buffer.byteLength);
    }
    expect(sizes[1]).toBe(sizes[0]);
    expect(sizes[2]).toBe(sizes[0]);
  });

  it('refuses a volume in ordinary memory and a concurrent render', async () => {
    expect(() => DrrPool.create(prepareDrrVolume(vol, { values: 'mu' }))).toThrow(/shared memory/);
    const g: CarmGeometry = {
      sidMm: 1000,
      sodMm: 650,
      columns: 32,
      rows: 32,
      columnSpacingMm: 2,
      rowSpacingMm: 2,
      primaryDeg: 0,
      secondaryDeg: 0,
      isocenter: [0, 0, 985],
    };
    const first = pool.render(g);
    await expect(pool.render(g)).rejects.toThrow(/already rendering/);
    await first;
  });
});
