/**
 * A web developer's webpack 5 build: `npm pack` this package, install the
 * tarball into a temp copy of examples/webpack-app (`import { createMsn }
 * from 'msn-web'`, a webpack.config.js with no loaders and nothing about
 * msn-web, no files copied from dist/ or models/), `webpack --mode
 * production` (webpack's CLI, as `npm run build` there), serve dist/ from a
 * sub-path and open it in headless Chromium. Asserts that webpack itself
 * emitted the worker, its lazy chunks, the .wasm files and the shipped
 * model's files, with no warning, no node:* imports and no msn.node-worker.js,
 * that TensorFlow.js stays off the main thread, and that the app runs on
 * wasm (never a silent cpu fallback) with the model named 'msn-mnist-micro'
 * and no request off the page's origin: embed, fitHead, predict and two
 * pretraining steps; also crossOriginIsolated (the threaded wasm binary
 * through webpack's minifier).
 *
 * Install: offline by default (the tarball extracted, its dependencies and
 * webpack/webpack-cli linked from this repository's node_modules);
 * MSN_WEBPACK_INSTALL=npm runs a real `npm install` (the example's pinned
 * webpack from the registry) instead.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { run } from '../package/pack.js';
import { BUILT, HAVE_CHROME, expectBrowserOnlyOutput, expectWorking, installExample, finish, launchChromium, noChromeSuite, openApp, stopwatch } from './app-harness.js';
import { startServer } from './server.js';

const NPM_INSTALL = process.env.MSN_WEBPACK_INSTALL === 'npm';

noChromeSuite('webpack');

describe.runIf(HAVE_CHROME)('a webpack 5 app importing msn-web (npm pack, webpack --mode production, Chromium)', () => {
  let tmp: string;
  let app: string;
  let browser: Browser;
  let buildLog = '';
  const { timings, time } = stopwatch();

  async function runApp(label: string, isolate: boolean) {
    const server = await startServer({ extra: { '': join(app, 'dist') }, isolate });
    try {
      const r = await openApp(browser, server.url);
      expectWorking(r, label, timings);
      expect(server.requests.every((p) => p.startsWith('/deep/sub/path/')), server.requests.join('\n')).toBe(true);
      return r;
    } finally {
      await server.close();
    }
  }

  beforeAll(async () => {
    if (!BUILT) throw new Error('dist/ is not built: run `npm run build` (npm test builds it first).');
    tmp = mkdtempSync(join(tmpdir(), 'msn-webpack-'));
    const launching = launchChromium();
    app = await installExample('webpack-app', tmp, { npm: NPM_INSTALL, extra: ['webpack', 'webpack-cli'], time });
    const built = await time('webpack build', () =>
      run(process.execPath, [join(app, 'node_modules/webpack/bin/webpack.js'), '--mode', 'production'], { cwd: app, maxBuffer: 64 << 20 }),
    );
    buildLog = built.stdout + built.stderr;
    browser = await launching;
  }, 120_000);

  afterAll(() => finish('webpack', { browser, tmp, timings }));

  it('builds without warnings or Node built-ins, and emits the worker, its chunks, the .wasm and the model files itself', () => {
    expect(buildLog).toMatch(/compiled successfully/);
    expect(buildLog).not.toMatch(/WARNING|ERROR|Module not found|Can't resolve/);
    const out = join(app, 'dist');
    const all = expectBrowserOnlyOutput(out, 'webpack');
    const read = (f: string) => readFileSync(join(out, f), 'utf8');
    for (const name of ['tfjs-backend-wasm', 'tfjs-backend-wasm-simd', 'tfjs-backend-wasm-threaded-simd']) {
      expect(all.some((f) => new RegExp(`^assets/${name}\\.[0-9a-f]+\\.wasm$`).test(f)), `${name}.wasm in ${all.join(', ')}`).toBe(true);
    }
    expect(all.some((f) => /^assets\/model\.[0-9a-f]+\.json$/.test(f)), `model.json in ${all.join(', ')}`).toBe(true);
    expect(all.some((f) => /^assets\/weights-00000\.[0-9a-f]+\.bin$/.test(f)), `weights-00000.bin in ${all.join(', ')}`).toBe(true);
    // The page's entry: small, no TensorFlow.js, starts the worker that webpack bundled (named by the worker's name option).
    const main = read('main.js');
    expect(main.length).toBeLessThan(100 * 1024);
    expect(main).not.toMatch(/IS_BROWSER|WASM_HAS_SIMD_SUPPORT|registerKernel/);
    expect(main).toMatch(/new Worker\(new URL\(/);
    expect(all.some((f) => /^msn-web\.[0-9a-f]+\.js$/.test(f)), 'the worker entry').toBe(true);
    // TensorFlow.js lives in a chunk of the worker, which names every emitted .wasm file; pretraining is a lazy chunk of its own.
    const js = all.filter((f) => f.endsWith('.js'));
    const tfjs = js.filter((f) => read(f).includes('WASM_HAS_SIMD_SUPPORT'));
    expect(tfjs).toHaveLength(1);
    for (const w of all.filter((f) => f.endsWith('.wasm'))) expect(read(tfjs[0]), `${tfjs[0]} refers to ${w}`).toContain(`"${w}"`);
    const pretraining = js.filter((f) => read(f).includes('Pretraining stopped at step'));
    expect(pretraining.length).toBeGreaterThan(0);
    expect(pretraining).not.toContain('main.js');
    expect(pretraining).not.toContain(tfjs[0]);
  });

  it('runs on wasm from a sub-path: embed, fitHead, predict, 2 pretraining steps in the worker, nothing off the origin', async () => {
    const r = await runApp('webpack', false);
    expect(r.result.backends.wasm.status).toBe('chosen');
    expect(r.result.wasm?.threads).toBe(false);
  });

  it("with COOP/COEP (crossOriginIsolated) runs the threaded wasm binary through webpack's minifier", async () => {
    const r = await runApp('webpack, crossOriginIsolated', true);
    expect(r.result.wasm?.threads).toBe(true);
    expect(r.requests.some((u) => /tfjs-backend-wasm-threaded-simd[^/]*\.wasm$/.test(u))).toBe(true);
  });
});
