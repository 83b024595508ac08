/**
 * The MSN loss (official src/losses.py), step by step:
 *   1. anchor predictions p = softmax(normalize(z) normalize(Q)^T / tau)
 *   2. targets (no gradient): the same for the target views, sharpened with
 *      T, balanced with Sinkhorn, repeated once per anchor view (view-major)
 *   3. cross-entropy H(targets, p) averaged over all M*B anchor rows
 *   4. ME-MAX: log K - H(mean of p over all anchor rows)
 * (The one-hot proto_labels of the official code are the identity when label
 * smoothing is 0, as in every released config, so they are left out.)
 *
 * TF.js has no stop-gradient: targets are computed by `msnTargets`, which the
 * caller runs outside tf.variableGrads, and handed to `msnLossTerms`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type Frozen, OFFICIAL_LOSS as LOSS_DEFAULTS } from '../defaults.js';
import { l2Normalize, prototypeLogits } from '../model/prototypes.js';
import '../runtime/gradients.js';
import { MsnConfigError, MsnShapeError } from '../errors.js';
import { AllReduce, allReduceMean, allReduceSum } from './all-reduce.js';

export interface MsnLossOptions {
  /** Softmax temperature of the anchor predictions (official 0.1). */
  tau: number;
  /** Sharpening exponent 1/T of the targets (official T = 0.25). */
  sharpenT: number;
  /** Sinkhorn iterations on the targets; 0 turns Sinkhorn off (official 3). */
  sinkhornIters: number;
  /** Weight of ME-MAX (official 1). */
  memaxWeight: number;
  /** Weight of the mean anchor entropy (official 0: computed, not used). */
  entWeight: number;
}

/** The official values (defaults.ts, checked here against the option type). */
export const OFFICIAL_LOSS: Frozen<MsnLossOptions> = LOSS_DEFAULTS;

export interface TargetDiagnostics {
  /** Number of distinct prototypes that are a target's argmax (collapse signal). */
  numProtosUsed: number;
  /** Mean of each target row's max / min probability. */
  maxTarget: number;
  minTarget: number;
}

export { l2Normalize };

/**
 * Sinkhorn-Knopp balancing of targets [B, K]; rows of the result sum to 1.
 * With a replica group, the official `distributed_sinkhorn`: the total and
 * the per-prototype sums run over every replica's samples, B counts them all.
 */
export function sinkhorn(targets: tf.Tensor2D, iters: number, group?: AllReduce): tf.Tensor2D {
  return tf.tidy(() => {
    const [b, k] = targets.shape;
    const total = b * (group?.size ?? 1);
    const global = <T extends tf.Tensor>(t: T): T => (group ? allReduceSum(t, group) : t);
    let q: tf.Tensor2D = tf.transpose(targets); // [K, B]
    q = tf.div(q, global(tf.sum(q)));
    for (let i = 0; i < iters; i++) {
      q = tf.div(tf.div(q, global(tf.sum(q, 1, true))), k); // each prototype gets mass 1/K
      q = tf.div(tf.div(q, tf.sum(q, 0, true)), total); // each sample gets mass 1/B
    }
    return tf.transpose(tf.mul(q, total)) as tf.Tensor2D;
  });
}

function checkOptions(o: MsnLossOptions): void {
  if (!(o.tau > 0) || !(o.sharpenT > 0)) throw new MsnConfigError(`tau and sharpenT must be > 0, got ${o.tau}, ${o.sharpenT}.`);
  if (!Number.isInteger(o.sinkhornIters) || o.sinkhornIters < 0) {
    throw new MsnConfigError(`sinkhornIters must be an integer >= 0, got ${o.sinkhornIters}.`);
  }
  // A NaN or infinite weight makes every loss non-finite, so every step would be
  // skipped and the run would end in MsnNumericalError, far from the cause.
  if (!Number.isFinite(o.memaxWeight) || !Number.isFinite(o.entWeight)) {
    throw new MsnConfigError(`memaxWeight and entWeight must be finite numbers (official 1 and 0), got ${o.memaxWeight}, ${o.entWeight}.`);
  }
}

/**
 * Step 2: targets [B, K] for the target-view outputs (no gradient; run it
 * outside the gradient tape). The caller owns `targets`.
 */
