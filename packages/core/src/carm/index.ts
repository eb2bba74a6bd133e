export * from './geometry.js';
export * from './views.js';
export * from './overlay.js';
export * from './pelvic-views.js';
