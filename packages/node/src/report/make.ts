/**
 * Everything a procedure report needs, from data already loaded: the model (core's reportModel), the
 * key images (core's reportKeyImages and encodePng, or those the workstation drew with them), the HTML and the PDF, and on
 * request the DICOM objects (Encapsulated PDF, Comprehensive 3D SR) and the Slicer markups. No file is
 * read or written here, so the CLI and the case server call the same function.
 */
import {
  encodeKeyImage,
  reportKeyImages,
  reportModel,
  planToSlicerMarkups,
  uidFromText,
  writeEncapsulatedPdf,
  writePlanSr,
  type CarmSystem,
  type CementReport,
  type PelvicViews,
  type Plan,
  type ProcedureReport,
  type ReportFluoroFrame,
  type ReportInput,
  type VerificationReport,
  type Volume,
} from '@corridor/core';
import { renderReportHtml, renderReportPdf, type RenderedImage } from './render.js';

export interface MakeReportInput {
  plan: Plan;
  verification?: VerificationReport;
  cement?: CementReport;
  system: CarmSystem;
  pelvic?: PelvicViews | null;
  /** The planning image: plan slices, the DRR when no verification scan, patient and study for DICOM. */
  ct?: Volume;
  /**
   * The planning image's DICOM attributes when its voxels are not given (the workstation sends these):
   * patient, study and Frame of Reference for the DICOM objects. `ct`'s own meta wins when both are.
   */
  imageMeta?: Volume['meta'];
  /** The verification scan (shows the placed instruments in the slices and the DRR). */
  verificationScan?: Volume;
  /** The latest cement scan, and labels in its frame (critical structures outlined). */
  cementScan?: Volume;
  labels?: Volume;
  criticalLabels?: readonly number[];
  /** Fluoroscopy frames (a loaded XA/RF frame, with its motion correction): the plan over each. */
  fluoroscopy?: readonly ReportFluoroFrame[];
  patient?: ReportInput['patient'];
  procedure?: ReportInput['procedure'];
  sources?: ReportInput['sources'];
  generatedAt: Date;
  /** Pixel size of the key images (default 320 for slices, 384 for DRRs). */
  imageSizePx?: number;
  /**
   * Key images already drawn (the workstation's, by the same core reportKeyImages in its case worker):
   * used as they are, and no volume is needed.
   */
  images?: readonly RenderedImage[];
  dicom?: boolean;
}

export interface MadeReport {
  report: ProcedureReport;
  images: RenderedImage[];
  html: string;
  pdf: Uint8Array;
  /** The notes on what could not be shown (no image given, no cement point). */
  notes: string[];
  dicom?: {
    pdf: Uint8Array;
    sr: Uint8Array;
    markups: string;
    frameOfReferenceUid: string;
    frameOfReferenceFrom: 'planning image' | 'generated';
  };
}

export async function makeReport(input: MakeReportInput): Promise<MadeReport> {
  const { plan, system } = input;
  const report = reportModel({
    plan,
    system,
    pelvic: input.pelvic ?? null,
    ...(input.verification ? { verification: input.verification } : {}),
    ...(input.cement ? { cement: input.cement } : {}),
    ...(input.patient ? { patient: input.patient } : {}),
    ...(input.procedure ? { procedure: input.procedure } : {}),
    generatedAt: input.generatedAt.toISOString(),
    ...(input.sources ? { sources: input.sources } : {}),
  });
  let images: RenderedImage[];
  const notes: string[] = [];
  if (input.images) images = [...input.images];
  else {
    // The one choice of key images (core's reportKeyImages), as the workstation's case worker makes them.
    const k = reportKeyImages(report, {
      system,
      pelvic: input.pelvic ?? null,
      ...(input.ct ? { ct: input.ct } : {}),
      ...(input.verificationScan ? { verificationScan: input.verificationScan } : {}),
      ...(input.cementScan ? { cementScan: input.cementScan } : {}),
      ...(input.labels ? { labels: input.labels, criticalLabels: input.criticalLabels ?? [] } : {}),
      ...(input.fluoroscopy ? { fluoroscopy: input.fluoroscopy } : {}),
      ...(input.imageSizePx ? { sizePx: input.imageSizePx } : {}),
    });
    images = k.images.map(encodeKeyImage);
    notes.push(...k.notes);
  }
  const html = renderReportHtml(report, images);
  const pdf = await renderReportPdf(report, images);
  const made: MadeReport = { report, images, html, pdf, notes };
  if (input.dicom) {
    const meta = input.ct?.meta ?? input.imageMeta ?? {};
    const forFromImage = meta.frameOfReferenceUid;
    const frameOfReferenceUid = forFromImage ?? uidFromText(`plan frame of reference ${JSON.stringify(plan)}`);
    if (!forFromImage)
      notes.push(
        'the planning image has no Frame of Reference UID (not DICOM, or not given): the SR references a ' +
          'generated one, so other viewers will not place its points on that image',
      );
    const p = report.patient;
    const common = {
      contentDate: input.generatedAt,
      ...(p.name ? { patientName: p.name } : {}),
      ...(p.id ? { patientId: p.id } : {}),
      ...(p.birthDate ? { patientBirthDate: p.birthDate } : {}),
      ...(p.sex ? { patientSex: p.sex } : {}),
      ...(meta.studyInstanceUid ? { studyInstanceUid: meta.studyInstanceUid } : {}),
      ...(meta.studyDate ? { studyDate: meta.studyDate } : {}),
      ...(meta.studyDescription ? { studyDescription: meta.studyDescription } : {}),
      uidSeed: JSON.stringify(plan.paths),
    };
    const encPdf = writeEncapsulatedPdf(pdf, {
      ...common,
      documentTitle: `${report.title}: ${report.procedure.title}`,
    });
    const sr = writePlanSr(
      report.paths.map((x) => ({
        id: x.id,
        name: x.name,
        entry: x.entry,
        target: x.target,
        lengthMm: x.lengthMm,
        ...(x.achieved
          ? {
              achieved: {
                status: x.achieved.status,
                ...(x.achieved.outerEnd ? { outerEnd: x.achieved.outerEnd } : {}),
                ...(x.achieved.tip ? { tip: x.achieved.tip } : {}),
                ...(x.achieved.entryOffsetMm !== undefined ? { entryOffsetMm: x.achieved.entryOffsetMm } : {}),
                ...(x.achieved.tipOffsetMm !== undefined ? { tipOffsetMm: x.achieved.tipOffsetMm } : {}),
                ...(x.achieved.angleDeg !== undefined ? { angleDeg: x.achieved.angleDeg } : {}),
              },
            }
          : {}),
      })),
      { ...common, studyInstanceUid: encPdf.studyInstanceUid, frameOfReferenceUid },
    );
    made.dicom = {
      pdf: encPdf.bytes,
      sr: sr.bytes,
      markups: JSON.stringify(planToSlicerMarkups(plan), null, 2) + '\n',
      frameOfReferenceUid,
      frameOfReferenceFrom: forFromImage ? 'planning image' : 'generated',
    };
  }
  return made;
}
