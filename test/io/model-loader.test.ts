/**
 * Loading models from memory, named files, a (fake) server, a cache and a
 * local directory; and the convert CLI end to end.
 */
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { importMsnCheckpoint } from '../../src/interop/import-msn.js';
import { EncodedModel, encodeModel } from '../../src/io/model-format.js';
import { LoadProgress, loadModel, manifestUrl } from '../../src/io/model-loader.js';
import { loadModelFromDirectory, writeModelDirectory } from '../../src/io/model-loader-node.js';
import { MemoryModelCache, openModelCache } from '../../src/io/model-cache.js';
import { parseConvertArgs, runConvert } from '../../src/cli/convert.js';

const CKPT = new URL('../fixtures/msn/tiny_checkpoint_ddp_keys.pth.tar', import.meta.url);
const named = (name: string, message?: RegExp) => expect.objectContaining({ name, ...(message ? { message: expect.stringMatching(message) } : {}) });
const tmp = mkdtempSync(join(tmpdir(), 'msn-web-loader-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const ck = importMsnCheckpoint(new Uint8Array(readFileSync(CKPT)), { numHeads: 2 });
let encoded: EncodedModel | undefined;
async function model(): Promise<EncodedModel> {
  encoded ??= await encodeModel(
    { config: ck.config, params: ck.weights.params, buffers: ck.weights.buffers, prototypes: ck.prototypes, meta: { name: 'tiny' } },
    { shardBytes: 32 * 1024 },
  );
  return encoded;
}
const manifestText = (e: EncodedModel) => JSON.stringify(e.manifest);

/** A fake static server: path -> bytes; records requests. */
function fakeServer(files: Map<string, Uint8Array>, opts: { chunk?: number; fail?: boolean } = {}) {
  const requests: string[] = [];
  const f = (async (input: RequestInfo | URL) => {
    const url = String(input);
    requests.push(url);
    if (opts.fail) throw new TypeError('network down');
    const body = files.get(new URL(url).pathname);
    if (!body) return new Response('not found', { status: 404, statusText: 'Not Found' });
    const chunk = opts.chunk ?? 7000;
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < body.length; i += chunk) c.enqueue(body.slice(i, i + chunk));
        c.close();
      },
    });
    return new Response(stream, { status: 200 });
  }) as typeof fetch;
  return { fetch: f, requests };
}
async function serverFor(e: EncodedModel, base = '/models/tiny/') {
  const files = new Map<string, Uint8Array>([[`${base}model.json`, new TextEncoder().encode(manifestText(e))]]);
  e.manifest.shards.forEach((s, i) => files.set(base + s.file, e.shards[i]));
  return files;
}

