/**
 * MsnEngine: the whole SDK behind one object that speaks plain data (typed
 * arrays, numbers, strings, plain objects). It runs in a worker behind the
 * client (see client.ts, worker-host.ts) or in-thread with the same methods.
 *
 * A facade over three parts, each usable on its own:
 * - Embedder (embedder.ts): the encoder in use, its preprocessing, the passes
 *   from pixels to features and prototype assignments;
 * - HeadStore (head-store.ts): fitted heads by id;
 * - PretrainSession (pretrain-session.ts): the pretraining run, whose code is
 *   loaded with a dynamic import on first use, so inference-only use never
 *   loads training code.
 * What is left here spans the parts: init, the out-of-memory guard (after a
 * failed allocation every call fails), dispose, capabilities.
 *
 * @example
 * const engine = new MsnEngine();
 * await engine.init({ preset: 'micro-p4-28', backend: 'wasm' });
 * const feats = await engine.embed(pixels, { count: 2, width: 28, height: 28, channels: 1 });
 * engine.dispose();
 */
import * as tf from '@tensorflow/tfjs-core';
import { wasmKernelStatus } from '../kernels/wasm/kernels.js';
import { DEFAULT_SEED } from '../defaults.js';
import { MsnConfigError, MsnDisposedError, MsnResourceError, MsnWorkerError } from '../errors.js';
import type { Prediction } from '../heads/common.js';
import type { LoadProgress } from '../io/model-loader.js';
import type { ShippedModelUrls } from '../io/shipped-models.js';
import type {
  AssignOptions, Capabilities, EmbedOptions, FeatureOrPixels, FitHeadInput, ImageShape, InitOptions, MemoryInfo,
  MsnApi, PixelData, Pixels, PredictOptions, PretrainRunOptions, PretrainSummary, PrototypeAssignment,
} from './api.js';
import { loadInitModel } from './model-source.js';
import { type CheckedPixels, checkPixels } from './pixels.js';
import { BackendSelection, selectBackend } from './select-backend.js';
import { asResourceError } from './resources.js';
import type { WasmFiles } from './backend.js';
import type { ReplicaHost } from '../pretrain/replica.js';
import { Embedder } from './embedder.js';
import { HeadStore } from './head-store.js';
import { type CheckpointCallback, type ProgressCallback, PretrainSession } from './pretrain-session.js';

export interface EngineOptions {
  /** Where this engine runs (reported by capabilities()). */
  host?: Capabilities['host'];
  /** wasm folder used when init() gets no wasmPath (the worker bundle passes its own folder). */
  defaultWasmPath?: string;
  /** Otherwise each .wasm file's URL (the worker bundle passes `new URL(..., import.meta.url)` literals that bundlers emit). */
  defaultWasmFiles?: WasmFiles;
  /** The shipped models' files as URLs, by model name (the browser worker bundle; Node reads the installed folder). */
  shippedModels?: Record<string, ShippedModelUrls>;
  /** Where `pretrain({ workers })` starts its replicas (the browser worker bundle passes Web Workers of itself; default: Node's worker threads). */
  replicaHost?: ReplicaHost;
}

export class MsnEngine implements MsnApi {
  private readonly opts: EngineOptions;
  private selection: BackendSelection | undefined;
  /** Created by init(): the encoder in use, its preprocessing and the embedding passes. */
  private embedder: Embedder | undefined;
  private readonly heads: HeadStore;
  private readonly session: PretrainSession;
  /** Where the model init() loaded came from (a run reports its own origin). */
  private loaded: { source: Capabilities['model']['source']; name?: string; fromCache?: boolean } = { source: 'preset' };
  private seed = DEFAULT_SEED;
  private initializing: Promise<Capabilities> | undefined;
  private disposed = false;
  /** Set when a backend ran out of memory mid-call: its state cannot be trusted, so every later call fails. */
  private broken: MsnResourceError | undefined;

  constructor(opts: EngineOptions = {}) {
    this.opts = opts;
    this.heads = new HeadStore({
      fingerprint: () => this.embedding.fingerprint(),
      sizes: () => this.embedding.config,
      features: (d) => {
        const src = checkPixels(d.pixels, d.shape, d.options);
        return this.guard('Embedding', 'Embed fewer images per call or keep resize on.', () => this.embedding.embed(src, d.options));
      },
      prototypeProbs: async (d, tau) => (await this.assignChecked(checkPixels(d.pixels, d.shape, d.options), { ...d.options, topK: 1, temperature: tau, full: true })).full!,
    });
    this.session = new PretrainSession({
      start: () => ({ encoder: this.embedding.encoder, preprocess: this.embedding.preprocess, prototypes: this.embedding.basePrototypes, seed: this.seed }),
      // After an out-of-memory failure the embedder is gone (release()): nothing to follow or free then.
      follow: (lent) => this.embedder?.follow(lent),
      releaseBase: () => this.embedder?.releaseBase(),
      guard: (f) => this.guard('pretrain()', 'Lower batchSize.', f),
      replicas: () => ({ host: this.opts.replicaHost, backend: this.selection?.backend === 'cpu' ? 'cpu' : 'wasm' }),
    });
  }

