/**
 * Shared by the bundler tests (vite.test.ts, webpack.test.ts): an example
 * app copied to a temp folder with the packed tarball installed, headless
 * Chromium opening its page (examples/<app>/ write their result as JSON into
 * body[data-result]), and the checks every bundler must pass: wasm (never a
 * silent cpu fallback), the shipped model by name with progress in bytes,
 * embed, fitHead, predict and two pretraining steps, no failed request, and
 * no Node built-ins or Node worker in the output.
 */
import { cpSync, existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Browser, Request } from 'playwright-core';
import { ROOT, installOffline, packTarball, run } from '../package/pack.js';

export const CHROME = process.env.CHROME_PATH ?? '/usr/bin/chromium';
export const HAVE_CHROME = existsSync(CHROME);
const REQUIRED = process.env.MSN_REQUIRE_BROWSER === '1';
export const BUILT = existsSync(join(ROOT, 'dist/browser/index.js')) && existsSync(join(ROOT, 'dist/worker/msn.worker.js'));

export type AppResult = {
  ok: boolean; name?: string; message?: string; backend: string; host: string;
  backends: Record<string, { status: string; reason?: string }>; wasm: { simd: boolean; threads: boolean } | null;
  dim: number; featuresLength: number; featuresFinite: boolean; predicted: string[]; truth: string[];
  steps: number; lastLoss: number; afterLength: number; afterFinite: boolean; seconds: number;
  model: string | null; randomWeights: boolean; progress: [number, number][];
};
/** One page load: the app's result, console lines, failed and all requests (the page's and its workers'). */
export type PageRun = { result: AppResult; console: string[]; failed: string[]; requests: string[]; ms: number };

/** Every file under `dir`, as full paths. */
export function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

/** Without Chromium: a loud notice and a skipped (or, with MSN_REQUIRE_BROWSER=1, failing) test instead of the suite. */
export function noChromeSuite(name: string): void {
  if (HAVE_CHROME) return;
  const line = '!'.repeat(78);
  console.warn(
    `\n${line}\n!! ${name.toUpperCase()} BROWSER TEST SKIPPED: no Chromium at ${CHROME}.\n` +
      `!! Install it (apt-get install -y chromium) or set CHROME_PATH; MSN_REQUIRE_BROWSER=1 makes this a failure.\n${line}\n`,
  );
  describe(`${name} app`, () => {
    (REQUIRED ? it : it.skip)(`${REQUIRED ? 'FAILS' : 'SKIPPED'}: no Chromium at ${CHROME}`, () => {
      throw new Error(`MSN_REQUIRE_BROWSER=1 but there is no Chromium at ${CHROME} (apt-get install -y chromium, or set CHROME_PATH).`);
    });
  });
}

