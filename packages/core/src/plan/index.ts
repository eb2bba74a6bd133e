// Filled in by the plan module.
export {};
