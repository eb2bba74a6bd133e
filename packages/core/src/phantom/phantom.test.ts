/**
 * Phantom tests. Every check reads the generated volumes independently of the generator's analytic model:
 * corridor radii by ray marching in the label volume, foramina by flood fill, volumes by voxel counts.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { defined } from '../test-helpers/defined.js';
import { UsageError } from '../errors.js';
import type { Volume } from '../volume/volume.js';
import { generatePhantom, type GeneratedPhantom } from './generate.js';
import type { CorridorTruth, PhantomTruth } from './types.js';

type P3 = [number, number, number];

/** Label of the voxel nearest to LPS point p, or -1 outside the grid. */
function labelAt(v: Volume, p: ArrayLike<number>): number {
  const m = v.patientToIndex;
  const i = Math.round(m[0] * p[0] + m[1] * p[1] + m[2] * p[2] + m[3]);
  const j = Math.round(m[4] * p[0] + m[5] * p[1] + m[6] * p[2] + m[7]);
  const k = Math.round(m[8] * p[0] + m[9] * p[1] + m[10] * p[2] + m[11]);
  const [nx, ny, nz] = v.dims;
  if (i < 0 || j < 0 || k < 0 || i >= nx || j >= ny || k >= nz) return -1;
  return v.data[i + nx * (j + ny * k)];
}

/** Ids of the labels a trans-sacral corridor may cross, by name: bone and the SI joints. */
function corridorIds(truth: PhantomTruth): Set<number> {
  const names = [
    'cortex',
    'cancellous',
    'fracture',
    'L5',
    'iliumLeft',
    'iliumRight',
    'femurLeft',
    'femurRight',
    'sacroiliacJointLeft',
    'sacroiliacJointRight',
  ];
  return new Set(names.map((n) => truth.labels[n]));
}

/**
 * Smallest perpendicular distance from the corridor axis (3 mm in from each end) to the centre of a
 * voxel that is not corridor bone, marched along 64 rays per axis point in 0.1 mm steps.
 */
function voxelSafeRadius(labels: Volume, c: CorridorTruth, ids: Set<number>): number {
  const u = [c.exit[0] - c.entry[0], c.exit[1] - c.entry[1], c.exit[2] - c.entry[2]];
  const L = Math.hypot(u[0], u[1], u[2]);
  for (let a = 0; a < 3; a++) u[a] /= L;
  let e1 = [u[1], -u[0], 0];
  const n1 = Math.hypot(e1[0], e1[1], e1[2]);
  e1 = e1.map((x) => x / n1);
  const e2 = [u[1] * e1[2] - u[2] * e1[1], u[2] * e1[0] - u[0] * e1[2], u[0] * e1[1] - u[1] * e1[0]];
  let best = Infinity;
  for (let t = 3; t <= L - 3; t += 0.5) {
    for (let k = 0; k < 64; k++) {
      const th = (2 * Math.PI * k) / 64;
      const d = [
        Math.cos(th) * e1[0] + Math.sin(th) * e2[0],
        Math.cos(th) * e1[1] + Math.sin(th) * e2[1],
        Math.cos(th) * e1[2] + Math.sin(th) * e2[2],
      ];
      for (let r = 0; r < best; r += 0.1) {
        const p = [0, 1, 2].map((a) => c.entry[a] + t * u[a] + r * d[a]);
        if (!ids.has(labelAt(labels, p))) {
          best = r;
          break;
        }
      }
    }
  }
  return best;
}

function countLabel(v: Volume, id: number, where?: (i: number, j: number, k: number) => boolean): number {
  const [nx, ny, nz] = v.dims;
  let n = 0;
  for (let k = 0, o = 0; k < nz; k++)
    for (let j = 0; j < ny; j++)
      for (let i = 0; i < nx; i++, o++) {
        if (v.data[o] === id && (!where || where(i, j, k))) n++;
      }
  return n;
}

function meanWhere(ct: Volume, labels: Volume, id: number): number {
  let s = 0,
    n = 0;
  for (let o = 0; o < labels.data.length; o++)
    if (labels.data[o] === id) {
      s += ct.data[o];
      n++;
    }
  return s / n;
}

