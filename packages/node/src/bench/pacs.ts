/**
 * pacs benchmark (issue 19): retrieve a 512 x 512 x 400 CT (int16, 400 instances, about 210 MB) from a
 * private Orthanc through Corridor, beside the plainest retrievals of the same instances from the same
 * Orthanc, side by side (taking turns, round after round), each the median of 5 rounds after a warm-up: one WADO-RS GET of the study read to
 * its end with node:http and nothing parsed; curl writing that answer to a file; and Orthanc's own
 * GET /instances/{id}/file for each instance in turn. Goal: Corridor within 1.5x the plainest.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createVolume, parseDicom, writeDicomSeries } from '@corridor/core';
import { pacsClient, pullStudy } from '../cli/pacs.js';
import { orthancAvailability, startOrthanc } from '../pacs/orthanc.js';
import type { BenchRow } from './types.js';

const DIMS: [number, number, number] = [512, 512, 400];
const RUNS = 5;
const ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*';

/** GET url, reading the body to its end; resolves with the number of body bytes. */
function drain(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`${url}: HTTP ${res.statusCode}`));
      let n = 0;
      res.on('data', (c: Buffer) => (n += c.length));
      res.on('end', () => resolve(n));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

async function getJson<T>(url: string): Promise<T> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return (await r.json()) as T;
}

function syntheticCt() {
  const [nx, ny, nz] = DIMS;
  const data = new Int16Array(nx * ny * nz);
  // A body-like ellipse with a little texture (not a constant: nothing downstream may special-case it).
  for (let k = 0; k < nz; k++)
    for (let j = 0; j < ny; j++) {
      const row = (k * ny + j) * nx;
      for (let i = 0; i < nx; i++) {
        const r = ((i - 256) / 220) ** 2 + ((j - 256) / 170) ** 2;
        data[row + i] = r < 1 ? 40 + ((i * 7 + j * 13 + k * 3) % 61) : -1000;
      }
    }
  const m = new Float64Array([0.7, 0, 0, -179, 0, 0.7, 0, -179, 0, 0, 1, -200, 0, 0, 0, 1]);
  return createVolume({ data, dims: DIMS, indexToPatient: m, meta: { source: 'bench pacs ct' } });
}

