/**
 * "Correct for motion" (issue 17): core's 2D/3D registration (register2d) of the planning scan to a
 * fluoroscopy frame, run in a worker that prepares the scan once per case; the correction it gives moves
 * the plan's overlay on the frames of the patient now. Also "Simulate patient motion": a virtual frame of
 * the planning scan moved by a known rigid motion, so a trainee can see the correction at work.
 */
import {
  fluoroscopyWithExposure,
  mat4FromRows,
  mat4TransformPoint,
  resolveModel,
  type CarmGeometry,
  type PathOverlay,
  type PlanPath,
  type Point3,
  type Register2dResult,
  type Volume,
} from '@corridor/core';
import { WorkerClient, type ProgressFn } from './rpc.js';
import type { LoadedXa, MotionCorrection, Store } from './store.js';
import { volumeToMessage } from './volume-message.js';

/** The plan's paths carried by planningToCurrent (4 x 4 rows): where they are in the patient now. */
export function movePaths(paths: readonly PlanPath[], planningToCurrent: number[][]): PlanPath[] {
  const m = mat4FromRows(planningToCurrent);
  const move = (p: Point3): Point3 => {
    const q = mat4TransformPoint([0, 0, 0], m, p);
    return [q[0], q[1], q[2]];
  };
  return paths.map((p) => ({ ...p, entry: move(p.entry), target: move(p.target) }));
}

type El = <K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number>,
  parent?: Element,
) => SVGElementTagNameMap[K];

/** The uncorrected overlay, under the corrected one: grey dashed axes, hollow grey ends. */
export function drawBeforeOverlay(ov: PathOverlay[], el: El): void {
  for (const o of ov) {
    const [a, b] = [o.entryPx, o.targetPx];
    if (![a[0], a[1], b[0], b[1]].every(Number.isFinite)) continue;
    const grp = el('g', { class: 'path-before', 'data-path-id': o.id });
    const line = { stroke: '#aaa', 'stroke-width': 1.5, 'stroke-dasharray': '4 3', fill: 'none' };
    el('line', { x1: a[0] + 0.5, y1: a[1] + 0.5, x2: b[0] + 0.5, y2: b[1] + 0.5, ...line }, grp);
    for (const [end, q] of [
      ['entry', a],
      ['target', b],
    ] as const)
      el(
        'circle',
        {
          cx: q[0] + 0.5,
          cy: q[1] + 0.5,
          r: 3,
          ...line,
          class: 'mark-before',
          'data-end': end,
          'data-col': q[0],
          'data-row': q[1],
        },
        grp,
      );
  }
}

/** A simulated motion: `mm` along a fixed oblique direction, `deg` about a fixed oblique axis through `center`. */
export function simulatedMotion(mm: number, deg: number, center: Point3): number[][] {
  const d = [0.6, -0.64, 0.48]; // unit
  const k = [0.27, 0.96, 0.07];
  const n = Math.hypot(k[0], k[1], k[2]);
  const [x, y, z] = [k[0] / n, k[1] / n, k[2] / n];
  const a = (deg * Math.PI) / 180,
    c = Math.cos(a),
    s = Math.sin(a),
    C = 1 - c;
  const R = [
    [c + x * x * C, x * y * C - z * s, x * z * C + y * s],
    [y * x * C + z * s, c + y * y * C, y * z * C - x * s],
    [z * x * C - y * s, z * y * C + x * s, c + z * z * C],
  ];
  const rows = R.map((r, i) => [
    ...r,
    center[i] + mm * d[i] - (r[0] * center[0] + r[1] * center[1] + r[2] * center[2]),
  ]);
  rows.push([0, 0, 0, 1]);
  return rows;
}

/** The largest distance between the path ends carried by two transforms, mm. */
export function maxPathEndDistance(paths: readonly PlanPath[], a: number[][], b: number[][]): number {
  const pa = movePaths(paths, a),
    pb = movePaths(paths, b);
  let worst = 0;
  pa.forEach((p, i) =>
    (['entry', 'target'] as const).forEach((e) => {
      const u = p[e],
        v = pb[i][e];
      worst = Math.max(worst, Math.hypot(u[0] - v[0], u[1] - v[1], u[2] - v[2]));
    }),
  );
  return worst;
}

