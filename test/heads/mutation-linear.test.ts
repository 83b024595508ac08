/**
 * Tests written against the mutants that survived Stryker in src/heads/linear.ts
 * (docs/TESTING.md lists them): the logits, the kind-specific bundle checks of
 * `LinearHead.fromBundle` with their messages, a fit whose gradient is zero at
 * the start, and the solver's report. Tiny fixed data; pure JavaScript.
 */
import { describe, expect, it } from 'vitest';
import {
  type HeadBundle,
  LinearHead,
  fitLinearHead,
  loadHead,
  logisticObjective,
  preprocessFeatures,
  saveHead,
} from '../../src/heads/index.js';
import { errOf } from './helpers.js';

const row = (...v: number[]) => Float32Array.from(v);
const RAW = { centering: false, normalize: false };
const X = [row(1, 0.2, 0), row(0.1, 1, 0.3), row(0, 0.2, 1), row(0.9, 0, 0.1), row(0.2, 0.8, 0), row(0.1, 0.1, 0.9)];
const Y = ['a', 'b', 'c', 'a', 'b', 'c'];

describe('LinearHead.logits', () => {
  it('are the weights times the preprocessed features, in the column order of the classes', () => {
    const head = fitLinearHead(X, Y, { encoderFingerprint: 'e' });
    const q = [row(0.5, 0.4, -0.3), row(-1, 2, 0.5)];
    const P = preprocessFeatures({ data: row(0.5, 0.4, -0.3, -1, 2, 0.5), count: 2, dim: 3 }, head.preprocess);
    const expected: number[] = [];
    for (let i = 0; i < 2; i++) {
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let j = 0; j < 3; j++) s += head.weights[c * 3 + j] * P[i * 3 + j];
        expected.push(s);
      }
    }
    // Same products summed in the same order, rounded once to float32: exact.
    expect(head.logits(q)).toEqual(Float32Array.from(expected));
    // And the probabilities are their softmax (to float32 rounding, 1e-6).
    const p = head.predict(q).probabilities;
    for (let i = 0; i < 2; i++) {
      const z = expected.slice(i * 3, i * 3 + 3);
      const m = Math.max(...z);
      const e = z.map((v) => Math.exp(v - m));
      const s = e.reduce((a, b) => a + b, 0);
      e.forEach((v, c) => expect(p[i * 3 + c]).toBeCloseTo(v / s, 6));
    }
    expect(errOf(() => head.logits([row(1, 2)]))).toMatch(/^MsnShapeError: features have 2 numbers per example; this head was fitted on 3/);
  });
});

describe('fitLinearHead options and report', () => {
  it('a missing options object is an MsnConfigError; bad numbers are named', () => {
    expect(errOf(() => fitLinearHead(X, Y, undefined as never))).toMatch(/^MsnConfigError: encoderFingerprint must be a non-empty string/);
    expect(errOf(() => fitLinearHead(X, Y, { encoderFingerprint: 'e', l2: -1 }))).toBe('MsnConfigError: l2 must be a positive finite number, got -1.');
    expect(errOf(() => fitLinearHead(X, Y, { encoderFingerprint: 'e', tol: 0 }))).toBe('MsnConfigError: tol must be a positive finite number, got 0.');
  });

  it('relativeGradNorm is the final gradient norm over the norm at W = 0', () => {
    const head = fitLinearHead(X, Y, { encoderFingerprint: 'e', maxIterations: 1 });
    const fit = head.fit!;
    const P = preprocessFeatures({ data: Float32Array.from(X.flatMap((r) => Array.from(r))), count: 6, dim: 3 }, head.preprocess);
    const g0 = new Float64Array(9);
    logisticObjective(new Float64Array(9), P, Int32Array.from([0, 1, 2, 0, 1, 2]), 3, fit.lambda, g0);
    const norm0 = Math.sqrt(g0.reduce((a, v) => a + v * v, 0));
    expect(Math.abs(norm0 - 1)).toBeGreaterThan(0.1); // far from 1, so a product and a quotient differ
    // Same computation as the solver's up to summation order: 1e-12 relative.
    expect(fit.relativeGradNorm / (fit.gradNorm / norm0)).toBeCloseTo(1, 12);
    expect(fit.converged).toBe(false);
  });

  it('a fitted head keeps its solver report in its bundle', () => {
    const head = fitLinearHead(X, Y, { encoderFingerprint: 'e' });
    const b = saveHead(head) as HeadBundle & { fit?: unknown };
    expect(b.fit).toEqual(head.fit);
    expect(b.fit).not.toBe(head.fit);
    expect((loadHead(JSON.stringify(b)) as LinearHead).fit).toEqual(head.fit);
  });
});

