/**
 * X-ray angiography / radiofluoroscopy frames (DICOM XA and RF, single and multi-frame): the projection
 * geometry from their positioner tags, the pixels of one frame, and a writer of DRRs as XA frames.
 *
 * Tags used (all type 2 or 3 in the XA/RF modules, so often absent):
 *   (0018,1510) Positioner Primary Angle, (0018,1511) Positioner Secondary Angle, degrees;
 *   (0018,1110) Distance Source to Detector (SID), (0018,1111) Distance Source to Patient (SOD,
 *   source to isocentre), mm; (0018,1164) Imager Pixel Spacing = [row spacing, column spacing] at the
 *   detector, mm. A missing tag is taken from the chosen C-arm preset and listed in `assumed`.
 * The isocentre's position in the patient (the table position) is not in basic XA/RF objects: frames
 * written by Corridor carry it in a private element (creator "CORRIDOR 1", (0029,xx10), LPS mm);
 * for other frames it comes from the caller (a registration, or a guess listed in `assumed`).
 */
import { FormatError } from '../errors.js';
import type { Point3 } from '../math/vec3.js';
import { parseDicom, type DicomDataset } from './dicom/parse.js';
import { decodeFrame, describePixels } from './dicom/pixels.js';
import { formatDS, part10File, uidFromText } from './dicom/writer.js';
import { DicomDatasetWriter, addCommonModules } from './dicom/dataset-writer.js';
import { validateGeometry, type CarmGeometry, type CarmSystem } from '../carm/geometry.js';

const XA_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.12.1';
const RF_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.12.2';
const PRIVATE_CREATOR = 'CORRIDOR 1';

export interface XaGeometryResult {
  geometry: CarmGeometry;
  /** Names of the values that were not in the file and came from the preset or the caller's guess. */
  assumed: string[];
  /** True when nothing was assumed: the overlay can be trusted as far as the file's tags go. */
  verified: boolean;
  numberOfFrames: number;
  sopClassUid?: string;
  kvp?: number;
}

export interface XaReadOptions {
  /** Supplies SID, SOD and pixel pitch the file lacks. */
  system: CarmSystem;
  /** Patient point at the isocentre when the file does not say (default: assumed 0,0,0 and listed). */
  isocenter?: Point3;
}

function num(ds: DicomDataset, tag: string): number | undefined {
  const v = ds.numbers(tag);
  return v && v.length ? v[0] : undefined;
}

/** Private isocentre written by Corridor, if present. */
function privateIsocenter(ds: DicomDataset): Point3 | undefined {
  // Find the block reserved by our creator in group 0029 (0029,0010..00FF).
  for (let b = 0x10; b <= 0xff; b++) {
    const tag = `x00290${b.toString(16).padStart(3, '0')}`;
    if (ds.string(tag) === PRIVATE_CREATOR) {
      const el = `x0029${b.toString(16).padStart(2, '0')}10`;
      const v = ds.numbers(el);
      if (v && v.length === 3) return [v[0], v[1], v[2]];
      return undefined;
    }
  }
  return undefined;
}

