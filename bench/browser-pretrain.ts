/**
 * Pretraining speed in headless Chromium (module Worker, dist/client.js,
 * tfjs-wasm), micro-p4-28 at batch 64, alternating rounds: a plain page (one
 * thread), a crossOriginIsolated page (COOP/COEP: tfjs-wasm's threaded
 * build) and the isolated page with `pretrain({ workers })` (data-parallel
 * replicas in Web Workers, one per core). Used by bench/speed.ts; needs
 * `npm run build` and Chromium.
 */
import { existsSync } from 'node:fs';
import { startServer } from '../test/browser/server.js';

const CHROME = process.env.CHROME_PATH ?? '/usr/bin/chromium';

export interface BrowserPretrainRow {
  page: string;
  'img/s': number;
  threads: number;
}

type Kind = 'plain' | 'isolated' | 'workers';

export async function browserPretrain(rounds: number, steps: number, workers: number): Promise<BrowserPretrainRow[] | string> {
  if (!existsSync(CHROME)) return `skipped: no Chromium at ${CHROME}`;
  if (!existsSync(new URL('../dist/client.js', import.meta.url))) return 'skipped: build first (npm run build)';
  const { chromium } = await import('playwright-core');
  const b = await chromium.launch({ executablePath: CHROME, args: ['--disable-quic'] });
  const servers = { plain: await startServer(), isolated: await startServer({ isolate: true }) };
  const kinds: Kind[] = ['plain', 'isolated', 'workers'];
  const rates: Record<Kind, number[]> = { plain: [], isolated: [], workers: [] };
  let threads: Partial<Record<Kind, number>> = {};
  try {
    for (let r = 0; r < rounds; r++) {
      for (const kind of kinds) {
        const page = await b.newPage();
        await page.goto(servers[kind === 'plain' ? 'plain' : 'isolated'].url + 'harness.html');
        await page.waitForFunction(() => (window as unknown as { harnessReady?: boolean }).harnessReady === true);
        const w = kind === 'workers' ? workers : 1;
        const res = (await page.evaluate(([n, w]) => (window as unknown as { msnHarness: { pretrainRate(n: number, b: number, w: number): Promise<unknown> } }).msnHarness.pretrainRate(n, 64, w), [steps, w])) as {
          imagesPerSec: number; wasm: { numThreads: number } | null;
        };
        rates[kind].push(res.imagesPerSec);
        threads = { ...threads, [kind]: kind === 'workers' ? w : res.wasm?.numThreads ?? 1 };
        await page.close();
      }
    }
  } finally {
    await b.close();
    await servers.plain.close();
    await servers.isolated.close();
  }
  const median = (xs: number[]) => [...xs].sort((a, c) => a - c)[Math.floor(xs.length / 2)];
  const names: Record<Kind, string> = {
    plain: 'Chromium, plain page (one thread)',
    isolated: 'Chromium, crossOriginIsolated (threaded wasm)',
    workers: `Chromium, crossOriginIsolated, pretrain({ workers: ${workers} })`,
  };
  return kinds.map((k) => ({ page: names[k], 'img/s': Math.round(median(rates[k]) * 100) / 100, threads: threads[k] ?? 1 }));
}
