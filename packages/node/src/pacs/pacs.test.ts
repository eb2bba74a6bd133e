/**
 * The PACS path against a real Orthanc (Debian's, with its DICOMweb plugin) on a loopback port: the
 * phantom written as a DICOM CT series is pushed (STOW-RS), found (QIDO-RS) and pulled (WADO-RS) through
 * the CLI, and the pulled folder loads to the phantom's own voxels and geometry (the in-memory volume, not
 * the files sent). Errors name the URL and status; a cancelled pull leaves only whole files.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CancelledError, PacsError, generatePhantom, parseDicom, writeDicomSeries, type Volume } from '@corridor/core';
import { loadPath } from '../io/load.js';
import { runCli } from '../test-helpers/run-cli.js';
import { describeOrthanc } from '../test-helpers/orthanc.js';
import { freePort } from './orthanc.js';
import { pacsClient, pullStudy } from '../cli/pacs.js';

let tmp: string;
let seriesDir: string;
let phantom: Volume;
let sent: { name: string; bytes: Uint8Array }[];
let studyUid: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'corridor-pacs-'));
  phantom = generatePhantom({ voxelMm: 4, noise: false }).ct;
  sent = writeDicomSeries(phantom, { patientName: 'PHANTOM^PACS', patientId: 'CORRIDOR-PACS-1', uidSeed: 'pacs-test' });
  seriesDir = path.join(tmp, 'series');
  await mkdir(seriesDir);
  await Promise.all(sent.map((f) => writeFile(path.join(seriesDir, f.name), f.bytes)));
  // A file that is not DICOM beside them: push must skip it and say so.
  await writeFile(path.join(seriesDir, 'notes.txt'), 'not an image\n');
  studyUid = parseDicom(sent[0].bytes, sent[0].name).string('x0020000d') ?? '';
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describeOrthanc('corridor pacs against Orthanc', (orthanc) => {
  it('push, find, pull: the pulled series is the phantom, voxel for voxel, at its geometry', async () => {
    const url = orthanc().dicomWebUrl;
    const push = await runCli('pacs', 'push', seriesDir, '--url', url);
    expect(push.code, push.err).toBe(0);
    expect(push.out).toContain(`stored ${sent.length} of ${sent.length} instances`);
    expect(push.err).toContain('notes.txt');

    const find = await runCli('pacs', 'find', '--url', url, '--patient', 'CORRIDOR-PACS-*', '--json');
    expect(find.code, find.err).toBe(0);
    const studies = JSON.parse(find.out) as { studyInstanceUid: string; patientName: string; instances: number }[];
    expect(studies).toHaveLength(1);
    expect(studies[0]).toMatchObject({
      studyInstanceUid: studyUid,
      patientName: 'PHANTOM^PACS',
      instances: sent.length,
    });
    const none = await runCli('pacs', 'find', '--url', url, '--patient', 'SOMEONE-ELSE', '--json');
    expect(JSON.parse(none.out)).toEqual([]);
    const series = await runCli('pacs', 'find', '--url', url, '--study', studyUid);
    expect(series.out).toMatch(new RegExp(`CT\\s+\\d+\\s+${sent.length}\\s`));

    const out = path.join(tmp, 'pulled');
    const pull = await runCli('pacs', 'pull', studyUid, '--out', out, '--url', url);
    expect(pull.code, pull.err).toBe(0);
    expect(pull.out).toContain(`wrote ${sent.length} instances`);
    const names = await readdir(out);
    expect(names).toHaveLength(sent.length);
    expect(names.every((n) => /^[0-9.]+\.dcm$/.test(n))).toBe(true);

    const { series: loaded } = await loadPath(out);
    expect(loaded).toHaveLength(1);
    const v = loaded[0].volume;
    expect(v.dims).toEqual(phantom.dims);
    for (let i = 0; i < 16; i++) expect(v.indexToPatient[i]).toBeCloseTo(phantom.indexToPatient[i], 6);
    expect(v.data.length).toBe(phantom.data.length);
    let differ = 0;
    for (let i = 0; i < v.data.length; i++) if (v.data[i] !== phantom.data[i]) differ++;
    expect(differ).toBe(0);
    // As stored (transfer-syntax=*): every file comes back byte for byte.
    const byName = new Map(sent.map((f) => [parseDicom(f.bytes, f.name).string('x00080018'), f.bytes]));
    for (const n of names) {
      const got = new Uint8Array(await readFile(path.join(out, n)));
      expect(Buffer.compare(got, Buffer.from(byName.get(n.replace(/\.dcm$/, '')) ?? []))).toBe(0);
    }
  });

  it('cancel mid-retrieve: CancelledError, and every file written is whole', async () => {
    const client = pacsClient(orthanc().dicomWebUrl);
    const ac = new AbortController();
    const out = path.join(tmp, 'cancelled');
    const run = pullStudy(client, studyUid, out, {
      signal: ac.signal,
      onProgress: (n) => {
        if (n >= 3) ac.abort();
      },
    });
    await expect(run).rejects.toBeInstanceOf(CancelledError);
    const names = await readdir(out);
    expect(names.length).toBeGreaterThanOrEqual(3);
    expect(names.length).toBeLessThan(sent.length);
    for (const n of names) {
      const bytes = new Uint8Array(await readFile(path.join(out, n)));
      expect(parseDicom(bytes, n).string('x00080018')).toBe(n.replace(/\.dcm$/, ''));
    }
  });

  it('push --deidentify: Orthanc gets copies with no trace of the patient, UIDs linked by the case key', async () => {
    const url = orthanc().dicomWebUrl;
    const key = 'case-key-for-the-pacs-test';
    const push = await runCli(
      'pacs',
      'push',
      seriesDir,
      '--url',
      url,
      '--deidentify',
      '--case-key',
      key,
      '--patient-id',
      'CASE-0042',
    );
    expect(push.code, push.err).toBe(0);
    expect(push.out).toContain(`stored ${sent.length} of ${sent.length} instances`);
    const found = JSON.parse((await runCli('pacs', 'find', '--url', url, '--patient', 'CASE-0042', '--json')).out) as {
      studyInstanceUid: string;
      patientName: string;
    }[];
    expect(found).toHaveLength(1);
    expect(found[0].patientName).toBe('');
    expect(found[0].studyInstanceUid).not.toBe(studyUid);
    // The same case key again: the same new UIDs, so Orthanc still holds one such study of as many instances.
    await runCli(
      'pacs',
      'push',
      seriesDir,
      '--url',
      url,
      '--deidentify',
      '--case-key',
      key,
      '--patient-id',
      'CASE-0042',
    );
    const again = JSON.parse((await runCli('pacs', 'find', '--url', url, '--patient', 'CASE-0042', '--json')).out) as {
      studyInstanceUid: string;
      instances: number;
    }[];
    expect(again.map((a) => [a.studyInstanceUid, a.instances])).toEqual([[found[0].studyInstanceUid, sent.length]]);
    // The original study is there once, from the first test; no second study carries the name.
    const byName = JSON.parse(
      (await runCli('pacs', 'find', '--url', url, '--name', 'PHANTOM*', '--json')).out,
    ) as unknown[];
    expect(byName).toHaveLength(1);
    const out = path.join(tmp, 'deidentified');
    expect((await runCli('pacs', 'pull', found[0].studyInstanceUid, '--out', out, '--url', url)).code).toBe(0);
    for (const n of await readdir(out)) {
      const text = (await readFile(path.join(out, n))).toString('latin1');
      expect(text).not.toMatch(/PHANTOM\^PACS|CORRIDOR-PACS-1/);
      expect(text).not.toContain(studyUid);
    }
    const { series: loaded } = await loadPath(out);
    expect(loaded[0].volume.dims).toEqual(phantom.dims);
    expect(Array.from(loaded[0].volume.data).every((x, i) => x === phantom.data[i])).toBe(true);
  });

  it('errors name the URL and the status', async () => {
    const url = orthanc().dicomWebUrl;
    const client = pacsClient(url);
    const missing = '1.2.3.4.5.6.7.8.9';
    const e = await client.retrieveStudy(missing).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(PacsError);
    expect((e as PacsError).status).toBe(404);
    expect((e as PacsError).message).toContain(`${url}/studies/${missing}`);
    const cli = await runCli('pacs', 'pull', missing, '--out', path.join(tmp, 'none'), '--url', url);
    expect(cli.code).toBe(2);
    expect(cli.err).toContain(`no study ${missing}`);
    const dead = `http://127.0.0.1:${await freePort()}/dicom-web`;
    const d = await runCli('pacs', 'find', '--url', dead);
    expect(d.code).toBe(2);
    expect(d.err).toMatch(new RegExp(`PacsError: ${dead.replace(/[./]/g, '\\$&')}/studies.*could not reach`));
    const bad = await runCli('pacs', 'pull', 'not-a-uid', '--out', tmp, '--url', url);
    expect(bad.err).toContain('is not a DICOM UID');
  });
});
