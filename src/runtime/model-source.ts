/**
 * Where the engine's model comes from: a shipped model's name, a URL, a folder
 * (Node), encoded bytes, ModelData in memory, or a seeded random-init
 * preset/config; and the preprocessing it carries.
 */
import { DEFAULT_PRESET, DEFAULT_PREPROCESS, prototypeSeed } from '../defaults.js';
import { MsnConfigError } from '../errors.js';
import { VitConfig, getPreset, validateConfig } from '../model/config.js';
import { initPrototypes, initWeights } from '../model/params.js';
import type { ModelData } from '../io/model-format.js';
import { type LoadProgress, loadModel } from '../io/model-loader.js';
import { type ModelCache, openModelCache } from '../io/model-cache.js';
import { SHIPPED_MODELS, isShippedModelName, type ShippedModelUrls } from '../io/shipped-models.js';
import type { Capabilities, InitOptions, ModelInput } from './api.js';

type ModelSource = Capabilities['model']['source'];

/** Used when a model carries no preprocessing (random-init presets): ImageNet statistics, as pretraining defaults to (defaults.ts). */
export { DEFAULT_PREPROCESS };

function isModelData(m: unknown): m is ModelData {
  return typeof m === 'object' && m !== null && 'config' in m && 'params' in m && 'buffers' in m;
}

function isUrlLike(s: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(s) || typeof (globalThis as { document?: unknown }).document !== 'undefined' ||
    typeof (globalThis as { importScripts?: unknown }).importScripts === 'function' || !isNode();
}

function isNode(): boolean {
  return typeof process !== 'undefined' && !!process.versions?.node;
}

export function preprocessOf(model: ModelData): { mean: number[]; std: number[] } {
  const p = (model.meta as { preprocess?: { mean?: unknown; std?: unknown } } | undefined)?.preprocess;
  const c = model.config.inChannels;
  const ok = (a: unknown): a is number[] => Array.isArray(a) && a.length === c && a.every((v) => typeof v === 'number' && Number.isFinite(v));
  if (p && ok(p.mean) && ok(p.std) && p.std.every((v) => v > 0)) return { mean: [...p.mean], std: [...p.std] };
  return { mean: [...DEFAULT_PREPROCESS.mean], std: [...DEFAULT_PREPROCESS.std] };
}

export interface ResolveContext {
  /** Browser worker bundle: each shipped model's files as URLs (Node finds the installed folder instead). */
  shipped?: Record<string, ShippedModelUrls>;
  /** Bytes of model.json's shards loaded so far (not called for presets or ModelData). */
  onProgress?: (p: LoadProgress) => void;
  /** Read and store URL-loaded models here (the `cache` init option). */
  cache?: ModelCache;
}

/** The model init() asked for (exactly one of model, preset, config; none = the default preset). */
export async function resolveModel(
  model: ModelInput | undefined,
  preset: string | undefined,
  custom: VitConfig | undefined,
  seed: number,
  ctx: ResolveContext = {},
): Promise<{ data: ModelData; source: ModelSource; name?: string; fromCache?: boolean }> {
  if ((model !== undefined ? 1 : 0) + (preset !== undefined ? 1 : 0) + (custom !== undefined ? 1 : 0) > 1) {
    throw new MsnConfigError('Pass only one of model, preset and config.');
  }
  if (model === undefined) {
    const config: VitConfig = custom ? validateConfig(custom) : getPreset(preset ?? DEFAULT_PRESET);
    const w = initWeights(config, seed);
    // Same init as a fresh pretraining run with this seed (see train/state.ts).
    return { data: { config, ...w, prototypes: initPrototypes(config, prototypeSeed(seed)), meta: {} }, source: 'preset' };
  }
  const { onProgress, cache } = ctx;
  const fromUrl = async (url: string | URL, fileUrls?: Record<string, string>) => {
    const loaded = await loadModel(url, { onProgress, fileUrls, cache });
    return { data: loaded, source: 'url' as const, fromCache: loaded.from === 'cache' };
  };
  if (typeof model === 'string') {
    // A shipped model's name (a folder of that name: './msn-mnist-micro').
    if (isShippedModelName(model)) {
      const urls = ctx.shipped?.[model];
      if (urls) return { ...(await fromUrl(urls.manifest, urls.files)), name: model };
      if (!isNode()) {
        throw new MsnConfigError(`The shipped model '${model}' has no URL in this build; pass its model.json URL (e.g. from 'msn-web/models/${model}/model.json').`);
      }
      const { loadModelFromDirectory, shippedModelDirectory } = await import('../io/model-loader-node.js');
      return { data: await loadModelFromDirectory(shippedModelDirectory(model), { onProgress }), source: 'directory', name: model };
    }
    if (isUrlLike(model)) return fromUrl(model);
    const { loadModelFromDirectory, isDirectory } = await import('../io/model-loader-node.js');
    if (/^[\w.-]+$/.test(model) && !(await isDirectory(model))) {
      throw new MsnConfigError(`model '${model}' is neither a shipped model (${SHIPPED_MODELS.join(', ')}) nor a model folder; check the name or the path.`);
    }
    return { data: await loadModelFromDirectory(model, { onProgress }), source: 'directory' };
  }
  if (isModelData(model)) return { data: model, source: 'memory' };
  if (typeof model === 'object' && model !== null && 'manifest' in model) return { data: await loadModel(model, { onProgress }), source: 'memory' };
  throw new MsnConfigError(
    "model must be a shipped model's name ('msn-mnist-micro'), a URL or folder path, { manifest, shards }, or ModelData { config, params, buffers, meta }.",
  );
}

/** The `cache` init option: IndexedDB where it exists (browsers, their workers); nothing elsewhere. */
function modelCacheFor(option: boolean | string): ModelCache | undefined {
  if (typeof option !== 'boolean' && (typeof option !== 'string' || option === '')) {
    throw new MsnConfigError(`cache must be true, false or a database name, got ${JSON.stringify(option)}.`);
  }
  if (!(globalThis as { indexedDB?: unknown }).indexedDB) return undefined;
  return openModelCache(typeof option === 'string' ? { dbName: option } : {});
}

/**
 * init()'s model from its options: through the model cache when `cache` asks
 * for one, reporting progress to `onProgress`, whose failures (also a
 * proxied callback's rejected promise) never fail the load.
 */
export function loadInitModel(
  opts: InitOptions,
  seed: number,
  shipped: Record<string, ShippedModelUrls> | undefined,
  onProgress?: (p: LoadProgress) => void,
): ReturnType<typeof resolveModel> {
  const progress = onProgress && ((p: LoadProgress) => {
    try {
      void Promise.resolve(onProgress(p)).catch(() => undefined);
    } catch {
      // A throwing progress callback must not fail the load.
    }
  });
  const cache = opts.cache !== undefined && opts.cache !== false ? modelCacheFor(opts.cache) : undefined;
  return resolveModel(opts.model, opts.preset, opts.config, seed, { shipped, onProgress: progress, cache });
}
