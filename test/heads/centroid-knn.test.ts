import { describe, expect, it } from 'vitest';
import { fitCentroidHead, fitKnnHead, preprocessFeatures } from '../../src/heads/index.js';
import { TEN_CLASSES, accuracy, errorName, makeClusters } from './helpers.js';

const RAW = { centering: false, normalize: false };
const rows = (...r: number[][]) => r.map((v) => Float32Array.from(v));
const softmax = (z: number[]) => {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b);
  return e.map((v) => v / s);
};

describe('preprocessing', () => {
  it('centres each row on its own mean, then scales it to unit length', () => {
    const X = preprocessFeatures({ data: new Float32Array([1, 2, 3, 5, 5, 5]), count: 2, dim: 3 }, { centering: true, normalize: true });
    expect(X[0]).toBeCloseTo(-Math.SQRT1_2, 12);
    expect(X[1]).toBeCloseTo(0, 12);
    expect(X[2]).toBeCloseTo(Math.SQRT1_2, 12);
    // A constant row centres to zero and stays zero instead of becoming NaN.
    expect(Array.from(X.subarray(3))).toEqual([0, 0, 0]);
  });
});

describe('centroid head', () => {
  it('scores cosine similarity to normalised class means, softmax(cos / T)', () => {
    const head = fitCentroidHead(rows([2, 0], [1, 0], [0, 3]), ['a', 'a', 'b'], { encoderFingerprint: 'e', preprocess: RAW });
    expect(Array.from(head.centroids)).toEqual([1, 0, 0, 1]);
    const p = head.predict(rows([2, 1], [1, 1], [-1, 4]));
    expect(p.labels.slice(0, 1)).toEqual(['a']);
    expect(p.labels[2]).toBe('b');
    const expected = softmax([2 / Math.sqrt(5) / 0.1, 1 / Math.sqrt(5) / 0.1]);
    expect(p.probabilities[0]).toBeCloseTo(expected[0], 6);
    expect(p.probabilities[1]).toBeCloseTo(expected[1], 6);
    // Equidistant: an even split.
    expect(p.probabilities[2]).toBeCloseTo(0.5, 6);
    expect(p.probabilities[3]).toBeCloseTo(0.5, 6);
    expect(Array.from(head.similarities(rows([1, 1]))).map((v) => +v.toFixed(6))).toEqual([0.707107, 0.707107]);
  });

  it('temperature changes confidence, not the decision', () => {
    const train = rows([1, 0.1], [0.1, 1]);
    const hot = fitCentroidHead(train, ['x', 'y'], { encoderFingerprint: 'e', temperature: 1, preprocess: RAW });
    const cold = fitCentroidHead(train, ['x', 'y'], { encoderFingerprint: 'e', temperature: 0.01, preprocess: RAW });
    const q = rows([1, 0.5]);
    expect(hot.predict(q).labels).toEqual(cold.predict(q).labels);
    expect(cold.predict(q).topProbability[0]).toBeGreaterThan(hot.predict(q).topProbability[0]);
  });

  it('classifies Gaussian clusters with the default preprocessing', () => {
    const d = makeClusters({ seed: 11, classes: TEN_CLASSES, dim: 64, trainCount: 50, testCount: 500, noise: 1 });
    const head = fitCentroidHead(d.train, d.trainLabels, { encoderFingerprint: 'e' });
    expect(accuracy(head.predict(d.test).labels, d.testLabels)).toBeGreaterThan(0.95);
  });
});

