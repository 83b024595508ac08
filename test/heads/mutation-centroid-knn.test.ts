/**
 * Tests written against the mutants that survived Stryker in src/heads/centroid.ts,
 * knn.ts and preprocess.ts (docs/TESTING.md lists them): option names in the
 * errors, kind-specific bundle checks of centroid and kNN heads, kNN tie order at
 * the k-th neighbour, the shifted exponent of the weighted vote at a small
 * temperature, rows that are zero after centring, and the preprocess spec checks.
 * Probabilities are compared exactly where the math is exact in float32 and to
 * 1e-6 otherwise.
 */
import { describe, expect, it } from 'vitest';
import { type HeadBundle, fitCentroidHead, fitKnnHead, loadHead, saveHead } from '../../src/heads/index.js';
import { MsnConfigError, MsnFormatError } from '../../src/errors.js';

const RAW = { centering: false, normalize: false };
const rows = (...r: number[][]) => r.map((v) => Float32Array.from(v));

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error, got none');
}

function expectError(fn: () => unknown, cls: typeof MsnConfigError | typeof MsnFormatError, message: string): void {
  const e = thrown(fn);
  expect(e).toBeInstanceOf(cls);
  expect(e.message).toBe(message);
}

const train = rows([1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]);
const labels = ['a', 'b', 'c', 'a'];

describe('fit options', () => {
  it('a missing options object is an MsnConfigError about the fingerprint, not a TypeError', () => {
    for (const fit of [fitCentroidHead, fitKnnHead]) {
      const e = thrown(() => fit(train, labels, undefined as never));
      expect(e).toBeInstanceOf(MsnConfigError);
      expect(e.message).toMatch(/^encoderFingerprint must be a non-empty string/);
    }
  });

  it('names the bad option in the message', () => {
    expectError(() => fitCentroidHead(train, labels, { encoderFingerprint: 'e', temperature: 0 }), MsnConfigError, 'temperature must be a positive finite number, got 0.');
    expectError(() => fitKnnHead(train, labels, { encoderFingerprint: 'e', temperature: -1 }), MsnConfigError, 'temperature must be a positive finite number, got -1.');
    expectError(() => fitKnnHead(train, labels, { encoderFingerprint: 'e', k: 0 }), MsnConfigError, 'k must be a positive integer, got 0.');
    expectError(() => fitKnnHead(train, labels, { encoderFingerprint: 'e', vote: 'mode' as never }), MsnConfigError, `vote must be 'weighted' or 'majority', got "mode".`);
  });

  it('k must be an integer', () => {
    expectError(() => fitKnnHead(train, labels, { encoderFingerprint: 'e', k: 2.5 }), MsnConfigError, 'k must be a positive integer, got 2.5.');
    expect(fitKnnHead(train, labels, { encoderFingerprint: 'e', k: 3 }).k).toBe(3);
  });

  it('preprocess must be an object of two booleans', () => {
    const bad: Array<[unknown, string]> = [
      [null, 'null'],
      [{}, '{}'],
      [{ centering: 1, normalize: true }, '{"centering":1,"normalize":true}'],
      [{ centering: true, normalize: 'yes' }, '{"centering":true,"normalize":"yes"}'],
      ['raw', '"raw"'],
    ];
    for (const [spec, shown] of bad) {
      for (const fit of [fitCentroidHead, fitKnnHead]) {
        expectError(
          () => fit(train, labels, { encoderFingerprint: 'e', preprocess: spec as never }),
          MsnConfigError,
          `preprocess must be { centering: boolean, normalize: boolean }, got ${shown}.`,
        );
      }
    }
    expect(fitCentroidHead(train, labels, { encoderFingerprint: 'e', preprocess: RAW }).preprocess).toEqual(RAW);
  });
});