describe('phantom: fracture case at 1 mm', () => {
  let g: GeneratedPhantom;
  beforeAll(() => {
    g = generatePhantom({ anatomy: 'fracture', voxelMm: 1.0 });
  });

  it('has an axis-aligned LPS grid (i -> left, j -> posterior, k -> superior) far from the origin', () => {
    const m = g.ct.indexToPatient;
    expect([m[0], m[5], m[10]]).toEqual([1, 1, 1]);
    expect([m[1], m[2], m[4], m[6], m[8], m[9]]).toEqual([0, 0, 0, 0, 0, 0]);
    expect(Math.abs(m[11])).toBeGreaterThan(100); // a table position, not zero
    // Field of view: both ilia (> 300 mm wide), 220-260 mm AP, 180-220 mm cranio-caudal.
    const [nx, ny, nz] = g.ct.dims;
    expect(nx).toBeGreaterThanOrEqual(300);
    expect(ny).toBeGreaterThanOrEqual(220);
    expect(ny).toBeLessThanOrEqual(260);
    expect(nz).toBeGreaterThanOrEqual(180);
    expect(nz).toBeLessThanOrEqual(220);
    expect(g.truth.dims).toEqual([nx, ny, nz]);
  });

  it('puts the patient left at +x: the left ilium label lies at larger x than the right', () => {
    const L = g.truth.labels;
    let sl = 0,
      nl = 0,
      sr = 0,
      nr = 0;
    const [nx, ny] = g.labels.dims;
    for (let o = 0; o < g.labels.data.length; o++) {
      const i = o % nx;
      if (g.labels.data[o] === L.iliumLeft) {
        sl += i;
        nl++;
      }
      if (g.labels.data[o] === L.iliumRight) {
        sr += i;
        nr++;
      }
    }
    expect(nl).toBeGreaterThan(1000);
    const xl = g.ct.indexToPatient[3] + sl / nl,
      xr = g.ct.indexToPatient[3] + sr / nr;
    expect(xl).toBeGreaterThan(40);
    expect(xr).toBeLessThan(-40);
    expect(ny).toBeGreaterThan(0);
  });

  it("confirms each corridor's safeRadiusMm within one voxel by sampling the label volume", () => {
    const ids = corridorIds(g.truth);
    for (const name of ['S1', 'S2'] as const) {
      const c = g.truth.corridors[name];
      const r = voxelSafeRadius(g.labels, c, ids);
      expect(Math.abs(r - c.safeRadiusMm), `${name}: voxels ${r}, truth ${c.safeRadiusMm}`).toBeLessThanOrEqual(
        g.truth.voxelMm,
      );
      // Entry and exit lie on the lateral iliac cortex: just outside is soft tissue, just inside is ilium.
      const u = [0, 1, 2].map((a) => (c.exit[a] - c.entry[a]) / c.lengthMm);
      expect(
        labelAt(
          g.labels,
          c.entry.map((x, a) => x - 2 * u[a]),
        ),
      ).not.toBe(g.truth.labels.iliumRight);
      expect(
        labelAt(
          g.labels,
          c.entry.map((x, a) => x + 2 * u[a]),
        ),
      ).toBe(g.truth.labels.iliumRight);
      expect(
        labelAt(
          g.labels,
          c.exit.map((x, a) => x + 2 * u[a]),
        ),
      ).not.toBe(g.truth.labels.iliumLeft);
      expect(
        labelAt(
          g.labels,
          c.exit.map((x, a) => x - 2 * u[a]),
        ),
      ).toBe(g.truth.labels.iliumLeft);
    }
    // A normal-sized sacrum: S1 takes a 7.3 mm screw with margin (radius 5-7 mm), S2 a bit less.
    expect(g.truth.corridors.S1.safeRadiusMm).toBeGreaterThanOrEqual(5);
    expect(g.truth.corridors.S1.safeRadiusMm).toBeLessThanOrEqual(7);
    expect(g.truth.corridors.S2.safeRadiusMm).toBeGreaterThan(3.65);
    expect(g.truth.corridors.S2.safeRadiusMm).toBeLessThan(g.truth.corridors.S1.safeRadiusMm);
  });

  it('opens every foramen from the canal to the outside of the bone, anteriorly and posteriorly', () => {
    const L = g.truth.labels;
    const v = g.labels;
    const [nx, ny, nz] = v.dims;
    const d = v.data;
    const bone = new Set(g.truth.boneLabelIds);
    const foramenIds = new Set(g.truth.criticalLabelIds.foramina);
    const isOutside = (l: number) => !bone.has(l) && l !== L.canal && !foramenIds.has(l);
    const steps = [1, -1, nx, -nx, nx * ny, -nx * ny];
    const toIndex = (p: P3) => {
      const m = v.patientToIndex;
      return [0, 1, 2].map((r) => m[r * 4] * p[0] + m[r * 4 + 1] * p[1] + m[r * 4 + 2] * p[2] + m[r * 4 + 3]);
    };
    expect(g.truth.foramina.map((f) => f.name)).toEqual(['S1L', 'S1R', 'S2L', 'S2R', 'S3L', 'S3R', 'S4L', 'S4R']);
    for (const f of g.truth.foramina) {
      const id = L[f.name];
      // Seeds: foramen voxels touching the canal (6-neighbourhood), flood fill within the foramen label.
      const seen = new Uint8Array(d.length);
      const queue: number[] = [];
      for (let o = 0; o < d.length; o++) {
        if (d[o] !== id) continue;
        const i = o % nx,
          j = Math.floor(o / nx) % ny,
          k = Math.floor(o / (nx * ny));
        if (i === 0 || j === 0 || k === 0 || i === nx - 1 || j === ny - 1 || k === nz - 1) continue;
        if (steps.some((s) => d[o + s] === L.canal)) {
          seen[o] = 1;
          queue.push(o);
        }
      }
      expect(queue.length, `${f.name} touches the canal`).toBeGreaterThan(0);
      const exits: number[][] = [];
      for (let q = 0; q < queue.length; q++) {
        const o = queue[q];
        if (steps.some((s) => isOutside(d[o + s])))
          exits.push([o % nx, Math.floor(o / nx) % ny, Math.floor(o / (nx * ny))]);
        for (const s of steps) {
          const n = o + s;
          if (!seen[n] && d[n] === id) {
            seen[n] = 1;
            queue.push(n);
          }
        }
      }
      // The flood reaches soft tissue at both openings the truth names (within 4 mm of each centre).
      for (const c of [f.center, f.posteriorCenter]) {
        const ci = toIndex(c);
        const near = exits.some((e) => Math.hypot(e[0] - ci[0], e[1] - ci[1], e[2] - ci[2]) * g.truth.voxelMm <= 4);
        expect(near, `${f.name} opens at ${c.join(', ')}`).toBe(true);
      }
      // Anterior opening in front of (smaller y than) the canal point, posterior one behind it.
      expect(f.center[1]).toBeLessThan(f.canalPoint[1]);
      expect(f.posteriorCenter[1]).toBeGreaterThan(f.canalPoint[1]);
      expect(f.radiusMm).toBeGreaterThan(1.5);
    }
  });

  it('has CT numbers in realistic ranges for demineralized bone', () => {
    const L = g.truth.labels;
    const cortex = meanWhere(g.ct, g.labels, L.cortex);
    const canc = meanWhere(g.ct, g.labels, L.cancellous);
    expect(cortex).toBeGreaterThanOrEqual(1000);
    expect(cortex).toBeLessThanOrEqual(1500);
    expect(canc).toBeLessThan(125); // well below normal cancellous bone (150-300)
    expect(Math.abs(meanWhere(g.ct, g.labels, L.fat) + 100)).toBeLessThan(20);
    expect(Math.abs(meanWhere(g.ct, g.labels, L.muscle) - 40)).toBeLessThan(15);
    expect(countLabel(g.labels, L.fracture)).toBeGreaterThan(1000); // two clefts of about 1.8 x 60 x 40 mm
    expect(g.truth.fractures.map((f) => f.side)).toEqual(['left', 'right']);
  });

  it('has iliac wings that flare to a curved crest inside the field of view (not boxes)', () => {
    // The AP silhouette of each ilium label, slice by slice (1 mm): its lateral and medial edges, as
    // distances from the midline. A box would give constant edges and a flat top; the wing widens by
    // more than 30 mm from the waist above the acetabulum to its widest, the crest arches (the wing
    // narrows to its top) and ends inside the volume, and no edge steps by more than 6 mm per slice.
    const [nx, ny, nz] = g.labels.dims;
    const m = g.labels.indexToPatient;
    const mid = g.truth.landmarks.s1EndplateCenter[0];
    for (const [name, sign] of [
      ['iliumLeft', 1],
      ['iliumRight', -1],
    ] as const) {
      const id = g.truth.labels[name];
      const rows: { k: number; lat: number; med: number }[] = [];
      for (let k = 0; k < nz; k++) {
        let lat = -Infinity,
          med = Infinity;
        for (let j = 0; j < ny; j++) {
          const o = nx * (j + ny * k);
          for (let i = 0; i < nx; i++) {
            if (g.labels.data[o + i] !== id) continue;
            const d = sign * (m[3] + m[0] * i - mid);
            if (d > lat) lat = d;
            if (d < med) med = d;
          }
        }
        if (lat > -Infinity) rows.push({ k, lat, med });
      }
      const top = rows[rows.length - 1].k;
      expect(nz - 1 - top, `${name}: crest below the top of the volume`).toBeGreaterThanOrEqual(10); // 21-26
      for (let r = 1; r < rows.length; r++) {
        expect(Math.abs(rows[r].lat - rows[r - 1].lat), `${name} slice ${rows[r].k}`).toBeLessThanOrEqual(6); // 5
      }
      const widest = rows.reduce((a, b) => (b.lat > a.lat ? b : a));
      const pi = g.labels.patientToIndex;
      const acet = g.truth.landmarks[name === 'iliumLeft' ? 'acetabulumLeft' : 'acetabulumRight'];
      const acetK = pi[8] * acet[0] + pi[9] * acet[1] + pi[10] * acet[2] + pi[11];
      const waist = Math.min(...rows.filter((r) => r.k >= acetK + 25 && r.k <= widest.k).map((r) => r.lat));
      expect(widest.lat - waist, `${name}: flare`).toBeGreaterThan(30); // 42-43 (the old boxes: 19-23)
      const at = (k: number) =>
        defined(
          rows.find((r) => r.k === k),
          `${name} slice ${k}`,
        );
      const width = (k: number) => at(k).lat - at(k).med;
      expect(width(top - 3) / width(top - 25), `${name}: crest arch`).toBeLessThan(0.55); // 0.41-0.43 (old 0.62-0.70)
    }
  });

  it('seats each femoral head in its acetabulum, with a joint space under the roof', () => {
    const lm = g.truth.landmarks;
    const L = g.truth.labels;
    for (const [side, sign] of [
      ['Left', 1],
      ['Right', -1],
    ] as const) {
      const head = lm[`femoralHead${side}`];
      const socket = lm[`acetabulum${side}`];
      expect(Math.hypot(head[0] - socket[0], head[1] - socket[1], head[2] - socket[2])).toBeLessThan(1);
      const femur = L[`femur${side}`],
        ilium = L[`ilium${side}`];
      // Rays from the head centre into the acetabular roof (upwards, not lateral): femur out to the head's
      // surface (radius 23.5 mm), then a joint space (2 mm, not bone), then the ilium's socket wall.
      let rays = 0;
      for (let n = 0; n < 200; n++) {
        const zc = 1 - (2 * (n + 0.5)) / 200,
          rr = Math.sqrt(1 - zc * zc),
          ph = n * 2.399963;
        const d: P3 = [rr * Math.cos(ph), rr * Math.sin(ph), zc];
        if (d[2] < 0.5 || sign * d[0] > 0.3) continue;
        rays++;
        let rHead = NaN,
          rWall = NaN;
        for (let r = 0; r < 35 && Number.isNaN(rWall); r += 0.25) {
          const lab = labelAt(g.labels, [head[0] + r * d[0], head[1] + r * d[1], head[2] + r * d[2]]);
          if (Number.isNaN(rHead) && lab !== femur) rHead = r;
          if (!Number.isNaN(rHead) && lab === ilium) rWall = r;
        }
        expect(
          Math.abs(rHead - 23.5),
          `head surface along ${d.map((x) => x.toFixed(2)).join(',')}`,
        ).toBeLessThanOrEqual(1);
        expect(rWall - rHead, `joint space along ${d.map((x) => x.toFixed(2)).join(',')}`).toBeGreaterThan(0.4);
        expect(rWall - rHead).toBeLessThan(4);
      }
      expect(rays).toBeGreaterThan(20);
    }
  });

  it('joins the pubic bones at the symphysis, a few millimetres apart across the midline', () => {
    // Left pubic bone voxels never cross the midline, and come within 6 mm of it (gap 5 mm).
    const [nx] = g.labels.dims;
    const m = g.labels.indexToPatient;
    const sym = g.truth.landmarks.pubicSymphysis;
    let closestLeft = Infinity,
      closestRight = Infinity;
    for (let o = 0; o < g.labels.data.length; o++) {
      const v = g.labels.data[o];
      if (v !== g.truth.labels.iliumLeft && v !== g.truth.labels.iliumRight) continue;
      const dx = m[3] + m[0] * (o % nx) - sym[0];
      if (v === g.truth.labels.iliumLeft) closestLeft = Math.min(closestLeft, dx);
      else closestRight = Math.min(closestRight, -dx);
    }
    for (const c of [closestLeft, closestRight]) {
      expect(c).toBeGreaterThan(0.5);
      expect(c).toBeLessThan(6);
    }
  });
});