describe('sources', () => {
  it('{ manifest, shards } in memory', async () => {
    const e = await model();
    const m = await loadModel(e);
    expect(m.from).toBe('memory');
    expect(m.config).toEqual(ck.config);
    expect(m.meta).toEqual({ name: 'tiny' });
    expect(m.params['blocks.1.mlp.fc2.weight'].data).toEqual(ck.weights.params['blocks.1.mlp.fc2.weight'].data);
  });

  it('named files: a Map of Blobs and a File list, with progress', async () => {
    const e = await model();
    const map = new Map<string, Blob>([['model.json', new Blob([manifestText(e)])]]);
    e.manifest.shards.forEach((s, i) => map.set(s.file, new Blob([e.shards[i] as Uint8Array<ArrayBuffer>])));
    const events: LoadProgress[] = [];
    const m = await loadModel(map, { onProgress: (p) => events.push(p) });
    expect(m.from).toBe('files');
    expect(events.at(-1)!.loadedBytes).toBe(events.at(-1)!.totalBytes);
    const files = [...map].map(([name, b]) => new File([b], name));
    expect((await loadModel(files)).config).toEqual(ck.config);
    map.delete(e.manifest.shards[1].file);
    await expect(loadModel(map)).rejects.toThrow(named('MsnFormatError', /weights-00001\.bin.*missing/));
    map.delete('model.json');
    await expect(loadModel(map)).rejects.toThrow(named('MsnFormatError', /model\.json/));
  });

  it('a URL: manifest then shards next to it, streamed with monotone progress', async () => {
    const e = await model();
    const srv = fakeServer(await serverFor(e));
    const events: LoadProgress[] = [];
    const m = await loadModel('https://cdn.example/models/tiny/', { fetch: srv.fetch, onProgress: (p) => events.push(p), concurrency: 2 });
    expect(m.from).toBe('network');
    expect(srv.requests[0]).toBe('https://cdn.example/models/tiny/model.json');
    expect(srv.requests.slice(1).sort()).toEqual(e.manifest.shards.map((s) => `https://cdn.example/models/tiny/${s.file}`));
    const total = e.shards.reduce((a, s) => a + s.length, 0);
    expect(events.every((p) => p.totalBytes === total)).toBe(true);
    for (let i = 1; i < events.length; i++) expect(events[i].loadedBytes).toBeGreaterThanOrEqual(events[i - 1].loadedBytes);
    expect(events.at(-1)!.loadedBytes).toBe(total);
    expect(events.length).toBeGreaterThan(e.shards.length); // chunked, not per file
  });

  it('HTTP errors, network errors, oversized bodies and relative URLs without a base', async () => {
    const e = await model();
    const files = await serverFor(e);
    files.delete(`/models/tiny/${e.manifest.shards[2].file}`);
    await expect(loadModel(new URL('https://cdn.example/models/tiny/model.json'), { fetch: fakeServer(files).fetch })).rejects.toThrow(
      named('MsnFormatError', /HTTP 404/),
    );
    await expect(loadModel('https://cdn.example/m/', { fetch: fakeServer(files, { fail: true }).fetch })).rejects.toThrow(named('MsnFormatError', /network down/));
    const big = await serverFor(e);
    const f0 = `/models/tiny/${e.manifest.shards[0].file}`;
    big.set(f0, new Uint8Array(e.shards[0].length + 10));
    await expect(loadModel('https://cdn.example/models/tiny/model.json', { fetch: fakeServer(big).fetch })).rejects.toThrow(named('MsnFormatError', /more bytes/));
    const corrupt = await serverFor(e);
    const c = e.shards[0].slice();
    c[5] ^= 0xff;
    corrupt.set(f0, c);
    await expect(loadModel('https://cdn.example/models/tiny/', { fetch: fakeServer(corrupt).fetch })).rejects.toThrow(named('MsnFormatError', /SHA-256/));
    expect(() => manifestUrl('models/tiny/')).toThrow(named('MsnConfigError', /loadModelFromDirectory/));
  });

  it('an aborted load is an AbortError', async () => {
    const e = await model();
    const ac = new AbortController();
    ac.abort();
    await expect(loadModel('https://cdn.example/models/tiny/', { fetch: fakeServer(await serverFor(e)).fetch, signal: ac.signal })).rejects.toThrow(
      named('AbortError'),
    );
  });
});

describe('cache', () => {
  it('first load fills the cache; later loads work offline; a damaged entry is replaced', async () => {
    const e = await model();
    const cache = new MemoryModelCache();
    const url = 'https://cdn.example/models/tiny/model.json';
    const online = fakeServer(await serverFor(e));
    expect((await loadModel(url, { fetch: online.fetch, cache })).from).toBe('network');
    expect(await cache.has(url)).toBe(true);
    expect((await cache.list()).map((x) => x.key)).toEqual([url]);
    expect((await cache.list())[0].totalBytes).toBe(e.shards.reduce((a, s) => a + s.length, 0));

    const offline = fakeServer(new Map(), { fail: true });
    const again = await loadModel(url, { fetch: offline.fetch, cache });
    expect(again.from).toBe('cache');
    expect(offline.requests).toEqual([]);

    // Damage the cached copy: it is detected (hash), dropped and fetched again.
    const hit = (await cache.get(url))!;
    hit.shards[0][0] ^= 1;
    await cache.put(url, hit);
    const healed = fakeServer(await serverFor(e));
    expect((await loadModel(url, { fetch: healed.fetch, cache })).from).toBe('network');
    expect((await loadModel(url, { fetch: offline.fetch, cache })).from).toBe('cache');

    // Named entries for non-URL sources; delete.
    await loadModel(e, { cache, cacheKey: 'my-model' });
    expect((await loadModel((await cache.get('my-model'))!)).config).toEqual(ck.config);
    expect(await cache.delete('my-model')).toBe(true);
    expect(await cache.delete('my-model')).toBe(false);
  });

  it('the IndexedDB cache says clearly that Node has no IndexedDB', () => {
    expect(() => openModelCache()).toThrow(named('MsnBackendError', /IndexedDB/));
  });
});

