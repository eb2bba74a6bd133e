/**
 * Planning from intensities alone on a real 1 mm CT without labels (../shared/data/vhf-pelvis-ct/, the
 * Visible Human female pelvis: an elderly, demineralized sacrum whose alar marrow reads 20-70 HU, like
 * muscle). The seed points below are what a user clicks; they were picked by looking at the slices:
 * - midline x = 246 mm (LPS): centre of the S1 body and of the spinous processes, halfway between the
 *   sacroiliac joints (x = 189 and 309 mm at z = 981 mm);
 * - S1 body centre (246, 284, 982);
 * - alar points in each ala, caudal to the S1 endplate and lateral to the foramina.
 * - S2 body centre (246, 316, 961), read off the sagittal slice x = 246 (the body spans y 310-323 there).
 * The map for S1 and the alae (preset "demineralized") fills what the cortex encloses in sagittal and
 * coronal slices (slicePlaneNormals ['x', 'y']): with the 3D fill alone this sacrum's alae leak into the
 * foramina and no S1 corridor is found. S2 needs more (preset "demineralized-faint-cortex"):
 * - a seal of cortical gaps up to 6 mm wide (sealMm 3, default 2): the S2 lateral masses' cortex is faint
 *   and broken, and with the default the map leaves their marrow out, so no S2 axis reaches the ilia;
 * - the wider seal also closes the anterior openings of the S1 foramina, whose nerve roots and fat
 *   smooth to -10..+20 HU; a soft-tissue threshold of -10 HU (default -20) reopens them.
 * The same S2 axis is found for sealMm 3 with softTissueHu -10 to 0 and for sealMm 3.5 with -10 to -5;
 * outside that range the optimizer settles on an axis through the foramina, which the checks below reject.
 * The alar paths are not planned on that map: the wider seal closes parts of the foramina next to them.
 * Every check below samples the CT itself (nearest voxel, by hand-written geometry), never the corridor
 * map (the map is read only to show which voxels it calls bone).
 */