export function msnTargets(
  targetZ: tf.Tensor2D,
  prototypes: tf.Tensor2D,
  opts: MsnLossOptions,
  group?: AllReduce,
): { targets: tf.Tensor2D; unsharpened: tf.Tensor2D; sharpened: tf.Tensor2D } {
  checkOptions(opts);
  if (targetZ.rank !== 2 || prototypes.rank !== 2 || targetZ.shape[1] !== prototypes.shape[1]) {
    throw new MsnShapeError(
      `msnTargets: expected target outputs [B, d] and prototypes [K, d] with the same d, got [${targetZ.shape}] and [${prototypes.shape}].`,
    );
  }
  return tf.tidy(() => {
    const logits = prototypeLogits(targetZ, prototypes, opts.tau);
    const unsharpened = tf.softmax(logits);
    const powered = tf.pow(unsharpened, 1 / opts.sharpenT);
    const sharpened = tf.div(powered, tf.sum(powered, 1, true)) as tf.Tensor2D;
    const targets = opts.sinkhornIters > 0 ? sinkhorn(sharpened, opts.sinkhornIters, group) : sharpened.clone();
    return { targets, unsharpened, sharpened };
  });
}

/**
 * Collapse diagnostics of targets [B, K] as one float32 vector, to be read
 * back with the step's other numbers: [mean max, mean min, argmax of each row].
 */
export function diagnosticsTensor(targets: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() =>
    tf.concat([tf.reshape(tf.mean(tf.max(targets, 1)), [1]), tf.reshape(tf.mean(tf.min(targets, 1)), [1]), tf.cast(tf.argMax(targets, 1), 'float32')]) as tf.Tensor1D,
  );
}

/** Decodes diagnosticsTensor's values. */
export function decodeDiagnostics(values: ArrayLike<number>): TargetDiagnostics {
  const rows = Array.prototype.slice.call(values, 2) as number[];
  return { numProtosUsed: new Set(rows).size, maxTarget: values[0], minTarget: values[1] };
}

/** Collapse diagnostics of targets [B, K] (one synchronous read). */
export function targetDiagnostics(targets: tf.Tensor2D): TargetDiagnostics {
  const t = diagnosticsTensor(targets);
  try {
    return decodeDiagnostics(t.dataSync());
  } finally {
    t.dispose();
  }
}

export interface LossTerms {
  total: tf.Scalar;
  ce: tf.Scalar;
  memax: tf.Scalar;
  entropy: tf.Scalar;
  /** Anchor predictions [M*B, K]. */
  probs: tf.Tensor2D;
}

/**
 * Steps 1, 3, 4: differentiable in anchorZ [M*B, d] (view-major: row m*B + i
 * is view m of image i) and the prototypes. `targets` [B, K] are constants.
 * With a replica group, ME-MAX uses the mean probabilities of all replicas.
 */
export function msnLossTerms(
  anchorZ: tf.Tensor2D,
  prototypes: tf.Tensor2D,
  targets: tf.Tensor2D,
  opts: MsnLossOptions,
  group?: AllReduce,
): LossTerms {
  checkOptions(opts);
  const [rows, d] = anchorZ.shape;
  const [b, k] = targets.shape;
  const ranks = anchorZ.rank === 2 && prototypes.rank === 2 && targets.rank === 2;
  if (!ranks || d !== prototypes.shape[1] || k !== prototypes.shape[0] || rows % b !== 0) {
    throw new MsnShapeError(
      `msnLossTerms: expected anchors [M*B, d], prototypes [K, d], targets [B, K]; got [${anchorZ.shape}], [${prototypes.shape}], [${targets.shape}].`,
    );
  }
  const numViews = rows / b;
  return tf.tidy(() => {
    const logits = prototypeLogits(anchorZ, prototypes, opts.tau);
    const logp = tf.logSoftmax(logits);
    const probs = tf.exp(logp) as tf.Tensor2D;
    const repeated = numViews === 1 ? targets : tf.concat(Array(numViews).fill(targets), 0); // [M*B, K] view-major
    const ce = tf.neg(tf.mean(tf.sum(tf.mul(repeated, logp), 1))) as tf.Scalar;
    const localAvg = tf.mean(probs, 0); // over all M*B anchor rows
    const avg = group ? allReduceMean(localAvg, group) : localAvg;
    const memax = tf.add(tf.sum(tf.mul(avg, tf.log(avg))), Math.log(k)) as tf.Scalar; // log K - H(avg)
    const entropy = tf.neg(tf.mean(tf.sum(tf.mul(probs, logp), 1))) as tf.Scalar;
    let total = tf.add(ce, tf.mul(memax, opts.memaxWeight)) as tf.Scalar;
    if (opts.entWeight !== 0) total = tf.add(total, tf.mul(entropy, opts.entWeight));
    return { total, ce, memax, entropy, probs };
  });
}
