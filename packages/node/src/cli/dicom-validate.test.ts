/**
 * Every DICOM object Corridor writes, through Debian's validator dciodvfy (dicom3tools), which checks each
 * against the IOD and module tables of the standard: the CT series (`corridor phantom --dicom`), the DRR
 * as an XA frame (`corridor drr --dicom`), the segmentation (core's writeDicomSeg), and the procedure
 * report's Encapsulated PDF and Comprehensive 3D SR. None may have an error. The warnings dciodvfy gives
 * are listed in packages/core/src/io/dicom/README.md (each explained), and the test fails on any other.
 */
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePlan, readNifti, writeDicomSeg, writeEncapsulatedPdf, writePlanSr, type Volume } from '@corridor/core';
import { runCli } from '../test-helpers/run-cli.js';
import { dciodvfy, missingToolsNote } from '../test-helpers/dicom-tools.js';

const note = missingToolsNote('dciodvfy');

/** Warnings that are expected (see the README's list); anything else fails the test. */
const KNOWN_WARNINGS = [
  /needed to build DICOMDIR/,
  // Laterality is Type 2C: present and empty ("unknown") where the body part is not known (the XA frame).
  /attribute <Laterality>/,
  // The private creator's element holding the isocentre of Corridor's XA frames.
  /\(0x0029,0x1010\).*Unrecognized tag/,
  // 99CORRIDOR is a private coding scheme (PS3.16 8.2), declared in the Coding Scheme Identification Sequence.
  /Unrecognized defined term <99CORRIDOR>/,
];

function expectValid(file: string, iod: string) {
  const r = dciodvfy(file);
  expect(r.iod, r.output).toBe(iod);
  expect(r.errors, r.output).toEqual([]);
  expect(r.status, r.output).toBe(0);
  expect(
    r.warnings.filter((w) => !KNOWN_WARNINGS.some((k) => k.test(w))),
    r.output,
  ).toEqual([]);
}

describe.skipIf(note !== '')(`dciodvfy on every DICOM object Corridor writes${note}`, () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-dciodvfy-'));
    const r = await runCli('phantom', '--out', path.join(dir, 'ph'), '--voxel', '3', '--dicom', '--quiet');
    expect(r.code, r.err).toBe(0);
  }, 120_000);
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the CT series of `corridor phantom --dicom`', async () => {
    const files = (await readdir(path.join(dir, 'ph', 'dicom'))).sort();
    expect(files.length).toBeGreaterThan(10);
    for (const f of [files[0], files[files.length >> 1], files[files.length - 1]]) {
      expectValid(path.join(dir, 'ph', 'dicom', f), 'CTImage');
      // The phantom names its body part (PELVIS, unpaired): no Laterality, and no warning about it.
      expect(dciodvfy(path.join(dir, 'ph', 'dicom', f)).warnings.join('\n')).not.toMatch(/Laterality/);
    }
  });

  it('the XA frame of `corridor drr --dicom`', async () => {
    const xa = path.join(dir, 'drr.dcm');
    const r = await runCli('drr', path.join(dir, 'ph', 'ct.nii.gz'), '--size', '96', '--threads', '1', '--dicom', xa);
    expect(r.code, r.err).toBe(0);
    expectValid(xa, 'XAImage');
  });

  it('a DICOM SEG of the phantom labels (segments numbered 1..n)', async () => {
    const file = path.join(dir, 'ph', 'labels.nii.gz');
    const labels: Volume = readNifti(new Uint8Array(await readFile(file)), file).volume;
    const present = [...new Set(labels.data)].filter((v) => v > 0).sort((a, b) => a - b);
    expect(present.length).toBeGreaterThan(3);
    const seg = path.join(dir, 'seg.dcm');
    await writeFile(
      seg,
      writeDicomSeg(labels, {
        segments: present.map((v, i) => ({ number: i + 1, label: `label ${v}`, values: [v] })),
        patientName: 'Phantom^Pelvis',
        patientId: 'PH1',
      }),
    );
    expectValid(seg, 'Segmentation');
    // The writer keeps numbers given out of that order (the reader's label-id mode), and dciodvfy says
    // that is not a valid SEG: the check is real.
    const bad = path.join(dir, 'seg-bad.dcm');
    await writeFile(bad, writeDicomSeg(labels, { segments: [{ number: 2, label: 'x', values: [present[0]] }] }));
    expect(dciodvfy(bad).errors.join('\n')).toMatch(/SegmentNumber not monotonically increasing/);
  });

  it("the report's Encapsulated PDF and Comprehensive 3D SR", async () => {
    const plan = parsePlan({
      schemaVersion: 1,
      volume: {},
      paths: [{ id: 's1', name: 'S1', kind: 'screw', diameterMm: 7.3, entry: [-80, 20, -175], target: [83, 25, -180] }],
    });
    const when = new Date('2026-01-02T03:04:05Z');
    const pdfBytes = new TextEncoder().encode('%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n');
    const pdf = path.join(dir, 'pdf.dcm');
    await writeFile(pdf, writeEncapsulatedPdf(pdfBytes, { contentDate: when, documentTitle: 'Report' }).bytes);
    expectValid(pdf, 'EncapsulatedPDF');
    const sr = path.join(dir, 'sr.dcm');
    const p = plan.paths[0];
    await writeFile(
      sr,
      writePlanSr([{ ...p, lengthMm: 163.1, achieved: { status: 'pass', tip: [80, 25, -180], tipOffsetMm: 3 } }], {
        contentDate: when,
        frameOfReferenceUid: '1.2.3.4.5',
      }).bytes,
    );
    expectValid(sr, 'Comprehensive3DSR');
  });
});