describe('local directory (Node)', () => {
  it('write, load, and refuse truncated shards and overwrites', async () => {
    const e = await model();
    const dir = join(tmp, 'dir1');
    const written = await writeModelDirectory(dir, e);
    expect(written.at(-1)).toBe(join(dir, 'model.json'));
    const m = await loadModelFromDirectory(dir);
    expect(m.config).toEqual(ck.config);
    await expect(writeModelDirectory(dir, e)).rejects.toThrow(named('MsnConfigError', /already exists.*--force/));
    await writeModelDirectory(dir, e, { overwrite: true });
    truncateSync(join(dir, e.manifest.shards[1].file), 100);
    await expect(loadModelFromDirectory(dir)).rejects.toThrow(named('MsnFormatError', /weights-00001\.bin has 100 bytes/));
    writeFileSync(join(dir, 'model.json'), '{"format": ');
    await expect(loadModelFromDirectory(dir)).rejects.toThrow(named('MsnFormatError', /not valid JSON/));
    await expect(loadModelFromDirectory(join(tmp, 'nope'))).rejects.toThrow(named('MsnFormatError', /cannot read/));
  });
});

describe('convert CLI', () => {
  it('parses arguments by hand', () => {
    expect(parseConvertArgs(['convert', 'a.pth.tar', 'out', '--float16', '--num-heads', '2'])).toEqual({
      checkpoint: 'a.pth.tar', outDir: 'out', float16: true, numHeads: 2, which: 'target_encoder', shardMb: 4, force: false,
    });
    expect(parseConvertArgs(['a', 'b', '--num-heads=3', '--which', 'encoder', '--shard-mb', '8', '--force'])).toMatchObject({
      numHeads: 3, which: 'encoder', shardMb: 8, force: true,
    });
    expect(parseConvertArgs(['--help'])).toBe('help');
    expect(() => parseConvertArgs(['a'])).toThrow(named('MsnConfigError', /expected <checkpoint/));
    expect(() => parseConvertArgs(['a', 'b', '--num-heads', 'x'])).toThrow(/positive integer/);
    expect(() => parseConvertArgs(['a', 'b', '--bogus'])).toThrow(/unknown option/);
    expect(() => parseConvertArgs(['a', 'b', '--which', 'head'])).toThrow(/--which/);
  });

  it('converts the official tiny checkpoint (float32 exact, float16 close)', async () => {
    const lines: string[] = [];
    const out = join(tmp, 'cli32');
    await runConvert(parseConvertArgs([CKPT.pathname, out, '--num-heads', '2']) as never, (s) => lines.push(s));
    expect(lines.join('\n')).toMatch(/width 32, depth 2, heads 2 \(--num-heads\)/);
    expect(lines.join('\n')).toMatch(/stripped 'module\.' prefixes/);
    const m = await loadModelFromDirectory(out);
    expect(m.config).toEqual(ck.config);
    expect(m.prototypes).toEqual(ck.prototypes);
    expect(m.params['patch_embed.proj.weight'].data).toEqual(ck.target.params['patch_embed.proj.weight'].data);
    expect(m.meta).toMatchObject({ sourceFile: 'tiny_checkpoint_ddp_keys.pth.tar', network: 'target_encoder', epoch: 0, float16: false });

    const out16 = join(tmp, 'cli16');
    await runConvert(parseConvertArgs([CKPT.pathname, out16, '--num-heads', '2', '--float16', '--which', 'encoder']) as never, () => {});
    const m16 = await loadModelFromDirectory(out16);
    expect(m16.manifest.tensors.find((t) => t.name === 'blocks.0.attn.qkv.weight')!.dtype).toBe('float16');
    const a = m16.params['blocks.0.attn.qkv.weight'].data;
    const b = ck.encoder!.params['blocks.0.attn.qkv.weight'].data;
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual(Math.max(Math.abs(b[i]) * 2 ** -11, 2 ** -25));
  });
});
