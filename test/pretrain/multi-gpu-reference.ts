/**
 * The official multi-GPU MSN step (msn_train.py under DistributedDataParallel)
 * written out in one thread, for the data-parallel tests: the workers'
 * shares, each replica's own BatchNorm statistics, Sinkhorn and ME-MAX over
 * all shares, averaged gradients. `expectOfficialMultiGpuSteps` checks a run's
 * checkpoint tensors against it (the tolerance is explained at the check).
 */
import { expect } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { CheckpointData, epochPermutation, viewSeed } from '../../src/pretrain/pretrainer.js';
import { PretrainOptions, pretrainConfig } from '../../src/pretrain/config.js';
import { ImageDataset } from '../../src/pretrain/source.js';
import { disposeBatch, makeViews } from '../../src/pretrain/views.js';
import { createTrainState, disposeTrainState } from '../../src/train/state.js';
import { makeSchedules } from '../../src/train/schedules.js';
import { MsnTrainState, PROTOTYPES, TrainBatch, TrainHyper, applyGradients } from '../../src/train/step.js';
import { msnLossTerms, msnTargets } from '../../src/train/loss.js';
import { Rng } from '../../src/util/rng.js';
import { exactZeroGradient } from '../parity/train-step-check.js';

export function tensorsOf(c: CheckpointData): Record<string, Float32Array> {
  return Object.fromEntries(Object.entries(c.tensors).map(([k, v]) => [k, v.data]));
}

/**
 * The step of N workers written out in one thread: each worker's share goes
 * through its own forward passes (BatchNorm statistics per share), Sinkhorn
 * runs over all shares' targets together, the cross-entropy is the mean of
 * the shares' means, ME-MAX uses the mean probabilities of all shares.
 */
function referenceStep(
  state: MsnTrainState, shares: TrainBatch[], hyper: TrainHyper, schedules: ReturnType<typeof makeSchedules>, gradsOut: Map<string, Float32Array>[],
): number {
  const s = state.step + 1;
  const sched = { lr: schedules.lr(s), weightDecay: schedules.weightDecay(s), momentum: schedules.momentum(state.step) };
  const lossOpts = { ...hyper.loss, sharpenT: schedules.sharpen(state.step) };
  const protos = state.prototypes as unknown as tf.Tensor2D;
  const parts = tf.tidy(() => {
    const z = tf.concat(shares.map((b) => state.target.forward([{ images: b.target }], { bnMode: 'train' }))) as tf.Tensor2D;
    return tf.split(msnTargets(z, protos, lossOpts).targets, shares.length);
  }) as tf.Tensor2D[];
  const names = [...state.encoder.params.keys(), PROTOTYPES];
  const vars = [...state.encoder.params.values(), state.prototypes];
  const { value, grads } = tf.variableGrads(() => {
    const terms = shares.map((b, r) => msnLossTerms(state.encoder.forward(b.anchors, { bnMode: 'train' }), protos, parts[r], { ...lossOpts, memaxWeight: 0 }));
    const ce = tf.mean(tf.stack(terms.map((t) => t.ce)));
    const avg = tf.mean(tf.concat(terms.map((t) => t.probs)), 0);
    const memax = tf.add(tf.sum(tf.mul(avg, tf.log(avg))), Math.log(avg.shape[0]));
    return tf.add(ce, tf.mul(memax, hyper.loss.memaxWeight)) as tf.Scalar;
  }, vars);
  const byName = new Map<string, tf.Tensor>(names.map((n, i) => [n, grads[vars[i].name]]));
  const norm = Math.sqrt([...byName].filter(([n]) => n !== PROTOTYPES).reduce((a, [, g]) => a + tf.tidy(() => tf.sum(tf.square(g)).dataSync()[0]), 0));
  gradsOut.push(new Map([...byName].map(([n, g]) => [n, g.dataSync() as Float32Array])));
  applyGradients(state, byName, norm, hyper, sched);
  state.step++;
  tf.dispose([value, ...parts]);
  return norm;
}

