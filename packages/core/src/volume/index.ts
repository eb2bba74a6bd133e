export * from './volume.js';
export * from './sample.js';
export * from './resample.js';
export * from './edt.js';
export * from './reslice.js';
export * from './coordinates.js';
export { smoothBinomial } from './morphology.js';
export * from './rigid-motion.js';
export * from './components.js';
