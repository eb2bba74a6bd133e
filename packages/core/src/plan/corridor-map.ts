/**
 * The corridor map: what a tool may pass through, voxel by voxel, and how far each voxel is from what it
 * may not. Built from a label map (named bone and critical labels) or from CT intensities alone.
 *
 * Structure codes (one byte per voxel):
 * - 0: bone, where a tool may go (including a joint space bridged between two bones, see `bridgeMm`);
 * - 1: outside bone (soft tissue, air, anything not bone);
 * - 2 and up: named critical structures (spinal canal, a sacral foramen, ...), forbidden like outside.
 *
 * `clearance[v]` is the exact Euclidean distance (mm) from voxel v's centre to the centre of the nearest
 * forbidden voxel (code != 0): see volume/edt.ts.
 */
import { UsageError } from '../errors.js';
import { squaredDistanceTransform } from '../volume/edt.js';
import { createVolume, withData, type Volume } from '../volume/volume.js';
import { crop } from '../volume/resample.js';
import { patientToIndexContinuous } from '../volume/sample.js';
import { fillSliceHoles, floodFromBorder, maskBoundingBox, smoothBinomial } from '../volume/morphology.js';
import type { Point3 } from '../math/vec3.js';

export const BONE = 0;
export const OUTSIDE = 1;

export interface CorridorMap {
  /** Structure codes on the (possibly cropped) grid; geometry from indexToPatient as for any Volume. */
  structures: Volume<Uint8Array>;
  /** names[code]: "bone", "outside bone", then the critical structures. */
  names: string[];
  /**
   * Distance (mm) from each voxel centre to the nearest forbidden voxel centre; 0 on forbidden voxels.
   * On the grid of `structures`, so that it is sampled with volume/sample.ts like any image.
   */
  clearance: Volume<Float64Array>;
  /** Distance (mm) from each forbidden voxel centre to the nearest bone voxel centre; 0 on bone. Same grid. */
  depth: Volume<Float64Array>;
  /**
   * Half a voxel (mm): the boundary between a bone voxel and a forbidden one lies half a voxel before the
   * forbidden voxel's centre, so a clearance radius is `clearance - boundaryOffsetMm`. For anisotropic
   * grids the mean of the three spacings is used.
   */
  boundaryOffsetMm: number;
}

export interface CriticalStructure {
  name: string;
  labels: number[];
  /** The structure's family for verification and cement ('canal', 'foramen', 'vein', 'artery'); default: name. */
  family?: string;
}

export interface LabelMapOptions {
  /** Labels that count as bone, grouped by bone: e.g. [[25, 26], [77], [78]] (sacrum with S1, hips). */
  boneGroups: number[][];
  /** Labelled structures a tool must not enter (checked before bone). */
  critical?: CriticalStructure[];
  /**
   * Non-bone voxels within this distance (mm) of two different bone groups are a joint (sacroiliac) that a
   * trans-sacral screw crosses by design: they count as bone. Default max(4 mm, twice the largest
   * spacing: a joint two voxels wide is bridged at any resolution); 0 disables.
   */
  bridgeMm?: number;
  /** Crop to the bone's bounding box plus this margin (mm) before computing distances. Default 20. */
  marginMm?: number;
}

function sqrtInPlace(a: Float64Array): Float64Array {
  for (let i = 0; i < a.length; i++) a[i] = Math.sqrt(a[i]);
  return a;
}

/** Finish a map from structure codes: the two distance maps. */
export function corridorMapFromStructures(structures: Volume<Uint8Array>, names: string[]): CorridorMap {
  const s = structures.data;
  const n = s.length;
  const bone = new Uint8Array(n);
  const notBone = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    if (s[i] === BONE) bone[i] = 1;
    else notBone[i] = 1;
  }
  const src = structures.meta.source ?? 'corridor map';
  const clearance = withData(
    structures,
    sqrtInPlace(squaredDistanceTransform(bone, structures.dims, structures.spacing, { source: src })),
  );
  const depth = withData(
    structures,
    sqrtInPlace(squaredDistanceTransform(notBone, structures.dims, structures.spacing, { source: src })),
  );
  const sp = structures.spacing;
  return { structures, names, clearance, depth, boundaryOffsetMm: (sp[0] + sp[1] + sp[2]) / 6 };
}

