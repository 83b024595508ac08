// Stryker config for `npm run mutate` (scripts/mutate.mjs sets MSN_MUTATE_MODULE;
// see docs/TESTING.md). One module per run, concurrency 1.
import { MODULES } from './scripts/mutate-modules.mjs';

// "heads" = the whole module; "heads:linear+knn" = only src/heads/linear.ts and knn.ts
// (same tests), for runs that would otherwise take too long.
const name = process.env.MSN_MUTATE_MODULE ?? 'heads';
const [modName, files] = name.split(':');
const mod = MODULES[modName];
if (!mod) throw new Error(`Unknown mutate module "${modName}"; one of ${Object.keys(MODULES).join(', ')}.`);
const dir = mod.mutate[0].split('/').filter((p) => !p.includes('*') && !p.endsWith('.ts')).join('/');
const mutate = files ? files.split('+').map((f) => `${dir}/${f}.ts`) : mod.mutate;
const tag = name.replace(/[:+]/g, '-');
process.env.MSN_MUTATE_TESTS ??= mod.tests.join(',');

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutate.config.ts', related: true },
  mutate,
  coverageAnalysis: 'perTest',
  concurrency: 1,
  // Static mutants (module-level constants) re-run every covering test file
  // with a fresh module graph each: minutes apiece here. Reported as Ignored.
  ignoreStatic: true,
  // A shared 2-core machine: be generous before calling a mutant a timeout.
  timeoutMS: 15_000,
  timeoutFactor: 2,
  dryRunTimeoutMinutes: 15,
  incremental: true,
  incrementalFile: `reports/mutation/${tag}.incremental.json`,
  reporters: ['clear-text', 'progress-append-only', 'html', 'json'],
  htmlReporter: { fileName: `reports/mutation/${tag}.html` },
  jsonReporter: { fileName: `reports/mutation/${tag}.json` },
  clearTextReporter: { allowColor: false, logTests: false, reportMutants: true, reportScoreTable: true },
  ignorePatterns: ['/coverage', '/models/work*', '/.gl', '/tmp'],
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
};
