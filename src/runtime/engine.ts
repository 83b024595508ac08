/**
 * MsnEngine: the whole SDK behind one object that speaks plain data (typed
 * arrays, numbers, strings, plain objects). It runs in a worker behind the
 * client (see client.ts, worker-host.ts) or in-thread with the same methods.
 *
 * State: one encoder used for inference (loaded, random-init preset, or the
 * target encoder of the pretraining run once pretrain() or loadCheckpoint()
 * was called), the pretraining run (loaded on first use with a dynamic
 * import, so inference-only use never loads training code), and fitted heads
 * by id. dispose() frees every tensor the engine created.
 *
 * @example
 * const engine = new MsnEngine();
 * await engine.init({ preset: 'micro-p4-28', backend: 'wasm' });
 * const feats = await engine.embed(pixels, { count: 2, width: 28, height: 28, channels: 1 });
 * engine.dispose();
 */
import * as tf from '@tensorflow/tfjs-core';
import { wasmKernelStatus } from '../kernels/wasm/kernels.js';
import { DEFAULT_SEED, OFFICIAL_SCHEDULE, prototypeSeed } from '../defaults.js';
import { MsnConfigError, MsnDisposedError, MsnResourceError, MsnShapeError, MsnValueError, MsnWorkerError } from '../errors.js';
import type { VitConfig } from '../model/config.js';
import { initPrototypes } from '../model/params.js';
import { VisionTransformer } from '../model/vit.js';
import { batchFeatures } from '../embed/embed.js';
import { assignImages } from '../embed/assign.js';
import { PROTOTYPE_TEMPERATURE } from '../model/prototypes.js';
import { encoderFingerprint } from '../embed/fingerprint.js';
import { bundleToBytes, loadHead as loadHeadBundle, type AnyHead } from '../heads/bundle.js';
import { headKind, kindOptions } from '../heads/registry.js';
import { fitPrototypeLabelHead, prototypeLabelHeadFromNames } from '../heads/prototype-label.js';
import type { FeatureMatrix, Prediction } from '../heads/common.js';
import type { Pretrainer } from '../pretrain/pretrainer.js';
import type { LoadProgress } from '../io/model-loader.js';
import { type ModelCache, openModelCache } from '../io/model-cache.js';
import type { ShippedModelUrls } from '../io/shipped-models.js';
import type {
  AssignOptions, Capabilities, EmbedOptions, FeatureOrPixels, FitHeadInput, ImageShape, InitOptions, MemoryInfo,
  MsnApi, PixelData, Pixels, PredictOptions, PretrainProgress, PretrainRunOptions, PretrainSummary, PrototypeAssignment,
} from './api.js';
import { DEFAULT_PREPROCESS, preprocessOf, resolveModel } from './model-source.js';
import { CheckedPixels, checkPixels, pixelBatch, pretrainPixels } from './pixels.js';
import { BackendSelection, checkGpuErrors, selectBackend, withGpuCheck } from './select-backend.js';
import { asResourceError, checkTrainBatch, embedPassSize } from './resources.js';
import type { WasmFiles } from './backend.js';

export interface EngineOptions {
  /** Where this engine runs (reported by capabilities()). */
  host?: Capabilities['host'];
  /** wasm folder used when init() gets no wasmPath (the worker bundle passes its own folder). */
  defaultWasmPath?: string;
  /** Otherwise each .wasm file's URL (the worker bundle passes `new URL(..., import.meta.url)` literals that bundlers emit). */
  defaultWasmFiles?: WasmFiles;
  /** The shipped models' files as URLs, by model name (the browser worker bundle; Node reads the installed folder). */
  shippedModels?: Record<string, ShippedModelUrls>;
}

const RUN_KEYS = ['batchSize', 'totalSteps', 'warmupSteps', 'seed', 'lr'] as const;

