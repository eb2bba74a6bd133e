/** The synthetic pelvis phantom: anatomy, instruments, cement and ground truth (see README.md). */
export { generatePhantom, PHANTOM_LABELS, gaussianKernel, type GeneratedPhantom } from './generate.js';
export { FORAMEN_NAMES, SACRAL_SLOPE_DEG, type AnatomyVariant, type ForamenName } from './anatomy.js';
export * from './types.js';
