/**
 * DICOM objects of the procedure report:
 * - `writeEncapsulatedPdf`: a PDF as Encapsulated PDF Storage (PS3.3 A.45.1), explicit VR little endian.
 * - `writePlanSr`: the plan and the measured paths as a Comprehensive 3D SR (PS3.3 A.35.13) following
 *   TID 1500 (Measurement Report): one Measurement Group per path holding the planned entry and target as
 *   SCOORD3D POINTs, the planned length as a NUM inferred from a SCOORD3D POLYLINE (entry, target), and,
 *   when the path was verified, the instrument's outer end and tip (SCOORD3D) and its deviations (NUM).
 *   Every SCOORD3D references the planning image's Frame of Reference UID. Coordinates are LPS mm, as
 *   DICOM's patient coordinate system is.
 * Concepts DICOM has no code for (planned entry, achieved tip, offsets) use the private coding scheme
 * "99CORRIDOR" (PS3.16 8.2: a scheme designator starting with 99 is private); lengths use SCT 410668003.
 */
import { UsageError } from '../../errors.js';
import type { Point3 } from '../../math/vec3.js';
import { part10File, uidFromText } from './writer.js';
import {
  DicomDatasetWriter,
  addCommonModules,
  codeItem,
  dicomDateTime,
  type DicomCode,
  type DicomCommonOptions,
} from './dataset-writer.js';

export const ENCAPSULATED_PDF_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.104.1';
export const COMPREHENSIVE_3D_SR_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.88.34';

/** Patient and study of the report objects (the planning image's, so they file with it). */
export type ReportDicomOptions = Omit<
  DicomCommonOptions,
  'seriesInstanceUid' | 'modality' | 'studyInstanceUid' | 'instanceNumber'
> & {
  studyInstanceUid?: string;
  seriesInstanceUid?: string;
  /** Content Date/Time (and the Encapsulated PDF's Acquisition DateTime). */
  contentDate: Date;
  /** Extra text mixed into the generated UIDs. */
  uidSeed?: string;
};

function common(o: ReportDicomOptions, kind: string, modality: string, seriesNumber: number) {
  const seed = `${o.uidSeed ?? ''} ${o.contentDate.toISOString()}`;
  const studyInstanceUid = o.studyInstanceUid ?? uidFromText(`report study ${seed}`);
  // A study of its own (no planning image's study given) is made now: its date and time are the report's.
  const own = o.studyInstanceUid
    ? {}
    : { studyDate: dicomDateTime(o.contentDate).date, studyTime: dicomDateTime(o.contentDate).time };
  const seriesInstanceUid = o.seriesInstanceUid ?? uidFromText(`report ${kind} series ${seed} ${studyInstanceUid}`);
  const sopInstanceUid = uidFromText(`report ${kind} instance ${seed} ${seriesInstanceUid}`);
  const opts: DicomCommonOptions = {
    ...own,
    ...o,
    studyInstanceUid,
    seriesInstanceUid,
    modality,
    seriesNumber: o.seriesNumber ?? seriesNumber,
    instanceNumber: 1,
  };
  return { opts, sopInstanceUid, studyInstanceUid, seriesInstanceUid };
}

export interface WrittenDicom {
  bytes: Uint8Array;
  sopInstanceUid: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
}

/** A PDF document as Encapsulated PDF Storage. */
export function writeEncapsulatedPdf(pdf: Uint8Array, o: ReportDicomOptions & { documentTitle: string }): WrittenDicom {
  if (pdf.length < 5 || String.fromCharCode(...pdf.subarray(0, 5)) !== '%PDF-')
    throw new UsageError('the document does not start with %PDF-: not a PDF', 'Encapsulated PDF writer');
  const c = common(o, 'pdf', 'DOC', 901);
  const when = dicomDateTime(o.contentDate);
  const ds = new DicomDatasetWriter();
  addCommonModules(ds, ENCAPSULATED_PDF_SOP_CLASS, c.sopInstanceUid, {
    ...c.opts,
    seriesDescription: o.seriesDescription ?? 'Corridor procedure report (PDF)',
  });
  ds.str(0x00080023, 'DA', when.date)
    .str(0x0008002a, 'DT', `${when.date}${when.time}`)
    .str(0x00080033, 'TM', when.time)
    // SC Equipment: a workstation made the document.
    .str(0x00080064, 'CS', 'WSD')
    .str(0x00280301, 'CS', 'YES')
    .str(0x00280302, 'CS', 'YES')
    .sq(0x0040a043, [])
    .str(0x00420010, 'ST', o.documentTitle)
    .ob(0x00420011, pdf)
    .str(0x00420012, 'LO', 'application/pdf')
    .ul(0x00420015, pdf.length);
  return { bytes: part10File(ENCAPSULATED_PDF_SOP_CLASS, c.sopInstanceUid, ds.bytes()), ...pick(c) };
}

