/**
 * The motion worker ("Correct for motion"): holds the planning scan prepared once per case for core's
 * 2D/3D registration (prepareRegister2dVolume) and runs register2d on the frames it is given. It also
 * renders the virtual frame of "Simulate patient motion": a DRR of the planning scan moved by a known
 * rigid motion, made into fluoroscopy with core's model (the workstation's rehearsal frame).
 * The DRRs of a registration are rendered here and by a render helper (motion-render.worker.ts, a nested
 * worker holding copies of the prepared levels): each batch of independent renders (register2dAsync) is
 * split between the two, whole images or halves of one, so a fit uses two cores; where nested workers
 * are not available, register2d runs here alone. Either way the result is register2d's (the same kernel,
 * the same images). The page cancels a run by ending this worker (its helper ends with it).
 */
import {
  fluoroscopyWithExposure,
  mat4Create,
  mat4FromRows,
  mat4Invert,
  mat4Multiply,
  prepareDrrVolume,
  prepareRegister2dVolume,
  register2d,
  register2dAsync,
  register2dVolumeParts,
  renderLineIntegrals,
  resolveModel,
  type CarmGeometry,
  type DrrVolume,
  type PathLike,
  type Register2dRenderer,
  type Register2dRenderJob,
  type Register2dResult,
  type Register2dVolume,
} from '@corridor/core';
import { serveRpc, WorkerClient } from '../rpc.js';
import type { BandRequest } from './motion-render.worker.js';
import { volumeFromMessage, type VolumeMessage } from '../volume-message.js';

let prepared: Register2dVolume | null = null;
let drr: DrrVolume | null = null;
/** The render helper (null where this engine has no nested workers) and its copy of the levels. */
let helper: WorkerClient | null = null;
let helperReady: Promise<unknown> | null = null;
/** Counts the volumes given: a helper holding another volume's levels refuses to render. */
let generation = 0;

function startHelper(): WorkerClient | null {
  if (typeof Worker === 'undefined') return null;
  try {
    return new WorkerClient(
      new Worker(new URL('./motion-render.worker.ts', import.meta.url), { type: 'module' }),
      'motion render helper',
    );
  } catch {
    return null;
  }
}

/** Renders each batch half here, half on the helper: every other image, or the two halves of a lone one. */
function splitRenderer(local: Register2dVolume, h: WorkerClient, gen: number): Register2dRenderer {
  return {
    async render(jobs: readonly Register2dRenderJob[]) {
      const mine: [Register2dRenderJob, number, number][] = [];
      const theirs: [Register2dRenderJob, number, number][] = [];
      if (jobs.length === 1) {
        const j = jobs[0];
        const half = Math.floor(j.geometry.rows / 2);
        mine.push([j, 0, half]);
        theirs.push([j, half, j.geometry.rows]);
      } else for (const [k, j] of jobs.entries()) (k % 2 ? theirs : mine).push([j, 0, j.geometry.rows]);
      const req: BandRequest[] = theirs.map(([j, rowStart, rowEnd]) => ({
        level: j.level,
        patientToIndex: j.patientToIndex,
        geometry: j.geometry,
        rowStart,
        rowEnd,
      }));
      const pending = h.call<Float32Array[]>('render', [req, gen]);
      for (const [j, r0, r1] of mine)
        renderLineIntegrals(
          { ...local.levels[j.level].dv, patientToIndex: j.patientToIndex },
          j.geometry,
          j.out,
          r0,
          r1,
        );
      const bands = await pending;
      for (const [q, [j, r0]] of theirs.entries()) j.out.set(bands[q], r0 * j.geometry.columns);
    },
  };
}

serveRpc(self as unknown as Parameters<typeof serveRpc>[0], {
  setVolume(args, progress) {
    const [msg] = args as [VolumeMessage];
    progress(0, 1, 'Preparing the volume for motion correction');
    const v = volumeFromMessage(msg);
    prepared = prepareRegister2dVolume(v);
    drr = prepareDrrVolume(v);
    helper ??= startHelper();
    if (helper) {
      const parts = register2dVolumeParts(prepared);
      const transfer = parts.levels.flatMap((l) => [l.dv.mu.buffer, l.dv.occupancy.buffer]);
      helperReady = helper.call('setLevels', [parts, ++generation], transfer).catch(() => {
        helper = null; // no helper after all: register2d alone
      });
    }
    progress(1, 1, 'Volume prepared');
    return { levels: prepared.levels.map((l) => l.spacingMm) };
  },
  async register(args, progress) {
    const [views, paths, initial] = args as [
      { gray: Uint8Array; geometry: CarmGeometry }[],
      PathLike[],
      number[][] | null,
    ];
    if (!prepared) throw new Error('the motion worker has no volume');
    const opts = {
      paths,
      ...(initial ? { initialPlanningToCurrent: mat4FromRows(initial) } : {}),
      onProgress: progress,
    };
    if (helperReady) await helperReady;
    const r: Register2dResult = helper
      ? await register2dAsync(prepared, views, opts, splitRenderer(prepared, helper, generation))
      : register2d(prepared, views, opts);
    return r;
  },
  /** The frame of the patient moved by planningToCurrent (4 x 4 rows), noise-free. */
  simulate(args) {
    const [g, motion] = args as [CarmGeometry, number[][]];
    if (!drr) throw new Error('the motion worker has no volume');
    const currentToPlanning = mat4Invert(mat4Create(), mat4FromRows(motion));
    if (!currentToPlanning) throw new Error('the simulated motion is not invertible');
    // The moved patient: a point now at x was at currentToPlanning(x) in the scan.
    const m = mat4Multiply(mat4Create(), drr.patientToIndex, currentToPlanning);
    const li = renderLineIntegrals({ ...drr, patientToIndex: m }, g);
    const img = fluoroscopyWithExposure(li, g, {
      exposure: { referenceKvp: resolveModel().kvp },
      noiseFree: true,
      edgeEnhance: 0,
    });
    return { value: { gray: img.gray, exposure: img.exposure }, transfer: [img.gray.buffer] };
  },
});
