export * from './attenuation.js';
export * from './kernel.js';
export * from './drrVolume.js';
export * from './fluoro.js';
export * from './wasm.js';
