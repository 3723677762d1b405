import { defineConfig } from 'vitest/config';

// Two projects: everything on the embedded SQLite store, and the integration suite again on PostgreSQL.
export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: { name: 'sqlite', include: ['src/**/*.test.ts', 'test/**/*.test.ts'], env: { POSTERN_TEST_STORE: 'sqlite' } },
      },
      {
        extends: true,
        test: {
          name: 'postgres',
          include: ['test/integration/**/*.test.ts'],
          exclude: ['test/integration/**/*.sqlite-only.test.ts'],
          env: { POSTERN_TEST_STORE: 'postgres' },
        },
      },
    ],
  },
});