describe('a fit whose gradient is zero at W = 0', () => {
  it('stops before the first iteration with W = 0, a relative gradient norm of 0 and uniform predictions', () => {
    // Constant rows vanish under centring, so every preprocessed feature is 0.
    const head = fitLinearHead([row(1, 1), row(2, 2), row(3, 3)], ['a', 'b', 'a'], { encoderFingerprint: 'e' });
    expect(head.fit).toEqual({
      iterations: 0,
      evaluations: 1,
      loss: Math.log(2),
      gradNorm: 0,
      relativeGradNorm: 0,
      converged: true,
      lambda: 0.0025 / 3,
    });
    expect(Array.from(head.weights)).toEqual([0, 0, 0, 0]);
    expect(Array.from(head.predict([row(5, 1)]).probabilities)).toEqual([0.5, 0.5]);
  });
});

describe('LinearHead.fromBundle', () => {
  const bundle = () => JSON.parse(JSON.stringify(saveHead(fitLinearHead(X, Y, { encoderFingerprint: 'e', l2: 0.5, preprocess: RAW })))) as HeadBundle;

  it('needs weights of shape [classes, featureDim], and says what it got', () => {
    const msg = (got: string) => `MsnFormatError: linear bundle needs arrays.weights of shape [3, 3] (classes x featureDim), got ${got}.`;
    const withWeights = (w: unknown) => {
      const b = bundle();
      (b.arrays as Record<string, unknown>).weights = w;
      return errOf(() => LinearHead.fromBundle(b));
    };
    expect(withWeights(undefined)).toBe(msg('none'));
    expect(withWeights({ shape: [9], data: new Array(9).fill(0) })).toBe(msg('[9]'));
    expect(withWeights({ shape: [3, 3, 1], data: new Array(9).fill(0) })).toBe(msg('[3, 3, 1]'));
    expect(withWeights({ shape: [1, 9], data: new Array(9).fill(0) })).toBe(msg('[1, 9]'));
    expect(withWeights({ shape: [9, 1], data: new Array(9).fill(0) })).toBe(msg('[9, 1]'));
    // Only the class count wrong (a fourth row of weights).
    expect(withWeights({ shape: [4, 3], data: new Array(12).fill(0) })).toBe(msg('[4, 3]'));
    // The same through loadHead, which checks the generic form first.
    const b = bundle();
    b.arrays.weights = { shape: [9, 1], data: new Array(9).fill(0) };
    expect(errOf(() => loadHead(b))).toBe(msg('[9, 1]'));
  });

  it('needs params.l2 > 0', () => {
    const withL2 = (l2: unknown) => {
      const b = bundle();
      (b.params as Record<string, unknown>).l2 = l2;
      return errOf(() => LinearHead.fromBundle(b));
    };
    expect(withL2(0)).toBe('MsnFormatError: linear bundle params.l2 must be > 0, got 0.');
    expect(withL2(-1)).toBe('MsnFormatError: linear bundle params.l2 must be > 0, got -1.');
    expect(withL2(undefined)).toBe('MsnFormatError: linear bundle params.l2 must be > 0, got undefined.');
    // A string that JavaScript would coerce to a positive number.
    expect(withL2('1')).toBe('MsnFormatError: linear bundle params.l2 must be > 0, got 1.');
  });

  it('rebuilds the head: weights, l2, unknown rule and the solver report', () => {
    const b = bundle();
    b.unknown = { threshold: 0.6, label: '?' };
    const head = LinearHead.fromBundle(b);
    expect(head.l2).toBe(0.5);
    expect(Array.from(head.weights)).toEqual(b.arrays.weights.data);
    expect(head.unknown).toEqual({ unknownThreshold: 0.6, unknownLabel: '?' });
    expect(head.fit).toEqual(b.fit);
    expect(head.toBundle()).toEqual(b);
    // Without a solver report, none is invented.
    delete (b as { fit?: unknown }).fit;
    const bare = LinearHead.fromBundle(b);
    expect(bare.fit).toBeUndefined();
    expect('fit' in bare.toBundle()).toBe(false);
  });
});