export function xaGeometry(ds: DicomDataset, opts: XaReadOptions): XaGeometryResult {
  const name = ds.name;
  const desc = describePixels(ds);
  const assumed: string[] = [];
  const primary = num(ds, 'x00181510');
  const secondary = num(ds, 'x00181511');
  let sid = num(ds, 'x00181110');
  let sod = num(ds, 'x00181111');
  const ips = ds.numbers('x00181164');
  if (primary === undefined) assumed.push('PositionerPrimaryAngle (0)');
  if (secondary === undefined) assumed.push('PositionerSecondaryAngle (0)');
  if (sid === undefined || !(sid > 0)) {
    sid = opts.system.sidMm;
    assumed.push(`DistanceSourceToDetector (${sid} mm from ${opts.system.id})`);
  }
  if (sod === undefined || !(sod > 0) || !(sod < sid)) {
    sod = opts.system.sodMm;
    assumed.push(`DistanceSourceToPatient (${sod} mm from ${opts.system.id})`);
  }
  let rowSpacing: number, colSpacing: number;
  if (ips && ips.length >= 2 && ips[0] > 0 && ips[1] > 0) {
    rowSpacing = ips[0];
    colSpacing = ips[1];
  } else {
    // Without a pitch: the preset's detector width spread over the frame's columns.
    const w = opts.system.detectorColumns * opts.system.pixelPitchMm;
    colSpacing = rowSpacing = w / desc.columns;
    assumed.push(
      `ImagerPixelSpacing (${colSpacing.toFixed(4)} mm: ${opts.system.id} detector width over ${desc.columns} columns)`,
    );
  }
  let isocenter = privateIsocenter(ds);
  if (!isocenter) {
    isocenter = opts.isocenter ? ([...opts.isocenter] as Point3) : [0, 0, 0];
    // To 0.1 mm: a guessed table position printed to 16 digits reads as more precise than it is.
    const iso = isocenter.map((x) => (x + 0).toFixed(1)).join(', ');
    assumed.push(opts.isocenter ? `isocentre (${iso}) given by the caller` : 'isocentre (0, 0, 0)');
  }
  const geometry: CarmGeometry = {
    sidMm: sid,
    sodMm: sod,
    columns: desc.columns,
    rows: desc.rows,
    columnSpacingMm: colSpacing,
    rowSpacingMm: rowSpacing,
    primaryDeg: primary ?? 0,
    secondaryDeg: secondary ?? 0,
    isocenter,
  };
  validateGeometry(geometry, name);
  // The caller's isocentre is a registration result, not an assumption about the device.
  const deviceAssumed = assumed.filter((a) => !a.includes('given by the caller'));
  return {
    geometry,
    assumed,
    verified: deviceAssumed.length === 0,
    numberOfFrames: desc.numberOfFrames,
    sopClassUid: ds.string('x00080016'),
    kvp: num(ds, 'x00180060'),
  };
}

export interface XaFrame extends XaGeometryResult {
  /** Display grey levels 0..255 of the requested frame (window from the file or the frame's range). */
  gray: Uint8Array;
  frameIndex: number;
  warnings: string[];
}

