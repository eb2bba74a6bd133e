/**
 * POST /api/cases/{case}/export: the case's DICOM objects, de-identified by core's PS3.15 Basic Profile
 * (deidentifyDicom) with one UID map per case, so that UIDs are replaced consistently within the case:
 * across its series (the CT, its SEG, the report's SR and PDF) and across exports, and references
 * between them (a SEG's referenced series and instances, an SR's evidence) still resolve. The map's key is
 * the case's own, random, kept in the store (never sent), so different cases get unrelated UIDs.
 *
 * The objects: every DICOM file kept in the case's series (`blobs`), the series it names in the PACS
 * (retrieved again from the server's PACS, WADO-RS; skipped with the reason without one), plus those sent in the body
 * (`objects`: `[{name, base64}]`, e.g. the report's SR and Encapsulated PDF from POST /api/report). Files
 * that are not DICOM Part 10 (a NIfTI, a 3D run) are listed as skipped. Answered as
 * `multipart/related; type="application/dicom"` (one part per instance, as WADO-RS gives them, then one
 * `application/json` part: the profile, the objects skipped and why, the warnings), or with
 * `"to": "pacs"` stored to the server's PACS (STOW-RS) and answered with a JSON summary.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { BASIC_PROFILE_EDITION, CorridorError, DicomWebClient, UidMap, deidentifyDicom } from '@corridor/core';
import { nodeFetch } from '../pacs/http-fetch.js';
import type { CaseStore } from './case-store.js';
import { sendJson } from './case-api.js';
import { HttpError, readJsonObject } from './http-body.js';

interface ExportObject {
  name: string;
  /** Read when needed (a series' file from the store): one instance in memory at a time. */
  bytes: () => Promise<Uint8Array>;
}

async function readAll(s: NodeJS.ReadableStream): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const isPart10 = (b: Uint8Array) =>
  b.length > 132 && b[128] === 0x44 && b[129] === 0x49 && b[130] === 0x43 && b[131] === 0x4d;

/** A series the case names in the PACS: retrieved again (WADO-RS) from the server's PACS on export. */
interface PacsSource {
  name: string;
  studyInstanceUid: string;
  seriesInstanceUids: string[];
}

/** The case's DICOM objects: the files of its series, the series it names in the PACS, then the ones sent. */
function caseObjects(store: CaseStore, caseId: string, sent: unknown): { objects: ExportObject[]; pacs: PacsSource[] } {
  const out: ExportObject[] = [];
  const pacs: PacsSource[] = [];
  for (const h of store.listDocuments(caseId, 'series')) {
    const doc = store.read(caseId, 'series', h.name);
    if (!doc) continue;
    const d = JSON.parse(doc.body) as {
      blobs?: { sha256: string; name: string }[];
      pacs?: { studyInstanceUid: string; seriesInstanceUid: string; segmentations?: string[] };
    };
    // Named by the series and a number only: a file's own name may name the patient (the summary goes out).
    for (const [i, b] of (d.blobs ?? []).entries())
      out.push({ name: `${h.name}/${i + 1}`, bytes: () => readAll(store.blobs.read(b.sha256)) });
    if (d.pacs)
      pacs.push({
        name: h.name,
        studyInstanceUid: d.pacs.studyInstanceUid,
        seriesInstanceUids: [d.pacs.seriesInstanceUid, ...(d.pacs.segmentations ?? [])],
      });
  }
  if (sent !== undefined) {
    if (!Array.isArray(sent) || sent.length > 1000) {
      throw new HttpError(422, 'bad-export', 'objects must be a list of at most 1000 {name, base64}');
    }
    for (const [i, o] of (sent as { name?: unknown; base64?: unknown }[]).entries()) {
      if (typeof o?.base64 !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(o.base64)) {
        throw new HttpError(422, 'bad-export', `objects[${i}].base64 must be base64`);
      }
      const bytes = new Uint8Array(Buffer.from(o.base64, 'base64'));
      out.push({
        name: `objects[${i}]`,
        bytes: () => Promise.resolve(bytes),
      });
    }
  }
  return { objects: out, pacs };
}

