/**
 * POST /api/report: the procedure report of the workstation's case, made by node's makeReport (core's
 * reportModel, the PDF through pdf-lib with the DejaVu font, the DICOM objects), the same function as
 * `corridor report`. The body is core's ReportRequest (read by core's parseReportRequest, the type the
 * web panel builds): the plan, the verification and cement reports the workstation computed, the
 * planning image's DICOM attributes (patient, study, Frame of Reference: the Encapsulated PDF and the SR
 * then file with the CT in the PACS), the procedure, the C-arm, the pelvic views and the key images the
 * workstation drew from its volumes (core's reportKeyImages in its case worker, PNG, base64): the voxels
 * stay in the browser, the images it drew go in the PDF and the HTML as they came. The answer is JSON:
 * the model, the PDF and the two DICOM objects (base64), the HTML page and the Slicer markups; the browser downloads
 * the PDF and stores the DICOM objects through /api/pacs/dicom-web (STOW-RS).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CorridorError, DEFAULT_CARM_PRESET, carmPreset, parseReportRequest } from '@corridor/core';
import { makeReport } from '../report/make.js';
import { HttpError, readJsonObject } from './http-body.js';
import { sendJson } from './case-api.js';

export const REPORT_ROUTE = '/api/report';
/** A plan and two reports are small; the key images (PNG) take most: 32 MiB leaves room for many. */
const REPORT_BODY_LIMIT = 32 * 1024 * 1024;

export async function handleReportRequest(
  req: IncomingMessage,
  res: ServerResponse,
  headers: Record<string, string>,
): Promise<number> {
  if (req.method !== 'POST')
    throw new HttpError(405, 'method-not-allowed', 'method not allowed', { extra: { allow: 'POST' }, close: true });
  const { value } = await readJsonObject(req, REPORT_BODY_LIMIT);
  try {
    const r = parseReportRequest(value);
    const meta = r.image;
    const made = await makeReport({
      plan: r.plan,
      ...(r.verification ? { verification: r.verification } : {}),
      ...(r.cement ? { cement: r.cement } : {}),
      system: carmPreset(r.carm ?? DEFAULT_CARM_PRESET),
      pelvic: r.pelvic ?? null,
      imageMeta: meta,
      images: r.images,
      patient: {
        ...(meta.patientName ? { name: meta.patientName } : {}),
        ...(meta.patientId ? { id: meta.patientId } : {}),
        ...(meta.patientBirthDate ? { birthDate: meta.patientBirthDate } : {}),
        ...(meta.patientSex ? { sex: meta.patientSex } : {}),
      },
      procedure: r.procedure,
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
        notes: [...made.notes, ...(r.images.length ? [] : ['no key images: the request carried none'])],
        images: r.images.map((k) => k.image),
        pdf: b64(made.pdf),
        html: made.html,
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
    // pdf-lib refusing a PNG whose header passed but whose data does not decode.
    if (err instanceof Error && /png/i.test(err.message))
      throw new HttpError(422, 'bad-report-input', `a key image does not decode: ${err.message}`);
    throw err;
  }
}
