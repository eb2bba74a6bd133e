/**
 * The motion worker ("Correct for motion"): holds the planning scan prepared once per case for core's
 * 2D/3D registration (prepareRegister2dVolume) and runs register2d on the frames it is given. It also
 * renders the virtual frame of "Simulate patient motion": a DRR of the planning scan moved by a known
 * rigid motion, made into fluoroscopy with core's model (the workstation's rehearsal frame).
 * register2d is synchronous: the page cancels a run by ending this worker.
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
  renderLineIntegrals,
  resolveModel,
  type CarmGeometry,
  type DrrVolume,
  type PathLike,
  type Register2dResult,
  type Register2dVolume,
} from '@corridor/core';
import { serveRpc } from '../rpc.js';
import { volumeFromMessage, type VolumeMessage } from '../volume-message.js';

let prepared: Register2dVolume | null = null;
let drr: DrrVolume | null = null;

serveRpc(self as unknown as Parameters<typeof serveRpc>[0], {
  setVolume(args, progress) {
    const [msg] = args as [VolumeMessage];
    progress(0, 1, 'Preparing the volume for motion correction');
    const v = volumeFromMessage(msg);
    prepared = prepareRegister2dVolume(v);
    drr = prepareDrrVolume(v);
    progress(1, 1, 'Volume prepared');
    return { levels: prepared.levels.map((l) => l.spacingMm) };
  },
  register(args, progress) {
    const [views, paths, initial] = args as [
      { gray: Uint8Array; geometry: CarmGeometry }[],
      PathLike[],
      number[][] | null,
    ];
    if (!prepared) throw new Error('the motion worker has no volume');
    const r: Register2dResult = register2d(prepared, views, {
      paths,
      ...(initial ? { initialPlanningToCurrent: mat4FromRows(initial) } : {}),
      onProgress: progress,
    });
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
