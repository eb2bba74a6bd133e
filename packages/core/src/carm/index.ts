// Filled in by the carm module.
export {};
