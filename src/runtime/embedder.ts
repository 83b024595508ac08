/**
 * The engine's embedder: the encoder in use, its preprocessing (mean/std)
 * and the passes from checked pixels to features or prototype assignments.
 *
 * The encoder in use is the model the engine loaded (the base, owned here)
 * unless a pretraining run lends its target encoder (follow()); the base is
 * kept until the run no longer needs a way back (releaseBase()).
 * Out-of-memory handling stays with the caller (MsnEngine's guard); this
 * only plans pass sizes so a pass fits (embedPassSize).
 */
import * as tf from '@tensorflow/tfjs-core';
import { MsnConfigError, MsnShapeError, MsnValueError } from '../errors.js';
import type { VitConfig } from '../model/config.js';
import { VisionTransformer } from '../model/vit.js';
import type { ModelData } from '../io/model-format.js';
import { embedBatches } from '../embed/embed.js';
import { assignImages, type PrototypeAssignment } from '../embed/assign.js';
import { encoderFingerprint } from '../embed/fingerprint.js';
import { PROTOTYPE_TEMPERATURE } from '../model/prototypes.js';
import type { AssignOptions, EmbedOptions } from './api.js';
import { type CheckedPixels, pixelBatch } from './pixels.js';
import { checkGpuErrors } from './select-backend.js';
import { preprocessOf } from './model-source.js';
import { embedPassSize } from './resources.js';

export interface Preprocess {
  mean: number[];
  std: number[];
}

/** An encoder a pretraining run lends (the run keeps owning its tensors). */
export interface LentEncoder {
  encoder: VisionTransformer;
  prototypes: tf.Tensor2D;
  preprocess: Preprocess;
}

export class Embedder {
  private base: VisionTransformer | undefined;
  private baseProtos: Float32Array | undefined;
  private readonly basePreprocess: Preprocess;
  private lent: LentEncoder | undefined;
  private fingerprintCache: Promise<string> | undefined;

  /** Takes ownership of `model`; `prototypes` [K x outputDim] row-major, absent when the model was saved without them. */
  constructor(model: VisionTransformer, opts: { prototypes?: Float32Array; preprocess: Preprocess }) {
    this.base = model;
    this.baseProtos = opts.prototypes;
    this.basePreprocess = { mean: [...opts.preprocess.mean], std: [...opts.preprocess.std] };
  }

  /** An embedder owning a new model built from decoded model data (its preprocessing from its metadata). */
  static fromModelData(data: ModelData): Embedder {
    const model = VisionTransformer.create(data.config, { params: data.params, buffers: data.buffers });
    return new Embedder(model, { prototypes: data.prototypes, preprocess: preprocessOf(data) });
  }

  /** The encoder used for inference right now. */
  get encoder(): VisionTransformer {
    const e = this.lent?.encoder ?? this.base;
    if (!e) throw new MsnConfigError('The engine is not initialised: await init() first.');
    return e;
  }

  get config(): VitConfig {
    return this.encoder.cfg;
  }

  get preprocess(): Preprocess {
    return this.lent?.preprocess ?? this.basePreprocess;
  }

  /** The base model's prototypes (where a new run starts); undefined once released or when it has none. */
  get basePrototypes(): Float32Array | undefined {
    return this.baseProtos;
  }

  /** Use a run's target encoder (undefined: back to the base model). The weights in use changed either way. */
  follow(run: LentEncoder | undefined): void {
    this.lent = run;
    this.changed();
  }

  /** The weights in use moved (a training step): the fingerprint is recomputed on next use. */
  changed(): void {
    this.fingerprintCache = undefined;
  }

  /** Frees the base model once nothing can go back to it. Idempotent. */
  releaseBase(): void {
    this.base?.dispose();
    this.base = undefined;
    this.baseProtos = undefined;
  }

  /** Fingerprint of the encoder's weights (cached until they change). */
  fingerprint(): Promise<string> {
    if (!this.fingerprintCache) {
      const enc = this.encoder;
      this.fingerprintCache = enc.readWeights().then((w) => encoderFingerprint(enc.cfg, w.params));
    }
    return this.fingerprintCache;
  }

