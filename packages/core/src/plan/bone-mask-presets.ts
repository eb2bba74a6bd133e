/**
 * Named settings of the bone mask from intensities (corridorMapFromIntensity), so that the CLI and the
 * workstation offer the same choices under the same names. Each is a starting point a user may override.
 */
import { UsageError } from '../errors.js';
import type { IntensityMapOptions } from './corridor-map.js';

export type BoneMaskPresetName = 'standard' | 'demineralized' | 'demineralized-faint-cortex';

export interface BoneMaskPreset {
  /** Short label for a menu. */
  label: string;
  /** When to choose it. */
  description: string;
  options: Pick<IntensityMapOptions, 'slicePlaneNormals' | 'sealMm' | 'softTissueHu'>;
}

export const BONE_MASK_PRESETS: Readonly<Record<BoneMaskPresetName, BoneMaskPreset>> = {
  standard: {
    label: 'Standard',
    description:
      'cortex and what it encloses in 3D; right for intact cortex, ' +
      'and for the synthetic phantom (its foramina are water, not fat)',
    options: {},
  },
  demineralized: {
    label: 'Demineralized',
    description:
      'also fills sagittal and coronal slices: a demineralized sacrum whose alae open into the foramina ' +
      'without a visible wall (relies on fat in the foramina)',
    options: { slicePlaneNormals: ['x', 'y'] },
  },
  'demineralized-faint-cortex': {
    label: 'Demineralized, faint cortex',
    description:
      'as demineralized, and seals cortical gaps up to 6 mm with a stricter soft-tissue threshold (-10 HU): ' +
      'lateral masses whose cortex is faint and broken, as at S2 in an osteoporotic sacrum',
    options: { slicePlaneNormals: ['x', 'y'], sealMm: 3, softTissueHu: -10 },
  },
};

export const BONE_MASK_PRESET_NAMES = Object.keys(BONE_MASK_PRESETS) as BoneMaskPresetName[];

/** The preset's options (a copy), or a UsageError naming the choices. */
export function boneMaskPresetOptions(name: string, source?: string): BoneMaskPreset['options'] {
  if (!Object.hasOwn(BONE_MASK_PRESETS, name))
    throw new UsageError(`bone mask "${name}" is not one of ${BONE_MASK_PRESET_NAMES.join(', ')}`, source);
  const o = BONE_MASK_PRESETS[name as BoneMaskPresetName].options;
  return { ...o, ...(o.slicePlaneNormals ? { slicePlaneNormals: [...o.slicePlaneNormals] } : {}) };
}
