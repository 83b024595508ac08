/**
 * Tests written against the mutants that survived Stryker in src/heads/common.ts
 * (docs/TESTING.md lists them): the exact messages of every input check (each
 * names the argument, the example and what was given), the boundaries of the
 * checks (dim 1, count 0, threshold 0 and 1, a probability equal to the
 * threshold), ties in the top class, the per-row shift of the softmax, per-call
 * unknown options over a head's defaults, and the blocked loops of dotRows and
 * addTransposedProduct for every remainder of the block of four. Pure
 * JavaScript on fixed data.
 */
import { describe, expect, it } from 'vitest';
import {
  addTransposedProduct,
  checkUnknownOptions,
  dotRows,
  makePrediction,
  softmaxRows,
  toFeatureMatrix,
} from '../../src/heads/common.js';
import { fitCentroidHead, fitKnnHead, fitLinearHead, prototypeLabelHeadFromNames } from '../../src/heads/index.js';
import { errOf } from './helpers.js';

const row = (...v: number[]) => Float32Array.from(v);
const RAW = { centering: false, normalize: false };
const two = [row(1, 0), row(0, 1)];
/** Centroid head: no solver, so each call is microseconds. */
const fit = (features: unknown, labels: unknown = ['a', 'b'], opts: object = {}) => () =>
  fitCentroidHead(features as never, labels as never, { encoderFingerprint: 'e', ...opts });

