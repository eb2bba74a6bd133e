/**
 * Volumes cross between the page and workers as plain data (typed arrays and numbers), re-created on
 * the other side with core's createVolume so geometry is validated and the inverse recomputed.
 */
import { createVolume, type Volume, type VolumeMetadata, type VoxelArray } from '@corridor/core';

export interface VolumeMessage {
  data: VoxelArray;
  dims: [number, number, number];
  indexToPatient: Float64Array;
  meta: VolumeMetadata;
}

/** A message for v; with copy the voxels are copied so the sender keeps its own. */
export function volumeToMessage(v: Volume, copy: boolean): { msg: VolumeMessage; transfer: Transferable[] } {
  const data = copy ? (v.data.slice() as VoxelArray) : v.data;
  return {
    msg: {
      data,
      dims: [v.dims[0], v.dims[1], v.dims[2]],
      indexToPatient: Float64Array.from(v.indexToPatient),
      meta: { ...v.meta },
    },
    transfer: [data.buffer],
  };
}

export function volumeFromMessage(m: VolumeMessage): Volume {
  return createVolume({ data: m.data, dims: m.dims, indexToPatient: m.indexToPatient, meta: m.meta });
}
