/**
 * A real fluoroscopy frame (XA/RF) for overlay: core parses and decodes the DICOM; the C-arm pose and
 * distances come from the frame's positioner tags, and what the frame lacks comes from the selected
 * C-arm preset, which the returned notes say.
 */
import { FormatError, decodeFrame, describePixels, parseDicom, type CarmSystem, type NamedBytes } from '@corridor/core';
import type { XaFrame } from './store.js';

const TAGS = {
  primary: 'x00181510',
  secondary: 'x00181511',
  sid: 'x00181110',
  sod: 'x00181111',
  imagerPixelSpacing: 'x00181164',
  windowCenter: 'x00281050',
  windowWidth: 'x00281051',
};

export async function loadXaFrame(file: NamedBytes, system: CarmSystem, frameIndex = 0): Promise<XaFrame> {
  const ds = parseDicom(file.bytes, file.name);
  const desc = describePixels(ds);
  if (desc.samplesPerPixel !== 1) throw new FormatError(`only greyscale frames can be overlaid (${desc.samplesPerPixel} samples per pixel)`, file.name);
  const frame = await decodeFrame(ds, Math.min(frameIndex, desc.numberOfFrames - 1), desc);
  const notes: string[] = [];
  const num = (tag: string) => ds.numbers(tag)?.[0];
  const primaryDeg = num(TAGS.primary), secondaryDeg = num(TAGS.secondary);
  let sidMm = num(TAGS.sid), sodMm = num(TAGS.sod);
  const spacing = ds.numbers(TAGS.imagerPixelSpacing);
  if (primaryDeg === undefined || secondaryDeg === undefined) notes.push('no positioner angles: the overlay uses the angles set in the C-arm panel');
  if (sidMm === undefined || sodMm === undefined) {
    notes.push(`no source distances: using the ${system.name} preset (SID ${system.sidMm} mm, SOD ${system.sodMm} mm)`);
    sidMm = system.sidMm;
    sodMm = system.sodMm;
  }
  let rowSpacingMm: number, columnSpacingMm: number;
  if (spacing && spacing.length >= 2) {
    rowSpacingMm = spacing[0];
    columnSpacingMm = spacing[1];
  } else {
    // The frame covers the preset's detector width.
    columnSpacingMm = rowSpacingMm = (system.detectorColumns * system.pixelPitchMm) / frame.columns;
    notes.push(`no imager pixel spacing: assuming the frame spans the ${system.name} detector (${columnSpacingMm.toFixed(3)} mm per pixel)`);
  }
  // Grey values through the frame's own window, else its min..max; MONOCHROME1 is inverted.
  const d = frame.data;
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < d.length; i++) {
    if (d[i] < lo) lo = d[i];
    if (d[i] > hi) hi = d[i];
  }
  const wc = num(TAGS.windowCenter), ww = num(TAGS.windowWidth);
  if (wc !== undefined && ww !== undefined && ww > 0) {
    lo = wc - ww / 2;
    hi = wc + ww / 2;
  }
  const invert = desc.photometricInterpretation === 'MONOCHROME1';
  const pixels = new Uint8ClampedArray(frame.columns * frame.rows);
  const k = 255 / Math.max(1e-9, hi - lo);
  for (let i = 0; i < pixels.length; i++) {
    const g = (d[i] - lo) * k;
    pixels[i] = invert ? 255 - g : g;
  }
  return {
    name: file.name,
    columns: frame.columns,
    rows: frame.rows,
    pixels,
    pose: primaryDeg !== undefined && secondaryDeg !== undefined ? { primaryDeg, secondaryDeg } : null,
    sidMm,
    sodMm,
    rowSpacingMm,
    columnSpacingMm,
    notes,
  };
}