/**
 * A corridor map from a segmentation: bone groups, critical structures, and joint spaces between
 * different bone groups bridged as bone.
 */
export function corridorMapFromLabels(labels: Volume, options: LabelMapOptions): CorridorMap {
  const src = labels.meta.source ?? 'labels';
  if (!options.boneGroups.length || !options.boneGroups.every((g) => g.length > 0))
    throw new UsageError('boneGroups must list at least one label per group', src);
  const lut = new Int16Array(65536).fill(-1); // label -> bone group
  options.boneGroups.forEach((g, gi) =>
    g.forEach((l) => {
      lut[l & 0xffff] = gi;
    }),
  );
  const critical = options.critical ?? [];
  const critLut = new Uint8Array(65536);
  critical.forEach((c, ci) =>
    c.labels.forEach((l) => {
      critLut[l & 0xffff] = 2 + ci;
    }),
  );
  const isBoneLabel = (v: number) => Number.isInteger(v) && v >= 0 && v < 65536 && lut[v] >= 0;
  const marginMm = options.marginMm ?? 20;
  const box = maskBoundingBox(
    labels.data,
    labels.dims,
    isBoneLabel,
    labels.spacing.map((s) => Math.ceil(marginMm / s)),
  );
  if (!box)
    throw new UsageError(`no voxel carries any of the bone labels ${options.boneGroups.flat().join(', ')}`, src);
  const cropped = crop(labels, box.min, box.max);
  const d = cropped.data;
  const n = d.length;
  const codes = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const v = d[i];
    const ok = Number.isInteger(v) && v >= 0 && v < 65536;
    codes[i] = ok && critLut[v] ? critLut[v] : ok && lut[v] >= 0 ? BONE : OUTSIDE;
  }
  const bridgeMm = options.bridgeMm ?? Math.max(4, 2 * Math.max(...labels.spacing));
  if (bridgeMm > 0 && options.boneGroups.length > 1) {
    // Per voxel, how many different bone groups lie within bridgeMm: a joint lies near two.
    const near = new Uint8Array(n);
    const r2 = bridgeMm * bridgeMm;
    const mask = new Uint8Array(n);
    for (let g = 0; g < options.boneGroups.length; g++) {
      for (let i = 0; i < n; i++) {
        const v = d[i];
        mask[i] = Number.isInteger(v) && v >= 0 && v < 65536 && lut[v] === g ? 0 : 1;
      }
      const sq = squaredDistanceTransform(mask, cropped.dims, cropped.spacing, { source: src });
      for (let i = 0; i < n; i++) if (sq[i] <= r2) near[i]++;
    }
    for (let i = 0; i < n; i++) if (codes[i] === OUTSIDE && near[i] >= 2) codes[i] = BONE;
  }
  const structures = createVolume({
    data: codes,
    dims: cropped.dims,
    indexToPatient: cropped.indexToPatient,
    meta: { source: src },
  });
  return corridorMapFromStructures(structures, ['bone', 'outside bone', ...critical.map((c) => c.name)]);
}

