import { describe, expect, it } from 'vitest';
import {
  MSN_PREPROCESS,
  fitLinearHead,
  logisticObjective,
  preprocessFeatures,
} from '../../src/heads/index.js';
import { TEN_CLASSES, accuracy, errorName, gaussian, makeClusters, prng } from './helpers.js';

/** Independent, naive objective and gradient (one loop per formula term). */
function naiveObjective(W: ArrayLike<number>, X: Float64Array, y: number[], C: number, lambda: number) {
  const d = W.length / C;
  const n = y.length;
  const grad = new Float64Array(W.length);
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const z: number[] = [];
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += W[c * d + j] * X[i * d + j];
      z.push(s);
    }
    const m = Math.max(...z);
    const lse = m + Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0));
    loss += (lse - z[y[i]]) / n;
    for (let c = 0; c < C; c++) {
      const g = Math.exp(z[c] - lse) - (c === y[i] ? 1 : 0);
      for (let j = 0; j < d; j++) grad[c * d + j] += (g * X[i * d + j]) / n;
    }
  }
  let sq = 0;
  for (let k = 0; k < W.length; k++) {
    sq += W[k] * W[k];
    grad[k] += lambda * W[k];
  }
  return { loss: loss + 0.5 * lambda * sq, grad };
}

const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((a, x) => a + x * x, 0));

