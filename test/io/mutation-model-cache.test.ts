/**
 * model-cache.ts cases found by mutation testing (issue #18, docs/TESTING.md):
 * MemoryModelCache never aliases the caller's bytes (in either direction), and
 * openModelCache takes an IndexedDB factory from its options. The IndexedDB
 * paths themselves run only in Chromium (test/browser/idb.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { MemoryModelCache, openModelCache } from '../../src/io/model-cache.js';
import type { EncodedModel } from '../../src/io/model-format.js';

const entry = (): EncodedModel => ({
  manifest: { format: 'msn-web/model', version: 1, config: {} as never, tensors: [], shards: [{ file: 'w.bin', byteLength: 3, sha256: 'a'.repeat(64) }], meta: { n: 1 } },
  shards: [Uint8Array.of(1, 2, 3), Uint8Array.of(9)],
});

describe('MemoryModelCache', () => {
  it('stores copies and hands out copies: no aliasing with the caller or between two gets', async () => {
    const c = new MemoryModelCache();
    const m = entry();
    const t0 = Date.now();
    await c.put('k', m);
    m.shards[0][0] = 99;
    m.manifest.meta.n = 2;
    const a = (await c.get('k'))!;
    expect(Array.from(a.shards[0])).toEqual([1, 2, 3]);
    expect(a.manifest.meta).toEqual({ n: 1 });
    a.shards[0][1] = 77;
    const b = (await c.get('k'))!;
    expect(Array.from(b.shards[0])).toEqual([1, 2, 3]);
    expect(b.shards[0].buffer).not.toBe(a.shards[0].buffer);
    const [info] = await c.list();
    expect(info.key).toBe('k');
    expect(info.totalBytes).toBe(4);
    expect(info.savedAt).toBeGreaterThanOrEqual(t0);
    expect(info.savedAt).toBeLessThanOrEqual(Date.now());
    expect(Object.keys(info).sort()).toEqual(['key', 'savedAt', 'totalBytes']);
    expect(await c.has('k')).toBe(true);
    expect(await c.get('other')).toBeUndefined();
    expect(await c.delete('k')).toBe(true);
    expect(await c.delete('k')).toBe(false);
    expect(await c.has('k')).toBe(false);
  });
});

describe('openModelCache', () => {
  it('uses the indexedDB factory of its options (opened lazily), and without one in Node says so', () => {
    let opened = 0;
    const factory = { open: () => (opened++, {}) } as unknown as IDBFactory;
    const cache = openModelCache({ indexedDB: factory });
    expect(Object.keys(cache).sort()).toEqual(['delete', 'get', 'has', 'list', 'put']);
    expect(opened).toBe(0);
    let err: Error | undefined;
    try {
      openModelCache();
    } catch (e) {
      err = e as Error;
    }
    expect(err?.name).toBe('MsnBackendError');
    expect(err?.message).toBe('IndexedDB is not available here (Node, or storage is blocked); use MemoryModelCache or no cache.');
  });
});