export interface IntensityMapOptions {
  /**
   * HU at and above which a voxel is cortical (or dense) bone. Default 200: above muscle and its noise,
   * below a thin cortex even when partial-volumed. Applied to the raw HU: smoothing would spread a dense
   * cortex into the canal and foramina next to it.
   */
  cortexHu?: number;
  /**
   * Gaps in the cortex narrower than twice this (mm) are sealed (morphological closing) before the
   * interior is filled, so thin or partial-volumed cortex still encloses its cancellous bone. Default 2.
   */
  sealMm?: number;
  /**
   * Voxels below this HU (after smoothing) that connect to the outside through such voxels are soft
   * tissue even where the cortex encloses them: the fat of the sacral canal and foramina. Default -20:
   * between fat (-60 to -120 HU) and the fattiest marrow of demineralized bone (0 to +60 HU).
   */
  softTissueHu?: number;
  /** Passes of a [1 2 1]/4 binomial filter along each axis before the soft-tissue test (noise). Default 2. */
  smoothPasses?: number;
  /**
   * Also fill, slice by slice, what the sealed cortex encloses in planes perpendicular to these patient
   * axes (see boneMaskFromIntensity). Default [] (3D fill only). ['x', 'y'] (sagittal and coronal
   * planes) seals the alae of a demineralized sacrum whose cancellous bone opens into the foramina without
   * a visible wall (the Visible Human female pelvis). It relies on the foramina and canal holding fat
   * (removed again by the soft-tissue test), true of real anatomy but not of the synthetic phantom, whose
   * water-density foramina and canal it would fill: opt in for real osteoporotic CT.
   */
  slicePlaneNormals?: ('x' | 'y' | 'z')[];
  /** Only the bone within this distance (mm) of a seed point is kept (crop). Default: whole volume. */
  seeds?: Point3[];
  seedRadiusMm?: number;
}

/** The index axis whose direction is closest to the patient axis (0 x, 1 y, 2 z). */
function indexAxisAlong(ct: Volume, patientAxis: number): 0 | 1 | 2 {
  const m = ct.indexToPatient;
  let best: 0 | 1 | 2 = 0,
    bestCos = -1;
  for (const a of [0, 1, 2] as const) {
    const len = Math.hypot(m[a], m[4 + a], m[8 + a]);
    const c = Math.abs(m[patientAxis * 4 + a]) / len;
    if (c > bestCos) {
      bestCos = c;
      best = a;
    }
  }
  return best;
}

/**
 * Bone from intensities alone, robust to demineralized bone. A plain threshold misses cancellous bone
 * whose HU is near soft tissue (down to 0-60 HU in an osteoporotic sacrum), so bone = the cortex plus
 * everything the cortex encloses:
 * 1. cortex = HU >= cortexHu;
 * 2. seal gaps in the cortex by a closing of radius sealMm (exact distance transforms);
 * 3. fill what the sealed cortex encloses in 3D (flood of the outside from the volume's border), and,
 *    slice by slice, what it encloses in planes normal to `slicePlaneNormals` (opt-in). The 3D fill
 *    alone leaks in a demineralized sacrum: the cancellous ala opens without a visible wall into the
 *    sacral foramina, and through them into the pelvis. In coronal planes the anterior ala is enclosed
 *    (superior, inferior, medial and lateral cortices), in sagittal planes its posterior part, while
 *    the spinal canal, running cranio-caudally into the lumbar canal, is open in both;
 * 4. remove soft-tissue channels: voxels below softTissueHu (after binomial smoothing) connected to the
 *    outside through such voxels (the fat of the foramina and the sacral canal, which step 3 may have
 *    enclosed).
 * Returns 1 for bone, 0 elsewhere.
 */
