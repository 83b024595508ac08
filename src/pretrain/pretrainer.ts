/**
 * On-device MSN pretraining: a loop around trainStep with progress,
 * cancellation, checkpoints and exact resume.
 *
 * Exact resume without hidden state: the data order of epoch e is a
 * permutation drawn from Rng(seed, e), and the augmentations of iteration i
 * come from Rng(seed, i). A checkpoint therefore needs only the weights, the
 * optimizer moments and the counters; N steps + save + load + M steps equals
 * N + M steps on the same backend.
 */
import { MsnAbortError, MsnDisposedError, MsnNumericalError, MsnShapeError, MsnValueError } from '../errors.js';
import { ReplicaGroup } from '../train/all-reduce.js';
import { makeSchedules, Schedules } from '../train/schedules.js';
import { createTrainState, disposeTrainState } from '../train/state.js';
import { MsnTrainState, StepMetrics, TrainHyper, trainStepAsync } from '../train/step.js';
import { NamedArrays, NamedTensors, arraysUnder, readArrays, readArraysSync } from '../util/readback.js';
import { Rng } from '../util/rng.js';
import { PretrainConfig, PretrainOptions, checkBatchSplit, pretrainConfig, segmentConfig, validatePretrainConfig } from './config.js';
import * as tf from '@tensorflow/tfjs-core';
import { ImageDataset, ImageLike, datasetFromImages, datasetFromTensor } from './source.js';
import { disposeBatch, makeViews } from './views.js';

export interface ProgressEvent extends StepMetrics {
  status: 'step';
  /** Attempted iterations so far (skipped ones included). */
  iteration: number;
  epoch: number;
  imagesPerSec: number;
  /** Seconds left in this fit() call at the current speed. */
  etaSec: number;
}

export interface FitOptions {
  /** Optimizer steps to run in this call (default: to the end of the current plan). */
  steps?: number;
  /** Alternatively, whole passes over the dataset. */
  epochs?: number;
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
  /** Called with the checkpoint every `checkpointEvery` steps and at the end (write it somewhere safe). */
  onCheckpoint?: (ckpt: CheckpointData) => void | Promise<void>;
  checkpointEvery?: number;
}

export interface FitSummary {
  steps: number;
  skippedSteps: number;
  lastLoss: number;
  seconds: number;
}

/** Everything a resume needs, as plain data (see checkpoint.ts for bytes and files). */
export interface CheckpointData {
  config: PretrainConfig;
  step: number;
  iteration: number;
  numBatchesTracked: { encoder: number; target: number };
  tensors: Record<string, { shape: number[]; data: Float32Array }>;
}

/** Mixes a seed with counters into a 32-bit seed (distinct streams per purpose). */
function mix(seed: number, a: number, b: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (const v of [a, b]) {
    h = Math.imul(h ^ (v >>> 0), 0x85ebca6b) >>> 0;
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
  }
  return h;
}

const DATA_STREAM = 1;
const VIEW_STREAM = 2;
const RANK_STREAM = 3;

/** The data order of epoch `epoch`: a permutation of the dataset's indices, a pure function of the seed. */
export function epochPermutation(seed: number, epoch: number, count: number): Int32Array {
  return new Rng(mix(seed, DATA_STREAM, epoch)).permutation(count);
}

/** The seed of iteration `iteration`'s augmentations on replica `rank` (0 also in a single-thread run). */
export function viewSeed(seed: number, iteration: number, rank = 0): number {
  const s = mix(seed, VIEW_STREAM, iteration);
  return rank > 0 ? mix(s, RANK_STREAM, rank) : s;
}

export class Pretrainer {
  private cfg: PretrainConfig;
  readonly state: MsnTrainState;
  private schedules: Schedules;
  private readonly hyper: TrainHyper;
  /** Attempted iterations (the data and augmentation position). */
  iteration = 0;
  private permCache: { epoch: number; count: number; perm: Int32Array } | undefined;
  private disposed = false;
  /** Set when this is one replica of a data-parallel run (see parallel-node.ts). */
  private group: ReplicaGroup | undefined;

  private constructor(config: PretrainConfig, state: MsnTrainState) {
    this.cfg = config;
    this.state = state;
    this.schedules = makeSchedules(config);
    this.hyper = { loss: config.loss, clipGrad: config.clipGrad };
  }

