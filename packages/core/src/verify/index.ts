/** Placement verification: instruments found in a scan, matched to the plan, deviations and verdicts. */
export * from './metal.js';
export * from './along.js';
export * from './verify.js';
export * from './register-scan.js';
export * from './register-scan.js';
export * from './foramina.js';
