/**
 * The built dist/: files in place, no eval / new Function anywhere in the
 * browser bundles (they must run under `script-src 'self' 'wasm-unsafe-eval'`),
 * no bare imports in the standalone client or the worker bundle (a plain page
 * loads them without a bundler), the tfjs .wasm files next to the worker, and
 * tfjs-layers/converter/webgl kept out. Sizes are printed.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';

const DIST = fileURLToPath(new URL('../../dist/', import.meta.url));
const WORKER_DIR = join(DIST, 'worker');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

describe('dist/ bundle', () => {
  if (!existsSync(join(WORKER_DIR, 'msn.worker.js'))) {
    it('is built', () => {
      throw new Error('dist/ is not built: run `npm run build` (npm test builds it first).');
    });
    return;
  }
  // The Node workers (engine, pretraining replica) live next to the browser worker but never reach a browser.
  const nodeOnly = ['msn.node-worker.js', 'msn.train-worker.js'];
  const browserJs = [join(DIST, 'client.js'), ...files(WORKER_DIR).filter((f) => f.endsWith('.js') && !nodeOnly.some((n) => f.endsWith(n)))];

  it('has the library, both workers, the standalone client and the three wasm files', () => {
    for (const f of ['index.js', 'core.js', 'client.js', 'worker/msn.worker.js', 'worker/msn.node-worker.js', 'worker/msn.train-worker.js',
      'worker/tfjs-backend-wasm.wasm', 'worker/tfjs-backend-wasm-simd.wasm', 'worker/tfjs-backend-wasm-threaded-simd.wasm',
      'types/index.d.ts', 'types/client.d.ts']) {
      expect(existsSync(join(DIST, f)), f).toBe(true);
    }
  });

  it('contains no eval or new Function in the browser bundles', () => {
    for (const f of browserJs) {
      const text = readFileSync(f, 'utf8');
      expect(text.match(/\beval\s*\(|\bnew\s+Function\b|[^\w.$]Function\s*\(/g), f).toBeNull();
    }
  });

  it('has no bare module specifiers in the standalone client and the worker bundle', () => {
    for (const f of browserJs) {
      const text = readFileSync(f, 'utf8').replace(/\/\*[\s\S]*?\*\//g, ''); // JSDoc examples mention 'msn-web'
      const specs = [...text.matchAll(/(?:[}*]\s*from\s*|\bimport\s*\(\s*|^\s*import\s*)["']([^"']+)["']/gm)].map((m) => m[1]);
      // node: builtins appear only on code paths that run in Node.
      const bare = specs.filter((s) => !s.startsWith('./') && !s.startsWith('../') && !s.startsWith('node:'));
      expect(bare, f).toEqual([]);
    }
  });

  it('finds the worker relative to the module (sub-path hosting) and keeps training code lazy', () => {
    for (const f of ['index.js', 'client.js']) {
      expect(readFileSync(join(DIST, f), 'utf8')).toContain("new URL('./worker/msn.worker.js', import.meta.url)");
    }
    const worker = readFileSync(join(WORKER_DIR, 'msn.worker.js'), 'utf8');
    expect(worker).not.toMatch(/tfjs-layers|tfjs-converter|WebGLRenderingContext/);
    // The Pretrainer (and with it the train step) lives in a chunk loaded on the first pretrain() call.
    expect(worker).not.toContain('Pretraining stopped at step');
    expect(files(join(WORKER_DIR, 'chunks')).some((f) => readFileSync(f, 'utf8').includes('Pretraining stopped at step'))).toBe(true);
    const sizes = ['client.js', 'index.js', 'worker/msn.worker.js', ...files(join(WORKER_DIR, 'chunks')).map((p) => p.slice(DIST.length))]
      .map((f) => {
        const b = readFileSync(join(DIST, f));
        return `${f}: ${(b.length / 1024).toFixed(1)} KiB raw, ${(gzipSync(b, { level: 9 }).length / 1024).toFixed(1)} KiB gzip`;
      });
    console.log(`bundle sizes:\n  ${sizes.join('\n  ')}`);
  });
});
