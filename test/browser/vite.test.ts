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
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { ROOT, installOffline, packTarball, run } from '../package/pack.js';

const EXAMPLE = join(ROOT, 'examples/vite-app');
const CHROME = process.env.CHROME_PATH ?? '/usr/bin/chromium';
const HAVE_CHROME = existsSync(CHROME);
const REQUIRED = process.env.MSN_REQUIRE_BROWSER === '1';
const BUILT = existsSync(join(ROOT, 'dist/browser/index.js')) && existsSync(join(ROOT, 'dist/worker/msn.worker.js'));
const NPM_INSTALL = process.env.MSN_VITE_INSTALL === 'npm';

type AppResult = {
  ok: boolean; name?: string; message?: string; backend: string; host: string;
  backends: Record<string, { status: string; reason?: string }>; wasm: { simd: boolean; threads: boolean } | null;
  dim: number; featuresLength: number; featuresFinite: boolean; predicted: string[]; truth: string[];
  steps: number; lastLoss: number; afterLength: number; afterFinite: boolean; seconds: number;
  model: string | null; randomWeights: boolean; progress: [number, number][];
};
type PageRun = { result: AppResult; console: string[]; failed: string[]; requests: string[]; ms: number };

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

if (!HAVE_CHROME) {
  const line = '!'.repeat(78);
  console.warn(
    `\n${line}\n!! VITE BROWSER TEST SKIPPED: no Chromium at ${CHROME}.\n` +
      `!! Install it (apt-get install -y chromium) or set CHROME_PATH; MSN_REQUIRE_BROWSER=1 makes this a failure.\n${line}\n`,
  );
  describe('Vite app', () => {
    (REQUIRED ? it : it.skip)(`${REQUIRED ? 'FAILS' : 'SKIPPED'}: no Chromium at ${CHROME}`, () => {
      throw new Error(`MSN_REQUIRE_BROWSER=1 but there is no Chromium at ${CHROME} (apt-get install -y chromium, or set CHROME_PATH).`);
    });
  });
}

