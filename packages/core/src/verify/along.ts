/**
 * What a placed instrument passes through: the labels (or a bone mask) sampled along its shaft, to say
 * whether it leaves the bone or enters the canal or a foramen, where, and which.
 *
 * Definitions (mm, LPS of the frame the labels lie in):
 * - The shaft is sampled every ALONG_STEP_MM (at most a quarter of the labels' smallest spacing) from
 *   its outer end to its tip; at each step, on its axis and on a ring of RING_POINTS points at its
 *   radius (its surface), each point taking its nearest voxel's label. Labels in `ignore` (the instrument
 *   and cement themselves, in a segmentation of the verification scan) tell nothing and are skipped,
 *   as are points outside the label grid.
 * - A step *enters* a critical structure when any point lies in one of its labels; a step is *out of
 *   bone* when a point lies in neither bone nor a critical structure. The bone part starts at the first
 *   step whose points all lie in bone (the entry cortex crossed); out-of-bone steps before it are the
 *   way in, not a breach.
 * - A hit is a run of such steps at least BREACH_MIN_MM long (shorter runs are a voxel's staircase, not
 *   a breach); it reports the structure, its name, where along the shaft (mm back from the tip) and the
 *   axis point at the run's middle.
 * - Where the anatomy leaves joints unlabelled (bridgeMm), an out-of-bone stretch shorter than bridgeMm
 *   followed by bone is a joint, not an exit.
 * Limits: resolution is the label grid's (nearest voxel); the SI joints count as bone when the anatomy
 * says so (a trans-sacral pin crosses them by design); a real exit and re-entry shorter than bridgeMm
 * is missed where joints are bridged.
 */
import type { Point3 } from '../math/vec3.js';
import { mat4TransformPoint, type ReadonlyMat4 } from '../math/mat4.js';
import { PHANTOM_LABELS } from '../phantom/labels.js';
import { detectLabelAnatomy, totalSegmentatorAnatomy, type LabelAnatomy } from '../plan/anatomy.js';
import type { Volume } from '../volume/volume.js';
import { sampleNearest } from '../volume/sample.js';

/** Step along a shaft (mm); smaller on finer label grids (a quarter of the smallest spacing). */
export const ALONG_STEP_MM = 0.25;
/** Points on the shaft's surface ring at each step. */
export const RING_POINTS = 8;
/** Shortest run (mm along the shaft) reported as a breach. */
export const BREACH_MIN_MM = 0.5;

/** Which labels are bone and which critical structures, each named, for verification. */
export interface VerifyAnatomy {
  /** Labels that count as bone (joints a path crosses by design included). */
  bone: number[];
  /** Critical labels: each with the structure's family ('foramen', 'canal', ...) and its own name. */
  critical: { label: number; structure: string; name: string }[];
  /** Labels that say nothing about the anatomy (the instrument, cement): skipped. */
  ignore: number[];
  /**
   * Out-of-bone stretches shorter than this (mm) with bone on both sides are a joint between two bones,
   * not an exit: for segmentations that leave the SI joints unlabelled. Default 0 (none bridged).
   */
  bridgeMm?: number;
}

/** Joint gap bridged for segmentations without joint labels (an SI joint is 2-4 mm wide). */
export const JOINT_BRIDGE_MM = 4;

/**
 * The phantom's labels (PHANTOM_LABELS, or a truth.json's `labels` name -> id): bone = sacrum, L5,
 * ilia, femora and the SI joints; critical = the canal and each foramen by its name (S1L ... S4R);
 * ignored = instrument and cement.
 */
export function phantomVerifyAnatomy(labels: Readonly<Record<string, number>> = PHANTOM_LABELS): VerifyAnatomy {
  const id = (n: string) => labels[n] ?? (PHANTOM_LABELS as Record<string, number>)[n];
  const bone = [
    'cortex',
    'cancellous',
    'fracture',
    'L5',
    'iliumLeft',
    'iliumRight',
    'sacroiliacJointLeft',
    'sacroiliacJointRight',
    'femurLeft',
    'femurRight',
  ].map(id);
  const foramina = ['S1L', 'S1R', 'S2L', 'S2R', 'S3L', 'S3R', 'S4L', 'S4R'];
  return {
    bone,
    critical: [
      { label: id('canal'), structure: 'canal', name: 'spinal canal' },
      ...foramina.map((n) => ({ label: id(n), structure: 'foramen', name: n })),
    ],
    ignore: [id('instrument'), id('cement'), id('cementLeak')],
  };
}

