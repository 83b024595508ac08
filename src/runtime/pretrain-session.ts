/**
 * The engine's pretraining run: starting it from the encoder in use,
 * continuing it, aborting it, saving it as a checkpoint and replacing it
 * with one.
 *
 * Training code is imported only as a type here and loaded with dynamic
 * import() on first use, so bundles that only embed never load it.
 *
 * The rule that keeps a failed start harmless: a run this session creates
 * becomes the encoder in use (adopt) before its first step, but the model it
 * started from is kept until that step; a call that fails before it undoes
 * the run (unadopt) and the engine is back where it was.
 */
import { OFFICIAL_SCHEDULE, prototypeSeed } from '../defaults.js';
import type * as tf from '@tensorflow/tfjs-core';
import { MsnConfigError, MsnDisposedError, MsnValueError } from '../errors.js';
import type { VisionTransformer } from '../model/vit.js';
import { initPrototypes } from '../model/params.js';
import type { Pretrainer } from '../pretrain/pretrainer.js';
import type { ReplicaHost } from '../pretrain/replica.js';
import type { MirroredParallelRun } from './parallel-run.js';
import type { CoreBackend } from './backend.js';
import type { PixelData, PretrainProgress, PretrainRunOptions, PretrainSummary } from './api.js';
import type { LentEncoder, Preprocess } from './embedder.js';
import { checkPixels, pretrainPixels } from './pixels.js';
import { checkGpuErrors, withGpuCheck } from './select-backend.js';
import { checkTrainBatch } from './resources.js';

/** Options that set up a new run (rejected when a run exists). */
const RUN_KEYS = ['batchSize', 'totalSteps', 'warmupSteps', 'seed', 'lr', 'workers'] as const;

/** A run: one thread, or replicas in workers with a mirror here (same surface). */
type Run = Pretrainer | MirroredParallelRun;

/** Where the run comes from, as capabilities().model.source reports it. */
export type RunOrigin = 'pretrained' | 'checkpoint';

/** What the session needs from the engine around it. */
export interface SessionHost {
  /** Where a new run starts: the encoder in use, its preprocessing, its prototypes (absent: seeded init) and the default seed. */
  start(): { encoder: VisionTransformer; preprocess: Preprocess; prototypes?: Float32Array; seed: number };
  /** The run's target encoder is now the one in use (undefined: none, the base model is back); called after every call that ran steps too. */
  follow(lent: LentEncoder | undefined): void;
  /** Nothing goes back to the base model any more: free it. */
  releaseBase(): void;
  /** Runs a training call (the engine turns out-of-memory failures into MsnResourceError there). */
  guard<T>(f: () => Promise<T>): Promise<T>;
  /** Where the replicas of a run with `workers` > 1 start (host undefined: the platform's default) and their backend. */
  replicas(): { host?: ReplicaHost; backend: CoreBackend };
}

export type ProgressCallback = (p: PretrainProgress) => void;
export type CheckpointCallback = (bytes: Uint8Array, step: number) => void | Promise<void>;

export class PretrainSession {
  private run: Run | undefined;
  private runOrigin: RunOrigin | undefined;
  /** The pretrain() call in progress: its abort controller and its end. */
  private active: { abort: AbortController; done: Promise<unknown> } | undefined;
  private closing = false;

  constructor(private readonly host: SessionHost) {}

  /** The run (once pretrain() or loadCheckpoint() made one). */
  get pretrainer(): Run | undefined {
    return this.run;
  }

  /** Where the encoder in use comes from while there is a run. */
  get origin(): RunOrigin | undefined {
    return this.run && this.runOrigin;
  }

