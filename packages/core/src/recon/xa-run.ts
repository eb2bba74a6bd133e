/**
 * A C-arm CT run as a DICOM XA multi-frame object, the way rotational runs are stored: one frame per view
 * in acquisition order, Positioner Motion DYNAMIC, the first frame's Positioner Primary / Secondary Angle
 * and per frame the angle increments (0018,1520) / (0018,1521), Frame Time, Distance Source to Detector and
 * to Patient, Imager Pixel Spacing. And the reader: a rotational run (ours or another system's) back into
 * projections and the scan's nominal geometry, for FDK.
 *
 * Pixels: what a flat detector delivers after its offset and gain corrections, 16-bit unsigned intensity,
 * brighter = more photons (MONOCHROME2): stored = round(I0 exp(-p)), p the -log projection after the water
 * correction, I0 the flat-field value (the unattenuated beam), chosen per run so that the brightest pixel
 * fits in 16 bits. Reading inverts it, p = -ln(max(stored, 1/2) / I0): the error in p is at most
 * 1 / (2 stored), largest behind metal and thick bone.
 *
 * Angles: frame n's primary angle is Positioner Primary Angle + the sum of the increments of frames
 * 0..n; the writer's first increment is 0, so both readings of the standard's "incremental change for each
 * frame" agree. The reader sorts the frames by angle (a run may rotate either way, or list its frames in
 * any order), and needs the angles evenly spaced to within a tenth of a step (FDK's Parker weights).
 *
 * Private block (creator "CORRIDOR 1", group 0029, as xa-frame.ts): 1010 isocentre (LPS mm), 1011 the
 * flat-field value I0, 1012 the water reference mu (1/mm: the HU scale), 1013 the C-arm preset id,
 * 1014 the effective energy (keV), 1015 the acquisition as JSON. Without them (another system's run) the
 * reader takes I0 as the run's brightest pixel, mu from the spectrum at the file's kV, the distances from
 * the file or the preset, and lists each such assumption.
 */
import { FormatError, LimitError } from '../errors.js';
import type { Point3 } from '../math/vec3.js';
import { CARM_PRESETS, carmPreset, DEFAULT_CARM_PRESET, type CarmGeometry, type CarmSystem } from '../carm/geometry.js';
import { parseDicom, type DicomDataset } from '../io/dicom/parse.js';
import { decodeFrame, describePixels } from '../io/dicom/pixels.js';
import { formatDS } from '../io/dicom/writer.js';
import { RF_SOP_CLASS, XA_SOP_CLASS, writeXaObject, xaGeometry, xaPrivateTag } from '../io/xa-frame.js';
import { ReconError, scanFromViews, type CbctScan } from './scan.js';
import { resolveAcquisition, type CbctProjections } from './acquire.js';
import { beamSpectrum } from './spectrum.js';

export interface XaRunWriteOptions {
  patientName?: string;
  patientId?: string;
  studyInstanceUid?: string;
  frameOfReferenceUid?: string;
  seriesDescription?: string;
  /** Seed text for the UIDs (same text, same UIDs; default from the scan). */
  uidSeed?: string;
  /** Time between frames, ms (default 1000 / 30: a 30 frames per second run). */
  frameTimeMs?: number;
  /** The acquisition's parameters (cbctResult's `acquisition`), kept in the private block as JSON. */
  acquisition?: Record<string, unknown>;
}

const ANGLE_DIGITS = 6;

/** Angle increments (rounded to 1e-6 degree) whose running sums stay within 5e-7 degree of the angles. */
function angleIncrements(angles: number[]): string[] {
  const out: string[] = [];
  let sum = angles[0];
  for (let n = 0; n < angles.length; n++) {
    const inc = n === 0 ? 0 : Number((angles[n] - sum).toFixed(ANGLE_DIGITS));
    sum += inc;
    out.push(formatDS(inc));
  }
  return out;
}

/**
 * The projections of a scan as an XA rotational run (explicit VR little endian, 16-bit MONOCHROME2,
 * one frame per view in the scan's order).
 */