describe('toFeatureMatrix messages name the argument and what was given', () => {
  it('a matrix whose data is not a Float32Array', () => {
    expect(errOf(fit({ data: [1, 2], count: 1, dim: 2 }))).toBe('MsnValueError: features.data must be a Float32Array, got an Array of length 2.');
    expect(errOf(fit({ data: null, count: 1, dim: 2 }))).toBe('MsnValueError: features.data must be a Float32Array, got null.');
    expect(errOf(fit({ data: new Float64Array(2), count: 1, dim: 2 }))).toBe('MsnValueError: features.data must be a Float32Array, got Float64Array.');
    // An object without a prototype has no constructor: still a message, not a TypeError.
    expect(errOf(fit({ data: Object.create(null), count: 1, dim: 2 }))).toBe('MsnValueError: features.data must be a Float32Array, got an object.');
    expect(errOf(fit({ data: 'ab', count: 1, dim: 2 }))).toBe('MsnValueError: features.data must be a Float32Array, got string.');
    expect(errOf(fit({ data: undefined, count: 1, dim: 2 }))).toBe('MsnValueError: features.data must be a Float32Array, got undefined.');
  });

  it('count and dim: integers, count >= 0, dim >= 1; count 0 and dim 1 are valid', () => {
    const bad = (count: number, dim: number) =>
      errOf(() => toFeatureMatrix({ data: new Float32Array(0), count, dim }));
    const msg = (count: number, dim: number) =>
      `MsnShapeError: features must have an integer count >= 0 and dim >= 1, got count=${count}, dim=${dim}.`;
    expect(bad(-1, 2)).toBe(msg(-1, 2));
    expect(bad(0, 0)).toBe(msg(0, 0));
    expect(bad(0, 1.5)).toBe(msg(0, 1.5));
    expect(bad(0.5, 2)).toBe(msg(0.5, 2));
    expect(toFeatureMatrix({ data: row(1, 2), count: 2, dim: 1 })).toEqual({ data: row(1, 2), count: 2, dim: 1 });
    expect(toFeatureMatrix({ data: new Float32Array(0), count: 0, dim: 3 })).toEqual({ data: new Float32Array(0), count: 0, dim: 3 });
    expect(errOf(() => toFeatureMatrix({ data: row(1, 2, 3), count: 2, dim: 2 }, undefined, 'queries'))).toBe(
      'MsnShapeError: queries.data has 3 numbers; expected count x dim = 2 x 2 = 4.',
    );
  });

  it('a matrix is returned as a view of its data, not a copy', () => {
    const data = row(1, 2, 3, 4);
    expect(toFeatureMatrix({ data, count: 2, dim: 2 }).data).toBe(data);
  });

  it('arrays of rows: empty, a bad first row, a bad later row', () => {
    expect(errOf(fit([], []))).toBe('MsnShapeError: features is an empty array; at least one example is needed.');
    expect(toFeatureMatrix([], 5)).toEqual({ data: new Float32Array(0), count: 0, dim: 5 });
    expect(errOf(fit([[1, 2]]))).toBe('MsnValueError: features[0] must be a non-empty Float32Array, got an Array of length 2.');
    expect(errOf(fit([new Float32Array(0), row(1)]))).toBe('MsnValueError: features[0] must be a non-empty Float32Array, got Float32Array.');
    expect(errOf(fit([row(1, 2), [3, 4]]))).toBe('MsnValueError: features[1] must be a Float32Array, got an Array of length 2.');
    expect(errOf(fit([row(1, 2), row(3)]))).toBe('MsnShapeError: features[1] has 1 numbers; expected 2 like features[0].');
    // One number per example is a valid width.
    expect(toFeatureMatrix([row(1), row(2), row(3)])).toEqual({ data: row(1, 2, 3), count: 3, dim: 1 });
  });

  it('rows are laid out row-major', () => {
    expect(toFeatureMatrix([row(1, 2, 3), row(4, 5, 6)]).data).toEqual(row(1, 2, 3, 4, 5, 6));
  });

  it('an array is always read as rows, even one carrying a data field', () => {
    const rows = Object.assign([row(1, 2)], { data: row(9, 9), count: 1, dim: 2 });
    expect(toFeatureMatrix(rows).data).toEqual(row(1, 2));
  });

  it('neither a matrix nor an array: the message says what was given', () => {
    const msg = (got: string) => `MsnValueError: features must be { data: Float32Array, count, dim } or an array of Float32Array, got ${got}.`;
    expect(errOf(fit('x'))).toBe(msg('string'));
    expect(errOf(fit(null))).toBe(msg('null'));
    expect(errOf(fit(5))).toBe(msg('number'));
    expect(errOf(fit(undefined))).toBe(msg('undefined'));
    expect(errOf(fit({ count: 1, dim: 2 }))).toBe(msg('Object'));
  });

  it('the feature size of a head and non-finite values', () => {
    const head = fitCentroidHead(two, ['a', 'b'], { encoderFingerprint: 'e' });
    expect(errOf(() => head.predict([row(1, 2, 3)]))).toBe(
      'MsnShapeError: features have 3 numbers per example; this head was fitted on 2 (use features from the same encoder).',
    );
    expect(errOf(() => head.predict([row(1, 2), row(3, Infinity)]))).toBe('MsnValueError: features must be finite; example 1, feature 1 is Infinity.');
    expect(errOf(fit([row(1, 2), row(-Infinity, 0)]))).toBe('MsnValueError: features must be finite; example 1, feature 0 is -Infinity.');
  });
});

describe('encodeLabels', () => {
  it('labels must be an array with one string per example', () => {
    expect(errOf(fit(two, 'ab'))).toBe('MsnValueError: labels must be an array of strings, got string.');
    expect(errOf(fit(two, ['a']))).toBe('MsnShapeError: got 1 labels for 2 examples; expected one label per example.');
    expect(errOf(fit(two, ['a', 7]))).toBe('MsnValueError: labels[1] must be a string, got number.');
  });

  it('at least 2 distinct labels; the message names the one there is', () => {
    expect(errOf(fit(two, ['a', 'a']))).toBe(
      "MsnValueError: a head needs examples of at least 2 distinct labels, got 1 ('a'); with one class every prediction would be certain.",
    );
    expect(errOf(fit({ data: new Float32Array(0), count: 0, dim: 2 }, []))).toBe(
      'MsnValueError: a head needs examples of at least 2 distinct labels, got 0; with one class every prediction would be certain.',
    );
  });

  it('classes in order of first appearance, each example on its own class column', () => {
    const head = fitCentroidHead([row(0, 1), row(1, 0), row(0, 1), row(1, 0.1)], ['y', 'x', 'y', 'x'], { encoderFingerprint: 'e', preprocess: RAW });
    expect(head.classes).toEqual(['y', 'x']);
    expect(head.predict([row(0, 1), row(1, 0)]).labels).toEqual(['y', 'x']);
  });
});

