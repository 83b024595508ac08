/**
 * The check of one official training iteration (tiny_train_step.json +
 * tiny_weights.json) on whatever backend is active: train-step.test.ts runs
 * it on wasm and cpu, test/webgpu on WebGPU; every read is asynchronous.
 * Gradients before clipping, weights after AdamW + EMA, BatchNorm running
 * stats. Config, shapes, kept indices and hyperparameters all come from the
 * reference files.
 * Tolerances (vectors README): gradients rel 2e-3, weights rel 1e-5; each
 * comparison adds an absolute floor of 1e-6 times the tensor's largest
 * magnitude, because float32 summation-order noise is relative to the
 * largest terms of a sum, not to each (possibly near-zero) element.
 */
import { expect } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { VisionTransformer, ViewGroup } from '../../src/model/vit.js';
import { fromTorchLayout } from '../../src/interop/torch-layout.js';
import { makeSchedules } from '../../src/train/schedules.js';
import { MsnTrainState, PROTOTYPES, TrainHyper, applyGradients, computeGradientsAsync, createOptimizer } from '../../src/train/step.js';
import { RefArray, closeness, configFromRef, f32, imagesNHWC, readRef, weightsFromStateDict } from './reference.js';

export const ref = readRef('tiny_train_step.json');
const weights = readRef('tiny_weights.json');
const C = ref.config;

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/**
 * Elements whose gradient is exactly zero in exact arithmetic, so that both
 * implementations hold only float32 noise there: biases that feed a
 * train-mode BatchNorm directly or through a linear layer (fc.fc1.bias,
 * fc.fc2.bias, the final norm.bias) and the key part of every qkv bias
 * (softmax over keys ignores a shift that is the same for all keys).
 */
export function exactZeroGradient(name: string, dim: number, i: number): boolean {
  if (name === 'fc.fc1.bias' || name === 'fc.fc2.bias' || name === 'norm.bias') return true;
  return name.endsWith('.attn.qkv.bias') && i >= dim && i < 2 * dim;
}

/**
 * Gradient tolerance: rel 2e-3 (vectors README) plus an absolute floor of
 * 2e-4 x the tensor's largest |g|. The floor is needed because float32
 * rounding in the forward pass is amplified by the backward through the
 * tau = 0.1 softmax: measured errors here are <= 1e-4 x max|g| on both
 * backends; elementwise-relative errors are unbounded where terms cancel.
 */
const GRAD_RTOL = 2e-3;
const GRAD_ATOL_FRACTION = 2e-4;
function ourLayout(name: string, a: RefArray): Float32Array {
  return fromTorchLayout(name, a.shape, f32(a)).data;
}

function hyper(): TrainHyper {
  return {
    loss: {
      tau: C.temperature,
      sinkhornIters: C.use_sinkhorn ? 3 : 0,
      memaxWeight: C.me_max ? C.memax_weight : 0,
      entWeight: C.use_ent ? C.ent_weight : 0,
    },
    clipGrad: C.clip_grad,
  };
}

export function schedules() {
  const ema = C.ema ?? [0.996, 1.0];
  return makeSchedules({
    totalSteps: C.epochs * C.ipe, warmupSteps: C.warmup * C.ipe,
    lr: { start: C.start_lr, ref: C.lr, final: C.final_lr },
    weightDecay: { start: C.weight_decay, final: C.final_weight_decay },
    ema: { start: ema[0], end: ema[1] }, sharpen: { start: C.start_sharpen, end: C.final_sharpen },
  });
}

/** imgs_0 is the target view; imgs_1.. are anchors, grouped by equal size like the official list forward. */
function batchFromRef(): { target: tf.Tensor4D; anchors: ViewGroup[] } {
  const inputs = ref.inputs;
  const count = Object.keys(inputs).filter((k) => /^imgs_\d+$/.test(k)).length;
  const target = imagesNHWC(inputs.imgs_0);
  const groups: tf.Tensor4D[][] = [];
  for (let i = 1; i < count; i++) {
    const t = imagesNHWC(inputs[`imgs_${i}`]);
    const last = groups[groups.length - 1];
    if (last && last[0].shape[1] === t.shape[1] && last[0].shape[2] === t.shape[2]) last.push(t);
    else groups.push([t]);
  }
  const anchors = groups.map((g, gi) => ({
    images: g.length === 1 ? g[0] : concatAndDispose(g),
    keepPatches: gi === 0 && C.patch_drop > 0 ? ref.rng.kept_patch_indices_0based_excluding_cls.data : undefined,
  }));
  return { target, anchors };
}

function concatAndDispose(parts: tf.Tensor4D[]): tf.Tensor4D {
  const out = tf.concat(parts, 0); // view-major: all images of view m, then view m+1
  tf.dispose(parts);
  return out;
}

function makeState(): MsnTrainState {
  const cfg = configFromRef(ref.tiny_model, ref.inputs.imgs_0.shape[1]);
  const encoder = VisionTransformer.create(cfg, weightsFromStateDict(weights.init.encoder));
  const target = VisionTransformer.create(cfg, weightsFromStateDict(weights.init.encoder));
  const prototypes = tf.tidy(() => tf.variable(tf.tensor2d(f32(weights.init.prototypes), weights.init.prototypes.shape), true));
  const opt = ref.optimizer;
  const optimizer = createOptimizer(encoder, prototypes, { beta1: opt.betas[0], beta2: opt.betas[1], eps: opt.eps });
  return { encoder, target, prototypes, optimizer, step: 0 };
}

function disposeState(s: MsnTrainState) {
  s.encoder.dispose();
  s.target.dispose();
  s.prototypes.dispose();
  s.optimizer.dispose();
}