export function writeXaRun(proj: CbctProjections, scan: CbctScan, opts: XaRunWriteOptions = {}): Uint8Array {
  const nv = scan.views.length,
    nc = scan.columns,
    nr = scan.rows,
    npx = nc * nr;
  if (proj.views !== nv || proj.columns !== nc || proj.rows !== nr || proj.data.length !== nv * npx)
    throw new ReconError(
      `projections of ${proj.views} views of ${proj.columns} x ${proj.rows} do not match the scan's ${nv} of ${nc} x ${nr}`,
      'XA run writer',
    );
  if (nc > 0xffff || nr > 0xffff) throw new LimitError(`frames of ${nc} x ${nr} exceed 65535`, 'XA run writer');
  for (const g of scan.views)
    if (g.secondaryDeg !== 0)
      throw new ReconError(`view at secondary angle ${g.secondaryDeg}: a run rotates at secondary 0`, 'XA run writer');
  // The flat-field value: the brightest pixel (noise and scatter can exceed the unattenuated beam) at 65535.
  const d = proj.data;
  let pMin = Infinity;
  for (let i = 0; i < d.length; i++) if (d[i] < pMin) pMin = d[i];
  if (!Number.isFinite(pMin)) throw new ReconError('projections hold values that are not finite', 'XA run writer');
  const i0 = Number(formatDS(Math.floor((65535 / Math.exp(-Math.min(pMin, 0))) * 1000) / 1000));
  const pixels = new Uint8Array(d.length * 2);
  const px = new Uint16Array(pixels.buffer);
  for (let i = 0; i < d.length; i++) {
    const v = Math.round(i0 * Math.exp(-d[i]));
    px[i] = v > 65535 ? 65535 : v;
  }
  const angles = scan.views.map((g) => g.primaryDeg);
  const frameTimeMs = opts.frameTimeMs ?? 1000 / 30;
  if (!(frameTimeMs > 0 && Number.isFinite(frameTimeMs)))
    throw new ReconError(`frame time ${frameTimeMs} ms must be positive`, 'XA run writer');
  const ds = formatDS;
  return writeXaObject({
    // The first view's geometry: its angles are the positioner's base angles.
    geometry: scan.views[0],
    imageType: 'ORIGINAL\\PRIMARY\\SINGLE PLANE',
    seriesDescription:
      opts.seriesDescription ?? `Corridor C-arm CT run ${scan.systemId} ${scan.arcDeg} deg ${nv} views`,
    model: `simulated ${scan.systemId}`,
    kvp: proj.settings.kvp,
    ...(opts.patientName !== undefined ? { patientName: opts.patientName } : {}),
    ...(opts.patientId !== undefined ? { patientId: opts.patientId } : {}),
    ...(opts.studyInstanceUid !== undefined ? { studyInstanceUid: opts.studyInstanceUid } : {}),
    ...(opts.frameOfReferenceUid !== undefined ? { frameOfReferenceUid: opts.frameOfReferenceUid } : {}),
    uidSeed: opts.uidSeed ?? `corridor xa run ${JSON.stringify({ ...scan, views: angles, projections: [] })}`,
    frames: {
      count: nv,
      frameTimeMs,
      primaryIncrements: angleIncrements(angles),
      secondaryIncrements: new Array<string>(nv).fill('0'),
    },
    bits: 16,
    window: [Math.round(i0 / 2), Math.round(i0)],
    privateElements: [
      [0x11, 'DS', ds(i0)],
      [0x12, 'DS', ds(proj.muReferencePerMm)],
      [0x13, 'LO', scan.systemId],
      [0x14, 'DS', ds(proj.effectiveEnergyKeV)],
      ...(opts.acquisition ? ([[0x15, 'UT', JSON.stringify(opts.acquisition)]] as const) : []),
    ],
    pixels,
  });
}

// --- reader -------------------------------------------------------------------------------------------

export interface XaRunReadOptions {
  /** The C-arm whose nominal figures fill what the file lacks (default: the file's own preset, else the default). */
  system?: CarmSystem;
  /** Patient point at the isocentre when the file does not say (default 0, 0, 0, listed in `assumed`). */
  isocenter?: Point3;
}

