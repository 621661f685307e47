import { configDefaults, defineConfig } from 'vitest/config';

/**
 * Test files whose agents select programs by executable (curl, python3): with TCP options on, such
 * an agent tags the calls of every curl on the host, another test's too, and another test's agent
 * reads the options it put on. They run alone, after the rest: `make test` runs both groups
 * (LOUPE_TESTS_ALONE=1 picks these).
 */
const ALONE = ['test/tcp-options.test.ts', 'test/agents-per-host.test.ts', 'test/live-selection.test.ts'];
const alone = process.env.LOUPE_TESTS_ALONE === '1';

export default defineConfig({
  test: {
    include: alone ? ALONE : ['src/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: alone ? configDefaults.exclude : [...configDefaults.exclude, ...ALONE],
    fileParallelism: !alone,
    testTimeout: 60_000,
    globalSetup: ['./test/global-setup.ts'],
    reporters: ['default', './test/summary-reporter.mts'],
  },
});
