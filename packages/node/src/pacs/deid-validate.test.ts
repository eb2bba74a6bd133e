/**
 * A de-identified CT slice is still a valid instance: Debian's dciodvfy (dicom3tools) finds no error in
 * it that it does not find in the original (the profile must not break the IOD), and dcmtk's dcmdump
 * reads it whole. Skipped, with the reason, where those tools are not installed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UidMap, deidentifyDicom, generatePhantom, writeDicomSeries } from '@corridor/core';

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const tools = have('dciodvfy') && have('dcmdump');

function errors(file: string): string[] {
  const r = spawnSync('dciodvfy', [file], { encoding: 'utf8' });
  return `${r.stdout}${r.stderr}`
    .split('\n')
    .filter((l) => l.startsWith('Error'))
    .map((l) => l.trim());
}

describe('de-identified output validates', () => {
  it.skipIf(!tools)(
    `dciodvfy: no error the original lacks; dcmdump reads it${tools ? '' : ' (skipped: dciodvfy or dcmdump not installed)'}`,
    async () => {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-deid-'));
      try {
        const ct = generatePhantom({ voxelMm: 5, noise: false }).ct;
        const slice = writeDicomSeries(ct, { patientName: 'SMITH^JOHN', patientId: 'MRN-4711' })[5].bytes;
        const out = deidentifyDicom(slice, 'slice', { uids: new UidMap('case-key-validate') });
        const a = path.join(dir, 'original.dcm');
        const b = path.join(dir, 'deidentified.dcm');
        await writeFile(a, slice);
        await writeFile(b, out.bytes);
        const before = new Set(errors(a));
        const added = errors(b).filter((e) => !before.has(e));
        expect(added).toEqual([]);
        const dump = execFileSync('dcmdump', ['-E', b], { encoding: 'utf8' });
        expect(dump).toMatch(/\(0012,0062\) CS \[YES\]/);
        expect(dump).not.toMatch(/SMITH|MRN-4711/);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
});
