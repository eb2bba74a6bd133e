/**
 * XA rotational runs: projections written as the detector would store them, read back (in any frame order,
 * either rotation direction, uncompressed, deflated, RLE or HTJ2K) into the scan's geometry and projections, and
 * reconstructed: the same volume as reconstructing in memory, within the 16-bit quantisation.
 */
import { existsSync } from 'node:fs';
import { deflateSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { carmPreset, mat34MaxAbsDiff, type CarmGeometry } from '../carm/geometry.js';
import { createVolume, type Volume } from '../volume/volume.js';
import type { Point3 } from '../math/vec3.js';
import { CorridorError, FormatError } from '../errors.js';
import { parseDicom } from '../io/dicom/parse.js';
import { TS } from '../io/dicom/tags.js';
import { DicomElementWriter, itemTag } from '../io/dicom/writer.js';
import { writeXaFrame } from '../io/xa-frame.js';
import { readNamed, sharedData } from '../test-helpers/data.js';
import { cbctScan, scanProjection, type CbctScan } from './scan.js';
import { simulateProjections, type CbctProjections } from './acquire.js';
import { cbctGrid, reconstructFdk } from './fdk.js';
import { readXaRun, writeXaRun } from './xa-run.js';
import { ReconError } from './scan.js';

const system = carmPreset('artis-zee-floor');
const detector = { fieldMm: 160, size: 64 };
const iso: Point3 = [12.5, -30, 410];

/** Water cylinder (radius 30 mm, along z) with three bone spheres and a steel bead, 1 mm grid about `iso`. */
function phantom(): { ct: Volume; spheres: Point3[] } {
  const n = 80;
  const m = new Float64Array([1, 0, 0, iso[0] - 39.5, 0, 1, 0, iso[1] - 39.5, 0, 0, 1, iso[2] - 39.5, 0, 0, 0, 1]);
  const spheres: Point3[] = [
    [iso[0] + 12, iso[1] - 5, iso[2] + 3],
    [iso[0] - 8, iso[1] + 14, iso[2] - 9],
    [iso[0] + 3, iso[1] + 6, iso[2] + 15],
  ];
  const data = new Float32Array(n ** 3);
  for (let k = 0; k < n; k++)
    for (let j = 0; j < n; j++)
      for (let i = 0; i < n; i++) {
        const x = m[3] + i,
          y = m[7] + j,
          z = m[11] + k;
        let hu = Math.hypot(x - iso[0], y - iso[1]) <= 30 ? 0 : -1000;
        for (const s of spheres) if (Math.hypot(x - s[0], y - s[1], z - s[2]) <= 3) hu = 1200;
        if (Math.hypot(x - iso[0] + 15, y - iso[1] + 10, z - iso[2]) <= 1.5) hu = 3000;
        data[(k * n + j) * n + i] = hu;
      }
  return { ct: createVolume({ data, dims: [n, n, n], indexToPatient: m, meta: { source: 'test phantom' } }), spheres };
}

const { ct } = phantom();
const scan = cbctScan(system, { isocenter: iso, views: 61, detector });
const proj = simulateProjections(ct, scan, { photonsPerPixel: 2e4, seed: 3 });
const grid = cbctGrid(scan, { voxelMm: 1, fovMm: 70, heightMm: 40 });
const direct = reconstructFdk(proj, scan, { grid });
const file = writeXaRun(proj, scan, { acquisition: { kvp: 90, note: 'test' }, patientName: 'Run^Test' });

/** The scan with its views (and their projections) in another order: a run stored in that order. */
function reordered(order: number[]): { scan: CbctScan; proj: CbctProjections } {
  const npx = scan.columns * scan.rows;
  const data = new Float32Array(proj.data.length);
  order.forEach((v, n) => data.set(proj.data.subarray(v * npx, (v + 1) * npx), n * npx));
  const views: CarmGeometry[] = order.map((v) => scan.views[v]);
  return { scan: { ...scan, views }, proj: { ...proj, data } };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** Worst difference of the read projections from the written ones, against the quantisation bound 1/(2 stored). */
function quantisationCheck(read: Float32Array, stored: Uint16Array): void {
  let worstRatio = 0;
  for (let i = 0; i < read.length; i++) {
    const bound = 0.5 / Math.max(stored[i], 0.5) + 1e-6;
    worstRatio = Math.max(worstRatio, Math.abs(read[i] - proj.data[i]) / bound);
  }
  expect(worstRatio).toBeLessThanOrEqual(1);
}

/** Our file's data set (after the meta) split at the pixel data, and the frames' stored bytes. */
function fileParts(bytes: Uint8Array): { before: Uint8Array; frames: Uint8Array[]; body: Uint8Array } {
  const ds = parseDicom(bytes, 'run.dcm');
  const px = ds.element('x7fe00010');
  if (!px) throw new Error('no pixel data');
  const body = ds.bytes;
  const frameBytes = scan.columns * scan.rows * 2;
  const frames = scan.views.map((_, n) =>
    body.slice(px.dataOffset + n * frameBytes, px.dataOffset + (n + 1) * frameBytes),
  );
  return { before: body.slice(0, px.dataOffset - 12), frames, body };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A Part 10 file with transfer syntax `ts` and this data set body. */
function withSyntax(ts: string, body: Uint8Array): Uint8Array {
  const m = new DicomElementWriter();
  m.str(0x0002, 0x0010, 'UI', ts);
  const meta = m.concat();
  const gl = new DicomElementWriter();
  gl.ul(0x0002, 0x0000, meta.length);
  const head = new Uint8Array(132);
  head.set([0x44, 0x49, 0x43, 0x4d], 128);
  return concat([head, gl.concat(), meta, body]);
}

/** The run with its frames encapsulated (one fragment each, empty offset table). */
function encapsulated(ts: string, encode: (frame: Uint8Array) => Uint8Array): Uint8Array {
  const { before, frames } = fileParts(file);
  const items = frames.flatMap((f) => {
    const e = encode(f);
    const padded = e.length % 2 ? concat([e, new Uint8Array(1)]) : e;
    return [itemTag(0xe000, padded.length), padded];
  });
  const pxHeader = new Uint8Array([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x42, 0, 0, 0xff, 0xff, 0xff, 0xff]);
  return withSyntax(ts, concat([before, pxHeader, itemTag(0xe000, 0), ...items, itemTag(0xe0dd, 0)]));
}

interface Htj2kCodec {
  HTJ2KEncoder: new () => {
    getDecodedBuffer(info: object): Uint8Array;
    setProgressionOrder(order: number): void;
    encode(): void;
    getEncodedBuffer(): Uint8Array;
    delete(): void;
  };
}

/** Each frame encoded losslessly by OpenJPH's own encoder (the codec the reader decodes HTJ2K with). */
async function htj2kFrames(): Promise<(frame: Uint8Array) => Uint8Array> {
  const factory = (await import('@cornerstonejs/codec-openjph/wasmjs')).default as (o?: object) => Promise<Htj2kCodec>;
  const codec = await factory();
  return (frame) => {
    const enc = new codec.HTJ2KEncoder();
    const info = { width: scan.columns, height: scan.rows, bitsPerSample: 16, componentCount: 1, isSigned: false };
    enc.getDecodedBuffer({ ...info, isUsingColorTransform: false }).set(frame);
    enc.setProgressionOrder(0);
    enc.encode();
    const out = enc.getEncodedBuffer().slice();
    enc.delete();
    return out;
  };
}

/** DICOM RLE (PS3.5 Annex G) of a 16-bit frame: two byte planes (high first), literal PackBits runs. */
function rleEncode(frame: Uint8Array): Uint8Array {
  const n = frame.length / 2;
  const segment = (hi: boolean): Uint8Array => {
    const plane = new Uint8Array(n);
    for (let i = 0; i < n; i++) plane[i] = frame[2 * i + (hi ? 1 : 0)];
    // Runs of at most 128 bytes; a segment's length must be even, so one run is split if needed.
    let runs = Math.ceil(n / 128);
    if ((n + runs) % 2) runs++;
    const out: number[] = [];
    let i = 0;
    for (let r = 0; r < runs; r++) {
      const len = Math.min(128, Math.ceil((n - i) / (runs - r)));
      out.push(len - 1);
      for (let k = 0; k < len; k++) out.push(plane[i++]);
    }
    return Uint8Array.from(out);
  };
  const hi = segment(true),
    lo = segment(false);
  const header = new Uint8Array(64);
  const dv = new DataView(header.buffer);
  dv.setUint32(0, 2, true);
  dv.setUint32(4, 64, true);
  dv.setUint32(8, 64 + hi.length, true);
  return concat([header, hi, lo]);
}

describe('XA rotational run', () => {
  it('writes the standard rotational attributes and reads back the scan and projections', async () => {
    const ds = parseDicom(file, 'run.dcm');
    expect(ds.string('x00080016')).toBe('1.2.840.10008.5.1.4.1.1.12.1');
    expect(ds.numbers('x00280008')).toEqual([61]);
    expect(ds.string('x00181500')).toBe('DYNAMIC');
    expect(ds.numbers('x00181510')).toEqual([-100]);
    const inc = ds.numbers('x00181520') ?? [];
    expect(inc.length).toBe(61);
    expect(inc[0]).toBe(0);
    // 200 degrees in 60 steps: 3.333333 degrees (to 1e-6) each.
    for (const d of inc.slice(1)) expect(Math.abs(d - 200 / 60)).toBeLessThan(1e-6);
    expect(ds.numbers('x00181521')).toEqual(new Array<number>(61).fill(0));
    expect(ds.numbers('x00181110')).toEqual([1200]);
    expect(ds.numbers('x00181111')).toEqual([785]);
    expect(ds.numbers('x00181063')?.[0]).toBeCloseTo(1000 / 30, 6);
    // Data set elements in ascending tag order, as PS3.5 7.1 requires (the parser keeps the file's order).
    const tags = Object.keys(ds.raw.elements).filter((t) => !t.startsWith('x0002'));
    expect(tags).toEqual([...tags].sort());
    expect(tags).toContain('x00280009');

    const run = await readXaRun(file, 'run.dcm');
    expect(run.assumed).toEqual([]);
    expect(run.systemFromFile).toBe(true);
    expect(run.system.id).toBe('artis-zee-floor');
    expect(run.acquisition).toEqual({ kvp: 90, note: 'test' });
    expect(run.frameOfView).toEqual(scan.views.map((_, n) => n));
    let worstMatrix = 0,
      worstAngle = 0;
    for (let n = 0; n < 61; n++) {
      worstMatrix = Math.max(worstMatrix, mat34MaxAbsDiff(scanProjection(run.scan, n), scanProjection(scan, n)));
      worstAngle = Math.max(worstAngle, Math.abs(run.frameAnglesDeg[n] - scan.views[n].primaryDeg));
    }
    expect(worstAngle).toBeLessThan(1e-6);
    // Pixel units: 1e-6 degree at 400 pixels from the centre is under 1e-5 pixel.
    expect(worstMatrix).toBeLessThan(1e-3);
    expect(run.scan.fovRadiusMm).toBeCloseTo(scan.fovRadiusMm, 6);
    expect(Math.abs(run.projections.muReferencePerMm / proj.muReferencePerMm - 1)).toBeLessThan(1e-12);
    const { frames } = fileParts(file);
    const stored = new Uint16Array(concat(frames).buffer);
    quantisationCheck(run.projections.data, stored);
  });

  it('reconstructs to the in-memory volume within the 16-bit quantisation', async () => {
    const run = await readXaRun(file, 'run.dcm');
    const rec = reconstructFdk(run.projections, run.scan, { grid });
    let inside = 0,
      sq = 0,
      worst = 0,
      maskDiffers = 0;
    for (let i = 0; i < rec.volume.data.length; i++) {
      if (rec.mask[i] !== direct.mask[i]) maskDiffers++;
      if (!direct.mask[i]) continue;
      const d = rec.volume.data[i] - direct.volume.data[i];
      sq += d * d;
      worst = Math.max(worst, Math.abs(d));
      inside++;
    }
    expect(maskDiffers).toBe(0);
    const rms = Math.sqrt(sq / inside);
    console.log(`XA run vs in memory: ${inside} voxels, RMS ${rms.toFixed(3)} HU, worst ${worst.toFixed(2)} HU`);
    expect(rms).toBeLessThan(1);
    expect(worst).toBeLessThan(10);
  });

  it('reads runs stored in reverse (negative rotation) or shuffled frame order to the same projections', async () => {
    const ascending = await readXaRun(file, 'run.dcm');
    const reverse = scan.views.map((_, n) => 60 - n);
    // A fixed shuffle (multiplication by 17 modulo 61 visits every frame once).
    const shuffle = scan.views.map((_, n) => (n * 17) % 61);
    for (const [label, order] of [
      ['reverse', reverse],
      ['shuffled', shuffle],
    ] as const) {
      const r = reordered(order);
      const bytes = writeXaRun(r.proj, r.scan);
      const ds = parseDicom(bytes, `${label}.dcm`);
      if (label === 'reverse') {
        expect(ds.numbers('x00181510')).toEqual([100]);
        for (const d of (ds.numbers('x00181520') ?? []).slice(1)) expect(Math.abs(d + 200 / 60)).toBeLessThan(1e-6);
      }
      const run = await readXaRun(bytes, `${label}.dcm`);
      // Frame f of the file is view order[f]; sorted, view n comes from the frame holding it.
      for (let n = 0; n < 61; n++) expect(order[run.frameOfView[n]]).toBe(n);
      for (let f = 0; f < 61; f++)
        expect(Math.abs(run.frameAnglesDeg[f] - scan.views[order[f]].primaryDeg)).toBeLessThan(1e-5);
      expect(maxAbsDiff(run.scan.projections, ascending.scan.projections)).toBeLessThan(1e-3);
      // Same stored values (the same flat field: the brightest pixel is the same), so the same projections.
      expect(run.flatField).toBe(ascending.flatField);
      expect(maxAbsDiff(run.projections.data, ascending.projections.data)).toBe(0);
    }
  });

  it('reads the run deflated (data set, frames), RLE and HTJ2K compressed to the same projections', async () => {
    const plain = await readXaRun(file, 'run.dcm');
    const { body } = fileParts(file);
    const variants: [string, Uint8Array][] = [
      ['deflated data set', withSyntax(TS.DeflatedExplicitLittle, deflateSync(body))],
      ['deflated image frames', encapsulated(TS.DeflatedImageFrame, (f) => deflateSync(f))],
      ['RLE', encapsulated(TS.Rle, rleEncode)],
      ['HTJ2K lossless', encapsulated(TS.Htj2kLossless, await htj2kFrames())],
    ];
    for (const [label, bytes] of variants) {
      const run = await readXaRun(bytes, `${label}.dcm`);
      expect(maxAbsDiff(run.projections.data, plain.projections.data)).toBe(0);
      expect(maxAbsDiff(run.scan.projections, plain.scan.projections)).toBe(0);
    }
  });

  it("reads another system's run (no private block) with its assumptions listed", async () => {
    // The private creator renamed (same length): a reader finds no Corridor block, as in a vendor's file.
    const foreign = file.slice();
    const creator = new TextEncoder().encode('CORRIDOR 1');
    let at = -1;
    for (let i = 0; i + creator.length <= foreign.length && at < 0; i++)
      if (creator.every((b, k) => foreign[i + k] === b)) at = i;
    expect(at).toBeGreaterThan(0);
    foreign.set(new TextEncoder().encode('VENDOR  99'), at);
    const plain = await readXaRun(file, 'run.dcm');
    const run = await readXaRun(foreign, 'vendor.dcm', { isocenter: iso });
    const assumed = run.assumed.join('; ');
    expect(assumed).toMatch(/flat-field value \(65535: the run's brightest pixel\)/);
    expect(assumed).toMatch(/water attenuation/);
    expect(assumed).toMatch(/isocentre \(12\.5, -30\.0, 410\.0\) given by the caller/);
    expect(run.systemFromFile).toBe(false);
    expect(run.acquisition).toBeNull();
    // The same distances and angles from the standard attributes, so the same geometry; mu from the
    // spectrum at the file's kV is ours; the flat field taken as the brightest pixel shifts every p by
    // the same ln(65535 / I0) (noise made the brightest pixel brighter than the unattenuated beam).
    expect(maxAbsDiff(run.scan.projections, plain.scan.projections)).toBeLessThan(1e-9);
    expect(Math.abs(run.projections.muReferencePerMm / plain.projections.muReferencePerMm - 1)).toBeLessThan(1e-9);
    const shift = Math.log(65535 / plain.flatField);
    expect(shift).toBeGreaterThan(0);
    let worst = 0;
    for (let i = 0; i < run.projections.data.length; i++)
      worst = Math.max(worst, Math.abs(run.projections.data[i] - plain.projections.data[i] - shift));
    expect(worst).toBeLessThan(1e-5);
    const without = await readXaRun(foreign, 'vendor.dcm');
    expect(without.assumed.join('; ')).toMatch(/isocentre \(0, 0, 0\)/);
  });

  it('refuses what is not a rotational run, naming the file', async () => {
    const g = scan.views[0];
    const single = writeXaFrame({ gray: new Uint8Array(g.columns * g.rows), geometry: g });
    await expect(readXaRun(single, 'single.dcm')).rejects.toThrow(FormatError);
    await expect(readXaRun(single, 'single.dcm')).rejects.toThrow(/single\.dcm: a single frame is not a rotational/);
    // Uneven angles: one frame moved by half a step.
    const views = scan.views.map((v, n) => (n === 30 ? { ...v, primaryDeg: v.primaryDeg + 1.6 } : v));
    const uneven = writeXaRun(proj, { ...scan, views });
    await expect(readXaRun(uneven, 'uneven.dcm')).rejects.toThrow(ReconError);
    await expect(readXaRun(uneven, 'uneven.dcm')).rejects.toThrow(/uneven\.dcm: frame 31 .* evenly spaced/);
    // Not an X-ray file at all.
    const ctSlice = readNamed(
      sharedData('transfer-syntaxes', 'ct-single-frame', 'ct_1.2.840.10008.1.2.1_explicit_le_reference.dcm'),
    );
    if (existsSync(sharedData('transfer-syntaxes')))
      await expect(readXaRun(ctSlice.bytes, ctSlice.name)).rejects.toThrow(/not an X-ray angiography run/);
  });

  const realXa = sharedData('xa-rf', 'xa_rubo_multiframe_jpeg_baseline.dcm');
  it.skipIf(!existsSync(realXa))('refuses a real angiography run at one angle (no increments)', async () => {
    const f = readNamed(realXa);
    const err: unknown = await readXaRun(f.bytes, f.name).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorridorError);
    expect(String(err)).toMatch(/xa_rubo_multiframe_jpeg_baseline\.dcm: no Positioner Primary Angle Increment/);
  });
});
