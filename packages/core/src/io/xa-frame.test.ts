import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { carmPreset, mat34MaxAbsDiff, projectionMatrix, projectPoint, type CarmGeometry } from '../carm/geometry.js';
import { readXaFrame, writeXaFrame } from './xa-frame.js';
import { drawOverlay, grayToRgba, overlayGeometry } from '../carm/overlay.js';
import { bullseyeView, type PathLike } from '../carm/views.js';
import { defined } from '../test-helpers/defined.js';

/** <repo>/../shared/data, found from this file (packages/core/src/io). */
const dataDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../../shared/data');
const system = carmPreset('artis-zee-floor');

const geometry: CarmGeometry = {
  sidMm: 1187.5,
  sodMm: 781.25,
  columns: 300,
  rows: 260,
  columnSpacingMm: 0.616,
  rowSpacingMm: 0.624,
  primaryDeg: -27.5,
  secondaryDeg: 31.25,
  isocenter: [12.5, -40.25, 987.75],
};

describe('DICOM XA frames', () => {
  it('round trip: a written DRR frame reads back with the same projection matrix and pixels', async () => {
    const gray = new Uint8Array(300 * 260).map((_, i) => (i * 7) % 256);
    const bytes = writeXaFrame({ gray, geometry, kvp: 72, patientName: 'Phantom^Pelvis' });
    const f = await readXaFrame(bytes, 'drr.dcm', { system });
    expect(f.assumed).toEqual([]);
    expect(f.verified).toBe(true);
    expect(f.geometry).toEqual(geometry);
    expect(mat34MaxAbsDiff(projectionMatrix(f.geometry), projectionMatrix(geometry))).toBeLessThan(1e-12);
    expect(f.kvp).toBe(72);
    // Window = the frame's range 0..255, so grey levels come back unchanged.
    expect(Array.from(f.gray)).toEqual(Array.from(gray));
  });

  const xa = path.join(dataDir, 'xa-rf/xa_rubo_multiframe_jpeg_baseline.dcm');
  it.skipIf(!existsSync(xa))(
    'real angiography run: angles read, distances and pitch assumed from the preset',
    async () => {
      const f = await readXaFrame(readFileSync(xa), xa, { system, frame: 40 });
      expect(f.numberOfFrames).toBe(96);
      expect(f.geometry.primaryDeg).toBe(-32);
      expect(f.geometry.secondaryDeg).toBe(2);
      expect(f.geometry.sidMm).toBe(system.sidMm);
      expect(f.geometry.sodMm).toBe(system.sodMm);
      expect(f.geometry.columns).toBe(512);
      expect(f.verified).toBe(false);
      expect(f.assumed.join('; ')).toMatch(/DistanceSourceToDetector.*DistanceSourceToPatient.*ImagerPixelSpacing/);
      expect(f.assumed.join('; ')).not.toMatch(/PositionerPrimaryAngle/);
      // A real JPEG frame: many distinct grey levels.
      expect(new Set(f.gray).size).toBeGreaterThan(100);
      await expect(readXaFrame(readFileSync(xa), xa, { system, frame: 96 })).rejects.toThrow(/frame 96 does not exist/);
    },
  );

  const rf = path.join(dataDir, 'xa-rf/rf_ge_drs_uncompressed.dcm');
  it.skipIf(!existsSync(rf))(
    'real fluoroscopy frame without geometry: everything assumed, still an overlay',
    async () => {
      const f = await readXaFrame(readFileSync(rf), rf, { system, isocenter: [0, 0, 980] });
      expect(f.geometry.columns).toBe(1024);
      expect(f.assumed.some((a) => a.startsWith('PositionerPrimaryAngle'))).toBe(true);
      expect(f.assumed.some((a) => a.startsWith('PositionerSecondaryAngle'))).toBe(true);
      expect(f.verified).toBe(false);
      const P = projectionMatrix(f.geometry);
      const path1: PathLike = { id: 's1', diameterMm: 7.3, entry: [-80, 20, 980], target: [80, 20, 980] };
      const [o] = overlayGeometry(P, [path1], f.geometry.columns, f.geometry.rows);
      expect(o.inImage).toBe(true);
      const img = drawOverlay(grayToRgba(f.gray, 1024, 1024), 1024, 1024, [o], { unverified: true });
      // The path's midpoint pixel is painted in the line colour (yellow: red and green high, blue low).
      const mid = [Math.round((o.entryPx[0] + o.targetPx[0]) / 2), Math.round((o.entryPx[1] + o.targetPx[1]) / 2)];
      const k = 4 * (mid[1] * 1024 + mid[0]);
      expect(img[k]).toBeGreaterThan(200);
      expect(img[k + 2]).toBeLessThan(80);
      // The border marks unverified geometry (orange dashes at the top-left corner).
      expect(img[4 * (1 * 1024 + 2)]).toBe(255);
    },
  );

  it('refuses a file that is not XA/RF', async () => {
    const ct = path.join(dataDir, 'transfer-syntaxes/ct-single-frame');
    if (!existsSync(ct)) return;
    const { readdirSync } = await import('node:fs');
    const name = readdirSync(ct).find((n) => n.includes('1.2.840.10008.1.2.1'));
    const file = path.join(ct, defined(name, 'an Explicit VR Little Endian CT file'));
    await expect(readXaFrame(readFileSync(file), file, { system })).rejects.toThrow(/not an X-ray angiography/);
  });
});