describe('linear head', () => {
  const data = makeClusters({ seed: 7, classes: TEN_CLASSES, dim: 384, trainCount: 100, testCount: 1000, noise: 2.5 });

  it('fits 100 x 384 x 10 Gaussian clusters to high accuracy, at a stationary point', () => {
    const head = fitLinearHead(data.train, data.trainLabels, { encoderFingerprint: 'enc-a' });
    const fit = head.fit!;
    expect(fit.converged).toBe(true);
    expect(fit.relativeGradNorm).toBeLessThan(1e-6);
    expect(fit.iterations).toBeGreaterThan(0);
    expect(fit.lambda).toBeCloseTo(0.0025 / 100, 12);
    expect(head.classes).toEqual(TEN_CLASSES);
    expect(accuracy(head.predict(data.train).labels, data.trainLabels)).toBe(1);
    expect(accuracy(head.predict(data.test).labels, data.testLabels)).toBeGreaterThan(0.95);

    // Optimality checked independently of the solver's own bookkeeping: the
    // naive gradient at the returned (float32) weights is ~0 relative to the
    // gradient at W = 0.
    const X = preprocessFeatures(data.train, MSN_PREPROCESS);
    const y = data.trainLabels.map((l) => TEN_CLASSES.indexOf(l));
    const atSolution = naiveObjective(head.weights, X, y, 10, fit.lambda);
    const atZero = naiveObjective(new Float64Array(head.weights.length), X, y, 10, fit.lambda);
    expect(norm(atSolution.grad) / norm(atZero.grad)).toBeLessThan(1e-5);
    expect(atSolution.loss).toBeCloseTo(fit.loss, 6);
  });

  it('is deterministic', () => {
    const a = fitLinearHead(data.train, data.trainLabels, { encoderFingerprint: 'x' });
    const b = fitLinearHead(data.train, data.trainLabels, { encoderFingerprint: 'x' });
    expect(b.weights).toEqual(a.weights);
    expect(b.fit).toEqual(a.fit);
  });

  it('logisticObjective matches the naive formula and central finite differences', () => {
    const normal = gaussian(prng(3));
    const n = 7;
    const d = 5;
    const C = 3;
    const X = Float64Array.from({ length: n * d }, normal);
    const y = Int32Array.from({ length: n }, (_, i) => i % C);
    const W = Float64Array.from({ length: C * d }, normal);
    const lambda = 0.3;
    const grad = new Float64Array(C * d);
    const f = logisticObjective(W, X, y, C, lambda, grad);
    const naive = naiveObjective(W, X, Array.from(y), C, lambda);
    expect(f).toBeCloseTo(naive.loss, 12);
    const h = 1e-6;
    for (let k = 0; k < W.length; k++) {
      const Wp = W.slice();
      const Wm = W.slice();
      Wp[k] += h;
      Wm[k] -= h;
      const scratch = new Float64Array(C * d);
      const fd = (logisticObjective(Wp, X, y, C, lambda, scratch) - logisticObjective(Wm, X, y, C, lambda, scratch)) / (2 * h);
      expect(grad[k]).toBeCloseTo(fd, 7);
      expect(grad[k]).toBeCloseTo(naive.grad[k], 12);
    }
  });

  it('finds the brute-force optimum of a tiny 2-class problem', () => {
    // 2-D, not separable, no preprocessing, so the optimum is a genuine
    // trade-off between the loss and a fairly strong L2 term.
    const points = [
      [1, 0.2], [0.8, -0.4], [0.3, 0.9], [-0.2, 0.1],
      [-1, -0.3], [-0.6, 0.5], [0.4, -0.8], [-0.3, -1.1],
    ];
    const labels = ['pos', 'pos', 'pos', 'pos', 'neg', 'neg', 'neg', 'pos'];
    const features = points.map((p) => Float32Array.from(p));
    const l2 = 0.8; // lambda = 0.1
    const head = fitLinearHead(features, labels, {
      encoderFingerprint: 'tiny',
      l2,
      preprocess: { centering: false, normalize: false },
    });
    expect(head.fit!.converged).toBe(true);
    const X = Float64Array.from(points.flat());
    const y = labels.map((l) => (l === 'pos' ? 0 : 1));
    const lambda = l2 / points.length;
    const F = (W: ArrayLike<number>) => naiveObjective(W, X, y, 2, lambda).loss;
    const W = Float64Array.from(head.weights);
    const best = F(W);

    // Brute force over a grid of all four weights, then a finer grid around
    // the best grid point: nothing beats the solver's answer.
    let gridBest = Infinity;
    let gridArg: number[] = [];
    const steps = [-1.5, -1, -0.5, 0, 0.5, 1, 1.5];
    for (const a of steps) for (const b of steps) for (const c of steps) for (const e of steps) {
      const v = F([a, b, c, e]);
      if (v < gridBest) [gridBest, gridArg] = [v, [a, b, c, e]];
    }
    const fine = [-0.5, -0.375, -0.25, -0.125, 0, 0.125, 0.25, 0.375, 0.5];
    for (const a of fine) for (const b of fine) for (const c of fine) for (const e of fine) {
      const v = F([gridArg[0] + a, gridArg[1] + b, gridArg[2] + c, gridArg[3] + e]);
      if (v < gridBest) gridBest = v;
    }
    expect(best).toBeLessThanOrEqual(gridBest + 1e-9);

    // First- and second-order check by finite differences at the solution.
    const h = 1e-4;
    for (let k = 0; k < 4; k++) {
      const Wp = W.slice();
      const Wm = W.slice();
      Wp[k] += h;
      Wm[k] -= h;
      expect(Math.abs((F(Wp) - F(Wm)) / (2 * h))).toBeLessThan(1e-6);
      expect(F(Wp)).toBeGreaterThan(best);
      expect(F(Wm)).toBeGreaterThan(best);
    }
    // With two classes and an L2 penalty, the optimum is antisymmetric.
    expect(W[0]).toBeCloseTo(-W[2], 6);
    expect(W[1]).toBeCloseTo(-W[3], 6);
  });

  it('reports non-convergence instead of throwing when capped', () => {
    const head = fitLinearHead(data.train, data.trainLabels, { encoderFingerprint: 'x', maxIterations: 2 });
    expect(head.fit!.iterations).toBe(2);
    expect(head.fit!.converged).toBe(false);
    expect(head.fit!.relativeGradNorm).toBeGreaterThan(1e-6);
  });

  it('keeps class order by first appearance and returns well-formed probabilities', () => {
    const head = fitLinearHead(data.train, data.trainLabels, { encoderFingerprint: 'x' });
    const p = head.predict(data.test);
    expect(p.classes).toEqual(TEN_CLASSES);
    expect(p.probabilities.length).toBe(1000 * 10);
    for (let i = 0; i < 1000; i++) {
      let s = 0;
      for (let c = 0; c < 10; c++) s += p.probabilities[i * 10 + c];
      expect(s).toBeCloseTo(1, 5);
      expect(p.labels[i]).toBe(p.classes[p.topIndex[i]]);
      expect(p.topProbability[i]).toBe(p.probabilities[i * 10 + p.topIndex[i]]);
    }
  });

  it('validates options with typed errors', () => {
    const fit = (opts: object) => () =>
      fitLinearHead(data.train, data.trainLabels, { encoderFingerprint: 'x', ...opts } as never);
    expect(errorName(fit({ l2: 0 }))).toBe('MsnConfigError');
    expect(errorName(fit({ l2: Number.NaN }))).toBe('MsnConfigError');
    expect(errorName(fit({ tol: -1 }))).toBe('MsnConfigError');
    expect(errorName(fit({ maxIterations: 1.5 }))).toBe('MsnConfigError');
    expect(errorName(fit({ encoderFingerprint: '' }))).toBe('MsnConfigError');
    expect(errorName(fit({ unknownThreshold: 2 }))).toBe('MsnConfigError');
    expect(errorName(fit({ preprocess: { centering: true } }))).toBe('MsnConfigError');
    expect(errorName(fit({ unknownThreshold: 0.5, unknownLabel: 'cat' }))).toBe('MsnConfigError');
    const oneClass = () =>
      fitLinearHead([new Float32Array([1, 2, 3]), new Float32Array([3, 2, 1])], ['a', 'a'], { encoderFingerprint: 'x' });
    expect(errorName(oneClass)).toBe('MsnValueError');
    expect(oneClass).toThrow(/at least 2 distinct labels/);
  });
});