/** Named durations, printed by the suite's afterAll. */
export function stopwatch(): { timings: string[]; time: <T>(what: string, f: () => Promise<T>) => Promise<T> } {
  const timings: string[] = [];
  return {
    timings,
    async time(what, f) {
      const t0 = performance.now();
      try {
        return await f();
      } finally {
        timings.push(`${what}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      }
    },
  };
}

/**
 * `npm pack` into `tmp`, copy `examples/<example>` to `<tmp>/app` (without
 * node_modules and build output), point its msn-web dependency at the tarball
 * and install it: offline by default (npm's layout, dependencies and `extra`
 * packages linked from this repository), or a real `npm install` when `npm`.
 */
export async function installExample(
  example: string, tmp: string, opts: { npm: boolean; extra?: string[]; time: ReturnType<typeof stopwatch>['time'] },
): Promise<string> {
  const app = join(tmp, 'app');
  const tgz = await opts.time('npm pack', () => packTarball(tmp));
  cpSync(join(ROOT, 'examples', example), app, { recursive: true, filter: (src) => !/[\\/](node_modules|dist|dist-es)$/.test(src) });
  const pkg = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  pkg.dependencies['msn-web'] = `file:${tgz}`;
  writeFileSync(join(app, 'package.json'), JSON.stringify(pkg, null, 2));
  await opts.time(opts.npm ? 'npm install' : 'install (offline)', async () => {
    if (opts.npm) await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: app, maxBuffer: 64 << 20 });
    else await installOffline(app, tgz, opts.extra);
  });
  return app;
}

/** Headless Chromium at CHROME (QUIC off: the tests serve plain HTTP on 127.0.0.1). */
export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROME, args: ['--disable-quic'] });
}

/** afterAll: close the browser, remove the temp folder (kept with MSN_KEEP_TMP=1), print the timings. */
export async function finish(label: string, s: { browser?: Browser; tmp?: string; timings: string[] }): Promise<void> {
  await s.browser?.close();
  if (s.tmp && !process.env.MSN_KEEP_TMP) rmSync(s.tmp, { recursive: true, force: true });
  if (s.timings.length) console.log(`${label} timings:\n  ${s.timings.join('\n  ')}`);
}

/** Opens `url`, waits for body[data-result] and collects what the page and its workers did. */
export async function openApp(browser: Browser, url: string): Promise<PageRun> {
  const page = await browser.newPage();
  const consoleLines: string[] = [];
  const failed: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  const answered = new Set<Request>();
  page.on('request', (r) => requests.push(r.url()));
  page.on('response', (r) => {
    if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) failed.push(`${r.status()} ${r.url()}`);
    else answered.add(r.request());
  });
  page.on('requestfailed', (r) => {
    const why = r.failure()?.errorText;
    // Chromium sometimes reports a worker's fetch as aborted after its 200 response, once the script
    // has read the whole body (seen on model.json, crossOriginIsolated): the data arrived, nothing failed.
    if (why === 'net::ERR_ABORTED' && answered.has(r)) return;
    failed.push(`failed ${r.url()} (${why})`);
  });
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

/**
 * The app ran on wasm (SIMD) with the shipped model named 'msn-mnist-micro'
 * (its files fetched from the app's own assets, progress in bytes): embed,
 * fitHead, predict (>= 4 of 6 right) and two pretraining steps; no failed
 * request, none off the page's origin, no msn-web warning (a silent fallback), no second copy of
 * TensorFlow.js, no error.
 */
export function expectWorking(r: PageRun, label: string, timings: string[], host = 'browser-worker'): void {
  expect(r.result.ok, `${label}: ${r.result.name}: ${r.result.message}\n${r.console.join('\n')}`).toBe(true);
  expect(r.result.backend, JSON.stringify(r.result.backends)).toBe('wasm');
  expect(r.result.host).toBe(host);
  expect(r.result.wasm?.simd).toBe(true);
  expect(r.result.model).toBe('msn-mnist-micro');
  expect(r.result.randomWeights).toBe(false);
  const total = r.result.progress.at(-1)?.[1] ?? 0;
  expect(total).toBeGreaterThan(1e6);
  expect(r.result.progress[0]).toEqual([0, total]);
  expect(r.result.progress.at(-1)).toEqual([total, total]);
  // Vite names assets name-hash.ext, webpack (this example's config) name.hash.ext.
  expect(r.requests.some((u) => /\/(assets\/)?model([-.][\w-]+)?\.json$/.test(u)), `${label}: model.json was fetched`).toBe(true);
  expect(r.requests.some((u) => /\/weights-00000([-.][\w-]+)?\.bin$/.test(u)), `${label}: the weights were fetched`).toBe(true);
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
  // Nothing leaves the page's origin (no CDN for the .wasm files, the model or scripts).
  const origin = new URL(r.requests[0]).origin;
  expect(r.requests.filter((u) => /^(https?|wss?):/.test(u) && new URL(u).origin !== origin), `${label}: requests off ${origin}`).toEqual([]);
  expect(r.console.filter((l) => /msn-web:|already registered|^error|^pageerror/.test(l)), label).toEqual([]);
  expect(r.requests.some((u) => /tfjs-backend-wasm-(threaded-)?simd[^/]*\.wasm$/.test(u)), `${label}: a simd .wasm was fetched`).toBe(true);
  timings.push(`${label}: page ${(r.ms / 1000).toFixed(1)} s (app ${r.result.seconds.toFixed(1)} s)`);
}

/**
 * A bundler's output folder: no `node:` imports, no tfjs-core Node-only
 * require()s, no msn.node-worker.js (by name or reference). Returns the files
 * (relative, '/'-separated) with their sizes logged under `label`.
 */
export function expectBrowserOnlyOutput(out: string, label: string): string[] {
  const all = files(out).map((f) => f.slice(out.length + 1).replace(/\\/g, '/'));
  for (const f of all.filter((f) => f.endsWith('.js'))) {
    const text = readFileSync(join(out, f), 'utf8');
    expect(text.match(/["'`]node:[\w/]+["'`]/g), f).toBeNull();
    // tfjs-core's Node-only require()s are stripped (the wasm pthread source, a string, still names fs/worker_threads; it never runs here).
    expect(text.match(/\brequire\(["'`](node-fetch|util)["'`]\)/g), f).toBeNull();
  }
  expect(all.filter((f) => f.includes('node-worker'))).toEqual([]);
  for (const f of all) expect(readFileSync(join(out, f)).includes('msn.node-worker'), f).toBe(false);
  const sizes = all.map((f) => `${f}: ${(statSync(join(out, f)).size / 1024).toFixed(1)} KiB`);
  console.log(`${label} output:\n  ${sizes.join('\n  ')}`);
  return all;
}
