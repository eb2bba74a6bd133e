/**
 * The GPU path of the virtual fluoroscopy (WebGL2 shader) against core's CPU ray caster, in Chromium's
 * software WebGL (SwiftShader: no GPU here; ?renderer=gl-any accepts it). The shader's image must be the
 * same projection: its grey levels are a falling linear window of the line integrals, so they correlate
 * with -LI of core's CPU image of the same pose almost perfectly, and clearly better than with the
 * mirrored image (which a flipped axis would give). And pixel positions, on both paths: a small bright
 * marker at a known LPS point of an oblique, anisotropic, flipped volume must appear where core's C-arm
 * projection matrix puts that point.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  carmGeometry,
  carmPreset,
  generatePhantom,
  prepareDrrVolume,
  renderLineIntegrals,
  type Point3,
} from '@corridor/core';
import {
  createVolume,
  indexToPatientFrom,
  projectionMatrix,
  projectPoint,
  readNifti,
  writeNifti,
} from '@corridor/core';
import { ARTIFACTS, screenshot, shownErrors, startHarness, type Harness } from './harness.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ extraArgs: ['--enable-unsafe-swiftshader', '--use-angle=swiftshader'] });
}, 180_000);

afterAll(async () => {
  await h?.close();
});

function correlation(a: ArrayLike<number>, b: ArrayLike<number>, keep: (i: number) => boolean): number {
  let n = 0,
    sa = 0,
    sb = 0,
    saa = 0,
    sbb = 0,
    sab = 0;
  for (let i = 0; i < a.length; i++) {
    if (!keep(i)) continue;
    n++;
    sa += a[i];
    sb += b[i];
    saa += a[i] * a[i];
    sbb += b[i] * b[i];
    sab += a[i] * b[i];
  }
  const cov = sab / n - (sa / n) * (sb / n);
  return cov / Math.sqrt((saa / n - (sa / n) ** 2) * (sbb / n - (sb / n) ** 2));
}

it('renders the same projection on the GPU path as core computes on the CPU (LAO 30°, CRAN 15°)', async () => {
  await h.page.goto(`${h.server.url}?renderer=gl-any`);
  await h.page.waitForSelector('body[data-first-image-ms]', { timeout: 90_000 });
  expect(await h.page.getAttribute('.fluoro-view', 'data-renderer')).toBe('gpu');
  const iso = await h.page.evaluate<Point3>(`window.corridor.app.store.carm.isocenter`);
  await h.page.evaluate(`window.corridor.app.store.setCarm({ primaryDeg: 30, secondaryDeg: 15 })`);
  const gray = await h.page.evaluate<number[]>(`Array.from(window.corridor.fluoro.shownGray())`);
  await screenshot(h.page, 'webgl-lao30-cran15');
  expect(gray).toHaveLength(512 * 512);

  // The same case, pose and detector with core's CPU kernel (the app's phantom is 1.5 mm; its field is
  // 290 mm, FIELD_MM in views/fluoro-view.ts).
  const ph = generatePhantom({ voxelMm: 1.5 });
  const g = carmGeometry(
    carmPreset('artis-zee-floor'),
    { primaryDeg: 30, secondaryDeg: 15, isocenter: iso },
    { size: 512, fieldMm: 290 },
  );
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

/**
 * The marker case: air (-1000 HU, no attenuation) with a 2 x 2 x 2 voxel block of 3000 HU. The grid is
 * rotated 0.35 rad about a tilted axis, anisotropic (2.0 x 2.3 x 2.6 mm: at least the CPU path's 2 mm, so its
 * copy is not resampled), with k flipped and its origin far from zero. Written as NIfTI and read back by
 * core, as the page reads it; the marker's centre is the mean of its eight voxel centres (LPS mm).
 */
