/**
 * Prototype assignments of many images, pass by pass: the top-k prototypes
 * of each image with their probabilities, the mean assignment, and on request
 * every probability (plain arrays; see batchPrototypeProbs for the math).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { VisionTransformer } from '../model/vit.js';
import { batchPrototypeProbs, forEachPass } from './embed.js';

/** MSN's soft assignment of each image to the learned prototypes (plain data). */
export interface PrototypeAssignment {
  count: number;
  /** K, the number of prototypes. */
  numPrototypes: number;
  topK: number;
  /** [count x topK] prototype ids, most likely first. */
  ids: Int32Array;
  /** [count x topK] their probabilities. */
  probs: Float32Array;
  /** [K] the mean assignment over the images (its entropy is a collapse diagnostic). */
  meanProbs: Float32Array;
  /** [count x K] every probability, when `full` was asked for. */
  full?: Float32Array;
}

export interface AssignImagesOptions {
  mean: number[];
  std: number[];
  tau: number;
  topK: number;
  full?: boolean;
  /** Images per forward pass. */
  passSize: number;
}

/** `batch(start, n)` gives images start..start+n-1 as [n, H, W, C] in [0, 1] (this function disposes them). */
export async function assignImages(
  model: VisionTransformer,
  batch: (start: number, n: number) => tf.Tensor4D,
  count: number,
  prototypes: tf.Tensor2D,
  opts: AssignImagesOptions,
): Promise<PrototypeAssignment> {
  const k = prototypes.shape[0];
  const { topK } = opts;
  const ids = new Int32Array(count * topK);
  const probs = new Float32Array(count * topK);
  const sums = new Float64Array(k);
  const full = opts.full ? new Float32Array(count * k) : undefined;
  const compute = (raw: tf.Tensor4D) => batchPrototypeProbs(model, raw, prototypes, { mean: opts.mean, std: opts.std, tau: opts.tau, checkFinite: false });
  await forEachPass(count, opts.passSize, batch, compute, (rows, start, n) => {
    full?.set(rows, start * k);
    for (let r = 0; r < n; r++) {
      const row = rows.subarray(r * k, (r + 1) * k);
      for (let j = 0; j < k; j++) sums[j] += row[j];
      const order = topIndices(row, topK);
      for (let t = 0; t < topK; t++) {
        ids[(start + r) * topK + t] = order[t];
        probs[(start + r) * topK + t] = row[order[t]];
      }
    }
  });
  const meanProbs = Float32Array.from(sums, (v) => v / count);
  return { count, numPrototypes: k, topK, ids, probs, meanProbs, ...(full ? { full } : {}) };
}

/** Indices of the `k` largest values of `row`, largest first (ties: lower index first). */
export function topIndices(row: ArrayLike<number>, k: number): number[] {
  const best: number[] = [];
  for (let j = 0; j < row.length; j++) {
    if (best.length === k && row[j] <= row[best[k - 1]]) continue;
    let at = best.length === k ? k - 1 : best.length;
    if (best.length < k) best.push(j);
    while (at > 0 && row[best[at - 1]] < row[j]) {
      best[at] = best[at - 1];
      at--;
    }
    best[at] = j;
  }
  return best;
}
