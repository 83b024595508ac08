/**
 * The SDK in real headless Chromium (Debian's /usr/bin/chromium or
 * CHROME_PATH, driven by playwright-core), served from a sub-path by
 * test/browser/server.ts, with no bundler: pages import dist/client.js and
 * the engine runs in dist/worker/msn.worker.js.
 *
 * Tolerances against the cpu backend (the reference), the same for wasm and
 * WebGPU:
 * - features before training: abs 1e-5. Same float32 math, other summation
 *   order (XNNPACK on wasm, WGSL shaders on WebGPU); features are ~0.05 in
 *   size, measured diff ~1e-8 on both.
 * - per-step losses: rel 1e-4. The loss passes through a tau = 0.1 softmax
 *   (amplifies differences 10x) and Sinkhorn; measured ~3e-6 on both.
 * - features after 3 steps: abs 1e-4. AdamW's first updates are ~lr * sign(g),
 *   so a gradient component near 0 can flip with float noise and move its
 *   weight by up to 2 lr (lr <= 7.5e-4 here); the features come from the
 *   target encoder, which moves by (1 - momentum) = 0.004 of that (<= 6e-6
 *   per weight); measured ~1e-8.
 * - head probabilities: abs 1e-3 (L-BFGS on features that differ by the
 *   above); measured ~1e-6.
 *
 * Without Chromium the suite prints a loud SKIPPED notice; with
 * MSN_REQUIRE_BROWSER=1 a missing browser is a failure.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { startServer, type ServerOptions, type StaticServer } from './server.js';

const CHROME = process.env.CHROME_PATH ?? '/usr/bin/chromium';
const HAVE_CHROME = existsSync(CHROME);
const REQUIRED = process.env.MSN_REQUIRE_BROWSER === '1';
const BUILT = existsSync(fileURLToPath(new URL('../../dist/worker/msn.worker.js', import.meta.url)));
const ARGS = ['--disable-quic', '--enable-unsafe-webgpu'];

type Scenario = {
  backend: string; host: string; before: number[]; after: number[]; afterReload: number[]; resizedFinite: boolean;
  losses: number[]; steps: number; totalStep: number; predLabels: string[]; predProbs: number[]; pred2Probs: number[];
  headBytes: number; ckptBytes: number; memBefore: number; memAfter: number; afterDispose: string;
  timings: Record<string, number>;
};
type PlainResult = {
  ok: boolean; name?: string; message?: string; backend?: string; host?: string; crossOriginIsolated?: boolean;
  backends?: Record<string, { status: string; reason?: string }>; wasm?: { simd: boolean; threads: boolean; numThreads: number } | null;
  wasmKernels?: { active: boolean; reason: string } | null;
  dim?: number; finite?: boolean; transferred?: boolean; violations: string[];
};

function maxAbsDiff(a: number[], b: number[]): number {
  expect(a.length).toBe(b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
}

if (!HAVE_CHROME) {
  const line = '!'.repeat(78);
  console.warn(
    `\n${line}\n!! BROWSER TESTS SKIPPED: no Chromium at ${CHROME}.\n` +
      `!! Install it (apt-get install -y chromium) or set CHROME_PATH; MSN_REQUIRE_BROWSER=1 makes this a failure.\n${line}\n`,
  );
}

if (!HAVE_CHROME) {
  describe('browser tests', () => {
    (REQUIRED ? it : it.skip)(`${REQUIRED ? 'FAILS' : 'SKIPPED'}: no Chromium at ${CHROME}`, () => {
      throw new Error(`MSN_REQUIRE_BROWSER=1 but there is no Chromium at ${CHROME} (apt-get install -y chromium, or set CHROME_PATH).`);
    });
  });
}

describe.runIf(HAVE_CHROME)('in headless Chromium', () => {
  let browser: Browser;
  let server: StaticServer;
  const timings: string[] = [];

  async function openPage(srv: StaticServer, path: string): Promise<{ page: Page; offsite: string[] }> {
    const page = await browser.newPage();
    const offsite: string[] = [];
    const origin = new URL(srv.url).origin;
    page.on('request', (r) => {
      if (!r.url().startsWith(origin) && !r.url().startsWith('blob:') && !r.url().startsWith('data:')) offsite.push(r.url());
    });
    page.on('pageerror', (e) => console.error('[page error]', e.message));
    await page.goto(srv.url + path);
    return { page, offsite };
  }

  async function plain(opts: ServerOptions, query = ''): Promise<PlainResult & { offsite: string[]; ms: number }> {
    const srv = Object.keys(opts).length ? await startServer(opts) : server;
    const t0 = performance.now();
    const { page, offsite } = await openPage(srv, `plain.html${query}`);
    try {
      await page.waitForSelector('body[data-result]', { state: 'attached', timeout: 120_000 });
      const result = JSON.parse((await page.getAttribute('body', 'data-result')) ?? '{}') as PlainResult;
      return { ...result, offsite, ms: performance.now() - t0 };
    } finally {
      await page.close();
      if (srv !== server) await srv.close();
    }
  }

  let harness: Page;
  const run = async <T,>(fn: string, ...args: unknown[]): Promise<T> => {
    const t0 = performance.now();
    const out = await harness.evaluate(([f, a]) => (window as unknown as Record<string, Record<string, (...x: unknown[]) => Promise<unknown>>>).msnHarness[f as string](...(a as unknown[])), [fn, args] as const);
    timings.push(`${fn}(${args.map((a) => JSON.stringify(a)).join(', ')}): ${((performance.now() - t0) / 1000).toFixed(2)} s`);
    return out as T;
  };

  beforeAll(async () => {
    if (!BUILT) throw new Error('dist/ is not built: run `npm run build` (npm test builds it first).');
    const { chromium } = await import('playwright-core');
    // models/ beside dist/ as in the installed package (the worker bundle names the shipped model's files relative to itself).
    const models = fileURLToPath(new URL('../../models', import.meta.url));
    [browser, server] = await Promise.all([chromium.launch({ executablePath: CHROME, args: ARGS }), startServer({ extra: { 'models/': models } })]);
    harness = (await openPage(server, 'harness.html')).page;
    await harness.waitForFunction(() => (window as unknown as { harnessReady?: boolean }).harnessReady === true);
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (timings.length) console.log(`browser timings:\n  ${timings.join('\n  ')}`);
  });

  it('a plain page imports dist/ (no bundler), embeds in a worker and reports its backend; no off-site requests', async () => {
    const r = await plain({});
    timings.push(`plain page, auto backend: ${(r.ms / 1000).toFixed(2)} s`);
    expect(r.ok, r.message).toBe(true);
    expect(r.host).toBe('browser-worker');
    expect(r.dim).toBe(64);
    expect(r.finite).toBe(true);
    expect(r.transferred).toBe(true); // the ImageData buffer went to the worker
    // Chromium's only adapter here is SwiftShader (software): 'auto' passes it by for wasm, saying why.
    expect(r.backend).toBe('wasm');
    expect(r.backends?.wasm.status).toBe('chosen');
    expect(r.backends?.webgpu.status).toBe('rejected');
    expect(r.backends?.webgpu.reason).toMatch(/SwiftShader.*software/i);
    expect(r.offsite).toEqual([]);
    expect(r.violations).toEqual([]);
    console.log(`plain page: backend ${r.backend}; ${JSON.stringify(r.backends)}`);
  });

  /** Checks that do not need a reference: counts, exact round trips, no leaks, dispose. */
  function checkScenario(r: Scenario, backend: string): void {
    expect(r.backend).toBe(backend);
    expect(r.host).toBe('browser-worker');
    expect(r.steps).toBe(3);
    expect(r.resizedFinite).toBe(true);
    expect(r.afterReload).toEqual(r.after); // checkpoint round trip is exact
    expect(r.pred2Probs).toEqual(r.predProbs); // head save/load is exact
    expect(r.memAfter).toBe(r.memBefore); // no tensor leak in the worker
    expect(r.afterDispose).toBe('MsnDisposedError');
    expect(r.headBytes).toBeGreaterThan(100);
    expect(r.ckptBytes).toBeGreaterThan(10_000);
  }

  /** Agreement with the cpu backend (tolerances in the module comment). */
  function compareWithCpu(r: Scenario, cpu: Scenario): string {
    const before = maxAbsDiff(r.before, cpu.before);
    const loss = Math.max(...r.losses.map((l, i) => Math.abs(l - cpu.losses[i]) / Math.abs(cpu.losses[i])));
    const after = maxAbsDiff(r.after, cpu.after);
    const probs = maxAbsDiff(r.predProbs, cpu.predProbs);
    expect(r.losses).toHaveLength(cpu.losses.length);
    expect(before).toBeLessThan(1e-5);
    expect(loss).toBeLessThan(1e-4);
    expect(after).toBeLessThan(1e-4);
    expect(probs).toBeLessThan(1e-3);
    expect(r.predLabels).toEqual(cpu.predLabels);
    return `${r.backend} vs cpu: features ${before.toExponential(1)}, losses (rel) ${loss.toExponential(1)}, trained features ${after.toExponential(1)}, head probabilities ${probs.toExponential(1)}`;
  }

  let cpuScenario: Scenario | undefined;
  const cpuReference = async (): Promise<Scenario> => {
    if (!cpuScenario) {
      cpuScenario = await run<Scenario>('scenario', 'cpu');
      checkScenario(cpuScenario, 'cpu');
      timings.push(`  cpu: ${JSON.stringify(cpuScenario.timings)}`);
    }
    return cpuScenario;
  };

  for (const [backend, what] of [['wasm', 'wasm'], ['webgpu', 'webgpu (SwiftShader adapter)']] as const) {
    it(`${what} in the worker matches the cpu backend: embed, 3 pretraining steps, head fit, save/load`, async () => {
      const cpu = await cpuReference();
      const r = await run<Scenario>('scenario', backend);
      checkScenario(r, backend);
      console.log(compareWithCpu(r, cpu));
      timings.push(`  ${backend}: ${JSON.stringify(r.timings)}`);
    });
  }

  it('cache: a named model loads from the network once, then from IndexedDB with the same features', async () => {
    const fetched = () => server.requests.filter((p) => p.includes('/models/msn-mnist-micro/')).length;
    const before = fetched();
    const [first, second] = await run<{ fromCache: boolean; name: string; features: number[] }[]>('cachedModel', `msn-cache-test-${Date.now()}`);
    expect(first.fromCache).toBe(false);
    expect(second.fromCache).toBe(true);
    expect(second.name).toBe('msn-mnist-micro');
    expect(fetched() - before).toBe(2); // model.json and its one shard, for the first load only
    expect(second.features).toEqual(first.features);
  });

  it('errors keep their kind across the boundary; abort, dispose and dead workers behave', async () => {
    const r = await run<Record<string, { name: string; message?: string; isBackendError?: boolean } | string | number>>('errors');
    const e = (k: string) => r[k] as { name: string; message?: string; isBackendError?: boolean };
    expect(e('badWasm').name).toBe('MsnBackendError');
    expect(e('badWasm').isBackendError).toBe(true);
    expect(e('missingWorker').name).toBe('MsnWorkerError');
    expect(e('badShape').name).toBe('MsnShapeError');
    expect(e('badRange').name).toBe('MsnValueError');
    expect(e('badHead').name).toBe('MsnValueError');
    expect(e('abort').name).toBe('AbortError');
    expect(r.stepsAtAbort).toBeGreaterThanOrEqual(2);
    expect(r.stepsAtAbort).toBeLessThan(6);
    expect(['AbortError', 'MsnDisposedError']).toContain(e('pendingAtDispose').name);
    expect(e('afterDispose').name).toBe('MsnDisposedError');
    expect(r.againBackend).toBe('wasm');
  });

  it('in-thread (the page imports the worker bundle) and in-worker wasm results are identical', async () => {
    const r = await run<{ inThread: number[]; worker: number[]; hosts: string[] }>('inThreadVsWorker');
    expect(r.hosts).toEqual(['in-thread', 'browser-worker']);
    expect(r.worker).toEqual(r.inThread);
  });

  it("works under a strict CSP: script-src 'self' 'wasm-unsafe-eval'", async () => {
    const r = await plain({ csp: "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'" }, '?backend=wasm');
    timings.push(`plain page under strict CSP, wasm: ${(r.ms / 1000).toFixed(2)} s`);
    expect(r.ok, r.message).toBe(true);
    expect(r.backend).toBe('wasm');
    expect(r.wasmKernels).toEqual({ active: true, reason: 'kernels.wasm' }); // linked under the CSP too
    expect(r.violations).toEqual([]);
    expect(r.offsite).toEqual([]);
  });

  it('pretrain({ workers: 2 }) trains over two Web Workers in a crossOriginIsolated page, and refuses clearly elsewhere', async () => {
    type Side = { steps?: number[]; totalStep?: number; features?: number[]; checkpoint?: number; error?: { name: string; message: string }; embedsAfter?: number; pretraining: unknown };
    type Result = { crossOriginIsolated: boolean; par: Side; one?: { features: number[] }; resumed?: number[] };
    const srv = await startServer({ isolate: true });
    const { page } = await openPage(srv, 'harness.html');
    try {
      await page.waitForFunction(() => (window as unknown as { harnessReady?: boolean }).harnessReady === true);
      const r = (await page.evaluate(() => (window as unknown as { msnHarness: { parallelPretrain(w: number): Promise<unknown> } }).msnHarness.parallelPretrain(2))) as Result;
      expect(r.crossOriginIsolated).toBe(true);
      expect(r.par.error).toBeUndefined();
      expect(r.par.steps).toEqual([1, 2, 3]);
      expect(r.par.totalStep).toBe(3);
      expect(r.par.pretraining).toEqual({ step: 3, totalSteps: 3, batchSize: 8, workers: 2 });
      expect(r.par.features!.every(Number.isFinite)).toBe(true);
      // BatchNorm statistics per replica (as per GPU): the run differs from one thread's, so the replicas trained it.
      expect(r.par.features).not.toEqual(r.one!.features);
      // The encoder in use is the replicas' state: its checkpoint, loaded elsewhere, gives the same features.
      expect(r.resumed).toEqual(r.par.features);
    } finally {
      await page.close();
      await srv.close();
    }
    // Without COOP/COEP there is no SharedArrayBuffer: a typed error that says what to do; the engine still embeds.
    const plainPage = (await run<Result>('parallelPretrain', 2)).par;
    expect(plainPage.error?.name).toBe('MsnConfigError');
    expect(plainPage.error?.message).toMatch(/needs SharedArrayBuffer: in a browser, serve the page crossOriginIsolated/);
    expect(plainPage.embedsAfter).toBe(3 * 16); // 3 images x width 16 (the harness TINY)
    expect(plainPage.pretraining).toBeNull();
  });

  it('with COOP/COEP the page is crossOriginIsolated and wasm loads its threaded SIMD binary', async () => {
    const r = await plain({ isolate: true }, '?backend=wasm');
    timings.push(`plain page with COOP/COEP, wasm: ${(r.ms / 1000).toFixed(2)} s`);
    expect(r.ok, r.message).toBe(true);
    expect(r.crossOriginIsolated).toBe(true);
    expect(r.wasm?.threads).toBe(true);
    expect(r.wasm?.simd).toBe(true);
    // The threaded build keeps its memory in its glue: msn-web's kernels stand aside and say why.
    expect(r.wasmKernels?.active).toBe(false);
    expect(r.wasmKernels?.reason).toMatch(/threaded wasm build keeps its memory private/);
    console.log(`isolated wasm: ${JSON.stringify(r.wasm)}`);
  });
});