  /** A fresh run: random init with the official scheme, seeded. */
  static create(opts: PretrainOptions = {}): Pretrainer {
    const config = pretrainConfig(opts);
    return new Pretrainer(config, createTrainState(config.model, { seed: config.seed }));
  }

  /**
   * A fresh run (step 0, zero AdamW moments) from existing weights: online
   * and target encoder both start as `weights`, e.g. continued pretraining of
   * a shipped or imported model on the user's images.
   */
  static fromWeights(
    opts: PretrainOptions,
    weights: { params: NamedArrays; buffers: NamedArrays },
    prototypes: Float32Array,
    numBatchesTracked = 0,
  ): Pretrainer {
    const config = pretrainConfig(opts);
    const state = createTrainState(config.model, { encoder: weights, prototypes });
    state.encoder.numBatchesTracked = numBatchesTracked;
    state.target.numBatchesTracked = numBatchesTracked;
    return new Pretrainer(config, state);
  }

  /** Resumes from checkpoint data (exactly where it stopped). */
  static fromCheckpoint(ckpt: CheckpointData): Pretrainer {
    validatePretrainConfig(ckpt.config);
    if ((ckpt.config.scheduleStart ?? 0) > ckpt.step) {
      throw new MsnValueError(`The checkpoint's plan starts at step ${ckpt.config.scheduleStart}, after its step ${ckpt.step}; the file is inconsistent.`);
    }
    const t = ckpt.tensors;
    const pick = (prefix: string) => arraysUnder(t, prefix);
    const protos = t['prototypes'];
    if (!protos) throw new MsnShapeError('The checkpoint has no prototypes tensor.');
    const state = createTrainState(ckpt.config.model, {
      encoder: { params: pick('encoder/'), buffers: pick('encoder_buffers/') },
      target: { params: pick('target/'), buffers: pick('target_buffers/') },
      prototypes: protos.data,
    });
    const m = pick('adam_m/');
    const v = pick('adam_v/');
    const moments: Record<string, { m: Float32Array; v: Float32Array }> = {};
    for (const k of Object.keys(m)) moments[k] = { m: m[k].data, v: v[k]?.data };
    try {
      state.optimizer.setState({ step: ckpt.step, moments });
    } catch (e) {
      disposeTrainState(state);
      throw new MsnShapeError(`The checkpoint's optimizer state does not match its model: ${(e as Error).message}`);
    }
    state.step = ckpt.step;
    state.encoder.numBatchesTracked = ckpt.numBatchesTracked.encoder;
    state.target.numBatchesTracked = ckpt.numBatchesTracked.target;
    const p = new Pretrainer(ckpt.config, state);
    p.iteration = ckpt.iteration;
    return p;
  }

  get step(): number {
    return this.state.step;
  }

  /** The run's configuration (the current plan's schedules included). */
  get config(): PretrainConfig {
    return this.cfg;
  }

  /** The step at which the current plan ends (its schedules hold their final values 1.25x later). */
  get planEnd(): number {
    return (this.cfg.scheduleStart ?? 0) + this.cfg.totalSteps;
  }

  /**
   * Continued pretraining: makes the next `steps` optimizer steps part of a
   * plan. Inside the current plan nothing changes (a resumed run stays
   * exact); past its end a new segment of `steps` steps starts here, with a
   * short warm-up, its own cosine and EMA ramp (see segmentConfig). Without
   * this, fit() past the plan runs on the held final values (lr at finalLr,
   * momentum at ema.end), which is safe but learns nothing. Returns whether
   * a new segment was planned.
   */
  planSteps(steps: number): boolean {
    this.assertAlive();
    if (!Number.isInteger(steps) || steps < 1) throw new MsnValueError(`steps must be a positive integer, got ${steps}.`);
    if (this.state.step + steps <= this.planEnd) return false;
    this.cfg = segmentConfig(this.cfg, this.state.step, steps);
    this.schedules = makeSchedules(this.cfg);
    return true;
  }

  /**
   * Makes this pretrainer replica `group.rank` of `group.size`: fit() then
   * trains on its share of each batch (batchSize is the global batch) and
   * reduces with the others at every step. Every replica must hold the same
   * state and call fit() with the same arguments.
   */
  joinGroup(group: ReplicaGroup): void {
    this.assertAlive();
    checkBatchSplit(this.config.batchSize, group.size);
    this.group = group;
  }

