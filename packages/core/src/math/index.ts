export * from './mat4.js';
export * from './vec3.js';
export * from './optimize.js';
export * from './random.js';
