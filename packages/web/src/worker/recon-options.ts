/** The settings of "Acquire 3D run" and the core options they stand for (used by the worker and the tests). */
import { DEFAULT_CARM_PRESET, carmPreset, type CbctOptions } from '@corridor/core';

/** The run's settings (the CLI's --views, --voxel, --binning, --dose with exposure control, --seed). */
export interface ReconOptions {
  views: number;
  voxelMm: number;
  binning: number;
  /** Quanta per detector pixel behind the patient (exposure control on, as the CLI's default); 0 = no noise. */
  dose: number;
  seed: number;
  /** C-arm preset (default the CLI's). */
  carm?: string;
}

/** The core options of a run: what `corridor cbct` passes for the same flags. */
export function cbctCoreOptions(o: ReconOptions): CbctOptions {
  return {
    system: carmPreset(o.carm ?? DEFAULT_CARM_PRESET),
    views: o.views,
    voxelMm: o.voxelMm,
    detector: { binning: o.binning },
    photonsPerPixel: o.dose,
    exposureControl: true,
    seed: o.seed,
  };
}
