/**
 * The 3D run worker ("Acquire 3D run"): core's simulateCbct (the C-arm CT of the open case: short-scan
 * acquisition through the DRR kernel, FDK reconstruction in the same patient frame), the same function
 * as `corridor cbct`. One run per worker: cancel ends the worker, so nothing of a cancelled run is kept.
 */
import { cbctDescription, simulateCbct } from '@corridor/core';
import { serveRpc } from '../rpc.js';
import { volumeFromMessage, volumeToMessage, type VolumeMessage } from '../volume-message.js';
import { cbctCoreOptions, type ReconOptions } from './recon-options.js';

export type { ReconOptions } from './recon-options.js';

export interface ReconReply {
  volume: VolumeMessage;
  description: string;
  ms: number;
}

serveRpc(self as unknown as Parameters<typeof serveRpc>[0], {
  acquire(args, progress) {
    const [msg, o] = args as [VolumeMessage, ReconOptions];
    const t0 = performance.now();
    const run = simulateCbct(volumeFromMessage(msg), { ...cbctCoreOptions(o), onProgress: progress });
    const { msg: out, transfer } = volumeToMessage(run.reconstruction.volume, false);
    const reply: ReconReply = { volume: out, description: cbctDescription(run.result), ms: performance.now() - t0 };
    return { value: reply, transfer };
  },
});