import { existsSync, readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { defined } from '../test-helpers/defined.js';
import { sharedData } from '../test-helpers/data.js';
import { readNifti } from '../io/nifti.js';
import type { Volume } from '../volume/volume.js';
import type { Point3 } from '../math/vec3.js';
import { corridorMapFromIntensity, BONE, type CorridorMap } from './corridor-map.js';
import type { PathAnalysis } from './analyze.js';
import { planAlar, planTransSacral, type AutoPathResult } from './auto.js';
import { boneMaskPresetOptions } from './bone-mask-presets.js';

const file = sharedData('vhf-pelvis-ct', 'ct.nii.gz');

const MIDLINE_X = 246;
const S1_SEED: Point3 = [246, 284, 982];
const ALAR_LEFT_SEED: Point3 = [300, 292, 972];
const ALAR_RIGHT_SEED: Point3 = [200, 300, 966];
const S2_SEED: Point3 = [246, 316, 961];
/** The CLI's and the workstation's bone mask presets: these tests are what stands behind them. */
const MAP_OPTIONS = boneMaskPresetOptions('demineralized');
const S2_MAP_OPTIONS = boneMaskPresetOptions('demineralized-faint-cortex');
/** Sacroiliac joints at the S1 level, read off the axial slice z = 981 mm: the sacrum's half-width. */
const SI_JOINT_X = { right: 189, left: 309 };
/**
 * Fat-filled sacral foramina and the sacral canal, located on the slices (axial z = 962 mm: two round
 * fat-density holes; z = 975-985 mm: the canal behind the S1 body, -45 to -60 HU).
 */
const FORAMINA: Point3[] = [
  [226, 319, 962],
  [269, 319, 962],
];
const CANAL: Point3[] = [
  [246, 312, 981],
  [246, 316, 975],
];
/** Reference soft tissues, same slice: subcutaneous fat (right flank) and the right gluteal muscle. */
const FAT: Point3 = [66, 296, 981];
const MUSCLE: Point3 = [141, 321, 981];
/** Cancellous bone of the right ala, 30 mm right of the midline at the S1 level (about 30 HU). */
const ALA_MARROW: Point3 = [216, 283, 982];

/** The CT's HU at the voxel nearest to p (LPS mm), from the volume's own patient-to-index matrix. */
function hu(ct: Volume, p: ArrayLike<number>): number {
  const m = ct.patientToIndex;
  const ijk = [0, 1, 2].map((r) =>
    Math.round(m[r * 4] * p[0] + m[r * 4 + 1] * p[1] + m[r * 4 + 2] * p[2] + m[r * 4 + 3]),
  );
  const [nx, ny, nz] = ct.dims;
  if (ijk.some((v, a) => v < 0 || v >= [nx, ny, nz][a])) return -1024;
  return ct.data[ijk[0] + nx * (ijk[1] + ny * ijk[2])];
}

/** Mean HU of a cube of (2 half + 1)^3 voxels around p: 5 x 5 x 5 by default. */
function roiMean(ct: Volume, p: ArrayLike<number>, half = 2): number {
  let s = 0;
  for (let dz = -half; dz <= half; dz++)
    for (let dy = -half; dy <= half; dy++)
      for (let dx = -half; dx <= half; dx++) s += hu(ct, [p[0] + dx, p[1] + dy, p[2] + dz]);
  return s / (2 * half + 1) ** 3;
}

/** Two unit vectors normal to the unit vector u, and to each other. */
function normalPlane(u: number[]): [number[], number[]] {
  const ref = Math.abs(u[2]) < 0.9 ? [0, 0, 1] : [1, 0, 0];
  let e1 = [u[1] * ref[2] - u[2] * ref[1], u[2] * ref[0] - u[0] * ref[2], u[0] * ref[1] - u[1] * ref[0]];
  const n1 = Math.hypot(e1[0], e1[1], e1[2]);
  e1 = e1.map((v) => v / n1);
  return [e1, [u[1] * e1[2] - u[2] * e1[1], u[2] * e1[0] - u[0] * e1[2], u[0] * e1[1] - u[1] * e1[0]]];
}

/** The cortex entry and exit of an analysis, sorted by x. */
function cortexEnds(a: PathAnalysis): Point3[] {
  return [defined(a.cortexEntry, 'cortex entry'), defined(a.cortexExit, 'cortex exit')].sort((p, q) => p[0] - q[0]);
}

/** Where the segment between two ends (sorted by x) crosses the midline plane x = MIDLINE_X. */
function midlineCrossing(ends: Point3[]): Point3 {
  const t = (MIDLINE_X - ends[0][0]) / (ends[1][0] - ends[0][0]);
  return [0, 1, 2].map((i) => ends[0][i] + t * (ends[1][i] - ends[0][i])) as Point3;
}

/**
 * HU in a thin cylinder around the segment a-b: every 0.5 mm along the axis, the axis point and 8 points
 * on each of two rings (1.5 and 3 mm): 17 samples per station. Returns the per-station means and all samples.
 */
function cylinder(ct: Volume, a: Point3, b: Point3) {
  const L = Math.hypot(b[0] - a[0], b[1] - a[1], b[2] - a[2]);
  const u = [(b[0] - a[0]) / L, (b[1] - a[1]) / L, (b[2] - a[2]) / L];
  const [e1, e2] = normalPlane(u);
  const stations: { t: number; x: number; p: number[]; mean: number }[] = [];
  const all: number[] = [];
  for (let t = 0; t <= L; t += 0.5) {
    const c = [a[0] + t * u[0], a[1] + t * u[1], a[2] + t * u[2]];
    let s = hu(ct, c);
    all.push(s);
    for (const r of [1.5, 3]) {
      for (let q = 0; q < 8; q++) {
        const th = (q * Math.PI) / 4;
        const v = hu(
          ct,
          [0, 1, 2].map((i) => c[i] + r * (Math.cos(th) * e1[i] + Math.sin(th) * e2[i])),
        );
        s += v;
        all.push(v);
      }
    }
    stations.push({ t, x: c[0], p: c, mean: s / 17 });
  }
  return { L, u, stations, all };
}

const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;

/** Means over sliding windows of `windowMm` (stations are 0.5 mm apart). */
function windowMeans(stations: { mean: number }[], windowMm: number): number[] {
  const w = Math.round(windowMm / 0.5);
  const out: number[] = [];
  for (let i = 0; i + w <= stations.length; i++) {
    let s = 0;
    for (let j = i; j < i + w; j++) s += stations[j].mean;
    out.push(s / w);
  }
  return out;
}

/**
 * Is p enclosed by cortex in the plane normal to the path direction u: walking from p along +-e1 and +-e2
 * (two unit vectors normal to u), each of the four rays, 3 voxels wide (so that it cannot slip between the
 * voxels of a thin, faint cortex), meets a voxel of at least 200 HU within maxMm? Muscle or fat outside
 * the bone fails (one side at least is open); marrow inside a cortex passes.
 */
function enclosedByCortex(ct: Volume, p: ArrayLike<number>, u: number[], maxMm: number): boolean {
  const [e1, e2] = normalPlane(u);
  for (const d of [e1, e2, e1.map((v) => -v), e2.map((v) => -v)]) {
    let hit = false;
    for (let t = 0; t <= maxMm && !hit; t += 0.5) {
      for (let o = 0; o < 27 && !hit; o++) {
        hit =
          hu(ct, [
            p[0] + t * d[0] + (o % 3) - 1,
            p[1] + t * d[1] + (Math.floor(o / 3) % 3) - 1,
            p[2] + t * d[2] + Math.floor(o / 9) - 1,
          ]) >= 200;
      }
    }
    if (!hit) return false;
  }
  return true;
}

function codeAt(map: CorridorMap, p: Point3): number {
  const v = map.structures;
  const m = v.patientToIndex;
  const ijk = [0, 1, 2].map((r) =>
    Math.round(m[r * 4] * p[0] + m[r * 4 + 1] * p[1] + m[r * 4 + 2] * p[2] + m[r * 4 + 3]),
  );
  return v.data[ijk[0] + v.dims[0] * (ijk[1] + v.dims[1] * ijk[2])];
}

describe.skipIf(!existsSync(file))('real CT at 1 mm, intensities only (Visible Human female pelvis)', () => {
  let ct: Volume;
  let map: CorridorMap;
  let muscleHu: number;
  let fatHu: number;
  const screw = { kind: 'screw' as const, diameterMm: 7.3 };
  const trocar = { kind: 'trocar' as const, diameterMm: 3.05 };
  let s1: AutoPathResult;
  let s2: AutoPathResult;

  beforeAll(() => {
    ct = readNifti(new Uint8Array(readFileSync(file)), file).volume;
    map = corridorMapFromIntensity(ct, { seeds: [S1_SEED, ALAR_LEFT_SEED, ALAR_RIGHT_SEED], ...MAP_OPTIONS });
    muscleHu = roiMean(ct, MUSCLE);
    fatHu = roiMean(ct, FAT);
    s1 = planTransSacral(map, { id: 's1', tool: screw, seed: S1_SEED, midlineX: MIDLINE_X });
    const mapS2 = corridorMapFromIntensity(ct, { seeds: [S2_SEED], ...S2_MAP_OPTIONS });
    s2 = planTransSacral(mapS2, { id: 's2', tool: screw, seed: S2_SEED, midlineX: MIDLINE_X });
  }, 60_000);

  /**
   * Each end of a trans-sacral axis (sorted by x) at the lateral iliac cortex: cortex (> 300 HU) within
   * the last 4 mm inside, soft tissue (mean below 100 HU) 2-6 mm beyond.
   */
  function expectIliacCortexAtEnds(ends: Point3[]) {
    const first = cylinder(ct, ends[0], [ends[0][0] + 4, ends[0][1], ends[0][2]]).all;
    const last = cylinder(ct, [ends[1][0] - 4, ends[1][1], ends[1][2]], ends[1]).all;
    expect(Math.max(...first)).toBeGreaterThan(300);
    expect(Math.max(...last)).toBeGreaterThan(300);
    const beyondR = cylinder(
      ct,
      [ends[0][0] - 6, ends[0][1], ends[0][2]],
      [ends[0][0] - 2, ends[0][1], ends[0][2]],
    ).all;
    const beyondL = cylinder(
      ct,
      [ends[1][0] + 2, ends[1][1], ends[1][2]],
      [ends[1][0] + 6, ends[1][1], ends[1][2]],
    ).all;
    expect(mean(beyondR)).toBeLessThan(100);
    expect(mean(beyondL)).toBeLessThan(100);
  }

  /**
   * Bone along the whole length of a trans-sacral axis (ends sorted by x); returns its cylinder. This
   * marrow is as dense as muscle (about 30 HU in the right ala), so density alone cannot tell bone from
   * muscle here; it does tell bone from the fat of the canal and foramina (-45 to -90 HU). So: (1) every
   * 10 mm stretch of a 3 mm radius cylinder averages no less than muscle - 10 HU (a 10 mm stretch through
   * fat would drop far below), (2) the whole corridor averages above 120 HU (cortices and the bodies'
   * cancellous bone), and (3) every point of the sacrum, between the sacroiliac joints, where the alar
   * marrow reads like muscle, is enclosed by cortex (>= 200 HU within 40 mm in the four directions normal
   * to the path: the canal and the lamina lie up to 35 mm behind the S1 body). Not in the ilia: inside a
   * plate the in-plane rays run between its cortices; their cancellous bone reads 150-250 HU over every
   * 10 mm anyway.
   */
  function expectBoneAlongLength(ends: Point3[]) {
    const cyl = cylinder(ct, ends[0], ends[1]);
    const w = windowMeans(cyl.stations, 10);
    expect(Math.min(...w)).toBeGreaterThan(muscleHu - 10);
    expect(mean(cyl.stations.map((st) => st.mean))).toBeGreaterThan(120);
    const inner = cyl.stations.filter((st) => st.x > SI_JOINT_X.right && st.x < SI_JOINT_X.left);
    expect(inner.length).toBeGreaterThan(200);
    expect(inner.filter((st) => !enclosedByCortex(ct, st.p, cyl.u, 40))).toEqual([]);
    return cyl;
  }

  it('the reference tissues read as expected (so the thresholds below mean what they say)', () => {
    expect(fatHu).toBeLessThan(-60);
    expect(muscleHu).toBeGreaterThan(-20);
    expect(muscleHu).toBeLessThan(60);
    // The alar marrow is as dense as muscle: no HU threshold separates them.
    expect(Math.abs(roiMean(ct, ALA_MARROW) - muscleHu)).toBeLessThan(40);
    // The enclosure test below tells them apart: the marrow is enclosed, the gluteal muscle, the
    // subcutaneous fat and the pelvic cavity in front of the sacral promontory are not.
    const lateral = [1, 0, 0];
    expect(enclosedByCortex(ct, ALA_MARROW, lateral, 40)).toBe(true);
    for (const p of [MUSCLE, FAT, [246, 240, 982]]) expect(enclosedByCortex(ct, p, lateral, 40)).toBe(false);
  });

  it('the mask counts the cancellous interior as bone and keeps canal and foramina out', () => {
    // A plain threshold at the cortex level (200 HU) calls the alar marrow soft tissue: fewer than 1 in 10
    // voxels of a 5 mm cube reach it. The filled mask calls the whole cube bone.
    let plain = 0,
      filled = 0;
    for (let dz = -2; dz <= 2; dz++)
      for (let dy = -2; dy <= 2; dy++)
        for (let dx = -2; dx <= 2; dx++) {
          const p: Point3 = [ALA_MARROW[0] + dx, ALA_MARROW[1] + dy, ALA_MARROW[2] + dz];
          if (hu(ct, p) >= 200) plain++;
          if (codeAt(map, p) === BONE) filled++;
        }
    expect(plain).toBeLessThan(13);
    expect(filled).toBe(125);
    for (const p of [...FORAMINA, ...CANAL, FAT, MUSCLE]) expect(codeAt(map, p)).not.toBe(BONE);
  });

  it('S1: ilium to ilium through the sacral body, bone density along its whole length', () => {
    const a = s1.analysis;
    const ends = cortexEnds(a);
    // Both ends lateral to the sacroiliac joints (in the ilia), on opposite sides of the midline.
    expect(ends[0][0]).toBeLessThan(SI_JOINT_X.right - 10);
    expect(ends[1][0]).toBeGreaterThan(SI_JOINT_X.left + 10);
    // Through the sacral body: level with the S1 seed where it crosses the midline.
    const mid = midlineCrossing(ends);
    expect(Math.hypot(mid[1] - S1_SEED[1], mid[2] - S1_SEED[2])).toBeLessThan(15);
    expect(roiMean(ct, mid)).toBeGreaterThan(100); // the S1 body's cancellous bone, 130-270 HU
    expectIliacCortexAtEnds(ends);
    const cyl = expectBoneAlongLength(ends);
    // A plain 200 HU threshold would call most of this corridor soft tissue.
    expect(cyl.all.filter((v) => v >= 200).length / cyl.all.length).toBeLessThan(0.5);
    expect(a.boneToBoneMm).toBeGreaterThan(150);
    expect(a.breaches).toEqual([]);
    expect(a.minClearanceMm ?? NaN).toBeGreaterThan(0);
  });

  it('S2: ilium to ilium through the S2 body, bone density along its whole length; no room for a 7.3 mm screw', () => {
    const a = s2.analysis;
    const ends = cortexEnds(a);
    // In the ilia: beyond the sacroiliac joints (the sacrum narrows caudally, so the joints at S2 lie no
    // farther out than those measured at S1), each end at the lateral iliac cortex.
    expect(ends[0][0]).toBeLessThan(SI_JOINT_X.right - 5);
    expect(ends[1][0]).toBeGreaterThan(SI_JOINT_X.left + 5);
    expectIliacCortexAtEnds(ends);
    // At the S2 level: where it crosses the midline, near the S2 body's centre and well caudal to the S1
    // axis (the sacrum is steep here: S2 lies behind and below S1), in bone.
    const mid = midlineCrossing(ends);
    const mid1 = midlineCrossing(cortexEnds(s1.analysis));
    expect(Math.hypot(mid[1] - S2_SEED[1], mid[2] - S2_SEED[2])).toBeLessThan(10);
    expect(mid1[2] - mid[2]).toBeGreaterThan(12);
    expect(Math.hypot(mid[1] - mid1[1], mid[2] - mid1[2])).toBeGreaterThan(20);
    expect(roiMean(ct, mid)).toBeGreaterThan(100);
    // Bone along the whole length, by the S1 test's three measures, and one more, because the S1 and S2
    // foramina lie within a few millimetres of this axis: no fat (a 3 x 3 x 3 voxel mean below -30 HU) on
    // the axis or within 1.5 mm of it, from 3 mm inside each end.
    const cyl = expectBoneAlongLength(ends);
    const [e1, e2] = normalPlane(cyl.u);
    const fat: number[][] = [];
    for (const st of cyl.stations) {
      if (st.t < 3 || st.t > cyl.L - 3) continue;
      for (const r of [0, 1, 1.5]) {
        for (let q = 0; q < (r ? 8 : 1); q++) {
          const th = (q * Math.PI) / 4;
          const p = [0, 1, 2].map((i) => st.p[i] + r * (Math.cos(th) * e1[i] + Math.sin(th) * e2[i]));
          if (roiMean(ct, p, 1) < -30) fat.push(p);
        }
      }
    }
    expect(fat).toEqual([]);
    expect(a.boneToBoneMm).toBeGreaterThan(120);
    // This corridor is a sliver along the S2 body's anterior cortex, between the foramina: the planner
    // says that no 7.3 mm screw fits and how much room the axis has.
    expect(a.fits).toBe(false);
    expect(a.maxDiameterMm).toBeLessThan(screw.diameterMm);
    expect(a.minClearanceMm ?? NaN).toBeLessThan(0);
    expect((a.minClearanceMm ?? NaN) + screw.diameterMm / 2).toBeGreaterThan(0);
    expect(s2.notes.join(' ')).toMatch(/no corridor fits a 7.3 mm screw/);
    // Where a 7.3 mm screw would leave the bone: at the foramina found on the slices (FORAMINA), one on
    // each side of the midline.
    expect(a.breaches.length).toBeGreaterThan(0);
    for (const b of a.breaches) expect(Math.min(...FORAMINA.map((f) => Math.abs(b.at[0] - f[0])))).toBeLessThan(6);
    expect(new Set(a.breaches.map((b) => Math.sign(b.at[0] - MIDLINE_X))).size).toBe(2);
    expect(s2.notes.join(' ')).toMatch(/widest tool that fits this axis is \d+\.\d mm|clearance radius is \d+\.\d mm/);
  });

  for (const side of ['left', 'right'] as const) {
    it(`alar ${side}: in the ala, lateral to the foramina, posterior entry`, () => {
      const seed = side === 'left' ? ALAR_LEFT_SEED : ALAR_RIGHT_SEED;
      const r = planAlar(map, { id: `alar-${side}`, side, tool: trocar, seed });
      const a = r.analysis;
      const from = a.cortexEntry ?? r.path.entry;
      const cyl = cylinder(ct, from, r.path.target);
      expect(cyl.L).toBeGreaterThan(30);
      // Posterior entry, running forward (anterior is -y) and up.
      expect(r.path.target[1]).toBeLessThan(r.path.entry[1] - 20);
      expect(r.path.target[2]).toBeGreaterThan(r.path.entry[2]);
      // On the patient's side, medial to the sacroiliac joint line found at the S1 level.
      const sign = side === 'left' ? 1 : -1;
      const si = side === 'left' ? SI_JOINT_X.left : SI_JOINT_X.right;
      for (const s of cyl.stations) {
        expect(sign * (s.x - MIDLINE_X)).toBeGreaterThan(25);
        expect(sign * (s.x - si)).toBeLessThan(0);
      }
      // The foramina, found independently: from each station, walk medially (towards the midline) until
      // a 3 x 3 x 3 voxel mean reads fat (< -30 HU). No fat within the trocar's radius + 1 mm of the
      // axis on either side, and fat (a foramen) medial to the path for part of its length.
      const fatWithin = (p: number[], dir: number, maxMm: number): number => {
        for (let t = 0; t <= maxMm; t += 0.5) if (roiMean(ct, [p[0] + dir * t, p[1], p[2]], 1) < -30) return t;
        return Infinity;
      };
      let medialFat = 0;
      for (const s of cyl.stations) {
        expect(fatWithin(s.p, -sign, trocar.diameterMm / 2 + 1)).toBe(Infinity);
        expect(fatWithin(s.p, sign, trocar.diameterMm / 2 + 1)).toBe(Infinity);
        if (fatWithin(s.p, -sign, 30) < 30) medialFat++;
      }
      expect(medialFat / cyl.stations.length).toBeGreaterThan(0.2);
      // No 10 mm stretch at fat density.
      const w = windowMeans(cyl.stations, 10);
      expect(Math.min(...w)).toBeGreaterThan(muscleHu - 10);
    });
  }
});