/** Reads one frame of an XA/RF file (default the first) with its geometry. */
export async function readXaFrame(
  bytes: Uint8Array,
  name: string,
  opts: XaReadOptions & { frame?: number },
): Promise<XaFrame> {
  const ds = parseDicom(bytes, name);
  const sop = ds.string('x00080016');
  const modality = ds.string('x00080060');
  if (sop !== XA_SOP_CLASS && sop !== RF_SOP_CLASS && modality !== 'XA' && modality !== 'RF') {
    throw new FormatError(
      `not an X-ray angiography or fluoroscopy image (SOP class ${sop ?? 'missing'}, modality ` +
        `${modality ?? 'missing'})`,
      name,
    );
  }
  const g = xaGeometry(ds, opts);
  const frameIndex = opts.frame ?? 0;
  if (!(Number.isInteger(frameIndex) && frameIndex >= 0 && frameIndex < g.numberOfFrames)) {
    throw new FormatError(`frame ${frameIndex} does not exist (the file has ${g.numberOfFrames})`, name);
  }
  const desc = describePixels(ds);
  if (desc.samplesPerPixel !== 1)
    throw new FormatError(`${desc.samplesPerPixel} samples per pixel: only grey frames are supported`, name);
  const f = await decodeFrame(ds, frameIndex, desc);
  const n = f.columns * f.rows;
  let lo = Infinity,
    hi = -Infinity;
  const wc = num(ds, 'x00281050'),
    ww = num(ds, 'x00281051');
  if (wc !== undefined && ww !== undefined && ww > 1) {
    lo = wc - ww / 2;
    hi = wc + ww / 2;
  } else {
    for (let i = 0; i < n; i++) {
      const v = f.data[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  const inv = desc.photometricInterpretation === 'MONOCHROME1';
  const gray = new Uint8Array(n);
  const span = hi > lo ? hi - lo : 1;
  for (let i = 0; i < n; i++) {
    let t = (f.data[i] - lo) / span;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    gray[i] = Math.round(255 * (inv ? 1 - t : t));
  }
  return { ...g, gray, frameIndex, warnings: [...ds.warnings] };
}

// --- writer ------------------------------------------------------------------------------------------

export interface XaWriteOptions {
  /** Grey levels, columns x rows, 0 = black. */
  gray: Uint8Array;
  geometry: CarmGeometry;
  kvp?: number;
  patientName?: string;
  patientId?: string;
  studyInstanceUid?: string;
  seriesInstanceUid?: string;
  seriesNumber?: number;
  /** The exposure's mAs, written as Exposure (0018,1152) rounded to whole mAs. */
  mAs?: number;
  /** Seed text for the instance UID (same text, same UID). */
  uidSeed?: string;
  seriesDescription?: string;
}

/** A DRR (or any projection) as a DICOM XA image, explicit VR little endian, 8-bit MONOCHROME2. */
export function writeXaFrame(opts: XaWriteOptions): Uint8Array {
  const g = opts.geometry;
  validateGeometry(g);
  if (opts.gray.length !== g.columns * g.rows)
    throw new FormatError(
      `grey image holds ${opts.gray.length} values, ${g.columns} x ${g.rows} needs ${g.columns * g.rows}`,
      'XA writer',
    );
  const seed = opts.uidSeed ?? `corridor drr ${JSON.stringify(g)}`;
  const sopUid = uidFromText(`${seed} sop`);
  const ds = new DicomDatasetWriter();
  addCommonModules(ds, XA_SOP_CLASS, sopUid, {
    patientName: opts.patientName ?? '',
    patientId: opts.patientId ?? '',
    studyInstanceUid: opts.studyInstanceUid ?? uidFromText(`${seed} study`),
    seriesInstanceUid: opts.seriesInstanceUid ?? uidFromText(`${seed} series`),
    seriesNumber: opts.seriesNumber ?? 1,
    seriesDescription: opts.seriesDescription ?? 'Corridor DRR',
    modality: 'XA',
  });
  ds.str(0x00080008, 'CS', 'DERIVED\\SECONDARY\\SINGLE PLANE')
    .ds(0x00180060, [opts.kvp ?? 75])
    .str(0x00181110, 'DS', formatDS(g.sidMm))
    .str(0x00181111, 'DS', formatDS(g.sodMm))
    .str(0x00181114, 'DS', formatDS(g.sidMm / g.sodMm))
    .ds(0x00181164, [g.rowSpacingMm, g.columnSpacingMm])
    // Radiation Setting: SC (a low dose, fluoroscopy-like exposure).
    .str(0x00181155, 'CS', 'SC')
    .str(0x00181500, 'CS', 'STATIC')
    .ds(0x00181510, [g.primaryDeg])
    .ds(0x00181511, [g.secondaryDeg])
    .str(0x00185100, 'CS', 'HFS')
    .str(0x00200020, 'CS', '')
    .str(0x00200060, 'CS', '')
    .us(0x00280002, 1)
    .str(0x00280004, 'CS', 'MONOCHROME2')
    .us(0x00280010, g.rows)
    .us(0x00280011, g.columns)
    .us(0x00280100, 8)
    .us(0x00280101, 8)
    .us(0x00280102, 7)
    .us(0x00280103, 0)
    .str(0x00281040, 'CS', 'LIN')
    .str(0x00290010, 'LO', PRIVATE_CREATOR)
    .ds(0x00291010, g.isocenter);
  // X-Ray Tube Current (mA), Exposure Time (ms), Exposure (mAs): Type 2C, empty when not simulated.
  const mAs = opts.mAs;
  ds.str(0x00181150, 'IS', '')
    .str(0x00181151, 'IS', '')
    .str(0x00181152, 'IS', mAs !== undefined && Number.isFinite(mAs) ? String(Math.max(0, Math.round(mAs))) : '');
  ds.ob(0x7fe00010, opts.gray);
  return part10File(XA_SOP_CLASS, sopUid, ds.bytes());
}