describe('softmaxRows', () => {
  it('shifts each row by its own maximum: rows far apart stay finite', () => {
    // Row 1 holds 1000: a shift by a value of another row, or by the minimum
    // (exp(1000) = Infinity), gives NaN. Values are exact: exp(0) = 1, exp(-1000) = 0.
    const v = Float64Array.from([0, 0, 1000, 0, -1000, -1000]);
    softmaxRows(v, 3, 2);
    expect(Array.from(v)).toEqual([0.5, 0.5, 1, 0, 0.5, 0.5]);
  });

  it('each row is divided by its own sum', () => {
    const v = Float64Array.from([0, Math.log(3), Math.log(2), Math.log(2)]);
    softmaxRows(v, 2, 2);
    // Tolerance 1e-15: exp(log 3) is 3 within one ulp.
    [0.25, 0.75, 0.5, 0.5].forEach((p, i) => expect(v[i]).toBeCloseTo(p, 15));
  });

  it('a centroid head at a tiny temperature stays finite', () => {
    // Cosine similarities 1 and 0 over T = 1e-4: logits 10,000 apart.
    const head = fitCentroidHead(two, ['a', 'b'], { encoderFingerprint: 'e', temperature: 1e-4, preprocess: RAW });
    expect(Array.from(head.predict([row(1, 0), row(0, 1)]).probabilities)).toEqual([1, 0, 0, 1]);
  });
});

describe('unknown options', () => {
  it('unknownThreshold is a number in [0, 1]; both ends are valid', () => {
    const msg = (v: string) => `MsnConfigError: unknownThreshold must be a number in [0, 1], got ${v}.`;
    expect(errOf(() => checkUnknownOptions({ unknownThreshold: 1.01 }, []))).toBe(msg('1.01'));
    expect(errOf(() => checkUnknownOptions({ unknownThreshold: -0.01 }, []))).toBe(msg('-0.01'));
    expect(errOf(() => checkUnknownOptions({ unknownThreshold: Number.NaN }, []))).toBe(msg('NaN'));
    // '0.5' passes >= 0 and <= 1 by coercion: the type check refuses it.
    expect(errOf(() => checkUnknownOptions({ unknownThreshold: '0.5' as never }, []))).toBe(msg('0.5'));
    expect(checkUnknownOptions({ unknownThreshold: 0 }, [])).toEqual({ unknownThreshold: 0, unknownLabel: 'unknown' });
    expect(checkUnknownOptions({ unknownThreshold: 1, unknownLabel: '?' }, [])).toEqual({ unknownThreshold: 1, unknownLabel: '?' });
    expect(checkUnknownOptions({}, [])).toEqual({ unknownThreshold: 0, unknownLabel: 'unknown' });
  });

  it('unknownLabel is a string, and may be a class name only when nothing is rejected', () => {
    expect(errOf(() => checkUnknownOptions({ unknownLabel: 3 as never }, []))).toBe('MsnConfigError: unknownLabel must be a string, got number.');
    expect(errOf(() => checkUnknownOptions({ unknownThreshold: 0.5, unknownLabel: 'a' }, ['a', 'b']))).toBe(
      "MsnConfigError: unknownLabel 'a' is also a class name; choose another unknownLabel (e.g. '__unknown__').",
    );
    expect(checkUnknownOptions({ unknownThreshold: 0, unknownLabel: 'a' }, ['a', 'b'])).toEqual({ unknownThreshold: 0, unknownLabel: 'a' });
  });

  it('per-call options override a head\'s stored threshold and label one at a time', () => {
    // Raw features at T = 1: probabilities softmax(1, 0) = 0.731 for the nearest class.
    const head = fitCentroidHead(two, ['a', 'b'], { encoderFingerprint: 'e', temperature: 1, preprocess: RAW, unknownThreshold: 0.9, unknownLabel: 'x' });
    const q = [row(1, 0)];
    expect(head.predict(q).labels).toEqual(['x']);
    expect(head.predict(q, {}).labels).toEqual(['x']);
    expect(head.predict(q, { unknownLabel: '?' }).labels).toEqual(['?']);
    expect(head.predict(q, { unknownThreshold: 0.5 }).labels).toEqual(['a']);
    expect(head.predict(q, { unknownThreshold: 0.95, unknownLabel: '-' }).labels).toEqual(['-']);
    expect(errOf(() => head.predict(q, { unknownThreshold: 2 }))).toBe('MsnConfigError: unknownThreshold must be a number in [0, 1], got 2.');
    expect(errOf(() => head.predict(q, { unknownLabel: 'a' }))).toMatch(/^MsnConfigError: unknownLabel 'a' is also a class name/);
  });
});