describe('kind-specific bundle checks', () => {
  const fp = 'enc';
  const centroidBundle = () => JSON.parse(JSON.stringify(saveHead(fitCentroidHead(train, labels, { encoderFingerprint: fp })))) as HeadBundle;
  const knnBundle = () => JSON.parse(JSON.stringify(saveHead(fitKnnHead(train, labels, { encoderFingerprint: fp, k: 2 })))) as HeadBundle;

  it('centroid: arrays.centroids must be [classes, featureDim]', () => {
    expect(loadHead(centroidBundle()).kind).toBe('centroid');
    const cases: Array<[(b: HeadBundle) => void, string]> = [
      [(b) => (b.arrays.centroids = { shape: [3, 4], data: new Array(12).fill(0.5) }), 'got [3, 4].'],
      [(b) => (b.arrays.centroids = { shape: [4, 3], data: new Array(12).fill(0.5) }), 'got [4, 3].'],
      [(b) => (b.arrays.centroids = { shape: [9], data: new Array(9).fill(0.5) }), 'got [9].'],
      [(b) => (b.arrays.centroids = { shape: [1, 3, 3], data: new Array(9).fill(0.5) }), 'got [1, 3, 3].'],
      // Right first two sides, extra axis: would load and silently use the first 9 values.
      [(b) => (b.arrays.centroids = { shape: [3, 3, 2], data: new Array(18).fill(0.5) }), 'got [3, 3, 2].'],
      [(b) => delete (b.arrays as Record<string, unknown>).centroids, 'got none.'],
    ];
    for (const [corrupt, got] of cases) {
      const b = centroidBundle();
      corrupt(b);
      expectError(() => loadHead(b), MsnFormatError, `centroid bundle needs arrays.centroids of shape [3, 3], ${got}`);
    }
  });

  it('centroid: params.temperature must be a number > 0', () => {
    for (const t of [0, -0.1, '0.1']) {
      const b = centroidBundle();
      b.params.temperature = t;
      expectError(() => loadHead(b), MsnFormatError, `centroid bundle params.temperature must be > 0, got ${t}.`);
    }
    const ok = centroidBundle();
    ok.params.temperature = 1e-9;
    expect((loadHead(ok) as { temperature: number }).temperature).toBe(1e-9);
  });

  it('knn: bank [examples >= 1, featureDim], bankLabels [examples] of class indices', () => {
    expect(loadHead(knnBundle()).kind).toBe('knn');
    const bankMsg = 'knn bundle needs arrays.bank of shape [examples, 3].';
    const bankCases: Array<(b: HeadBundle) => void> = [
      (b) => (b.arrays.bank = { shape: [4, 4], data: new Array(16).fill(0.5) }),
      (b) => (b.arrays.bank = { shape: [12], data: new Array(12).fill(0.5) }),
      (b) => (b.arrays.bank = { shape: [4, 3, 2], data: new Array(24).fill(0.5) }),
      (b) => {
        b.arrays.bank = { shape: [0, 3], data: [] };
        b.arrays.bankLabels = { shape: [0], data: [] };
      },
      (b) => delete (b.arrays as Record<string, unknown>).bank,
    ];
    for (const corrupt of bankCases) {
      const b = knnBundle();
      corrupt(b);
      expectError(() => loadHead(b), MsnFormatError, bankMsg);
    }
    const labelCases: Array<(b: HeadBundle) => void> = [
      (b) => (b.arrays.bankLabels = { shape: [5], data: [0, 1, 2, 0, 1] }),
      (b) => (b.arrays.bankLabels = { shape: [4, 1], data: [0, 1, 2, 0] }),
      (b) => delete (b.arrays as Record<string, unknown>).bankLabels,
    ];
    for (const corrupt of labelCases) {
      const b = knnBundle();
      corrupt(b);
      expectError(() => loadHead(b), MsnFormatError, 'knn bundle needs arrays.bankLabels of shape [4].');
    }
    for (const bad of [-1, 3, 1.5]) {
      const b = knnBundle();
      b.arrays.bankLabels.data[2] = bad;
      expectError(() => loadHead(b), MsnFormatError, 'knn bundle arrays.bankLabels must be class indices in [0, 3).');
    }
  });

  it('knn: a bank of one example is valid and predicts its class', () => {
    const b = knnBundle();
    b.arrays.bank = { shape: [1, 3], data: [0, 0, 1] };
    b.arrays.bankLabels = { shape: [1], data: [2] };
    const head = loadHead(b);
    const p = head.predict(rows([1, 2, 3]));
    expect(p.labels).toEqual(['c']);
    expect(Array.from(p.probabilities)).toEqual([0, 0, 1]);
  });

  it('knn: params k (positive integer), vote and temperature are checked', () => {
    for (const k of [0, -2, 2.5, '2']) {
      const b = knnBundle();
      b.params.k = k;
      expectError(() => loadHead(b), MsnFormatError, `knn bundle params.k must be a positive integer, got ${k}.`);
    }
    const one = knnBundle();
    one.params.k = 1;
    expect((loadHead(one) as { k: number }).k).toBe(1);
    const vote = knnBundle();
    vote.params.vote = 'mode';
    expectError(() => loadHead(vote), MsnFormatError, 'knn bundle params.vote is invalid: "mode".');
    // '0.5' would pass `> 0` by coercion: only the type check refuses it.
    for (const t of [0, -1, 'x', '0.5']) {
      const b = knnBundle();
      b.params.temperature = t;
      expectError(() => loadHead(b), MsnFormatError, `knn bundle params.temperature must be > 0, got ${t}.`);
    }
  });

  it('an invalid preprocess in a bundle names itself', () => {
    const b = { ...knnBundle(), preprocess: null as unknown } as unknown as HeadBundle;
    expectError(
      () => loadHead(b),
      MsnFormatError,
      'Invalid head bundle: preprocess must be { centering: boolean, normalize: boolean }, got null.',
    );
  });
});

