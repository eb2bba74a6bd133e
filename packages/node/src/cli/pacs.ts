/**
 * `corridor pacs push|find|pull`: a DICOMweb PACS (STOW-RS, QIDO-RS, WADO-RS) from the command line, with
 * core's DicomWebClient. Pulled instances are written one by one as they arrive, each atomically
 * (io/atomic-write.ts), named by SOP Instance UID, so the folder reads back with `corridor info DIR`.
 */
import { lstat, readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import {
  DicomWebClient,
  UidMap,
  deidentifyDicom,
  type DeidentifyOptions,
  UsageError,
  isDicomUid,
  jsonString,
  jsonStrings,
  mightBeDicom,
  parseDicom,
  type DicomJson,
  type QidoQuery,
} from '@corridor/core';
import { writeFileAtomic } from '../io/atomic-write.js';
import { checkOutputs } from '../io/output-guard.js';
import { progressBar } from './progress.js';
import { nodeFetch } from '../pacs/http-fetch.js';

export const DEFAULT_PACS_URL = 'http://127.0.0.1:8042/dicom-web';

/** A DICOMweb client over node:http (see pacs/http-fetch.ts for why not the built-in fetch). */
export function pacsClient(url: string): DicomWebClient {
  return new DicomWebClient({ url, fetch: nodeFetch });
}

interface UrlOpts {
  url: string;
  quiet?: boolean;
  progress?: boolean;
}

/** Cancel on Ctrl+C: the request is aborted, files already written stay whole. */
function interruptSignal(): { signal: AbortSignal; dispose: () => void } {
  const ac = new AbortController();
  const onInt = () => ac.abort(new Error('interrupted'));
  process.once('SIGINT', onInt);
  return { signal: ac.signal, dispose: () => process.off('SIGINT', onInt) };
}

/** Regular files under p (a file or a folder, recursively; links are not followed), sorted. */
export async function listFilesUnder(p: string): Promise<string[]> {
  const st = await stat(p).catch(() => {
    throw new UsageError('no such file or folder', p);
  });
  if (st.isFile()) return [p];
  if (!st.isDirectory()) throw new UsageError('is neither a file nor a folder', p);
  const out: string[] = [];
  const walk = async (dir: string) => {
    const entries = await readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const f = path.join(dir, e.name);
      if (e.isDirectory()) await walk(f);
      else if (e.isFile()) out.push(f);
    }
  };
  await walk(p);
  return out;
}

export interface PushSummary {
  files: number;
  stored: number;
  failed: { file?: string; sopInstanceUid: string; reason: number }[];
  skipped: string[];
  bytes: number;
  warnings: string[];
}

/** Push every DICOM file under p, in requests of up to batchBytes. */
export async function pushPath(
  client: DicomWebClient,
  p: string,
  options: {
    signal?: AbortSignal;
    onProgress?: (files: number, total: number, bytes: number) => void;
    batchBytes?: number;
    /** De-identify each instance (PS3.15 Basic Profile, core's deidentifyDicom) before it is sent. */
    deidentify?: DeidentifyOptions;
  } = {},
): Promise<PushSummary> {
  const files = await listFilesUnder(p);
  const summary: PushSummary = { files: 0, stored: 0, failed: [], skipped: [], bytes: 0, warnings: [] };
  const batchBytes = options.batchBytes ?? 32 * 1024 * 1024;
  let batch: { file: string; bytes: Uint8Array }[] = [];
  let size = 0;
  let seen = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    const r = await client.store(
      batch.map((b) => b.bytes),
      { signal: options.signal },
    );
    summary.stored += r.stored.length;
    for (const f of r.failed) {
      const uidFile = batch.find((b) => sopUidOf(b.bytes) === f.sopInstanceUid)?.file;
      summary.failed.push({ ...f, ...(uidFile ? { file: uidFile } : {}) });
    }
    summary.files += batch.length;
    summary.bytes += size;
    batch = [];
    size = 0;
    options.onProgress?.(seen, files.length, summary.bytes);
  };
  for (const f of files) {
    seen++;
    let bytes: Uint8Array = new Uint8Array(await readFile(f));
    if (!mightBeDicom(bytes.subarray(0, 1024), bytes.length)) {
      summary.skipped.push(f);
      continue;
    }
    if (options.deidentify) {
      const d = deidentifyDicom(bytes, f, options.deidentify);
      summary.warnings.push(...d.warnings);
      bytes = d.bytes;
    }
    batch.push({ file: f, bytes });
    size += bytes.length;
    if (size >= batchBytes) await flush();
  }
  await flush();
  return summary;
}

