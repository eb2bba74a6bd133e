/**
 * DICOM SEG as planning labels: writeDicomSeg -> readDicomSegLabels on the labels' own grid gives back
 * the labels made here (by number), or TotalSegmentator's ids (by name); a SEG of another series is
 * refused naming both series. Expected values are the label arrays built in this test.
 */
import { describe, expect, it } from 'vitest';
import { GeometryError } from '../../errors.js';
import { createVolume, type Volume } from '../../volume/volume.js';
import { looksLikeDicomSeg, readDicomSegLabels, segmentLabelValues } from './seg-labels.js';
import { writeDicomSeg } from './seg-writer.js';

/** 7 x 5 x 4 labels on an oblique, anisotropic grid far from the origin, k against the slice normal. */
function labelsVolume(seriesInstanceUid?: string): Volume<Uint8Array> {
  const [ni, nj, nk] = [7, 5, 4];
  const data = new Uint8Array(ni * nj * nk);
  for (let k = 0; k < nk; k++)
    for (let j = 0; j < nj; j++)
      for (let i = 0; i < ni; i++) {
        const v = (i * 3 + j * 5 + k * 7) % 6; // 0..5, every value in several slices
        data[(k * nj + j) * ni + i] = v === 5 ? 0 : [0, 10, 14, 20, 25][v];
      }
  const a = 0.3;
  const [c, s] = [Math.cos(a), Math.sin(a)];
  // i along (c, s, 0) * 0.8 mm, j along (0, 0, -1) * 1.2 mm (coronal), k along (s, -c, 0) * -2.5 mm.
  const m = Float64Array.of(c * 0.8, 0, -s * 2.5, -120.5, s * 0.8, 0, c * 2.5, 310.25, 0, -1.2, 0, 1045, 0, 0, 0, 1);
  return createVolume({
    data,
    dims: [ni, nj, nk],
    indexToPatient: m,
    meta: { source: 'ct-grid', ...(seriesInstanceUid ? { seriesInstanceUid } : {}) },
  });
}

describe('readDicomSegLabels', () => {
  it('reads a SEG of the labels back onto their grid, segment number = label value', () => {
    const labels = labelsVolume();
    const seg = writeDicomSeg(labels, {
      segments: [10, 14, 20, 25].map((v) => ({ number: v, label: `label ${v}`, values: [v] })),
    });
    expect(looksLikeDicomSeg(seg)).toBe(true);
    const r = readDicomSegLabels(seg, 'seg.dcm', labels);
    expect(r.mapping.by).toBe('number');
    expect(Array.from(r.volume.data)).toEqual(Array.from(labels.data));
    expect(r.volume.dims).toEqual(labels.dims);
  });

  it('maps TotalSegmentator segment names to its label ids and leaves other segments out', () => {
    const labels = labelsVolume();
    const seg = writeDicomSeg(labels, {
      segments: [
        { number: 1, label: 'Hip left', values: [14] },
        { number: 2, label: 'sacrum', values: [10] },
        { number: 3, label: 'liver', values: [20] },
        { number: 4, label: 'spinal_cord', values: [25] },
      ],
    });
    const r = readDicomSegLabels(seg, 'seg.dcm', labels);
    expect(r.mapping.by).toBe('name');
    const lut: Record<number, number> = { 0: 0, 14: 77, 10: 25, 20: 0, 25: 79 };
    expect(Array.from(r.volume.data)).toEqual(Array.from(labels.data, (v) => lut[v]));
    expect(r.warnings.join('\n')).toContain('liver (segment 3)');
    // By number when asked, names or not.
    expect(readDicomSegLabels(seg, 'seg.dcm', labels, 'number').volume.data[0]).toBe(
      { 0: 0, 14: 1, 10: 2, 20: 3, 25: 4 }[labels.data[0]],
    );
  });

  it('refuses a SEG made on another series, naming both series', () => {
    const labels = labelsVolume('1.2.3.999');
    const seg = writeDicomSeg(labels, {
      segments: [{ number: 1, label: 'sacrum', values: [10] }],
      referencedSeriesUid: '1.2.3.111',
    });
    const read = () => readDicomSegLabels(seg, 'seg.dcm', labels);
    expect(read).toThrow(GeometryError);
    expect(read).toThrow(/series 1\.2\.3\.111, not on ct-grid \(series 1\.2\.3\.999\)/);
    // The series it names: read.
    const same = writeDicomSeg(labels, {
      segments: [{ number: 1, label: 'x', values: [10] }],
      referencedSeriesUid: '1.2.3.999',
    });
    expect(readDicomSegLabels(same, 'seg.dcm', labels).referencedSeriesUid).toBe('1.2.3.999');
  });

  it('sniffs only the SEG SOP class, not a longer UID that starts the same', () => {
    const enc = (s: string) => new TextEncoder().encode(`xx${s}\u0000yy`);
    expect(looksLikeDicomSeg(enc('1.2.840.10008.5.1.4.1.1.66.4'))).toBe(true);
    expect(looksLikeDicomSeg(enc('1.2.840.10008.5.1.4.1.1.66.41'))).toBe(false);
    expect(looksLikeDicomSeg(enc('1.2.840.10008.5.1.4.1.1.2'))).toBe(false);
    expect(segmentLabelValues([{ number: 3, label: 'Vertebra S1' }]).segments[0].value).toBe(26);
  });
});
