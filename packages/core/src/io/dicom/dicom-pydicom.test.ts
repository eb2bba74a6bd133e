/**
 * The writer's files checked by an independent reader, pydicom (Debian's python3-pydicom), with strict
 * value validation. Skipped where pydicom is not installed.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createVolume, indexToPatientFrom } from '../../volume/volume.js';
import { writeDicomSeries } from './writer.js';

const PYTHON = '/usr/bin/python3';
const hasPydicom = spawnSync(PYTHON, ['-c', 'import pydicom, numpy'], { encoding: 'utf8' }).status === 0;

const SCRIPT = `
import json, sys, pydicom, numpy as np
pydicom.config.enforce_valid_values = True
out = []
for f in sys.argv[1:]:
    ds = pydicom.dcmread(f)
    px = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    out.append({
        'sop': ds.SOPClassUID, 'ts': ds.file_meta.TransferSyntaxUID,
        'ipp': [float(v) for v in ds.ImagePositionPatient], 'iop': [float(v) for v in ds.ImageOrientationPatient],
        'ps': [float(v) for v in ds.PixelSpacing], 'rows': ds.Rows, 'cols': ds.Columns,
        'values': px.ravel().tolist(), 'name': str(ds.PatientName),
    })
print(json.dumps(out))
`;

describe.skipIf(!hasPydicom)('writer output read by pydicom', () => {
  it('pydicom reads every file strictly, with our geometry and values', () => {
    const c = Math.cos(0.4),
      s = Math.sin(0.4);
    const x: [number, number, number] = [c, s, 0];
    const y: [number, number, number] = [0, 0, -1];
    const z: [number, number, number] = [s, -c, 0]; // x cross y: right-handed
    const dims: [number, number, number] = [5, 4, 3];
    const data = new Int16Array(60).map((_, i) => i * 37 - 900);
    const v = createVolume({
      data,
      dims,
      indexToPatient: indexToPatientFrom([12.5, -40, 300], [0.6, 0.8, 2.5], [x, y, z]),
      meta: { patientName: 'Müller^Anna' },
    });
    const files = writeDicomSeries(v);
    const dir = mkdtempSync(path.join(tmpdir(), 'corridor-dicom-'));
    try {
      const paths = files.map((f) => {
        const p = path.join(dir, f.name);
        writeFileSync(p, f.bytes);
        return p;
      });
      const run = spawnSync(PYTHON, ['-c', SCRIPT, ...paths], { encoding: 'utf8' });
      expect(run.stderr).toBe('');
      const read = JSON.parse(run.stdout) as {
        sop: string;
        ts: string;
        ipp: number[];
        iop: number[];
        ps: number[];
        rows: number;
        cols: number;
        values: number[];
        name: string;
      }[];
      read.forEach((r, k) => {
        expect(r.sop).toBe('1.2.840.10008.5.1.4.1.1.2');
        expect(r.ts).toBe('1.2.840.10008.1.2.1');
        expect([r.rows, r.cols]).toEqual([4, 5]);
        expect(r.ps[0]).toBeCloseTo(0.8, 12);
        expect(r.ps[1]).toBeCloseTo(0.6, 12);
        for (let a = 0; a < 3; a++) {
          expect(r.iop[a]).toBeCloseTo(x[a], 12);
          expect(r.iop[3 + a]).toBeCloseTo(y[a], 12);
          expect(r.ipp[a]).toBeCloseTo([12.5, -40, 300][a] + z[a] * 2.5 * k, 9);
        }
        expect(r.values).toEqual(Array.from(data.subarray(k * 20, (k + 1) * 20)));
        expect(r.name).toBe('Müller^Anna');
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