export async function benchPacs(): Promise<BenchRow[]> {
  const avail = orthancAvailability();
  if (!avail.ok)
    return [
      { name: 'retrieve 512x512x400 CT from Orthanc', value: NaN, unit: 'ms', notes: `not run: ${avail.reason}` },
    ];
  const orthanc = await startOrthanc({ httpThreads: 4 });
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'corridor-bench-pacs-'));
  const rows: BenchRow[] = [];
  try {
    const files = writeDicomSeries(syntheticCt(), { patientId: 'BENCH-PACS', uidSeed: 'bench-pacs' }).map(
      (f) => f.bytes,
    );
    const totalBytes = files.reduce((s, b) => s + b.length, 0);
    const mb = totalBytes / 1e6;
    const studyUid = parseDicom(files[0], 'slice 1').string('x0020000d') ?? '';
    const client = pacsClient(orthanc.dicomWebUrl);
    const t0 = performance.now();
    const stored = await client.store(files);
    const storeMs = performance.now() - t0;
    if (stored.stored.length !== files.length)
      throw new Error(`Orthanc stored ${stored.stored.length} of ${files.length}`);
    rows.push({
      name: `store ${DIMS.join('x')} CT to Orthanc (STOW-RS, ${files.length} instances)`,
      value: storeMs,
      unit: 'ms',
      notes: `${(mb / (storeMs / 1000)).toFixed(0)} MB/s; ${mb.toFixed(0)} MB in 64 MiB requests; once`,
    });
    files.length = 0; // let the sent copy go before retrieving

    const wadoUrl = `${orthanc.httpUrl}/dicom-web/studies/${studyUid}`;
    const ids = await getJson<string[]>(`${orthanc.httpUrl}/instances`);
    const curlFile = path.join(tmp, 'study.multipart');
    const curl = spawnSync('curl', ['--version'], { stdio: 'ignore' }).status === 0;
    let pullRun = 0;
    const methods: Record<string, () => Promise<number>> = {
      plainWado: () => drain(wadoUrl, { Accept: ACCEPT }),
      plainFiles: async () => {
        let n = 0;
        for (const id of ids) n += await drain(`${orthanc.httpUrl}/instances/${id}/file`);
        return n;
      },
      ...(curl
        ? {
            plainCurl: () => {
              const r = spawnSync('curl', ['-sf', '-H', `Accept: ${ACCEPT}`, '-o', curlFile, wadoUrl]);
              if (r.status !== 0) throw new Error(`curl failed (${r.status})`);
              return Promise.resolve(0);
            },
          }
        : {}),
      corridorMem: async () => {
        let n = 0;
        let bytes = 0;
        await client.retrieveStudy(studyUid, {
          onInstance: (b) => {
            n++;
            bytes += b.length;
          },
        });
        if (n !== ids.length) throw new Error(`retrieved ${n} of ${ids.length} instances`);
        return bytes;
      },
      corridorPull: async () => {
        const dir = path.join(tmp, `pull-${pullRun++}`);
        const s = await pullStudy(client, studyUid, dir);
        await rm(dir, { recursive: true, force: true });
        return s.instances;
      },
    };
    // Side by side: the methods take turns in each round (a warm-up round first), so a change in the
    // machine's load falls on all of them alike; the median of the rounds per method.
    const times: Record<string, number[]> = {};
    for (let round = 0; round <= RUNS; round++)
      for (const [name, fn] of Object.entries(methods)) {
        const t = performance.now();
        await fn();
        if (round > 0) (times[name] ??= []).push(performance.now() - t);
      }
    const med = (name: string) => {
      const v = [...(times[name] ?? [])].sort((a, b) => a - b);
      return { ms: v[Math.floor(v.length / 2)] };
    };
    const plainWado = med('plainWado');
    const plainFiles = med('plainFiles');
    const plainCurl = curl ? med('plainCurl') : undefined;
    const corridorMem = med('corridorMem');
    const corridorPull = med('corridorPull');
    const plainest = Math.min(plainWado.ms, plainFiles.ms, plainCurl?.ms ?? Infinity);
    const load = `load average ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} cores`;
    const ratio = (ms: number, ref: number) => `${(ms / ref).toFixed(2)}x`;
    rows.push(
      {
        name: 'plain: one WADO-RS GET of the study, body drained (node:http, nothing parsed)',
        value: plainWado.ms,
        unit: 'ms',
        notes: `${(mb / (plainWado.ms / 1000)).toFixed(0)} MB/s; median of ${RUNS}`,
      },
      {
        name: `plain: GET /instances/{id}/file for each of ${ids.length} instances in turn (node:http)`,
        value: plainFiles.ms,
        unit: 'ms',
        notes: `${(mb / (plainFiles.ms / 1000)).toFixed(0)} MB/s; median of ${RUNS}`,
      },
    );
    if (plainCurl)
      rows.push({
        name: 'plain: curl, one WADO-RS GET of the study to a file',
        value: plainCurl.ms,
        unit: 'ms',
        notes: `${(mb / (plainCurl.ms / 1000)).toFixed(0)} MB/s; median of ${RUNS}`,
      });
    rows.push(
      {
        name: `Corridor: DicomWebClient.retrieveStudy, ${ids.length} instances parsed out of the stream into memory`,
        value: corridorMem.ms,
        unit: 'ms',
        notes: `${ratio(corridorMem.ms, plainest)} the plainest retrieval (goal <= 1.5x); median of ${RUNS}; ${load}`,
      },
      {
        name: 'Corridor: corridor pacs pull to a folder (each instance written atomically, fsynced)',
        value: corridorPull.ms,
        unit: 'ms',
        notes:
          `${ratio(corridorPull.ms, plainest)} the plainest retrieval` +
          (plainCurl ? `, ${ratio(corridorPull.ms, plainCurl.ms)} curl to one file` : '') +
          `; median of ${RUNS}`,
      },
    );
  } finally {
    await orthanc.stop();
    await rm(tmp, { recursive: true, force: true });
  }
  return rows;
}
