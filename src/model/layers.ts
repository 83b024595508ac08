/**
 * Small differentiable building blocks, written with ops that have kernels
 * and gradients on the cpu, wasm and webgpu backends of TF.js 4.22.
 */
import * as tf from '@tensorflow/tfjs-core';
import { GELU, GELU_GRAD, LAYER_NORM, LAYER_NORM_GRAD, fusedKernelsActive } from '../kernels/wasm/kernels.js';
import { BATCH_NORM_EPS, BATCH_NORM_MOMENTUM } from './config.js';

/**
 * a [N, K] @ b [K, M] whose backward pass also uses plain products. TF.js's
 * own matMul gradient multiplies with transpose flags, which tfjs-wasm runs
 * in a scalar loop about 10x slower than its XNNPACK path for plain 2-D
 * products; transposing explicitly first keeps every product on the fast path.
 */
const matMul2dGrad = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [a, b, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
  save([a, b]);
  return {
    value: tf.matMul(a, b) as tf.Tensor2D,
    gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
      const [sa, sb] = saved as tf.Tensor2D[];
      return [tf.matMul(dy, tf.transpose(sb)), tf.matMul(tf.transpose(sa), dy)];
    },
  };
});

export function matMul2d(a: tf.Tensor, b: tf.Tensor): tf.Tensor2D {
  return matMul2dGrad(a, b) as tf.Tensor2D;
}

/** x [N, in] @ w [in, out] + b [out]. */
export function linear(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor): tf.Tensor2D {
  return tf.add(matMul2d(x, w), b);
}

/**
 * LayerNorm in one kernel each way on wasm (src/kernels/wasm), over x [rows, d].
 * The forward saves each row's mean and 1 / sqrt(var + eps) for the backward.
 */
const fusedLayerNorms = new Map<number, (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.Tensor>();
function fusedLayerNorm(eps: number): (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.Tensor {
  let f = fusedLayerNorms.get(eps);
  if (!f) {
    f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [x, g, b] = args as tf.Tensor[];
      const [y, mean, rstd] = tf.engine().runKernel(LAYER_NORM, { x, g, b }, { eps }) as tf.Tensor[];
      (args[3] as tf.GradSaveFunc)([x, g, mean, rstd]);
      return {
        value: y,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
          tf.engine().runKernel(LAYER_NORM_GRAD, { x: saved[0], g: saved[1], mean: saved[2], rstd: saved[3], dy }) as tf.Tensor[],
      };
    }) as (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.Tensor;
    fusedLayerNorms.set(eps, f);
  }
  return f;
}

/** LayerNorm over the last axis with the biased variance, like torch.nn.LayerNorm. */
export function layerNorm<T extends tf.Tensor>(x: T, g: tf.Tensor, b: tf.Tensor, eps: number): T {
  const d = x.shape[x.shape.length - 1];
  if (x.dtype === 'float32' && fusedKernelsActive() && g.shape.length === 1 && b.shape.length === 1) {
    return tf.reshape(fusedLayerNorm(eps)(tf.reshape(x, [-1, d]), g, b), x.shape) as T; // [rows, d] and back
  }
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), g), b) as T;
}

/**
 * GELU in one kernel each way on wasm (src/kernels/wasm): forward and the
 * gradient dy * (0.5 (erf(x / sqrt 2) + 1) + x exp(-x^2 / 2) / sqrt(2 pi)).
 */
const fusedGelu = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const x = args[0] as tf.Tensor;
  (args[1] as tf.GradSaveFunc)([x]);
  return {
    value: tf.engine().runKernel(GELU, { x }) as tf.Tensor,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.engine().runKernel(GELU_GRAD, { x: saved[0], dy }) as tf.Tensor,
  };
});

/** Exact GELU, 0.5 x (1 + erf(x / sqrt 2)) (torch.nn.GELU's default, not the tanh form). */
export function gelu<T extends tf.Tensor>(x: T): T {
  if (x.dtype === 'float32' && fusedKernelsActive()) return fusedGelu(x) as T;
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)) as T;
}

/**
 * BatchNorm1d over x [N, C]. Train mode normalises with the batch statistics
 * (biased variance) and, when `running` is given, moves the running stats
 * toward them with momentum 0.1 using the *unbiased* variance, as PyTorch
 * does. Eval mode uses the running stats.
 */
export function batchNorm(
  x: tf.Tensor2D,
  g: tf.Tensor,
  b: tf.Tensor,
  runningMean: tf.Variable,
  runningVar: tf.Variable,
  mode: 'train' | 'eval',
  updateRunning: boolean,
): tf.Tensor2D {
  if (mode === 'eval') {
    const inv = tf.rsqrt(tf.add(runningVar, BATCH_NORM_EPS));
    return tf.add(tf.mul(tf.mul(tf.sub(x, runningMean), inv), g), b);
  }
  const n = x.shape[0];
  const { mean, variance } = tf.moments(x, 0);
  if (updateRunning) {
    // The buffer update does not feed the loss, so backprop ignores it even
    // when this runs inside tf.variableGrads. assign() keeps its own reference,
    // so it survives the surrounding tidy.
    const m = BATCH_NORM_MOMENTUM;
    const newMean = tf.add(tf.mul(runningMean, 1 - m), tf.mul(mean, m));
    const newVar = tf.add(tf.mul(runningVar, 1 - m), tf.mul(variance, (m * n) / (n - 1)));
    runningMean.assign(newMean);
    runningVar.assign(newVar);
  }
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, BATCH_NORM_EPS))), g), b);
}
