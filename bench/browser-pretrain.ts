/**
 * Pretraining speed in headless Chromium (module Worker, dist/client.js,
 * tfjs-wasm): a plain page (one thread) against a crossOriginIsolated page
 * (COOP/COEP: tfjs-wasm's threaded build), micro-p4-28 at batch 64,
 * alternating rounds. Used by bench/speed.ts; needs `npm run build` and Chromium.
 */
import { existsSync } from 'node:fs';
import { startServer } from '../test/browser/server.js';

const CHROME = process.env.CHROME_PATH ?? '/usr/bin/chromium';

export interface BrowserPretrainRow {
  page: string;
  'img/s': number;
  threads: number;
}

export async function browserPretrain(rounds: number, steps: number): Promise<BrowserPretrainRow[] | string> {
  if (!existsSync(CHROME)) return `skipped: no Chromium at ${CHROME}`;
  if (!existsSync(new URL('../dist/client.js', import.meta.url))) return 'skipped: build first (npm run build)';
  const { chromium } = await import('playwright-core');
  const b = await chromium.launch({ executablePath: CHROME, args: ['--disable-quic'] });
  const servers = { plain: await startServer(), isolated: await startServer({ isolate: true }) };
  const rates: Record<string, number[]> = { plain: [], isolated: [] };
  let threads: Record<string, number> = {};
  try {
    for (let r = 0; r < rounds; r++) {
      for (const kind of ['plain', 'isolated'] as const) {
        const page = await b.newPage();
        await page.goto(servers[kind].url + 'harness.html');
        await page.waitForFunction(() => (window as unknown as { harnessReady?: boolean }).harnessReady === true);
        const res = (await page.evaluate((n) => (window as unknown as { msnHarness: { pretrainRate(n: number): Promise<unknown> } }).msnHarness.pretrainRate(n), steps)) as {
          imagesPerSec: number; wasm: { numThreads: number } | null;
        };
        rates[kind].push(res.imagesPerSec);
        threads = { ...threads, [kind]: res.wasm?.numThreads ?? 1 };
        await page.close();
      }
    }
  } finally {
    await b.close();
    await servers.plain.close();
    await servers.isolated.close();
  }
  const median = (xs: number[]) => [...xs].sort((a, c) => a - c)[Math.floor(xs.length / 2)];
  return (['plain', 'isolated'] as const).map((k) => ({
    page: k === 'plain' ? 'Chromium, plain page (one thread)' : 'Chromium, crossOriginIsolated (threaded wasm)',
    'img/s': Math.round(median(rates[k]) * 100) / 100,
    threads: threads[k],
  }));
}