export interface XaRun {
  /** The views sorted by ascending primary angle, with the file's distances, pixel spacing and angles. */
  scan: CbctScan;
  /** -log projections in the scan's (ascending angle) order. */
  projections: CbctProjections;
  /** The file's frame index of each of the scan's views. */
  frameOfView: number[];
  /** Each file frame's primary angle, degrees (in file order). */
  frameAnglesDeg: number[];
  /** The C-arm preset whose figures were used where the file is silent. */
  system: CarmSystem;
  /** True when the file names a preset (ours) and it is the system used. */
  systemFromFile: boolean;
  flatField: number;
  /** Values not in the file that came from the preset, the spectrum or the caller. */
  assumed: string[];
  warnings: string[];
  /** The acquisition's parameters when the file carries them (written by Corridor). */
  acquisition: Record<string, unknown> | null;
  kvp: number;
  numberOfFrames: number;
}

function privateNumber(ds: DicomDataset, el: number): number | undefined {
  const tag = xaPrivateTag(ds, el);
  const v = tag === undefined ? undefined : ds.numbers(tag);
  return v && v.length === 1 && Number.isFinite(v[0]) ? v[0] : undefined;
}

function privateString(ds: DicomDataset, el: number): string | undefined {
  const tag = xaPrivateTag(ds, el);
  return tag === undefined ? undefined : ds.string(tag);
}