function pick(c: ReturnType<typeof common>) {
  return {
    sopInstanceUid: c.sopInstanceUid,
    studyInstanceUid: c.studyInstanceUid,
    seriesInstanceUid: c.seriesInstanceUid,
  };
}

// --- structured report ---------------------------------------------------------------------------------

export interface SrPath {
  id: string;
  name: string;
  entry: Point3;
  target: Point3;
  lengthMm: number;
  achieved?: {
    status: string;
    outerEnd?: Point3;
    tip?: Point3;
    entryOffsetMm?: number;
    tipOffsetMm?: number;
    angleDeg?: number;
  };
}

const DCM = (value: string, meaning: string): DicomCode => ({ value, scheme: 'DCM', meaning });
const CORRIDOR = (value: string, meaning: string): DicomCode => ({ value, scheme: '99CORRIDOR', meaning });
const UCUM = (value: string, meaning: string): DicomCode => ({ value, scheme: 'UCUM', meaning });

/** The concept names used for the SR's coordinates and numbers (exported for readers and tests). */
export const SR_CONCEPTS = {
  plannedEntry: CORRIDOR('PLAN-ENTRY', 'Planned entry point'),
  plannedTarget: CORRIDOR('PLAN-TARGET', 'Planned target point'),
  plannedPath: CORRIDOR('PLAN-PATH', 'Planned path'),
  achievedOuterEnd: CORRIDOR('ACH-OUTER', 'Placed instrument outer end'),
  achievedTip: CORRIDOR('ACH-TIP', 'Placed instrument tip'),
  entryOffset: CORRIDOR('DEV-ENTRY', 'Entry offset'),
  tipOffset: CORRIDOR('DEV-TIP', 'Tip offset'),
  angle: CORRIDOR('DEV-ANGLE', 'Angle to planned path'),
  status: CORRIDOR('VER-STATUS', 'Verification result'),
  length: { value: '410668003', scheme: 'SCT', meaning: 'Length' },
} as const;

type Item = DicomDatasetWriter;

function contentItem(rel: string | null, valueType: string, concept: DicomCode): Item {
  const it = new DicomDatasetWriter();
  if (rel) it.str(0x0040a010, 'CS', rel);
  it.str(0x0040a040, 'CS', valueType);
  it.sq(0x0040a043, [codeItem(concept)]);
  return it;
}

function container(rel: string | null, concept: DicomCode, children: Item[]): Item {
  const it = contentItem(rel, 'CONTAINER', concept).str(0x0040a050, 'CS', 'SEPARATE');
  if (children.length) it.sq(0x0040a730, children);
  return it;
}

function text(rel: string, concept: DicomCode, value: string): Item {
  return contentItem(rel, 'TEXT', concept).str(0x0040a160, 'UT', value);
}

function code(rel: string, concept: DicomCode, value: DicomCode): Item {
  return contentItem(rel, 'CODE', concept).sq(0x0040a168, [codeItem(value)]);
}

function scoord3d(rel: string, concept: DicomCode, type: 'POINT' | 'POLYLINE', pts: Point3[], forUid: string): Item {
  return contentItem(rel, 'SCOORD3D', concept)
    .fl(0x00700022, pts.flat())
    .str(0x00700023, 'CS', type)
    .str(0x30060024, 'UI', forUid);
}

function num(rel: string, concept: DicomCode, value: number, unit: DicomCode, children: Item[] = []): Item {
  const it = contentItem(rel, 'NUM', concept).sq(0x0040a300, [
    new DicomDatasetWriter().sq(0x004008ea, [codeItem(unit)]).ds(0x0040a30a, [value]),
  ]);
  if (children.length) it.sq(0x0040a730, children);
  return it;
}

const MM = UCUM('mm', 'millimeter');
const DEG = UCUM('deg', 'degree');

