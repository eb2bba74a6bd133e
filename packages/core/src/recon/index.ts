export * from './scan.js';
export * from './spectrum.js';
export * from './acquire.js';
export * from './fdk.js';
export * from './cbct.js';
export * from './xa-run.js';
export * from './fdkWasm.js';
