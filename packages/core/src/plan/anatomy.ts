/**
 * Which labels of a segmentation are which bone and which critical structure, for the planner: the two
 * segmentations Corridor knows (TotalSegmentator's, as in ../shared/data/abdomen-pelvis-ct, and the
 * synthetic phantom's), told apart by the label values present. Their label ids collide (25/26 are the
 * sacrum and S1 in TotalSegmentator, the S3 foramina in the phantom), so guessing wrong is not harmless.
 */
import { UsageError } from '../errors.js';
import type { Volume } from '../volume/volume.js';
import { crop } from '../volume/resample.js';
import { maskBoundingBox } from '../volume/morphology.js';
import { PlanError } from './model.js';
import type { CriticalStructure } from './corridor-map.js';
import type { SacralSeedOptions } from './seeds.js';

export type LabelAnatomyName = 'phantom' | 'totalsegmentator';
export const LABEL_ANATOMIES: readonly LabelAnatomyName[] = ['phantom', 'totalsegmentator'];

export interface LabelAnatomy {
  name: LabelAnatomyName;
  /** Bone labels grouped by bone, the sacrum first (corridorMapFromLabels' boneGroups). */
  boneGroups: number[][];
  critical: CriticalStructure[];
  /** Labels of the sacrum (sacralSeedsFromLabels' second argument). */
  sacrum: number[];
  /** The rest of what sacralSeedsFromLabels can use: S1 label, foramina, canal. */
  seeds: SacralSeedOptions;
  /**
   * Labelled vessels, for verification and cement (a leak into a vein is named as one). The planner does
   * not need them: its paths stay in bone, and leaving bone is already forbidden there.
   */
  vessels?: CriticalStructure[];
}

/**
 * TotalSegmentator ("total" task, v2 class map): sacrum 25 + vertebra S1 26, hips 77/78, spinal cord
 * (canal) 79; the vessels of the pelvis: aorta 52, inferior vena cava 63, iliac arteries 65/66 and iliac
 * veins 67/68 (its iliac classes run from the bifurcation to the groin: common and external).
 */
export function totalSegmentatorAnatomy(): LabelAnatomy {
  return {
    name: 'totalsegmentator',
    boneGroups: [[25, 26], [77], [78]],
    critical: [{ name: 'spinal canal', family: 'canal', labels: [79] }],
    sacrum: [25, 26],
    seeds: { s1: [26], canal: [79] },
    vessels: [
      { name: 'aorta', family: 'artery', labels: [52] },
      { name: 'inferior vena cava', family: 'vein', labels: [63] },
      { name: 'left iliac artery', family: 'artery', labels: [65] },
      { name: 'right iliac artery', family: 'artery', labels: [66] },
      { name: 'left iliac vein', family: 'vein', labels: [67] },
      { name: 'right iliac vein', family: 'vein', labels: [68] },
    ],
  };
}

/** The parts of a phantom truth.json the planner may use: label ids only, never the answers. */
export interface PhantomLabelIds {
  boneGroups: Record<string, number[]>;
  criticalLabelIds: Record<string, number[]>;
}

function labelList(v: unknown, what: string, source: string): number[] {
  if (!Array.isArray(v) || !v.length || !v.every((x) => Number.isInteger(x) && x >= 0 && x < 65536)) {
    throw new UsageError(`${what} is not a list of label ids`, source);
  }
  return v as number[];
}

/**
 * The phantom's anatomy: sacrum (cortex, cancellous, fracture 10/11/12), ilia 14 and 15; the canal (20)
 * and every sacral foramen (21-28, one label each) critical. `ids` (from truth.json) replaces the
 * built-in label ids; only boneGroups.sacrum/iliumLeft/iliumRight and criticalLabelIds.canal/foramina
 * are read from it.
 */