/**
 * Expects `got` (a run's checkpoint tensors after `iterations` steps from a fresh
 * start with `opts`) to equal the official step of `workers` replicas.
 */
export function expectOfficialMultiGpuSteps(got: Record<string, Float32Array>, data: ImageDataset, opts: PretrainOptions, iterations: number, workers = 2): void {
  const cfg = pretrainConfig(opts);
  const b = cfg.batchSize;
  const share = b / workers;
  const state = createTrainState(cfg.model, { seed: cfg.seed });
  const schedules = makeSchedules(cfg);
  const hyper: TrainHyper = { loss: cfg.loss, clipGrad: cfg.clipGrad };
  const perm = epochPermutation(cfg.seed, 0, data.count);
  let maxNorm = 0;
  const stepGrads: Map<string, Float32Array>[] = [];
  for (let it = 0; it < iterations; it++) {
    const shares = Array.from({ length: workers }, (_, rank) => {
      const indices = perm.subarray(it * b + rank * share, it * b + (rank + 1) * share);
      const images = data.batch(indices, cfg.model.inChannels);
      const batch = makeViews(images, cfg.model, cfg.views, new Rng(viewSeed(cfg.seed, it, rank)));
      images.dispose();
      return batch;
    });
    maxNorm = Math.max(maxNorm, referenceStep(state, shares, hyper, schedules, stepGrads));
    shares.forEach(disposeBatch);
  }
  const want: Record<string, Float32Array> = { prototypes: state.prototypes.dataSync() as Float32Array };
  for (const [k, v] of state.encoder.params) want[`encoder/${k}`] = v.dataSync() as Float32Array;
  for (const [k, v] of state.target.params) want[`target/${k}`] = v.dataSync() as Float32Array;
  for (const [k, { m, v }] of state.optimizer.momentVariables()) {
    want[`adam_m/${k}`] = m.dataSync() as Float32Array;
    want[`adam_v/${k}`] = v.dataSync() as Float32Array;
  }
  disposeTrainState(state);
  // Only the order of float32 sums differs (each worker's partial sums, then across workers), so a
  // gradient element differs by float32 noise, at most 2e-5 of the gradient norm (as in test/parity).
  // Weights move by lr times Adam's normalised step m^/sqrt(v^), which is homogeneous of degree 0 in
  // the element's gradients: a gradient error d moves it by at most ~3 d / |g| per step, and never
  // by more than the step itself (<= 4): so the weight bound is 4e-7 (2x the largest difference of
  // elements with gradients far above the noise) plus, per step, lr x min(4, 3 noise / |g|). An
  // element whose gradient is at the noise level (exactly zero in exact arithmetic: biases in front of
  // a train-mode BatchNorm, key biases, see test/parity; or merely that small) can take a full
  // Adam step either way. Moments: 1e-4 of the tensor's largest value; where the gradient is exactly
  // zero, the noise itself (m <= noise, v <= noise^2 after two steps).
  const noiseG = 2e-5 * maxNorm;
  const adamSlack = (param: string, i: number) =>
    stepGrads.reduce((a, grads, s) => a + schedules.lr(s + 1) * Math.min(4, (3 * noiseG) / Math.abs(grads.get(param)![i])), 0);
  let worst = 0;
  for (const [k, w] of Object.entries(want)) {
    const g = got[k];
    expect(g, k).toBeDefined();
    const name = k.slice(k.indexOf('/') + 1);
    const param = k === 'prototypes' ? PROTOTYPES : name;
    const dim = cfg.model.embedDim;
    const moments = k.startsWith('adam_');
    const scale = moments ? Math.max(...w.map(Math.abs)) * 1e-4 + 1e-12 : 4e-7;
    for (let i = 0; i < w.length; i++) {
      const noise = k !== 'prototypes' && exactZeroGradient(name, dim, i);
      let tol = scale;
      if (!moments) tol += adamSlack(param, i);
      else if (noise) tol = k.startsWith('adam_m/') ? noiseG : noiseG * noiseG;
      worst = Math.max(worst, Math.abs(g[i] - w[i]) / tol);
    }
  }
  expect(worst).toBeLessThan(1);
}
