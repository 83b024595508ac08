/**
 * One MSN training iteration in the official order (msn_train.train_step):
 *   1. anchor forward: first group = the masked random view(s), then the
 *      focal group; encoder in train mode (BatchNorm stats per group)
 *   2. target forward on view 0 with the target encoder (train mode, no
 *      gradient, never masked) -> sharpened, Sinkhorn-balanced targets
 *   3. loss = CE + memaxWeight * ME-MAX (+ entWeight * entropy)
 *   4. lr, wd from the schedules; backward
 *   5. clip the encoder's gradients to a global norm (prototypes unclipped)
 *   6. AdamW (decayed group, no-decay group, prototypes without decay)
 *   7. EMA of every encoder parameter into the target (not BN buffers, not
 *      the prototypes) with the scheduled momentum
 * Targets are computed before the tape starts (TF.js has no stop-gradient);
 * the result is the same because the target branch has no trainable input.
 */
import * as tf from '@tensorflow/tfjs-core';
import { MsnShapeError } from '../errors.js';
import { ViewGroup, VisionTransformer } from '../model/vit.js';
import { MsnLossOptions, TargetDiagnostics, decodeDiagnostics, diagnosticsTensor, msnLossTerms, msnTargets } from './loss.js';
import { AllReduce, averageTensors } from './all-reduce.js';
import { AdamW, AdamWOptions, TORCH_ADAMW, isDecayed } from './optimizer.js';
import { Schedules } from './schedules.js';
import { EMA, fusedKernelsActive } from '../kernels/wasm/kernels.js';

export const PROTOTYPES = 'prototypes';

export interface MsnTrainState {
  encoder: VisionTransformer;
  target: VisionTransformer;
  /** [K, d], unnormalised. */
  prototypes: tf.Variable;
  optimizer: AdamW;
  /** Completed iterations. */
  step: number;
}

export interface TrainHyper {
  loss: Omit<MsnLossOptions, 'sharpenT'>;
  /** Max global L2 norm of the encoder gradients (official 3.0); 0 disables. */
  clipGrad: number;
}

/** The views of one iteration, all NHWC. */
export interface TrainBatch {
  /** View 0 for the target encoder [B, H, W, C]. */
  target: tf.Tensor4D;
  /** Anchor groups in view-major order; only the first normally has keepPatches. */
  anchors: ViewGroup[];
}

export interface StepMetrics {
  step: number;
  loss: number;
  ce: number;
  memax: number;
  entropy: number;
  lr: number;
  weightDecay: number;
  momentum: number;
  sharpenT: number;
  /** Global gradient norm of the encoder before clipping. */
  gradNorm: number;
  numProtosUsed: number;
  maxTarget: number;
  minTarget: number;
  /** True when the update was skipped because the loss or a gradient was not finite. */
  skipped: boolean;
}

/** Builds the optimizer with the official parameter groups over encoder + prototypes. */
export function createOptimizer(encoder: VisionTransformer, prototypes: tf.Variable, opts: AdamWOptions = TORCH_ADAMW): AdamW {
  const vars = [...encoder.params].map(([name, variable]) => ({ name, variable, decay: isDecayed(name, variable.shape) }));
  vars.push({ name: PROTOTYPES, variable: prototypes, decay: false });
  return new AdamW(vars, opts);
}

/**
 * Layout of the one vector a step reads back (one read per step instead of
 * one per number: on WebGPU each read is a GPU round trip):
 * [total, ce, memax, entropy, encoder grad norm^2, prototype grads finite (1/0), ...diagnosticsTensor].
 */
const READ = { total: 0, ce: 1, memax: 2, entropy: 3, gradNormSq: 4, protoFinite: 5, diag: 6 } as const;

interface StepTensors {
  grads: Map<string, tf.Tensor>;
  /** See READ above. */
  readout: tf.Tensor1D;
}

interface StepReadout {
  terms: { total: number; ce: number; memax: number; entropy: number };
  diag: TargetDiagnostics;
  gradNorm: number;
  protoFinite: boolean;
}

/**
 * Steps 1-3 and backward, with everything the step reports packed into
 * `readout`. With a replica group (data parallelism, see all-reduce.ts) the
 * loss terms and gradients are averaged over the replicas before anything
 * is read, so every replica takes the same decisions (skip, clip).
 */
