/**
 * Loading an msn-web model (model.json + shards) from a URL, from memory, or
 * from user-picked files; browser-safe (no Node imports; local directories are
 * in model-loader-node.ts). Nothing is evaluated: the manifest is JSON, the
 * shards are raw little-endian numbers, and every byte is checked by
 * decodeModel (schema, sizes, SHA-256, shapes, NaN/Inf). The network is used
 * only when the source is a URL, and only for the manifest and its shards
 * (plain file names resolved next to the manifest; no other host or folder,
 * unless the caller's own `fileUrls` names a shard's URL).
 */
import { MsnAbortError, MsnConfigError, MsnFormatError } from '../errors.js';
import type { ModelCache } from './model-cache.js';
import {
  DecodeOptions,
  EncodedModel,
  MANIFEST_FILE,
  ModelData,
  ModelManifest,
  decodeModel,
  manifestTotalBytes,
  validateManifest,
} from './model-format.js';

export interface LoadProgress {
  loadedBytes: number;
  /** Summed shard bytes from the manifest (the manifest itself is not counted). */
  totalBytes: number;
  /** The file that just advanced. */
  file?: string;
}

/** Named files (File/Blob), e.g. from <input type="file" multiple> or drag-and-drop, keyed by file name. */
export type ModelFiles = Map<string, Blob> | Record<string, Blob> | ArrayLike<File>;

/**
 * - string / URL: the manifest URL (`.../model.json`) or its folder ending in '/'.
 *   Relative strings resolve against `location.href` (browsers only).
 * - `{ manifest, shards }`: an encoded model in memory (e.g. from encodeModel or a cache).
 * - files: model.json and the shard files, by name.
 */
export type ModelSource = string | URL | { manifest: unknown; shards: Uint8Array[] } | ModelFiles;

export interface LoadModelOptions extends DecodeOptions {
  onProgress?: (p: LoadProgress) => void;
  /** Read from / store into this cache (see model-cache.ts). */
  cache?: ModelCache;
  /** Cache key; default: the manifest URL for URL sources (other sources are cached only with a key). */
  cacheKey?: string;
  /** Ignore a cached copy and load from the source (the cache is then refreshed). */
  reload?: boolean;
  /** fetch implementation (default globalThis.fetch). */
  fetch?: typeof globalThis.fetch;
  /** Extra fetch options (credentials, headers, ...). */
  requestInit?: Omit<RequestInit, 'signal'>;
  signal?: AbortSignal;
  /** Parallel shard downloads (default 4). */
  concurrency?: number;
  /**
   * URL sources: shard URLs by file name (as model.json lists them), for files
   * a bundler emitted under other names; unlisted files resolve next to the manifest.
   */
  fileUrls?: Record<string, string>;
}

export interface LoadedModel extends ModelData {
  manifest: ModelManifest;
  /** Where the bytes came from. */
  from: 'network' | 'cache' | 'memory' | 'files';
}

const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;

function fail(msg: string, cause?: unknown): never {
  throw new MsnFormatError(`msn-web model: ${msg}`, cause === undefined ? undefined : { cause });
}

function checkAbort(signal?: AbortSignal): void {
  if (signal?.aborted) throw new MsnAbortError('Model loading was cancelled.');
}

function parseManifest(text: string, where: string): unknown {
  if (text.length > MAX_MANIFEST_BYTES) fail(`${where} is larger than ${MAX_MANIFEST_BYTES} bytes.`);
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    return fail(`${where} is not valid JSON (${(e as Error).message}).`, e);
  }
}

function isEncoded(s: unknown): s is { manifest: unknown; shards: Uint8Array[] } {
  return typeof s === 'object' && s !== null && 'manifest' in s && 'shards' in s && Array.isArray((s as { shards: unknown }).shards);
}

/** Resolves a URL source to the manifest URL. */
export function manifestUrl(source: string | URL): URL {
  let url: URL;
  if (source instanceof URL) url = new URL(source.href);
  else if (/^[a-z][a-z0-9+.-]*:/i.test(source)) url = new URL(source);
  else {
    const base = (globalThis as { location?: { href?: string } }).location?.href;
    if (!base) {
      throw new MsnConfigError(
        `'${source}' is not an absolute URL. In Node, load a local folder with loadModelFromDirectory() from 'model-loader-node'.`,
      );
    }
    url = new URL(source, base);
  }
  if (url.pathname.endsWith('/')) url = new URL(MANIFEST_FILE, url);
  return url;
}