/** Reads a rotational XA (or RF) run: projections and nominal geometry, frames sorted by angle. */
export async function readXaRun(bytes: Uint8Array, name: string, opts: XaRunReadOptions = {}): Promise<XaRun> {
  const ds = parseDicom(bytes, name);
  const sop = ds.string('x00080016');
  const modality = ds.string('x00080060');
  if (sop !== XA_SOP_CLASS && sop !== RF_SOP_CLASS && modality !== 'XA' && modality !== 'RF')
    throw new FormatError(
      `not an X-ray angiography run (SOP class ${sop ?? 'missing'}, modality ${modality ?? 'missing'})`,
      name,
    );
  const desc = describePixels(ds);
  const nf = desc.numberOfFrames;
  if (nf < 2) throw new FormatError(`a single frame is not a rotational run (it needs one frame per view)`, name);
  if (desc.samplesPerPixel !== 1)
    throw new FormatError(`${desc.samplesPerPixel} samples per pixel: a run's frames must be grey`, name);
  const inc = ds.numbers('x00181520');
  if (!inc || inc.length === 0)
    throw new FormatError(
      `no Positioner Primary Angle Increment (0018,1520): not a rotational run (${nf} frames at one angle)`,
      name,
    );
  if (inc.length !== nf)
    throw new FormatError(`Positioner Primary Angle Increment holds ${inc.length} values for ${nf} frames`, name);
  if (!inc.every(Number.isFinite)) throw new FormatError('Positioner Primary Angle Increment is not numbers', name);
  const inc2 = ds.numbers('x00181521');
  if (inc2 && inc2.length !== nf)
    throw new FormatError(`Positioner Secondary Angle Increment holds ${inc2.length} values for ${nf} frames`, name);
  const assumed: string[] = [];
  const warnings = [...ds.warnings];
  const fileSystem = privateString(ds, 0x13);
  const systemFromFile = fileSystem !== undefined && CARM_PRESETS[fileSystem] !== undefined && !opts.system;
  const system = opts.system ?? (systemFromFile ? carmPreset(fileSystem) : carmPreset(DEFAULT_CARM_PRESET));
  const g = xaGeometry(ds, { system, ...(opts.isocenter ? { isocenter: opts.isocenter } : {}) });
  assumed.push(...g.assumed);
  // Each frame's angles: the base angle plus the running sum of the increments.
  const primary = g.geometry.primaryDeg,
    secondary = g.geometry.secondaryDeg;
  const frameAnglesDeg: number[] = [];
  let a = primary,
    b = secondary,
    bMax = Math.abs(secondary);
  for (let f = 0; f < nf; f++) {
    a += inc[f];
    b += inc2 ? inc2[f] : 0;
    bMax = Math.max(bMax, Math.abs(b));
    frameAnglesDeg.push(a);
  }
  if (bMax > 0.01)
    throw new ReconError(
      `secondary angle reaches ${bMax.toFixed(2)} degrees: only runs about the long axis (secondary 0) are supported`,
      name,
    );
  const frameOfView = frameAnglesDeg.map((_, f) => f).sort((p, q) => frameAnglesDeg[p] - frameAnglesDeg[q]);
  const sorted = frameOfView.map((f) => frameAnglesDeg[f]);
  const arc = sorted[nf - 1] - sorted[0];
  const step = arc / (nf - 1);
  if (!(step > 0)) throw new FormatError(`all ${nf} frames are at ${sorted[0]} degrees: not a rotational run`, name);
  for (let n = 0; n < nf; n++) {
    const off = sorted[n] - (sorted[0] + n * step);
    if (Math.abs(off) > 0.1 * step)
      throw new ReconError(
        `frame ${frameOfView[n] + 1} at ${sorted[n].toFixed(3)} degrees is ${off.toFixed(3)} off an even ` +
          `${step.toFixed(4)}-degree step: FDK here needs evenly spaced views`,
        name,
      );
  }
  const views: CarmGeometry[] = sorted.map((deg) => ({ ...g.geometry, primaryDeg: deg, secondaryDeg: 0 }));
  const scan = scanFromViews(fileSystem ?? system.id, views, {}, name);
  // Intensities to -log projections.
  const nc = desc.columns,
    nr = desc.rows,
    npx = nc * nr;
  const stored: Float32Array = new Float32Array(nf * npx);
  const inv = desc.photometricInterpretation === 'MONOCHROME1';
  if (inv) warnings.push(`${name}: MONOCHROME1 frames read inverted (brighter = more photons)`);
  const top = 2 ** desc.bitsStored - 1;
  let brightest = 0;
  for (let n = 0; n < nf; n++) {
    const fr = await decodeFrame(ds, frameOfView[n], desc);
    if (fr.data.length !== npx)
      throw new FormatError(`frame ${frameOfView[n] + 1} holds ${fr.data.length} values, not ${npx}`, name);
    const o = n * npx;
    for (let i = 0; i < npx; i++) {
      const v = inv ? top - fr.data[i] : fr.data[i];
      stored[o + i] = v;
      if (v > brightest) brightest = v;
    }
  }
  let i0 = privateNumber(ds, 0x11);
  if (i0 === undefined || !(i0 > 0)) {
    i0 = brightest;
    assumed.push(`flat-field value (${i0}: the run's brightest pixel)`);
    if (!(i0 > 0)) throw new FormatError('every pixel of the run is 0', name);
  }
  const kvp = g.kvp ?? 90;
  if (g.kvp === undefined) assumed.push('KVP (90 kV)');
  const settings = resolveAcquisition({ kvp });
  const spectrum = beamSpectrum({ kvp, filtrationMmAl: settings.filtrationMmAl, bins: settings.energyBins });
  let mu = privateNumber(ds, 0x12);
  if (mu === undefined || !(mu > 0)) {
    mu = spectrum.muReferencePerMm;
    assumed.push(`water attenuation (${mu.toFixed(5)} /mm, from a ${kvp} kV spectrum)`);
  }
  const keV = privateNumber(ds, 0x14) ?? spectrum.effectiveEnergyKeV;
  const data = stored;
  const lnI0 = Math.log(i0);
  for (let i = 0; i < data.length; i++) data[i] = lnI0 - Math.log(data[i] > 0.5 ? data[i] : 0.5);
  let acquisition: Record<string, unknown> | null = null;
  const json = privateString(ds, 0x15);
  if (json !== undefined) {
    try {
      const parsed: unknown = JSON.parse(json);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
        acquisition = parsed as Record<string, unknown>;
    } catch {
      warnings.push(`${name}: the private acquisition record is not JSON; ignored`);
    }
  }
  const projections: CbctProjections = {
    data,
    views: nf,
    columns: nc,
    rows: nr,
    muReferencePerMm: mu,
    effectiveEnergyKeV: keV,
    spectrum,
    settings,
    minCounts: null,
    photonsPerPixelRange: null,
  };
  return {
    scan,
    projections,
    frameOfView,
    frameAnglesDeg,
    system,
    systemFromFile,
    flatField: i0,
    assumed,
    warnings,
    acquisition,
    kvp,
    numberOfFrames: nf,
  };
}
