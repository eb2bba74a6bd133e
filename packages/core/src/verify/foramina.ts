/**
 * findForamina: the sacral foramina found in the image when no labels are
 * given, as a label volume plus a VerifyAnatomy, so that verification and cement monitoring follow them
 * as they would follow a segmentation. How it finds them (LPS mm, HU):
 *
 * 1. Bright bone: voxels >= boneHu (FORAMINA_BONE_HU). In a demineralized sacrum that is the cortex and
 *    the foramina's cortical lining only; the marrow is about as dense as soft tissue.
 * 2. Enclosed: voxels inside the closing of the bright bone by closeMm (FORAMINA_CLOSE_MM) and not bright
 *    themselves: the foramina (their lining closes around them), the caudal canal, and marrow in narrow
 *    places; not the wide marrow of the alae and body, which the closing does not reach.
 * 3. Channels: enclosed voxels under lowHu (FORAMINA_LOW_HU; fat or water, not marrow), each voxel's own
 *    HU (smoothing blurs a 2-4 mm channel into its lining), outside a midlineMm band about the midline
 *    (FORAMINA_MIDLINE_MM: the canal, which joins the foramina into one) and within FORAMEN_LATERAL_MM of
 *    it. The midline is the bright bone's centroid (x).
 * 4. Foramina: the channels' 26-connected components, one-voxel gaps bridged (components of the channels
 *    grown by one voxel within the enclosed voxels), of at least minMl and FORAMINA_MIN_RADIUS_MM mean
 *    radius (thinner are clefts). Side: the sign of x (LPS: + = patient left) of the centroid against the
 *    midline. A left and a right piece whose centroids are mirror images about the midline within
 *    FORAMINA_PAIR_MM are a pair (nearest first); unpaired pieces are left out; the four largest pairs
 *    (by the smaller piece), named by order from cranial (+z), S1 first.
 *
 * Limits (said in `method` and `warnings`): it needs marrow denser than the foramina's contents (fatty
 * osteoporotic marrow below lowHu is taken for channel) and voxels small against the channels (at 1.5 mm
 * the lining's partial volume hides most foramen voxels and pieces merge); it finds the anterior channels'
 * cores, not whole foramina (Dice 0.24-0.61 at 1 mm on the phantom; S4 is not found there); fewer than
 * four pairs are named from S1 down, so a missed level shifts the names below it; the canal and the bone surface are not
 * found (the labels count everything else as bone, so no exit or canal leak is checked); metal in a
 * foramen (an instrument placed through it) fills the channel and hides it: find them in the planning
 * CT, not in the verification scan, where there is one.
 */
import { CancelledError, GeometryError } from '../errors.js';
import type { Point3 } from '../math/vec3.js';
import { components26 } from '../volume/components.js';
import { distanceTransform } from '../volume/edt.js';
import { crop } from '../volume/resample.js';
import { createVolume, type Volume } from '../volume/volume.js';
import type { VerifyAnatomy } from './along.js';

/** Bright bone (HU): cortex and the foramina's lining, also in demineralized bone. */
export const FORAMINA_BONE_HU = 300;
/** Channel contents (HU, smoothed): fat and water lie under it, marrow above. */
export const FORAMINA_LOW_HU = 10;
/** Closing radius (mm) that seals fracture clefts and the foramina's openings. */
export const FORAMINA_CLOSE_MM = 6;
/** Least volume (ml) of a foramen. */
export const FORAMINA_MIN_ML = 0.03;
/** Farthest (mm) a foramen's centroid may lie from the midline (x). */
export const FORAMEN_LATERAL_MM = 30;
/** Half-width (mm) of the midline band cut out of the channels: the canal, which joins the foramina. */
export const FORAMINA_MIDLINE_MM = 8;

/** Least mean radius (mm) of a piece (the radius of its mean cross-section): thinner ones are clefts. */
export const FORAMINA_MIN_RADIUS_MM = 1.2;
/** A left and a right piece are a pair when one's centroid lies this close (mm) to the other's mirror image. */
export const FORAMINA_PAIR_MM = 8;
/** Coarsest voxel (mm) findForamina works on (1 mm holds on the phantom, 1.5 mm does not). */
export const FORAMINA_FINE_MM = 1.2;

/** Label ids of the volume findForamina returns. */
export const FOUND_LABELS = { bone: 1, foramen0: 2 } as const;
const NAMES = ['S1L', 'S1R', 'S2L', 'S2R', 'S3L', 'S3R', 'S4L', 'S4R'] as const;

