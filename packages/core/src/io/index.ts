export * from './types.js';
export * from './dicom/index.js';