function gradientTensors(state: MsnTrainState, batch: TrainBatch, hyper: TrainHyper, sharpenT: number, group?: AllReduce): StepTensors {
  const b = batch.target.shape[0];
  for (const g of batch.anchors) {
    if (g.images.shape[0] % b !== 0) {
      throw new MsnShapeError(
        `Each anchor group must hold whole views of the ${b} target images (a multiple of ${b} rows, view-major); got ${g.images.shape[0]} rows.`,
      );
    }
  }
  const lossOpts: MsnLossOptions = { ...hyper.loss, sharpenT };
  const protos = state.prototypes as unknown as tf.Tensor2D;
  // Step 2 (before the tape): targets from the target encoder.
  const targets = tf.tidy(() => {
    const z = state.target.forward([{ images: batch.target }], { bnMode: 'train' });
    const t = msnTargets(z, protos, lossOpts, group);
    return t.targets;
  });
  const names = [...state.encoder.params.keys(), PROTOTYPES];
  const vars = [...state.encoder.params.values(), state.prototypes];
  let scalars: tf.Scalar[] = [];
  let { value, grads } = tf.variableGrads(() => {
    const z = state.encoder.forward(batch.anchors, { bnMode: 'train' }); // [M*B, d] view-major
    const t = msnLossTerms(z, protos, targets, lossOpts, group);
    scalars.push(tf.keep(t.ce), tf.keep(t.memax), tf.keep(t.entropy));
    return t.total;
  }, vars);
  if (group) {
    const local = [value, ...scalars, ...vars.map((v) => grads[v.name])];
    const mean = averageTensors(local, group);
    [value, ...scalars] = mean.slice(0, 4) as tf.Scalar[];
    grads = {};
    vars.forEach((v, i) => (grads[v.name] = mean[4 + i]));
  }
  const byName = new Map<string, tf.Tensor>();
  names.forEach((n, i) => byName.set(n, grads[vars[i].name]));
  const readout = tf.tidy(() => {
    const one = (t: tf.Tensor) => tf.reshape(tf.cast(t, 'float32'), [1]);
    const protoFinite = tf.all(tf.isFinite(byName.get(PROTOTYPES)!));
    return tf.concat([
      one(value), ...scalars.map(one), one(encoderGradNormSq(byName)), one(protoFinite), diagnosticsTensor(targets),
    ]) as tf.Tensor1D;
  });
  tf.dispose([targets, value, ...scalars]);
  return { grads: byName, readout };
}

function decodeReadout(v: ArrayLike<number>): StepReadout {
  return {
    terms: { total: v[READ.total], ce: v[READ.ce], memax: v[READ.memax], entropy: v[READ.entropy] },
    diag: decodeDiagnostics(Array.prototype.slice.call(v, READ.diag) as number[]),
    gradNorm: Math.sqrt(v[READ.gradNormSq]),
    protoFinite: v[READ.protoFinite] === 1,
  };
}

/** Gradients keyed by parameter name, with the readout (protoFinite says whether the prototypes' gradient is finite). */
type GradientsResult = { grads: Map<string, tf.Tensor> } & StepReadout;

/**
 * Steps 1-3 and backward: gradients before clipping, keyed by parameter name,
 * with the loss terms, target diagnostics and the encoder's gradient norm
 * (one synchronous read; computeGradientsAsync on WebGPU).
 */
export function computeGradients(state: MsnTrainState, batch: TrainBatch, hyper: TrainHyper, sharpenT: number): GradientsResult {
  const { grads, readout } = gradientTensors(state, batch, hyper, sharpenT);
  try {
    return { grads, ...decodeReadout(readout.dataSync()) };
  } finally {
    readout.dispose();
  }
}

/** computeGradients with one asynchronous read (every backend). */
export async function computeGradientsAsync(state: MsnTrainState, batch: TrainBatch, hyper: TrainHyper, sharpenT: number): Promise<GradientsResult> {
  const { grads, readout } = gradientTensors(state, batch, hyper, sharpenT);
  try {
    return { grads, ...decodeReadout(await readout.data()) };
  } finally {
    readout.dispose();
  }
}

/** Squared global L2 norm of the encoder gradients (prototypes excluded), as a scalar tensor. */
function encoderGradNormSq(grads: Map<string, tf.Tensor>): tf.Scalar {
  // Pairwise adds, not tf.addN: tfjs-webgpu binds every addN input as a storage
  // buffer, and adapters may allow only 8 per shader (SwiftShader does).
  return tf.tidy(() => [...grads].filter(([n]) => n !== PROTOTYPES).map(([, g]) => tf.sum(tf.square(g))).reduce((a, b) => tf.add(a, b)) as tf.Scalar);
}

/** Global L2 norm of the encoder gradients (prototypes excluded); one synchronous read. */
export function encoderGradNorm(grads: Map<string, tf.Tensor>): number {
  return tf.tidy(() => Math.sqrt(encoderGradNormSq(grads).dataSync()[0]));
}

/**
 * Steps 5-7 on gradients from computeGradients (which this disposes).
 * torch's clip_grad_norm_: coef = max / (norm + 1e-6), clamped to 1.
 */
export function applyGradients(
  state: MsnTrainState,
  grads: Map<string, tf.Tensor>,
  gradNorm: number,
  hyper: TrainHyper,
  sched: { lr: number; weightDecay: number; momentum: number },
): void {
  const coef = hyper.clipGrad > 0 ? Math.min(1, hyper.clipGrad / (gradNorm + 1e-6)) : 1;
  // The prototypes are not clipped (the official code clips the encoder only).
  state.optimizer.step(grads, sched.lr, sched.weightDecay, (n) => (n !== PROTOTYPES ? coef : 1));
  tf.dispose([...grads.values()]);
  emaUpdate(state.target, state.encoder, sched.momentum);
}

