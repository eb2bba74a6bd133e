/** The procedure report: model (data in, structured report out), its key images, their PNG, the request. */
export * from './model.js';
export * from './images.js';
export * from './compose.js';
export * from './png.js';
export * from './request.js';