export class MsnEngine implements MsnApi {
  private readonly host: Capabilities['host'];
  private readonly defaultWasmPath: string | undefined;
  private readonly defaultWasmFiles: WasmFiles | undefined;
  private readonly shippedModels: Record<string, ShippedModelUrls> | undefined;
  private selection: BackendSelection | undefined;
  /** The encoder when no pretraining run owns one. */
  private model: VisionTransformer | undefined;
  private prototypes: Float32Array | undefined;
  private pretrainer: Pretrainer | undefined;
  private preprocess = { mean: [...DEFAULT_PREPROCESS.mean], std: [...DEFAULT_PREPROCESS.std] };
  private source: Capabilities['model']['source'] = 'preset';
  private modelName: string | undefined;
  private fromCache: boolean | undefined;
  private seed = 0;
  private fingerprintCache: Promise<string> | undefined;
  private readonly heads = new Map<string, AnyHead>();
  private nextHead = 1;
  private run: { abort: AbortController; done: Promise<unknown> } | undefined;
  private initializing: Promise<Capabilities> | undefined;
  private disposed = false;
  /** What a run created by the current pretrain() call replaced (restored if it fails before its first step). */
  private previous: { source: Capabilities['model']['source'] } | undefined;
  /** Set when a backend ran out of memory mid-call: its state cannot be trusted, so every later call fails. */
  private broken: MsnResourceError | undefined;

  constructor(opts: EngineOptions = {}) {
    this.host = opts.host ?? 'in-thread';
    this.defaultWasmPath = opts.defaultWasmPath;
    this.defaultWasmFiles = opts.defaultWasmFiles;
    this.shippedModels = opts.shippedModels;
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
    this.selection = await selectBackend(opts.backend ?? 'auto', { wasmPath: opts.wasmPath ?? this.defaultWasmPath, wasmFiles: this.defaultWasmFiles });
    const progress = onProgress && ((p: LoadProgress) => {
      try {
        void Promise.resolve(onProgress(p)).catch(() => undefined); // a proxied callback returns a promise
      } catch {
        // A throwing progress callback must not fail the load.
      }
    });
    const cache = opts.cache !== undefined && opts.cache !== false ? modelCacheFor(opts.cache) : undefined;
    const { data, source, name, fromCache } = await resolveModel(opts.model, opts.preset, opts.config, this.seed, { shipped: this.shippedModels, onProgress: progress, cache });
    this.model = VisionTransformer.create(data.config, { params: data.params, buffers: data.buffers });
    this.prototypes = data.prototypes;
    this.preprocess = preprocessOf(data);
    this.source = source;
    this.modelName = name;
    this.fromCache = fromCache;
    // Warm-up: the first forward pass compiles kernels (shaders on WebGPU).
    const s = data.config.imgSize;
    const warm = tf.tidy(() => this.model!.encode(tf.zeros([1, s, s, data.config.inChannels]) as tf.Tensor4D, { checkFinite: false }).clsPre);
    await warm.data();
    warm.dispose();
    await checkGpuErrors('init');
    return this.describe();
  }

  /** The encoder used for inference right now. */
  private get encoder(): VisionTransformer {
    const e = this.pretrainer?.state.target ?? this.model;
    if (!e) throw new MsnConfigError('The engine is not initialised: await init() first.');
    return e;
  }

  private get config(): VitConfig {
    return this.encoder.cfg;
  }

  /** Fingerprint of the current encoder's weights (cached until they change). */
  private fingerprint(): Promise<string> {
    if (!this.fingerprintCache) {
      const enc = this.encoder;
      this.fingerprintCache = enc.readWeights().then((w) => encoderFingerprint(enc.cfg, w.params));
    }
    return this.fingerprintCache;
  }

  private async ready(what: string): Promise<void> {
    this.assertAlive(what);
    if (!this.initializing) throw new MsnConfigError(`${what}() called before init().`);
    await this.initializing;
    // In-thread engines share tfjs' global backend: make sure ours is active.
    if (this.selection && tf.getBackend() !== this.selection.backend) await tf.setBackend(this.selection.backend);
  }