function sopUidOf(bytes: Uint8Array): string | undefined {
  try {
    return parseDicom(bytes, 'instance').string('x00080018') ?? undefined;
  } catch {
    return undefined;
  }
}

export interface StudyRow {
  studyInstanceUid: string;
  patientId: string;
  patientName: string;
  studyDate: string;
  studyDescription: string;
  accessionNumber: string;
  modalities: string[];
  series: number | undefined;
  instances: number | undefined;
}

export interface SeriesRow {
  seriesInstanceUid: string;
  modality: string;
  seriesNumber: string;
  seriesDescription: string;
  instances: number | undefined;
}

const num = (s: string | undefined) => (s === undefined || s === '' ? undefined : Number(s));

export function studyRow(ds: DicomJson): StudyRow {
  return {
    studyInstanceUid: jsonString(ds, '0020000D') ?? '',
    patientId: jsonString(ds, '00100020') ?? '',
    patientName: jsonString(ds, '00100010') ?? '',
    studyDate: jsonString(ds, '00080020') ?? '',
    studyDescription: jsonString(ds, '00081030') ?? '',
    accessionNumber: jsonString(ds, '00080050') ?? '',
    modalities: jsonStrings(ds, '00080061'),
    series: num(jsonString(ds, '00201206')),
    instances: num(jsonString(ds, '00201208')),
  };
}

export function seriesRow(ds: DicomJson): SeriesRow {
  return {
    seriesInstanceUid: jsonString(ds, '0020000E') ?? '',
    modality: jsonString(ds, '00080060') ?? '',
    seriesNumber: jsonString(ds, '00200011') ?? '',
    seriesDescription: jsonString(ds, '0008103E') ?? '',
    instances: num(jsonString(ds, '00201209')),
  };
}

const WRITES_IN_FLIGHT = 8;

export interface PullSummary {
  instances: number;
  bytes: number;
  files: string[];
}

/** Retrieve a study (or one series of it) into dir, each instance written atomically as it arrives. */
export async function pullStudy(
  client: DicomWebClient,
  studyUid: string,
  dir: string,
  options: {
    seriesUid?: string;
    signal?: AbortSignal;
    force?: boolean;
    onProgress?: (instances: number, total: number | undefined, bytes: number) => void;
  } = {},
): Promise<PullSummary> {
  if (!isDicomUid(studyUid)) throw new UsageError(`StudyInstanceUID "${studyUid}" is not a DICOM UID`);
  if (options.seriesUid !== undefined && !isDicomUid(options.seriesUid))
    throw new UsageError(`SeriesInstanceUID "${options.seriesUid}" is not a DICOM UID`);
  // The count first (QIDO), so progress has a total; a study the PACS does not know is named as such.
  let total: number | undefined;
  if (options.seriesUid) {
    const s = await client.searchSeries(
      studyUid,
      { SeriesInstanceUID: options.seriesUid, includefield: ['NumberOfSeriesRelatedInstances'] },
      options,
    );
    if (s.length === 0)
      throw new UsageError(`no series ${options.seriesUid} in study ${studyUid} on the PACS`, client.url);
    total = seriesRow(s[0]).instances;
  } else {
    const s = await client.searchStudies(
      { StudyInstanceUID: studyUid, includefield: ['NumberOfStudyRelatedInstances'] },
      options,
    );
    if (s.length === 0) throw new UsageError(`no study ${studyUid} on the PACS`, client.url);
    total = studyRow(s[0]).instances;
  }
  const summary: PullSummary = { instances: 0, bytes: 0, files: [] };
  const names = new Set<string>();
  // Up to WRITES_IN_FLIGHT files are written (and fsynced) while the stream goes on; past that, reading
  // waits, so memory stays bounded. The first failed write fails the pull.
  const inFlight = new Set<Promise<void>>();
  let writeError: Error | undefined;
  const write = async (file: string, bytes: Uint8Array) => {
    const exists = await lstat(file).then(
      () => true,
      () => false,
    );
    if (exists) await checkOutputs([{ file, kind: 'dicom' }], [], { force: options.force });
    await writeFileAtomic(file, bytes, { makeDir: true });
    summary.instances++;
    summary.bytes += bytes.length;
    summary.files.push(file);
  };
  const onInstance = async (bytes: Uint8Array, index: number) => {
    if (writeError) throw writeError;
    let uid = sopUidOf(bytes);
    if (!uid || !isDicomUid(uid)) uid = `instance-${String(index + 1).padStart(5, '0')}`;
    let name = `${uid}.dcm`;
    for (let n = 2; names.has(name); n++) name = `${uid}-${n}.dcm`;
    names.add(name);
    const p: Promise<void> = write(path.join(dir, name), bytes).then(
      () => void inFlight.delete(p),
      (e: unknown) => {
        inFlight.delete(p);
        writeError ??= e instanceof Error ? e : new Error(String(e));
      },
    );
    inFlight.add(p);
    if (index === 0) await p; // the folder is made by the first write
    while (inFlight.size >= WRITES_IN_FLIGHT) await Promise.race(inFlight);
    const failed = firstWriteError();
    if (failed) throw failed;
  };
  const firstWriteError = () => writeError;
  const progress = (p: { instances: number; bytes: number }) => options.onProgress?.(p.instances, total, p.bytes);
  const retrieve = { onInstance, onProgress: progress, totalInstances: total, signal: options.signal };
  try {
    if (options.seriesUid) await client.retrieveSeries(studyUid, options.seriesUid, retrieve);
    else await client.retrieveStudy(studyUid, retrieve);
  } finally {
    await Promise.all(inFlight);
  }
  if (writeError) throw writeError;
  summary.files.sort();
  return summary;
}