export function phantomAnatomy(ids?: PhantomLabelIds, source = 'truth.json'): LabelAnatomy {
  const bg = ids?.boneGroups,
    cr = ids?.criticalLabelIds;
  if (ids && (typeof bg !== 'object' || bg === null || typeof cr !== 'object' || cr === null)) {
    throw new UsageError('no boneGroups / criticalLabelIds objects', source);
  }
  const sacrum = bg ? labelList(bg.sacrum, 'boneGroups.sacrum', source) : [10, 11, 12];
  const iliumLeft = bg ? labelList(bg.iliumLeft, 'boneGroups.iliumLeft', source) : [14];
  const iliumRight = bg ? labelList(bg.iliumRight, 'boneGroups.iliumRight', source) : [15];
  const canal = cr ? labelList(cr.canal, 'criticalLabelIds.canal', source) : [20];
  const foramina = cr ? labelList(cr.foramina, 'criticalLabelIds.foramina', source) : [21, 22, 23, 24, 25, 26, 27, 28];
  return {
    name: 'phantom',
    // Both ilia in one group: they never come near each other, so the joints bridged (near the sacrum and
    // near an ilium) are the same, and the map needs one distance transform less.
    boneGroups: [sacrum, [...iliumLeft, ...iliumRight]],
    critical: [
      { name: 'spinal canal', labels: canal },
      { name: 'sacral foramen', labels: foramina },
    ],
    sacrum,
    seeds: { foramina, canal },
  };
}

/** Which label values occur in a segmentation (values 0-65535). */
export function labelsPresent(labels: Volume): Set<number> {
  const seen = new Uint8Array(65536);
  const d = labels.data;
  for (let i = 0; i < d.length; i++) {
    const v = d[i];
    if (v >= 0 && v < 65536) seen[v | 0] = 1;
  }
  const out = new Set<number>();
  for (let v = 0; v < 65536; v++) if (seen[v]) out.add(v);
  return out;
}

/**
 * Tell the anatomy from the label values: TotalSegmentator has its hips (77, 78); the phantom its sacral
 * cortex or cancellous bone (10/11), both ilia (14, 15) and the canal (20), and no label above 32.
 * Throws a UsageError when neither fits.
 */
export function detectLabelAnatomy(labels: Volume): LabelAnatomyName {
  const present = labelsPresent(labels);
  if (present.has(77) && present.has(78)) return 'totalsegmentator';
  const max = Math.max(...present);
  if ((present.has(10) || present.has(11)) && present.has(14) && present.has(15) && present.has(20) && max <= 32)
    return 'phantom';
  throw new UsageError(
    'cannot tell which segmentation this is (neither TotalSegmentator hips 77/78 nor the phantom labels ' +
      '10/11, 14, 15, 20): name the anatomy or give the bone and critical labels',
    labels.meta.source ?? 'labels',
  );
}

export interface SacralRegionOptions {
  /** How far (mm, along patient x) the region reaches beyond the sacrum on each side: into the ilia. Default 45. */
  lateralMm?: number;
  /**
   * Margin (mm) around the sacrum in the other directions: more than any clearance radius that decides a sacral path.
   * Default 12.
   */
  marginMm?: number;
}

/**
 * The part of a segmentation the sacral paths can use: the sacrum's bounding box, grown by marginMm and
 * by lateralMm more along patient x, so that it holds the posterior ilia out to their lateral cortices
 * (the trans-sacral entry and exit) but not the iliac wings, acetabula and rami. Corridor maps of this
 * region cost a fraction of the whole pelvis's, with the same values along every sacral path: bone
 * cut by the region's border is at least marginMm from the sacrum.
 */
export function sacralRegion(labels: Volume, sacrum: number[], options: SacralRegionOptions = {}): Volume {
  const src = labels.meta.source ?? 'labels';
  const lateralMm = options.lateralMm ?? 45,
    marginMm = options.marginMm ?? 12;
  const isS = new Uint8Array(65536);
  for (const l of sacrum) isS[l & 0xffff] = 1;
  const box = maskBoundingBox(labels.data, labels.dims, (v) => v >= 0 && v < 65536 && isS[v] === 1, [0, 0, 0]);
  if (!box) throw new PlanError(`no sacrum label (${sacrum.join(', ')}) in the segmentation`, src);
  const { min, max } = box;
  const m = labels.indexToPatient;
  for (let a = 0; a < 3; a++) {
    // Index axis a's share of patient x: an oblique grid grows each axis by its projection.
    const len = Math.hypot(m[a], m[4 + a], m[8 + a]);
    const xShare = len > 0 ? Math.abs(m[a]) / len : 0;
    const grow = Math.ceil((marginMm + xShare * lateralMm) / labels.spacing[a]);
    min[a] = Math.max(0, min[a] - grow);
    max[a] = Math.min(labels.dims[a] - 1, max[a] + grow);
  }
  return crop(labels, min, max);
}
