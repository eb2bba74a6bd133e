export * from './types.js';
export * from './dicom/index.js';
export * from './nifti.js';
export * from './nrrd.js';
export * from './metaimage.js';
export * from './sniff.js';
export * from './xa-frame.js';
export { inflateCapped, inflateInto, gzipDeclaredSize, isGzip, MAX_DEFLATE_RATIO } from './inflate.js';
export { checkVoxelClaim, DEFAULT_MAX_VOXEL_BYTES, MAX_AXIS_VOXELS, type VoxelLimits } from './rawdata.js';
