/**
 * The generator's options with their defaults filled in and their ranges checked, and its cancellation
 * check. Exists so that every stage of the generator reads one validated record and a bad option fails
 * with a UsageError before any work is done. Limits: checks each option's range on its own; whether the
 * requested cement fits the bone is only found when the deposit is sized (cement.ts).
 */
import { UsageError } from '../errors.js';
import { FORAMEN_NAMES, type AnatomyVariant, type ForamenName } from './anatomy.js';
import {
  PHANTOM_ANATOMIES,
  PHANTOM_DEFAULT_VOXEL_MM,
  PHANTOM_STAGES,
  type PhantomOptions,
  type PhantomStage,
} from './types.js';

/** PhantomOptions with every default applied (noise and blur off = 0). */
export interface ResolvedOptions {
  anatomy: AnatomyVariant;
  stage: PhantomStage;
  voxelMm: number;
  seed: number;
  cementMl: [number, number];
  leak: ForamenName | undefined;
  leakMl: number;
  noiseSdHu: number;
  blurSigmaMm: number;
}

export function resolveOptions(o: PhantomOptions): ResolvedOptions {
  const src = 'phantom options';
  const fail = (message: string) => new UsageError(message, src);
  const anatomy = o.anatomy ?? 'fracture';
  if (!PHANTOM_ANATOMIES.includes(anatomy)) {
    throw fail(`anatomy "${anatomy}" is not one of ${PHANTOM_ANATOMIES.join(', ')}`);
  }
  const stage = o.stage ?? 'plan';
  if (!PHANTOM_STAGES.includes(stage)) throw fail(`stage "${stage}" is not one of ${PHANTOM_STAGES.join(', ')}`);
  const voxelMm = o.voxelMm ?? PHANTOM_DEFAULT_VOXEL_MM;
  if (!(voxelMm >= 0.3 && voxelMm <= 5)) throw fail(`voxel size ${voxelMm} mm is outside 0.3 to 5 mm`);
  const seed = o.seed ?? 1;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw fail(`seed ${seed} is not an integer from 0 to 4294967295`);
  }
  const cementMl: [number, number] = [o.cementMl?.[0] ?? 4, o.cementMl?.[1] ?? 4];
  for (const v of cementMl) if (!(v >= 0 && v <= 12)) throw fail(`cement volume ${v} ml is outside 0 to 12 ml`);
  const leak = o.leak;
  if (leak !== undefined && !FORAMEN_NAMES.includes(leak)) {
    throw fail(`leak foramen "${leak}" is not one of ${FORAMEN_NAMES.join(', ')}`);
  }
  if (leak !== undefined && stage !== 'cement') throw fail('a cement leak needs stage "cement"');
  const leakMl = o.leakMl ?? 0.2;
  if (!(leakMl > 0 && leakMl <= 1)) throw fail(`leak volume ${leakMl} ml is outside (0, 1] ml`);
  const noiseSdHu = o.noise === false ? 0 : (o.noiseSdHu ?? 20);
  if (!(noiseSdHu >= 0 && noiseSdHu <= 500)) throw fail(`noise ${noiseSdHu} HU is outside 0 to 500`);
  const blurSigmaMm = o.blur === false ? 0 : (o.blurSigmaMm ?? 0.6);
  if (!(blurSigmaMm >= 0 && blurSigmaMm <= 5)) throw fail(`blur ${blurSigmaMm} mm is outside 0 to 5 mm`);
  return { anatomy, stage, voxelMm, seed, cementMl, leak, leakMl, noiseSdHu, blurSigmaMm };
}

/** Throws a UsageError when the caller has aborted the generation. */
export function throwIfCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new UsageError('phantom generation cancelled', 'phantom');
}