async function markerCase(): Promise<{ file: string; marker: Point3; center: Point3 }> {
  const ax = [0.2, -0.4, 0.9],
    n = Math.hypot(ax[0], ax[1], ax[2]),
    a = 0.35;
  const [x, y, z] = ax.map((q) => q / n),
    c = Math.cos(a),
    s = Math.sin(a),
    t = 1 - c;
  const col = (r: number[][], j: number) => [r[0][j], r[1][j], r[2][j]];
  const rot = [
    [t * x * x + c, t * x * y - s * z, t * x * z + s * y],
    [t * x * y + s * z, t * y * y + c, t * y * z - s * x],
    [t * x * z - s * y, t * y * z + s * x, t * z * z + c],
  ];
  const k = col(rot, 2);
  const dims = [72, 64, 56] as const;
  const dirs = [col(rot, 0), col(rot, 1), [-k[0], -k[1], -k[2]]] as [number[], number[], number[]];
  const m = indexToPatientFrom([-95.5, 160.25, 1110], [2.0, 2.3, 2.6], dirs);
  const data = new Int16Array(dims[0] * dims[1] * dims[2]).fill(-1000);
  // Off the centre by about 14, 9 and 11 voxels, so a mirrored or swapped axis would move it far.
  const b = [50, 41, 17];
  for (let dk = 0; dk < 2; dk++)
    for (let dj = 0; dj < 2; dj++)
      for (let di = 0; di < 2; di++) {
        data[b[0] + di + dims[0] * (b[1] + dj + dims[1] * (b[2] + dk))] = 3000;
      }
  const vol = createVolume({ data, dims, indexToPatient: m });
  const bytes = writeNifti(vol, { gzip: true, description: 'webgl marker' });
  const file = path.join(ARTIFACTS, 'webgl-marker.nii.gz');
  await writeFile(file, bytes);
  const back = readNifti(bytes, file).volume.indexToPatient;
  const at = (i: number, j: number, kk: number): Point3 =>
    [0, 1, 2].map((r) => back[r * 4] * i + back[r * 4 + 1] * j + back[r * 4 + 2] * kk + back[r * 4 + 3]) as Point3;
  return { file, marker: at(b[0] + 0.5, b[1] + 0.5, b[2] + 0.5), center: at(35.5, 31.5, 27.5) };
}

/**
 * Centroid (column, row) of the marker in a grey image: the background is the most frequent grey level
 * (air everywhere else), each pixel weighs its difference from it (pixels within 1 grey level of it: 0).
 */
function markerCentroid(gray: ArrayLike<number>, size: number): { col: number; row: number; pixels: number } {
  const hist = new Array<number>(256).fill(0);
  for (let i = 0; i < gray.length; i++) hist[gray[i]]++;
  const bg = hist.indexOf(Math.max(...hist));
  let sw = 0,
    sc = 0,
    sr = 0,
    pixels = 0;
  for (let i = 0; i < gray.length; i++) {
    const w = Math.abs(gray[i] - bg);
    if (w <= 1) continue;
    pixels++;
    sw += w;
    sc += w * (i % size);
    sr += w * Math.floor(i / size);
  }
  return { col: sc / sw, row: sr / sw, pixels };
}

// LAO 25, CAUD 20: oblique, so that no axis of the detector lines up with one of the volume.
const MARKER_POSE = { primaryDeg: 25, secondaryDeg: -20 };

