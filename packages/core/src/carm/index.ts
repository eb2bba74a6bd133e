export * from './geometry.js';
export * from './views.js';
