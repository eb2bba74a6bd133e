export * from './attenuation.js';
export * from './kernel.js';
export * from './drrVolume.js';