/** target <- m target + (1 - m) online, for every parameter (buffers untouched). */
export function emaUpdate(target: VisionTransformer, online: VisionTransformer, m: number): void {
  const fused = fusedKernelsActive();
  tf.tidy(() => {
    for (const [name, tv] of target.params) {
      const ov = online.params.get(name)!;
      // One kernel on wasm for the same bits (src/kernels/wasm/kernels.c ema).
      if (fused && tv.dtype === 'float32') tv.assign(tf.engine().runKernel(EMA, { t: tv, o: ov }, { momentum: m }) as tf.Tensor);
      else tv.assign(tf.add(tf.mul(tv, m), tf.mul(ov, 1 - m)));
    }
  });
}

/**
 * One full iteration. Non-finite loss or gradients skip the update (reported
 * in `skipped`) and leave weights and optimizer state untouched; the BatchNorm
 * running stats of that forward pass are restored too. Reads its numbers back
 * with one dataSync(); use trainStepAsync on WebGPU.
 */
export function trainStep(state: MsnTrainState, batch: TrainBatch, hyper: TrainHyper, schedules: Schedules, group?: AllReduce): StepMetrics {
  const pending = beginStep(state, batch, hyper, schedules, group);
  let values: Float32Array;
  try {
    values = pending.readout.dataSync() as Float32Array;
  } catch (e) {
    abandonStep(state, pending);
    throw e;
  }
  return finishStep(state, pending, hyper, values);
}

/** trainStep with one asynchronous read (every backend; no stall on WebGPU). Same results. */
export async function trainStepAsync(state: MsnTrainState, batch: TrainBatch, hyper: TrainHyper, schedules: Schedules, group?: AllReduce): Promise<StepMetrics> {
  const pending = beginStep(state, batch, hyper, schedules, group);
  let values: Float32Array;
  try {
    values = (await pending.readout.data()) as Float32Array;
  } catch (e) {
    abandonStep(state, pending);
    throw e;
  }
  return finishStep(state, pending, hyper, values);
}

interface PendingStep extends StepTensors {
  /** BatchNorm buffers before this step's forward passes (restored when the step is skipped). */
  saved: tf.Tensor[];
  /** numBatchesTracked of encoder and target before the step (restored with the buffers). */
  tracked: [number, number];
  sched: { lr: number; weightDecay: number; momentum: number; sharpenT: number };
}

function beginStep(state: MsnTrainState, batch: TrainBatch, hyper: TrainHyper, schedules: Schedules, group?: AllReduce): PendingStep {
  const s = state.step + 1; // schedulers are stepped before the first update
  const sched = { lr: schedules.lr(s), weightDecay: schedules.weightDecay(s), momentum: schedules.momentum(state.step), sharpenT: schedules.sharpen(state.step) };
  const saved = snapshotBuffers(state);
  const tracked: [number, number] = [state.encoder.numBatchesTracked, state.target.numBatchesTracked];
  try {
    return { ...gradientTensors(state, batch, hyper, sched.sharpenT, group), saved, tracked, sched };
  } catch (e) {
    restoreBuffers(state, saved);
    [state.encoder.numBatchesTracked, state.target.numBatchesTracked] = tracked;
    tf.dispose(saved);
    throw e;
  }
}

function finishStep(state: MsnTrainState, p: PendingStep, hyper: TrainHyper, values: Float32Array): StepMetrics {
  const { terms, diag, gradNorm, protoFinite } = decodeReadout(values);
  const skipped = !Number.isFinite(terms.total) || !Number.isFinite(gradNorm) || !protoFinite;
  if (skipped) {
    abandonStep(state, p);
  } else {
    p.readout.dispose();
    applyGradients(state, p.grads, gradNorm, hyper, p.sched);
    state.step++;
    tf.dispose(p.saved);
  }
  const { lr, weightDecay, momentum, sharpenT } = p.sched;
  return {
    step: state.step, loss: terms.total, ce: terms.ce, memax: terms.memax, entropy: terms.entropy,
    lr, weightDecay, momentum, sharpenT, gradNorm, ...diag, skipped,
  };
}

/** Drops a begun step: gradients freed, BatchNorm buffers restored. */
function abandonStep(state: MsnTrainState, p: PendingStep): void {
  tf.dispose([...p.grads.values(), p.readout]);
  restoreBuffers(state, p.saved);
  [state.encoder.numBatchesTracked, state.target.numBatchesTracked] = p.tracked;
  tf.dispose(p.saved);
}

function snapshotBuffers(state: MsnTrainState): tf.Tensor[] {
  return [...state.encoder.buffers.values(), ...state.target.buffers.values()].map((v) => v.clone());
}

function restoreBuffers(state: MsnTrainState, saved: tf.Tensor[]): void {
  [...state.encoder.buffers.values(), ...state.target.buffers.values()].forEach((v, i) => v.assign(saved[i]));
}
