/**
 * A web developer's first Vite build: `npm pack` this package, install the
 * tarball into a temp copy of examples/vite-app (which does
 * `import { createMsn } from 'msn-web'` and nothing else: no vite config, no
 * files copied into public/), `vite build`, `vite preview`, open it in
 * headless Chromium. Asserts that Vite itself emitted the worker, its chunks
 * and the .wasm files, that the output has no node:* imports and no
 * msn.node-worker.js, that TensorFlow.js stays off the main thread, and that
 * the app runs on wasm with the shipped model named as 'msn-mnist-micro'
 * (its files emitted by Vite too, loaded with progress in bytes): embed,
 * fitHead, predict and two pretraining steps (also with `worker: false`). The same app also runs crossOriginIsolated
 * (threaded wasm, after Vite's minifier), under `vite dev`, and with
 * `worker: { format: 'es' }` (lazy chunks as separate files).
 *
 * Install: offline by default, as npm would lay it out: the tarball is
 * extracted to node_modules/msn-web and its dependencies are linked from
 * this repository's node_modules (vite is this repository's too).
 * MSN_VITE_INSTALL=npm runs a real `npm install` of the tarball (and the
 * example's vite) from the registry instead.
 *
 * Without Chromium the suite prints a loud SKIPPED notice; with
 * MSN_REQUIRE_BROWSER=1 a missing browser is a failure.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { BUILT, HAVE_CHROME, expectBrowserOnlyOutput, expectWorking as expectWorkingIn, files, installExample, finish, launchChromium, noChromeSuite, openApp as openIn, stopwatch } from './app-harness.js';

const NPM_INSTALL = process.env.MSN_VITE_INSTALL === 'npm';

noChromeSuite('Vite');

describe.runIf(HAVE_CHROME)('a Vite app importing msn-web (npm pack, vite build, vite preview, Chromium)', () => {
  let tmp: string;
  let app: string;
  let browser: Browser;
  let vite: typeof import('vite');
  const warnings: string[] = [];
  const { timings, time } = stopwatch();

  async function build(outDir: string, extra: Record<string, unknown> = {}): Promise<void> {
    const logger = vite.createLogger('warn');
    const warn = logger.warn.bind(logger);
    logger.warn = (msg, opts) => {
      warnings.push(msg);
      warn(msg, opts);
    };
    await vite.build({ root: app, logLevel: 'warn', customLogger: logger, build: { outDir }, ...extra });
  }

  const openApp = (url: string) => openIn(browser, url);
  const expectWorking = (r: Awaited<ReturnType<typeof openApp>>, label: string, host?: string) => expectWorkingIn(r, label, timings, host);

  beforeAll(async () => {
    if (!BUILT) throw new Error('dist/ is not built: run `npm run build` (npm test builds it first).');
    vite = await import('vite');
    tmp = mkdtempSync(join(tmpdir(), 'msn-vite-'));
    const launching = launchChromium();
    app = await installExample('vite-app', tmp, { npm: NPM_INSTALL, time });
    await time('vite build', () => build('dist'));
    browser = await launching;
  }, 120_000);

  afterAll(() => finish('vite', { browser, tmp, timings }));

  it('builds without Node built-ins, and emits the worker and the .wasm files itself', () => {
    expect(warnings.filter((w) => /externalized for browser compatibility|node:|msn\.node-worker/.test(w))).toEqual([]);
    const out = join(app, 'dist');
    const all = expectBrowserOnlyOutput(out, 'vite');
    for (const name of ['tfjs-backend-wasm', 'tfjs-backend-wasm-simd', 'tfjs-backend-wasm-threaded-simd']) {
      expect(all.some((f) => new RegExp(`^assets/${name}-[\\w-]+\\.wasm$`).test(f)), `${name}.wasm in ${all.join(', ')}`).toBe(true);
    }
    // The shipped model's files, emitted by Vite (named in the worker with new URL(..., import.meta.url)).
    expect(all.some((f) => /^assets\/model-[\w-]+\.json$/.test(f)), `model.json in ${all.join(', ')}`).toBe(true);
    expect(all.some((f) => /^assets\/weights-00000-[\w-]+\.bin$/.test(f)), `weights-00000.bin in ${all.join(', ')}`).toBe(true);
    // The page's entry: small, no TensorFlow.js, starts the worker that Vite bundled.
    const html = readFileSync(join(out, 'index.html'), 'utf8');
    const entry = /<script type="module" crossorigin src="\/(assets\/index-[\w-]+\.js)"/.exec(html)?.[1];
    expect(entry, html).toBeTruthy();
    const entryJs = readFileSync(join(out, entry!), 'utf8');
    expect(entryJs.length).toBeLessThan(100 * 1024);
    expect(entryJs).not.toMatch(/IS_BROWSER|WASM_HAS_SIMD_SUPPORT|registerKernel/);
    expect(html).not.toMatch(/modulepreload/); // nothing else loads with the page
    const worker = /new Worker\(new URL\([`'"]\/(assets\/msn\.worker-[\w-]+\.js)[`'"]/.exec(entryJs)?.[1];
    expect(worker, 'the entry starts a Vite-bundled worker').toBeTruthy();
    const workerJs = readFileSync(join(out, worker!), 'utf8');
    expect(workerJs).toMatch(/WASM_HAS_SIMD_SUPPORT/); // TensorFlow.js lives here
    for (const w of all.filter((f) => f.endsWith('.wasm'))) expect(workerJs, `${worker} refers to ${w}`).toContain(`/${w}`);
  });

  it('runs under vite preview on wasm: embed, fitHead, predict, 2 pretraining steps (in the worker, and with worker: false)', async () => {
    const server = await vite.preview({ root: app, logLevel: 'warn', preview: { port: 0, host: '127.0.0.1' } });
    try {
      expectWorking(await openApp(server.resolvedUrls!.local[0]), 'vite preview');
      expectWorking(await openApp(`${server.resolvedUrls!.local[0]}?worker=0`), 'vite preview, worker: false', 'in-thread');
    } finally {
      await new Promise<void>((r) => server.httpServer.close(() => r()));
    }
  });

  it('with COOP/COEP (crossOriginIsolated) runs the threaded wasm binary through Vite\'s minifier', async () => {
    const headers = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
    const server = await vite.preview({ root: app, logLevel: 'warn', preview: { port: 0, host: '127.0.0.1', headers } });
    try {
      const r = await openApp(server.resolvedUrls!.local[0]);
      expectWorking(r, 'vite preview, crossOriginIsolated');
      expect(r.result.wasm?.threads).toBe(true);
      expect(r.requests.some((u) => /tfjs-backend-wasm-threaded-simd[^/]*\.wasm$/.test(u))).toBe(true);
    } finally {
      await new Promise<void>((r) => server.httpServer.close(() => r()));
    }
  });

  it('runs under vite dev (one copy of the worker module and of TensorFlow.js)', async () => {
    const server = await time('vite dev start', async () => {
      const s = await vite.createServer({ root: app, logLevel: 'warn', server: { port: 0, host: '127.0.0.1' } });
      return s.listen();
    });
    try {
      expectWorking(await openApp(server.resolvedUrls!.local[0]), 'vite dev');
    } finally {
      await server.close();
    }
  });

  it("with worker: { format: 'es' }, keeps pretraining code in lazy chunks and still runs", async () => {
    await time("vite build (worker.format 'es')", () => build('dist-es', { worker: { format: 'es' } }));
    const out = join(app, 'dist-es');
    const js = files(out).filter((f) => f.endsWith('.js'));
    const worker = js.find((f) => /msn\.worker-[\w-]+\.js$/.test(f) && readFileSync(f, 'utf8').includes('WASM_HAS_SIMD_SUPPORT'));
    expect(worker).toBeTruthy();
    expect(readFileSync(worker!, 'utf8')).not.toContain('Pretraining stopped at step');
    expect(js.some((f) => f !== worker && readFileSync(f, 'utf8').includes('Pretraining stopped at step'))).toBe(true);
    const server = await vite.preview({ root: app, logLevel: 'warn', build: { outDir: 'dist-es' }, preview: { port: 0, host: '127.0.0.1' } });
    try {
      expectWorking(await openApp(server.resolvedUrls!.local[0]), "vite preview (worker.format 'es')");
    } finally {
      await new Promise<void>((r) => server.httpServer.close(() => r()));
    }
  });
});
