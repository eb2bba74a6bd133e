// Filled in by the drr module.
export {};
