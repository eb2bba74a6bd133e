/** @corridor/core: pure computation. No DOM, no Node APIs (see packages/core/README.md). */
export * from './errors.js';
export * from './math/index.js';
export * from './volume/index.js';
export * from './io/index.js';
export * from './phantom/index.js';
export * from './plan/index.js';
export * from './carm/index.js';
export * from './drr/index.js';
export * from './verify/index.js';
export * from './register/index.js';
export * from './recon/index.js';
export * from './cement/index.js';
export * from './report/index.js';
export * from './pacs/index.js';
export * from './deid/index.js';
