/**
 * A real fluoroscopy frame (XA/RF) for overlay: core reads the frame and its C-arm geometry
 * (readXaFrame); what the file lacks comes from the selected C-arm preset, and the result lists it.
 */
import { readXaFrame, type CarmSystem, type NamedBytes, type Point3 } from '@corridor/core';
import type { LoadedXa } from './store.js';

export async function loadXaFrame(file: NamedBytes, system: CarmSystem, isocenter: Point3): Promise<LoadedXa> {
  const frame = await readXaFrame(file.bytes, file.name, { system, isocenter });
  const notes = [...frame.warnings];
  const device = frame.assumed.filter((a) => !a.includes('given by the caller'));
  if (device.length)
    notes.push(
      `not in the file, taken from the ${system.name} preset: ${device.join('; ')}. ` +
        'The overlay is only as good as these.',
    );
  return { name: file.name, frame, notes };
}