describe('makePrediction', () => {
  const unknown = (t: number) => ({ unknownThreshold: t, unknownLabel: '?' });

  it('ties go to the lower class index; a probability equal to the threshold is kept', () => {
    const p = makePrediction(Float32Array.from([0.5, 0.5, 0.25, 0.25, 0.5, 0.25, 0.5, 0.25, 0.5]), 3, ['a', 'b', 'c'], unknown(0.5));
    // Rows of 3: [0.5, 0.5, 0.25], [0.25, 0.5, 0.25], [0.5, 0.25, 0.5].
    expect(Array.from(p.topIndex)).toEqual([0, 1, 0]);
    expect(Array.from(p.topProbability)).toEqual([0.5, 0.5, 0.5]);
    expect(p.labels).toEqual(['a', 'b', 'a']);
    expect(makePrediction(Float32Array.from([0.5, 0.5]), 1, ['a', 'b'], unknown(0.50001)).labels).toEqual(['?']);
  });

  it('the top class is searched within the row only', () => {
    // The last row's best is its first column; the row after it does not exist.
    const p = makePrediction(Float32Array.from([0.1, 0.9, 0.8, 0.2]), 2, ['a', 'b'], unknown(0));
    expect(Array.from(p.topIndex)).toEqual([1, 0]);
    expect(p.labels).toEqual(['b', 'a']);
    expect(p.classes).toEqual(['a', 'b']);
  });

  it('the returned classes are a copy', () => {
    const classes = ['a', 'b'];
    const p = makePrediction(Float32Array.from([0.1, 0.9]), 1, classes, unknown(0));
    expect(p.classes).toEqual(classes);
    expect(p.classes).not.toBe(classes);
  });
});

describe('checkFingerprint and positiveOption messages', () => {
  it('the fingerprint must be a non-empty string', () => {
    const msg = (got: string) =>
      `MsnConfigError: encoderFingerprint must be a non-empty string naming the encoder that produced the features, got ${got}.`;
    expect(errOf(fit(two, ['a', 'b'], { encoderFingerprint: '' }))).toBe(msg('string'));
    expect(errOf(fit(two, ['a', 'b'], { encoderFingerprint: 5 }))).toBe(msg('number'));
    expect(errOf(fit(two, ['a', 'b'], { encoderFingerprint: undefined }))).toBe(msg('undefined'));
    expect(errOf(fit(two, ['a', 'b'], { encoderFingerprint: ['e'] }))).toBe(msg('an Array of length 1'));
  });

  it('positive options: finite, > 0, integers where required; the message says which', () => {
    expect(errOf(fit(two, ['a', 'b'], { temperature: Infinity }))).toBe('MsnConfigError: temperature must be a positive finite number, got Infinity.');
    expect(errOf(fit(two, ['a', 'b'], { temperature: '1' }))).toBe('MsnConfigError: temperature must be a positive finite number, got 1.');
    expect(errOf(() => fitKnnHead(two, ['a', 'b'], { encoderFingerprint: 'e', k: 1.5 }))).toBe('MsnConfigError: k must be a positive integer, got 1.5.');
    expect(errOf(() => fitLinearHead(two, ['a', 'b'], { encoderFingerprint: 'e', maxIterations: 0 }))).toBe(
      'MsnConfigError: maxIterations must be a positive integer, got 0.',
    );
    // A given value is used, not the default.
    expect(fitCentroidHead(two, ['a', 'b'], { encoderFingerprint: 'e', temperature: 0.7 }).temperature).toBe(0.7);
    expect(prototypeLabelHeadFromNames({ 0: 'a', 1: 'b' }, { encoderFingerprint: 'e', numPrototypes: 3 }).numPrototypes).toBe(3);
  });
});

