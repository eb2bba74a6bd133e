// Filled in by the phantom module.
export {};
