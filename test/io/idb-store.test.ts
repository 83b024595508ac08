/**
 * Node has no IndexedDB, so these tests drive the store through a tiny
 * in-memory fake of the parts it uses (open/upgrade, one-request
 * transactions that commit or abort as a whole). They check the wiring and
 * error mapping; real-browser behaviour is for the browser test suite.
 */
import { describe, expect, it } from 'vitest';
import { createIdbCheckpointStore } from '../../src/io/idb-store.js';
import { catchAsyncError, expectNamedError } from './container-test-helpers.js';

type Handler = ((this: unknown) => void) | null;

class FakeRequest {
  result: unknown;
  error: DOMException | null = null;
  onsuccess: Handler = null;
  onerror: Handler = null;
  onupgradeneeded: Handler = null;
}

class FakeDb {
  stores = new Map<string, Map<string, unknown>>();
  closed = false;
  onversionchange: Handler = null;
  onclose: Handler = null;
  transactions: { mode: string; durability?: string }[] = [];
  /** Error name to abort the next readwrite transaction with. */
  failNextWrite: string | null = null;
  /** How it fails: an abort carrying the error (quota), an error event of the request, or an abort without an error. */
  failHow: 'abort' | 'request-error' | 'bare-abort' = 'abort';
  objectStoreNames = { contains: (name: string) => this.stores.has(name) };

  createObjectStore(name: string) {
    this.stores.set(name, new Map());
  }

  close() {
    this.closed = true;
  }

  transaction(name: string, mode: string, options?: { durability?: string }) {
    if (this.closed) throw new DOMException('The database connection is closing.', 'InvalidStateError');
    this.transactions.push({ mode, durability: options?.durability });
    const live = this.stores.get(name)!;
    const staged = new Map(live); // all-or-nothing: commit replaces, abort discards
    const failWith = mode === 'readwrite' ? this.failNextWrite : null;
    if (failWith) this.failNextWrite = null;
    const tx = {
      error: null as DOMException | null,
      oncomplete: null as Handler,
      onerror: null as Handler,
      onabort: null as Handler,
      objectStore: () => {
        const op = (apply: () => unknown) => {
          const request = new FakeRequest();
          setTimeout(() => {
            if (failWith && this.failHow === 'request-error') {
              request.error = new DOMException('the request failed', failWith);
              tx.onerror?.call(tx);
              return;
            }
            if (failWith) {
              if (this.failHow === 'abort') tx.error = new DOMException('quota', failWith);
              tx.onabort?.call(tx);
              return;
            }
            request.result = apply();
            request.onsuccess?.call(request);
            for (const k of [...live.keys()]) if (!staged.has(k)) live.delete(k);
            for (const [k, v] of staged) live.set(k, v);
            tx.oncomplete?.call(tx);
          }, 0);
          return request;
        };
        return {
          put: (value: unknown, key: string) => op(() => (staged.set(key, structuredClone(value)), key)),
          get: (key: string) => op(() => structuredClone(staged.get(key))),
          count: (key: string) => op(() => (staged.has(key) ? 1 : 0)),
          delete: (key: string) => op(() => (staged.delete(key), undefined)),
          getAllKeys: () => op(() => [...staged.keys()]), // insertion order: the store must sort
        };
      },
    };
    return tx;
  }
}

class FakeFactory {
  dbs = new Map<string, FakeDb>();
  opens = 0;
  open(name: string, _version: number) {
    this.opens++;
    const request = new FakeRequest();
    setTimeout(() => {
      let db = this.dbs.get(name);
      const fresh = !db;
      if (!db) this.dbs.set(name, (db = new FakeDb()));
      request.result = db;
      if (fresh) request.onupgradeneeded?.call(request);
      request.onsuccess?.call(request);
    }, 0);
    return request;
  }
}

function makeStore(factory = new FakeFactory()) {
  const store = createIdbCheckpointStore('test-db', { indexedDB: factory as unknown as IDBFactory });
  return { store, factory, db: () => factory.dbs.get('test-db')! };
}

