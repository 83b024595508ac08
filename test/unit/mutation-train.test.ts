/**
 * Tests for the src/train gaps found by mutation testing (docs/TESTING.md,
 * "train: survivors"): option and shape checks of the loss, entWeight, the
 * schedules' argument checks and segment offsets, AdamW with a partial
 * gradient map and setState, createTrainState's seeds and AdamW options, and
 * trainStep on malformed anchor groups, a finite loss with a non-finite
 * encoder gradient, a failed read-back and clipping at a tiny gradient norm.
 *
 * Backend: cpu only. What is checked here is the SDK's own control flow
 * (validation, bookkeeping, which update is applied); the numerical kernels
 * are checked per backend by the parity suites. Seeds are fixed (tf random
 * ops take a seed, the model init uses src/util/rng).
 */
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { PRESETS, VitConfig } from '../../src/model/config.js';
import { initPrototypes, initWeights } from '../../src/model/params.js';
import { OFFICIAL_LOSS, MsnLossOptions, msnLossTerms, msnTargets } from '../../src/train/loss.js';
import { AdamW, TORCH_ADAMW } from '../../src/train/optimizer.js';
import { ScheduleConfig, makeSchedules, officialSchedule } from '../../src/train/schedules.js';
import { createTrainState, disposeTrainState } from '../../src/train/state.js';
import {
  MsnTrainState, PROTOTYPES, TrainBatch, TrainHyper, applyGradients, computeGradients, encoderGradNorm, trainStep, trainStepAsync,
} from '../../src/train/step.js';
import { throwsNamed } from './helpers.js';

const CFG: VitConfig = { ...PRESETS['micro-p4-28'], depth: 1, embedDim: 16, numHeads: 2, hiddenDim: 32, outputDim: 8, numPrototypes: 6 };
const HYPER: TrainHyper = { loss: { tau: 0.1, sinkhornIters: 3, memaxWeight: 1, entWeight: 0 }, clipGrad: 3 };
/** B: target images per step. */
const B = 3;


/** Every element bit for bit (Object.is: NaN equals NaN, 0 differs from -0). */
function expectIdentical(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string) {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  const bad = Array.from(actual).findIndex((v, i) => !Object.is(v, expected[i]));
  expect(bad, `${what}: first differing element ${bad}: ${actual[bad]} vs ${expected[bad]}`).toBe(-1);
}

/** Everything a step may change. */
function snapshot(s: MsnTrainState) {
  return {
    encoder: s.encoder.getWeights(),
    target: s.target.getWeights(),
    prototypes: s.prototypes.dataSync().slice(),
    optimizer: s.optimizer.getState(),
    optimizerStep: s.optimizer.stepCount,
    step: s.step,
    tracked: [s.encoder.numBatchesTracked, s.target.numBatchesTracked],
  };
}

function expectUnchanged(s: MsnTrainState, before: ReturnType<typeof snapshot>) {
  const now = snapshot(s);
  expect(now.step).toBe(before.step);
  expect(now.optimizerStep).toBe(before.optimizerStep);
  expect(now.optimizer.step).toBe(before.optimizer.step);
  expect(now.tracked).toEqual(before.tracked);
  for (const part of ['encoder', 'target'] as const) {
    for (const kind of ['params', 'buffers'] as const) {
      for (const [n, v] of Object.entries(before[part][kind])) expectIdentical(now[part][kind][n].data, v.data, `${part} ${n}`);
    }
  }
  expectIdentical(now.prototypes, before.prototypes, 'prototypes');
  for (const [n, mv] of Object.entries(before.optimizer.moments)) {
    expectIdentical(now.optimizer.moments[n].m, mv.m, `exp_avg ${n}`);
    expectIdentical(now.optimizer.moments[n].v, mv.v, `exp_avg_sq ${n}`);
  }
}

/** B target images and two anchor groups (masked full-size view, focal views): 3 views per image. */
function makeBatch(seed: number): TrainBatch {
  const target = tf.randomNormal([B, 28, 28, 3], 0, 1, 'float32', seed) as tf.Tensor4D;
  const focal = tf.randomNormal([2 * B, 12, 12, 3], 0, 1, 'float32', seed + 1) as tf.Tensor4D;
  return { target, anchors: [{ images: target, keepPatches: [0, 3, 7, 20, 33] }, { images: focal }] };
}