/** The plan and its verification as a Comprehensive 3D SR (TID 1500 style). */
export function writePlanSr(
  paths: readonly SrPath[],
  o: ReportDicomOptions & { frameOfReferenceUid: string; observerName?: string },
): WrittenDicom {
  if (!paths.length) throw new UsageError('no paths to write', 'SR writer');
  if (!/^[0-9]+(\.[0-9]+)*$/.test(o.frameOfReferenceUid) || o.frameOfReferenceUid.length > 64)
    throw new UsageError(`frame of reference UID "${o.frameOfReferenceUid}" is not a UID`, 'SR writer');
  const c = common(o, 'sr', 'SR', 902);
  const when = dicomDateTime(o.contentDate);
  const forUid = o.frameOfReferenceUid;
  const groups = paths.map((p) => {
    const children: Item[] = [
      text('HAS OBS CONTEXT', DCM('112039', 'Tracking Identifier'), p.name === p.id ? p.id : `${p.name} (${p.id})`),
      contentItem('HAS OBS CONTEXT', 'UIDREF', DCM('112040', 'Tracking Unique Identifier')).str(
        0x0040a124,
        'UI',
        uidFromText(`report path ${p.id} ${c.sopInstanceUid}`),
      ),
      code('CONTAINS', DCM('121071', 'Finding'), CORRIDOR('PATH', 'Planned instrument path')),
      num('CONTAINS', SR_CONCEPTS.length, p.lengthMm, MM, [
        scoord3d('INFERRED FROM', SR_CONCEPTS.plannedPath, 'POLYLINE', [p.entry, p.target], forUid),
      ]),
      scoord3d('CONTAINS', SR_CONCEPTS.plannedEntry, 'POINT', [p.entry], forUid),
      scoord3d('CONTAINS', SR_CONCEPTS.plannedTarget, 'POINT', [p.target], forUid),
    ];
    const a = p.achieved;
    if (a) {
      children.push(text('CONTAINS', SR_CONCEPTS.status, a.status.toUpperCase()));
      if (a.outerEnd) children.push(scoord3d('CONTAINS', SR_CONCEPTS.achievedOuterEnd, 'POINT', [a.outerEnd], forUid));
      if (a.tip) children.push(scoord3d('CONTAINS', SR_CONCEPTS.achievedTip, 'POINT', [a.tip], forUid));
      if (a.entryOffsetMm !== undefined) children.push(num('CONTAINS', SR_CONCEPTS.entryOffset, a.entryOffsetMm, MM));
      if (a.tipOffsetMm !== undefined) children.push(num('CONTAINS', SR_CONCEPTS.tipOffset, a.tipOffsetMm, MM));
      if (a.angleDeg !== undefined) children.push(num('CONTAINS', SR_CONCEPTS.angle, a.angleDeg, DEG));
    }
    return container('CONTAINS', DCM('125007', 'Measurement Group'), children);
  });
  const root = container(null, DCM('126000', 'Imaging Measurement Report'), [
    code('HAS CONCEPT MOD', DCM('121049', 'Language of Content Item and Descendants'), {
      value: 'en-US',
      scheme: 'RFC5646',
      meaning: 'English (United States)',
    }),
    code('HAS OBS CONTEXT', DCM('121005', 'Observer Type'), DCM('121007', 'Device')),
    contentItem('HAS OBS CONTEXT', 'UIDREF', DCM('121012', 'Device Observer UID')).str(
      0x0040a124,
      'UI',
      uidFromText('corridor device observer'),
    ),
    text('HAS OBS CONTEXT', DCM('121013', 'Device Observer Name'), o.observerName ?? 'Corridor'),
    code('HAS CONCEPT MOD', DCM('121058', 'Procedure reported'), {
      value: '77477000',
      scheme: 'SCT',
      meaning: 'Computed tomography',
    }),
    container('CONTAINS', DCM('111028', 'Image Library'), []),
    container('CONTAINS', DCM('126010', 'Imaging Measurements'), groups),
  ]);
  const ds = new DicomDatasetWriter();
  addCommonModules(ds, COMPREHENSIVE_3D_SR_SOP_CLASS, c.sopInstanceUid, {
    ...c.opts,
    seriesDescription: o.seriesDescription ?? 'Corridor plan and measured paths',
  });
  // The root content item's attributes (value type, concept name, content sequence) sit in the data set.
  ds.merge(root)
    .str(0x00080023, 'DA', when.date)
    .str(0x00080033, 'TM', when.time)
    .sq(0x00081111, [])
    .str(0x0040a491, 'CS', 'COMPLETE')
    .str(0x0040a493, 'CS', 'UNVERIFIED')
    .sq(0x0040a372, [])
    // The private coding scheme, identified (SOP Common's Coding Scheme Identification Sequence).
    .sq(0x00080110, [
      new DicomDatasetWriter()
        .str(0x00080102, 'SH', '99CORRIDOR')
        .str(0x00080115, 'ST', 'Corridor procedure report concepts')
        .str(0x00080116, 'ST', 'Corridor project'),
    ])
    .sq(0x0040a504, [new DicomDatasetWriter().str(0x00080105, 'CS', 'DCMR').str(0x0040db00, 'CS', '1500')]);
  return { bytes: part10File(COMPREHENSIVE_3D_SR_SOP_CLASS, c.sopInstanceUid, ds.bytes()), ...pick(c) };
}
