/**
 * The simulated C-arm CT of a CT, in one call: the scan of a C-arm preset, the acquisition and the FDK
 * reconstruction onto a grid in the CT's own patient frame. The CLI's parallel version (packages/node,
 * src/recon) runs the same steps with the same options and reports with `cbctResult`.
 */
import type { Point3 } from '../math/vec3.js';
import type { Volume, VolumeMetadata } from '../volume/volume.js';
import { carmPreset, DEFAULT_CARM_PRESET, type CarmSystem, type DetectorOptions } from '../carm/geometry.js';
import { cbctScan, scanSummary, type CbctScan } from './scan.js';
import { simulateProjections, type AcquisitionOptions, type CbctProjections } from './acquire.js';
import {
  cbctGrid,
  reconstructFdk,
  type CbctReconstruction,
  type GridOptions,
  type RampWindow,
  type ReconGrid,
  type RowPadding,
} from './fdk.js';

export interface CbctOptions extends AcquisitionOptions, GridOptions {
  /** The C-arm (default the default preset). */
  system?: CarmSystem;
  /**
   * How the flat detector is mounted for the run: 'landscape' (default) puts its longer side across the
   * rotation (columns), as DynaCT does with the 30 x 40 cm detector to widen the field of view; 'portrait'
   * the shorter side; 'native' the preset's columns and rows as they are.
   */
  detectorOrientation?: DetectorOrientation;
  /** The patient point at the isocentre, LPS mm (default the CT's centre). */
  isocenter?: Point3;
  arcDeg?: number;
  views?: number;
  startDeg?: number;
  detector?: DetectorOptions;
  /** Ramp filter apodization (default shepp-logan). */
  window?: RampWindow;
  /** Row padding before the ramp filter (default 'continue', see fdk.ts ROW_PADDINGS). */
  padding?: RowPadding;
  /** Output grid (default an axial grid about the isocentre, see cbctGrid). */
  grid?: ReconGrid;
  /** Value outside the field of view (default -1024). */
  fill?: number;
}

export type DetectorOrientation = 'landscape' | 'portrait' | 'native';
export const DETECTOR_ORIENTATIONS: readonly DetectorOrientation[] = ['landscape', 'portrait', 'native'];

/** The system with its detector turned as the run mounts it (see CbctOptions.detectorOrientation). */
export function orientDetector(system: CarmSystem, orientation: DetectorOrientation): CarmSystem {
  const c = system.detectorColumns,
    r = system.detectorRows;
  const swap = (orientation === 'landscape' && c < r) || (orientation === 'portrait' && c > r);
  return swap ? { ...system, detectorColumns: r, detectorRows: c } : system;
}

export interface CbctRun {
  scan: CbctScan;
  grid: ReconGrid;
  projections: CbctProjections;
  reconstruction: CbctReconstruction;
  result: CbctResult;
}

/** What a run reports (--json): the acquisition and the reconstruction, no per-view arrays. */
export interface CbctResult {
  schemaVersion: 1;
  acquisition: Record<string, unknown>;
  reconstruction: {
    dims: [number, number, number];
    spacingMm: [number, number, number];
    indexToPatient: number[];
    window: RampWindow;
    fill: number;
    muReferencePerMm: number;
    effectiveEnergyKeV: number;
    voxelsInside: number;
    fovRadiusMm: number;
  };
}

/** The centre of a volume's grid, LPS mm. */
export function volumeCentre(v: Volume): Point3 {
  const M = v.indexToPatient;
  const c = v.dims.map((d) => (d - 1) / 2);
  return [0, 1, 2].map((r) => M[r * 4] * c[0] + M[r * 4 + 1] * c[1] + M[r * 4 + 2] * c[2] + M[r * 4 + 3]) as Point3;
}

