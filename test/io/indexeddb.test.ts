/**
 * The IndexedDB model cache and checkpoint store on fake-indexeddb, a complete
 * IndexedDB implementation in JavaScript (it runs the W3C web-platform tests),
 * so that their IndexedDB paths run in Node, where mutation testing can reach
 * them. Chromium's own IndexedDB runs the same stores in
 * test/browser/idb.test.ts (reload, a tab closed mid-write); the small fake in
 * test/io/idb-store.test.ts forces failures that a real database cannot (a
 * quota error on demand).
 */
import { IDBFactory } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import { openModelCache } from '../../src/io/model-cache.js';
import { createIdbCheckpointStore } from '../../src/io/idb-store.js';
import type { EncodedModel } from '../../src/io/model-format.js';
import { catchAsyncError } from './container-test-helpers.js';

const model = (n: number): EncodedModel => ({
  manifest: { format: 'msn-web/model', version: 1, config: {} as never, tensors: [], shards: [{ file: 'w.bin', byteLength: 3, sha256: 'a'.repeat(64) }], meta: { n } },
  shards: [Uint8Array.of(1, 2, n), Uint8Array.of(9, 8)],
});

/** Opens `name` in `idb` as another tab would and returns what it holds: version, object stores, records. */
async function inspect(idb: IDBFactory, name: string): Promise<{ version: number; stores: string[]; records: Record<string, unknown[]> }> {
  const db = await new Promise<IDBDatabase>((resolve, reject) => {
    const r = idb.open(name);
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  const stores = Array.from(db.objectStoreNames);
  const records: Record<string, unknown[]> = {};
  for (const s of stores) {
    records[s] = await new Promise((resolve, reject) => {
      const r = db.transaction(s, 'readonly').objectStore(s).getAll();
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
  }
  const version = db.version;
  db.close();
  return { version, stores, records };
}

/** Deletes a database as another tab would; resolves once it is gone (open connections must close first). */
function deleteDatabase(idb: IDBFactory, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const r = idb.deleteDatabase(name);
    r.onsuccess = () => resolve();
    r.onerror = () => reject(r.error);
  });
}

describe('openModelCache on IndexedDB (fake-indexeddb)', () => {
  it('stores models in the database msn-web-models, version 1, object store models keyed by key', async () => {
    const idb = new IDBFactory();
    const cache = openModelCache({ indexedDB: idb });
    expect(await idb.databases()).toEqual([]); // opened lazily
    const t0 = Date.now();
    await cache.put('shipped', model(3));
    expect((await idb.databases()).map((d) => d.name)).toEqual(['msn-web-models']);
    const seen = await inspect(idb, 'msn-web-models');
    expect(seen.version).toBe(1);
    expect(seen.stores).toEqual(['models']);
    const [rec] = seen.records.models as { key: string; manifest: unknown; shards: ArrayBuffer[]; totalBytes: number; savedAt: number }[];
    expect(rec.key).toBe('shipped');
    expect(rec.manifest).toEqual(model(3).manifest);
    expect(rec.shards.map((b) => Array.from(new Uint8Array(b)))).toEqual([[1, 2, 3], [9, 8]]);
    expect(rec.totalBytes).toBe(5);
    expect(rec.savedAt).toBeGreaterThanOrEqual(t0);
    expect(rec.savedAt).toBeLessThanOrEqual(Date.now());
  });

  it('put / has / get / list / delete, with copies in both directions, and a database name of its own', async () => {
    const idb = new IDBFactory();
    const cache = openModelCache({ indexedDB: idb, dbName: 'app-models' });
    expect(await cache.list()).toEqual([]);
    expect(await cache.has('a')).toBe(false);
    expect(await cache.get('a')).toBeUndefined();
    const m = model(1);
    await cache.put('a', m);
    m.shards[0][0] = 99; // the caller's bytes change after put
    await cache.put('b', model(2));
    expect(await cache.has('a')).toBe(true);
    const a = (await cache.get('a'))!;
    expect(a.manifest.meta).toEqual({ n: 1 });
    expect(a.shards.map((s) => Array.from(s))).toEqual([[1, 2, 1], [9, 8]]);
    a.shards[0][1] = 77; // the returned bytes change after get
    expect(Array.from((await cache.get('a'))!.shards[0])).toEqual([1, 2, 1]);
    const list = await cache.list();
    expect(list.map((e) => [e.key, e.totalBytes])).toEqual([['a', 5], ['b', 5]]);
    expect(Object.keys(list[0]).sort()).toEqual(['key', 'savedAt', 'totalBytes']);
    await cache.put('a', model(7)); // replaces
    expect((await cache.get('a'))!.manifest.meta).toEqual({ n: 7 });
    expect(await cache.delete('a')).toBe(true);
    expect(await cache.delete('a')).toBe(false);
    expect(await cache.has('a')).toBe(false);
    expect((await cache.list()).map((e) => e.key)).toEqual(['b']);
    expect((await idb.databases()).map((d) => d.name)).toEqual(['app-models']);
  });

  it('steps aside when another tab deletes the database, and the next call recreates it', async () => {
    const idb = new IDBFactory();
    const cache = openModelCache({ indexedDB: idb });
    await cache.put('a', model(1));
    await deleteDatabase(idb, 'msn-web-models'); // blocked forever if the cache kept its connection
    expect(await cache.has('a')).toBe(false);
    await cache.put('b', model(2));
    expect((await cache.list()).map((e) => e.key)).toEqual(['b']);
  });

  it('a failed open rejects, and a later call opens again', async () => {
    const idb = new IDBFactory();
    await new Promise<void>((resolve) => {
      const r = idb.open('msn-web-models', 2); // a newer version: opening version 1 fails with VersionError
      r.onsuccess = () => (r.result.close(), resolve());
    });
    const cache = openModelCache({ indexedDB: idb });
    expect((await catchAsyncError(() => cache.list())).name).toBe('VersionError');
    await deleteDatabase(idb, 'msn-web-models');
    await cache.put('a', model(1));
    expect(await cache.has('a')).toBe(true);
  });
});

describe('createIdbCheckpointStore on IndexedDB (fake-indexeddb)', () => {
  it('keeps bytes under string keys in database msn-web, store checkpoints, version 1', async () => {
    const idb = new IDBFactory();
    const store = createIdbCheckpointStore(undefined, { indexedDB: idb });
    expect(await idb.databases()).toEqual([]); // opened lazily
    expect(await store.list()).toEqual([]);
    expect(await store.get('latest')).toBeUndefined();
    expect(await store.has('latest')).toBe(false);
    const backing = Uint8Array.of(0, 1, 2, 3, 4, 5);
    await store.put('step-200', backing.subarray(1, 4)); // exactly these bytes, not the whole buffer
    await store.put('latest', Uint8Array.of(7, 7));
    await store.put('latest', Uint8Array.of(8)); // replaces
    expect(await store.get('step-200')).toEqual(Uint8Array.of(1, 2, 3));
    expect(await store.get('latest')).toEqual(Uint8Array.of(8));
    expect(await store.has('latest')).toBe(true);
    expect(await store.list()).toEqual(['latest', 'step-200']);
    const got = (await store.get('latest'))!;
    got[0] = 0;
    expect(await store.get('latest')).toEqual(Uint8Array.of(8));
    await store.delete('latest');
    await store.delete('never-there');
    expect(await store.list()).toEqual(['step-200']);
    store.close();
    const seen = await inspect(idb, 'msn-web');
    expect(seen.version).toBe(1);
    expect(seen.stores).toEqual(['checkpoints']);
    expect(seen.records.checkpoints.map((b) => Array.from(new Uint8Array(b as ArrayBuffer)))).toEqual([[1, 2, 3]]);
  });

  it('two stores in one database each create their own object store only when the database is new', async () => {
    const idb = new IDBFactory();
    const runs = createIdbCheckpointStore('app', { indexedDB: idb, storeName: 'runs' });
    await runs.put('x', Uint8Array.of(1));
    runs.close();
    const other = createIdbCheckpointStore('app', { indexedDB: idb, storeName: 'heads' });
    const err = await catchAsyncError(() => other.list());
    expect(err.name).toBe('MsnBackendError');
    expect(err.message).toBe("Database 'app' exists without the object store 'heads'; pick another dbName or delete that database.");
    expect(await runs.get('x')).toEqual(Uint8Array.of(1)); // reopened after close()
    runs.close();
    expect((await inspect(idb, 'app')).stores).toEqual(['runs']);
  });

  it('lists string keys only, sorted, and refuses a value it did not write', async () => {
    const idb = new IDBFactory();
    const store = createIdbCheckpointStore('mixed', { indexedDB: idb });
    await store.put('b', Uint8Array.of(1));
    await store.put('a', Uint8Array.of(2));
    store.close();
    // Another part of the app writes a number key and a non-binary value into the same store.
    const db = await new Promise<IDBDatabase>((resolve) => {
      const r = idb.open('mixed', 1);
      r.onsuccess = () => resolve(r.result);
    });
    await new Promise<void>((resolve) => {
      const tx = db.transaction('checkpoints', 'readwrite');
      tx.objectStore('checkpoints').put(Uint8Array.of(3), 5);
      tx.objectStore('checkpoints').put({ not: 'bytes' }, 'odd');
      tx.objectStore('checkpoints').put(Uint8Array.of(4, 5), 'view');
      tx.oncomplete = () => resolve();
    });
    db.close();
    expect(await store.list()).toEqual(['a', 'b', 'odd', 'view']);
    expect(await store.get('view')).toEqual(Uint8Array.of(4, 5)); // a Uint8Array value is returned as it is
    const err = await catchAsyncError(() => store.get('odd'));
    expect(err.name).toBe('MsnFormatError');
    expect(err.message).toBe("Checkpoint store: the value under 'odd' is not binary data; it was not written by this store, so delete it.");
  });

  it('steps aside when another tab deletes the database; the next call recreates it', async () => {
    const idb = new IDBFactory();
    const store = createIdbCheckpointStore('gone', { indexedDB: idb });
    await store.put('latest', Uint8Array.of(1));
    await deleteDatabase(idb, 'gone'); // blocked forever if the store kept its connection
    expect(await store.has('latest')).toBe(false);
    await store.put('latest', Uint8Array.of(2));
    expect(await store.get('latest')).toEqual(Uint8Array.of(2));
  });

  it('a failed open rejects with an MsnError that names the database, and a later call opens again', async () => {
    const idb = new IDBFactory();
    await new Promise<void>((resolve) => {
      const r = idb.open('newer', 3);
      r.onupgradeneeded = () => r.result.createObjectStore('checkpoints');
      r.onsuccess = () => (r.result.close(), resolve());
    });
    const store = createIdbCheckpointStore('newer', { indexedDB: idb });
    const err = await catchAsyncError(() => store.list());
    expect(err.name).toBe('MsnError');
    const cause = (err as Error & { cause?: DOMException }).cause!;
    expect(cause.name).toBe('VersionError');
    expect(cause.message.length).toBeGreaterThan(0);
    expect(err.message).toBe(
      `Checkpoint store: could not open database 'newer' (VersionError: ${cause.message}); the previous value, if any, is unchanged; retry, or check that the page may use IndexedDB (private browsing can block it).`,
    );
    await deleteDatabase(idb, 'newer');
    await store.put('k', Uint8Array.of(1));
    expect(await store.list()).toEqual(['k']);
  });
});
