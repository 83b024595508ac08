/**
 * Offline cache for encoded models (manifest + shard bytes), keyed by the
 * manifest URL or an app-chosen name. `openModelCache()` stores them in
 * IndexedDB (browsers, workers); `MemoryModelCache` keeps them in a Map (Node,
 * tests). Entries are re-verified (SHA-256) by decodeModel when loaded, so a
 * damaged entry is detected, not trusted.
 */
import { MsnBackendError } from '../errors.js';
import type { EncodedModel, ModelManifest } from './model-format.js';

export interface CachedModelInfo {
  key: string;
  /** Summed shard bytes. */
  totalBytes: number;
  /** Date.now() when stored. */
  savedAt: number;
}

export interface ModelCache {
  list(): Promise<CachedModelInfo[]>;
  has(key: string): Promise<boolean>;
  get(key: string): Promise<EncodedModel | undefined>;
  put(key: string, model: EncodedModel): Promise<void>;
  /** True if an entry was removed. */
  delete(key: string): Promise<boolean>;
}

interface Entry {
  key: string;
  manifest: ModelManifest;
  shards: ArrayBuffer[];
  totalBytes: number;
  savedAt: number;
}

/** A detached copy of the shards (a cache must not alias the caller's buffers). */
function copyShards(shards: Uint8Array[]): ArrayBuffer[] {
  return shards.map((s) => s.slice().buffer as ArrayBuffer);
}
const info = (e: Entry): CachedModelInfo => ({ key: e.key, totalBytes: e.totalBytes, savedAt: e.savedAt });
const toModel = (e: Entry): EncodedModel => ({ manifest: e.manifest, shards: e.shards.map((b) => new Uint8Array(b.slice(0))) });
const makeEntry = (key: string, m: EncodedModel): Entry => ({
  key,
  manifest: JSON.parse(JSON.stringify(m.manifest)) as ModelManifest,
  shards: copyShards(m.shards),
  totalBytes: m.shards.reduce((a, s) => a + s.byteLength, 0),
  savedAt: Date.now(),
});

/** In-memory cache (Node, tests, or a per-page cache). */
export class MemoryModelCache implements ModelCache {
  private entries = new Map<string, Entry>();
  async list(): Promise<CachedModelInfo[]> {
    return [...this.entries.values()].map(info);
  }
  async has(key: string): Promise<boolean> {
    return this.entries.has(key);
  }
  async get(key: string): Promise<EncodedModel | undefined> {
    const e = this.entries.get(key);
    return e ? toModel(e) : undefined;
  }
  async put(key: string, model: EncodedModel): Promise<void> {
    this.entries.set(key, makeEntry(key, model));
  }
  async delete(key: string): Promise<boolean> {
    return this.entries.delete(key);
  }
}

const DEFAULT_DB = 'msn-web-models';
const STORE = 'models';

function req<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

/**
 * IndexedDB-backed cache: database `dbName` (default 'msn-web-models'), one
 * object store 'models' with entries {key, manifest, shards: ArrayBuffer[],
 * totalBytes, savedAt} (a database of its own, apart from the checkpoint
 * store's). Throws MsnBackendError where IndexedDB is missing.
 */
export function openModelCache(opts: { dbName?: string; indexedDB?: IDBFactory } = {}): ModelCache {
  const idb = opts.indexedDB ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
  if (!idb) throw new MsnBackendError('IndexedDB is not available here (Node, or storage is blocked); use MemoryModelCache or no cache.');
  const dbName = opts.dbName ?? DEFAULT_DB;
  let dbp: Promise<IDBDatabase> | undefined;
  const db = (): Promise<IDBDatabase> => {
    dbp ??= new Promise((resolve, reject) => {
      const r = idb.open(dbName, 1);
      r.onupgradeneeded = () => {
        if (!r.result.objectStoreNames.contains(STORE)) r.result.createObjectStore(STORE, { keyPath: 'key' });
      };
      r.onsuccess = () => {
        // Another tab upgrading the database: close; the next call reopens.
        r.result.onversionchange = () => {
          r.result.close();
          dbp = undefined;
        };
        resolve(r.result);
      };
      r.onerror = () => {
        dbp = undefined;
        reject(r.error);
      };
    });
    return dbp;
  };
  const withStore = async <T>(mode: IDBTransactionMode, fn: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> => {
    const tx = (await db()).transaction(STORE, mode);
    // Completion handlers go on before anything is awaited, so no event is missed.
    const done = new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
    done.catch(() => undefined); // reported through `await done` below or the request's own error
    const result = await req(fn(tx.objectStore(STORE)));
    await done;
    return result;
  };
  return {
    async list() {
      const all = (await withStore('readonly', (s) => s.getAll())) as Entry[];
      return all.map(info);
    },
    async has(key) {
      return (await withStore('readonly', (s) => s.count(key))) > 0;
    },
    async get(key) {
      const e = (await withStore('readonly', (s) => s.get(key))) as Entry | undefined;
      return e ? toModel(e) : undefined;
    },
    async put(key, model) {
      const e = makeEntry(key, model);
      await withStore('readwrite', (s) => s.put(e));
    },
    async delete(key) {
      const had = (await withStore('readonly', (s) => s.count(key))) > 0;
      if (had) await withStore('readwrite', (s) => s.delete(key));
      return had;
    },
  };
}