/** The motion worker of one workstation: prepares the planning scan once per case. */
export class MotionCorrector {
  private worker: WorkerClient | null = null;
  private preparedFor: Volume | null = null;
  private ready: Promise<unknown> = Promise.resolve();
  cancelled = false;

  constructor(private store: Store) {}

  get running(): boolean {
    return !!this.worker?.busy;
  }

  private ensure(progress?: ProgressFn): WorkerClient {
    const planning = this.store.series[0]?.volume;
    if (!planning) throw new Error('open a case first');
    if (!this.worker) {
      this.worker = new WorkerClient(
        new Worker(new URL('./worker/motion.worker.ts', import.meta.url), { type: 'module' }),
        'motion correction',
      );
      this.preparedFor = null;
    }
    if (this.preparedFor !== planning) {
      const { msg, transfer } = volumeToMessage(planning, true);
      this.ready = this.worker.call('setVolume', [msg], transfer, progress);
      this.preparedFor = planning;
    }
    return this.worker;
  }

  /** register2d of the planning scan to one frame; null when cancelled. */
  async correct(
    frame: { gray: Uint8Array; geometry: CarmGeometry; name: string; simulatedMotion?: number[][] },
    progress?: ProgressFn,
  ): Promise<MotionCorrection | null> {
    this.cancelled = false;
    const paths = this.store.plan.paths;
    const planning = this.store.series[0]?.volume;
    const t0 = performance.now();
    try {
      const w = this.ensure(progress);
      await this.ready;
      // Each run starts at the nominal pose: the last correction may be of another frame's moment.
      const r = await w.call<Register2dResult>(
        'register',
        [[{ gray: frame.gray, geometry: frame.geometry }], paths, null],
        [],
        progress,
      );
      if (this.store.series[0]?.volume !== planning) return null; // another case was opened meanwhile
      const mc: MotionCorrection = {
        planningToCurrent: r.planningToCurrent,
        status: r.verdict.status,
        reasons: r.verdict.reasons,
        singleView: r.singleView,
        depthUncertaintyMm: r.uncertainty.depthUncertaintyMm,
        similarity: r.similarity,
        frameName: frame.name,
        ms: performance.now() - t0,
        ...(frame.simulatedMotion
          ? { errorVsSimulatedMm: maxPathEndDistance(paths, r.planningToCurrent, frame.simulatedMotion) }
          : {}),
      };
      return mc;
    } catch (err) {
      if (this.cancelled) return null;
      throw err;
    }
  }

  /** A virtual frame of the planning scan moved by planningToCurrent `motion`, for geometry g. */
  async simulate(g: CarmGeometry, motion: number[][]): Promise<Uint8Array> {
    const w = this.ensure();
    await this.ready;
    const r = await w.call<{ gray: Uint8Array }>('simulate', [g, motion]);
    return r.gray;
  }

  /** Stop a running correction: its worker is ended (register2d is synchronous) and made afresh next time. */
  cancel(): void {
    if (!this.worker) return;
    this.cancelled = true;
    this.worker.terminate();
    this.worker = null;
    this.preparedFor = null;
  }
}

/** A virtual XA frame (a frame the workstation rendered) in the form of a loaded one. */
export function virtualXa(name: string, gray: Uint8Array, geometry: CarmGeometry, motion?: number[][]): LoadedXa {
  return {
    name,
    frame: { gray, geometry, assumed: [], verified: true, numberOfFrames: 1, frameIndex: 0, warnings: [] },
    notes: [],
    ...(motion ? { simulatedMotion: motion } : {}),
  };
}

/** The grey image of a DRR frame as the workstation shows it (core's model, noise-free). */
export function drrGray(lineIntegrals: Float32Array, geometry: CarmGeometry): Uint8Array {
  return fluoroscopyWithExposure(lineIntegrals, geometry, {
    exposure: { referenceKvp: resolveModel().kvp },
    noiseFree: true,
    edgeEnhance: 0,
  }).gray;
}