function disposeBatch(b: TrainBatch) {
  tf.dispose([b.target, ...b.anchors.map((g) => g.images)]);
}

beforeAll(async () => {
  await useBackend('cpu');
});

describe('loss options', () => {
  const z = () => tf.randomNormal([B, 8], 0, 1, 'float32', 11) as tf.Tensor2D;
  const protos = () => tf.randomNormal([6, 8], 0, 1, 'float32', 12) as tf.Tensor2D;

  it('sharpenT must be > 0 (0 would raise the targets to the power Infinity)', () => {
    tf.tidy(() => {
      for (const sharpenT of [0, -0.25, NaN]) {
        throwsNamed(() => msnTargets(z(), protos(), { ...OFFICIAL_LOSS, sharpenT }), 'MsnConfigError', /sharpenT must be > 0/);
      }
    });
  });

  it('sinkhornIters must be an integer >= 0, and 0 turns Sinkhorn off exactly', () => {
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      for (const sinkhornIters of [-1, 1.5, NaN]) {
        throwsNamed(() => msnTargets(z(), protos(), { ...OFFICIAL_LOSS, sinkhornIters }), 'MsnConfigError', /sinkhornIters must be an integer >= 0/);
      }
      // As the official code with use_sinkhorn off: the targets are the sharpened
      // probabilities themselves, bit for bit (no normalisation round trip).
      const off = msnTargets(z(), protos(), { ...OFFICIAL_LOSS, sinkhornIters: 0 });
      expectIdentical(off.targets.dataSync(), off.sharpened.dataSync(), 'targets with sinkhornIters 0');
      // ... and with Sinkhorn on they differ (so the comparison above is not vacuous).
      const on = msnTargets(z(), protos(), OFFICIAL_LOSS);
      const diff = tf.max(tf.abs(tf.sub(on.targets, off.targets))).dataSync()[0];
      expect(diff).toBeGreaterThan(1e-3);
    });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('memaxWeight and entWeight must be finite', () => {
    tf.tidy(() => {
      const t = msnTargets(z(), protos(), OFFICIAL_LOSS).targets;
      const a = tf.randomNormal([2 * B, 8], 0, 1, 'float32', 13) as tf.Tensor2D;
      for (const bad of [{ memaxWeight: NaN }, { memaxWeight: Infinity }, { entWeight: NaN }, { entWeight: -Infinity }]) {
        const opts: MsnLossOptions = { ...OFFICIAL_LOSS, ...bad };
        throwsNamed(() => msnLossTerms(a, protos(), t, opts), 'MsnConfigError', /memaxWeight and entWeight must be finite/);
        throwsNamed(() => msnTargets(z(), protos(), opts), 'MsnConfigError', /memaxWeight and entWeight/);
      }
    });
  });

  it('entWeight adds entWeight x the mean anchor entropy to the total', () => {
    // Tolerance rel 1e-6: the total is two float32 adds and two float32
    // multiplies of positive terms, each rounding by at most 2^-24 relative.
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const t = msnTargets(z(), protos(), OFFICIAL_LOSS).targets;
      const a = tf.randomNormal([2 * B, 8], 0, 1, 'float32', 14) as tf.Tensor2D;
      const read = (entWeight: number, memaxWeight: number) => {
        const r = msnLossTerms(a, protos(), t, { ...OFFICIAL_LOSS, entWeight, memaxWeight });
        return { total: r.total.dataSync()[0], ce: r.ce.dataSync()[0], memax: r.memax.dataSync()[0], entropy: r.entropy.dataSync()[0] };
      };
      const off = read(0, 1);
      const on = read(0.5, 1);
      const half = read(0.5, 0.5);
      expect(on.entropy).toBeGreaterThan(0.1); // the term is not negligible
      expect(Math.abs(off.total - (off.ce + off.memax))).toBeLessThanOrEqual(1e-6 * off.total);
      expect(Math.abs(on.total - (on.ce + on.memax + 0.5 * on.entropy))).toBeLessThanOrEqual(1e-6 * on.total);
      expect(Math.abs(half.total - (half.ce + 0.5 * half.memax + 0.5 * half.entropy))).toBeLessThanOrEqual(1e-6 * half.total);
      expect(on.total - off.total).toBeGreaterThan(0.05);
    });
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('loss shapes', () => {
  it('msnTargets: target outputs and prototypes must both be rank 2', () => {
    tf.tidy(() => {
      // The second dimension matches in both cases: only the rank check can refuse them.
      const z3 = tf.zeros([2, 8, 1]) as unknown as tf.Tensor2D;
      const p3 = tf.zeros([6, 8, 1]) as unknown as tf.Tensor2D;
      throwsNamed(() => msnTargets(z3, tf.ones([6, 8]) as tf.Tensor2D, OFFICIAL_LOSS), 'MsnShapeError', /target outputs \[B, d\].*\[2,8,1\]/);
      throwsNamed(() => msnTargets(tf.ones([2, 8]) as tf.Tensor2D, p3, OFFICIAL_LOSS), 'MsnShapeError', /prototypes \[K, d\].*\[6,8,1\]/);
    });
  });

  it('msnLossTerms: ranks, feature size d and prototype count K are checked', () => {
    tf.tidy(() => {
      const a = tf.ones([4, 8]) as tf.Tensor2D;
      const p = tf.ones([6, 8]) as tf.Tensor2D;
      const t = tf.fill([2, 6], 1 / 6) as tf.Tensor2D;
      // Each case passes every check but the one it is about.
      throwsNamed(() => msnLossTerms(tf.ones([4, 8, 1]) as unknown as tf.Tensor2D, p, t, OFFICIAL_LOSS), 'MsnShapeError', /got \[4,8,1\]/);
      throwsNamed(() => msnLossTerms(a, tf.ones([6, 8, 1]) as unknown as tf.Tensor2D, t, OFFICIAL_LOSS), 'MsnShapeError', /prototypes \[K, d\]/);
      throwsNamed(() => msnLossTerms(a, p, tf.fill([2, 6, 1], 1 / 6) as unknown as tf.Tensor2D, OFFICIAL_LOSS), 'MsnShapeError', /targets \[B, K\]/);
      throwsNamed(() => msnLossTerms(a, tf.ones([6, 9]) as tf.Tensor2D, t, OFFICIAL_LOSS), 'MsnShapeError', /\[6,9\]/);
      throwsNamed(() => msnLossTerms(a, tf.ones([7, 8]) as tf.Tensor2D, t, OFFICIAL_LOSS), 'MsnShapeError', /\[7,8\]/);
      // The valid shapes work (so the refusals above come from the shapes alone).
      expect(msnLossTerms(a, p, t, OFFICIAL_LOSS).probs.shape).toEqual([4, 6]);
    });
  });
});

describe('schedule arguments and segments', () => {
  const plan = (over: Partial<ScheduleConfig> = {}): ScheduleConfig => ({
    ...officialSchedule(100, 10), sharpen: { start: 0.25, end: 0.5 }, ...over,
  });

  it('totalSteps must be > 0 and warmupSteps >= 0; a plan without warmup is valid', () => {
    for (const totalSteps of [0, -5, NaN]) throwsNamed(() => makeSchedules(plan({ totalSteps })), 'MsnConfigError', /totalSteps must be > 0/);
    for (const warmupSteps of [-1, NaN]) throwsNamed(() => makeSchedules(plan({ warmupSteps })), 'MsnConfigError', /warmupSteps >= 0/);
    // No warmup: step 1 is already on the cosine, just below refLr.
    const s = makeSchedules(plan({ warmupSteps: 0 }));
    const c = plan();
    const expected = c.lr.final + (c.lr.ref - c.lr.final) * 0.5 * (1 + Math.cos(Math.PI / 125));
    expect(s.lr(1)).toBe(expected);
    expect(s.lr(0)).toBe(c.lr.ref);
  });

  it('scheduleStart must be an integer >= 0', () => {
    for (const scheduleStart of [-1, 1.5, NaN]) throwsNamed(() => makeSchedules(plan({ scheduleStart })), 'MsnConfigError', /scheduleStart must be an integer >= 0/);
    expect(makeSchedules(plan({ scheduleStart: 0 })).lr(1)).toBe(makeSchedules(plan()).lr(1));
  });

  it('a segment that starts at step 100 runs the fresh plan over its own steps and holds before its start', () => {
    const fresh = makeSchedules(plan());
    const seg = makeSchedules(plan({ scheduleStart: 100 }));
    // Exact: both compute the same float64 expressions of the same relative step.
    for (const s of [1, 5, 10, 11, 60, 100, 125, 126, 300]) {
      expect(seg.lr(100 + s), `lr(${100 + s})`).toBe(fresh.lr(s));
      expect(seg.weightDecay(100 + s), `weightDecay(${100 + s})`).toBe(fresh.weightDecay(s));
    }
    for (const j of [0, 3, 50, 125, 130]) {
      expect(seg.momentum(100 + j), `momentum(${100 + j})`).toBe(fresh.momentum(j));
      expect(seg.sharpen(100 + j), `sharpen(${100 + j})`).toBe(fresh.sharpen(j));
    }
    // The values really move over the segment (so the equalities are not vacuous).
    expect(seg.lr(160)).not.toBe(seg.lr(110));
    expect(seg.sharpen(160)).not.toBe(seg.sharpen(110));
    // Before its start a segment holds its first values.
    expect(seg.lr(40)).toBe(plan().lr.start);
    expect(seg.momentum(40)).toBe(plan().ema.start);
    expect(seg.sharpen(40)).toBe(plan().sharpen.start);
  });

  it('at the last warmup step lr comes from the cosine branch, as in the official WarmupCosineSchedule', () => {
    // The official scheduler warms up while step < warmup_steps, so step ==
    // warmup_steps is the cosine at progress 0: final + (ref - final) * 1,
    // exactly refLr here. The warmup line would give start + 1 * (ref - start)
    // = 0.0010000000000000009 for these values (one float64 ulp off); a
    // warmup from above refLr is what makes the two roundings differ.
    const s = makeSchedules(plan({ lr: { start: 0.1, ref: 0.001, final: 1e-6 } }));
    expect(s.lr(10)).toBe(0.001);
    expect(s.lr(9)).toBeCloseTo(0.1 + 0.9 * (0.001 - 0.1), 15);
  });
});

describe('AdamW', () => {
  function twoParams() {
    const a = tf.tidy(() => tf.variable(tf.tensor1d([1, -2, 3]), true));
    const b = tf.tidy(() => tf.variable(tf.tensor2d([[0.5, 0.25]]), true));
    const opt = new AdamW([{ name: 'a', variable: a, decay: true }, { name: 'b', variable: b, decay: false }]);
    return { a, b, opt, dispose: () => { opt.dispose(); tf.dispose([a, b]); } };
  }

  it('a gradient map without one parameter leaves that parameter and its moments alone', () => {
    const before = tf.memory().numTensors;
    const { a, b, opt, dispose } = twoParams();
    const g = tf.tensor1d([0.1, 0.2, -0.3]);
    opt.step(new Map<string, tf.Tensor>([['a', g]]), 0.1, 0.05);
    expect(opt.stepCount).toBe(1);
    expect(Array.from(b.dataSync())).toEqual([0.5, 0.25]);
    const st = opt.getState();
    expect(Array.from(st.moments.b.m)).toEqual([0, 0]);
    expect(Array.from(st.moments.b.v)).toEqual([0, 0]);
    // a got the torch AdamW step: decay, then lr * sign-like first update
    // (m_hat / sqrt(v_hat) = g / |g| at t = 1). Rel 1e-6: float32 rounding.
    const expected = [1, -2, 3].map((p, i) => p * (1 - 0.1 * 0.05) - 0.1 * Math.sign([0.1, 0.2, -0.3][i]));
    a.dataSync().forEach((v, i) => expect(Math.abs(v - expected[i])).toBeLessThanOrEqual(1e-6 * Math.abs(expected[i])));
    g.dispose();
    dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('momentVariables: the optimizer-owned m and v of every parameter, as getState reads them', () => {
    const { opt, dispose } = twoParams();
    tf.tidy(() => opt.step(new Map<string, tf.Tensor>([['a', tf.tensor1d([0.1, 0.2, -0.3])], ['b', tf.tensor2d([[1, -1]])]]), 0.1, 0));
    const mv = opt.momentVariables();
    expect([...mv.keys()]).toEqual(['a', 'b']);
    const st = opt.getState();
    for (const n of ['a', 'b']) {
      expectIdentical(mv.get(n)!.m.dataSync(), st.moments[n].m, `${n} m`);
      expectIdentical(mv.get(n)!.v.dataSync(), st.moments[n].v, `${n} v`);
    }
    expect(Array.from(st.moments.b.m)).toEqual([Math.fround(0.1), Math.fround(-0.1)]); // (1 - b1) g, not empty
    expect(opt.momentVariables().get('a')!.m).toBe(mv.get('a')!.m); // the same variables, not copies
    dispose();
  });

  it('setState refuses a state that does not fit, names the parameter, and changes nothing', () => {
    const before = tf.memory().numTensors;
    const { opt, dispose } = twoParams();
    tf.tidy(() => opt.step(new Map<string, tf.Tensor>([['a', tf.tensor1d([0.1, 0.2, -0.3])], ['b', tf.tensor2d([[1, -1]])]]), 0.1, 0));
    const good = opt.getState();
    const zeros = { a: { m: new Float32Array(3), v: new Float32Array(3) }, b: { m: new Float32Array(2), v: new Float32Array(2) } };
    // 'a' fits and comes first: a state that fails on 'b' must not have written 'a'.
    throwsNamed(() => opt.setState({ step: 7, moments: { a: zeros.a } }), 'MsnShapeError', /moment 'm' of 'b' must hold 2 values, got none/);
    throwsNamed(() => opt.setState({ step: 7, moments: { ...zeros, b: { m: new Float32Array(3), v: new Float32Array(2) } } }), 'MsnShapeError', /'m' of 'b' must hold 2 values, got 3/);
    throwsNamed(
      () => opt.setState({ step: 7, moments: { ...zeros, b: { m: new Float32Array(2) } as never } }),
      'MsnShapeError', /'v' of 'b' must hold 2 values, got none.*different model/,
    );
    for (const step of [-1, 1.5, NaN]) throwsNamed(() => opt.setState({ step, moments: zeros }), 'MsnShapeError', /step must be an integer >= 0/);
    const now = opt.getState();
    expect(now.step).toBe(1);
    expect(opt.stepCount).toBe(1);
    for (const n of ['a', 'b']) {
      expectIdentical(now.moments[n].m, good.moments[n].m, `${n} m`);
      expectIdentical(now.moments[n].v, good.moments[n].v, `${n} v`);
    }
    // A fitting state is taken whole; step 0 (a state saved before the first update) is valid.
    opt.setState({ step: 7, moments: zeros });
    expect(opt.stepCount).toBe(7);
    expect(Array.from(opt.getState().moments.a.m)).toEqual([0, 0, 0]);
    opt.setState(good);
    expectIdentical(opt.getState().moments.b.v, good.moments.b.v, 'b v after restoring');
    opt.setState({ step: 0, moments: zeros });
    expect(opt.stepCount).toBe(0);
    dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('createTrainState', () => {
  it('uses the seed for the weights and seed + 1 for the prototypes (default seed 0)', () => {
    const before = tf.memory().numTensors;
    for (const [init, seed] of [[{ seed: 3 }, 3], [{}, 0]] as const) {
      const s = createTrainState(CFG, init);
      const w = initWeights(CFG, seed);
      const got = s.encoder.getWeights();
      for (const [n, v] of Object.entries(w.params)) expectIdentical(got.params[n].data, v.data, `seed ${seed}: ${n}`);
      for (const [n, v] of Object.entries(s.target.getWeights().params)) expectIdentical(v.data, w.params[n].data, `seed ${seed}: target ${n}`);
      expectIdentical(s.prototypes.dataSync(), initPrototypes(CFG, seed + 1), `seed ${seed}: prototypes`);
      disposeTrainState(s);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('passes custom AdamW options to the optimizer (torch defaults otherwise)', () => {
    const custom = { beta1: 0.5, beta2: 0.9, eps: 1e-6 };
    const s = createTrainState(CFG, { seed: 1, adam: custom });
    expect(s.optimizer.opts).toEqual(custom);
    disposeTrainState(s);
    const d = createTrainState(CFG, { seed: 1 });
    expect(d.optimizer.opts).toEqual(TORCH_ADAMW);
    disposeTrainState(d);
  });
});

describe('trainStep', () => {
  const sched = makeSchedules(officialSchedule(100, 5));

  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('refuses an anchor group that does not hold whole views of the B images, and changes nothing', () => {
    const before = tf.memory().numTensors;
    const s = createTrainState(CFG, { seed: 2 });
    const snap = snapshot(s);
    const x = tf.randomNormal([B, 28, 28, 3], 0, 1, 'float32', 21) as tf.Tensor4D;
    // 4 + 2 rows = 2 B in all, so the loss's own rows % B check would pass and
    // pair views with the wrong images; only the per-group check can refuse it.
    const g4 = tf.randomNormal([B + 1, 28, 28, 3], 0, 1, 'float32', 22) as tf.Tensor4D;
    const g2 = tf.randomNormal([B - 1, 12, 12, 3], 0, 1, 'float32', 23) as tf.Tensor4D;
    throwsNamed(() => trainStep(s, { target: x, anchors: [{ images: g4 }, { images: g2 }] }, HYPER, sched), 'MsnShapeError', /anchor group must hold whole views of the 3 target images.*got 4 rows/);
    expectUnchanged(s, snap);
    tf.dispose([x, g4, g2]);
    disposeTrainState(s);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('an error after the target forward restores the BatchNorm buffers and counters', () => {
    const before = tf.memory().numTensors;
    const s = createTrainState(CFG, { seed: 2 });
    const snap = snapshot(s);
    const b = makeBatch(30);
    // sinkhornIters 1.5 is refused by msnTargets, after the target encoder ran in train mode.
    const bad: TrainHyper = { ...HYPER, loss: { ...HYPER.loss, sinkhornIters: 1.5 } };
    throwsNamed(() => trainStep(s, b, bad, sched), 'MsnConfigError', /sinkhornIters/);
    expectUnchanged(s, snap);
    // The same step with valid options runs and moves the buffers (so the check above is not vacuous).
    expect(trainStep(s, b, HYPER, sched).skipped).toBe(false);
    expect(s.target.numBatchesTracked).toBe(snap.tracked[1] + 1);
    disposeBatch(b);
    disposeTrainState(s);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a finite loss with a non-finite encoder gradient is skipped and changes nothing', () => {
    const before = tf.memory().numTensors;
    const s = createTrainState(CFG, { seed: 2 });
    // One output of the online encoder's last layer near float32's max: its
    // square overflows, so l2Normalize divides by Infinity and gives 0 (uniform
    // anchor predictions: finite loss), while the backward of the square (2 z)
    // overflows into the encoder's gradients. The prototypes' gradient stays
    // finite (it is multiplied by the normalised outputs, all 0), so only the
    // gradient-norm condition can skip this step. The target encoder is untouched.
    const bias = s.encoder.params.get('fc.fc3.bias')!;
    tf.tidy(() => bias.assign(tf.concat([tf.tensor1d([3e38]), tf.slice(bias, 1)])));
    const b = makeBatch(40);
    const probe = computeGradients(s, b, HYPER, 0.25);
    expect(Number.isFinite(probe.terms.total), 'the loss is finite').toBe(true);
    expect(Number.isFinite(probe.gradNorm), 'the encoder gradient norm is not finite').toBe(false);
    expect(probe.protoFinite, 'the prototype gradient is finite').toBe(true);
    tf.dispose([...probe.grads.values()]);
    // computeGradients ran the forward passes in train mode: restore the counters and take the snapshot now.
    s.encoder.numBatchesTracked = 0;
    s.target.numBatchesTracked = 0;
    const snap = snapshot(s);
    const m = trainStep(s, b, HYPER, sched);
    expect(m.skipped).toBe(true);
    expect(Number.isFinite(m.loss)).toBe(true);
    expect(Number.isFinite(m.gradNorm)).toBe(false);
    expectUnchanged(s, snap);
    disposeBatch(b);
    disposeTrainState(s);
    expect(tf.memory().numTensors).toBe(before);
  });

  for (const mode of ['sync', 'async'] as const) {
    it(`a failed read-back (${mode}) abandons the step: error rethrown, state and buffers as before, nothing leaked`, async () => {
      const before = tf.memory().numTensors;
      const s = createTrainState(CFG, { seed: 2 });
      const snap = snapshot(s);
      const b = makeBatch(50);
      const held = tf.memory().numTensors; // state and batch
      // The step's one read-back is a rank-1 vector of 6 + (2 + B) numbers (step.ts READ, then the diagnostics);
      // make exactly that read fail, as a lost WebGPU device does.
      const lost = new Error('device lost (injected)');
      let fired = 0;
      const isReadout = (t: tf.Tensor) => t.rank === 1 && t.size === 8 + B;
      const origSync = tf.Tensor.prototype.dataSync;
      const origData = tf.Tensor.prototype.data;
      if (mode === 'sync') {
        vi.spyOn(tf.Tensor.prototype, 'dataSync').mockImplementation(function (this: tf.Tensor) {
          if (isReadout(this) && fired++ === 0) throw lost;
          return origSync.call(this) as never;
        });
      } else {
        vi.spyOn(tf.Tensor.prototype, 'data').mockImplementation(function (this: tf.Tensor) {
          if (isReadout(this) && fired++ === 0) return Promise.reject(lost);
          return origData.call(this) as never;
        });
      }
      const step = mode === 'sync' ? async () => trainStep(s, b, HYPER, sched) : () => trainStepAsync(s, b, HYPER, sched);
      await expect(step()).rejects.toBe(lost);
      expect(fired).toBe(1);
      expectUnchanged(s, snap);
      expect(tf.memory().numTensors).toBe(held);
      vi.restoreAllMocks();
      // The next step runs normally.
      expect((await step()).skipped).toBe(false);
      expect(s.step).toBe(1);
      disposeBatch(b);
      disposeTrainState(s);
      expect(tf.memory().numTensors).toBe(before);
    });
  }
});

describe('gradient norm and clipping', () => {
  it('encoderGradNorm is the norm computeGradients reports: encoder gradients only', () => {
    const before = tf.memory().numTensors;
    const s = createTrainState(CFG, { seed: 6 });
    const b = makeBatch(60);
    const r = computeGradients(s, b, HYPER, 0.25);
    // Same float32 reduction on both sides: identical.
    expect(encoderGradNorm(r.grads)).toBe(r.gradNorm);
    // Against a float64 sum of the encoder gradients' squares. Rel 1e-4: the
    // float32 sum of n positive terms is within n * 2^-24 relative; the largest
    // tensor here has 16 * 48 = 768 elements (4.6e-5), and the tensors' sums are added in float32.
    let sq = 0;
    for (const [n, g] of r.grads) if (n !== PROTOTYPES) for (const v of g.dataSync()) sq += v * v;
    expect(Math.abs(r.gradNorm - Math.sqrt(sq))).toBeLessThanOrEqual(1e-4 * Math.sqrt(sq));
    let pq = 0;
    for (const v of r.grads.get(PROTOTYPES)!.dataSync()) pq += v * v;
    expect(pq).toBeGreaterThan(0); // the prototypes have a gradient, and it is left out
    tf.dispose([...r.grads.values()]);
    disposeBatch(b);
    disposeTrainState(s);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('clipping at a gradient norm near 0 scales by clip / (norm + 1e-6), prototypes unclipped', () => {
    const before = tf.memory().numTensors;
    const s = createTrainState(CFG, { seed: 7 });
    const grads = new Map<string, tf.Tensor>();
    for (const [n, v] of s.encoder.params) grads.set(n, tf.zerosLike(v));
    // One encoder gradient element of 5e-7: the norm is 5e-7, of the order of torch's 1e-6.
    grads.get('cls_token')!.dispose();
    grads.set('cls_token', tf.tidy(() => tf.reshape(tf.concat([tf.tensor1d([5e-7]), tf.zeros([CFG.embedDim - 1])]), s.encoder.params.get('cls_token')!.shape)));
    grads.set(PROTOTYPES, tf.fill(s.prototypes.shape, 0.25));
    const norm = encoderGradNorm(grads);
    expect(norm).toBeCloseTo(5e-7, 12);
    const clip = 1e-7;
    applyGradients(s, grads, norm, { ...HYPER, clipGrad: clip }, { lr: 1e-3, weightDecay: 0, momentum: 0.5 });
    // After one step exp_avg = (1 - beta1) g_clipped. Rel 1e-6: float32 rounding of two multiplies.
    const coef = clip / (norm + 1e-6); // 0.0667; clip / (norm - 1e-6) would be -0.2
    const st = s.optimizer.getState();
    const m0 = st.moments.cls_token.m[0];
    const want = (1 - TORCH_ADAMW.beta1) * coef * 5e-7;
    expect(Math.abs(m0 - want)).toBeLessThanOrEqual(1e-6 * want);
    for (const v of st.moments[PROTOTYPES].m) expect(Math.abs(v - 0.025)).toBeLessThanOrEqual(1e-6 * 0.025);
    disposeTrainState(s);
    expect(tf.memory().numTensors).toBe(before);
  });
});