/**
 * A planning anatomy (plan/anatomy.ts) for verification: its bone groups, its critical structures and
 * vessels, each by its family and name.
 */
export function verifyAnatomyFromLabels(a: LabelAnatomy): VerifyAnatomy {
  return {
    bone: a.boneGroups.flat(),
    critical: [...a.critical, ...(a.vessels ?? [])].flatMap((c) =>
      c.labels.map((label) => ({ label, structure: c.family ?? c.name, name: c.name })),
    ),
    ignore: [],
    // Its bone groups are separate bones whose joints carry no label (TotalSegmentator's).
    bridgeMm: JOINT_BRIDGE_MM,
  };
}

/**
 * Which labels are which for verification and cement: the phantom's (by a truth.json's `labels` name ->
 * id when the caller has one), else told from the label values (plan/anatomy.ts detectLabelAnatomy).
 * One rule for the CLI, the workstation and the server.
 */
export function verifyAnatomyFor(labels: Volume, truthLabels?: Readonly<Record<string, number>>): VerifyAnatomy {
  if (truthLabels) return phantomVerifyAnatomy(truthLabels);
  return detectLabelAnatomy(labels) === 'phantom'
    ? phantomVerifyAnatomy()
    : verifyAnatomyFromLabels(totalSegmentatorAnatomy());
}

export interface StructureHit {
  /** 'foramen', 'canal' (or another critical family), or 'outside bone'. */
  structure: string;
  /** The foramen's or structure's name ('S1L', 'spinal canal'); 'outside bone' for a bone exit. */
  name: string;
  /** Where along the shaft, mm back from the tip (fromTipMm >= toTipMm). */
  fromTipMm: number;
  toTipMm: number;
  /** Axis point at the middle of the run (LPS mm, plan frame). */
  at: Point3;
}

/** A stretch of the shaft's axis in bone (mm back from the tip, fromTipMm >= toTipMm). */
export interface BoneRun {
  fromTipMm: number;
  toTipMm: number;
}

/** Labels (or a bone mask: nonzero = bone) and how to reach them from the plan frame. */
export interface StructureSource {
  volume: Volume;
  /** With labels; absent for a bone mask. */
  anatomy?: VerifyAnatomy;
  /** Plan LPS -> the volume's LPS; absent when the volume lies in the plan frame. */
  planToVolume?: ReadonlyMat4;
}

/**
 * Hits along the shaft from `outer` to `tip` (plan frame) of radius `radiusMm`. Returns the hits and
 * whether any step lay in bone.
 */