describe('createIdbCheckpointStore (against an in-memory fake)', () => {
  it('put / get / has / list / delete', async () => {
    const { store, db } = makeStore();
    expect(await store.list()).toEqual([]);
    expect(await store.get('latest')).toBeUndefined();
    expect(await store.has('latest')).toBe(false);
    await store.put('latest', Uint8Array.of(1, 2, 3));
    await store.put('step-100', Uint8Array.of(9));
    expect(await store.get('latest')).toEqual(Uint8Array.of(1, 2, 3));
    expect(await store.has('latest')).toBe(true);
    expect(await store.list()).toEqual(['latest', 'step-100']);
    await store.put('latest', Uint8Array.of(4));
    expect(await store.get('latest')).toEqual(Uint8Array.of(4));
    await store.delete('latest');
    await store.delete('never-there');
    expect(await store.list()).toEqual(['step-100']);
    expect(db().transactions.filter((t) => t.mode === 'readwrite').every((t) => t.durability === 'strict')).toBe(true);
  });

  it('stores exactly the bytes of a view, not its whole buffer, and returns a copy', async () => {
    const { store, db } = makeStore();
    const backing = Uint8Array.of(0, 1, 2, 3, 4, 5, 6, 7);
    await store.put('k', backing.subarray(2, 5));
    const stored = db().stores.get('checkpoints')!.get('k') as ArrayBuffer;
    expect(stored.byteLength).toBe(3);
    const got = (await store.get('k'))!;
    expect(got).toEqual(Uint8Array.of(2, 3, 4));
    got[0] = 99;
    expect(await store.get('k')).toEqual(Uint8Array.of(2, 3, 4));
  });

  it('an aborted write (quota) rejects with a helpful MsnError and keeps the previous value', async () => {
    const { store, db } = makeStore();
    await store.put('latest', Uint8Array.of(1));
    db().failNextWrite = 'QuotaExceededError';
    const err = await catchAsyncError(() => store.put('latest', Uint8Array.of(2)));
    expect(err.name).toBe('MsnError');
    expect(err.message).toMatch(/could not store 'latest'.*QuotaExceededError.*quota is full/);
    expect(await store.get('latest')).toEqual(Uint8Array.of(1));
  });

  it('opens once, reopens after close and after another tab upgrades', async () => {
    const { store, factory, db } = makeStore();
    await store.put('a', Uint8Array.of(1));
    await store.get('a');
    expect(factory.opens).toBe(1);
    store.close();
    await new Promise((r) => setTimeout(r, 0));
    expect(db().closed).toBe(true);
    db().closed = false;
    expect(await store.get('a')).toEqual(Uint8Array.of(1));
    expect(factory.opens).toBe(2);
    db().onversionchange?.call(null);
    expect(db().closed).toBe(true);
    db().closed = false;
    expect(await store.has('a')).toBe(true);
    expect(factory.opens).toBe(3);
  });

  it('rejects foreign values and bad arguments', async () => {
    const { store, db } = makeStore();
    await store.list();
    db().stores.get('checkpoints')!.set('odd', { not: 'bytes' });
    expect((await catchAsyncError(() => store.get('odd'))).name).toBe('MsnFormatError');
    expect((await catchAsyncError(() => store.put('', Uint8Array.of(1)))).name).toBe('MsnValueError');
    expect((await catchAsyncError(() => store.put('k', [1] as unknown as Uint8Array))).name).toBe('MsnValueError');
  });

  it('lists keys sorted whatever order the database gives them in', async () => {
    const { store } = makeStore();
    for (const k of ['step-300', 'latest', 'best', 'step-100']) await store.put(k, Uint8Array.of(1));
    expect(await store.list()).toEqual(['best', 'latest', 'step-100', 'step-300']);
  });

  it('stores a view at offset 0 that is shorter than its buffer as exactly its bytes', async () => {
    const { store, db } = makeStore();
    const backing = Uint8Array.of(5, 6, 7, 8, 9);
    await store.put('k', backing.subarray(0, 2));
    expect((db().stores.get('checkpoints')!.get('k') as ArrayBuffer).byteLength).toBe(2);
    expect(await store.get('k')).toEqual(Uint8Array.of(5, 6));
    const whole = Uint8Array.of(1, 2, 3);
    await store.put('w', whole);
    expect(await store.get('w')).toEqual(whole);
  });

  it('writes with strict durability and reads with the default', async () => {
    const { store, db } = makeStore();
    await store.put('k', Uint8Array.of(1));
    await store.get('k');
    await store.has('k');
    await store.list();
    await store.delete('k');
    expect(db().transactions).toEqual([
      { mode: 'readwrite', durability: 'strict' },
      { mode: 'readonly', durability: 'default' },
      { mode: 'readonly', durability: 'default' },
      { mode: 'readonly', durability: 'default' },
      { mode: 'readwrite', durability: 'strict' },
    ]);
  });

  it('names the action that failed: a closed connection, a failed request, an abort without an error', async () => {
    const { store, db } = makeStore();
    await store.put('k', Uint8Array.of(1));
    db().closed = true; // the browser closed it under the store: transaction() throws InvalidStateError
    const tail = '; the previous value, if any, is unchanged; retry, or check that the page may use IndexedDB (private browsing can block it).';
    const closing = '(InvalidStateError: The database connection is closing.)';
    for (const [call, action] of [
      [() => store.get('k'), "read 'k'"],
      [() => store.has('k'), "look up 'k'"],
      [() => store.delete('k'), "delete 'k'"],
      [() => store.list(), 'list keys'],
      [() => store.put('k', Uint8Array.of(2)), "store 'k'"],
    ] as const) {
      const err = await catchAsyncError(call);
      expect(err.name).toBe('MsnError');
      expect(err.message).toBe(`Checkpoint store: could not ${action} ${closing}${tail}`);
      expect((err as Error & { cause?: DOMException }).cause?.name).toBe('InvalidStateError');
    }
    db().closed = false;
    db().failNextWrite = 'ConstraintError';
    db().failHow = 'request-error';
    const failed = await catchAsyncError(() => store.put('k', Uint8Array.of(3)));
    expect(failed.message).toBe(`Checkpoint store: could not store 'k' (ConstraintError: the request failed)${tail}`);
    db().failNextWrite = 'x';
    db().failHow = 'bare-abort';
    const aborted = await catchAsyncError(() => store.delete('k'));
    expect(aborted.message).toBe(`Checkpoint store: could not delete 'k' (AbortError: transaction aborted)${tail}`);
    expect(await store.get('k')).toEqual(Uint8Array.of(1));
  });

  it('refuses bad names, keys and values word for word, before touching the database', async () => {
    const factory = new FakeFactory();
    const idb = factory as unknown as IDBFactory;
    expect(expectNamedError(() => createIdbCheckpointStore('', { indexedDB: idb }), 'MsnValueError').message).toBe('createIdbCheckpointStore: dbName must be a non-empty string.');
    expect(expectNamedError(() => createIdbCheckpointStore(5 as unknown as string, { indexedDB: idb }), 'MsnValueError').message).toBe('createIdbCheckpointStore: dbName must be a non-empty string.');
    expect(expectNamedError(() => createIdbCheckpointStore('db', { indexedDB: idb, storeName: '' }), 'MsnValueError').message).toBe('createIdbCheckpointStore: storeName must be a non-empty string.');
    expect(expectNamedError(() => createIdbCheckpointStore('db', { indexedDB: idb, storeName: 7 as unknown as string }), 'MsnValueError').message).toBe('createIdbCheckpointStore: storeName must be a non-empty string.');
    const store = createIdbCheckpointStore('db', { indexedDB: idb });
    store.close(); // closing a store that never opened is fine
    for (const key of ['', 5, undefined]) {
      const err = await catchAsyncError(() => store.put(key as unknown as string, Uint8Array.of(1)));
      expect(err.name).toBe('MsnValueError');
      expect(err.message).toBe(`Checkpoint store: key must be a non-empty string such as 'latest', got ${typeof key}.`);
    }
    const notBytes = await catchAsyncError(() => store.put('k', [1] as unknown as Uint8Array));
    expect(notBytes.message).toBe('Checkpoint store: put("k") needs a Uint8Array.');
    expect(factory.opens).toBe(0);
  });

  it('without IndexedDB (Node) it fails at once with MsnBackendError pointing to writeFileAtomic', () => {
    expect((globalThis as { indexedDB?: unknown }).indexedDB).toBeUndefined();
    expectNamedError(() => createIdbCheckpointStore(), 'MsnBackendError', /writeFileAtomic/);
  });
});