  /** Starts the backend and loads (or creates) the model; resolves with capabilities(). */
  init(opts: InitOptions = {}, onProgress?: (p: LoadProgress) => void): Promise<Capabilities> {
    if (this.disposed) return Promise.reject(new MsnDisposedError('init() called after dispose(); create a new client.'));
    if (this.initializing) return Promise.reject(new MsnConfigError('init() was already called on this engine; create a new client for another model.'));
    this.initializing = this.doInit(opts, onProgress);
    return this.initializing;
  }

  private async doInit(opts: InitOptions, onProgress?: (p: LoadProgress) => void): Promise<Capabilities> {
    if (typeof opts !== 'object' || opts === null) throw new MsnConfigError('init() expects an options object.');
    this.seed = opts.seed ?? DEFAULT_SEED;
    if (!Number.isInteger(this.seed)) throw new MsnConfigError(`seed must be an integer, got ${String(opts.seed)}.`);
    this.selection = await selectBackend(opts.backend ?? 'auto', { wasmPath: opts.wasmPath ?? this.opts.defaultWasmPath, wasmFiles: this.opts.defaultWasmFiles });
    const { data, source, name, fromCache } = await loadInitModel(opts, this.seed, this.opts.shippedModels, onProgress);
    this.embedder = Embedder.fromModelData(data);
    this.loaded = { source, name, fromCache };
    await this.embedder.warmUp();
    return this.describe();
  }

  /** The embedder once init() created it. */
  private get embedding(): Embedder {
    if (!this.embedder) throw new MsnConfigError('The engine is not initialised: await init() first.');
    return this.embedder;
  }

  private async ready(what: string): Promise<void> {
    this.assertAlive(what);
    if (!this.initializing) throw new MsnConfigError(`${what}() called before init().`);
    await this.initializing;
    // In-thread engines share tfjs' global backend: make sure ours is active.
    if (this.selection && tf.getBackend() !== this.selection.backend) await tf.setBackend(this.selection.backend);
  }