describe.runIf(HAVE_CHROME)('a Vite app importing msn-web (npm pack, vite build, vite preview, Chromium)', () => {
  let tmp: string;
  let app: string;
  let browser: Browser;
  let vite: typeof import('vite');
  const warnings: string[] = [];
  const timings: string[] = [];
  const time = async <T,>(what: string, f: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await f();
    } finally {
      timings.push(`${what}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  };

  async function build(outDir: string, extra: Record<string, unknown> = {}): Promise<void> {
    const logger = vite.createLogger('warn');
    const warn = logger.warn.bind(logger);
    logger.warn = (msg, opts) => {
      warnings.push(msg);
      warn(msg, opts);
    };
    await vite.build({ root: app, logLevel: 'warn', customLogger: logger, build: { outDir }, ...extra });
  }

  async function openApp(url: string): Promise<PageRun> {
    const page = await browser.newPage();
    const consoleLines: string[] = [];
    const failed: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
    page.on('request', (r) => requests.push(r.url()));
    page.on('response', (r) => {
      if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) failed.push(`${r.status()} ${r.url()}`);
    });
    page.on('requestfailed', (r) => failed.push(`failed ${r.url()}`));
    const t0 = performance.now();
    try {
      await page.goto(url);
      await page.waitForSelector('body[data-result]', { state: 'attached', timeout: 90_000 });
      const result = JSON.parse((await page.getAttribute('body', 'data-result')) ?? '{}') as AppResult;
      return { result, console: consoleLines, failed, requests, ms: performance.now() - t0 };
    } finally {
      await page.close();
    }
  }

  function expectWorking(r: PageRun, label: string, host = 'browser-worker'): void {
    expect(r.result.ok, `${label}: ${r.result.name}: ${r.result.message}\n${r.console.join('\n')}`).toBe(true);
    expect(r.result.backend, JSON.stringify(r.result.backends)).toBe('wasm');
    expect(r.result.host).toBe(host);
    expect(r.result.wasm?.simd).toBe(true);
    // The shipped model, by name: its files come from the app's own assets, with progress in bytes.
    expect(r.result.model).toBe('msn-mnist-micro');
    expect(r.result.randomWeights).toBe(false);
    const total = r.result.progress.at(-1)?.[1] ?? 0;
    expect(total).toBeGreaterThan(1e6);
    expect(r.result.progress[0]).toEqual([0, total]);
    expect(r.result.progress.at(-1)).toEqual([total, total]);
    expect(r.requests.some((u) => /\/(assets\/)?model(-[\w-]+)?\.json$/.test(u)), `${label}: model.json was fetched`).toBe(true);
    expect(r.requests.some((u) => /\/weights-00000(-[\w-]+)?\.bin$/.test(u)), `${label}: the weights were fetched`).toBe(true);
    expect(r.result.dim).toBe(96);
    expect(r.result.featuresLength).toBe(16 * r.result.dim);
    expect(r.result.featuresFinite).toBe(true);
    expect(r.result.predicted).toHaveLength(6);
    for (const l of r.result.predicted) expect(['h', 'v']).toContain(l);
    const correct = r.result.predicted.filter((l, i) => l === r.result.truth[i]).length;
    expect(correct, `${label}: predicted ${r.result.predicted.join('')}, truth ${r.result.truth.join('')}`).toBeGreaterThanOrEqual(4);
    expect(r.result.steps).toBe(2);
    expect(Number.isFinite(r.result.lastLoss)).toBe(true);
    expect(r.result.afterLength).toBe(6 * r.result.dim);
    expect(r.result.afterFinite).toBe(true);
    expect(r.failed, label).toEqual([]);
    // No silent cpu fallback, no second copy of tfjs (vite dev), no errors.
    expect(r.console.filter((l) => /msn-web:|already registered|^error|^pageerror/.test(l)), label).toEqual([]);
    expect(r.requests.some((u) => /tfjs-backend-wasm-(threaded-)?simd[^/]*\.wasm$/.test(u)), `${label}: a simd .wasm was fetched`).toBe(true);
    timings.push(`${label}: page ${(r.ms / 1000).toFixed(1)} s (app ${r.result.seconds.toFixed(1)} s)`);
  }

  beforeAll(async () => {
    if (!BUILT) throw new Error('dist/ is not built: run `npm run build` (npm test builds it first).');
    vite = await import('vite');
    const { chromium } = await import('playwright-core');
    tmp = mkdtempSync(join(tmpdir(), 'msn-vite-'));
    app = join(tmp, 'app');
    const launching = chromium.launch({ executablePath: CHROME, args: ['--disable-quic'] });
    const tgz = await time('npm pack', () => packTarball(tmp));
    cpSync(EXAMPLE, app, { recursive: true, filter: (src) => !/[\\/](node_modules|dist|dist-es)$/.test(src) });
    const pkg = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    pkg.dependencies['msn-web'] = `file:${tgz}`;
    writeFileSync(join(app, 'package.json'), JSON.stringify(pkg, null, 2));
    await time(NPM_INSTALL ? 'npm install' : 'install (offline)', async () => {
      if (NPM_INSTALL) await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: app, maxBuffer: 64 << 20 });
      else await installOffline(app, tgz);
    });
    await time('vite build', () => build('dist'));
    browser = await launching;
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    if (tmp && !process.env.MSN_KEEP_TMP) rmSync(tmp, { recursive: true, force: true });
    if (timings.length) console.log(`vite timings:\n  ${timings.join('\n  ')}`);
  });

  it('builds without Node built-ins, and emits the worker and the .wasm files itself', () => {
    expect(warnings.filter((w) => /externalized for browser compatibility|node:|msn\.node-worker/.test(w))).toEqual([]);
    const out = join(app, 'dist');
    const all = files(out).map((f) => f.slice(out.length + 1).replace(/\\/g, '/'));
    const js = all.filter((f) => f.endsWith('.js'));
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
    // No Node built-ins and no Node worker anywhere in the output.
    for (const f of js) {
      const text = readFileSync(join(out, f), 'utf8');
      expect(text.match(/["'`]node:[\w/]+["'`]/g), f).toBeNull();
      // tfjs-core's Node-only require()s are stripped (the wasm pthread source, a string, still names fs/worker_threads; it never runs here).
      expect(text.match(/\brequire\(["'`](node-fetch|util)["'`]\)/g), f).toBeNull();
    }
    expect(all.filter((f) => f.includes('node-worker'))).toEqual([]);
    for (const f of all) expect(readFileSync(join(out, f)).includes('msn.node-worker'), f).toBe(false);
    const sizes = all.map((f) => `${f}: ${(statSync(join(out, f)).size / 1024).toFixed(1)} KiB`);
    console.log(`vite output:\n  ${sizes.join('\n  ')}`);
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
