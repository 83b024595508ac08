/**
 * model-loader.ts cases found by mutation testing (issue #18, docs/TESTING.md):
 * URL resolution, the cache paths (key, reload, a damaged or throwing entry,
 * a failing put), fetch failures and their messages, what is sent with each
 * request, shard URLs from `fileUrls` (own properties only), the download
 * concurrency, oversized or non-UTF-8 manifests with and without a body
 * stream, and named-file sources. A small random-weight model (a few kB)
 * stands in for a real one.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { VitConfig } from '../../src/model/config.js';
import { initPrototypes, initWeights } from '../../src/model/params.js';
import { type EncodedModel, encodeModel } from '../../src/io/model-format.js';
import { type LoadProgress, fetchModel, loadModel, manifestUrl, progressTracker, readModelFiles } from '../../src/io/model-loader.js';
import { MemoryModelCache } from '../../src/io/model-cache.js';
import { catchAsyncError, catchError } from './container-test-helpers.js';

const CFG: VitConfig = { imgSize: 4, patchSize: 2, inChannels: 1, embedDim: 8, depth: 1, numHeads: 2, mlpRatio: 1, hiddenDim: 8, outputDim: 8, numPrototypes: 4 };
let cached: EncodedModel | undefined;
async function model(): Promise<EncodedModel> {
  cached ??= await encodeModel({ config: CFG, ...initWeights(CFG, 3), prototypes: initPrototypes(CFG, 4), meta: { m: 1 } }, { shardBytes: 1024 });
  return cached;
}
const BASE = 'https://cdn.example/models/m/';
const te = new TextEncoder();

type Reply = Response | (() => Response | Promise<Response>);
/** A fake server: URL -> reply; records the URL and init of each request and the peak number of requests in flight. */
function server(files: Map<string, Reply>, delayMs = 0) {
  const calls: { url: string; init: RequestInit | undefined }[] = [];
  let inFlight = 0;
  const stats = { peak: 0 };
  const fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    calls.push({ url, init });
    inFlight++;
    stats.peak = Math.max(stats.peak, inFlight);
    try {
      if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
      const r = files.get(url);
      if (!r) return new Response('nope', { status: 404, statusText: 'Not Found' });
      return typeof r === 'function' ? await r() : r.clone();
    } finally {
      inFlight--;
    }
  }) as typeof globalThis.fetch;
  return { fetch, calls, stats };
}
async function filesFor(e: EncodedModel, base = BASE): Promise<Map<string, Reply>> {
  const m = new Map<string, Reply>([[`${base}model.json`, new Response(JSON.stringify(e.manifest))]]);
  e.manifest.shards.forEach((s, i) => m.set(base + s.file, new Response(e.shards[i].slice())));
  return m;
}
/** A Response-like object without a body stream (older fetch polyfills). */
function noBody(bytes: Uint8Array, headers: Record<string, string> = {}): Response {
  return {
    ok: true,
    status: 200,
    statusText: 'OK',
    body: null,
    headers: new Headers(headers),
    text: async () => new TextDecoder().decode(bytes),
    arrayBuffer: async () => bytes.slice().buffer,
  } as unknown as Response;
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('manifestUrl', () => {
  it('absolute strings and URLs, folders get model.json, files are kept; the input URL is not changed', () => {
    expect(manifestUrl(BASE).href).toBe(`${BASE}model.json`);
    expect(manifestUrl(`${BASE}other.json`).href).toBe(`${BASE}other.json`);
    expect(manifestUrl('HTTPS://cdn.example/x/').href).toBe('https://cdn.example/x/model.json');
    expect(manifestUrl('blob+x.y-z:opaque').href).toBe('blob+x.y-z:opaque');
    const u = new URL(BASE);
    const r = manifestUrl(u);
    expect(r.href).toBe(`${BASE}model.json`);
    expect(u.href).toBe(BASE);
    expect(r).not.toBe(u);
    expect(manifestUrl(new URL(`${BASE}model.json`)).href).toBe(`${BASE}model.json`);
  });

  it('relative strings resolve against location.href, and need one', () => {
    const e = catchError(() => manifestUrl('models/m/'));
    expect(e.name).toBe('MsnConfigError');
    expect(e.message).toBe("'models/m/' is not an absolute URL. In Node, load a local folder with loadModelFromDirectory() from 'model-loader-node'.");
    vi.stubGlobal('location', { href: 'https://site.example/app/index.html' });
    expect(manifestUrl('models/m/').href).toBe('https://site.example/app/models/m/model.json');
    expect(manifestUrl('/m/model.json').href).toBe('https://site.example/m/model.json');
    // A leading digit is not a scheme: '1x:' is a relative path.
    expect(manifestUrl('1x:y').href).toBe('https://site.example/app/1x:y');
    vi.stubGlobal('location', {});
    expect(catchError(() => manifestUrl('m/')).name).toBe('MsnConfigError');
  });
});

describe('progressTracker', () => {
  it('reports 0 first, then running sums with the file name', () => {
    const ev: LoadProgress[] = [];
    const tick = progressTracker(10, (p) => ev.push(p));
    tick(4, 'a');
    tick(6, 'b');
    expect(ev).toEqual([
      { loadedBytes: 0, totalBytes: 10 },
      { loadedBytes: 4, totalBytes: 10, file: 'a' },
      { loadedBytes: 10, totalBytes: 10, file: 'b' },
    ]);
    expect(() => progressTracker(1)(1)).not.toThrow();
  });
});

describe('loadModel: cache', () => {
  it('a memory source is cached only under a cacheKey; a cache hit reports full progress and a validated manifest', async () => {
    const e = await model();
    const cache = new MemoryModelCache();
    expect((await loadModel(e, { cache })).from).toBe('memory');
    expect(await cache.list()).toEqual([]);
    expect((await loadModel(e, { cache, cacheKey: 'k' })).from).toBe('memory');
    expect((await cache.list()).map((x) => x.key)).toEqual(['k']);
    const ev: LoadProgress[] = [];
    const hit = await loadModel({ manifest: null, shards: [] }, { cache, cacheKey: 'k', onProgress: (p) => ev.push(p) });
    expect(hit.from).toBe('cache');
    const total = e.shards.reduce((a, s) => a + s.length, 0);
    expect(ev).toEqual([{ loadedBytes: total, totalBytes: total }]);
    expect(hit.manifest).toEqual(e.manifest);
    expect(Object.isFrozen(hit.manifest.config)).toBe(true);
  });

  it('cacheKey wins over the URL; reload skips the cached copy but refreshes it', async () => {
    const e = await model();
    const srv = server(await filesFor(e));
    const cache = new MemoryModelCache();
    await loadModel(BASE, { fetch: srv.fetch, cache, cacheKey: 'mine' });
    expect((await cache.list()).map((x) => x.key)).toEqual(['mine']);
    const before = srv.calls.length;
    expect((await loadModel(BASE, { fetch: srv.fetch, cache, cacheKey: 'mine' })).from).toBe('cache');
    expect(srv.calls.length).toBe(before);
    const t0 = (await cache.list())[0].savedAt;
    await new Promise((r) => setTimeout(r, 5));
    expect((await loadModel(BASE, { fetch: srv.fetch, cache, cacheKey: 'mine', reload: true })).from).toBe('network');
    expect(srv.calls.length).toBeGreaterThan(before);
    expect((await cache.list())[0].savedAt).toBeGreaterThan(t0);
    // Without a cacheKey the manifest URL is the key.
    await loadModel(BASE, { fetch: srv.fetch, cache });
    expect((await cache.list()).map((x) => x.key).sort()).toEqual([`${BASE}model.json`, 'mine']);
  });

  it('a cached entry that is not a valid model is deleted and reloaded; an error that is not a format error is rethrown', async () => {
    const e = await model();
    const deleted: string[] = [];
    const put: string[] = [];
    const fakeCache = (entry: unknown) => ({
      list: async () => [],
      has: async () => true,
      get: async () => entry as EncodedModel,
      put: async (k: string) => void put.push(k),
      delete: async (k: string) => (deleted.push(k), true),
    });
    const r = await loadModel(e, { cache: fakeCache({ manifest: e.manifest, shards: 'x' }), cacheKey: 'k' });
    expect(r.from).toBe('memory');
    expect(deleted).toEqual(['k']);
    expect(put).toEqual(['k']);
    const boom = {
      get manifest(): unknown {
        throw new TypeError('cache backend broke');
      },
      shards: [],
    };
    const err = await catchAsyncError(() => loadModel(e, { cache: fakeCache(boom), cacheKey: 'k2' }));
    expect(err.name).toBe('TypeError');
    expect(deleted).toEqual(['k']);
  });

  it('a cache whose put fails does not fail the load', async () => {
    const e = await model();
    const cache = new MemoryModelCache();
    cache.put = async () => {
      throw new Error('quota');
    };
    expect((await loadModel(e, { cache, cacheKey: 'k' })).from).toBe('memory');
  });

  it('an already aborted signal stops before anything is read', async () => {
    const ac = new AbortController();
    ac.abort();
    const srv = server(new Map());
    const err = await catchAsyncError(() => loadModel(BASE, { fetch: srv.fetch, signal: ac.signal }));
    expect(err.name).toBe('AbortError');
    expect(err.message).toBe('Model loading was cancelled.');
    expect(srv.calls).toEqual([]);
  });
});

describe('fetchModel', () => {
  it('without a fetch implementation says so', async () => {
    vi.stubGlobal('fetch', undefined);
    const err = await catchAsyncError(() => fetchModel(new URL(`${BASE}model.json`)));
    expect(err.name).toBe('MsnConfigError');
    expect(err.message).toBe('No fetch() available; pass { fetch }.');
  });

  it('sends requestInit and the signal with every request, manifest first', async () => {
    const e = await model();
    const srv = server(await filesFor(e));
    const ac = new AbortController();
    await fetchModel(new URL(`${BASE}model.json`), { fetch: srv.fetch, requestInit: { credentials: 'include', headers: { 'x-k': '1' } }, signal: ac.signal, concurrency: 1 });
    expect(srv.calls.map((c) => c.url)).toEqual([`${BASE}model.json`, ...e.manifest.shards.map((s) => BASE + s.file)]);
    for (const c of srv.calls) expect(c.init).toEqual({ credentials: 'include', headers: { 'x-k': '1' }, signal: ac.signal });
  });

  it('network and HTTP failures name the URL; a failure after abort is an AbortError', async () => {
    const u = new URL(`${BASE}model.json`);
    const cause = new TypeError('network down');
    const failing = (async () => {
      throw cause;
    }) as unknown as typeof fetch;
    const e1 = await catchAsyncError(() => fetchModel(u, { fetch: failing }));
    expect(e1.name).toBe('MsnFormatError');
    expect(e1.message).toBe(`msn-web model: could not fetch ${u.href}: network down`);
    expect((e1 as Error & { cause?: unknown }).cause).toBe(cause);
    const ac = new AbortController();
    const abortingFetch = (async () => {
      ac.abort();
      throw new Error('aborted');
    }) as unknown as typeof fetch;
    expect((await catchAsyncError(() => fetchModel(u, { fetch: abortingFetch, signal: ac.signal }))).name).toBe('AbortError');
    const e2 = await catchAsyncError(() => fetchModel(u, { fetch: server(new Map()).fetch }));
    expect(e2.message).toBe(`msn-web model: fetching ${u.href} failed: HTTP 404 Not Found`);
    expect((e2 as Error & { cause?: unknown }).cause).toBeUndefined();
    const e3 = await catchAsyncError(() => fetchModel(u, { fetch: server(new Map([[u.href, new Response('x', { status: 500 })]])).fetch }));
    expect(e3.message).toBe(`msn-web model: fetching ${u.href} failed: HTTP 500`);
  });

  it('fileUrls maps shard files to other URLs (relative to the manifest), own properties only', async () => {
    const e = await model();
    const files = await filesFor(e);
    const first = e.manifest.shards[0].file;
    files.delete(BASE + first);
    files.set('https://cdn.example/assets/w0-abc.bin', new Response(e.shards[0].slice()));
    const srv = server(files);
    const r = await fetchModel(new URL(`${BASE}model.json`), { fetch: srv.fetch, fileUrls: { [first]: '../../assets/w0-abc.bin' } });
    expect(Array.from(r.shards[0])).toEqual(Array.from(e.shards[0]));
    expect(srv.calls.map((c) => c.url)).toContain('https://cdn.example/assets/w0-abc.bin');
    const inherited = Object.create({ [first]: '../../assets/w0-abc.bin' }) as Record<string, string>;
    const srv2 = server(await filesFor(e));
    await fetchModel(new URL(`${BASE}model.json`), { fetch: srv2.fetch, fileUrls: inherited });
    expect(srv2.calls.map((c) => c.url)).toContain(BASE + first);
  });

  it('downloads at most `concurrency` shards at once (default 4, at least 1), each exactly once', async () => {
    const e = await model();
    const n = e.manifest.shards.length;
    expect(n).toBeGreaterThanOrEqual(4);
    for (const [concurrency, peak] of [
      [undefined, 4],
      [2, 2],
      [0, 1],
      [-3, 1],
      [100, n],
    ] as const) {
      const srv = server(await filesFor(e), 5);
      const r = await fetchModel(new URL(`${BASE}model.json`), { fetch: srv.fetch, concurrency });
      expect(srv.stats.peak, `concurrency ${concurrency}`).toBe(peak);
      expect(srv.calls.map((c) => c.url).sort()).toEqual([`${BASE}model.json`, ...e.manifest.shards.map((s) => BASE + s.file)].sort());
      r.shards.forEach((s, i) => expect(Array.from(s)).toEqual(Array.from(e.shards[i])));
    }
  });

  it('a manifest declared or streamed beyond 16 MiB is refused; non-UTF-8 and invalid JSON are named', async () => {
    const u = `${BASE}model.json`;
    const big = `msn-web model: ${u} is larger than 16777216 bytes; check the URL (it should point at an msn-web model.json).`;
    let bodyRead = false;
    const declared = {
      ok: true,
      status: 200,
      headers: new Headers({ 'content-length': String(16 * 1024 * 1024 + 1) }),
      body: {
        getReader() {
          bodyRead = true;
          throw new Error('the body must not be read');
        },
      },
    } as unknown as Response;
    expect((await catchAsyncError(() => fetchModel(new URL(u), { fetch: server(new Map([[u, () => declared]])).fetch }))).message).toBe(big);
    expect(bodyRead).toBe(false);
    // Exactly 16 MiB declared is allowed through to the body (here: 2 bytes of invalid JSON).
    const exact = new Response('{]', { headers: { 'content-length': String(16 * 1024 * 1024) } });
    expect((await catchAsyncError(() => fetchModel(new URL(u), { fetch: server(new Map([[u, () => exact]])).fetch }))).message).toMatch(
      new RegExp(`^msn-web model: ${u.replace(/[./]/g, '\\$&')} is not valid JSON \\(.+\\)\\.$`),
    );
    let pulls = 0;
    let cancelled = false;
    const endless = new Response(
      new ReadableStream({
        pull(c) {
          pulls++;
          c.enqueue(new Uint8Array(1024 * 1024).fill(0x20));
        },
        cancel() {
          cancelled = true;
        },
      }),
    );
    expect((await catchAsyncError(() => fetchModel(new URL(u), { fetch: server(new Map([[u, () => endless]])).fetch }))).message).toBe(big);
    expect(cancelled).toBe(true);
    expect(pulls).toBeLessThanOrEqual(18);
    const bad = new Response(Uint8Array.of(0x7b, 0xff, 0x7d));
    const e3 = await catchAsyncError(() => fetchModel(new URL(u), { fetch: server(new Map([[u, () => bad]])).fetch }));
    expect(e3.message).toBe(`msn-web model: ${u} is not UTF-8 text.`);
    expect((e3 as Error & { cause?: Error }).cause?.name).toBe('TypeError');
    const tooLongText = noBody(new Uint8Array(0));
    tooLongText.text = async () => ' '.repeat(16 * 1024 * 1024 + 1);
    expect((await catchAsyncError(() => fetchModel(new URL(u), { fetch: server(new Map([[u, () => tooLongText]])).fetch }))).message).toBe(big);
  });

  it('responses without a body stream: the manifest and shards are read whole; a long shard is refused, a short one decoded as truncated', async () => {
    const e = await model();
    const files = new Map<string, Reply>([[`${BASE}model.json`, () => noBody(te.encode(JSON.stringify(e.manifest)))]]);
    e.manifest.shards.forEach((s, i) => files.set(BASE + s.file, () => noBody(e.shards[i])));
    const ev: LoadProgress[] = [];
    const r = await loadModel(BASE, { fetch: server(files).fetch, onProgress: (p) => ev.push(p), concurrency: 1 });
    expect(r.from).toBe('network');
    expect(ev.at(-1)!.loadedBytes).toBe(e.shards.reduce((a, s) => a + s.length, 0));
    const s0 = e.manifest.shards[0];
    const long = new Map(files);
    long.set(BASE + s0.file, () => noBody(Uint8Array.from([...e.shards[0], 0])));
    const e1 = await catchAsyncError(() => loadModel(BASE, { fetch: server(long).fetch }));
    expect(e1.message).toBe(`msn-web model: ${BASE + s0.file} has more bytes than the manifest's ${s0.byteLength}.`);
    const short = new Map(files);
    short.set(BASE + s0.file, () => noBody(e.shards[0].subarray(1)));
    const e2 = await catchAsyncError(() => loadModel(BASE, { fetch: server(short).fetch }));
    expect(e2.message).toMatch(/shard 0 .* has \d+ bytes, the manifest says \d+ \(truncated or wrong file\?\)/);
  });

  it('streamed shards: a byte too many is refused; an abort between chunks stops the download', async () => {
    const e = await model();
    const s0 = e.manifest.shards[0];
    const files = await filesFor(e);
    files.set(BASE + s0.file, new Response(Uint8Array.from([...e.shards[0], 1])));
    const e1 = await catchAsyncError(() => loadModel(BASE, { fetch: server(files).fetch }));
    expect(e1.message).toBe(`msn-web model: ${BASE + s0.file} has more bytes than the manifest's ${s0.byteLength}.`);
    const ac = new AbortController();
    const files2 = await filesFor(e);
    files2.set(
      BASE + s0.file,
      () =>
        new Response(
          new ReadableStream({
            pull(c) {
              c.enqueue(e.shards[0].slice(0, 10));
              ac.abort();
            },
          }),
        ),
    );
    expect((await catchAsyncError(() => loadModel(BASE, { fetch: server(files2).fetch, signal: ac.signal, concurrency: 1 }))).name).toBe('AbortError');
  });
});

describe('readModelFiles', () => {
  const blobs = async () => {
    const e = await model();
    const m = new Map<string, Blob>([['model.json', new Blob([JSON.stringify(e.manifest)])]]);
    e.manifest.shards.forEach((s, i) => m.set(s.file, new Blob([e.shards[i] as BlobPart])));
    return { e, m };
  };

  it('a record of blobs, progress per shard; an object with manifest and a non-array shards is read as files', async () => {
    const { e, m } = await blobs();
    const ev: LoadProgress[] = [];
    const r = await readModelFiles(Object.fromEntries(m), { onProgress: (p) => ev.push(p) });
    r.shards.forEach((s, i) => expect(Array.from(s)).toEqual(Array.from(e.shards[i])));
    expect(ev.map((p) => p.file)).toEqual([undefined, ...e.manifest.shards.map((s) => s.file)]);
    const err = await catchAsyncError(() => loadModel({ manifest: e.manifest, shards: 'x' } as never));
    expect(err.message).toBe("msn-web model: no 'model.json' among the files (manifest, shards).");
  });

  it('messages: no model.json (listing the names, or none), an oversized model.json, a missing or wrong-sized shard, nameless list entries', async () => {
    const { e, m } = await blobs();
    expect((await catchAsyncError(() => readModelFiles(new Map()))).message).toBe("msn-web model: no 'model.json' among the files (none).");
    expect((await catchAsyncError(() => readModelFiles(new Map([['a', new Blob([])], ['b', new Blob([])]])))).message).toBe(
      "msn-web model: no 'model.json' among the files (a, b).",
    );
    const huge = new Map(m);
    huge.set('model.json', new Blob([new Uint8Array(16 * 1024 * 1024 + 1)]));
    expect((await catchAsyncError(() => readModelFiles(huge))).message).toBe('msn-web model: model.json is larger than 16777216 bytes.');
    const s1 = e.manifest.shards[1];
    const missing = new Map(m);
    missing.delete(s1.file);
    expect((await catchAsyncError(() => readModelFiles(missing))).message).toBe(`msn-web model: shard file '${s1.file}' is missing.`);
    const wrong = new Map(m);
    wrong.set(s1.file, new Blob([new Uint8Array(3)]));
    expect((await catchAsyncError(() => readModelFiles(wrong))).message).toBe(
      `msn-web model: shard file '${s1.file}' has 3 bytes, the manifest says ${s1.byteLength} (truncated or wrong file?).`,
    );
    const e4 = await catchAsyncError(() => readModelFiles([new Blob([])] as unknown as File[]));
    expect(e4.name).toBe('MsnConfigError');
    expect(e4.message).toBe('A list of model files must hold File objects (with names).');
    const e5 = await catchAsyncError(() => readModelFiles([null] as unknown as File[]));
    expect(e5.name).toBe('MsnConfigError');
    const invalid = new Map(m);
    invalid.set('model.json', new Blob(['{x']));
    expect((await catchAsyncError(() => readModelFiles(invalid))).message).toMatch(/^msn-web model: model\.json is not valid JSON \(.+\)\.$/);
  });

  it('an abort between shards stops reading', async () => {
    const { m } = await blobs();
    const ac = new AbortController();
    const err = await catchAsyncError(() => readModelFiles(m, { signal: ac.signal, onProgress: (p) => p.file && ac.abort() }));
    expect(err.name).toBe('AbortError');
  });
});

describe('survivors of the first run', () => {
  const u = `${BASE}model.json`;
  const notJson = new RegExp(`^msn-web model: ${u.replace(/[./]/g, '\\$&')} is not valid JSON \\(.+\\)\\.$`);
  const MiB = 1024 * 1024;

  it('an object with a shards array but no manifest is read as named files', async () => {
    const e1 = await catchAsyncError(() => loadModel({ shards: [] } as never));
    expect(e1.message).toBe("msn-web model: no 'model.json' among the files (shards).");
    const e2 = await catchAsyncError(() => loadModel({ manifest: {} } as never));
    expect(e2.message).toBe("msn-web model: no 'model.json' among the files (manifest).");
  });

  it('errors without a cause have no cause property; an abort inside fetch says it was cancelled', async () => {
    const e = await catchAsyncError(() => fetchModel(new URL(u), { fetch: server(new Map()).fetch }));
    expect('cause' in e).toBe(false);
    const ac = new AbortController();
    const f = (async () => {
      ac.abort();
      throw new Error('aborted');
    }) as unknown as typeof fetch;
    const a = await catchAsyncError(() => fetchModel(new URL(u), { fetch: f, signal: ac.signal }));
    expect(a.message).toBe('Model loading was cancelled.');
  });

  it('a response without headers (some polyfills) still loads', async () => {
    const e = await model();
    const files = new Map<string, Reply>([
      [u, () => Object.assign(noBody(te.encode(JSON.stringify(e.manifest))), { headers: undefined })],
    ]);
    e.manifest.shards.forEach((s, i) => files.set(BASE + s.file, () => noBody(e.shards[i])));
    expect((await loadModel(BASE, { fetch: server(files).fetch })).from).toBe('network');
  });

  it('a manifest of exactly 16 MiB (declared, streamed, whole text, Blob) is not refused for its size', async () => {
    const spaces = te.encode(' '.repeat(MiB));
    const streamed = () =>
      new Response(
        new ReadableStream({
          start(c) {
            for (let i = 0; i < 16; i++) c.enqueue(spaces);
            c.close();
          },
        }),
        { headers: { 'content-length': String(16 * MiB) } },
      );
    expect((await catchAsyncError(() => fetchModel(new URL(u), { fetch: server(new Map([[u, streamed]])).fetch }))).message).toMatch(notJson);
    const whole = noBody(new Uint8Array(0));
    whole.text = async () => ' '.repeat(16 * MiB);
    expect((await catchAsyncError(() => fetchModel(new URL(u), { fetch: server(new Map([[u, () => whole]])).fetch }))).message).toMatch(notJson);
    const blob = new Map([['model.json', new Blob([new Uint8Array(16 * MiB).fill(0x20)])]]);
    expect((await catchAsyncError(() => readModelFiles(blob))).message).toMatch(/^msn-web model: model\.json is not valid JSON \(.+\)\.$/);
  });

  it('a manifest streamed in several chunks is reassembled in order', async () => {
    const e = await model();
    const text = te.encode(JSON.stringify(e.manifest));
    const files = await filesFor(e);
    files.set(u, () => {
      const cut = [0, 7, 100, Math.floor(text.length / 2), text.length];
      return new Response(
        new ReadableStream({
          start(c) {
            for (let i = 1; i < cut.length; i++) c.enqueue(text.slice(cut[i - 1], cut[i]));
            c.close();
          },
        }),
      );
    });
    expect((await loadModel(BASE, { fetch: server(files).fetch })).manifest).toEqual(e.manifest);
  });

  it('a streamed shard that ends short is reported as truncated, not as corrupt', async () => {
    const e = await model();
    const s0 = e.manifest.shards[0];
    const files = await filesFor(e);
    files.set(BASE + s0.file, () => new Response(e.shards[0].slice(0, s0.byteLength - 5)));
    const err = await catchAsyncError(() => loadModel(BASE, { fetch: server(files).fetch }));
    expect(err.message).toBe(`msn-web model: shard 0 (${s0.file}) has ${s0.byteLength - 5} bytes, the manifest says ${s0.byteLength} (truncated or wrong file?).`);
  });
});