export interface FindForaminaOptions {
  boneHu?: number;
  lowHu?: number;
  closeMm?: number;
  minMl?: number;
  midlineMm?: number;
  /** Look for them even in voxels coarser than FORAMINA_FINE_MM (unreliable there). */
  allowCoarse?: boolean;
  signal?: AbortSignal;
}

export interface FoundForamen {
  name: string;
  label: number;
  voxelCount: number;
  volumeMl: number;
  /** Centroid (LPS mm). */
  centroid: Point3;
  /** Principal axis (unit) and the extent along it (mm). */
  axis: Point3;
  lengthMm: number;
  /** Radius of the circle of its mean cross-section area (mm). */
  radiusMm: number;
}

/** How a report's foramina were had: from labels, found in the image (and how), or not at all. */
export interface ForaminaSource {
  source: 'labels' | 'image' | 'none';
  /** With 'image': findForamina's method, what it found and its warnings. */
  method?: string;
  found?: { name: string; centroid: Point3; axis: Point3; radiusMm: number; lengthMm: number; volumeMl: number }[];
  warnings?: string[];
}

/** A report's `foramina` for foramina found by findForamina (numbers rounded). */
export function foraminaSourceOf(f: FoundForamina): ForaminaSource {
  const r = (x: number, d = 100) => Math.round(x * d) / d;
  return {
    source: 'image',
    method: f.method,
    found: f.foramina.map((x) => ({
      name: x.name,
      centroid: [r(x.centroid[0]), r(x.centroid[1]), r(x.centroid[2])],
      axis: [r(x.axis[0], 1000), r(x.axis[1], 1000), r(x.axis[2], 1000)],
      radiusMm: r(x.radiusMm),
      lengthMm: r(x.lengthMm),
      volumeMl: r(x.volumeMl, 1000),
    })),
    warnings: [...f.warnings],
  };
}

export interface FoundForamina {
  source: 'image';
  method: string;
  /** On the input grid: 1 everywhere (counted as bone), 2.. the foramina (see `foramina[].label`). */
  labels: Volume<Uint8Array>;
  anatomy: VerifyAnatomy;
  foramina: FoundForamen[];
  /** The bright bone's centroid (LPS mm): the midline the sides are told by. */
  midline: Point3;
  warnings: string[];
}

/** Components (26-connected) of mask: label per voxel (0 = none) and their sizes (index = label - 1). */
function components(mask: Uint8Array, dims: readonly [number, number, number]): { comp: Int32Array; sizes: number[] } {
  const cc = components26({ mask }, dims);
  return { comp: cc.labels, sizes: Array.from(cc.sizes) };
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new CancelledError('finding the foramina was cancelled');
}

/**
 * The sacral foramina of `volume` (HU) found in the image; see the module comment. The search runs on a
 * crop: the bright bone's box, and across within FORAMEN_LATERAL_MM + closeMm of the midline (where the
 * foramina are looked for), each grown by twice closeMm and two voxels, so that the closing is the same
 * there as on the whole grid; the labels come back on the whole grid (1 outside the crop).
 */
export function findForamina(volume: Volume, options: FindForaminaOptions = {}): FoundForamina {
  const boneHu = options.boneHu ?? FORAMINA_BONE_HU;
  const closeMm = options.closeMm ?? FORAMINA_CLOSE_MM;
  const { dims, spacing, data } = volume;
  const [nx, ny, nz] = dims;
  const m = volume.indexToPatient;
  const lo = [nx, ny, nz],
    hi = [-1, -1, -1];
  const bc = [0, 0, 0];
  let bn = 0;
  for (let k = 0, v = 0; k < nz; k++)
    for (let j = 0; j < ny; j++)
      for (let i = 0; i < nx; i++, v++) {
        if (!(data[v] >= boneHu)) continue;
        bn++;
        bc[0] += m[0] * i + m[1] * j + m[2] * k + m[3];
        bc[1] += m[4] * i + m[5] * j + m[6] * k + m[7];
        bc[2] += m[8] * i + m[9] * j + m[10] * k + m[11];
        if (i < lo[0]) lo[0] = i;
        if (j < lo[1]) lo[1] = j;
        if (k < lo[2]) lo[2] = k;
        if (i > hi[0]) hi[0] = i;
        if (j > hi[1]) hi[1] = j;
        if (k > hi[2]) hi[2] = k;
      }
  // Only a grid whose i axis runs along x (and j, k across it) is cropped across.
  const alongX = Math.abs(m[4]) < 1e-6 && Math.abs(m[8]) < 1e-6 && Math.abs(m[1]) < 1e-6 && Math.abs(m[2]) < 1e-6;
  if (bn === 0 || Math.max(spacing[0], spacing[1], spacing[2]) > FORAMINA_FINE_MM)
    return findForaminaOn(volume, options, null);
  const mid: Point3 = [bc[0] / bn, bc[1] / bn, bc[2] / bn];
  const grow = [0, 1, 2].map((a) => Math.ceil((2 * closeMm) / spacing[a]) + 2);
  const min = [0, 1, 2].map((a) => Math.max(0, lo[a] - grow[a]));
  const max = [0, 1, 2].map((a) => Math.min(dims[a] - 1, hi[a] + grow[a]));
  if (alongX) {
    const reach = FORAMEN_LATERAL_MM + closeMm + 2 * closeMm + 2 * spacing[0];
    const a = (mid[0] - reach - m[3]) / m[0],
      b = (mid[0] + reach - m[3]) / m[0];
    min[0] = Math.max(min[0], Math.floor(Math.min(a, b)));
    max[0] = Math.min(max[0], Math.ceil(Math.max(a, b)));
  }
  if (min.every((x) => x === 0) && max.every((x, a) => x === dims[a] - 1)) return findForaminaOn(volume, options, mid);
  const part = findForaminaOn(crop(volume, min, max), options, mid);
  const labels = new Uint8Array(data.length).fill(FOUND_LABELS.bone);
  const pd = part.labels.dims,
    pl = part.labels.data;
  for (let k = 0, q = 0; k < pd[2]; k++)
    for (let j = 0; j < pd[1]; j++, q += pd[0])
      labels.set(pl.subarray(q, q + pd[0]), min[0] + nx * (min[1] + j + ny * (min[2] + k)));
  return {
    ...part,
    labels: createVolume({ data: labels, dims, indexToPatient: volume.indexToPatient, meta: part.labels.meta }),
  };
}