/** Gradients before clipping, weights after AdamW and EMA, BatchNorm stats; no tensor left behind. */
export async function checkTrainStepParity(): Promise<void> {
  const before = tf.memory().numTensors;
  const state = makeState();
  const batch = batchFromRef();
  const s = schedules();
  const h = hyper();
  const { grads, terms, diag, gradNorm: norm } = await computeGradientsAsync(state, batch, h, s.sharpen(0));
  const out = ref.outputs;
  expect(closeness([terms.ce, terms.memax, terms.total], [out.ce_loss, out.memax_loss, out.total_loss], 0, 1e-5)).toBeLessThanOrEqual(1);
  expect(diag.numProtosUsed).toBe(out.log.np);
  // Gradients, and for each element the largest change of AdamW's first
  // update u(g) = c g / (c |g| + eps) that the gradient tolerance allows
  // (c = clip coefficient for encoder parameters, 1 for prototypes). u is
  // monotone, so the extreme change is at an end of [g - delta, g + delta].
  const eps = ref.optimizer.eps;
  const clipCoef = Math.min(1, C.clip_grad / (out.grad_total_norm_before_clip + 1e-6));
  const u = (g: number, c: number) => (c * g) / (c * Math.abs(g) + eps);
  const uncertain = new Map<string, Float64Array>();
  const refGrads = ref.grads_before_clip as Record<string, RefArray>;
  let globalMax = 0;
  for (const g of Object.values(refGrads)) globalMax = Math.max(globalMax, maxAbs(g.data));
  for (const [name, g] of Object.entries(refGrads)) {
    const mine = grads.get(name);
    expect(mine, `gradient for ${name}`).toBeDefined();
    const actual = await mine!.data();
    const expected = ourLayout(name, g);
    const atol = GRAD_ATOL_FRACTION * maxAbs(expected);
    const flags = new Float64Array(expected.length);
    const dim = ref.tiny_model.embed_dim;
    for (let i = 0; i < expected.length; i++) {
      if (exactZeroGradient(name, dim, i)) {
        flags[i] = 2; // sign decided by noise: u anywhere in [-1, 1]
        // Exactly zero in exact arithmetic: both sides must be noise-sized.
        expect(Math.abs(actual[i]), `${name}[${i}] should be ~0`).toBeLessThanOrEqual(1e-5 * globalMax);
      } else {
        const delta = atol + GRAD_RTOL * Math.abs(expected[i]);
        const c = name === PROTOTYPES ? 1 : clipCoef;
        const g0 = expected[i];
        flags[i] = Math.max(Math.abs(u(g0 + delta, c) - u(g0, c)), Math.abs(u(g0 - delta, c) - u(g0, c)));
        const err = Math.abs(actual[i] - expected[i]);
        expect(err, `grad ${name}[${i}]: ${actual[i]} vs ${expected[i]}`).toBeLessThanOrEqual(delta);
      }
    }
    uncertain.set(name, flags);
  }
  expect(closeness([norm], [out.grad_total_norm_before_clip], 0, 1e-4)).toBeLessThanOrEqual(1);
  const lr = s.lr(1);
  const m = s.momentum(0);
  applyGradients(state, grads, norm, h, { lr, weightDecay: s.weightDecay(1), momentum: m });

  // Weights: AdamW's first update moves each weight by lr * u, so the
  // tolerance is rel 1e-5 (vectors README) plus lr * |du| from the
  // gradient tolerance above; where float32 noise decides the sign of g,
  // |du| <= 2. The EMA scales the update by (1 - m) in the target.
  const checkWeights = (label: string, actual: ArrayLike<number>, expected: Float32Array, flags: Float64Array | undefined, scale: number) => {
    for (let i = 0; i < expected.length; i++) {
      const tol = lr * scale * (flags?.[i] ?? 0) * (1 + 1e-4) + 1e-5 * Math.abs(expected[i]) + 1e-8;
      expect(Math.abs(actual[i] - expected[i]), `${label}[${i}]: ${actual[i]} vs ${expected[i]}`).toBeLessThanOrEqual(tol);
    }
  };
  const after = weights.after_step;
  const check = async (model: VisionTransformer, sd: Record<string, RefArray>, label: string, scale: number) => {
    for (const [name, a] of Object.entries(sd)) {
      if (name.endsWith('num_batches_tracked')) continue;
      const expected = ourLayout(name, a);
      if (name.includes('running_')) {
        // BatchNorm buffers are forward-pass statistics: the README's forward tolerance.
        expect(closeness(await model.p(name).data(), expected, 2e-5, 2e-4), `${label} ${name}`).toBeLessThanOrEqual(1);
      } else {
        checkWeights(`${label} ${name}`, await model.p(name).data(), expected, uncertain.get(name), scale);
      }
    }
  };
  await check(state.encoder, after.encoder, 'encoder', 1);
  await check(state.target, after.target_encoder, 'target', 1 - m);
  checkWeights('prototypes', await state.prototypes.data(), f32(after.prototypes), uncertain.get(PROTOTYPES), 1);
  // The encoder ran one train-mode call per anchor group, the target one.
  expect(state.encoder.numBatchesTracked).toBe(after.encoder['fc.bn1.num_batches_tracked'].data[0]);
  expect(state.target.numBatchesTracked).toBe(after.target_encoder['fc.bn1.num_batches_tracked'].data[0]);

  tf.dispose([batch.target, ...batch.anchors.map((g) => g.images)]);
  disposeState(state);
  expect(tf.memory().numTensors).toBe(before);
}