/**
 * Loads and fully verifies a model. With `cache`, a cached copy (keyed by
 * URL or `cacheKey`) is used when present and valid (works offline), and a
 * freshly loaded model is stored; cache write failures (e.g. quota) are
 * ignored, a damaged cached copy is deleted and reloaded from the source.
 */
export async function loadModel(source: ModelSource, opts: LoadModelOptions = {}): Promise<LoadedModel> {
  checkAbort(opts.signal);
  const isUrl = typeof source === 'string' || source instanceof URL;
  const url = isUrl ? manifestUrl(source) : undefined;
  const key = opts.cacheKey ?? url?.href;
  if (opts.cache && key && !opts.reload) {
    const hit = await opts.cache.get(key);
    if (hit) {
      try {
        const data = await decodeModel(hit.manifest, hit.shards, opts);
        const total = manifestTotalBytes(hit.manifest);
        opts.onProgress?.({ loadedBytes: total, totalBytes: total });
        return { ...data, manifest: validateManifest(hit.manifest, opts), from: 'cache' };
      } catch (e) {
        if (!(e instanceof MsnFormatError)) throw e;
        await opts.cache.delete(key);
      }
    }
  }
  let encoded: { manifest: unknown; shards: Uint8Array[] };
  let from: LoadedModel['from'];
  if (url) {
    encoded = await fetchModel(url, opts);
    from = 'network';
  } else if (isEncoded(source)) {
    encoded = source;
    from = 'memory';
  } else {
    encoded = await readModelFiles(source as ModelFiles, opts);
    from = 'files';
  }
  const data = await decodeModel(encoded.manifest, encoded.shards, opts);
  const manifest = validateManifest(encoded.manifest, opts);
  if (opts.cache && key) {
    try {
      await opts.cache.put(key, { manifest, shards: encoded.shards });
    } catch {
      // A full or unavailable cache must not fail a successful load.
    }
  }
  return { ...data, manifest, from };
}

/** Progress bookkeeping shared by the loaders. */
export function progressTracker(total: number, onProgress?: (p: LoadProgress) => void): (n: number, file?: string) => void {
  let loaded = 0;
  onProgress?.({ loadedBytes: 0, totalBytes: total });
  return (n, file) => {
    loaded += n;
    onProgress?.({ loadedBytes: loaded, totalBytes: total, file });
  };
}

/** Fetches model.json and its shards (verification happens in decodeModel). */
export async function fetchModel(url: URL, opts: LoadModelOptions = {}): Promise<EncodedModel> {
  const f = opts.fetch ?? globalThis.fetch;
  if (typeof f !== 'function') throw new MsnConfigError('No fetch() available; pass { fetch }.');
  const get = async (u: URL): Promise<Response> => {
    checkAbort(opts.signal);
    let r: Response;
    try {
      r = await f(u.href, { ...opts.requestInit, signal: opts.signal });
    } catch (e) {
      if (opts.signal?.aborted) throw new MsnAbortError('Model loading was cancelled.');
      return fail(`could not fetch ${u.href}: ${(e as Error).message}`, e);
    }
    if (!r.ok) fail(`fetching ${u.href} failed: HTTP ${r.status} ${r.statusText}`.trim());
    return r;
  };
  const manifest = validateManifest(parseManifest(await readManifestText(await get(url), url.href, opts.signal), url.href), opts);
  const tick = progressTracker(manifestTotalBytes(manifest), opts.onProgress);
  const shards: Uint8Array[] = new Array(manifest.shards.length);
  let next = 0;
  const worker = async () => {
    while (next < manifest.shards.length) {
      const i = next++;
      const s = manifest.shards[i];
      const mapped = opts.fileUrls && Object.hasOwn(opts.fileUrls, s.file) ? opts.fileUrls[s.file] : undefined;
      const u = mapped !== undefined ? new URL(mapped, url) : new URL(s.file, url);
      shards[i] = await readBody(await get(u), s.byteLength, u.href, (n) => tick(n, s.file), opts.signal);
    }
  };
  const n = Math.max(1, Math.min(opts.concurrency ?? 4, manifest.shards.length));
  await Promise.all(Array.from({ length: n }, worker));
  return { manifest, shards };
}

