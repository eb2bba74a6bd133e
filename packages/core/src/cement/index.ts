export * from './cement.js';
