import type { Command } from 'commander';

/** Registers this module's commands on the program. */
export function register(_program: Command): void {}
