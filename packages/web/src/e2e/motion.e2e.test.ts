/**
 * "Correct for motion" end to end in Debian's Chromium (issue 17): on the phantom case with two planned
 * paths, an XA frame of the patient moved by a known rigid motion (made here: a DRR of the phantom's CT
 * with its patientToIndex composed with the motion's inverse, core's fluoroscopy model with noise,
 * written with writeXaFrame) is loaded like a real frame; "Correct for motion" must draw the corrected
 * overlay where the truly moved paths project (within 1 mm at the detector; truth from the motion), the
 * uncorrected overlay where the plan projects, give the correction core's register2d gives on the same
 * inputs in Node, say the depth uncertainty of one view, and a new 3D run must clear it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  base64ToBytes,
  carmGeometry,
  carmPreset,
  fluoroscopyWithExposure,
  generatePhantom,
  mat4FromRows,
  mat4TransformPoint,
  prepareDrrVolume,
  prepareRegister2dVolume,
  projectPoint,
  projectionMatrix,
  readXaFrame,
  register2d,
  renderLineIntegrals,
  resolveModel,
  writeXaFrame,
  type CarmGeometry,
  type PlanPath,
  type Point3,
  type ReportRequest,
} from '@corridor/core';
import { motionMatrix, movedFrame } from '../../../node/src/register2d/trials.js';
import { decode } from 'fast-png';
import { screenshot, shownErrors, startHarness, type Harness } from './harness.js';

/** The workstation's phantom voxel (app.ts PHANTOM_VOXEL_MM; app.ts needs a DOM). */
const VOXEL_MM = 1.5;
/** A small detector keeps both registrations (page and Node) to seconds. */
const FRAME_PX = 256;

interface PageMark {
  id: string;
  end: string;
  col: number;
  row: number;
}
interface PageState {
  iso: Point3;
  system: string;
  correction: {
    planningToCurrent: number[][];
    status: string;
    singleView: boolean;
    depthUncertaintyMm: number;
  } | null;
  corrected: string | undefined;
  after: PageMark[];
  before: PageMark[];
  text: string;
  series: number;
}

let h: Harness;
let dir: string;
const ph = generatePhantom({ voxelMm: VOXEL_MM });
const paths: PlanPath[] = (['S1', 'S2'] as const).map((k, i) => ({
  id: `path-${i + 1}`,
  name: k,
  kind: 'screw',
  diameterMm: 7.3,
  entry: [...ph.truth.corridors[k].entry] as Point3,
  target: [...ph.truth.corridors[k].exit] as Point3,
}));

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-motion-'));
  h = await startHarness();
}, 180_000);