  /** Indices of the batch for an iteration: epoch permutations, last partial batch dropped. */
  private batchIndices(dataset: ImageDataset, iteration: number): { indices: Int32Array; epoch: number } {
    const b = this.config.batchSize;
    const perEpoch = Math.floor(dataset.count / b);
    const epoch = Math.floor(iteration / perEpoch);
    if (!this.permCache || this.permCache.epoch !== epoch || this.permCache.count !== dataset.count) {
      this.permCache = { epoch, count: dataset.count, perm: epochPermutation(this.config.seed, epoch, dataset.count) };
    }
    const pos = iteration % perEpoch;
    const global = this.permCache.perm.subarray(pos * b, (pos + 1) * b);
    if (!this.group) return { indices: global, epoch };
    const share = b / this.group.size; // replica r trains on images [r * share, (r + 1) * share) of the batch
    return { indices: global.subarray(this.group.rank * share, (this.group.rank + 1) * share), epoch };
  }

  /**
   * Runs MSN iterations over `source`: an in-memory dataset (random access:
   * seeded epoch order, exact resume) or an async iterable of batches
   * (tensors [n, H, W, C] in [0, 1] or ImageData-like arrays), used in the
   * order they come; a stream must replay the same batches for a resume to
   * be exact. Rejects with name 'AbortError' when `signal` aborts (the state
   * stays consistent).
   */
  async fit(source: ImageDataset | AsyncIterable<tf.Tensor4D | ImageLike[]>, opts: FitOptions = {}): Promise<FitSummary> {
    this.assertAlive();
    const cfg = this.config;
    const stream = isAsyncIterable(source) ? source[Symbol.asyncIterator]() : undefined;
    const dataset = stream ? undefined : (source as ImageDataset);
    let perEpoch = 0;
    if (dataset) {
      if (dataset.count < cfg.batchSize) {
        throw new MsnValueError(`The dataset has ${dataset.count} images, fewer than one batch of ${cfg.batchSize}; add images or lower batchSize.`);
      }
      if (dataset.height < cfg.model.patchSize || dataset.width < cfg.model.patchSize) {
        throw new MsnShapeError(`Images of ${dataset.height}x${dataset.width} px are smaller than one ${cfg.model.patchSize} px patch.`);
      }
      perEpoch = Math.floor(dataset.count / cfg.batchSize);
    } else if (opts.epochs !== undefined) {
      throw new MsnValueError('epochs needs a dataset with a known size; pass steps for a stream of batches.');
    } else if (this.group) {
      throw new MsnValueError('Data-parallel pretraining needs an in-memory dataset, not a stream of batches.');
    }
    const target = opts.epochs !== undefined ? opts.epochs * perEpoch : opts.steps ?? Math.max(0, this.planEnd - this.state.step);
    if (!Number.isInteger(target) || target < 0) throw new MsnValueError(`steps/epochs must give a whole number of steps >= 0, got ${target}.`);
    const nextImages = async (): Promise<{ images: tf.Tensor4D; epoch: number } | undefined> => {
      if (dataset) {
        const { indices, epoch } = this.batchIndices(dataset, this.iteration);
        return { images: dataset.batch(indices, cfg.model.inChannels), epoch };
      }
      const item = await stream!.next();
      if (item.done) return undefined;
      return { images: streamBatch(item.value, cfg.model.inChannels, cfg.model.patchSize), epoch: 0 };
    };
    const every = opts.checkpointEvery ?? 0;
    if (!Number.isInteger(every) || every < 0) throw new MsnValueError(`checkpointEvery must be an integer >= 0 (0: only at the end), got ${String(opts.checkpointEvery)}.`);
    const t0 = performance.now();
    let done = 0;
    let skipped = 0;
    let bad = 0;
    let lastLoss = NaN;
    const group = this.group;
    while (done < target) {
      // Replicas decide together, so none is left waiting in a reduction.
      const stop = group ? group.agreeToStop(!!opts.signal?.aborted) : !!opts.signal?.aborted;
      if (stop) throw new MsnAbortError(`Pretraining stopped at step ${this.state.step} (aborted); the state is consistent and can be saved.`);
      const next = await nextImages();
      if (!next) break; // the stream ended
      const { images, epoch } = next;
      const rng = new Rng(viewSeed(cfg.seed, this.iteration, group?.rank ?? 0));
      const batch = makeViews(images, cfg.model, cfg.views, rng);
      images.dispose();
      let m: StepMetrics;
      try {
        m = await trainStepAsync(this.state, batch, this.hyper, this.schedules, group);
      } finally {
        disposeBatch(batch);
      }
      this.iteration++;
      if (m.skipped) {
        skipped++;
        bad++;
      } else {
        bad = 0;
        done++;
        lastLoss = m.loss;
      }
      const sec = (performance.now() - t0) / 1000;
      const its = done + skipped;
      opts.onProgress?.({
        ...m, status: 'step', iteration: this.iteration, epoch,
        imagesPerSec: (its * cfg.batchSize) / Math.max(sec, 1e-9),
        etaSec: its > 0 ? ((target - done) * sec) / its : 0,
      });
      if (bad >= cfg.maxBadSteps) {
        throw new MsnNumericalError(
          `${bad} consecutive steps had a non-finite loss or gradient (last loss ${m.loss}); stopped at step ${this.state.step} with the last good weights. Lower lr or check the images.`,
        );
      }
      if (every > 0 && !m.skipped && this.state.step % every === 0 && opts.onCheckpoint) await opts.onCheckpoint(await this.readCheckpoint());
      await new Promise((r) => setTimeout(r, 0)); // let abort signals and messages through
    }
    if (opts.onCheckpoint && done > 0 && !(every > 0 && this.state.step % every === 0)) await opts.onCheckpoint(await this.readCheckpoint());
    return { steps: done, skippedSteps: skipped, lastLoss, seconds: (performance.now() - t0) / 1000 };
  }

