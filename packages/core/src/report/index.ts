/** The procedure report: model (data in, structured report out) and its key images. */
export * from './model.js';
export * from './images.js';
