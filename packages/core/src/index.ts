/** @corridor/core: pure computation. No DOM, no Node APIs (see packages/core/README.md). */
export * from './errors.js';
export * from './math/index.js';
export * from './volume/index.js';