describe('phantom: variants', () => {
  it('normal bone has cancellous CT numbers of 150-300 HU', () => {
    const g = generatePhantom({ anatomy: 'normal', voxelMm: 1.5 });
    const L = g.truth.labels;
    const canc = meanWhere(g.ct, g.labels, L.cancellous);
    expect(canc).toBeGreaterThanOrEqual(150);
    expect(canc).toBeLessThanOrEqual(300);
    expect(countLabel(g.labels, L.fracture)).toBe(0);
    expect(g.truth.fractures).toEqual([]);
  });

  it('dysmorphic: no S1 corridor for a 7.3 mm screw, S2 still usable (checked on the labels too)', () => {
    const g = generatePhantom({ anatomy: 'dysmorphic', voxelMm: 1.0, noise: false, blur: false });
    const { S1, S2 } = g.truth.corridors;
    expect(S1.safeRadiusMm).toBeLessThan(3.65);
    expect(S2.safeRadiusMm).toBeGreaterThan(3.65);
    const ids = corridorIds(g.truth);
    expect(Math.abs(voxelSafeRadius(g.labels, S1, ids) - S1.safeRadiusMm)).toBeLessThanOrEqual(1.0);
    expect(Math.abs(voxelSafeRadius(g.labels, S2, ids) - S2.safeRadiusMm)).toBeLessThanOrEqual(1.0);
  });
});