async function markerOnScreen(renderer: 'gl-any' | 'cpu') {
  const mc = await markerCase();
  // An empty workstation (?case=none): the marker case is the first and only one opened, so no phantom is
  // generated, uploaded and drawn first (in software WebGL, seconds per frame) only to be replaced.
  await h.page.goto(`${h.server.url}?renderer=${renderer}&case=none`);
  await h.page.waitForSelector('body[data-state=ready]', { timeout: 90_000 });
  await h.page.setInputFiles('input[data-field=images]', mc.file);
  await h.page.waitForSelector('body[data-case="webgl marker"]', { timeout: 60_000 });
  type Doc = { document: { body: { dataset: Record<string, string> } } };
  await h.page.waitForFunction(() => (globalThis as unknown as Doc).document.body.dataset.state === 'ready', null, {
    timeout: 60_000,
  });
  const frames = Number(await h.page.getAttribute('.fluoro-view', 'data-frames'));
  const pose = { ...MARKER_POSE, isocenter: mc.center };
  await h.page.evaluate(`window.corridor.app.store.setCarm(${JSON.stringify(pose)})`);
  // The GPU path draws at once; the CPU path draws a coarse frame, then the full one 180 ms later (a frame of
  // the pose before may still be on its way): wait until a full frame has been drawn and none follows for 1 s.
  let last = frames,
    quietSince = Date.now();
  for (const t0 = Date.now(); Date.now() - t0 < 60_000; await new Promise((r) => setTimeout(r, 100))) {
    const now = Number(await h.page.getAttribute('.fluoro-view', 'data-frames'));
    if (now !== last) [last, quietSince] = [now, Date.now()];
    const size = await h.page.getAttribute('.fluoro-view', 'data-last-frame-size');
    if (last > frames && size === '512' && Date.now() - quietSince > 1000) break;
  }
  const shown = (await h.page.getAttribute('.fluoro-view', 'data-renderer')) as string;
  const gray = await h.page.evaluate<number[]>(`Array.from(window.corridor.fluoro.shownGray())`);
  await screenshot(h.page, `webgl-marker-${shown}`);
  expect(gray).toHaveLength(512 * 512);
  // Core's projection of the marker for the same pose and detector (the app's 290 mm field, FIELD_MM).
  const g = carmGeometry(carmPreset('artis-zee-floor'), pose, { size: 512, fieldMm: 290 });
  const want = projectPoint(projectionMatrix(g), mc.marker);
  const got = markerCentroid(gray, 512);
  const err = Math.hypot(got.col - want[0], got.row - want[1]);
  // Mirrored about the image centre column: where a flipped detector axis would put it.
  const mirrored = Math.hypot(got.col - (511 - want[0]), got.row - want[1]);
  console.log(
    `${shown}: marker at (${got.col.toFixed(3)}, ${got.row.toFixed(3)}) px over ${got.pixels} px, ` +
      `core (${want[0].toFixed(3)}, ${want[1].toFixed(3)}): ${err.toFixed(3)} px off; ` +
      `mirrored ${mirrored.toFixed(1)} px`,
  );
  expect(await shownErrors(h.page)).toEqual([]);
  return { shown, err, mirrored, pixels: got.pixels };
}

it('puts a marker where core projects it on the GPU path (within 0.25 px)', async () => {
  const r = await markerOnScreen('gl-any');
  expect(r.shown).toBe('gpu');
  // The block (4-5 mm, 6-8 mm with its trilinear fringe) covers about 20 px across on the detector (0.57 mm
  // pixels, magnification ~1.5; measured: 459 px differ from the background): a blob, not a dot, and a
  // point-symmetric one, so its weighted centroid is the projection of its centre. Required: within 0.5 px;
  // measured 0.005 px, so the test asks for 0.25 px, which a half-pixel slip of the pixel-centre convention
  // (0.5 px or more) fails.
  expect(r.pixels).toBeGreaterThan(20);
  expect(r.err).toBeLessThan(0.25);
  // A flipped detector axis would put it 158 px away (measured).
  expect(r.mirrored).toBeGreaterThan(20);
}, 180_000);

it('puts a marker where core projects it on the CPU path (within 0.25 px)', async () => {
  const r = await markerOnScreen('cpu');
  expect(r.shown).toBe('cpu');
  // As on the GPU path (measured: 500 px differ from the background, 0.011 px from core's projection).
  expect(r.pixels).toBeGreaterThan(20);
  expect(r.err).toBeLessThan(0.25);
  expect(r.mirrored).toBeGreaterThan(20);
}, 180_000);
