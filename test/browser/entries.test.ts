/**
 * The built entries keep the line between inference and training: what
 * `import ... from 'msn-web'` (the client) and 'msn-web/core' load, in Node
 * (dist/*.js) and through a bundler (dist/browser/), holds no training code;
 * 'msn-web/train' holds it. "Load" is the entry's static import closure: the
 * file and every relative module it imports or re-exports, followed through
 * the chunks. Dynamic import() is not followed: that code loads on demand
 * (the client's in-thread engine, and the pretraining it starts, are such
 * chunks). As test/browser/bundle.test.ts does for the worker bundle, the
 * check is on the built text: a declaration or message of each piece of
 * training code.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// MSN_DIST: another build to check (e.g. one from before the entries were split, to see this test fail).
const DIST = process.env.MSN_DIST ? resolve(process.env.MSN_DIST) + '/' : fileURLToPath(new URL('../../dist/', import.meta.url));

/** Training code, each by what the built text cannot lose (the library builds are not minified). */
const TRAINING: Record<string, RegExp> = {
  AdamW: /\bclass AdamW\b|optimizer state: step must be an integer/,
  trainStep: /\bfunction trainStep(Async)?\b/,
  sinkhorn: /\bfunction sinkhorn\b/,
  Pretrainer: /\bclass Pretrainer\b|Pretraining stopped at step/,
  // tfjs's gradient registrations: only code that differentiates loads them.
  gradients: /tfjs-gradients\.js|register_all_gradients/,
};

/** Relative specifiers of the static imports and re-exports in a module's text (not import()). */
export function staticImports(code: string): string[] {
  const text = code.replace(/\/\*[\s\S]*?\*\//g, ''); // JSDoc examples name modules too
  const found = text.matchAll(/(?:^|[;}\n])\s*(?:import|export)\s*(?:[^'"();]*?\bfrom\s*)?['"](\.{1,2}\/[^'"]+)['"]/g);
  return [...found].map((m) => m[1]);
}

/** The entry and every file its static imports reach, as paths relative to dist/. */
function closure(entry: string): string[] {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const spec of staticImports(readFileSync(file, 'utf8'))) visit(resolve(dirname(file), spec));
  };
  visit(join(DIST, entry));
  return [...seen].map((f) => relative(DIST, f));
}

/** Which training markers the closure of `entry` holds, with the file each was found in. */
function trainingIn(entry: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const file of closure(entry)) {
    const text = readFileSync(join(DIST, file), 'utf8');
    for (const [name, marker] of Object.entries(TRAINING)) if (marker.test(text)) (out[name] ??= []).push(file);
  }
  return out;
}

describe('staticImports', () => {
  it('finds imports, re-exports and side-effect imports, not import() or bare specifiers', () => {
    const code = [
      "import { a } from './a.js';",
      "import * as b from '../b.js';export { c } from './c.js';",
      "import './d.js';",
      "import {\n  e,\n  f,\n} from './ef.js';",
      "const g = await import('./g.js');",
      "import * as tf from '@tensorflow/tfjs-core';",
      "/** import { h } from './h.js'; */",
    ].join('\n');
    expect(staticImports(code)).toEqual(['./a.js', '../b.js', './c.js', './d.js', './ef.js']);
  });
});

describe('the built entries', () => {
  const entries = ['index.js', 'core.js', 'train.js', 'client.js', 'browser/index.js', 'browser/core.js', 'browser/train.js', 'browser/client.js'];
  if (!entries.every((f) => existsSync(join(DIST, f)))) {
    it('are built', () => {
      throw new Error('dist/ is not built: run `npm run build` (npm test builds it first).');
    });
    return;
  }

  for (const entry of ['index.js', 'core.js', 'client.js', 'browser/index.js', 'browser/core.js', 'browser/client.js']) {
    it(`${entry} and what it imports hold no training code`, () => {
      expect(trainingIn(entry)).toEqual({});
    });
  }

  for (const entry of ['train.js', 'browser/train.js']) {
    it(`${entry} holds the training code (so the checks above can fail)`, () => {
      expect(Object.keys(trainingIn(entry)).sort()).toEqual(Object.keys(TRAINING).sort());
    });
  }

  it('follows chunks: the main entry reaches the in-thread engine only through import()', () => {
    const index = readFileSync(join(DIST, 'index.js'), 'utf8');
    expect(index).toMatch(/import\('\.\/chunks\/engine-[\w-]+\.js'\)/);
    expect(closure('index.js').some((f) => f.startsWith('chunks/'))).toBe(false);
    // The browser core entry is many files: the closure walks them all.
    expect(closure('browser/core.js').length).toBeGreaterThan(20);
    expect(closure('browser/core.js')).toContain('browser/interop/import-msn.js');
  });
});