  /** A snapshot of the whole run as plain data (synchronous reads: cpu/wasm; see readCheckpoint). */
  checkpoint(): CheckpointData {
    return this.snapshot(readArraysSync(this.stateTensors()));
  }

  /**
   * checkpoint() with asynchronous reads: works on every backend, WebGPU
   * included. The reads and the step counters are taken before the first
   * await, so a training step finishing meanwhile cannot mix two states.
   */
  async readCheckpoint(): Promise<CheckpointData> {
    const pending = readArrays(this.stateTensors());
    const at = this.snapshot({});
    return { ...at, tensors: await pending };
  }

  /** Every tensor of the run under its checkpoint name. */
  private stateTensors(): NamedTensors {
    this.assertAlive();
    const { encoder, target, prototypes, optimizer } = this.state;
    const out: NamedTensors = {};
    const put = (prefix: string, m: Map<string, tf.Tensor>) => {
      for (const [k, v] of m) out[prefix + k] = v;
    };
    put('encoder/', encoder.params);
    put('encoder_buffers/', encoder.buffers);
    put('target/', target.params);
    put('target_buffers/', target.buffers);
    out['prototypes'] = prototypes;
    for (const [k, { m, v }] of optimizer.momentVariables()) {
      out[`adam_m/${k}`] = m;
      out[`adam_v/${k}`] = v;
    }
    return out;
  }

  private snapshot(tensors: NamedArrays): CheckpointData {
    return {
      config: this.config, step: this.state.step, iteration: this.iteration,
      numBatchesTracked: { encoder: this.state.encoder.numBatchesTracked, target: this.state.target.numBatchesTracked },
      tensors,
    };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    disposeTrainState(this.state);
  }

  private assertAlive(): void {
    if (this.disposed) throw new MsnDisposedError('This pretrainer has been disposed; create a new one or load a checkpoint.');
  }
}

/** Convenience factory (async for symmetry with the other create* functions). */
export async function createPretrainer(opts: PretrainOptions = {}): Promise<Pretrainer> {
  return Pretrainer.create(opts);
}

function isAsyncIterable(x: unknown): x is AsyncIterable<unknown> {
  return typeof (x as AsyncIterable<unknown>)?.[Symbol.asyncIterator] === 'function';
}

/** One streamed batch as [n, H, W, outChannels] in [0, 1] (the caller disposes it). */
function streamBatch(item: tf.Tensor4D | ImageLike[], outChannels: number, patch: number): tf.Tensor4D {
  const ds = Array.isArray(item) ? datasetFromImages(item) : datasetFromTensor(item);
  if (ds.count < 2) throw new MsnValueError(`A streamed batch needs at least 2 images (BatchNorm statistics), got ${ds.count}.`);
  if (ds.height < patch || ds.width < patch) throw new MsnShapeError(`Streamed images of ${ds.height}x${ds.width} px are smaller than one ${patch} px patch.`);
  return ds.batch(Int32Array.from({ length: ds.count }, (_, i) => i), outChannels);
}