export function structuresAlong(
  src: StructureSource,
  outer: Point3,
  tip: Point3,
  radiusMm: number,
): { hits: StructureHit[]; inBone: boolean; boneRuns: BoneRun[] } {
  const v = src.volume;
  const a = src.anatomy;
  const maxLabel = 65536;
  // Code per label: 1 bone, 2 ignore, 3+c critical c; 0 anything else (soft tissue, air).
  const code = new Int32Array(maxLabel);
  if (a) {
    for (const l of a.bone) if (l >= 0 && l < maxLabel) code[l] = 1;
    for (const l of a.ignore) if (l >= 0 && l < maxLabel) code[l] = 2;
    a.critical.forEach((c, k) => {
      if (c.label >= 0 && c.label < maxLabel) code[c.label] = 3 + k;
    });
  }
  const classify = (label: number): number => {
    if (!a) return label !== 0 ? 1 : 0;
    return label >= 0 && label < maxLabel && Number.isInteger(label) ? code[label] : 0;
  };
  const dx = tip[0] - outer[0],
    dy = tip[1] - outer[1],
    dz = tip[2] - outer[2];
  const len = Math.hypot(dx, dy, dz);
  const u: Point3 = [dx / len, dy / len, dz / len];
  // Two unit vectors across the shaft.
  const ref: Point3 = Math.abs(u[0]) < 0.9 ? [1, 0, 0] : [0, 1, 0];
  const e1 = normalized(crossP(u, ref));
  const e2 = crossP(u, e1);
  const step = Math.min(ALONG_STEP_MM, Math.min(...v.spacing) / 4);
  const nSteps = Math.max(1, Math.ceil(len / step));
  const p: Point3 = [0, 0, 0],
    q: Point3 = [0, 0, 0];
  const OUTSIDE_GRID = -1;
  /** Per step: the critical index hit (-1 none), out of bone (any point), all in bone. */
  const crit = new Int32Array(nSteps + 1);
  const out = new Uint8Array(nSteps + 1);
  const all = new Uint8Array(nSteps + 1);
  const axisBone = new Uint8Array(nSteps + 1);
  for (let s = 0; s <= nSteps; s++) {
    const t = (len * s) / nSteps;
    let c = -1,
      anyOut = 0,
      allBone = 1,
      seen = 0;
    for (let r = -1; r < RING_POINTS; r++) {
      const ang = (2 * Math.PI * r) / RING_POINTS;
      const ca = r < 0 ? 0 : radiusMm * Math.cos(ang),
        sa = r < 0 ? 0 : radiusMm * Math.sin(ang);
      p[0] = outer[0] + t * u[0] + ca * e1[0] + sa * e2[0];
      p[1] = outer[1] + t * u[1] + ca * e1[1] + sa * e2[1];
      p[2] = outer[2] + t * u[2] + ca * e1[2] + sa * e2[2];
      const at = src.planToVolume ? mat4TransformPoint(q, src.planToVolume, p) : p;
      const label = sampleNearest(v, at, OUTSIDE_GRID);
      if (label === OUTSIDE_GRID) continue;
      const k = classify(label);
      if (k === 2) continue;
      if (r < 0 && k === 1) axisBone[s] = 1;
      seen++;
      if (k >= 3) {
        if (c < 0) c = k - 3;
      } else if (k === 0) anyOut = 1;
      if (k !== 1) allBone = 0;
    }
    crit[s] = c;
    out[s] = c < 0 ? anyOut : 0;
    all[s] = seen > 0 && allBone ? 1 : 0;
  }
  let first = -1;
  for (let s = 0; s <= nSteps && first < 0; s++) if (all[s]) first = s;
  const hits: StructureHit[] = [];
  const tAt = (s: number) => (len * s) / nSteps;
  const push = (structure: string, name: string, s0: number, s1: number) => {
    const t0 = tAt(s0),
      t1 = tAt(s1);
    if (t1 - t0 + len / nSteps < BREACH_MIN_MM) return;
    const tm = (t0 + t1) / 2;
    hits.push({
      structure,
      name,
      fromTipMm: len - t0,
      toTipMm: len - t1,
      at: [outer[0] + tm * u[0], outer[1] + tm * u[1], outer[2] + tm * u[2]],
    });
  };
  // Critical runs anywhere along the shaft (a pin through a foramen may never have entered bone there).
  for (let s = 0; s <= nSteps;) {
    if (crit[s] < 0) {
      s++;
      continue;
    }
    const c = crit[s];
    let e = s;
    while (e + 1 <= nSteps && crit[e + 1] === c) e++;
    const cs = (a as VerifyAnatomy).critical[c];
    push(cs.structure, cs.name, s, e);
    s = e + 1;
  }
  // Bone exits after the entry cortex.
  if (first >= 0) {
    for (let s = first; s <= nSteps;) {
      if (!out[s]) {
        s++;
        continue;
      }
      let e = s;
      while (e + 1 <= nSteps && out[e + 1]) e++;
      // A short gap with bone after it is a joint when the anatomy says joints are unlabelled.
      const joint = e < nSteps && all[e + 1] === 1 && tAt(e) - tAt(s) < (a?.bridgeMm ?? 0);
      if (!joint) push('outside bone', 'outside bone', s, e);
      s = e + 1;
    }
  }
  hits.sort((x, y) => y.fromTipMm - x.fromTipMm);
  // Runs of the axis in bone (each step stands for the stretch half a step either side of it).
  const boneRuns: BoneRun[] = [];
  const half = len / nSteps / 2;
  for (let s = 0; s <= nSteps;) {
    if (!axisBone[s]) {
      s++;
      continue;
    }
    let e = s;
    while (e + 1 <= nSteps && axisBone[e + 1]) e++;
    boneRuns.push({
      fromTipMm: Math.min(len, len - tAt(s) + half),
      toTipMm: Math.max(0, len - tAt(e) - half),
    });
    s = e + 1;
  }
  return { hits, inBone: first >= 0, boneRuns };
}

function crossP(a: Point3, b: Point3): Point3 {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

function normalized(a: Point3): Point3 {
  const l = Math.hypot(a[0], a[1], a[2]);
  return [a[0] / l, a[1] / l, a[2] / l];
}