describe('overlay geometry', () => {
  it('ends match the projection; the outline is the tool diameter times the magnification', () => {
    // AP view, isocentre on the path's midpoint: the path is parallel to the detector at SOD.
    const g: CarmGeometry = { ...geometry, primaryDeg: 0, secondaryDeg: 0, isocenter: [0, 0, 1000] };
    const P = projectionMatrix(g);
    const p: PathLike = { id: 'a', diameterMm: 8, entry: [-50, 0, 1000], target: [50, 0, 1000] };
    const [o] = overlayGeometry(P, [p], g.columns, g.rows);
    const e = projectPoint(P, p.entry),
      t = projectPoint(P, p.target);
    expect(o.entryPx[0]).toBeCloseTo(e[0], 9);
    expect(o.targetPx[1]).toBeCloseTo(t[1], 9);
    // The silhouette edge lies where the ray grazes the cylinder: at the centre, 4 mm at SID/SOD.
    const mag = g.sidMm / g.sodMm;
    const widthRows = Math.abs(o.outline[0][1] - o.outline[3][1]);
    // Independent: the tangent from the source to a circle of radius 4 at distance SOD touches it at
    // 4 * SOD / sqrt(SOD^2 - 16) off-axis, imaged at SID over the tangent point's depth.
    const sod = g.sodMm,
      r = 4;
    const halfWant = ((r * sod) / Math.sqrt(sod * sod - r * r)) * (g.sidMm / sod);
    expect((widthRows / 2) * g.rowSpacingMm).toBeCloseTo(halfWant, 1);
    expect(Math.abs(halfWant / (r * mag) - 1)).toBeLessThan(1e-4);
    expect(o.endOn).toBe(false);
    expect(o.lengthPx * g.columnSpacingMm).toBeCloseTo(100 * mag, 6);
  });

  it("at the bull's-eye the path is end-on and the ring has the tool radius at the entry magnification", () => {
    const p: PathLike = { id: 'b', diameterMm: 3.05, entry: [40, 80, 1010], target: [30, 5, 1000] };
    const v = bullseyeView(p, system);
    // Square pixels: the ring is a circle in pixels only then.
    const g: CarmGeometry = {
      ...geometry,
      rowSpacingMm: geometry.columnSpacingMm,
      primaryDeg: v.primaryDeg,
      secondaryDeg: v.secondaryDeg,
      isocenter: v.isocenter,
      sidMm: system.sidMm,
      sodMm: system.sodMm,
    };
    const [o] = overlayGeometry(projectionMatrix(g), [p], g.columns, g.rows);
    expect(o.endOn).toBe(true);
    expect(o.lengthPx).toBeLessThan(0.5);
    // Posterior entry: the detector-toward-entry view (primary ~172) is out of reach, so the source is
    // on the entry side and the entry is nearer the source than the target (at the isocentre).
    expect(Math.abs(v.primaryDeg)).toBeLessThan(20);
    const depthEntry =
      g.sodMm - Math.hypot(p.entry[0] - p.target[0], p.entry[1] - p.target[1], p.entry[2] - p.target[2]);
    expect(o.ring.radiusPx * g.columnSpacingMm).toBeCloseTo((1.525 * g.sidMm) / depthEntry, 2);
  });
});
