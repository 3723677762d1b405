import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Integration files each start their own gateway on port 0; two run at once on a 2-core machine.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
