// Stryker config for `npm run mutate` (scripts/mutate.mjs sets MSN_MUTATE_MODULE;
// see docs/TESTING.md). One module per run, concurrency 1.
import { MODULES } from './scripts/mutate-modules.mjs';

const name = process.env.MSN_MUTATE_MODULE ?? 'heads';
const mod = MODULES[name];
if (!mod) throw new Error(`Unknown mutate module "${name}"; one of ${Object.keys(MODULES).join(', ')}.`);
process.env.MSN_MUTATE_TESTS ??= mod.tests.join(',');

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutate.config.ts', related: true },
  mutate: mod.mutate,
  coverageAnalysis: 'perTest',
  concurrency: 1,
  // A shared 2-core machine: be generous before calling a mutant a timeout.
  timeoutMS: 15_000,
  timeoutFactor: 2,
  dryRunTimeoutMinutes: 15,
  incremental: true,
  incrementalFile: `reports/mutation/${name}.incremental.json`,
  reporters: ['clear-text', 'progress-append-only', 'html', 'json'],
  htmlReporter: { fileName: `reports/mutation/${name}.html` },
  jsonReporter: { fileName: `reports/mutation/${name}.json` },
  clearTextReporter: { allowColor: false, logTests: false, reportMutants: true, reportScoreTable: true },
  ignorePatterns: ['/coverage', '/models/work*', '/.gl', '/tmp'],
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
};
