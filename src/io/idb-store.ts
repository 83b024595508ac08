/**
 * Checkpoint storage in the browser's IndexedDB (main thread or worker).
 *
 * Each `put` is one readwrite transaction with strict durability, and it
 * resolves only when the transaction commits. IndexedDB transactions are
 * atomic: a tab closed or crashed mid-write leaves the previous value of the
 * key in place. Values are stored as ArrayBuffers, keys are strings.
 */
import { MsnBackendError, MsnError, MsnFormatError, MsnValueError } from '../errors.js';

export interface CheckpointStore {
  /** Store `bytes` under `key`, replacing any previous value; resolves once committed. */
  put(key: string, bytes: Uint8Array): Promise<void>;
  /** The bytes under `key`, or undefined when there are none. */
  get(key: string): Promise<Uint8Array | undefined>;
  has(key: string): Promise<boolean>;
  /** Remove `key`; removing a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** All keys, sorted. */
  list(): Promise<string[]>;
  /** Close the database connection; later calls reopen it. */
  close(): void;
}

export interface IdbCheckpointStoreOptions {
  /** Object store name inside the database; default 'checkpoints'. */
  storeName?: string;
  /** IndexedDB factory; default `globalThis.indexedDB` (pass one for tests, e.g. fake-indexeddb). */
  indexedDB?: IDBFactory;
}

const DB_VERSION = 1;

function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new MsnValueError(`Checkpoint store: key must be a non-empty string such as 'latest', got ${typeof key}.`);
  }
}

function wrap(action: string, err: unknown): MsnError {
  if (err instanceof MsnError) return err;
  const name = (err as DOMException | null)?.name ?? 'Error';
  const message = (err as Error | null)?.message ?? String(err);
  const hint =
    name === 'QuotaExceededError'
      ? 'the browser storage quota is full: delete old checkpoints or ask for persistent storage (navigator.storage.persist())'
      : 'the previous value, if any, is unchanged; retry, or check that the page may use IndexedDB (private browsing can block it)';
  return new MsnError(`Checkpoint store: could not ${action} (${name}: ${message}); ${hint}.`, { cause: err });
}

/**
 * Open (lazily, on first use) a checkpoint store in the IndexedDB database
 * `dbName`. Throws MsnBackendError at once when IndexedDB is unavailable
 * (Node, some private modes): use `writeFileAtomic` there instead.
 */
export function createIdbCheckpointStore(dbName = 'msn-web', options: IdbCheckpointStoreOptions = {}): CheckpointStore {
  if (typeof dbName !== 'string' || dbName.length === 0) throw new MsnValueError('createIdbCheckpointStore: dbName must be a non-empty string.');
  const storeName = options.storeName ?? 'checkpoints';
  if (typeof storeName !== 'string' || storeName.length === 0) throw new MsnValueError('createIdbCheckpointStore: storeName must be a non-empty string.');
  const factory = options.indexedDB ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
  if (!factory) {
    throw new MsnBackendError('IndexedDB is not available here (Node, or storage is blocked); in Node save checkpoints with writeFileAtomic instead.');
  }

  // One connection, opened on first use and forgotten when the browser
  // closes it or the open fails, so the next call opens a fresh one.
  let opening: Promise<IDBDatabase> | undefined;
  function db(): Promise<IDBDatabase> {
    opening ??= openDatabase(factory!, dbName, storeName, () => {
      opening = undefined;
    });
    const current = opening;
    current.catch(() => {
      if (opening === current) opening = undefined;
    });
    return current;
  }

  return {
    ...storeOperations(async (action, mode, make) => runRequest(await db(), storeName, action, mode, make)),
    close() {
      const current = opening;
      opening = undefined;
      current?.then((database) => database.close()).catch(() => undefined);
    },
  };
}

/** Open `dbName` (creating `storeName` on first creation); `onGone` runs when the browser closes the connection. */
function openDatabase(factory: IDBFactory, dbName: string, storeName: string, onGone: () => void): Promise<IDBDatabase> {
  return new Promise<IDBDatabase>((resolve, reject) => {
    const request = factory.open(dbName, DB_VERSION);
    request.onupgradeneeded = () => {
      if (!request.result.objectStoreNames.contains(storeName)) request.result.createObjectStore(storeName);
    };
    request.onsuccess = () => {
      const database = request.result;
      // Another tab upgrading the database: step aside; the next call reopens.
      database.onversionchange = () => {
        database.close();
        onGone();
      };
      database.onclose = onGone;
      if (!database.objectStoreNames.contains(storeName)) {
        database.close();
        reject(new MsnBackendError(`Database '${dbName}' exists without the object store '${storeName}'; pick another dbName or delete that database.`));
        return;
      }
      resolve(database);
    };
    request.onerror = () => reject(wrap(`open database '${dbName}'`, request.error));
    // No onblocked handler: the version never changes, so an upgrade can only be the first
    // creation, which no other connection can block; a pending open simply resolves later.
  });
}

/** Runs one request in its own transaction of the store; the action names it in errors. */
type Run = <T>(action: string, mode: IDBTransactionMode, make: (store: IDBObjectStore) => IDBRequest<T>) => Promise<T>;

/** Run one request in its own transaction; resolve with its result once the transaction has committed. */
function runRequest<T>(
  database: IDBDatabase,
  storeName: string,
  action: string,
  mode: IDBTransactionMode,
  make: (store: IDBObjectStore) => IDBRequest<T>,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let tx: IDBTransaction;
    let request: IDBRequest<T>;
    try {
      tx = database.transaction(storeName, mode, { durability: mode === 'readwrite' ? 'strict' : 'default' });
      request = make(tx.objectStore(storeName));
    } catch (err) {
      reject(wrap(action, err));
      return;
    }
    tx.oncomplete = () => resolve(request.result);
    tx.onerror = () => reject(wrap(action, tx.error ?? request.error));
    tx.onabort = () => reject(wrap(action, tx.error ?? new DOMException('transaction aborted', 'AbortError')));
  });
}

/** The store's operations on checked keys and values, each one request through `run`. */
function storeOperations(run: Run): Omit<CheckpointStore, 'close'> {
  return {
    async put(key, bytes) {
      checkKey(key);
      if (!(bytes instanceof Uint8Array)) throw new MsnValueError(`Checkpoint store: put(${JSON.stringify(key)}) needs a Uint8Array.`);
      // Structured clone copies a view's whole buffer, so store exactly these bytes.
      const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer;
      const value = whole ? bytes.buffer : bytes.slice().buffer;
      await run(`store '${key}'`, 'readwrite', (store) => store.put(value, key));
    },
    async get(key) {
      checkKey(key);
      const value: unknown = await run(`read '${key}'`, 'readonly', (store) => store.get(key));
      if (value === undefined) return undefined;
      if (value instanceof ArrayBuffer) return new Uint8Array(value);
      if (value instanceof Uint8Array) return value;
      throw new MsnFormatError(`Checkpoint store: the value under '${key}' is not binary data; it was not written by this store, so delete it.`);
    },
    async has(key) {
      checkKey(key);
      const count = await run(`look up '${key}'`, 'readonly', (store) => store.count(key));
      return count > 0;
    },
    async delete(key) {
      checkKey(key);
      await run(`delete '${key}'`, 'readwrite', (store) => store.delete(key));
    },
    async list() {
      const keys = await run('list keys', 'readonly', (store) => store.getAllKeys());
      return keys.filter((k): k is string => typeof k === 'string').sort();
    },
  };
}