  /**
   * Runs MSN pretraining on the images. The first call starts a run from the
   * current encoder's weights (batchSize, totalSteps, ... apply then); later
   * calls continue it. A call that would run past the run's plan starts a
   * new segment of its `steps` (short warm-up, its own cosine and EMA ramp;
   * see Pretrainer.planSteps); without `steps` a call runs to the end of the
   * plan, or one more plan of the same length when it is done. Afterwards
   * the run's target encoder is the one in use. Every argument is checked
   * before anything changes, and a call that fails before its first step
   * leaves no run behind. Rejects with name 'AbortError' after abort() or
   * `signal` (the run stays consistent: save it or continue later), with
   * MsnDisposedError when stop() ends it. `ready` is awaited after the call
   * is registered, so an abort() sent right after this call finds it.
   */
  async pretrain(
    ready: () => Promise<void>,
    data: PixelData,
    opts: PretrainRunOptions = {},
    onProgress?: ProgressCallback,
    onCheckpoint?: CheckpointCallback,
  ): Promise<PretrainSummary> {
    if (this.active) throw new MsnValueError('A pretraining run is already in progress; await it or call abortPretraining() first.');
    const abort = new AbortController();
    const outer = opts?.signal;
    const onOuterAbort = () => abort.abort();
    if (outer?.aborted) abort.abort();
    outer?.addEventListener('abort', onOuterAbort);
    let resolveDone!: () => void;
    this.active = { abort, done: new Promise<void>((r) => (resolveDone = r)) };
    let created: Run | undefined;
    try {
      await ready();
      checkRunOptions(opts);
      if (typeof data !== 'object' || data === null) throw new MsnValueError('pretrain() expects { pixels, shape }.');
      const src = checkPixels(data.pixels, data.shape, data.options);
      const [{ datasetFromPixels }, { checkpointToBytes }] = await Promise.all([import('../pretrain/source.js'), import('../pretrain/checkpoint.js')]);
      const existing = this.run;
      const given = RUN_KEYS.filter((k) => opts[k] !== undefined);
      if (existing && given.length) {
        throw new MsnConfigError(
          `A pretraining run already exists (step ${existing.step}); ${given.join(', ')} can only be set when it starts. ` +
            'Pass only steps/checkpointEvery to continue it.',
        );
      }
      const p = existing ?? (created = await this.newRun(opts));
      const cfg = p.config;
      if (src.shape.count < cfg.batchSize) {
        throw new MsnValueError(`The dataset has ${src.shape.count} images, fewer than one batch of ${cfg.batchSize}; add images or lower batchSize.`);
      }
      checkTrainBatch(cfg.model, cfg.views, cfg.batchSize);
      const steps = opts.steps ?? (p.planEnd > p.step ? p.planEnd - p.step : cfg.totalSteps);
      await p.planSteps(steps);
      if (created) this.adopt(created, 'pretrained');
      const { data: px, channels } = pretrainPixels(src);
      const dataset = datasetFromPixels(px, src.shape.count, src.shape.height, src.shape.width, channels);
      const summary = await this.host.guard(() => withGpuCheck('pretrain', () => p.fit(dataset, {
        steps,
        signal: abort.signal,
        checkpointEvery: opts.checkpointEvery,
        onProgress: onProgress && ((e) => reportProgress(onProgress, e)),
        onCheckpoint: onCheckpoint && (async (c) => onCheckpoint(checkpointToBytes(c), c.step)),
      })));
      return { steps: summary.steps, skippedSteps: summary.skippedSteps, totalStep: p.step, lastLoss: summary.lastLoss, seconds: summary.seconds };
    } catch (e) {
      // A run this call created and that took no step is undone: the encoder stays what it was.
      if (created && created.step === 0 && this.run === created) this.unadopt(created);
      else if (created && this.run !== created) created.dispose();
      if (this.closing && (e as Error)?.name === 'AbortError') {
        throw new MsnDisposedError('dispose() was called while pretraining; the run stopped at a step boundary and was freed.');
      }
      throw e;
    } finally {
      outer?.removeEventListener('abort', onOuterAbort);
      // Once the run took a step, the model it started from is no longer needed.
      if (this.run && this.run.step > 0) this.host.releaseBase();
      this.follow(); // the target encoder moved
      this.active = undefined;
      resolveDone();
    }
  }

  /** A new run from the encoder in use (not yet adopted): in this thread, or over `opts.workers` replicas. */
  private async newRun(opts: PretrainRunOptions): Promise<Run> {
    const { encoder, preprocess, prototypes, seed: defaultSeed } = this.host.start();
    const cfg = encoder.cfg;
    const seed = opts.seed ?? defaultSeed;
    const options = {
      model: cfg,
      views: { mean: preprocess.mean, std: preprocess.std },
      batchSize: opts.batchSize,
      totalSteps: opts.totalSteps ?? opts.steps,
      warmupSteps: opts.warmupSteps,
      seed,
      ...(opts.lr ? { lr: { ...OFFICIAL_SCHEDULE.lr, ...opts.lr } } : {}),
    };
    const weights = await encoder.readWeights();
    const protos = prototypes ?? initPrototypes(cfg, prototypeSeed(seed)); // as Pretrainer.create would for an untouched preset
    if ((opts.workers ?? 1) > 1) {
      const { MirroredParallelRun } = await import('./parallel-run.js');
      const { host, backend } = this.host.replicas();
      return MirroredParallelRun.fromWeights(options, weights, protos, encoder.numBatchesTracked, { workers: opts.workers, host, backend }, () => this.follow());
    }
    const { Pretrainer } = await import('../pretrain/pretrainer.js');
    return Pretrainer.fromWeights(options, weights, protos, encoder.numBatchesTracked);
  }