describe('kNN neighbour order', () => {
  it('equal similarities at the k-th place keep the lower example index', () => {
    // Examples 0 and 1 are identical; k = 1: the neighbour is example 0 ('a').
    const head = fitKnnHead(rows([1, 0], [1, 0], [0, 1]), ['a', 'b', 'c'], { encoderFingerprint: 'e', k: 1, preprocess: RAW });
    const p = head.predict(rows([1, 0]));
    expect(p.labels).toEqual(['a']);
    expect(Array.from(p.probabilities)).toEqual([1, 0, 0]);
  });

  it('a closer example pushes out the later of two tied ones', () => {
    // Cosines to the query (1, 0): example 0 ('A') 0.5, example 1 ('B') 0.5, example 2 ('C') 1.
    // k = 2: the two kept are C and A (the lower index of the tie), majority shares 1/2 each.
    const s = Math.sqrt(3) / 2;
    const head = fitKnnHead(rows([0.5, s], [0.5, -s], [1, 0]), ['A', 'B', 'C'], {
      encoderFingerprint: 'e',
      k: 2,
      vote: 'majority',
      preprocess: RAW,
    });
    expect(Array.from(head.predict(rows([1, 0])).probabilities)).toEqual([0.5, 0, 0.5]);
  });

  it('weighted votes stay finite at a tiny temperature (exponent shifted by the top similarity)', () => {
    // Cosines 1 ('a') and 0.8 ('b'); T = 0.001: weight of 'b' = exp(-200), a share of 0 in float32.
    const head = fitKnnHead(rows([1, 0], [0.8, 0.6]), ['a', 'b'], { encoderFingerprint: 'e', k: 2, temperature: 0.001, preprocess: RAW });
    const p = head.predict(rows([1, 0]));
    expect(Array.from(p.probabilities)).toEqual([1, 0]);
    // Same head at a temperature where both weights are visible: shares exp(0) : exp(-0.2 / 0.1).
    const warm = fitKnnHead(rows([1, 0], [0.8, 0.6]), ['a', 'b'], { encoderFingerprint: 'e', k: 2, temperature: 0.1, preprocess: RAW });
    const q = warm.predict(rows([1, 0])).probabilities;
    const wb = Math.exp(-2);
    expect(Math.abs(q[0] - 1 / (1 + wb))).toBeLessThan(1e-6);
    expect(Math.abs(q[1] - wb / (1 + wb))).toBeLessThan(1e-6);
  });
});

describe('rows that vanish after centring', () => {
  // A constant row is all zeros after centring: equally close (cosine 0) to everything.
  const data = rows([3, 0, 0, 1], [0, 3, 0, 1], [0, 0, 3, 1]);
  const names = ['x', 'y', 'z'];

  it('centroid: uniform probabilities, no NaN', () => {
    const head = fitCentroidHead(data, names, { encoderFingerprint: 'e' });
    const p = head.predict(rows([2, 2, 2, 2])).probabilities;
    for (const v of p) expect(Math.abs(v - 1 / 3)).toBeLessThan(1e-6);
    expect(Array.from(head.similarities(rows([5, 5, 5, 5])))).toEqual([0, 0, 0]);
  });

  it('knn: all similarities 0, so the first k examples vote with equal weight', () => {
    const head = fitKnnHead(data, names, { encoderFingerprint: 'e', k: 2 });
    expect(Array.from(head.predict(rows([2, 2, 2, 2])).probabilities)).toEqual([0.5, 0.5, 0]);
  });

  it('a class whose examples all vanish gets a zero centroid, not NaN', () => {
    const head = fitCentroidHead(rows([3, 0, 0], [1, 1, 1], [0, 3, 0]), ['p', 'flat', 'p'], { encoderFingerprint: 'e' });
    const c = Array.from(head.centroids);
    expect(c.slice(3)).toEqual([0, 0, 0]);
    expect(c.every(Number.isFinite)).toBe(true);
  });
});
