/** Rigid 3D/3D registration (see README.md). */
export * from './rigid.js';
export * from './rigid-transform.js';
export { LevelMetric, DEFAULT_HISTOGRAM_BINS, type MetricKind, type LevelImage, type SampleSet } from './metric.js';
export { buildPyramid, detectFillValue, withNoDataAsNaN } from './pyramid.js';
export * from './fov.js';
export * from './transform-io.js';
export * from './apply.js';
export * from './register2d.js';
