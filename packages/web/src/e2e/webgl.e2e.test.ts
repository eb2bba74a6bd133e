/**
 * The GPU path of the virtual fluoroscopy (WebGL2 shader) against core's CPU ray caster, in Chromium's
 * software WebGL (SwiftShader: no GPU here; ?renderer=gl-any accepts it). The shader's image must be the
 * same projection: its grey levels are a falling linear window of the line integrals, so they correlate
 * with -LI of core's CPU image of the same pose almost perfectly, and clearly better than with the
 * mirrored image (which a flipped axis would give).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { carmGeometry, carmPreset, generatePhantom, prepareDrrVolume, renderLineIntegrals, type Point3 } from '@corridor/core';
import { screenshot, shownErrors, startHarness, type Harness } from './harness.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ extraArgs: ['--enable-unsafe-swiftshader', '--use-angle=swiftshader'] });
}, 180_000);

afterAll(async () => {
  await h?.close();
});

function correlation(a: ArrayLike<number>, b: ArrayLike<number>, keep: (i: number) => boolean): number {
  let n = 0, sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
  for (let i = 0; i < a.length; i++) {
    if (!keep(i)) continue;
    n++; sa += a[i]; sb += b[i]; saa += a[i] * a[i]; sbb += b[i] * b[i]; sab += a[i] * b[i];
  }
  const cov = sab / n - (sa / n) * (sb / n);
  return cov / Math.sqrt((saa / n - (sa / n) ** 2) * (sbb / n - (sb / n) ** 2));
}

it('renders the same projection on the GPU path as core computes on the CPU (LAO 30°, CRAN 15°)', async () => {
  await h.page.goto(`${h.server.url}?renderer=gl-any`);
  await h.page.waitForSelector('body[data-first-image-ms]', { timeout: 90_000 });
  expect(await h.page.getAttribute('.fluoro-view', 'data-renderer')).toBe('gpu');
  const iso = (await h.page.evaluate(`window.corridor.app.store.carm.isocenter`)) as Point3;
  await h.page.evaluate(`window.corridor.app.store.setCarm({ primaryDeg: 30, secondaryDeg: 15 })`);
  const gray = (await h.page.evaluate(`Array.from(window.corridor.fluoro.shownGray())`)) as number[];
  await screenshot(h.page, 'webgl-lao30-cran15');
  expect(gray).toHaveLength(512 * 512);

  // The same case, pose and detector with core's CPU kernel (the app's phantom is 1.5 mm; its field is 290 mm, FIELD_MM in views/fluoro-view.ts).
  const ph = generatePhantom({ voxelMm: 1.5 });
  const g = carmGeometry(carmPreset('artis-zee-floor'), { primaryDeg: 30, secondaryDeg: 15, isocenter: iso }, { size: 512, fieldMm: 290 });
  const li = renderLineIntegrals(prepareDrrVolume(ph.ct), g);
  const neg = Array.from(li, (x) => -x);
  const mirrored = new Float64Array(neg.length);
  for (let r = 0; r < 512; r++) for (let c = 0; c < 512; c++) mirrored[r * 512 + c] = neg[r * 512 + 511 - c];
  // Pixels where the shader's window did not clip (grey strictly between black and white).
  const keep = (i: number) => gray[i] > 2 && gray[i] < 253;
  const same = correlation(gray, neg, keep);
  const flipped = correlation(gray, mirrored, keep);
  console.log(`correlation ${same.toFixed(4)}, mirrored ${flipped.toFixed(4)}`);
  expect(same).toBeGreaterThan(0.97);
  expect(same - flipped).toBeGreaterThan(0.05);
  expect(await shownErrors(h.page)).toEqual([]);
}, 180_000);