/**
 * model.json as text, at most MAX_MANIFEST_BYTES: a server (or a proxy) that
 * sends an endless or huge body is cut off there instead of being buffered
 * whole by Response.text().
 */
async function readManifestText(r: Response, where: string, signal?: AbortSignal): Promise<string> {
  const tooBig = () => fail(`${where} is larger than ${MAX_MANIFEST_BYTES} bytes; check the URL (it should point at an msn-web model.json).`);
  const declared = Number(r.headers?.get?.('content-length') ?? NaN);
  if (declared > MAX_MANIFEST_BYTES) tooBig();
  if (!r.body) {
    const text = await r.text();
    if (text.length > MAX_MANIFEST_BYTES) tooBig();
    return text;
  }
  const reader = r.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      checkAbort(signal);
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > MAX_MANIFEST_BYTES) {
        await reader.cancel().catch(() => undefined);
        tooBig();
      }
      parts.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(all);
  } catch (e) {
    return fail(`${where} is not UTF-8 text.`, e);
  }
}

/** Reads a response body into exactly `expected` bytes (more is an error; fewer is caught by decode). */
async function readBody(r: Response, expected: number, where: string, onBytes: (n: number) => void, signal?: AbortSignal): Promise<Uint8Array> {
  const out = new Uint8Array(expected);
  if (!r.body) {
    const b = new Uint8Array(await r.arrayBuffer());
    if (b.length > expected) fail(`${where} has more bytes than the manifest's ${expected}.`);
    onBytes(b.length);
    return b.length === expected ? b : b.slice();
  }
  const reader = r.body.getReader();
  let at = 0;
  try {
    for (;;) {
      checkAbort(signal);
      const { done, value } = await reader.read();
      if (done) break;
      if (at + value.length > expected) fail(`${where} has more bytes than the manifest's ${expected}.`);
      out.set(value, at);
      at += value.length;
      onBytes(value.length);
    }
  } finally {
    reader.releaseLock();
  }
  return at === expected ? out : out.subarray(0, at);
}

function fileMap(files: ModelFiles): Map<string, Blob> {
  if (files instanceof Map) return files;
  const out = new Map<string, Blob>();
  const arrayLike = typeof (files as ArrayLike<File>).length === 'number';
  if (arrayLike) {
    for (const f of Array.from(files as ArrayLike<File>)) {
      if (typeof f?.name !== 'string') throw new MsnConfigError('A list of model files must hold File objects (with names).');
      out.set(f.name, f);
    }
  } else {
    for (const [k, v] of Object.entries(files as Record<string, Blob>)) out.set(k, v);
  }
  return out;
}

/** Reads model.json and the shards from named files (verification happens in decodeModel). */
export async function readModelFiles(files: ModelFiles, opts: LoadModelOptions = {}): Promise<EncodedModel> {
  const map = fileMap(files);
  const mf = map.get(MANIFEST_FILE);
  if (!mf) fail(`no '${MANIFEST_FILE}' among the files (${[...map.keys()].join(', ') || 'none'}).`);
  if (mf.size > MAX_MANIFEST_BYTES) fail(`${MANIFEST_FILE} is larger than ${MAX_MANIFEST_BYTES} bytes.`);
  const manifest = validateManifest(parseManifest(await mf.text(), MANIFEST_FILE), opts);
  const tick = progressTracker(manifestTotalBytes(manifest), opts.onProgress);
  const shards: Uint8Array[] = [];
  for (const s of manifest.shards) {
    checkAbort(opts.signal);
    const b = map.get(s.file);
    if (!b) fail(`shard file '${s.file}' is missing.`);
    if (b.size !== s.byteLength) fail(`shard file '${s.file}' has ${b.size} bytes, the manifest says ${s.byteLength} (truncated or wrong file?).`);
    shards.push(new Uint8Array(await b.arrayBuffer()));
    tick(b.size, s.file);
  }
  return { manifest, shards };
}