/** Handle POST /api/cases/{case}/export. */
export async function handleExport(
  req: IncomingMessage,
  res: ServerResponse,
  store: CaseStore,
  caseId: string,
  opts: { bodyLimit: number; headers: Record<string, string>; pacsUrl: string | undefined },
): Promise<number> {
  if (req.method !== 'POST') {
    throw new HttpError(405, 'method-not-allowed', 'an export is made with POST', {
      extra: { allow: 'POST' },
      close: true,
    });
  }
  if (!store.hasCase(caseId)) throw new HttpError(404, 'not-found', `no case "${caseId}"`, { close: true });
  const { value } = await readJsonObject(req, opts.bodyLimit);
  if (value.deidentify !== true) {
    throw new HttpError(422, 'bad-export', 'an export from the case store is de-identified: send "deidentify": true');
  }
  for (const k of ['patientName', 'patientId'] as const) {
    const v = value[k];
    if (v !== undefined && (typeof v !== 'string' || v.length > 64 || /[\\\0-\x1f]/.test(v))) {
      throw new HttpError(422, 'bad-export', `${k} must be a pseudonym of at most 64 characters`);
    }
  }
  const to = value.to ?? 'download';
  if (to !== 'download' && to !== 'pacs') throw new HttpError(422, 'bad-export', 'to is "download" or "pacs"');
  if (to === 'pacs' && !opts.pacsUrl) {
    throw new HttpError(503, 'no-pacs', 'this server was started without a PACS (corridor start --pacs URL)');
  }
  const { objects, pacs } = caseObjects(store, caseId, value.objects);
  const uids = new UidMap(store.exportKey(caseId, () => randomBytes(32).toString('hex')));
  const deid = {
    uids,
    ...(typeof value.patientName === 'string' ? { patientName: value.patientName } : {}),
    ...(typeof value.patientId === 'string' ? { patientId: value.patientId } : {}),
  };
  const skipped: { name: string; reason: string }[] = [];
  const warnings = new Set<string>();
  /** The de-identified instances one after another (null: this one was skipped). */
  async function* sources(): AsyncGenerator<{ name: string; bytes: Uint8Array }> {
    for (const p of pacs) {
      if (!opts.pacsUrl) {
        skipped.push({ name: `${p.name} (PACS series)`, reason: 'this server has no PACS to retrieve it from' });
        continue;
      }
      const client = new DicomWebClient({ url: opts.pacsUrl, fetch: nodeFetch });
      for (const [k, series] of p.seriesInstanceUids.entries()) {
        const label = k === 0 ? 'series' : `segmentation ${k}`;
        const got: Uint8Array[] = [];
        try {
          await client.retrieveSeries(p.studyInstanceUid, series, { onInstance: (b) => void got.push(b.slice()) });
        } catch {
          // Its message may carry the UIDs (in the URL): said without it.
          skipped.push({ name: `${p.name} (PACS ${label})`, reason: 'the PACS did not give it' });
          continue;
        }
        for (const [i, b] of got.entries()) yield { name: `${p.name}/${label}/${i + 1}`, bytes: b };
      }
    }
    for (const o of objects) yield { name: o.name, bytes: await o.bytes() };
  }
  async function* instances(): AsyncGenerator<Uint8Array> {
    for await (const o of sources()) {
      const bytes = o.bytes;
      if (!isPart10(bytes)) {
        skipped.push({ name: o.name, reason: 'not a DICOM Part 10 file' });
        continue;
      }
      try {
        const d = deidentifyDicom(bytes, o.name, deid);
        for (const w of d.warnings) warnings.add(w);
        yield d.bytes;
      } catch (err) {
        if (!(err instanceof CorridorError)) throw err;
        skipped.push({ name: o.name, reason: err.message });
      }
    }
  }
  const summary = () => ({
    profile: `PS3.15 ${BASIC_PROFILE_EDITION} Basic Application Level Confidentiality Profile`,
    skipped,
    warnings: [...warnings],
  });
  if (to === 'pacs') {
    const all: Uint8Array[] = [];
    for await (const b of instances()) all.push(b);
    if (all.length === 0) throw new HttpError(422, 'nothing-to-export', 'the case holds no DICOM object to export');
    let r;
    try {
      r = await new DicomWebClient({ url: opts.pacsUrl ?? '', fetch: nodeFetch }).store(all);
    } catch (err) {
      throw new HttpError(502, 'pacs-failed', `the PACS did not take the export: ${(err as Error).message}`);
    }
    sendJson(
      res,
      200,
      { instances: all.length, stored: r.stored.length, failed: r.failed, ...summary() },
      opts.headers,
    );
    return 200;
  }
  const boundary = `corridor-${randomBytes(12).toString('hex')}`;
  res.writeHead(200, {
    ...opts.headers,
    'Content-Type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
    'Content-Disposition': `attachment; filename="${caseId}-deidentified.multipart"`,
    'Cache-Control': 'no-store',
  });
  try {
    for await (const b of instances()) {
      const head = `--${boundary}\r\nContent-Type: application/dicom\r\nContent-Length: ${b.length}\r\n\r\n`;
      if (!res.write(head) || !res.write(b) || !res.write('\r\n')) {
        await new Promise<void>((resolve) => res.once('drain', resolve));
      }
    }
  } catch {
    res.destroy();
    return 500;
  }
  const tail = JSON.stringify(summary());
  res.end(
    `--${boundary}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(tail)}\r\n\r\n${tail}\r\n--${boundary}--\r\n`,
  );
  return 200;
}