  /** `p`'s target encoder becomes the one in use (the base model stays until p takes a step). */
  private adopt(p: Run, origin: RunOrigin): void {
    this.run = p;
    this.runOrigin = origin;
    this.follow();
  }

  /** Undoes adopt(): back to the base model, the source it had. */
  private unadopt(p: Run): void {
    this.run = undefined;
    this.runOrigin = undefined;
    this.follow();
    p.dispose();
  }

  /** Tells the host which encoder is in use: the run's target, or none. */
  private follow(): void {
    const p = this.run;
    this.host.follow(p && { encoder: p.state.target, prototypes: p.state.prototypes as tf.Tensor2D, preprocess: { mean: [...p.config.views.mean], std: [...p.config.views.std] } });
  }

  /** Stops a running pretrain() at the next step boundary. */
  abort(): void {
    this.active?.abort.abort();
  }

  /** The run as bytes (tensor container with CRC-32s): resume with loadCheckpoint(). */
  async saveCheckpoint(): Promise<Uint8Array> {
    if (!this.run) throw new MsnValueError('There is no pretraining run to save: call pretrain() or loadCheckpoint() first.');
    const { checkpointToBytes } = await import('../pretrain/checkpoint.js');
    const bytes = checkpointToBytes(await this.run.readCheckpoint());
    await checkGpuErrors('saveCheckpoint');
    return bytes;
  }

  /** Replaces the base model and the run with a checkpoint's (exact resume). */
  async loadCheckpoint(bytes: Uint8Array): Promise<void> {
    if (this.active) throw new MsnValueError('A pretraining run is in progress; abort it before loading a checkpoint.');
    if (!(bytes instanceof Uint8Array)) throw new MsnValueError('loadCheckpoint() expects a Uint8Array.');
    const [{ Pretrainer }, { checkpointFromBytes }] = await Promise.all([import('../pretrain/pretrainer.js'), import('../pretrain/checkpoint.js')]);
    const p = Pretrainer.fromCheckpoint(checkpointFromBytes(bytes));
    this.run?.dispose();
    this.host.releaseBase();
    this.adopt(p, 'checkpoint');
  }

  /** Aborts a running pretrain() (it rejects with MsnDisposedError) and waits for it to stop. */
  async stop(): Promise<void> {
    this.closing = true;
    if (this.active) {
      this.active.abort.abort();
      await this.active.done;
    }
  }

  /** Frees the run (best effort; the session is not used afterwards). */
  dispose(): void {
    const p = this.run;
    this.run = undefined;
    p?.dispose();
  }
}

/** A progress event as plain data; a failing callback must not stop training. */
function reportProgress(onProgress: ProgressCallback, e: PretrainProgress): void {
  const ev: PretrainProgress = {
    step: e.step, iteration: e.iteration, epoch: e.epoch, loss: e.loss, ce: e.ce, memax: e.memax, lr: e.lr,
    numProtosUsed: e.numProtosUsed, skipped: e.skipped, imagesPerSec: e.imagesPerSec, etaSec: e.etaSec,
  };
  try {
    const r = onProgress(ev) as unknown;
    if (r instanceof Promise) r.catch(() => undefined);
  } catch {
    // Ignored, as documented.
  }
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
  const workers = opts.workers;
  if (workers !== undefined && (!Number.isInteger(workers) || workers < 1 || workers > 64)) {
    throw new MsnValueError(`workers must be an integer from 1 to 64, got ${String(workers)}.`);
  }
  const every = opts.checkpointEvery;
  if (every !== undefined && (!Number.isInteger(every) || every < 0)) {
    throw new MsnValueError(`checkpointEvery must be an integer >= 0 (0: only at the end), got ${String(every)}.`);
  }
}
