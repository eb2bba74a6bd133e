/**
 * A DICOM SEG as the planner's labels: readDicomSeg puts the segments on the CT's grid with the segment
 * number as voxel value; this module turns segment numbers into the label values an anatomy expects.
 *
 * - By name: segments labelled with TotalSegmentator's class names (its DICOM SEG output numbers the
 *   segments 1..n in the order written, not by class id) get TotalSegmentator's label ids, so the planner's
 *   TotalSegmentator anatomy (sacrum 25, vertebrae_S1 26, hip_left 77, hip_right 78, spinal_cord 79)
 *   applies. Other segments of such a SEG carry nothing the planner reads and are left out (0), named in
 *   a warning.
 * - By number: otherwise (no segment has such a name, or the caller names the labels itself), the
 *   segment number is the label value, e.g. a SEG written from the phantom's labels with the label ids
 *   as segment numbers.
 */
import type { Volume } from '../../volume/volume.js';
import { createVolume } from '../../volume/volume.js';
import { readDicomSeg, type DicomSegment } from './seg.js';

/** TotalSegmentator ('total' task) class names and label ids of the structures the planner uses. */
export const TOTALSEGMENTATOR_SEGMENT_IDS: Readonly<Record<string, number>> = {
  sacrum: 25,
  vertebrae_s1: 26,
  vertebrae_l5: 27,
  vertebrae_l4: 28,
  femur_left: 75,
  femur_right: 76,
  hip_left: 77,
  hip_right: 78,
  spinal_cord: 79,
};

/** Other spellings seen in SEG files (SNOMED-style display names, word order). */
const ALIASES: Readonly<Record<string, string>> = {
  vertebra_s1: 'vertebrae_s1',
  s1_vertebra: 'vertebrae_s1',
  s1: 'vertebrae_s1',
  vertebra_l5: 'vertebrae_l5',
  l5_vertebra: 'vertebrae_l5',
  vertebra_l4: 'vertebrae_l4',
  l4_vertebra: 'vertebrae_l4',
  left_hip: 'hip_left',
  right_hip: 'hip_right',
  left_femur: 'femur_left',
  right_femur: 'femur_right',
  spinal_canal: 'spinal_cord',
};

function normalName(label: string): string {
  const n = label
    .trim()
    .toLowerCase()
    .replace(/[\s\-.]+/g, '_');
  return ALIASES[n] ?? n;
}

export type SegValueMode = 'auto' | 'number';

export interface SegLabelMapping {
  /** 'name': TotalSegmentator label ids from the segment labels; 'number': the segment numbers. */
  by: 'name' | 'number';
  /** Each segment and the label value it has in the volume (0: left out). */
  segments: { number: number; label: string; value: number }[];
}

/** The label value of each segment: by TotalSegmentator name when any segment has one (mode 'auto'). */
export function segmentLabelValues(segments: readonly DicomSegment[], mode: SegValueMode = 'auto'): SegLabelMapping {
  const byName = segments.map((s) => TOTALSEGMENTATOR_SEGMENT_IDS[normalName(s.label)] as number | undefined);
  if (mode === 'number' || byName.every((v) => v === undefined)) {
    return { by: 'number', segments: segments.map((s) => ({ number: s.number, label: s.label, value: s.number })) };
  }
  return {
    by: 'name',
    segments: segments.map((s, n) => ({ number: s.number, label: s.label, value: byName[n] ?? 0 })),
  };
}

export interface DicomSegLabelsResult {
  /** Labels on the grid's voxels, valued as `mapping` says. */
  volume: Volume<Uint8Array | Uint16Array>;
  mapping: SegLabelMapping;
  referencedSeriesUid?: string;
  warnings: string[];
}

/**
 * Read a DICOM SEG as the planner's labels on `grid` (the CT it segments): readDicomSeg, then segment
 * numbers to label values (segmentLabelValues). A SEG of another series or on another grid is refused
 * (GeometryError naming both).
 */
export function readDicomSegLabels(
  bytes: Uint8Array,
  name: string,
  grid: Volume,
  mode: SegValueMode = 'auto',
): DicomSegLabelsResult {
  const seg = readDicomSeg(bytes, name, { grid });
  const mapping = segmentLabelValues(seg.segments, mode);
  const warnings = [...seg.warnings];
  let volume = seg.volume;
  if (mapping.by === 'name') {
    const lut = new Uint8Array(65536);
    for (const s of mapping.segments) lut[s.number] = s.value;
    const src = seg.volume.data;
    const data = new Uint8Array(src.length);
    for (let i = 0; i < src.length; i++) data[i] = lut[src[i]];
    volume = createVolume({
      data,
      dims: seg.volume.dims,
      indexToPatient: seg.volume.indexToPatient,
      meta: seg.volume.meta,
    });
    const used = mapping.segments.filter((s) => s.value > 0);
    warnings.push(
      `${name}: segments read by name as TotalSegmentator labels: ` +
        used.map((s) => `${s.label} (segment ${s.number}) = ${s.value}`).join(', '),
    );
    const left = mapping.segments.filter((s) => s.value === 0);
    if (left.length) {
      warnings.push(
        `${name}: ${left.length} segment(s) the planner does not use left out: ` +
          left.map((s) => `${s.label || '(no label)'} (segment ${s.number})`).join(', '),
      );
    }
  }
  const result: DicomSegLabelsResult = { volume, mapping, warnings };
  if (seg.referencedSeriesUid) result.referencedSeriesUid = seg.referencedSeriesUid;
  return result;
}

/**
 * Whether bytes (the start of a file is enough) look like a DICOM SEG: the Segmentation Storage SOP class
 * UID within the first 4 KiB, where the file meta and (0008,0016) lie. A sniff: readDicomSeg decides.
 */
export function looksLikeDicomSeg(head: Uint8Array): boolean {
  const uid = '1.2.840.10008.5.1.4.1.1.66.4';
  const n = Math.min(head.length, 4096);
  outer: for (let i = 0; i + uid.length <= n; i++) {
    for (let j = 0; j < uid.length; j++) if (head[i + j] !== uid.charCodeAt(j)) continue outer;
    // Not a longer UID that starts the same way (…66.41): a NUL, space or non-digit follows.
    const next = head[i + uid.length];
    if (next === undefined || (next !== 0x2e && (next < 0x30 || next > 0x39))) return true;
  }
  return false;
}
