export * from './cement.js';
export * from './modality.js';