interface PushFlags {
  deidentify?: boolean;
  caseKey?: string;
  patientId?: string;
  patientName?: string;
}

function deidentifyOptions(opts: PushFlags): DeidentifyOptions | undefined {
  if (!opts.deidentify) {
    if (opts.caseKey !== undefined || opts.patientId !== undefined || opts.patientName !== undefined)
      throw new UsageError('--case-key, --patient-id and --patient-name go with --deidentify');
    return undefined;
  }
  let key = opts.caseKey;
  if (key === undefined) {
    key = UidMap.randomKey();
    // Shown once: pushing more of the same case later with this key keeps its UIDs linked.
    console.error(`case key (give it as --case-key to push more of this case with the same UIDs): ${key}`);
  }
  return {
    uids: new UidMap(key),
    ...(opts.patientId !== undefined ? { patientId: opts.patientId } : {}),
    ...(opts.patientName !== undefined ? { patientName: opts.patientName } : {}),
  };
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows
    .map((r) =>
      r
        .map((v, c) => v.padEnd(widths[c]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function register(program: Command): void {
  const pacs = program
    .command('pacs')
    .description('a DICOMweb PACS (e.g. Orthanc with its DICOMweb plugin): push, find, pull');
  const urlOption = (c: Command) =>
    c
      .option('--url <url>', 'DICOMweb root of the PACS', DEFAULT_PACS_URL)
      .option('--quiet', 'no progress bar on stderr')
      .option('--progress', 'a progress bar on stderr even when it is not a terminal');

  urlOption(
    pacs
      .command('push')
      .description('store every DICOM file under PATH (file or folder) to the PACS (STOW-RS)')
      .argument('<path>', 'a DICOM file or a folder of them (searched recursively)')
      .option(
        '--deidentify',
        'send de-identified copies (DICOM PS3.15 2024b Basic Profile); the files stay as they are',
      )
      .option('--case-key <key>', 'with --deidentify: the case key that maps UIDs (the same key, the same new UIDs)')
      .option('--patient-id <pseudonym>', 'with --deidentify: Patient ID to write (else emptied)')
      .option('--patient-name <pseudonym>', "with --deidentify: Patient's Name to write (else emptied)"),
  ).action(async (p: string, opts: UrlOpts & PushFlags) => {
    const client = pacsClient(opts.url);
    const deidentify = deidentifyOptions(opts);
    const bar = progressBar('push', { quiet: opts.quiet, progress: opts.progress, unit: 'files' });
    const { signal, dispose } = interruptSignal();
    try {
      const s = await pushPath(client, p, { signal, onProgress: (n, t, b) => bar.update(n, t, b), deidentify });
      bar.finish();
      for (const w of new Set(s.warnings)) console.error(`warning: ${w}`);
      for (const f of s.skipped) console.error(`skipped (not DICOM): ${f}`);
      for (const f of s.failed)
        console.error(`failed: ${f.file ?? f.sopInstanceUid} (reason 0x${f.reason.toString(16).padStart(4, '0')})`);
      console.log(`stored ${s.stored} of ${s.files} instances (${(s.bytes / 1e6).toFixed(1)} MB) to ${client.url}`);
      if (s.failed.length > 0) process.exitCode = 1;
    } finally {
      bar.finish();
      dispose();
    }
  });

  urlOption(
    pacs
      .command('find')
      .description('search the PACS (QIDO-RS): studies, or the series of one study with --study')
      .option('--patient <id>', 'PatientID (wildcards * and ? allowed)')
      .option('--name <name>', "PatientName, e.g. 'DOE^*'")
      .option('--study <uid>', 'StudyInstanceUID: list the series of this study')
      .option('--accession <number>', 'AccessionNumber')
      .option('--modality <code>', 'a modality in the study (ModalitiesInStudy), e.g. CT')
      .option('--date <range>', 'StudyDate, YYYYMMDD or a range YYYYMMDD-YYYYMMDD')
      .option('--limit <n>', 'at most this many results')
      .option('--json', 'print the results as JSON'),
  ).action(
    async (
      opts: UrlOpts & {
        patient?: string;
        name?: string;
        study?: string;
        accession?: string;
        modality?: string;
        date?: string;
        limit?: string;
        json?: boolean;
      },
    ) => {
      const client = pacsClient(opts.url);
      const limit = opts.limit === undefined ? undefined : Number(opts.limit);
      if (limit !== undefined && (!Number.isInteger(limit) || limit < 1))
        throw new UsageError(`--limit "${opts.limit}" is not a positive integer`);
      const q: QidoQuery = {
        PatientID: opts.patient,
        PatientName: opts.name,
        AccessionNumber: opts.accession,
        ModalitiesInStudy: opts.modality,
        StudyDate: opts.date,
        ...(limit !== undefined ? { limit } : {}),
      };
      const { signal, dispose } = interruptSignal();
      try {
        if (opts.study) {
          const series = (
            await client.searchSeries(
              opts.study,
              { ...q, includefield: ['NumberOfSeriesRelatedInstances', 'SeriesDescription'] },
              { signal },
            )
          ).map(seriesRow);
          if (opts.json) return console.log(JSON.stringify(series, null, 2));
          if (series.length === 0) return console.log('no series found');
          console.log(
            table([
              ['SeriesInstanceUID', 'modality', 'number', 'instances', 'description'],
              ...series.map((s) => [
                s.seriesInstanceUid,
                s.modality,
                s.seriesNumber,
                String(s.instances ?? ''),
                s.seriesDescription,
              ]),
            ]),
          );
          return;
        }
        const studies = (
          await client.searchStudies(
            {
              ...q,
              includefield: [
                'NumberOfStudyRelatedSeries',
                'NumberOfStudyRelatedInstances',
                'StudyDescription',
                'ModalitiesInStudy',
              ],
            },
            { signal },
          )
        ).map(studyRow);
        if (opts.json) return console.log(JSON.stringify(studies, null, 2));
        if (studies.length === 0) return console.log('no studies found');
        console.log(
          table([
            ['StudyInstanceUID', 'patient id', 'name', 'date', 'modalities', 'series', 'instances', 'description'],
            ...studies.map((s) => [
              s.studyInstanceUid,
              s.patientId,
              s.patientName,
              s.studyDate,
              s.modalities.join('\\'),
              String(s.series ?? ''),
              String(s.instances ?? ''),
              s.studyDescription,
            ]),
          ]),
        );
      } finally {
        dispose();
      }
    },
  );

  urlOption(
    pacs
      .command('pull')
      .description('retrieve a study (or one series) from the PACS (WADO-RS) into a folder, one file per instance')
      .argument('<study-uid>', 'StudyInstanceUID')
      .requiredOption('--out <dir>', 'folder to write into (created when missing)')
      .option('--series <uid>', 'only this series of the study')
      .option('--force', 'write over files of another kind with the same names'),
  ).action(async (studyUid: string, opts: UrlOpts & { out: string; series?: string; force?: boolean }) => {
    const client = pacsClient(opts.url);
    const bar = progressBar('pull', { quiet: opts.quiet, progress: opts.progress, unit: 'instances' });
    const { signal, dispose } = interruptSignal();
    try {
      const s = await pullStudy(client, studyUid, opts.out, {
        seriesUid: opts.series,
        signal,
        force: opts.force,
        onProgress: (n, t, b) => bar.update(n, t, b),
      });
      bar.finish();
      console.log(`wrote ${s.instances} instances (${(s.bytes / 1e6).toFixed(1)} MB) to ${opts.out}`);
    } finally {
      bar.finish();
      dispose();
    }
  });
}
