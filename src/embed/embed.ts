/**
 * Batched feature extraction with a frozen encoder: the evaluation feature
 * of the official low-shot protocol (last-block CLS before the final norm),
 * as plain Float32Array rows. Inference only: imports no training code.
 */
import * as tf from '@tensorflow/tfjs-core';
import { MsnShapeError } from '../errors.js';
import { normalizePixels } from '../image/preprocess.js';
import { VisionTransformer } from '../model/vit.js';
import { prototypeProbabilities } from '../model/prototypes.js';

/** Any source of [n, H, W, C] float32 batches in [0, 1] by index (e.g. an ImageDataset). */
export interface IndexedImages {
  readonly count: number;
  batch(indices: Int32Array, outChannels: number): tf.Tensor4D;
}

/** embedImages()' options (the client's embed() takes EmbedOptions from runtime/api.ts). */
export interface EmbedImagesOptions {
  /** Per-channel normalisation used in pretraining (stored with the model). */
  mean: number[];
  std: number[];
  batchSize?: number;
  /** L2-normalise each feature row. */
  l2Normalize?: boolean;
  /** 'pre' = last-block CLS before the final norm (default, official); 'post' = after it. */
  feature?: 'pre' | 'post';
}

/**
 * Features [n, D] of one batch of images [n, H, W, C] in [0, 1]: normalised
 * with mean/std, encoded, the chosen CLS token, optionally L2-normalised.
 * The caller owns the result. `checkFinite` as in VisionTransformer.encode.
 */
export function batchFeatures(
  model: VisionTransformer,
  raw: tf.Tensor4D,
  opts: Omit<EmbedImagesOptions, 'batchSize'>,
  checkFinite?: boolean,
): tf.Tensor2D {
  return tf.tidy(() => {
    const x = normalizePixels(raw, opts.mean, opts.std);
    const { clsPre, clsNorm } = model.encode(x, { checkFinite });
    const f: tf.Tensor2D = opts.feature === 'post' ? clsNorm : clsPre;
    return opts.l2Normalize ? tf.div(f, tf.maximum(tf.norm(f, 'euclidean', 1, true), 1e-12)) : f;
  });
}

/**
 * MSN's own prediction for one batch of images [n, H, W, C] in [0, 1]: the
 * projection head (eval mode) on the normalised CLS token, softmax over the
 * prototypes at temperature tau, as the official loss computes anchor
 * probabilities. [n, K]; the caller owns the result.
 */
export function batchPrototypeProbs(
  model: VisionTransformer,
  raw: tf.Tensor4D,
  prototypes: tf.Tensor2D,
  opts: { mean: number[]; std: number[]; tau: number; checkFinite?: boolean },
): tf.Tensor2D {
  return tf.tidy(() => {
    const x = normalizePixels(raw, opts.mean, opts.std);
    const { clsNorm } = model.encode(x, { checkFinite: opts.checkFinite });
    return prototypeProbabilities(model.head(clsNorm, 'eval'), prototypes, opts.tau);
  });
}

/**
 * The pass loop every batched read shares (features here, prototype
 * probabilities in assign.ts): images `start..start+n-1` from `batch`, a
 * [n, X] result from `compute` (inside its own tf.tidy), read back
 * asynchronously (no GPU stall on WebGPU) and handed to `take` as rows.
 * Every tensor is disposed, also when a step throws.
 */
export async function forEachPass(
  count: number,
  passSize: number,
  batch: (start: number, n: number) => tf.Tensor4D,
  compute: (raw: tf.Tensor4D) => tf.Tensor2D,
  take: (rows: Float32Array, start: number, n: number) => void,
): Promise<void> {
  for (let start = 0; start < count; start += passSize) {
    const n = Math.min(passSize, count - start);
    const raw = batch(start, n);
    let out: tf.Tensor2D;
    try {
      out = compute(raw);
    } finally {
      raw.dispose();
    }
    let rows: Float32Array;
    try {
      rows = (await out.data()) as Float32Array;
    } finally {
      out.dispose();
    }
    take(rows, start, n);
  }
}

/** What the one embedding loop needs beside the images: normalisation, the feature, the pass size. */
export interface EmbedPassOptions extends Omit<EmbedImagesOptions, 'batchSize'> {
  /** Images per forward pass. */
  passSize: number;
  /** As in VisionTransformer.encode (the engine checked its pixels already, so it passes false). */
  checkFinite?: boolean;
}

/**
 * The one embedding loop: features [count x D] of images fetched pass by
 * pass with `batch(start, n)` (embedImages() and the engine's embedder).
 */
export async function embedBatches(
  model: VisionTransformer,
  batch: (start: number, n: number) => tf.Tensor4D,
  count: number,
  opts: EmbedPassOptions,
): Promise<Float32Array> {
  const d = model.cfg.embedDim;
  const out = new Float32Array(count * d);
  await forEachPass(count, opts.passSize, batch, (raw) => batchFeatures(model, raw, opts, opts.checkFinite), (rows, start) => out.set(rows, start * d));
  return out;
}

/**
 * Features [indices.length x D] for the given images (all of them by
 * default), read asynchronously batch by batch (every backend, WebGPU too).
 */
export async function embedImages(model: VisionTransformer, images: IndexedImages, opts: EmbedImagesOptions, indices?: Int32Array): Promise<Float32Array> {
  const idx = indices ?? Int32Array.from({ length: images.count }, (_, i) => i);
  if (opts.mean.length !== model.cfg.inChannels || opts.std.length !== model.cfg.inChannels) {
    throw new MsnShapeError(`mean/std need ${model.cfg.inChannels} entries for this model.`);
  }
  const batch = (start: number, n: number) => images.batch(idx.subarray(start, start + n), model.cfg.inChannels);
  return embedBatches(model, batch, idx.length, { ...opts, passSize: opts.batchSize ?? 256 });
}
