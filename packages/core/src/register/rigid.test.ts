/**
 * Rigid registration on the phantom at 2 mm (coarse, so the file runs in seconds). Truth comes from the
 * test: the moving image is the fixed one moved by a motion built here from an axis and an angle
 * (test-helpers/motion.ts), with noise; the error is the mean distance, over the sacrum's voxel centres,
 * between where the estimate and the truth put each point. 0.5 mm is the bound (a quarter of a
 * 2 mm voxel); the motions are at the limits (10 degrees, 20 mm).
 */
import { describe, expect, it } from 'vitest';
import { CancelledError, GeometryError } from '../errors.js';
import { generatePhantom } from '../phantom/generate.js';
import { PHANTOM_LABELS as L } from '../phantom/labels.js';
import { Rng } from '../math/random.js';
import { mat4TransformPoint } from '../math/mat4.js';
import { createVolume } from '../volume/volume.js';
import { simulateCbct } from '../recon/cbct.js';
import {
  cbctLike,
  dilatedLabelMask,
  labelPoints,
  meanPoint,
  meanTre,
  movedCopy,
  rigidMotion,
} from '../test-helpers/motion.js';
import { registerRigid } from './rigid.js';

const phantom = generatePhantom({ voxelMm: 2, seed: 3 });
const fixed = phantom.ct;
const SACRUM = [L.cortex, L.cancellous, L.fracture];
const sacrum = labelPoints(phantom.labels, SACRUM);
const sacrumCentre = meanPoint(sacrum);
const identity = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];

// 10 degrees about an oblique axis and 20 mm (norm): the largest motion.
const motion = rigidMotion([0.3, -0.5, 0.8], 10, [11.5, -10, 12.9], sacrumCentre);

