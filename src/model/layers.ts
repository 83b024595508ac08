/**
 * Small differentiable building blocks, written with ops that have kernels
 * and gradients on the cpu, wasm and webgpu backends of TF.js 4.22.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ATTENTION, ATTENTION_GRAD, COLUMN_SUM, GELU, GELU_GRAD, LAYER_NORM, LAYER_NORM_GRAD, WEIGHT_GRAD, fusedKernelsActive } from '../kernels/wasm/kernels.js';
import { BATCH_NORM_EPS, BATCH_NORM_MOMENTUM } from './config.js';

/**
 * x [N, in] @ w [in, out] + b [out] in one fused product (the bias added by
 * the product kernel), with a backward pass of plain products: TF.js's own
 * matMul gradient multiplies with transpose flags, which tfjs-wasm runs in a
 * scalar loop about 10x slower than its XNNPACK path for plain 2-D products,
 * so w is transposed explicitly first. On wasm the weight gradient x^T dy is
 * one kernel (no transposed copy of x: tfjs's Transpose of [2560, 256] takes
 * as long as the product) and the bias gradient one column sum (tfjs's Sum
 * over axis 0 transposes dy first); both give the bits of the composed ops.
 */
const linearGrad = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, w, b, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
  save([x, w]);
  return {
    value: tf.fused.matMul({ a: x, b: w, bias: b }) as tf.Tensor2D,
    gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
      const [sx, sw] = saved as tf.Tensor2D[];
      const dx = tf.matMul(dy, tf.transpose(sw));
      if (dy.dtype === 'float32' && fusedKernelsActive()) {
        const run = (kernel: string, inputs: tf.NamedTensorMap) => tf.engine().runKernel(kernel, inputs) as tf.Tensor;
        return [dx, run(WEIGHT_GRAD, { x: sx, dy }), run(COLUMN_SUM, { x: dy })];
      }
      return [dx, tf.matMul(tf.transpose(sx), dy), tf.sum(dy, 0)];
    },
  };
});

/** x [N, in] @ w [in, out] + b [out]. */
export function linear(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor): tf.Tensor2D {
  return linearGrad(x, w, b) as tf.Tensor2D;
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
 * Attention in one kernel each way on wasm (src/kernels/wasm), from qkv
 * [B, T, 3D]; the forward saves the softmax probabilities for the backward.
 */
const fusedAttentions = new Map<string, (qkv: tf.Tensor) => tf.Tensor>();
function fusedAttention(heads: number, scale: number): (qkv: tf.Tensor) => tf.Tensor {
  const key = `${heads}:${scale}`;
  let f = fusedAttentions.get(key);
  if (!f) {
    f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const qkv = args[0] as tf.Tensor;
      const [out, probs] = tf.engine().runKernel(ATTENTION, { qkv }, { heads, scale }) as tf.Tensor[];
      (args[1] as tf.GradSaveFunc)([qkv, probs]);
      return {
        value: out,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
          tf.engine().runKernel(ATTENTION_GRAD, { qkv: saved[0], probs: saved[1], dy }, { heads, scale }) as tf.Tensor,
      };
    }) as (qkv: tf.Tensor) => tf.Tensor;
    fusedAttentions.set(key, f);
  }
  return f;
}

/**
 * Multi-head self-attention from the qkv projection of `b` sequences of `t`
 * tokens, qkv [B*T, 3D] laid out [q | k | v], each split into `heads`
 * contiguous heads: softmax(q k^T / sqrt(hd)) v, heads side by side [B*T, D].
 */
export function attention(qkv: tf.Tensor2D, b: number, t: number, heads: number): tf.Tensor2D {
  const d = qkv.shape[1] / 3;
  const hd = d / heads;
  const scale = 1 / Math.sqrt(hd);
  if (qkv.dtype === 'float32' && fusedKernelsActive()) {
    return tf.reshape(fusedAttention(heads, scale)(tf.reshape(qkv, [b, t, 3 * d])), [b * t, d]); // [B, T, 3D] in, [B, T, D] out
  }
  // Split first and use rank-4 transposes: rank-5 transposes are slow on wasm.
  const [q, k, v] = tf.split(qkv, 3, 1).map((m) =>
    tf.reshape(tf.transpose(tf.reshape(m, [b, t, heads, hd]), [0, 2, 1, 3]), [b * heads, t, hd]),
  ); // each [B*h, T, hd]
  const scores = tf.mul(tf.matMul(q, k, false, true), scale); // [B*h, T, T]
  const ctx = tf.matMul(tf.softmax(scores, -1), v); // [B*h, T, hd]
  return tf.reshape(tf.transpose(tf.reshape(ctx, [b, heads, t, hd]), [0, 2, 1, 3]), [b * t, d]); // [B*T, D]
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