  /**
   * Runs f; a backend out-of-memory failure becomes MsnResourceError and
   * marks the engine broken (a wasm heap that failed mid-kernel cannot be
   * trusted), so later calls reject with MsnWorkerError. Refusals planned
   * before any allocation (MsnResourceError from resources.ts) leave it usable.
   */
  private async guard<T>(what: string, hint: string, f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      const r = asResourceError(e, what, `${hint} This engine is no longer usable: create a new client.`);
      if (r !== e) {
        this.broken = r as MsnResourceError;
        this.release();
      }
      throw r;
    }
  }

  /** Frees every tensor the parts hold (best effort after a failure: the backend may be in a bad state). */
  private release(): void {
    try {
      this.session.dispose();
      this.embedder?.dispose();
    } catch {
      // Nothing more can be done for a failed heap.
    }
    this.embedder = undefined;
    this.heads.clear();
  }

  /** Features [count x D] of the images (see Embedder.embed). */
  async embed(pixels: Pixels, shape: ImageShape, opts: EmbedOptions = {}): Promise<Float32Array> {
    await this.ready('embed');
    const src = checkPixels(pixels, shape, opts);
    return this.guard('embed()', 'Pass a smaller batchSize, keep resize on, or embed fewer images per call.', () => this.embedding.embed(src, opts));
  }

  /** MSN's own prediction, which needs no labels: each image's probabilities over the prototypes (see Embedder.assign). */
  async assignPrototypes(pixels: Pixels, shape: ImageShape, opts: AssignOptions = {}): Promise<PrototypeAssignment> {
    await this.ready('assignPrototypes');
    return this.assignChecked(checkPixels(pixels, shape, opts), opts);
  }

  /** The one guarded path from pixels to prototype probabilities: assignPrototypes() and the inputs of prototype-label heads. */
  private assignChecked(src: CheckedPixels, opts: AssignOptions): Promise<PrototypeAssignment> {
    return this.guard('assignPrototypes()', 'Pass a smaller batchSize or keep resize on.', () => this.embedding.assign(src, opts));
  }

  /** Runs MSN pretraining on the images (see PretrainSession.pretrain); embed() then uses the run's target encoder. */
  async pretrain(data: PixelData, opts: PretrainRunOptions = {}, onProgress?: ProgressCallback, onCheckpoint?: CheckpointCallback): Promise<PretrainSummary> {
    this.assertAlive('pretrain');
    return this.session.pretrain(() => this.ready('pretrain'), data, opts, onProgress, onCheckpoint);
  }

  /** Stops a running pretrain() at the next step boundary. */
  async abortPretraining(): Promise<void> {
    this.session.abort();
  }

  /** The pretraining run as bytes (tensor container with CRC-32s): resume with loadCheckpoint(). */
  async saveCheckpoint(): Promise<Uint8Array> {
    return this.ready('saveCheckpoint').then(() => this.session.saveCheckpoint());
  }

  /** Replaces the model and the run with a checkpoint's (exact resume). */
  async loadCheckpoint(bytes: Uint8Array): Promise<Capabilities> {
    await this.ready('loadCheckpoint');
    await this.session.loadCheckpoint(bytes);
    return this.describe();
  }

  /** Fits a head on features or images; returns its id (see HeadStore.fit). */
  async fitHead(input: FitHeadInput): Promise<string> {
    return this.ready('fitHead').then(() => this.heads.fit(input));
  }

  /** Class probabilities and labels for features or images. */
  async predict(headId: string, input: FeatureOrPixels, opts: PredictOptions = {}): Promise<Prediction> {
    return this.ready('predict').then(() => this.heads.predict(headId, input, opts));
  }

  /** The head as bytes (versioned bundle with a checksum and the encoder fingerprint). */
  async saveHead(headId: string): Promise<Uint8Array> {
    return this.ready('saveHead').then(() => this.heads.save(headId));
  }

  /** Loads a head saved by saveHead(); MsnConfigError if it was fitted on another encoder. */
  async loadHead(bytes: Uint8Array): Promise<string> {
    return this.ready('loadHead').then(() => this.heads.load(bytes));
  }

  async deleteHead(headId: string): Promise<void> {
    this.assertAlive('deleteHead');
    this.heads.delete(headId);
  }

  /** Backend (and why the others were not used), model, run and heads. */
  async capabilities(): Promise<Capabilities> {
    await this.ready('capabilities');
    return this.describe();
  }

  private async describe(): Promise<Capabilities> {
    const sel = this.selection!;
    const p = this.session.pretrainer;
    const source = this.session.origin ?? this.loaded.source;
    const { name, fromCache } = this.loaded;
    return {
      backend: sel.backend,
      requested: sel.requested,
      backends: structuredClone(sel.backends),
      ...(sel.wasm ? { wasm: { ...sel.wasm } } : {}),
      ...(sel.backend === 'wasm' ? { wasmKernels: wasmKernelStatus() } : {}),
      ...(sel.webgpu ? { webgpu: { ...sel.webgpu } } : {}),
      crossOriginIsolated: Boolean((globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated),
      host: this.opts.host ?? 'in-thread',
      model: { config: { ...this.embedding.config }, fingerprint: await this.embedding.fingerprint(), preprocess: structuredClone(this.embedding.preprocess), source,
        ...(name && (source === 'url' || source === 'directory') ? { name } : {}),
        ...(source === 'url' && fromCache !== undefined ? { fromCache } : {}), randomWeights: source === 'preset' },
      ...(p ? { pretraining: { step: p.step, totalSteps: p.config.totalSteps, batchSize: p.config.batchSize, workers: 'workers' in p ? p.workers : 1 } } : {}),
      heads: this.heads.ids(),
      tfjsVersion: tf.version_core,
    };
  }

  /** tfjs memory of this thread (numTensors stays flat across calls; see the tests). */
  async memory(): Promise<MemoryInfo> {
    const m = tf.memory();
    return { numTensors: m.numTensors, numBytes: m.numBytes };
  }

  /** Health check: the byte length of `data` as received (measures the transport, does no work). */
  async ping(data?: ArrayBufferView): Promise<number> {
    this.assertAlive('ping');
    return data?.byteLength ?? 0;
  }

  /** Stops a run, frees every tensor; later calls throw MsnDisposedError. Idempotent. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.session.stop();
    try {
      await this.initializing;
    } catch {
      // A failed init leaves nothing to free beyond what exists below.
    }
    this.release();
  }

  private assertAlive(what: string): void {
    if (this.disposed) throw new MsnDisposedError(`${what}() called after dispose(); create a new client.`);
    if (this.broken) throw new MsnWorkerError(`${what}() called on an engine that ran out of memory earlier (${this.broken.message}); create a new client.`);
  }
}

export function createEngine(opts: EngineOptions = {}): MsnEngine {
  return new MsnEngine(opts);
}