function findForaminaOn(volume: Volume, options: FindForaminaOptions, knownMid: Point3 | null): FoundForamina {
  const boneHu = options.boneHu ?? FORAMINA_BONE_HU;
  const lowHu = options.lowHu ?? FORAMINA_LOW_HU;
  const closeMm = options.closeMm ?? FORAMINA_CLOSE_MM;
  const minMl = options.minMl ?? FORAMINA_MIN_ML;
  const { dims, spacing, data } = volume;
  const source = volume.meta.source ?? 'volume';
  const n = data.length;
  const sxy = dims[0] * dims[1];
  const voxelMl = (spacing[0] * spacing[1] * spacing[2]) / 1000;
  const coarse = Math.max(spacing[0], spacing[1], spacing[2]);
  if (coarse > FORAMINA_FINE_MM && !options.allowCoarse) {
    throw new GeometryError(
      `voxels of ${coarse.toFixed(2)} mm, coarser than ${FORAMINA_FINE_MM} mm: the foramina's lining hides most ` +
        'of their voxels and their pieces merge, so they are not looked for in the image (give labels)',
      source,
    );
  }

  // 1-2: bright bone and its closing.
  const notBone = new Uint8Array(n);
  for (let v = 0; v < n; v++) notBone[v] = data[v] >= boneHu ? 0 : 1;
  const toBone = distanceTransform(notBone, dims, spacing, { source });
  throwIfAborted(options.signal);
  const dilated = new Uint8Array(n);
  for (let v = 0; v < n; v++) dilated[v] = toBone[v] <= closeMm ? 1 : 0;
  const toOutside = distanceTransform(dilated, dims, spacing, { source });
  throwIfAborted(options.signal);
  const open = new Uint8Array(n);
  for (let v = 0; v < n; v++) open[v] = toOutside[v] > closeMm || !notBone[v] ? 0 : 1;
  // 3: channels.
  const channel = new Uint8Array(n);
  for (let v = 0; v < n; v++) channel[v] = !open[v] && notBone[v] && data[v] < lowHu ? 1 : 0;
  throwIfAborted(options.signal);
  const m = volume.indexToPatient;
  const pt = new Float64Array(3);
  const toLps = (v: number): Float64Array => {
    const k = Math.floor(v / sxy),
      j = Math.floor((v - k * sxy) / dims[0]),
      i = v - k * sxy - j * dims[0];
    pt[0] = m[0] * i + m[1] * j + m[2] * k + m[3];
    pt[1] = m[4] * i + m[5] * j + m[6] * k + m[7];
    pt[2] = m[8] * i + m[9] * j + m[10] * k + m[11];
    return pt;
  };
  const labels = new Uint8Array(n);
  // Everything is 'bone' but the foramina: the bone surface is not found here (no exits checked).
  labels.fill(FOUND_LABELS.bone);
  // The midline: the bright bone's centroid (the pelvis is near symmetric).
  const bc = [0, 0, 0];
  let bn = 0;
  for (let v = 0; v < n; v++) {
    if (notBone[v]) continue;
    const p = toLps(v);
    bc[0] += p[0];
    bc[1] += p[1];
    bc[2] += p[2];
    bn++;
  }
  if (bn === 0) throw new GeometryError(`no bone (>= ${boneHu} HU) in the volume: foramina not looked for`, source);
  const mid: Point3 = knownMid ?? [bc[0] / bn, bc[1] / bn, bc[2] / bn];
  // 4: foramina: the channels off the midline.
  const rest = new Uint8Array(n);
  const band = options.midlineMm ?? FORAMINA_MIDLINE_MM;
  const inBand = (v: number) => {
    const dx = Math.abs(toLps(v)[0] - mid[0]);
    return dx >= band && dx <= FORAMEN_LATERAL_MM + FORAMINA_CLOSE_MM;
  };
  for (let v = 0; v < n; v++) rest[v] = channel[v] && inBand(v) ? 1 : 0;
  // Bridge the noise's gaps: components of the channels grown by one voxel within the closed bone.
  const grown = new Uint8Array(n);
  const [gx, gy, gz] = dims;
  for (let v = 0; v < n; v++) {
    if (!rest[v]) continue;
    const k = Math.floor(v / sxy),
      j = Math.floor((v - k * sxy) / gx),
      i = v - k * sxy - j * gx;
    for (let dk = -1; dk <= 1; dk++)
      for (let dj = -1; dj <= 1; dj++)
        for (let di = -1; di <= 1; di++) {
          const ii = i + di,
            jj = j + dj,
            kk = k + dk;
          if (ii < 0 || jj < 0 || kk < 0 || ii >= gx || jj >= gy || kk >= gz) continue;
          const w = kk * sxy + jj * gx + ii;
          if (notBone[w] && !open[w] && inBand(w)) grown[w] = 1;
        }
  }
  const rc = components(grown, dims);
  for (let v = 0; v < n; v++) if (!rest[v]) rc.comp[v] = 0;
  const minVoxels = Math.max(1, Math.ceil(minMl / voxelMl));
  const stats = rc.sizes.map(() => ({ n: 0, s: [0, 0, 0], ss: [0, 0, 0, 0, 0, 0] }));
  for (let v = 0; v < n; v++) {
    const c = rc.comp[v];
    if (!c || rc.sizes[c - 1] < minVoxels) continue;
    const st = stats[c - 1];
    const p = toLps(v);
    st.n++;
    for (let a = 0; a < 3; a++) st.s[a] += p[a];
    st.ss[0] += p[0] * p[0];
    st.ss[1] += p[0] * p[1];
    st.ss[2] += p[0] * p[2];
    st.ss[3] += p[1] * p[1];
    st.ss[4] += p[1] * p[2];
    st.ss[5] += p[2] * p[2];
  }
  interface Cand {
    id: number;
    n: number;
    c: Point3;
    axis: Point3;
    lengthMm: number;
  }
  const cands: Cand[] = [];
  stats.forEach((st, idx) => {
    if (st.n < minVoxels) return;
    const c: Point3 = [st.s[0] / st.n, st.s[1] / st.n, st.s[2] / st.n];
    if (Math.abs(c[0] - mid[0]) > FORAMEN_LATERAL_MM) return;
    const cov = [
      st.ss[0] / st.n - c[0] * c[0],
      st.ss[1] / st.n - c[0] * c[1],
      st.ss[2] / st.n - c[0] * c[2],
      st.ss[3] / st.n - c[1] * c[1],
      st.ss[4] / st.n - c[1] * c[2],
      st.ss[5] / st.n - c[2] * c[2],
    ];
    // Principal axis by power iteration on the 3x3 covariance.
    let ax = [1, 0.3, 0.2];
    for (let it = 0; it < 50; it++) {
      const y = [
        cov[0] * ax[0] + cov[1] * ax[1] + cov[2] * ax[2],
        cov[1] * ax[0] + cov[3] * ax[1] + cov[4] * ax[2],
        cov[2] * ax[0] + cov[4] * ax[1] + cov[5] * ax[2],
      ];
      const l = Math.hypot(y[0], y[1], y[2]) || 1;
      ax = [y[0] / l, y[1] / l, y[2] / l];
    }
    const varAx =
      ax[0] * (cov[0] * ax[0] + cov[1] * ax[1] + cov[2] * ax[2]) +
      ax[1] * (cov[1] * ax[0] + cov[3] * ax[1] + cov[4] * ax[2]) +
      ax[2] * (cov[2] * ax[0] + cov[4] * ax[1] + cov[5] * ax[2]);
    const lengthMm = Math.sqrt(12 * Math.max(0, varAx));
    // A thread thinner than a channel (a cleft, a seam): not a foramen.
    if (lengthMm > 0 && Math.sqrt((st.n * voxelMl * 1000) / (Math.PI * lengthMm)) < FORAMINA_MIN_RADIUS_MM) return;
    cands.push({ id: idx + 1, n: st.n, c, axis: [ax[0], ax[1], ax[2]], lengthMm });
  });
  const warnings: string[] = [];
  const found: FoundForamen[] = [];
  const labelOfComp = new Map<number, number>();
  // Pairs: a left and a right piece mirrored about the midline (FORAMINA_PAIR_MM), nearest first;
  // a piece without a partner is left out (noise, or a foramen whose partner was missed).
  const left = cands.filter((c) => c.c[0] > mid[0]);
  const right = cands.filter((c) => c.c[0] < mid[0]);
  const options2: { l: Cand; r: Cand; cost: number }[] = [];
  for (const l of left)
    for (const r of right) {
      const cost = Math.hypot(l.c[0] - (2 * mid[0] - r.c[0]), l.c[1] - r.c[1], l.c[2] - r.c[2]);
      if (cost <= FORAMINA_PAIR_MM) options2.push({ l, r, cost });
    }
  options2.sort((x, y) => x.cost - y.cost);
  const used = new Set<number>();
  const pairs: { l: Cand; r: Cand }[] = [];
  for (const o of options2) {
    if (used.has(o.l.id) || used.has(o.r.id)) continue;
    used.add(o.l.id);
    used.add(o.r.id);
    pairs.push(o);
  }
  // The four largest pairs (by the smaller side), then cranial first.
  pairs.sort((x, y) => Math.min(y.l.n, y.r.n) - Math.min(x.l.n, x.r.n));
  pairs.splice(4);
  pairs.sort((x, y) => y.l.c[2] + y.r.c[2] - (x.l.c[2] + x.r.c[2]));
  if (pairs.length < 4) warnings.push(`${pairs.length} pairs of foramina found (4 expected): named from S1 down`);
  const unpaired = cands.length - 2 * pairs.length;
  if (unpaired > 0) warnings.push(`${unpaired} channel piece(s) without a mirrored partner left out`);
  pairs.forEach((pair, level) => {
    for (const [side, c] of [pair.l, pair.r].entries()) {
      const f = 2 * level + side;
      const label = FOUND_LABELS.foramen0 + f;
      labelOfComp.set(c.id, label);
      found.push({
        name: NAMES[f],
        label,
        voxelCount: c.n,
        volumeMl: c.n * voxelMl,
        centroid: c.c,
        axis: c.axis,
        lengthMm: c.lengthMm,
        radiusMm: c.lengthMm > 0 ? Math.sqrt((c.n * voxelMl * 1000) / (Math.PI * c.lengthMm)) : 0,
      });
    }
  });
  if (found.length === 0) {
    throw new GeometryError(
      `no sacral foramina found in the image (no channel under ${lowHu} HU enclosed by bone >= ${boneHu} HU ` +
        `off the midline): give labels`,
      source,
    );
  }
  found.sort((a, b) => a.label - b.label);
  for (let v = 0; v < n; v++) {
    const l = rc.comp[v] ? labelOfComp.get(rc.comp[v]) : undefined;
    if (l !== undefined) labels[v] = l;
  }
  const method =
    `image (no labels): voxels under ${lowHu} HU enclosed by bone >= ${boneHu} HU (inside its ${closeMm} mm ` +
    `closing), outside a ${band} mm midline band (the canal), within ${FORAMEN_LATERAL_MM} mm of the midline, ` +
    `26-connected with one-voxel gaps bridged, pieces of at least ${minMl} ml and ${FORAMINA_MIN_RADIUS_MM} mm mean ` +
    `radius; left and right pieces paired as mirror images about the bone's centroid (within ${FORAMINA_PAIR_MM} ` +
    `mm), the 4 largest pairs, levels by order from cranial; canal and bone surface not found (not checked)`;
  const out = createVolume({
    data: labels,
    dims,
    indexToPatient: volume.indexToPatient,
    meta: { ...volume.meta, source: `${source} (foramina found in the image)` },
  });
  const anatomy: VerifyAnatomy = {
    bone: [FOUND_LABELS.bone],
    critical: [...found.map((f) => ({ label: f.label, structure: 'foramen', name: f.name }))],
    ignore: [],
  };
  return {
    source: 'image',
    method,
    labels: out,
    anatomy,
    foramina: found,
    midline: mid,
    warnings,
  };
}