describe('phantom: instruments and cement', () => {
  let g: GeneratedPhantom;
  beforeAll(() => {
    g = generatePhantom({
      stage: 'cement',
      voxelMm: 0.8,
      seed: 11,
      cementMl: [4, 3],
      leak: 'S1L',
      noise: false,
      blur: false,
    });
  });

  it('matches instrument, cement and leak label volumes to the truth within 3%', () => {
    const L = g.truth.labels;
    const v3 = g.truth.voxelMm ** 3 / 1000; // ml per voxel
    const inst = defined(g.truth.instruments, 'instrument truth');
    expect(inst.map((i) => i.kind)).toEqual(['guidepin', 'guidepin', 'trocar', 'trocar']);
    const instMl = inst.reduce((s, i) => s + i.volumeMl, 0);
    // Independent of the generator: a flat-ended cylinder from hub to tip.
    for (const i of inst) {
      const len = Math.hypot(i.tip[0] - i.hub[0], i.tip[1] - i.hub[1], i.tip[2] - i.hub[2]);
      expect(i.volumeMl).toBeCloseTo((Math.PI * (i.diameterMm / 2) ** 2 * len) / 1000, 3);
    }
    expect(Math.abs((countLabel(g.labels, L.instrument) * v3) / instMl - 1)).toBeLessThan(0.03);
    // Cement: left deposit at +x of the midline, right at -x.
    const midI = g.labels.patientToIndex[0] * g.truth.landmarks.s1EndplateCenter[0] + g.labels.patientToIndex[3];
    const left = countLabel(g.labels, L.cement, (i) => i > midI) * v3;
    const right = countLabel(g.labels, L.cement, (i) => i < midI) * v3;
    const cement = defined(g.truth.cement, 'cement truth');
    expect(cement.map((c) => [c.site, c.volumeMl])).toEqual([
      ['left', 4],
      ['right', 3],
    ]);
    expect(Math.abs(left / 4 - 1)).toBeLessThan(0.03);
    expect(Math.abs(right / 3 - 1)).toBeLessThan(0.03);
    const leak = defined(g.truth.leak, 'leak truth');
    expect(leak.foramen).toBe('S1L');
    expect(Math.abs((countLabel(g.labels, L.cementLeak) * v3) / leak.volumeMl - 1)).toBeLessThan(0.03);
  });

  it('places each instrument where the truth says, deliberately off its ideal path', () => {
    const L = g.truth.labels;
    for (const i of defined(g.truth.instruments, 'instrument truth')) {
      // Voxels on the truth axis (away from the ends) are instrument.
      for (let t = 0.05; t <= 0.95; t += 0.05) {
        const p = [0, 1, 2].map((a) => i.hub[a] + t * (i.tip[a] - i.hub[a]));
        expect(labelAt(g.labels, p), `${i.name} at ${t}`).toBe(L.instrument);
      }
      expect(i.entryOffsetMm).toBeGreaterThanOrEqual(1);
      expect(i.entryOffsetMm).toBeLessThanOrEqual(3);
      expect(i.angleDeg).toBeGreaterThanOrEqual(1);
      expect(i.angleDeg).toBeLessThanOrEqual(5);
      // Angle between the actual and the ideal direction, from the truth's own points.
      const a = [0, 1, 2].map((k) => i.tip[k] - i.hub[k]);
      const b = [0, 1, 2].map((k) => i.idealTarget[k] - i.idealEntry[k]);
      const cos =
        (a[0] * b[0] + a[1] * b[1] + a[2] * b[2]) / (Math.hypot(a[0], a[1], a[2]) * Math.hypot(b[0], b[1], b[2]));
      expect((Math.acos(Math.min(1, cos)) * 180) / Math.PI).toBeCloseTo(i.angleDeg, 2);
      expect(i.tipOffsetMm).toBeGreaterThan(0.5);
    }
    // Steel is bright: the CT at instrument voxels is about 3000 HU.
    expect(meanWhere(g.ct, g.labels, L.instrument)).toBeGreaterThan(2500);
  });

  it('needs the cement stage for a leak and rejects bad options with a UsageError', () => {
    expect(() => generatePhantom({ stage: 'pins', leak: 'S1L' })).toThrow(UsageError);
    expect(() => generatePhantom({ voxelMm: 0.1 })).toThrow(/voxel size/);
    expect(() => generatePhantom({ seed: -1 })).toThrow(UsageError);
    expect(() => generatePhantom({ anatomy: 'broken' as never })).toThrow(/anatomy/);
    expect(() => generatePhantom({ stage: 'cement', leak: 'S9X' as never })).toThrow(/leak foramen/);
  });
});

describe('phantom: determinism', () => {
  it('gives identical voxels and truth for the same options, and other instruments for another seed', () => {
    const opts = { stage: 'cement', voxelMm: 2.5, seed: 5, leak: 'S2R' } as const;
    const a = generatePhantom(opts);
    const b = generatePhantom(opts);
    expect(Buffer.from(a.ct.data.buffer).equals(Buffer.from(b.ct.data.buffer))).toBe(true);
    expect(Buffer.from(a.labels.data.buffer).equals(Buffer.from(b.labels.data.buffer))).toBe(true);
    expect(JSON.stringify(a.truth)).toBe(JSON.stringify(b.truth));
    const c = generatePhantom({ ...opts, seed: 6 });
    const tipOf = (t: PhantomTruth) => defined(t.instruments, 'instrument truth')[0].tip;
    expect(tipOf(c.truth)).not.toEqual(tipOf(a.truth));
    expect(Buffer.from(c.ct.data.buffer).equals(Buffer.from(a.ct.data.buffer))).toBe(false);
    // The anatomy (and so the corridors) does not depend on the seed.
    expect(c.truth.corridors).toEqual(a.truth.corridors);
  });
});