  /** The first forward pass compiles kernels (shaders on WebGPU): run it once up front. */
  async warmUp(): Promise<void> {
    const cfg = this.config;
    const s = cfg.imgSize;
    const warm = tf.tidy(() => this.encoder.encode(tf.zeros([1, s, s, cfg.inChannels]) as tf.Tensor4D, { checkFinite: false }).clsPre);
    await warm.data();
    warm.dispose();
    await checkGpuErrors('init');
  }

  /**
   * Features [count x D] of the images: resized to the model size (unless
   * `resize: false`), normalised with mean/std, encoded, in passes that fit.
   */
  async embed(src: CheckedPixels, opts: EmbedOptions = {}): Promise<Float32Array> {
    const enc = this.encoder;
    const cfg = enc.cfg;
    const size = opts.resize === false ? undefined : cfg.imgSize;
    const { height, width, count } = src.shape;
    if (size === undefined && (height < cfg.patchSize || width < cfg.patchSize)) {
      throw new MsnShapeError(`Images of ${height}x${width} px are smaller than one ${cfg.patchSize} px patch; resize them or drop resize: false.`);
    }
    const passSize = this.passSize(src, size, checkBatchSize(opts.batchSize));
    if (opts.feature !== undefined && opts.feature !== 'pre' && opts.feature !== 'post') {
      throw new MsnValueError(`feature must be 'pre' or 'post', got ${String(opts.feature)}.`);
    }
    const batch = (start: number, n: number) => pixelBatch(src, range(start, n), cfg.inChannels, size);
    // checkPixels checked every value, so no (synchronous) finiteness read per pass.
    const out = await embedBatches(enc, batch, count, { ...this.preprocess, feature: opts.feature, l2Normalize: opts.l2Normalize, passSize, checkFinite: false });
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
  async assign(src: CheckedPixels, opts: AssignOptions = {}): Promise<PrototypeAssignment> {
    const enc = this.encoder;
    const cfg = enc.cfg;
    const k = cfg.numPrototypes;
    const topK = opts.topK ?? Math.min(5, k);
    if (!Number.isInteger(topK) || topK < 1 || topK > k) throw new MsnValueError(`topK must be an integer from 1 to ${k} (the number of prototypes), got ${String(opts.topK)}.`);
    const tau = checkTemperature(opts.temperature);
    const owned = this.lent ? undefined : this.baseProtos;
    const size = opts.resize === false ? undefined : cfg.imgSize;
    const requested = checkBatchSize(opts.batchSize);
    if (!this.lent && !owned) throw new MsnConfigError('This model has no prototypes (it was saved without them); load a model or checkpoint that has them.');
    const passSize = this.passSize(src, size, requested);
    const protos = this.lent?.prototypes ?? tf.tensor2d(owned!, [k, cfg.outputDim]);
    try {
      const batch = (start: number, n: number) => pixelBatch(src, range(start, n), cfg.inChannels, size);
      const result = await assignImages(enc, batch, src.shape.count, protos, { ...this.preprocess, tau, topK, full: opts.full, passSize });
      await checkGpuErrors('assignPrototypes');
      return result;
    } finally {
      if (protos !== this.lent?.prototypes) protos.dispose();
    }
  }

  /** Images per pass: the requested number, lowered to fit memory (or refused when one image cannot). */
  private passSize(src: CheckedPixels, size: number | undefined, requested: number): number {
    const { height, width } = src.shape;
    return embedPassSize(this.config, size ?? height, size ?? width, requested, size !== undefined);
  }

  /** Frees the base model (a lent encoder belongs to its run). Idempotent. */
  dispose(): void {
    this.lent = undefined;
    this.releaseBase();
  }
}

/** An assignment temperature: the official one by default. */
export function checkTemperature(t: number | undefined): number {
  const tau = t ?? PROTOTYPE_TEMPERATURE;
  if (!(typeof tau === 'number' && Number.isFinite(tau) && tau > 0)) throw new MsnValueError(`temperature must be a positive number, got ${String(t)}.`);
  return tau;
}

/** The caller's images per pass, 64 by default. */
function checkBatchSize(batchSize: number | undefined): number {
  const requested = batchSize ?? 64;
  if (!Number.isInteger(requested) || requested < 1) throw new MsnValueError(`batchSize must be a positive integer, got ${requested}.`);
  return requested;
}

function range(start: number, n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => start + i);
}