describe('dotRows and addTransposedProduct', () => {
  // Integer-valued inputs: every product and partial sum is exact in float64,
  // so the blocked loops must agree with the naive ones exactly.
  const ints = (n: number, seed: number) => Float64Array.from({ length: n }, (_, i) => ((i * 7 + seed * 13) % 11) - 5);

  it('dotRows: out[i, c] = A_i . B_c for every remainder of the block of four', () => {
    for (const rowsB of [1, 2, 3, 4, 5, 6, 7, 8, 9]) {
      for (const dim of [1, 3]) {
        const rowsA = 3;
        const A = ints(rowsA * dim, 1);
        const B = ints(rowsB * dim, 2);
        const out = dotRows(A, rowsA, B, rowsB, dim, new Float64Array(rowsA * rowsB));
        const expected: number[] = [];
        for (let i = 0; i < rowsA; i++) {
          for (let c = 0; c < rowsB; c++) {
            let s = 0;
            for (let j = 0; j < dim; j++) s += A[i * dim + j] * B[c * dim + j];
            expected.push(s);
          }
        }
        expect([rowsB, dim, Array.from(out)]).toEqual([rowsB, dim, expected]);
      }
    }
  });

  it('dotRows writes only its rowsA x rowsB entries, whatever the remainder', () => {
    // A buffer longer than needed (kNN reuses one across query blocks): the
    // slots after the product must stay as they were, and so must A and B.
    for (const rowsB of [1, 2, 3, 4, 5, 6, 7]) {
      for (const rowsA of [1, 2]) {
        const dim = 2;
        const A = ints(rowsA * dim, 5);
        const B = ints(rowsB * dim, 6);
        const out = new Float64Array(rowsA * rowsB + 8).fill(-7);
        dotRows(A, rowsA, B, rowsB, dim, out);
        expect([rowsA, rowsB, Array.from(out.subarray(rowsA * rowsB))]).toEqual([rowsA, rowsB, new Array(8).fill(-7)]);
        expect(out.subarray(0, rowsA * rowsB).every((v) => Number.isFinite(v))).toBe(true);
      }
    }
  });

  it('addTransposedProduct adds only into its cols x dim entries', () => {
    for (const cols of [1, 2, 3]) {
      const rows = 5;
      const dim = 2;
      const G = new Float64Array(cols * dim + 6).fill(-7);
      addTransposedProduct(ints(rows * cols, 7), ints(rows * dim, 8), rows, cols, dim, G);
      expect([cols, Array.from(G.subarray(cols * dim))]).toEqual([cols, new Array(6).fill(-7)]);
    }
  });

  it('addTransposedProduct: G += P^T X for every remainder of the block of four, added to what G held', () => {
    for (const rows of [1, 2, 3, 4, 5, 6, 7, 8, 9]) {
      for (const cols of [1, 2, 3]) {
        const dim = 3;
        const P = ints(rows * cols, 3);
        const X = ints(rows * dim, 4);
        const G = Float64Array.from({ length: cols * dim }, (_, k) => 100 * k);
        addTransposedProduct(P, X, rows, cols, dim, G);
        const expected: number[] = [];
        for (let c = 0; c < cols; c++) {
          for (let j = 0; j < dim; j++) {
            let s = 100 * (c * dim + j);
            for (let i = 0; i < rows; i++) s += P[i * cols + c] * X[i * dim + j];
            expected.push(s);
          }
        }
        expect([rows, cols, Array.from(G)]).toEqual([rows, cols, expected]);
      }
    }
  });
});