export function boneMaskFromIntensity(ct: Volume, options: IntensityMapOptions = {}): Uint8Array {
  const cortexHu = options.cortexHu ?? 200;
  const sealMm = options.sealMm ?? 2;
  const softHu = options.softTissueHu ?? -20;
  const passes = options.smoothPasses ?? 2;
  const normals = options.slicePlaneNormals ?? [];
  if (!Number.isFinite(cortexHu) || !Number.isFinite(softHu) || !(sealMm >= 0) || !(passes >= 0)) {
    throw new UsageError('intensity map options must be finite (sealMm and smoothPasses >= 0)', ct.meta.source);
  }
  const dims = ct.dims;
  const n = dims[0] * dims[1] * dims[2];
  const src = ct.meta.source ?? 'CT';
  const smooth = smoothBinomial(ct.data, dims, Math.round(passes));
  // Closing with hole filling: dilate the cortex by sealMm, fill what the dilated cortex encloses, then
  // erode by sealMm. (Filling after the erosion would reopen every gap the dilation had bridged.)
  const notCortex = new Uint8Array(n);
  const data = ct.data;
  for (let i = 0; i < n; i++) notCortex[i] = data[i] >= cortexHu ? 0 : 1;
  const seal2 = (sealMm + 1e-6) ** 2; // a hair more, so a voxel exactly sealMm away (grid coincidence) counts
  const toCortex2 = squaredDistanceTransform(notCortex, dims, ct.spacing, { source: src });
  const dilated = new Uint8Array(n);
  const open = notCortex; // reused: 1 where not dilated
  for (let i = 0; i < n; i++) {
    dilated[i] = toCortex2[i] <= seal2 ? 1 : 0;
    open[i] = 1 - dilated[i];
  }
  const scratch = { stack: new Int32Array(n), state: new Uint8Array((dims[0] + 2) * (dims[1] + 2) * (dims[2] + 2)) };
  const outside = floodFromBorder(open, dims, false, undefined, scratch);
  const filledDilated = new Uint8Array(n);
  for (let i = 0; i < n; i++) filledDilated[i] = outside[i] ? 0 : 1;
  for (const normal of new Set(normals))
    fillSliceHoles(dilated, dims, indexAxisAlong(ct, 'xyz'.indexOf(normal)), filledDilated);
  const toOutside2 = squaredDistanceTransform(filledDilated, dims, ct.spacing, { source: src });
  const filled = dilated; // reused
  for (let i = 0; i < n; i++) filled[i] = toOutside2[i] > seal2 ? 1 : 0;
  // Soft-tissue channels: the outside flooded again, now also through low-density voxels inside.
  const passable = open;
  for (let i = 0; i < n; i++) passable[i] = !filled[i] || smooth[i] < softHu ? 1 : 0;
  const soft = floodFromBorder(passable, dims, false, undefined, scratch);
  const bone = new Uint8Array(n);
  for (let i = 0; i < n; i++) bone[i] = filled[i] && !soft[i] ? 1 : 0;
  return bone;
}

/** A corridor map from CT intensities (see boneMaskFromIntensity); optionally cropped around seed points. */
export function corridorMapFromIntensity(ct: Volume, options: IntensityMapOptions = {}): CorridorMap {
  let vol = ct;
  if (options.seeds && options.seeds.length) {
    const r = options.seedRadiusMm ?? 120;
    const min = [Infinity, Infinity, Infinity],
      max = [-Infinity, -Infinity, -Infinity];
    const idx = [0, 0, 0];
    for (const s of options.seeds) {
      // Corners of the seed's cube, in index space, bound the crop box.
      for (let c = 0; c < 8; c++) {
        const p = [s[0] + (c & 1 ? r : -r), s[1] + (c & 2 ? r : -r), s[2] + (c & 4 ? r : -r)];
        patientToIndexContinuous(idx, ct, p);
        for (let a = 0; a < 3; a++) {
          min[a] = Math.min(min[a], Math.floor(idx[a]));
          max[a] = Math.max(max[a], Math.ceil(idx[a]));
        }
      }
    }
    const lo = min.map((v) => Math.max(0, v));
    const hi = max.map((v, a) => Math.min(ct.dims[a] - 1, v));
    if (lo.some((v, a) => v > hi[a])) throw new UsageError('seed points lie outside the volume', ct.meta.source);
    vol = crop(ct, lo, hi);
  }
  const bone = boneMaskFromIntensity(vol, options);
  const codes = new Uint8Array(bone.length);
  for (let i = 0; i < bone.length; i++) codes[i] = bone[i] ? BONE : OUTSIDE;
  const structures = createVolume({
    data: codes,
    dims: vol.dims,
    indexToPatient: vol.indexToPatient,
    meta: { source: ct.meta.source ?? 'CT' },
  });
  return corridorMapFromStructures(structures, ['bone', 'outside bone']);
}
