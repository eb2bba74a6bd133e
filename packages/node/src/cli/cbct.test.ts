import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { readNifti, writeNifti } from '@corridor/core';
import { smallCt } from '../test-helpers/small-ct.js';
import { runCli } from '../test-helpers/run-cli.js';

afterEach(() => vi.restoreAllMocks());

describe('corridor cbct', () => {
  it('writes a reconstruction in the input frame with the acquisition in --json and the header', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'corridor-cbct-'));
    const { ct, bead } = smallCt();
    const input = path.join(dir, 'ct.nii.gz'),
      out = path.join(dir, 'cbct.nii.gz'),
      maskOut = path.join(dir, 'fov.nii.gz');
    writeFileSync(input, writeNifti(ct, { gzip: true }));
    const r = await runCli(
      'cbct',
      input,
      '--out',
      out,
      '--views',
      '60',
      '--binning',
      '16',
      '--voxel',
      '3',
      '--dose',
      '5000',
      '--scatter',
      '0.05',
      '--seed',
      '4',
      '--json',
      '--threads',
      '2',
      '--mask',
      maskOut,
    );
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as {
      acquisition: Record<string, unknown>;
      reconstruction: { dims: number[]; spacingMm: number[]; fovRadiusMm: number; indexToPatient: number[] };
    };
    expect(j.acquisition.views).toBe(60);
    expect(j.acquisition.arcDeg).toBe(200);
    expect(j.acquisition.kvp).toBe(90);
    expect(j.acquisition.scatterFraction).toBe(0.05);
    expect(j.acquisition.photonsPerPixel).toBe(5000);
    // Exposure control (the default): 5000 quanta behind the patient at the detector's centre, so every
    // view's unattenuated quanta exceed 5000 (the water block in the central quarter transmits less than 1).
    expect(j.acquisition.exposureControl).toBe(true);
    const [lo, hi] = j.acquisition.photonsPerPixelRange as [number, number];
    expect(lo).toBeGreaterThan(5000);
    expect(hi).toBeGreaterThanOrEqual(lo);
    expect(hi).toBeLessThan(5000 * 1000);
    // Artis zee, 1920 x 2480 pixels of 0.154 mm binned 16 x 16, mounted landscape (the default, as DynaCT):
    // 155 columns across the rotation, 120 rows, 2.464 mm pixels.
    expect(j.acquisition.columns).toBe(155);
    expect(j.acquisition.rows).toBe(120);
    // Field of view: SOD sin(atan(half width less a pixel / SID)), from the data-sheet figures: 121.9 mm.
    const R = 785 * Math.sin(Math.atan(((77 - 1) * 2.464) / 1200));
    expect(Math.abs(j.reconstruction.fovRadiusMm - R)).toBeLessThan(1e-6);
    const rec = readNifti(new Uint8Array(readFileSync(out)), out).volume;
    expect(rec.spacing.map((s) => +s.toFixed(6))).toEqual([3, 3, 3]);
    // Centred on the CT's centre (the default isocentre): voxel centre of the grid at (origin + 47).
    const M = rec.indexToPatient;
    const c = [0, 1, 2].map((a) => M[a * 4 + 3] + ((rec.dims[a] - 1) / 2) * M[a * 5]);
    expect(c.map((x) => +x.toFixed(6))).toEqual([-130 + 47, 55 + 47, -700 + 47]);
    // The bead (the brightest voxel) where it is in the CT, within a voxel.
    let best = -Infinity,
      at = 0;
    for (let i = 0; i < rec.data.length; i++) {
      if (rec.data[i] > best) {
        best = rec.data[i];
        at = i;
      }
    }
    const [nx, ny] = rec.dims;
    const idx = [at % nx, Math.floor(at / nx) % ny, Math.floor(at / (nx * ny))];
    const p = [0, 1, 2].map((a) => M[a * 4 + 3] + idx[a] * M[a * 5]);
    expect(Math.hypot(p[0] - bead[0], p[1] - bead[1], p[2] - bead[2])).toBeLessThan(3 * Math.sqrt(3) * 0.75);
    // The mask: 1 exactly where the volume is data (not the -1024 fill), and the cylinder's corner out.
    const mask = readNifti(new Uint8Array(readFileSync(maskOut)), maskOut).volume;
    expect(mask.dims).toEqual(rec.dims);
    let disagree = 0,
      inside = 0;
    for (let i = 0; i < rec.data.length; i++) {
      if (mask.data[i] === 1) inside++;
      if ((mask.data[i] === 1) !== (rec.data[i] !== -1024)) disagree++;
    }
    expect(disagree).toBe(0);
    expect(mask.data[0]).toBe(0);
    // Inside: at most the cylinder's share of the grid (pi R^2 over the square's (2R)^2 area: 78.5%).
    expect(inside / rec.data.length).toBeLessThan(0.79);
    expect(inside / rec.data.length).toBeGreaterThan(0.3);
    // The acquisition in the NIfTI description (the header's first 540 bytes cover both versions).
    const header = new TextDecoder('latin1').decode(gunzipSync(readFileSync(out)).subarray(0, 540));
    expect(header).toContain('CBCT artis-zee-floor 200deg/60v 90kV Naec=5000 sc=0.05 shepp-logan');
  });
  it('refuses an unknown row padding with a usage error', async () => {
    const r = await runCli('cbct', 'x.nii.gz', '--out', path.join(tmpdir(), 'y.nii.gz'), '--padding', 'wrap');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--padding "wrap" is not one of zero, edge, continue/);
  });
  it('refuses an unknown ramp window with a usage error', async () => {
    const r = await runCli('cbct', 'x.nii.gz', '--out', path.join(tmpdir(), 'y.nii.gz'), '--window', 'box');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--window "box" is not one of ram-lak, shepp-logan, cosine, hann/);
  });
});
