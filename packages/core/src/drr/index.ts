export * from './attenuation.js';
export * from './kernel.js';
export * from './drrVolume.js';
export * from './exposure.js';
export * from './fluoro.js';
export * from './wasm.js';
export * from './orientation.js';
export * from './annotate.js';
