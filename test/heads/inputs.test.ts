import { describe, expect, it } from 'vitest';
import { fitCentroidHead, fitKnnHead, fitLinearHead } from '../../src/heads/index.js';
import { errorName, makeClusters } from './helpers.js';

const d = makeClusters({ seed: 5, classes: ['a', 'b', 'c'], dim: 16, trainCount: 30, testCount: 30, noise: 1 });
const fitters = {
  linear: fitLinearHead,
  centroid: fitCentroidHead,
  knn: fitKnnHead,
};

describe.each(Object.keys(fitters) as Array<keyof typeof fitters>)('%s head input validation', (kind) => {
  const fit = fitters[kind];
  const head = fit(d.train, d.trainLabels, { encoderFingerprint: 'e' });

  it('accepts a row-major matrix or an array of rows, with identical results', () => {
    const rows = Array.from({ length: 30 }, (_, i) => d.test.data.slice(i * 16, (i + 1) * 16));
    expect(head.predict(rows)).toEqual(head.predict(d.test));
    const fromRows = fit(
      Array.from({ length: 30 }, (_, i) => d.train.data.slice(i * 16, (i + 1) * 16)),
      d.trainLabels,
      { encoderFingerprint: 'e' },
    );
    expect(fromRows.predict(d.test)).toEqual(head.predict(d.test));
  });

  it('predicts an empty batch', () => {
    const p = head.predict({ data: new Float32Array(0), count: 0, dim: 16 });
    expect(p.labels).toEqual([]);
    expect(p.probabilities.length).toBe(0);
    expect(head.predict([]).labels).toEqual([]);
  });

  it('throws MsnShapeError on sizes that do not add up, saying what was expected', () => {
    const wrongDim = () => head.predict({ data: new Float32Array(32), count: 4, dim: 8 });
    expect(errorName(wrongDim)).toBe('MsnShapeError');
    expect(wrongDim).toThrow(/8 numbers per example; this head was fitted on 16/);
    const wrongLength = () => head.predict({ data: new Float32Array(33), count: 2, dim: 16 });
    expect(errorName(wrongLength)).toBe('MsnShapeError');
    expect(wrongLength).toThrow(/33 numbers; expected count x dim = 2 x 16 = 32/);
    expect(errorName(() => head.predict([new Float32Array(16), new Float32Array(15)]))).toBe('MsnShapeError');
    expect(errorName(() => head.predict({ data: new Float32Array(16), count: 1.5, dim: 16 }))).toBe('MsnShapeError');
    const labelCount = () => fit(d.train, d.trainLabels.slice(1), { encoderFingerprint: 'e' });
    expect(errorName(labelCount)).toBe('MsnShapeError');
    expect(labelCount).toThrow(/29 labels for 30 examples/);
  });

  it('throws MsnValueError on non-finite values or wrong types', () => {
    const nan = d.test.data.slice();
    nan[3 * 16 + 4] = Number.NaN;
    const withNaN = () => head.predict({ data: nan, count: 30, dim: 16 });
    expect(errorName(withNaN)).toBe('MsnValueError');
    expect(withNaN).toThrow(/example 3, feature 4 is NaN/);
    const inf = d.train.data.slice();
    inf[0] = Number.NEGATIVE_INFINITY;
    expect(errorName(() => fit({ data: inf, count: 30, dim: 16 }, d.trainLabels, { encoderFingerprint: 'e' }))).toBe(
      'MsnValueError',
    );
    expect(errorName(() => head.predict({ data: Array.from(d.test.data) as never, count: 30, dim: 16 }))).toBe('MsnValueError');
    expect(errorName(() => head.predict([[1, 2]] as never))).toBe('MsnValueError');
    expect(errorName(() => head.predict('x' as never))).toBe('MsnValueError');
    expect(errorName(() => fit(d.train, d.trainLabels.map((l, i) => (i === 2 ? 7 : l)) as never, { encoderFingerprint: 'e' }))).toBe(
      'MsnValueError',
    );
  });
});