describe('kNN head', () => {
  // Unit vectors at known angles: cosines are easy to write down.
  const deg = (a: number) => [Math.cos((a * Math.PI) / 180), Math.sin((a * Math.PI) / 180)];
  const train = rows(deg(0), deg(10), deg(20), deg(90), deg(100));
  const labels = ['east', 'east', 'east', 'north', 'north'];

  it('majority vote: shares of the k nearest', () => {
    const head = fitKnnHead(train, labels, { encoderFingerprint: 'e', k: 3, vote: 'majority', preprocess: RAW });
    // Query at 60 degrees: the nearest are 90 (30 degrees away), then 20 and
    // 100 (both 40 away): north 2/3, east 1/3. Query at 5: 0, 10, 20: all east.
    const p = head.predict(rows(deg(60), deg(5), deg(95)));
    expect(p.labels).toEqual(['north', 'east', 'north']);
    expect(p.probabilities[0]).toBeCloseTo(1 / 3, 6);
    expect(p.probabilities[1]).toBeCloseTo(2 / 3, 6);
    expect(p.probabilities[2]).toBeCloseTo(1, 6);
    expect(p.probabilities[3]).toBeCloseTo(0, 6);
    expect(p.probabilities[4]).toBeCloseTo(1 / 3, 6); // 95: 90, 100, then 20 (75 away)
  });

  it('weighted vote: shares of exp(cos / T) over the k nearest', () => {
    const T = 0.5;
    const head = fitKnnHead(train, labels, { encoderFingerprint: 'e', k: 3, temperature: T, preprocess: RAW });
    const q = deg(60);
    const cos = (a: number) => Math.cos(((60 - a) * Math.PI) / 180);
    const w = { 90: Math.exp(cos(90) / T), 20: Math.exp(cos(20) / T), 100: Math.exp(cos(100) / T) };
    const east = w[20] / (w[20] + w[90] + w[100]);
    const p = head.predict(rows(q));
    expect(p.probabilities[0]).toBeCloseTo(east, 6);
    expect(p.probabilities[1]).toBeCloseTo(1 - east, 6);
    expect(p.labels).toEqual(['north']);
  });

  it('caps k at the number of stored examples and with k = 1 is nearest neighbour', () => {
    const all = fitKnnHead(train, labels, { encoderFingerprint: 'e', k: 50, vote: 'majority', preprocess: RAW });
    const p = all.predict(rows(deg(45)));
    expect(p.probabilities[0]).toBeCloseTo(3 / 5, 6);
    const one = fitKnnHead(train, labels, { encoderFingerprint: 'e', k: 1, preprocess: RAW });
    expect(one.predict(rows(deg(54), deg(56))).labels).toEqual(['east', 'north']);
  });

  it('classifies Gaussian clusters with the default preprocessing', () => {
    const d = makeClusters({ seed: 12, classes: TEN_CLASSES, dim: 64, trainCount: 100, testCount: 500, noise: 1 });
    const head = fitKnnHead(d.train, d.trainLabels, { encoderFingerprint: 'e' });
    expect(head.k).toBe(10);
    expect(accuracy(head.predict(d.test).labels, d.testLabels)).toBeGreaterThan(0.95);
  });

  it('validates k and vote', () => {
    expect(errorName(() => fitKnnHead(train, labels, { encoderFingerprint: 'e', k: 0 }))).toBe('MsnConfigError');
    expect(errorName(() => fitKnnHead(train, labels, { encoderFingerprint: 'e', vote: 'mode' as never }))).toBe('MsnConfigError');
  });
});

describe('unknown threshold', () => {
  const train = rows([1, 0], [0, 1]);
  const query = rows([1, 0.05], [1, 1]); // confident 'a'; 50/50

  it('rejects low-confidence examples with the default or a custom label', () => {
    const head = fitCentroidHead(train, ['a', 'b'], { encoderFingerprint: 'e', preprocess: RAW, unknownThreshold: 0.6 });
    const p = head.predict(query);
    expect(p.labels).toEqual(['a', 'unknown']);
    expect(p.topIndex[1]).toBe(0); // the best class is still reported
    expect(head.predict(query, { unknownLabel: '??' }).labels).toEqual(['a', '??']);
    expect(head.predict(query, { unknownThreshold: 0 }).labels).toEqual(['a', 'a']);
    expect(head.predict(query, { unknownThreshold: 1 }).labels).toEqual(['unknown', 'unknown']);
  });

  it('works the same for every head kind', () => {
    const knn = fitKnnHead(train, ['a', 'b'], { encoderFingerprint: 'e', preprocess: RAW, k: 2, vote: 'majority' });
    expect(knn.predict(query, { unknownThreshold: 0.75, unknownLabel: 'none' }).labels).toEqual(['none', 'none']);
    expect(knn.predict(rows([1, 0]), { unknownThreshold: 0.75 }).labels).toEqual(['unknown']);
  });

  it('refuses an unknown label that is also a class name', () => {
    const head = fitCentroidHead(train, ['a', 'unknown'], { encoderFingerprint: 'e', preprocess: RAW });
    expect(head.predict(query).labels[0]).toBe('a'); // threshold 0: no conflict
    expect(errorName(() => head.predict(query, { unknownThreshold: 0.6 }))).toBe('MsnConfigError');
  });
});
