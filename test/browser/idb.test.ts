/**
 * The IndexedDB checkpoint store and model cache in real headless Chromium
 * (the Node tests use an in-memory fake). src/io/idb-store.ts and
 * model-cache.ts are bundled for the page with rollup; each test gets a fresh
 * browser context (its own storage). "Crash" here is a tab closed in the
 * middle of a large write: IndexedDB must keep the previous value or the new
 * one whole, never a mix.
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startServer, type StaticServer } from './server.js';

const CHROME = process.env.CHROME_PATH ?? '/usr/bin/chromium';

// Without Chromium, browser.test.ts prints the loud notice and fails under MSN_REQUIRE_BROWSER=1.
describe.runIf(existsSync(CHROME))('IndexedDB storage in headless Chromium', () => {
  let browser: Browser;
  let server: StaticServer;

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'msn-idb-'));
    const { rollup } = await import('rollup');
    const typescript = (await import('@rollup/plugin-typescript')).default;
    const out = join(dir, 'out');
    const bundle = await rollup({
      input: { 'idb-store': 'src/io/idb-store.ts', 'model-cache': 'src/io/model-cache.ts' },
      plugins: [typescript({ tsconfig: './tsconfig.json', include: ['src/**/*.ts'], compilerOptions: { noEmit: false, declaration: false, declarationDir: undefined, rootDir: '.', outDir: out, sourceMap: false } })],
    });
    await bundle.write({ dir: out, format: 'es' });
    await bundle.close();
    writeFileSync(join(out, 'index.html'), '<!doctype html><meta charset="utf-8"><title>storage</title>');
    const { chromium } = await import('playwright-core');
    [browser, server] = await Promise.all([chromium.launch({ executablePath: CHROME }), startServer({ extra: { 'storage/': out } })]);
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  async function page(ctx: BrowserContext): Promise<Page> {
    const p = await ctx.newPage();
    await p.goto(server.url + 'storage/index.html');
    await p.evaluate(`Promise.all([import('./idb-store.js'), import('./model-cache.js')]).then(([a, b]) => { window.storage = { ...a, ...b }; })`);
    return p;
  }

  it('checkpoint store: put / get / has / list / delete, and the data survives a reload', async () => {
    const ctx = await browser.newContext();
    const p = await page(ctx);
    const r = await p.evaluate(`(async () => {
      const s = window.storage.createIdbCheckpointStore('ckpts');
      const bytes = new Uint8Array(3_000_000).map((_, i) => (i * 31) % 251);
      await s.put('latest', bytes.subarray(10, 2_000_010));
      await s.put('other', new Uint8Array([1, 2, 3]));
      const got = await s.get('latest');
      const same = got.length === 2_000_000 && got.every((v, i) => v === bytes[i + 10]);
      const listed = await s.list();
      await s.delete('other');
      return { same, listed, has: await s.has('other'), missing: (await s.get('nope')) === undefined, after: await s.list() };
    })()`);
    expect(r).toEqual({ same: true, listed: ['latest', 'other'], has: false, missing: true, after: ['latest'] });
    await p.reload();
    await p.evaluate(`Promise.all([import('./idb-store.js'), import('./model-cache.js')]).then(([a, b]) => { window.storage = { ...a, ...b }; })`);
    const back = await p.evaluate(`(async () => {
      const got = await window.storage.createIdbCheckpointStore('ckpts').get('latest');
      return got.length === 2_000_000 && got.every((v, i) => v === ((i + 10) * 31) % 251);
    })()`);
    expect(back).toBe(true);
    await ctx.close();
  });

  it('a tab closed during a 64 MB write leaves the old checkpoint or the new one, whole', async () => {
    const ctx = await browser.newContext();
    const outcomes: string[] = [];
    for (const [round, delayMs] of [0, 150, 600].entries()) {
      const p = await page(ctx);
      await p.evaluate(`(async () => {
        const s = window.storage.createIdbCheckpointStore('crash');
        if (!(await s.has('latest'))) await s.put('latest', new Uint8Array(1024).fill(1));
        s.put('latest', new Uint8Array(64 * 1024 * 1024).fill(${round + 2})); // not awaited: the tab closes now
      })()`);
      await new Promise((r) => setTimeout(r, delayMs)); // close at different points of the write
      await p.close({ runBeforeUnload: false });
      const q = await page(ctx);
      const seen = await q.evaluate(`(async () => {
        const v = await window.storage.createIdbCheckpointStore('crash').get('latest');
        const first = v[0];
        return { length: v.length, first, uniform: v.every((x) => x === first) };
      })()`) as { length: number; first: number; uniform: boolean };
      expect(seen.uniform).toBe(true);
      expect([1024, 64 * 1024 * 1024]).toContain(seen.length);
      outcomes.push(`${delayMs} ms: ${seen.length === 1024 ? 'old kept' : 'new written'}`);
      await q.close();
    }
    console.log(`tab closed during the write: ${outcomes.join(', ')}`);
    await ctx.close();
  });

  it('model cache: stores, lists and returns the exact bytes; delete removes', async () => {
    const ctx = await browser.newContext();
    const p = await page(ctx);
    const r = await p.evaluate(`(async () => {
      const c = window.storage.openModelCache({ dbName: 'models-test' });
      const manifest = { format: 'msn-web-model', version: 1, shards: [{ file: 'a.bin', bytes: 5, sha256: 'x' }] };
      await c.put('https://example.test/model.json', { manifest, shards: [new Uint8Array([5, 4, 3, 2, 1])] });
      const got = await c.get('https://example.test/model.json');
      const list = await c.list();
      const deleted = await c.delete('https://example.test/model.json');
      return { shard: Array.from(got.shards[0]), manifest: got.manifest, keys: list.map((e) => e.key), bytes: list[0].totalBytes, deleted, has: await c.has('https://example.test/model.json') };
    })()`);
    expect(r).toMatchObject({ shard: [5, 4, 3, 2, 1], keys: ['https://example.test/model.json'], bytes: 5, deleted: true, has: false });
    expect((r as { manifest: unknown }).manifest).toEqual({ format: 'msn-web-model', version: 1, shards: [{ file: 'a.bin', bytes: 5, sha256: 'x' }] });
    await ctx.close();
  });
});