  /**
   * Features [count x D] of the images: resized to the model size (unless
   * `resize: false`), normalised with the model's mean/std, encoded.
   */
  async embed(pixels: Pixels, shape: ImageShape, opts: EmbedOptions = {}): Promise<Float32Array> {
    await this.ready('embed');
    const src = checkPixels(pixels, shape, opts);
    return this.guard('embed()', 'Pass a smaller batchSize, keep resize on, or embed fewer images per call.', () => this.embedChecked(src, opts));
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
        this.releaseAfterFailure();
      }
      throw r;
    }
  }

  /** Frees what a broken engine holds (best effort: the backend may be in a bad state). */
  private releaseAfterFailure(): void {
    try {
      this.pretrainer?.dispose();
      this.model?.dispose();
    } catch {
      // Nothing more can be done for a failed heap.
    }
    this.pretrainer = undefined;
    this.model = undefined;
    this.heads.clear();
  }

  private async embedChecked(src: CheckedPixels, opts: EmbedOptions): Promise<Float32Array> {
    const enc = this.encoder;
    const cfg = enc.cfg;
    const size = opts.resize === false ? undefined : cfg.imgSize;
    const { height, width, count } = src.shape;
    if (size === undefined && (height < cfg.patchSize || width < cfg.patchSize)) {
      throw new MsnShapeError(`Images of ${height}x${width} px are smaller than one ${cfg.patchSize} px patch; resize them or drop resize: false.`);
    }
    const requested = opts.batchSize ?? 64;
    if (!Number.isInteger(requested) || requested < 1) throw new MsnValueError(`batchSize must be a positive integer, got ${requested}.`);
    // Large calls are split into passes that fit the heap (or refused when one image cannot).
    const bs = embedPassSize(cfg, size ?? height, size ?? width, requested, size !== undefined);
    if (opts.feature !== undefined && opts.feature !== 'pre' && opts.feature !== 'post') {
      throw new MsnValueError(`feature must be 'pre' or 'post', got ${String(opts.feature)}.`);
    }
    const d = cfg.embedDim;
    const out = new Float32Array(count * d);
    const { mean, std } = this.preprocess;
    for (let start = 0; start < count; start += bs) {
      const idx = Int32Array.from({ length: Math.min(bs, count - start) }, (_, i) => start + i);
      const raw = pixelBatch(src, idx, cfg.inChannels, size);
      // checkPixels checked every value, so no (synchronous) finiteness read here.
      let feats: tf.Tensor2D;
      try {
        feats = batchFeatures(enc, raw, { mean, std, feature: opts.feature, l2Normalize: opts.l2Normalize }, false);
      } finally {
        raw.dispose();
      }
      try {
        out.set(await feats.data(), start * d); // async read: no GPU stall on webgpu
      } finally {
        feats.dispose();
      }
    }
    await checkGpuErrors('embed');
    return out;
  }

  /**
   * MSN's own prediction, which needs no labels: each image's probabilities
   * over the K learned prototypes (projection head in eval mode, softmax of
   * cosine similarities at `temperature`, as the official loss computes the
   * anchor probabilities), reported as the top-k ids and probabilities per
   * image, the mean assignment, and on request every probability.
   */
  async assignPrototypes(pixels: Pixels, shape: ImageShape, opts: AssignOptions = {}): Promise<PrototypeAssignment> {
    await this.ready('assignPrototypes');
    const src = checkPixels(pixels, shape, opts);
    const k = this.config.numPrototypes;
    const topK = opts.topK ?? Math.min(5, k);
    if (!Number.isInteger(topK) || topK < 1 || topK > k) throw new MsnValueError(`topK must be an integer from 1 to ${k} (the number of prototypes), got ${String(opts.topK)}.`);
    return this.assignChecked(src, { ...opts, topK, tau: checkTemperature(opts.temperature) });
  }

  /** The one path from pixels to prototype probabilities: assignPrototypes() and the inputs of prototype-label heads. */
  private async assignChecked(src: CheckedPixels, opts: AssignOptions & { topK: number; tau: number }): Promise<PrototypeAssignment> {
    const enc = this.encoder;
    const cfg = enc.cfg;
    const k = cfg.numPrototypes;
    const { topK, tau } = opts;
    const requested = opts.batchSize ?? 64;
    if (!Number.isInteger(requested) || requested < 1) throw new MsnValueError(`batchSize must be a positive integer, got ${requested}.`);
    const owned = this.pretrainer ? undefined : this.prototypes;
    if (!this.pretrainer && !owned) throw new MsnConfigError('This model has no prototypes (it was saved without them); load a model or checkpoint that has them.');
    const size = opts.resize === false ? undefined : cfg.imgSize;
    const { count, height, width } = src.shape;
    const bs = embedPassSize(cfg, size ?? height, size ?? width, requested, size !== undefined);
    return this.guard('assignPrototypes()', 'Pass a smaller batchSize or keep resize on.', async () => {
      const protos = (this.pretrainer ? this.pretrainer.state.prototypes : tf.tensor2d(owned!, [k, cfg.outputDim])) as tf.Tensor2D;
      try {
        const batch = (start: number, n: number) => pixelBatch(src, Int32Array.from({ length: n }, (_, i) => start + i), cfg.inChannels, size);
        const result = await assignImages(enc, batch, count, protos, { ...this.preprocess, tau, topK, full: opts.full, passSize: bs });
        await checkGpuErrors('assignPrototypes');
        return result;
      } finally {
        if (protos !== this.pretrainer?.state.prototypes) protos.dispose();
      }
    });
  }

  /**
   * Runs MSN pretraining on the images. The first call starts a run from the
   * current encoder's weights (batchSize, totalSteps, ... apply then); later
   * calls continue it. A call that would run past the run's plan starts a
   * new segment of its `steps` (short warm-up, its own cosine and EMA ramp;
   * see Pretrainer.planSteps); without `steps` a call runs to the end of the
   * plan, or one more plan of the same length when it is done. Afterwards
   * the run's target encoder is the one embed() uses. Every argument is
   * checked before anything changes, and a call that fails before its first
   * step leaves no run behind. Rejects with name 'AbortError' after
   * abortPretraining() or `signal` (the run stays consistent: save it or
   * continue later), with MsnDisposedError when dispose() stops it.
   */
  async pretrain(
    data: PixelData,
    opts: PretrainRunOptions = {},
    onProgress?: (p: PretrainProgress) => void,
    onCheckpoint?: (bytes: Uint8Array, step: number) => void | Promise<void>,
  ): Promise<PretrainSummary> {
    this.assertAlive('pretrain');
    if (this.run) throw new MsnValueError('A pretraining run is already in progress; await it or call abortPretraining() first.');
    // The run is registered before the first await, so an abortPretraining() sent right after this call finds it.
    const abort = new AbortController();
    const outer = opts?.signal;
    const onOuterAbort = () => abort.abort();
    if (outer?.aborted) abort.abort();
    outer?.addEventListener('abort', onOuterAbort);
    let resolveDone!: () => void;
    this.run = { abort, done: new Promise<void>((r) => (resolveDone = r)) };
    let created: Pretrainer | undefined;
    try {
      await this.ready('pretrain');
      checkRunOptions(opts);
      if (typeof data !== 'object' || data === null) throw new MsnValueError('pretrain() expects { pixels, shape }.');
      const src = checkPixels(data.pixels, data.shape, data.options);
      const [{ datasetFromPixels }, { checkpointToBytes }] = await Promise.all([
        import('../pretrain/source.js'),
        import('../pretrain/checkpoint.js'),
      ]);
      const existing = this.pretrainer;
      const given = RUN_KEYS.filter((k) => opts[k] !== undefined);
      if (existing && given.length) {
        throw new MsnConfigError(
          `A pretraining run already exists (step ${existing.step}); ${given.join(', ')} can only be set when it starts. ` +
            'Pass only steps/checkpointEvery to continue it.',
        );
      }
      const p = existing ?? (created = await this.newPretrainer(opts));
      const cfg = p.config;
      if (src.shape.count < cfg.batchSize) {
        throw new MsnValueError(`The dataset has ${src.shape.count} images, fewer than one batch of ${cfg.batchSize}; add images or lower batchSize.`);
      }
      checkTrainBatch(cfg.model, cfg.views, cfg.batchSize);
      const steps = opts.steps ?? (p.planEnd > p.step ? p.planEnd - p.step : cfg.totalSteps);
      p.planSteps(steps);
      if (created) this.adopt(created);
      const { data: px, channels } = pretrainPixels(src);
      const dataset = datasetFromPixels(px, src.shape.count, src.shape.height, src.shape.width, channels);
      const summary = await this.guard('pretrain()', 'Lower batchSize.', () => withGpuCheck('pretrain', () => p.fit(dataset, {
        steps,
        signal: abort.signal,
        checkpointEvery: opts.checkpointEvery,
        onProgress: onProgress && ((e) => {
          const ev: PretrainProgress = {
            step: e.step, iteration: e.iteration, epoch: e.epoch, loss: e.loss, ce: e.ce, memax: e.memax, lr: e.lr,
            numProtosUsed: e.numProtosUsed, skipped: e.skipped, imagesPerSec: e.imagesPerSec, etaSec: e.etaSec,
          };
          try {
            const r = onProgress(ev) as unknown;
            if (r instanceof Promise) r.catch(() => undefined);
          } catch {
            // A failing progress callback must not stop training.
          }
        }),
        onCheckpoint: onCheckpoint && (async (c) => onCheckpoint(checkpointToBytes(c), c.step)),
      })));
      return { steps: summary.steps, skippedSteps: summary.skippedSteps, totalStep: p.step, lastLoss: summary.lastLoss, seconds: summary.seconds };
    } catch (e) {
      // A run this call created and that took no step is undone: the encoder stays what it was.
      if (created && created.step === 0 && this.pretrainer === created) this.unadopt(created);
      else if (created && this.pretrainer !== created) created.dispose();
      if (this.disposed && (e as Error)?.name === 'AbortError') {
        throw new MsnDisposedError('dispose() was called while pretraining; the run stopped at a step boundary and was freed.');
      }
      throw e;
    } finally {
      outer?.removeEventListener('abort', onOuterAbort);
      if (this.pretrainer && this.pretrainer.step > 0 && this.model) {
        // The run took a step: the model it started from is no longer needed.
        this.model.dispose();
        this.model = undefined;
        this.prototypes = undefined;
        this.previous = undefined;
      }
      this.fingerprintCache = undefined; // the target encoder moved
      this.run = undefined;
      resolveDone();
    }
  }

  /** A new run from the current encoder's weights (not yet the engine's: see adopt). */
  private async newPretrainer(opts: PretrainRunOptions): Promise<Pretrainer> {
    const { Pretrainer } = await import('../pretrain/pretrainer.js');
    const enc = this.encoder;
    const cfg = enc.cfg;
    const seed = opts.seed ?? this.seed;
    return Pretrainer.fromWeights(
      {
        model: cfg,
        views: { mean: this.preprocess.mean, std: this.preprocess.std },
        batchSize: opts.batchSize,
        totalSteps: opts.totalSteps ?? opts.steps,
        warmupSteps: opts.warmupSteps,
        seed,
        ...(opts.lr ? { lr: { ...OFFICIAL_SCHEDULE.lr, ...opts.lr } } : {}),
      },
      await enc.readWeights(),
      this.prototypes ?? initPrototypes(cfg, prototypeSeed(seed)), // as Pretrainer.create would for an untouched preset
      enc.numBatchesTracked,
    );
  }

  /** The new run's target encoder becomes the engine's encoder; the previous model is kept until the run takes a step. */
  private adopt(p: Pretrainer): void {
    this.pretrainer = p;
    this.previous = { source: this.source };
    this.source = 'pretrained';
  }

  private unadopt(p: Pretrainer): void {
    this.pretrainer = undefined;
    this.source = this.previous?.source ?? this.source;
    this.previous = undefined;
    p.dispose();
  }

  /** Stops a running pretrain() at the next step boundary. */
  async abortPretraining(): Promise<void> {
    this.run?.abort.abort();
  }

  /** The pretraining run as bytes (tensor container with CRC-32s): resume with loadCheckpoint(). */
  async saveCheckpoint(): Promise<Uint8Array> {
    await this.ready('saveCheckpoint');
    if (!this.pretrainer) throw new MsnValueError('There is no pretraining run to save: call pretrain() or loadCheckpoint() first.');
    const { checkpointToBytes } = await import('../pretrain/checkpoint.js');
    const bytes = checkpointToBytes(await this.pretrainer.readCheckpoint());
    await checkGpuErrors('saveCheckpoint');
    return bytes;
  }

  /** Replaces the model and the run with a checkpoint's (exact resume). */
  async loadCheckpoint(bytes: Uint8Array): Promise<Capabilities> {
    await this.ready('loadCheckpoint');
    if (this.run) throw new MsnValueError('A pretraining run is in progress; abort it before loading a checkpoint.');
    if (!(bytes instanceof Uint8Array)) throw new MsnValueError('loadCheckpoint() expects a Uint8Array.');
    const [{ Pretrainer }, { checkpointFromBytes }] = await Promise.all([import('../pretrain/pretrainer.js'), import('../pretrain/checkpoint.js')]);
    const p = Pretrainer.fromCheckpoint(checkpointFromBytes(bytes));
    this.pretrainer?.dispose();
    this.model?.dispose();
    this.model = undefined;
    this.prototypes = undefined;
    this.pretrainer = p;
    this.preprocess = { mean: [...p.config.views.mean], std: [...p.config.views.std] };
    this.source = 'checkpoint';
    this.fingerprintCache = undefined;
    return this.describe();
  }

  private async features(input: FeatureOrPixels, count?: number): Promise<FeatureMatrix> {
    if (typeof input !== 'object' || input === null) throw new MsnValueError('Expected { features } or { pixels, shape }.');
    if ('features' in input) {
      const data = input.features;
      if (!(data instanceof Float32Array)) throw new MsnValueError('features must be a Float32Array (count x dim, row-major).');
      const n = input.count ?? count;
      if (n === undefined || !Number.isInteger(n) || n < 1 || data.length % n !== 0) {
        throw new MsnShapeError(`features has ${data.length} values, which is not a whole number of rows for count ${String(n)}.`);
      }
      return { data, count: n, dim: data.length / n };
    }
    const src = checkPixels(input.pixels, input.shape, input.options);
    const data = await this.guard('Embedding', 'Embed fewer images per call or keep resize on.', () => this.embedChecked(src, input.options ?? {}));
    return { data, count: src.shape.count, dim: this.config.embedDim };
  }

  /**
   * A head's input: `features` as given, or computed from pixels: encoder
   * features, or with `prototypesAt` (a prototype-label head's temperature)
   * the full prototype assignment.
   */
  private async headInput(input: FeatureOrPixels, count: number | undefined, prototypesAt?: number): Promise<FeatureMatrix> {
    if (prototypesAt === undefined || typeof input !== 'object' || input === null || 'features' in input) return this.features(input, count);
    const src = checkPixels(input.pixels, input.shape, input.options);
    const a = await this.assignChecked(src, { ...input.options, topK: 1, tau: prototypesAt, full: true });
    return { data: a.full!, count: a.count, dim: a.numPrototypes };
  }

  /** A prototype-label head from named prototypes, or from labelled images (pixels, or their assignments as features). */
  private async prototypeHead(input: FitHeadInput): Promise<AnyHead> {
    const k = this.config.numPrototypes;
    const temperature = checkTemperature(input.temperature);
    const common = { encoderFingerprint: await this.fingerprint(), unknownThreshold: input.unknownThreshold, temperature };
    if ('prototypeLabels' in input) return prototypeLabelHeadFromNames(input.prototypeLabels, { ...common, numPrototypes: k });
    const labels = checkLabels(input.labels);
    const a = await this.headInput(input, labels.length, temperature);
    if (a.dim !== k) {
      throw new MsnShapeError(
        `A prototype-label head takes prototype probabilities, ${k} per image for this model (assignPrototypes(..., { full: true }).full), ` +
          `but got ${a.dim} values per example; pass those, or pixels.`,
      );
    }
    return fitPrototypeLabelHead(a, labels, common);
  }

  /**
   * Fits a head on features (or on images, embedded first); returns its id.
   * kind 'prototype-label' takes prototype assignments (or images, assigned
   * first), or `prototypeLabels` instead of examples.
   */
  async fitHead(input: FitHeadInput): Promise<string> {
    await this.ready('fitHead');
    if (input?.kind === 'prototype-label') return this.addHead(await this.prototypeHead(input));
    if (typeof input !== 'object' || input === null || !('labels' in input)) {
      throw new MsnValueError("fitHead() needs { labels } with { features } or { pixels, shape } ({ prototypeLabels } only with kind 'prototype-label').");
    }
    const labels = checkLabels(input.labels);
    const matrix = await this.features(input, labels.length);
    if (matrix.count !== labels.length) throw new MsnShapeError(`Got ${matrix.count} examples but ${labels.length} labels.`);
    if (matrix.dim !== this.config.embedDim) {
      throw new MsnShapeError(
        `features have ${matrix.dim} values per example, but this encoder's features have ${this.config.embedDim}: ` +
          'pass features from embed() on this client, or pixels.',
      );
    }
    const fp = await this.fingerprint();
    const common = { encoderFingerprint: fp, unknownThreshold: input.unknownThreshold };
    const kind = input.kind ?? 'linear';
    return this.addHead(headKind(kind).fit(matrix, labels, { ...common, ...kindOptions(kind, input) }));
  }

  private addHead(head: AnyHead): string {
    const id = `head-${this.nextHead++}`;
    this.heads.set(id, head);
    return id;
  }

  private head(id: string): AnyHead {
    const h = this.heads.get(id);
    if (!h) throw new MsnValueError(`No head '${String(id)}' in this engine (known: ${[...this.heads.keys()].join(', ') || 'none'}).`);
    return h;
  }

  /** Class probabilities and labels for features or images. */
  async predict(headId: string, input: FeatureOrPixels, opts: PredictOptions = {}): Promise<Prediction> {
    await this.ready('predict');
    const head = this.head(headId);
    if (!('features' in input)) {
      const fp = await this.fingerprint();
      if (head.encoderFingerprint !== fp) {
        throw new MsnConfigError(
          `Head '${headId}' was fitted on features of encoder '${head.encoderFingerprint}', but the current encoder is '${fp}' ` +
            '(it changed through pretraining or a checkpoint). Refit the head on the current encoder.',
        );
      }
    }
    const count = 'features' in input ? input.count ?? input.features.length / head.featureDim : undefined;
    const matrix = await this.headInput(input, count, head.kind === 'prototype-label' ? head.temperature : undefined);
    return head.predict(matrix, opts);
  }

  /** The head as bytes (versioned bundle with a checksum and the encoder fingerprint). */
  async saveHead(headId: string): Promise<Uint8Array> {
    await this.ready('saveHead');
    return bundleToBytes(this.head(headId).toBundle());
  }

  /** Loads a head saved by saveHead(); MsnConfigError if it was fitted on another encoder. */
  async loadHead(bytes: Uint8Array): Promise<string> {
    await this.ready('loadHead');
    return this.addHead(loadHeadBundle(bytes, { expectedFingerprint: await this.fingerprint() }));
  }

  async deleteHead(headId: string): Promise<void> {
    this.assertAlive('deleteHead');
    this.head(headId);
    this.heads.delete(headId);
  }

  /** Backend (and why the others were not used), model, run and heads. */
  async capabilities(): Promise<Capabilities> {
    await this.ready('capabilities');
    return this.describe();
  }

  private async describe(): Promise<Capabilities> {
    const sel = this.selection!;
    const p = this.pretrainer;
    return {
      backend: sel.backend,
      requested: sel.requested,
      backends: structuredClone(sel.backends),
      ...(sel.wasm ? { wasm: { ...sel.wasm } } : {}),
      ...(sel.backend === 'wasm' ? { wasmKernels: wasmKernelStatus() } : {}),
      ...(sel.webgpu ? { webgpu: { ...sel.webgpu } } : {}),
      crossOriginIsolated: Boolean((globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated),
      host: this.host,
      model: { config: { ...this.config }, fingerprint: await this.fingerprint(), preprocess: structuredClone(this.preprocess), source: this.source,
        ...(this.modelName && (this.source === 'url' || this.source === 'directory') ? { name: this.modelName } : {}),
        ...(this.source === 'url' && this.fromCache !== undefined ? { fromCache: this.fromCache } : {}), randomWeights: this.source === 'preset' },
      ...(p ? { pretraining: { step: p.step, totalSteps: p.config.totalSteps, batchSize: p.config.batchSize } } : {}),
      heads: [...this.heads.keys()],
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
    if (this.run) {
      this.run.abort.abort();
      await this.run.done;
    }
    try {
      await this.initializing;
    } catch {
      // A failed init leaves nothing to free beyond what exists below.
    }
    this.pretrainer?.dispose();
    this.model?.dispose();
    this.pretrainer = undefined;
    this.model = undefined;
    this.heads.clear();
  }

  private assertAlive(what: string): void {
    if (this.disposed) throw new MsnDisposedError(`${what}() called after dispose(); create a new client.`);
    if (this.broken) throw new MsnWorkerError(`${what}() called on an engine that ran out of memory earlier (${this.broken.message}); create a new client.`);
  }
}
function checkLabels(labels: unknown): string[] {
  if (!Array.isArray(labels) || !labels.every((l) => typeof l === 'string')) throw new MsnValueError('labels must be an array of strings.');
  return labels;
}

/** An assignment temperature: the official one by default. */
function checkTemperature(t: number | undefined): number {
  const tau = t ?? PROTOTYPE_TEMPERATURE;
  if (!(typeof tau === 'number' && Number.isFinite(tau) && tau > 0)) throw new MsnValueError(`temperature must be a positive number, got ${String(t)}.`);
  return tau;
}

/** pretrain() options checked before anything changes. */
function checkRunOptions(opts: PretrainRunOptions): void {
  if (typeof opts !== 'object' || opts === null) throw new MsnValueError('pretrain() options must be an object.');
  const posInt = (k: 'steps' | 'batchSize' | 'totalSteps', v: unknown) => {
    if (v !== undefined && (!Number.isInteger(v) || (v as number) < 1)) throw new MsnValueError(`${k} must be a positive integer, got ${String(v)}.`);
  };
  posInt('steps', opts.steps);
  posInt('batchSize', opts.batchSize);
  posInt('totalSteps', opts.totalSteps);
  const every = opts.checkpointEvery;
  if (every !== undefined && (!Number.isInteger(every) || every < 0)) {
    throw new MsnValueError(`checkpointEvery must be an integer >= 0 (0: only at the end), got ${String(every)}.`);
  }
}

export function createEngine(opts: EngineOptions = {}): MsnEngine {
  return new MsnEngine(opts);
}

/** The `cache` init option: IndexedDB where it exists (browsers, their workers); nothing elsewhere. */
function modelCacheFor(option: boolean | string): ModelCache | undefined {
  if (typeof option !== 'boolean' && (typeof option !== 'string' || option === '')) {
    throw new MsnConfigError(`cache must be true, false or a database name, got ${JSON.stringify(option)}.`);
  }
  if (!(globalThis as { indexedDB?: unknown }).indexedDB) return undefined;
  return openModelCache(typeof option === 'string' ? { dbName: option } : {});
}