/** The scan and grid that a set of options describes (shared by the single- and multi-threaded runs). */
export function cbctPlan(ct: Volume, o: CbctOptions = {}): { scan: CbctScan; grid: ReconGrid; system: CarmSystem } {
  const system = orientDetector(o.system ?? carmPreset(DEFAULT_CARM_PRESET), o.detectorOrientation ?? 'landscape');
  const scan = cbctScan(system, {
    isocenter: o.isocenter ?? volumeCentre(ct),
    ...(o.arcDeg !== undefined ? { arcDeg: o.arcDeg } : {}),
    ...(o.views !== undefined ? { views: o.views } : {}),
    ...(o.startDeg !== undefined ? { startDeg: o.startDeg } : {}),
    ...(o.detector !== undefined ? { detector: o.detector } : {}),
  });
  const grid = o.grid ?? cbctGrid(scan, o);
  return { scan, grid, system };
}

/** Metadata of the output: the CT's patient and frame of reference, a new series. */
export function cbctMeta(ct: Volume, scan: CbctScan): VolumeMetadata {
  const m = ct.meta;
  return {
    ...(m.patientName !== undefined ? { patientName: m.patientName } : {}),
    ...(m.patientId !== undefined ? { patientId: m.patientId } : {}),
    ...(m.studyInstanceUid !== undefined ? { studyInstanceUid: m.studyInstanceUid } : {}),
    ...(m.frameOfReferenceUid !== undefined ? { frameOfReferenceUid: m.frameOfReferenceUid } : {}),
    modality: 'CT',
    seriesDescription: `Simulated C-arm CT ${scan.systemId} ${scan.arcDeg} deg ${scan.views.length} views`,
    source: `simulated C-arm CT of ${m.source ?? 'a volume'}`,
  };
}

export function cbctResult(scan: CbctScan, proj: CbctProjections, rec: CbctReconstruction, fill: number): CbctResult {
  const v = rec.volume;
  const s = proj.settings;
  return {
    schemaVersion: 1,
    acquisition: {
      ...scanSummary(scan),
      kvp: s.kvp,
      filtrationMmAl: s.filtrationMmAl,
      energyBins: s.energyBins,
      energiesKeV: proj.spectrum.energiesKeV.map((e) => Math.round(e * 100) / 100),
      binWeights: proj.spectrum.weights.map((w) => Math.round(w * 1e5) / 1e5),
      photonsPerPixel: s.photonsPerPixel,
      exposureControl: s.exposureControl,
      photonsPerPixelRange: proj.photonsPerPixelRange?.map((x) => Math.round(x)) ?? null,
      minCounts: proj.minCounts,
      scatterFraction: s.scatterFraction,
      scatterSigmaMm: s.scatterSigmaMm,
      blurSigmaPx: s.blurSigmaPx,
      seed: s.seed,
      waterCorrection: s.waterCorrection,
    },
    reconstruction: {
      dims: [v.dims[0], v.dims[1], v.dims[2]],
      spacingMm: [v.spacing[0], v.spacing[1], v.spacing[2]],
      indexToPatient: Array.from(v.indexToPatient),
      window: rec.window,
      fill,
      muReferencePerMm: rec.muReferencePerMm,
      effectiveEnergyKeV: proj.effectiveEnergyKeV,
      voxelsInside: rec.voxelsInside,
      fovRadiusMm: scan.fovRadiusMm,
    },
  };
}

/** A one-line summary for file headers (NIfTI descrip holds 79 characters). */
export function cbctDescription(r: CbctResult): string {
  const a = r.acquisition;
  const text =
    `CBCT ${String(a.system)} ${String(a.arcDeg)}deg/${String(a.views)}v ${String(a.kvp)}kV ` +
    `N${a.exposureControl ? 'aec' : '0'}=${String(a.photonsPerPixel)} sc=${String(a.scatterFraction)} ${r.reconstruction.window}`;
  return text.slice(0, 79);
}

/** Simulates and reconstructs a C-arm CT of a CT (HU), single-threaded. */
export function simulateCbct(ct: Volume, o: CbctOptions = {}): CbctRun {
  const { scan, grid } = cbctPlan(ct, o);
  const projections = simulateProjections(ct, scan, o);
  const fill = o.fill ?? -1024;
  const reconstruction = reconstructFdk(projections, scan, {
    grid,
    fill,
    meta: cbctMeta(ct, scan),
    ...(o.window !== undefined ? { window: o.window } : {}),
    ...(o.padding !== undefined ? { padding: o.padding } : {}),
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
  return { scan, grid, projections, reconstruction, result: cbctResult(scan, projections, reconstruction, fill) };
}
