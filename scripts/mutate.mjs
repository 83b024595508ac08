#!/usr/bin/env node
/**
 * `npm run mutate [-- <module>... [stryker options]]`: Stryker mutation
 * testing, one module at a time (pixels, heads, model, train, io; all of them
 * in that order when none is named; `heads:linear+knn` narrows a module to
 * some of its files, same tests). Scopes are in scripts/mutate-modules.mjs,
 * the Stryker options in stryker.config.mjs. Reports and the incremental
 * files go to reports/mutation/ (git-ignored). Extra arguments starting with
 * `-` go to `stryker run` (e.g. `--force` to ignore the incremental file).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, appendFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MODULES, ORDER } from './mutate-modules.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const names = args.filter((a) => !a.startsWith('-'));
const passThrough = args.filter((a) => a.startsWith('-'));
for (const n of names) {
  if (!MODULES[n.split(':')[0]]) {
    console.error(`Unknown module "${n}". Modules: ${ORDER.join(', ')} (or module:file+file, e.g. heads:linear+knn).`);
    process.exit(2);
  }
}
const run = names.length > 0 ? names : ORDER;
const strykerBin = join(root, 'node_modules', '@stryker-mutator', 'core', 'bin', 'stryker.js');
if (!existsSync(strykerBin)) {
  console.error('Stryker is not installed: run `npm ci` first.');
  process.exit(2);
}
mkdirSync(join(root, 'reports', 'mutation'), { recursive: true });

function sh(cmd, cmdArgs, env = process.env) {
  return spawnSync(cmd, cmdArgs, { cwd: root, stdio: 'inherit', env });
}

const summary = [];
let failed = false;
for (const name of run) {
  const [modName, files] = name.split(':');
  const mod = MODULES[modName];
  const dir = mod.mutate[0].split('/').filter((p) => !p.includes('*') && !p.endsWith('.ts')).join('/');
  const scope = files ? files.split('+').map((f) => `${dir}/${f}.ts`) : mod.mutate;
  if (mod.needsDist && !existsSync(join(root, 'dist', 'worker', 'msn.node-worker.js'))) {
    console.log(`[mutate] ${name}: building dist/ first (a covering test loads it)`);
    if (sh('npm', ['run', 'build']).status !== 0) process.exit(1);
  }
  const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).stdout?.trim() ?? '?';
  const dirty = spawnSync('git', ['status', '--porcelain', '--', ...scope.map((g) => g.replace(/\*\*.*$/, ''))], {
    cwd: root,
    encoding: 'utf8',
  }).stdout?.trim();
  const started = new Date();
  console.log(`[mutate] ${name}: ${scope.join(' ')} at ${commit}${dirty ? ' (+ uncommitted changes in scope)' : ''}, ${started.toISOString()}`);
  const env = {
    ...process.env,
    MSN_MUTATE_MODULE: name,
    MSN_MUTATE_TESTS: mod.tests.join(','),
  };
  const r = sh(process.execPath, [strykerBin, 'run', 'stryker.config.mjs', ...passThrough], env);
  const minutes = (Date.now() - started.getTime()) / 60000;
  let line = `${name}: exit ${r.status}, ${minutes.toFixed(1)} min, commit ${commit}${dirty ? '+dirty' : ''}`;
  const report = join(root, 'reports', 'mutation', `${name.replace(/[:+]/g, '-')}.json`);
  if (r.status === 0 && existsSync(report)) {
    const counts = {};
    for (const f of Object.values(JSON.parse(readFileSync(report, 'utf8')).files)) {
      for (const m of f.mutants) counts[m.status] = (counts[m.status] ?? 0) + 1;
    }
    const k = counts.Killed ?? 0;
    const t = counts.Timeout ?? 0;
    const s = counts.Survived ?? 0;
    const nc = counts.NoCoverage ?? 0;
    const score = (100 * (k + t)) / Math.max(1, k + t + s + nc);
    line += `; killed ${k}, timeout ${t}, survived ${s}, no coverage ${nc}, errors ${(counts.RuntimeError ?? 0) + (counts.CompileError ?? 0)}, ignored ${counts.Ignored ?? 0}; score ${score.toFixed(2)} %`;
  }
  if (r.status !== 0) failed = true;
  summary.push(line);
  appendFileSync(join(root, 'reports', 'mutation', 'runs.log'), `${started.toISOString()} ${line}\n`);
  console.log(`[mutate] ${line}`);
}
console.log(`\n[mutate] summary\n${summary.join('\n')}`);
process.exit(failed ? 1 : 0);
