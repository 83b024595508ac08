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

export interface EmbedOptions {
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
  opts: Omit<EmbedOptions, 'batchSize'>,
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
 * Features [indices.length x D] for the given images (all of them by
 * default), read asynchronously batch by batch (every backend, WebGPU too).
 */
export async function embedImages(model: VisionTransformer, images: IndexedImages, opts: EmbedOptions, indices?: Int32Array): Promise<Float32Array> {
  const idx = indices ?? Int32Array.from({ length: images.count }, (_, i) => i);
  const d = model.cfg.embedDim;
  const out = new Float32Array(idx.length * d);
  const bs = opts.batchSize ?? 256;
  if (opts.mean.length !== model.cfg.inChannels || opts.std.length !== model.cfg.inChannels) {
    throw new MsnShapeError(`mean/std need ${model.cfg.inChannels} entries for this model.`);
  }
  for (let start = 0; start < idx.length; start += bs) {
    const part = idx.subarray(start, Math.min(idx.length, start + bs));
    const raw = images.batch(part, model.cfg.inChannels);
    let feats: tf.Tensor2D;
    try {
      feats = batchFeatures(model, raw, opts);
    } finally {
      raw.dispose();
    }
    try {
      out.set(await feats.data(), start * d);
    } finally {
      feats.dispose();
    }
  }
  return out;
}
