export * from './model.js';
export * from './markups.js';
export * from './tools.js';
export * from './corridor-map.js';
export * from './bone-mask-presets.js';
export * from './analyze.js';
export * from './auto.js';
export * from './anatomy.js';
