/**
 * Cost of the worker boundary: per-call overhead of tiny calls (ping), of a
 * transferred vs copied 32x3x28x28 float32 buffer, and of a real embed of 32
 * images (micro-p4-28, wasm), in-thread vs in a worker. Node (worker_threads,
 * built dist/) and, when Chromium is installed, the browser (module Worker,
 * dist/client.js served by test/browser/server.ts).
 *
 *   npm run build && npm run bench:worker [-- --calls 1000]
 */
import { existsSync } from 'node:fs';
import { startServer } from '../test/browser/server.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const CALLS = arg('calls', 1000);
const CHROME = process.env.CHROME_PATH ?? '/usr/bin/chromium';

type Row = { tinyCallMs: number; transferredBufferMs: number; copiedBufferMs: number; embed32Ms: number };

async function node(): Promise<Record<string, Row>> {
  const { createMsn } = (await import(new URL('../dist/index.js', import.meta.url).href)) as typeof import('../src/index.js');
  const out: Record<string, Row> = {};
  for (const worker of [false, true]) {
    const msn = await createMsn({ preset: 'micro-p4-28', backend: 'wasm', worker });
    for (let i = 0; i < 50; i++) await msn.ping();
    let t0 = performance.now();
    for (let i = 0; i < CALLS; i++) await msn.ping();
    const tiny = (performance.now() - t0) / CALLS;
    t0 = performance.now();
    for (let i = 0; i < CALLS; i++) await msn.ping(new Float32Array(32 * 3 * 28 * 28));
    const buf = (performance.now() - t0) / CALLS;
    t0 = performance.now();
    for (let i = 0; i < CALLS; i++) await msn.ping(new Float32Array(32 * 3 * 28 * 28), { transfer: false });
    const copy = (performance.now() - t0) / CALLS;
    const imgs = new Float32Array(32 * 28 * 28 * 3).fill(0.5);
    await msn.embed(imgs.slice(), { count: 32, width: 28, height: 28, channels: 3 });
    t0 = performance.now();
    for (let i = 0; i < 20; i++) await msn.embed(imgs.slice(), { count: 32, width: 28, height: 28, channels: 3 });
    const embed = (performance.now() - t0) / 20;
    out[worker ? 'worker' : 'inThread'] = { tinyCallMs: tiny, transferredBufferMs: buf, copiedBufferMs: copy, embed32Ms: embed };
    await msn.dispose();
  }
  return out;
}

async function browser(): Promise<Record<string, Row> | string> {
  if (!existsSync(CHROME)) return `skipped: no Chromium at ${CHROME}`;
  const { chromium } = await import('playwright-core');
  const server = await startServer();
  const b = await chromium.launch({ executablePath: CHROME, args: ['--disable-quic'] });
  try {
    const page = await b.newPage();
    await page.goto(server.url + 'harness.html');
    await page.waitForFunction(() => (window as unknown as { harnessReady?: boolean }).harnessReady === true);
    return (await page.evaluate((n) => (window as unknown as { msnHarness: { overhead(n: number): Promise<unknown> } }).msnHarness.overhead(n), CALLS)) as Record<string, Row>;
  } finally {
    await b.close();
    await server.close();
  }
}

function table(title: string, r: Record<string, Row> | string): void {
  console.log(`\n${title}`);
  if (typeof r === 'string') {
    console.log(`  ${r}`);
    return;
  }
  const f = (v: number) => v.toFixed(3).padStart(9);
  console.log('  where        tiny call   32x3x28x28 transferred   same, copied   embed(32) micro-p4-28 wasm');
  for (const [k, v] of Object.entries(r)) {
    console.log(`  ${k.padEnd(10)} ${f(v.tinyCallMs)} ms   ${f(v.transferredBufferMs)} ms          ${f(v.copiedBufferMs)} ms   ${f(v.embed32Ms)} ms`);
  }
  if (r.worker && r.inThread) {
    console.log(`  boundary cost per call: ${(r.worker.tinyCallMs - r.inThread.tinyCallMs).toFixed(3)} ms (tiny), ` +
      `${(r.worker.transferredBufferMs - r.inThread.transferredBufferMs).toFixed(3)} ms (transferred buffer), ` +
      `${(r.worker.embed32Ms - r.inThread.embed32Ms).toFixed(3)} ms (embed of 32 images)`);
  }
}

if (!existsSync(new URL('../dist/worker/msn.node-worker.js', import.meta.url))) {
  console.error('Build first: npm run build');
  process.exit(1);
}
console.log(`worker boundary overhead, ${CALLS} calls each (lower is better)`);
table('Node 20, worker_threads + comlink node adapter', await node());
table('Chromium, module Worker + comlink', await browser());
