import { configDefaults, defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';

// Files whose checks count what a process manages in fixed time (kill-and-restart loops) or how much
// memory one process grows: a second test file beside them would change what they measure, so they run
// alone, after the rest.
const alone = [
  'packages/core/src/io/hostile.test.ts',
  'packages/node/src/io/load.test.ts',
  'packages/node/src/cli/plan-kill.test.ts',
  'packages/node/src/server/case-kill.test.ts',
];

export default defineConfig({
  resolve: {
    alias: { '@corridor/core': fileURLToPath(new URL('./packages/core/src/index.ts', import.meta.url)) },
  },
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two files at a time even on two cores: much of the suite waits on child processes, Chromium,
    // servers and worker threads, and vitest's default (cores - 1) would leave one core idle.
    maxWorkers: 2,
    minWorkers: 1,
    projects: [
      {
        extends: true,
        test: {
          name: 'shared',
          include: ['packages/*/src/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...alone],
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'alone',
          include: alone,
          poolOptions: { forks: { singleFork: true } },
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
