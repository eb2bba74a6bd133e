/**
 * Everything a procedure report needs, from data already loaded: the model (core's
 * buildProcedureReport), the key images (core's report images, as PNG), the HTML and the PDF, and on
 * request the DICOM objects (Encapsulated PDF, Comprehensive 3D SR) and the Slicer markups. No file is
 * read or written here, so the CLI and the case server call the same function.
 */
import { encode as encodePng } from 'fast-png';
import {
  buildProcedureReport,
  cementSliceImage,
  drrOverlayImage,
  pathViews,
  planSliceImage,
  planToSlicerMarkups,
  uidFromText,
  writeEncapsulatedPdf,
  writePlanSr,
  type CarmSystem,
  type CementReport,
  type KeyImage,
  type PelvicViews,
  type Plan,
  type ProcedureReport,
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
  patient?: ReportInput['patient'];
  procedure?: ReportInput['procedure'];
  sources?: ReportInput['sources'];
  generatedAt: Date;
  /** Pixel size of the key images (default 320 for slices, 384 for DRRs). */
  imageSizePx?: number;
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

function png(k: KeyImage): RenderedImage {
  const data = new Uint8Array(k.rgba.buffer, k.rgba.byteOffset, k.rgba.length);
  const { rgba: _drop, ...image } = k;
  return { image, png: encodePng({ width: k.width, height: k.height, data, channels: 4, depth: 8 }) };
}

/** Centroid of the path midpoints (the DRR's isocentre when no view gives one). */
function planCenter(plan: Plan): [number, number, number] {
  const s: [number, number, number] = [0, 0, 0];
  for (const p of plan.paths) for (let i = 0; i < 3; i++) s[i] += (p.entry[i] + p.target[i]) / (2 * plan.paths.length);
  return s;
}

export async function makeReport(input: MakeReportInput): Promise<MadeReport> {
  const { plan, system } = input;
  const notes: string[] = [];
  const views = plan.paths.map((p) => pathViews(p, system));
  const report = buildProcedureReport({
    plan,
    ...(input.verification ? { verification: input.verification } : {}),
    ...(input.cement ? { cement: input.cement } : {}),
    views: { carm: system.id, carmName: system.name, paths: views, pelvic: input.pelvic ?? null },
    ...(input.patient ? { patient: input.patient } : {}),
    ...(input.procedure ? { procedure: input.procedure } : {}),
    generatedAt: input.generatedAt.toISOString(),
    ...(input.sources ? { sources: input.sources } : {}),
  });
  const images: RenderedImage[] = [];
  const size = input.imageSizePx;
  // 1. The plan on the CBCT: each path on a slice along it (the verification scan when given: the pins show).
  const sliceVolume = input.verificationScan ?? input.ct;
  if (sliceVolume) {
    const label = input.verificationScan ? 'verification CBCT' : 'planning CT';
    for (const p of report.paths) {
      const a = p.achieved;
      images.push(
        png(
          planSliceImage(sliceVolume, p, {
            label,
            ...(size ? { sizePx: size } : {}),
            ...(a?.outerEnd && a.tip ? { achieved: { outerEnd: a.outerEnd, tip: a.tip } } : {}),
          }),
        ),
      );
    }
  } else notes.push('no planning image or verification scan given: no slices of the plan');
  // 2. The overlay on virtual fluoroscopy: the inlet and outlet when known, else AP at the plan centre.
  const drrVolume = input.verificationScan ?? input.ct;
  if (drrVolume) {
    const poses = input.pelvic
      ? [
          { ...input.pelvic.inlet, label: 'inlet' },
          { ...input.pelvic.outlet, label: 'outlet' },
        ]
      : [{ primaryDeg: 0, secondaryDeg: 0, isocenter: planCenter(plan), label: 'AP' }];
    for (const pose of poses)
      images.push(png(drrOverlayImage(drrVolume, plan.paths, system, pose, size ? { sizePx: size } : {})));
  }
  // 3. The cement against the nearest foramen (else the nearest critical structure) in the latest scan.
  const lastScan = report.cement?.scans[report.cement.scans.length - 1];
  if (lastScan && input.cementScan) {
    const near = [...lastScan.nearest]
      .filter((n) => n.distanceMm !== null && n.cementAt && n.at)
      .sort(
        (a, b) =>
          (a.structure === 'foramen' ? 0 : 1) - (b.structure === 'foramen' ? 0 : 1) ||
          (a.distanceMm ?? 0) - (b.distanceMm ?? 0),
      )[0];
    if (near?.cementAt && near.at)
      images.push(
        png(
          cementSliceImage(
            input.cementScan,
            { name: near.name, distanceMm: near.distanceMm, cementAt: near.cementAt, at: near.at },
            {
              ...(size ? { sizePx: size } : {}),
              ...(input.labels ? { labels: input.labels, criticalLabels: input.criticalLabels ?? [] } : {}),
              scanLabel: `cement scan ${lastScan.index + 1}`,
            },
          ),
        ),
      );
    else notes.push('the cement report has no cement front near a critical structure: no cement image');
  } else if (lastScan) notes.push('no cement scan given: no image of the cement');
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
