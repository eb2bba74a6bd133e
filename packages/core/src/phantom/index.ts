/** The synthetic pelvis phantom: anatomy, instruments, cement and ground truth (see README.md). */
export { generatePhantom, type GeneratedPhantom } from './generate.js';
export { PHANTOM_LABELS } from './labels.js';
export { gaussianKernel } from './ct.js';
export { FORAMEN_NAMES, SACRAL_SLOPE_DEG, type AnatomyVariant, type ForamenName } from './anatomy.js';
export * from './types.js';
