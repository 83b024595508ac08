/**
 * MSN's prediction for an image: its soft assignment to the learned
 * prototypes, p = softmax(normalize(z) normalize(Q)^T / tau), exactly as the
 * official loss computes the anchor probabilities (z: projection head output,
 * Q: prototypes [K, outputDim]). Inference code: the loss imports it from here.
 */
import * as tf from '@tensorflow/tfjs-core';
import { PROTOTYPE_TEMPERATURE } from '../defaults.js';

/** The official temperature of the anchor predictions (defaults.ts: the loss's tau). */
export { PROTOTYPE_TEMPERATURE };

/**
 * x / max(||x||_2, 1e-12) along the last axis, as F.normalize. Written as
 * sqrt(max(||x||^2, 1e-24)): the same values, but an all-zero row gets the
 * official finite gradient (upstream / 1e-12) instead of NaN from the norm's
 * derivative x / ||x|| at 0, which would make every step skip.
 */
export function l2Normalize<T extends tf.Tensor>(x: T): T {
  return tf.div(x, tf.sqrt(tf.maximum(tf.sum(tf.square(x), -1, true), 1e-24))) as T;
}

/** Logits of the soft nearest-neighbour classifier over the prototypes: [rows, K]. */
export function prototypeLogits(z: tf.Tensor2D, prototypes: tf.Tensor2D, tau: number): tf.Tensor2D {
  return tf.div(tf.matMul(l2Normalize(z), l2Normalize(prototypes), false, true), tau);
}

/** Probabilities over the K prototypes for each row of z: [rows, K], rows sum to 1. */
export function prototypeProbabilities(z: tf.Tensor2D, prototypes: tf.Tensor2D, tau = PROTOTYPE_TEMPERATURE): tf.Tensor2D {
  return tf.tidy(() => tf.softmax(prototypeLogits(z, prototypes, tau)));
}
