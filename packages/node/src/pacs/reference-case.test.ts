/**
 * The reference case through a real Orthanc (Debian's, with DICOMweb) on loopback, with the CLI only:
 * the phantom's planning CT (3 mm) is stored as DICOM (`pacs push`), found (`pacs find`) and retrieved
 * (`pacs pull`) through Corridor; the plan is made on the pulled series (`corridor plan`), verified on the
 * pins stage (`corridor verify`) and the cement checked on the cement stage (`corridor cement`), as the
 * phantom CLI generates them in the same patient frame; the report (`corridor report --dicom --pacs`) is
 * stored back (STOW-RS), and QIDO-RS finds its Encapsulated PDF (DOC) and 3D SR (SR) in the CT's study,
 * with the CT's patient, and the SR's bytes hold the pulled CT's Frame of Reference UID.
 */
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { jsonString, parseDicom } from '@corridor/core';
import { runCli } from '../test-helpers/run-cli.js';
import { describeOrthanc } from '../test-helpers/orthanc.js';
import { pacsClient } from '../cli/pacs.js';

let dir: string;
const f = (...n: string[]) => path.join(dir, ...n);

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-reference-case-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describeOrthanc('the reference case through Orthanc', (orthanc) => {
  it('push, find, pull, plan, verify, cement, report stored back into the CT study', async () => {
    const url = orthanc().dicomWebUrl;
    const common = ['--voxel', '3', '--quiet'];
    const ok = (r: { code: number; err: string; out: string }) => {
      expect(r.code, r.err + r.out).toBe(0);
      return r;
    };
    ok(await runCli('phantom', '--out', f('plan'), '--stage', 'plan', '--dicom', ...common));
    ok(await runCli('phantom', '--out', f('pins'), '--stage', 'pins', ...common));
    ok(await runCli('phantom', '--out', f('cem'), '--stage', 'cement', '--leak', 'S2R', '--leak-ml', '0.3', ...common));
    const first = (await readdir(f('plan', 'dicom'))).sort()[0];
    const sentFirst = parseDicom(new Uint8Array(await readFile(f('plan', 'dicom', first))), first);
    const ctStudy = sentFirst.string('x0020000d') ?? '';
    const ctPatientId = sentFirst.string('x00100020') ?? '';
    const ctFrame = sentFirst.string('x00200052') ?? '';
    expect(ctStudy).not.toBe('');

    // 1. Store the planning CT, find it, pull it through Corridor.
    ok(await runCli('pacs', 'push', f('plan', 'dicom'), '--url', url));
    const found = JSON.parse(
      ok(await runCli('pacs', 'find', '--url', url, '--patient', 'PHANTOM-*', '--json')).out,
    ) as {
      studyInstanceUid: string;
    }[];
    expect(found.map((s) => s.studyInstanceUid)).toEqual([ctStudy]);
    ok(await runCli('pacs', 'pull', ctStudy, '--out', f('pulled'), '--url', url));

    // 2. Plan on the pulled series, verify on the pins stage, check the cement stage.
    const labels = f('plan', 'labels.nii.gz');
    ok(await runCli('plan', f('pulled'), '--labels', labels, '--auto', 's1,s2', '--out', f('plan.json')));
    const plan = JSON.parse(await readFile(f('plan.json'), 'utf8')) as { paths: { id: string }[] };
    expect(plan.paths.length).toBe(2);
    ok(await runCli('verify', f('plan.json'), f('pins', 'ct.nii.gz'), '--labels', labels, '--out', f('ver.json')));
    ok(
      await runCli(
        ...['cement', '--plan', f('plan.json'), '--baseline', f('pins', 'ct.nii.gz')],
        ...['--scan', f('cem', 'ct.nii.gz'), '--labels', labels, '--out', f('cem.json')],
      ),
    );

    // 3. The report, written as DICOM and stored back to the PACS.
    const rep = ok(
      await runCli(
        ...['report', '--plan', f('plan.json'), '--verification', f('ver.json'), '--cement', f('cem.json')],
        ...['--image-size', '96', '--out', f('report.pdf'), '--dicom', f('dicom-out'), '--pacs', url],
      ),
    );
    expect(rep.out).toContain(`stored 2 DICOM object(s)`);

    // 4. QIDO: the DOC and the SR are in the CT's study, with its patient; the CT is still there.
    const client = pacsClient(url);
    const series = await client.searchSeries(ctStudy);
    const modalities = series.map((s) => jsonString(s, '00080060')).sort();
    expect(modalities).toEqual(['CT', 'DOC', 'SR']);
    const studies = await client.searchStudies({ PatientID: ctPatientId });
    expect(studies).toHaveLength(1);
    for (const modality of ['DOC', 'SR']) {
      const inst = await client.searchInstances(ctStudy, undefined, { Modality: modality, includefield: ['00100020'] });
      expect(inst, modality).toHaveLength(1);
    }
    // The stored SR is the one written, and its coordinates reference the pulled CT's frame.
    const sr = new Uint8Array(await readFile(f('dicom-out', 'plan-sr.dcm')));
    const srUid = parseDicom(sr, 'plan-sr.dcm').string('x00080018') ?? '';
    const back = await client.searchInstances(ctStudy, undefined, { SOPInstanceUID: srUid });
    expect(back).toHaveLength(1);
    expect(Buffer.from(sr).toString('latin1')).toContain(ctFrame);
    expect(parseDicom(sr, 'plan-sr.dcm').string('x00100020')).toBe(ctPatientId);
  }, 240000);
});
