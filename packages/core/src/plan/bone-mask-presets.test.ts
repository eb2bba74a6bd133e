import { describe, expect, it } from 'vitest';
import { defined } from '../test-helpers/defined.js';
import { BONE_MASK_PRESET_NAMES, boneMaskPresetOptions } from './bone-mask-presets.js';
import { UsageError } from '../errors.js';

describe('bone mask presets', () => {
  it('names every preset, and refuses an unknown name (also an Object property) with the choices', () => {
    expect(BONE_MASK_PRESET_NAMES).toEqual(['standard', 'demineralized', 'demineralized-faint-cortex']);
    expect(boneMaskPresetOptions('standard')).toEqual({});
    expect(boneMaskPresetOptions('demineralized-faint-cortex')).toEqual({
      slicePlaneNormals: ['x', 'y'],
      sealMm: 3,
      softTissueHu: -10,
    });
    for (const bad of ['osteoporotic', 'toString', '__proto__']) {
      expect(() => boneMaskPresetOptions(bad, '--bone-mask')).toThrow(UsageError);
      expect(() => boneMaskPresetOptions(bad, '--bone-mask')).toThrow(
        /--bone-mask: bone mask ".*" is not one of standard, demineralized, demineralized-faint-cortex/,
      );
    }
  });

  it('hands out copies: changing one does not change the preset', () => {
    const a = boneMaskPresetOptions('demineralized');
    defined(a.slicePlaneNormals, 'slicePlaneNormals').push('z');
    expect(boneMaskPresetOptions('demineralized').slicePlaneNormals).toEqual(['x', 'y']);
  });
});