describe('rigid registration on the phantom (2 mm)', () => {
  it('recovers 10 degrees and 20 mm with mutual information within 0.5 mm over the sacrum', () => {
    const moving = movedCopy(fixed, motion, 20, 11);
    // Before: the motion itself moves the sacrum by well over 10 mm on average.
    expect(meanTre(sacrum, motion, identity)).toBeGreaterThan(15);
    const r = registerRigid(fixed, moving);
    const tre = meanTre(sacrum, motion, r.movingToFixed.flat());
    expect(r.verdict).toEqual({ status: 'ok', reasons: [] });
    expect(tre).toBeLessThan(0.5);
    expect(r.overlapFraction).toBeGreaterThan(0.8);
    // The reported rotation is the motion's: |angle| of fixedToMoving = 10 degrees.
    const m = r.fixedToMoving;
    const angle = (Math.acos(Math.min(1, (m[0][0] + m[1][1] + m[2][2] - 1) / 2)) * 180) / Math.PI;
    expect(angle).toBeCloseTo(10, 0);
  });

  it('recovers the same motion with normalized correlation (same modality)', () => {
    const moving = movedCopy(fixed, motion, 20, 12);
    const r = registerRigid(fixed, moving, { metric: 'nc' });
    expect(r.verdict.status).toBe('ok');
    expect(r.metricValue).toBeGreaterThan(0.9);
    expect(meanTre(sacrum, motion, r.movingToFixed.flat())).toBeLessThan(0.5);
  });

  it('recovers it from a CBCT-like moving image: truncated cylinder, HU scaled and offset, cupping, noise', () => {
    const moving = movedCopy(fixed, motion, 30, 13);
    // The field of view is centred on the sacrum as the moving scanner saw it (the true moving position).
    const t = motion;
    const d = [sacrumCentre[0] - t[3], sacrumCentre[1] - t[7], sacrumCentre[2] - t[11]];
    const c = [
      t[0] * d[0] + t[4] * d[1] + t[8] * d[2],
      t[1] * d[0] + t[5] * d[1] + t[9] * d[2],
      t[2] * d[0] + t[6] * d[1] + t[10] * d[2],
    ];
    cbctLike(moving, c, 110, 80, 0.8, 150, 80, -1024);
    const r = registerRigid(fixed, moving); // the field of view is found from the fill value alone
    expect(r.movingFill).toBe(-1024);
    expect(r.verdict).toEqual({ status: 'ok', reasons: [] });
    expect(meanTre(sacrum, motion, r.movingToFixed.flat())).toBeLessThan(0.5);
    // The small field of view lies wholly inside the fixed image: the overlap counts against it.
    expect(r.movingCoveredFraction).toBeGreaterThan(0.8);
    expect(r.fixedCoveredFraction).toBeLessThan(0.5);
  });

  it('recovers it from a simulated C-arm CT of the moved phantom: truncated field of view, scatter, HU offset', () => {
    // The DynaCT simulation (recon/): 60 views of 128 columns, quantum noise under exposure control,
    // scatter, FDK onto 2 mm; then the Hounsfield offset of an uncalibrated C-arm CT inside its field of
    // view. Its isocentre is the sacrum as the moving C-arm saw it. The fill (-1024) lies above the
    // reconstruction's darkest streaks, so it is found as the corners' plateau.
    const t = motion;
    const d = [sacrumCentre[0] - t[3], sacrumCentre[1] - t[7], sacrumCentre[2] - t[11]];
    const seen: [number, number, number] = [
      t[0] * d[0] + t[4] * d[1] + t[8] * d[2],
      t[1] * d[0] + t[5] * d[1] + t[9] * d[2],
      t[2] * d[0] + t[6] * d[1] + t[10] * d[2],
    ];
    const run = simulateCbct(movedCopy(fixed, motion, 0, 14), {
      isocenter: seen,
      views: 60,
      detector: { size: 128 },
      voxelMm: 2,
      photonsPerPixel: 2e4,
      exposureControl: true,
      scatterFraction: 2e-4,
      seed: 4,
    });
    const moving = run.reconstruction.volume;
    let below = 0;
    for (let o = 0; o < moving.data.length; o++) {
      if (run.reconstruction.mask[o]) moving.data[o] += 100;
      if (moving.data[o] < -1024) below++;
    }
    expect(below).toBeGreaterThan(0); // the reason the fill is not the minimum
    const r = registerRigid(fixed, moving);
    expect(r.movingFill).toBe(-1024);
    expect(r.verdict).toEqual({ status: 'ok', reasons: [] });
    expect(meanTre(sacrum, motion, r.movingToFixed.flat())).toBeLessThan(0.5);
  });

  it('reports two volumes that do not overlap as failed', () => {
    const moving = movedCopy(fixed, motion, 20, 14);
    const far = Float64Array.from(moving.indexToPatient);
    far[3] += 2000; // the same voxels placed 2 m away
    const r = registerRigid(fixed, createVolume({ data: moving.data, dims: moving.dims, indexToPatient: far }));
    expect(r.verdict.status).toBe('failed');
    expect(r.overlapFraction).toBe(0);
    expect(r.verdict.reasons.join(' ')).toMatch(/overlap/);
  });

  it('reports a pair whose sacrum is replaced by noise as failed, within a sacral mask', () => {
    const moving = movedCopy(fixed, motion, 20, 15);
    const mask = dilatedLabelMask(phantom.labels, SACRUM, 6);
    // Replace the moving sacrum region (the mask carried by the true motion) with uniform noise.
    const rng = new Rng(5);
    const [nx, ny, nz] = moving.dims;
    const p = [0, 0, 0],
      q = [0, 0, 0];
    for (let k = 0, o = 0; k < nz; k++)
      for (let j = 0; j < ny; j++)
        for (let i = 0; i < nx; i++, o++) {
          mat4TransformPoint(p, moving.indexToPatient, [i, j, k]);
          mat4TransformPoint(q, motion, p);
          const a = mask.patientToIndex;
          const mi = Math.round(a[0] * q[0] + a[1] * q[1] + a[2] * q[2] + a[3]);
          const mj = Math.round(a[4] * q[0] + a[5] * q[1] + a[6] * q[2] + a[7]);
          const mk = Math.round(a[8] * q[0] + a[9] * q[1] + a[10] * q[2] + a[11]);
          if (mi >= 0 && mj >= 0 && mk >= 0 && mi < nx && mj < ny && mk < nz && mask.data[mi + nx * (mj + ny * mk)])
            moving.data[o] = rng.range(-1000, 1500);
        }
    const r = registerRigid(fixed, moving, { fixedMask: mask });
    expect(r.verdict.status).toBe('failed');
    expect(r.verdict.reasons.join(' ')).toMatch(/no structure matches/);
  });

  it('matches within a label mask grown by maskDilationMm, and starts from an initial transform', () => {
    const moving = movedCopy(fixed, motion, 20, 17);
    const r = registerRigid(fixed, moving, {
      fixedMask: phantom.labels,
      maskLabels: [...SACRUM, L.iliumLeft, L.iliumRight],
      maskDilationMm: 5,
    });
    expect(r.verdict).toEqual({ status: 'ok', reasons: [] });
    expect(meanTre(sacrum, motion, r.movingToFixed.flat())).toBeLessThan(0.5);
    // From the truth moved 3 mm, a single fine level is enough to come back.
    const near = Float64Array.from(motion);
    near[3] += 3;
    const s = registerRigid(fixed, moving, { initialMovingToFixed: near, levelsMm: [2] });
    expect(s.verdict).toEqual({ status: 'ok', reasons: [] });
    expect(meanTre(sacrum, motion, s.movingToFixed.flat())).toBeLessThan(0.5);
    const stretched = Float64Array.from(motion);
    stretched[0] *= 1.05;
    expect(() => registerRigid(fixed, moving, { initialMovingToFixed: stretched })).toThrow(GeometryError);
  });

  it('is deterministic for a seed, reports progress and stops when aborted', () => {
    const moving = movedCopy(fixed, motion, 20, 16);
    const opts = { levelsMm: [8, 4], samples: 3000 };
    const phases: string[] = [];
    const a = registerRigid(fixed, moving, { ...opts, onProgress: (_d, _t, ph) => phases.push(ph) });
    const b = registerRigid(fixed, moving, opts);
    expect(b.movingToFixed).toEqual(a.movingToFixed);
    expect(phases).toEqual(['pyramid', 'level 8 mm', 'level 4 mm', 'done']);
    const ac = new AbortController();
    ac.abort();
    expect(() => registerRigid(fixed, moving, { signal: ac.signal })).toThrow(CancelledError);
  });
});
