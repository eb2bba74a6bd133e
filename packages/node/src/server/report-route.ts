/**
 * POST /api/report: the procedure report of the workstation's case, made by node's makeReport (core's
 * buildProcedureReport, the PDF through pdf-lib with the DejaVu font, the DICOM objects), the same
 * function as `corridor report`. The body (JSON) names the plan, the verification and cement reports
 * the workstation computed, the planning image's DICOM attributes (patient, study, Frame of Reference:
 * the Encapsulated PDF and the SR then file with the CT in the PACS), the procedure and the C-arm. The
 * answer is JSON: the model, the PDF and the two DICOM objects (base64) and the Slicer markups; the
 * browser downloads the PDF and stores the DICOM objects through /api/pacs/dicom-web (STOW-RS). No key
 * image is drawn here (the voxels stay in the browser): the notes say so.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  CorridorError,
  DEFAULT_CARM_PRESET,
  carmPreset,
  checkReportInputs,
  parsePlan,
  type CementReport,
  type VerificationReport,
  type Volume,
} from '@corridor/core';
import { makeReport } from '../report/make.js';
import { HttpError, readJsonObject } from './http-body.js';
import { sendJson } from './case-api.js';

export const REPORT_ROUTE = '/api/report';
/** A plan and two reports are small; 16 MiB leaves room for many paths and cement scans. */
const REPORT_BODY_LIMIT = 16 * 1024 * 1024;

const META_KEYS = [
  'patientName',
  'patientId',
  'patientBirthDate',
  'patientSex',
  'studyInstanceUid',
  'studyDate',
  'studyDescription',
  'seriesInstanceUid',
  'frameOfReferenceUid',
  'modality',
] as const;

function kindOf<T>(x: unknown, kind: string, what: string): T | undefined {
  if (x === undefined || x === null) return undefined;
  if (typeof x !== 'object' || (x as { kind?: unknown }).kind !== kind)
    throw new HttpError(422, 'bad-report-input', `${what} is not a ${kind} report`);
  return x as T;
}

function strings(x: unknown, keys: readonly string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (x === undefined || x === null) return out;
  if (typeof x !== 'object') throw new HttpError(422, 'bad-report-input', `${what} must be an object`);
  for (const k of keys) {
    const v = (x as Record<string, unknown>)[k];
    if (v === undefined || v === null || v === '') continue;
    if (typeof v !== 'string' || v.length > 256)
      throw new HttpError(422, 'bad-report-input', `${what}.${k} must be a string of at most 256 characters`);
    out[k] = v;
  }
  return out;
}

export async function handleReportRequest(
  req: IncomingMessage,
  res: ServerResponse,
  headers: Record<string, string>,
): Promise<number> {
  if (req.method !== 'POST')
    throw new HttpError(405, 'method-not-allowed', 'method not allowed', { extra: { allow: 'POST' }, close: true });
  const { value } = await readJsonObject(req, REPORT_BODY_LIMIT);
  try {
    const plan = parsePlan(value.plan, 'plan');
    const verification = kindOf<VerificationReport>(value.verification, 'corridor-verification', 'verification');
    const cement = kindOf<CementReport>(value.cement, 'corridor-cement', 'cement');
    checkReportInputs({ plan, ...(verification ? { verification } : {}), ...(cement ? { cement } : {}) });
    const meta = strings(value.image, META_KEYS, 'image') as Volume['meta'];
    const procedure = strings(value.procedure, ['title', 'date', 'operator', 'institution'], 'procedure');
    const carm = typeof value.carm === 'string' ? value.carm : DEFAULT_CARM_PRESET;
    const made = await makeReport({
      plan,
      ...(verification ? { verification } : {}),
      ...(cement ? { cement } : {}),
      system: carmPreset(carm),
      imageMeta: meta,
      patient: {
        ...(meta.patientName ? { name: meta.patientName } : {}),
        ...(meta.patientId ? { id: meta.patientId } : {}),
        ...(meta.patientBirthDate ? { birthDate: meta.patientBirthDate } : {}),
        ...(meta.patientSex ? { sex: meta.patientSex } : {}),
      },
      procedure,
      sources: { plan: 'workstation' },
      generatedAt: new Date(),
      dicom: true,
    });
    const b64 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
    sendJson(
      res,
      200,
      {
        report: made.report,
        notes: [...made.notes, 'no key images: the workstation sends the plan and results, not the voxels'],
        pdf: b64(made.pdf),
        dicom: made.dicom && {
          pdf: b64(made.dicom.pdf),
          sr: b64(made.dicom.sr),
          markups: made.dicom.markups,
          frameOfReferenceUid: made.dicom.frameOfReferenceUid,
          frameOfReferenceFrom: made.dicom.frameOfReferenceFrom,
        },
      },
      headers,
    );
    return 200;
  } catch (err) {
    if (err instanceof CorridorError) throw new HttpError(422, 'bad-report-input', err.message);
    throw err;
  }
}
