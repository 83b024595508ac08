/**
 * Vitest config for Stryker runs only (`npm run mutate`, see docs/TESTING.md).
 * The test files come from MSN_MUTATE_TESTS (comma-separated globs, set by
 * scripts/mutate.mjs); browser and WebGPU tests are always excluded. Stryker's
 * vitest runner replaces the pool with a single worker thread.
 */
import { configDefaults, defineConfig } from 'vitest/config';

const tests = (process.env.MSN_MUTATE_TESTS ?? '').split(',').map((s) => s.trim()).filter(Boolean);

export default defineConfig({
  test: {
    include: tests.length > 0 ? tests : ['test/**/*.test.ts'],
    exclude: [...configDefaults.exclude, 'test/browser/**', 'test/webgpu/**', '.stryker-tmp/**'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