afterAll(async () => {
  await h?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function pageState(): Promise<PageState> {
  return h.page.evaluate(() => {
    interface Shell {
      app: {
        store: {
          carm: { isocenter: Point3 };
          motionCorrection: PageState['correction'];
          series: unknown[];
        };
      };
      fluoro: { system: { id: string } };
    }
    const shell = (globalThis as unknown as { corridor: Shell }).corridor;
    const doc = (globalThis as unknown as { document: Document }).document;
    const marks = (sel: string) =>
      Array.from(doc.querySelectorAll(sel)).map((e) => ({
        id: e.closest('[data-path-id]')?.getAttribute('data-path-id') ?? '',
        end: e.getAttribute('data-end') ?? '',
        col: Number(e.getAttribute('data-col')),
        row: Number(e.getAttribute('data-row')),
      }));
    return {
      iso: [...shell.app.store.carm.isocenter] as Point3,
      system: shell.fluoro.system.id,
      correction: shell.app.store.motionCorrection,
      corrected: doc.querySelector<SVGElement>('.fluoro-view svg.overlay')?.dataset.corrected,
      after: marks('.fluoro-view svg .path .mark[data-end]'),
      before: marks('.fluoro-view svg .path-before .mark-before'),
      text: doc.querySelector('[data-testid=motion-result]')?.textContent ?? '',
      series: shell.app.store.series.length,
    };
  });
}

const apply = (m: number[][] | Float64Array, p: Point3): Point3 => {
  const q = mat4TransformPoint([0, 0, 0], m instanceof Float64Array ? m : mat4FromRows(m), p);
  return [q[0], q[1], q[2]];
};

/** Largest distance between marks and the projections of points, mm at the detector. */
function worstMm(marks: PageMark[], g: CarmGeometry, where: (p: PlanPath, end: string) => Point3): number {
  const P = projectionMatrix(g);
  let worst = 0;
  expect(marks.length).toBe(2 * paths.length);
  for (const m of marks) {
    const p = paths.find((x) => x.id === m.id);
    if (!p) throw new Error(`a mark of an unknown path ${m.id}`);
    const q = projectPoint(P, where(p, m.end));
    worst = Math.max(worst, Math.hypot((m.col - q[0]) * g.columnSpacingMm, (m.row - q[1]) * g.rowSpacingMm));
  }
  return worst;
}

describe('Correct for motion (Chromium)', () => {
  let g: CarmGeometry;
  let motion: Float64Array;
  let xaBytes: Uint8Array;

  it('opens the phantom with two planned paths', async () => {
    await h.page.goto(`${h.server.url}?renderer=cpu`);
    await h.page.waitForSelector('body[data-first-image-ms]', { timeout: 90_000 });
    await h.page.evaluate((p) => {
      (
        globalThis as unknown as { corridor: { app: { store: { setPaths(p: PlanPath[]): void } } } }
      ).corridor.app.store.setPaths(p);
    }, paths);
    const s = await pageState();
    expect(s.after.length).toBe(4);
    expect(s.correction).toBeNull();
  }, 120_000);

  it('an XA frame of the moved patient, corrected: overlay where the moved paths project', async () => {
    const s0 = await pageState();
    g = carmGeometry(
      carmPreset(s0.system),
      { primaryDeg: 10, secondaryDeg: 5, isocenter: s0.iso },
      {
        size: FRAME_PX,
        fieldMm: 290,
      },
    );
    const c = s0.iso;
    motion = motionMatrix([0.3, 1, 0.2], 3, [4, -3, 2.5], c);
    const gray = movedFrame(prepareDrrVolume(ph.ct), motion, g, 11);
    xaBytes = writeXaFrame({ geometry: g, gray });
    const file = path.join(dir, 'moved.dcm');
    await writeFile(file, xaBytes);
    await h.page.setInputFiles('input[data-field=xa]', file);
    await h.page.waitForFunction(
      () => (globalThis as unknown as { corridor: { app: { store: { xa: unknown } } } }).corridor.app.store.xa !== null,
    );
    const t0 = Date.now();
    await h.page.click('button[data-action=correct-motion]');
    await h.page.waitForSelector('#fluoro-panel:not([data-motion=running]):not([data-motion=none])', {
      timeout: 120_000,
    });
    const pageMs = Date.now() - t0;
    const s = await pageState();
    expect(s.correction?.status).toBe('ok');
    expect(s.corrected).toBe('true');
    // The frame's geometry at the panel's table position: what the overlay is drawn for.
    const frameG = { ...g, isocenter: s.iso };
    const after = worstMm(s.after, frameG, (p, end) => apply(motion, end === 'entry' ? p.entry : p.target));
    const before = worstMm(s.before, frameG, (p, end) => (end === 'entry' ? p.entry : p.target));
    const beforeVsTruth = worstMm(s.before, frameG, (p, end) => apply(motion, end === 'entry' ? p.entry : p.target));
    console.log(
      `motion: page ${pageMs} ms; corrected overlay within ${after.toFixed(3)} mm of the truth at the detector, ` +
        `uncorrected ${beforeVsTruth.toFixed(2)} mm off (depth ±${s.correction?.depthUncertaintyMm.toFixed(1)} mm)`,
    );
    expect(after).toBeLessThan(1);
    // The grey overlay is the plan as planned, off the moved anatomy by what the motion projects to.
    expect(before).toBeLessThan(1e-6);
    expect(beforeVsTruth).toBeGreaterThan(5);
    expect(s.correction?.singleView).toBe(true);
    expect(s.text).toMatch(/Depth along the beam ±\d+(\.\d)? mm: take a second view/);
    expect(s.text).toContain('moved.dcm');

    // Core's register2d on the same inputs (the frame as core reads it, at the panel's table position).
    const t1 = Date.now();
    const frame = await readXaFrame(xaBytes, 'moved.dcm', { system: carmPreset(s0.system), isocenter: s.iso });
    const r = register2d(
      prepareRegister2dVolume(ph.ct),
      [{ gray: frame.gray, geometry: { ...frame.geometry, isocenter: s.iso } }],
      {
        paths,
      },
    );
    const mc = s.correction;
    if (!mc) throw new Error('no correction');
    let diff = 0;
    for (let i = 0; i < 4; i++)
      for (let j = 0; j < 4; j++)
        diff = Math.max(diff, Math.abs(r.planningToCurrent[i][j] - mc.planningToCurrent[i][j]));
    // And the truth, over the path ends (depth along one view is what it determines least).
    let truthErr = 0;
    for (const p of paths)
      for (const e of [p.entry, p.target]) {
        const a = apply(mc.planningToCurrent, e),
          b = apply(motion, e);
        truthErr = Math.max(truthErr, Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]));
      }
    console.log(
      `core register2d in Node ${Date.now() - t1} ms: max |page - core| ${diff.toExponential(2)}; ` +
        `path ends ${truthErr.toFixed(2)} mm from the truth in 3D`,
    );
    expect(diff).toBeLessThan(1e-6);
    await screenshot(h.page, 'motion-corrected');
    expect(await shownErrors(h.page)).toEqual([]);
  }, 240_000);

  it('"Simulate patient motion" shows a virtual frame of the scan moved by its motion', async () => {
    await h.page.fill('[data-field=sim-mm]', '7');
    await h.page.fill('[data-field=sim-deg]', '2.5');
    await h.page.click('button[data-action=simulate-motion]');
    await h.page.waitForFunction(
      () =>
        (globalThis as unknown as { corridor: { app: { store: { xa: { simulatedMotion?: unknown } | null } } } })
          .corridor.app.store.xa?.simulatedMotion !== undefined,
      null,
      { timeout: 30_000 },
    );
    const v = await h.page.evaluate(() => {
      interface Xa {
        name: string;
        simulatedMotion: number[][];
        frame: { gray: Uint8Array; geometry: CarmGeometry };
      }
      const st = (globalThis as unknown as { corridor: { app: { store: { xa: Xa } } } }).corridor.app.store;
      return { ...st.xa, frame: { gray: Array.from(st.xa.frame.gray), geometry: st.xa.frame.geometry } };
    });
    const m = v.simulatedMotion;
    // A rigid motion of the asked size: 7 mm at the isocentre (the rotation's axis runs through it), 2.5°.
    const iso = v.frame.geometry.isocenter;
    const moved = apply(m, iso);
    expect(Math.hypot(moved[0] - iso[0], moved[1] - iso[1], moved[2] - iso[2])).toBeCloseTo(7, 6);
    expect((Math.acos((m[0][0] + m[1][1] + m[2][2] - 1) / 2) * 180) / Math.PI).toBeCloseTo(2.5, 6);
    // The frame, rendered here: the DRR of the CT seen through currentToPlanning (the transpose), as shown.
    const dv = prepareDrrVolume(ph.ct);
    const inv = new Float64Array(16);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) inv[i * 4 + j] = m[j][i];
      inv[i * 4 + 3] = -(m[0][i] * m[0][3] + m[1][i] * m[1][3] + m[2][i] * m[2][3]);
    }
    inv[15] = 1;
    const toIndex = new Float64Array(16);
    for (let r = 0; r < 4; r++)
      for (let c = 0; c < 4; c++)
        for (let k = 0; k < 4; k++) toIndex[r * 4 + c] += dv.patientToIndex[r * 4 + k] * inv[k * 4 + c];
    const g = v.frame.geometry;
    const model = { exposure: { referenceKvp: resolveModel().kvp }, noiseFree: true, edgeEnhance: 0 };
    const want = fluoroscopyWithExposure(renderLineIntegrals({ ...dv, patientToIndex: toIndex }, g), g, model).gray;
    const still = fluoroscopyWithExposure(renderLineIntegrals(dv, g), g, model).gray;
    let off = 0,
      worst = 0,
      moving = 0;
    for (let i = 0; i < want.length; i++) {
      const d = Math.abs(v.frame.gray[i] - want[i]);
      worst = Math.max(worst, d);
      off += d;
      moving += Math.abs(still[i] - want[i]);
    }
    console.log(
      `simulated frame: mean |page - here| ${(off / want.length).toFixed(4)} (max ${worst}) grey levels; ` +
        `the motion changes the frame by ${(moving / want.length).toFixed(2)} on average`,
    );
    expect(worst).toBeLessThanOrEqual(1);
    expect(off / want.length).toBeLessThan(0.01);
    expect(moving / want.length).toBeGreaterThan(2);
    expect(v.name).toMatch(/virtual frame: patient moved 7\.0 mm, 2\.5°/);

    // Corrected on the virtual frame: the overlay follows the simulated motion, and the panel says how far
    // the correction is from it (computed here from the two transforms).
    await h.page.click('button[data-action=correct-motion]');
    await h.page.waitForSelector('#fluoro-panel:not([data-motion=running])', { timeout: 120_000 });
    const s = await pageState();
    const mc = s.correction;
    expect(mc?.status).toBe('ok');
    if (!mc) throw new Error('no correction');
    expect(worstMm(s.after, g, (p, end) => apply(m, end === 'entry' ? p.entry : p.target))).toBeLessThan(1);
    let err = 0;
    for (const p of paths)
      for (const e of [p.entry, p.target]) {
        const a = apply(mc.planningToCurrent, e),
          b = apply(m, e);
        err = Math.max(err, Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]));
      }
    console.log(`simulated motion corrected: path ends ${err.toFixed(2)} mm from the simulated motion in 3D`);
    expect(s.text).toContain(`Against the simulated motion: path ends within ${err.toFixed(1)} mm`);
    expect(s.text).toContain('virtual frame: patient moved 7.0 mm');
    expect(await shownErrors(h.page)).toEqual([]);
  }, 150_000);

  it("the report's fluoroscopy image is that frame with the plan moved by the correction", async () => {
    const s = await pageState();
    expect(s.correction?.status).toBe('ok');
    const response = h.page.waitForResponse((r) => r.url().endsWith('/api/report'), { timeout: 120_000 });
    const download = h.page.waitForEvent('download', { timeout: 120_000 });
    await h.page.click('[data-action=report-make]');
    const res = await response;
    expect(res.status()).toBe(200);
    await download;
    const req = res.request().postDataJSON() as ReportRequest;
    const fl = req.images?.find((i) => i.id === 'fluoro-1');
    if (!fl) throw new Error(`no fluoroscopy image in ${req.images?.map((i) => i.id).join(', ')}`);
    expect(fl.title).toMatch(/^virtual frame of simulated motion .*\(motion corrected\)$/);
    const img = decode(base64ToBytes(fl.png));
    const at = (c: number, r: number, test: (x: number[]) => boolean) => {
      for (let dr = -1; dr <= 1; dr++)
        for (let dc = -1; dc <= 1; dc++) {
          const o = (Math.round(r + dr) * img.width + Math.round(c + dc)) * img.channels;
          if (test([img.data[o], img.data[o + 1], img.data[o + 2]])) return true;
        }
      return false;
    };
    const isGreen = ([r, g, b]: number[]) => g > 150 && g > r + 60 && g > b + 60; // entry disc
    const isRed = ([r, g, b]: number[]) => r > 200 && g < 100 && b < 100; // target cross
    // The corrected ends where the view marks them; the plan's colours not where the uncorrected marks are.
    expect(s.after.length).toBe(4);
    for (const m of s.after)
      expect(at(m.col, m.row, m.end === 'entry' ? isGreen : isRed), `${m.id} ${m.end}`).toBe(true);
    expect(s.before.length).toBe(4);
    for (const m of s.before)
      expect(at(m.col, m.row, m.end === 'entry' ? isGreen : isRed), `${m.id} ${m.end}`).toBe(false);
  }, 150_000);

  it('a failed verdict is shown as failed and never applied', async () => {
    await h.page.evaluate(() => {
      interface St {
        motionCorrection: { status: string; reasons: string[] } | null;
        emit(t: string): void;
      }
      const st = (globalThis as unknown as { corridor: { app: { store: St } } }).corridor.app.store;
      if (!st.motionCorrection) throw new Error('no correction');
      // The correction found above, marked as core marks a failed fit.
      st.motionCorrection = { ...st.motionCorrection, status: 'failed', reasons: ['the fit did not converge.'] };
      st.emit('motion');
    });
    const s = await pageState();
    expect(s.corrected).toBe('false');
    expect(s.before).toEqual([]);
    // The overlay is the plan as planned: the frame's marks at the plan's projection.
    const g = await h.page.evaluate(() =>
      (
        globalThis as unknown as { corridor: { fluoro: { overlayGeometry(): CarmGeometry } } }
      ).corridor.fluoro.overlayGeometry(),
    );
    expect(worstMm(s.after, g, (p, end) => (end === 'entry' ? p.entry : p.target))).toBeLessThan(1e-6);
    expect(s.text).toMatch(/FAILED .*not applied.*did not converge/);
  }, 30_000);

  it('shows its progress and is cancelled: the correction stays as it was; it runs again after', async () => {
    const before = await pageState();
    await h.page.click('button[data-action=correct-motion]');
    await h.page.waitForSelector('#status:has-text("Correct for motion:")', { timeout: 30_000 });
    expect(await h.page.isVisible('button[data-action=cancel-motion]')).toBe(true);
    await h.page.click('button[data-action=cancel-motion]');
    await h.page.waitForSelector('.message.info:has-text("Motion correction cancelled")', { timeout: 10_000 });
    const s = await pageState();
    expect(s.correction).toEqual(before.correction);
    expect(await h.page.isVisible('button[data-action=cancel-motion]')).toBe(false);
    expect(await h.page.isEnabled('button[data-action=correct-motion]')).toBe(true);
    // The next run starts a new worker, which prepares the scan again.
    await h.page.click('button[data-action=correct-motion]');
    await h.page.waitForSelector('#fluoro-panel[data-motion=ok]', { timeout: 120_000 });
    expect(await shownErrors(h.page)).toEqual([]);
  }, 150_000);

  it('a new 3D run clears the correction', async () => {
    await h.page.fill('[data-field=run-views]', '12');
    await h.page.fill('[data-field=run-voxel]', '4');
    await h.page.fill('[data-field=run-binning]', '8');
    await h.page.click('button[data-action=acquire]');
    await h.page.waitForFunction(
      () =>
        (globalThis as unknown as { corridor: { app: { store: { series: unknown[] } } } }).corridor.app.store.series
          .length === 2,
      null,
      { timeout: 120_000, polling: 500 },
    );
    const s = await pageState();
    expect(s.correction).toBeNull();
    expect(s.before).toEqual([]);
    expect(s.text).toBe('');
    expect(await shownErrors(h.page)).toEqual([]);
  }, 150_000);
});
