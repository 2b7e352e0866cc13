import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One migrated template database for every test server (see the file).
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Three test processes even on 2 cores: most tests wait on I/O (PostgreSQL,
    // child processes, timers), so the PostgreSQL run takes ~180 s instead of ~320 s.
    maxWorkers: 3,
    minWorkers: 1,
    reporters: ['default'],
  },
});
