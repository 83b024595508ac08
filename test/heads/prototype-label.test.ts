/**
 * The prototype-label head on hand-made assignments: the majority vote per
 * prototype, the prediction formula (with the unlabelled share spread over
 * the classes), named prototypes, the unknown threshold, bundles (round
 * trip, fingerprint, hostile and malformed ones), the few-shot classifier,
 * inputs that are not assignments, and no tensors.
 */
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import {
  type HeadBundle,
  FewShotClassifier,
  PrototypeLabelHead,
  bundleToBytes,
  createFewShotClassifier,
  fitPrototypeLabelHead,
  loadHead,
  prototypeLabelHeadFromNames,
  saveHead,
} from '../../src/heads/index.js';
import { errorName, gaussian, prng } from './helpers.js';

const fp = 'sha256:prototype-test';
/** 5 labelled images over K = 4 prototypes: 0 is the choice of a, a; 1 of b, a, b; 2 and 3 of none. */
const labelled = {
  data: Float32Array.from([
    0.7, 0.1, 0.1, 0.1, //
    0.6, 0.2, 0.1, 0.1,
    0.1, 0.8, 0.05, 0.05,
    0.2, 0.5, 0.2, 0.1,
    0.1, 0.6, 0.2, 0.1,
  ]),
  count: 5,
  dim: 4,
};
const labels = ['a', 'a', 'b', 'a', 'b'];
/** q sits on prototype 2, which no labelled image chose; r on prototype 1. */
const queries = { data: Float32Array.from([0.1, 0.2, 0.6, 0.1, 0.05, 0.9, 0.025, 0.025]), count: 2, dim: 4 };
// Inputs and outputs are float32: agreement to 1e-6 is float32 rounding of values near 0.5.
const F32 = 6;

describe('prototype-label head', () => {
  const head = fitPrototypeLabelHead(labelled, labels, { encoderFingerprint: fp });
  // Tier 2 rows (prototypes no image chose): each image votes with its probability there.
  const row2 = [0.1 + 0.1 + 0.2, 0.05 + 0.2].map((v) => v / 0.65); // a: images 1, 2, 4; b: images 3, 5
  const row3 = [0.1 + 0.1 + 0.1, 0.05 + 0.1].map((v) => v / 0.45);

  it('gives a chosen prototype the vote shares of its images, any other the assignment-weighted vote of all', () => {
    expect(head.kind).toBe('prototype-label');
    expect(head.classes).toEqual(['a', 'b']);
    expect(head.numPrototypes).toBe(4);
    expect(head.temperature).toBe(0.1);
    const expected = [1, 0, 1 / 3, 2 / 3, ...row2, ...row3];
    head.labelMap.forEach((v, i) => expect(v).toBeCloseTo(expected[i], F32));
    // Tier 1 wins where it applies: prototype 0 is the one 'a' image's choice, so it is 'a',
    // although the three 'b' images put more weight on it (0.9 against 0.4).
    const rows = Float32Array.from([0.4, 0.3, 0.3, 0, ...[0, 1, 2].flatMap(() => [0.3, 0.5, 0.1, 0.1])]);
    const tiers = fitPrototypeLabelHead({ data: rows, count: 4, dim: 4 }, ['a', 'b', 'b', 'b'], { encoderFingerprint: fp });
    [1, 0, 0, 1, 0.5, 0.5, 0, 1].forEach((v, i) => expect(tiers.labelMap[i]).toBeCloseTo(v, F32));
  });

  it('predicts the assignment-weighted vote of the prototypes', () => {
    const p = head.predict(queries);
    const vote = (a: number[]) => [0, 1].map((c) => a[0] * [1, 0][c] + a[1] * [1 / 3, 2 / 3][c] + a[2] * row2[c] + a[3] * row3[c]);
    const expected = [...vote([0.1, 0.2, 0.6, 0.1]), ...vote([0.05, 0.9, 0.025, 0.025])];
    p.probabilities.forEach((v, i) => expect(v).toBeCloseTo(expected[i], F32));
    expect(p.labels).toEqual(['a', 'b']);
    expect(Array.from(p.topProbability)).toEqual([p.probabilities[0], p.probabilities[3]]);
  });

  it('rejects low-confidence images with unknownThreshold', () => {
    const sure = { data: Float32Array.from([...queries.data, 0.9, 0.05, 0.03, 0.02]), count: 3, dim: 4 };
    expect(head.predict(sure, { unknownThreshold: 0.7 }).labels).toEqual(['unknown', 'unknown', 'a']);
    const strict = fitPrototypeLabelHead(labelled, labels, { encoderFingerprint: fp, unknownThreshold: 0.7, unknownLabel: '?' });
    expect(strict.predict(sure).labels).toEqual(['?', '?', 'a']);
    expect(strict.predict(sure, { unknownThreshold: 0 }).labels).toEqual(['a', 'b', 'a']);
  });

  it('builds from named prototypes (object or Map), classes by ascending prototype id', () => {
    const named = prototypeLabelHeadFromNames({ 3: 'seven', 1: 'one', 2: 'seven' }, { encoderFingerprint: fp, numPrototypes: 4, temperature: 0.2 });
    expect(named.classes).toEqual(['one', 'seven']);
    expect(Array.from(named.labelMap)).toEqual([0, 0, 1, 0, 0, 1, 0, 1]);
    expect(named.temperature).toBe(0.2);
    // Prototype 0 is nobody's: its share is spread evenly, which lowers the confidence but not the class.
    const p = named.predict({ data: Float32Array.from([0.1, 0.1, 0.4, 0.4]), count: 1, dim: 4 });
    expect(p.probabilities[1]).toBeCloseTo(0.8 + 0.05, F32);
    expect(p.labels).toEqual(['seven']);
    // All of an image on unnamed prototypes: uniform, so any threshold above 1/C rejects it.
    const away = named.predict({ data: Float32Array.from([1, 0, 0, 0]), count: 1, dim: 4 }, { unknownThreshold: 0.51 });
    expect(Array.from(away.probabilities)).toEqual([0.5, 0.5]);
    expect(away.labels).toEqual(['unknown']);
    expect(named.predict({ data: Float32Array.from([0.1, 0, 0, 0.9]), count: 1, dim: 4 }, { unknownThreshold: 0.51 }).labels).toEqual(['seven']);
    const fromMap = prototypeLabelHeadFromNames(new Map([[1, 'one'], [2, 'seven'], [3, 'seven']]), { encoderFingerprint: fp, numPrototypes: 4 });
    expect(Array.from(fromMap.labelMap)).toEqual(Array.from(named.labelMap));
    const o = { encoderFingerprint: fp, numPrototypes: 4 };
    expect(errorName(() => prototypeLabelHeadFromNames({ 4: 'x', 0: 'y' }, o))).toBe('MsnValueError');
    expect(errorName(() => prototypeLabelHeadFromNames({ '-1': 'x', 0: 'y' } as never, o))).toBe('MsnValueError');
    expect(errorName(() => prototypeLabelHeadFromNames({ 1.5: 'x', 0: 'y' } as never, o))).toBe('MsnValueError');
    expect(errorName(() => prototypeLabelHeadFromNames({ 0: 3, 1: 'y' } as never, o))).toBe('MsnValueError');
    expect(errorName(() => prototypeLabelHeadFromNames({ 0: 'x', 1: 'x' }, o))).toBe('MsnValueError'); // one class only
    expect(errorName(() => prototypeLabelHeadFromNames(null as never, o))).toBe('MsnValueError');
    expect(errorName(() => prototypeLabelHeadFromNames({ 0: 'x', 1: 'y' }, { ...o, numPrototypes: 0 }))).toBe('MsnConfigError');
    expect(errorName(() => prototypeLabelHeadFromNames({ 0: 'x', 1: 'y' }, { ...o, temperature: -1 }))).toBe('MsnConfigError');
    expect(errorName(() => prototypeLabelHeadFromNames({ 0: 'x', 1: 'y' }, { ...o, encoderFingerprint: '' }))).toBe('MsnConfigError');
  });

  it('refuses encoder features, logits and the wrong width, saying what to pass', () => {
    const features = { data: Float32Array.from([0.3, -0.2, 0.5, 0.1, 0.2, 0.2, 0.2, 0.2]), count: 2, dim: 4 };
    expect(errorName(() => fitPrototypeLabelHead(features, ['a', 'b'], { encoderFingerprint: fp }))).toBe('MsnValueError');
    expect(() => head.predict(features)).toThrow(/prototype probabilities .*assignPrototypes\(pixels, shape, \{ full: true \}\)\.full/);
    expect(() => head.predict({ data: Float32Array.from([2, 1, 1, 1]), count: 1, dim: 4 })).toThrow(/row 0 sums to 5/);
    expect(errorName(() => head.predict({ data: Float32Array.from([0.5, 0.5]), count: 1, dim: 2 }))).toBe('MsnShapeError');
    expect(errorName(() => head.predict({ data: Float32Array.from([NaN, 0.5, 0.25, 0.25]), count: 1, dim: 4 }))).toBe('MsnValueError');
    expect(head.predict({ data: new Float32Array(0), count: 0, dim: 4 }).labels).toEqual([]);
  });
});

describe('prototype-label head bundles', () => {
  const head = fitPrototypeLabelHead(labelled, labels, { encoderFingerprint: fp, temperature: 0.25, unknownThreshold: 0.3 });
  const before = head.predict(queries);

  it('round-trips through objects, JSON text and bytes with identical predictions', () => {
    const bundle = saveHead(head);
    expect(bundle).toMatchObject({
      kind: 'prototype-label', featureDim: 4, classes: ['a', 'b'], encoderFingerprint: fp,
      preprocess: { centering: false, normalize: false }, params: { temperature: 0.25 }, unknown: { threshold: 0.3, label: 'unknown' },
    });
    const json = JSON.stringify(bundle);
    for (const loaded of [loadHead(json), loadHead(JSON.parse(json) as HeadBundle), loadHead(bundleToBytes(bundle))]) {
      expect(loaded).toBeInstanceOf(PrototypeLabelHead);
      expect(loaded.predict(queries)).toEqual(before);
      expect(loaded.toBundle()).toEqual(bundle);
    }
  });

  it('checks the encoder fingerprint', () => {
    expect(loadHead(saveHead(head), { expectedFingerprint: fp }).encoderFingerprint).toBe(fp);
    const other = () => loadHead(bundleToBytes(saveHead(head)), { expectedFingerprint: 'sha256:other' });
    expect(errorName(other)).toBe('MsnConfigError');
    expect(other).toThrow(/fingerprint mismatch/);
  });

  it('rejects malformed and hostile bundles with MsnFormatError, as object, JSON and bytes', () => {
    const good = () => JSON.parse(JSON.stringify(saveHead(head))) as HeadBundle & Record<string, unknown>;
    const cases: Array<(b: ReturnType<typeof good>) => void> = [
      (b) => (b.arrays.labelMap.data[0] = Number.NaN),
      (b) => (b.arrays.labelMap.data[0] = -0.5),
      (b) => (b.arrays.labelMap.data[0] = 1.5),
      (b) => (b.arrays.labelMap.data[0] = 0.7), // row 0 sums to 0.7
      (b) => (b.arrays.labelMap.data = new Array(8).fill(0)), // labels nothing
      (b) => (b.arrays.labelMap.shape = [2, 4]),
      (b) => (b.arrays.labelMap = { shape: [4, 3], data: new Array(12).fill(1 / 3) }),
      (b) => delete (b.arrays as Record<string, unknown>).labelMap,
      (b) => (b.arrays.weights = { shape: [2, 4], data: new Array(8).fill(0) }), // another kind's array smuggled in
      (b) => (b.kind = 'linear'), // a prototype map read as a linear head
      (b) => (b.featureDim = 5),
      (b) => (b.preprocess = { centering: true, normalize: true }),
      (b) => (b.params.temperature = 0),
      (b) => (b.params.temperature = 'hot'),
      (b) => delete (b.params as Record<string, unknown>).temperature,
      (b) => (b.unknown = { threshold: 0.5, label: 'a' }),
    ];
    cases.forEach((corrupt, i) => {
      const b = good();
      corrupt(b);
      expect([i, errorName(() => loadHead(b))]).toEqual([i, 'MsnFormatError']);
      expect([i, errorName(() => loadHead(JSON.stringify(b)))]).toEqual([i, 'MsnFormatError']);
      let bytes: Uint8Array | undefined;
      try {
        bytes = bundleToBytes(b); // bytes can only be made when the shared fields are valid
      } catch (e) {
        expect([i, (e as Error).name]).toEqual([i, 'MsnFormatError']);
      }
      if (bytes) expect([i, errorName(() => loadHead(bytes))]).toEqual([i, 'MsnFormatError']);
    });
  });
});

describe('prototype-label few-shot classifier', () => {
  it('adds assignments per label, fits, exports and imports with identical predictions', () => {
    const clf = createFewShotClassifier({ head: 'prototype-label', fingerprint: fp });
    labels.forEach((l, i) => clf.addExamples(l, [labelled.data.subarray(i * 4, (i + 1) * 4)]));
    expect(clf.fit().kind).toBe('prototype-label');
    const p = clf.predict(queries);
    expect(p).toEqual(fitPrototypeLabelHead(labelled, labels, { encoderFingerprint: fp }).predict(queries));
    const again = FewShotClassifier.import(bundleToBytes(clf.export({ includeExamples: true })), { expectedFingerprint: fp });
    expect(again.kind).toBe('prototype-label');
    expect(again.predict(queries)).toEqual(p);
    again.addExamples('b', [Float32Array.from([0.9, 0.05, 0.03, 0.02])]); // prototype 0 now a, a, b
    expect((again.fit() as PrototypeLabelHead).labelMap[1]).toBeCloseTo(1 / 3, F32);
    clf.dispose();
    again.dispose();
  });
});

describe('prototype-label head on clustered assignments', () => {
  it('classifies held-out images of 3 classes whose 12 prototypes form 3 clusters, from 2 labelled images per class', () => {
    // Prototype k belongs to class k % 3; an image of class c puts most of its logit mass on c's prototypes.
    const K = 12;
    const normal = gaussian(prng(5));
    const sample = (c: number) => {
      const logits = Array.from({ length: K }, (_, k) => (k % 3 === c ? 2 : 0) + 1.5 * normal());
      const max = Math.max(...logits);
      const e = logits.map((v) => Math.exp(v - max));
      const s = e.reduce((x, y) => x + y, 0);
      return e.map((v) => v / s);
    };
    const make = (n: number) => {
      const rows: number[] = [];
      const y: string[] = [];
      for (let i = 0; i < n; i++) {
        rows.push(...sample(i % 3));
        y.push(['x', 'y', 'z'][i % 3]);
      }
      return { m: { data: Float32Array.from(rows), count: n, dim: K }, y };
    };
    const train = make(6);
    const test = make(300);
    const head = fitPrototypeLabelHead(train.m, train.y, { encoderFingerprint: fp });
    const p = head.predict(test.m);
    const acc = p.labels.filter((l, i) => l === test.y[i]).length / test.y.length;
    // Chance is 1/3. With 6 labelled images at most 6 of the 12 prototypes are an image's choice; the
    // others take the assignment-weighted vote. Measured: 0.843 (pure JS, seeded: the same everywhere);
    // 0.76 when those prototypes were left unlabelled, so the bound also pins the second tier.
    expect(acc).toBeGreaterThan(0.8);
  });
});

describe('prototype-label head and numTensors', () => {
  it('fit, predict, names, save, load and the classifier allocate no tensors', async () => {
    await tf.setBackend('cpu');
    const before = tf.memory().numTensors;
    const h = fitPrototypeLabelHead(labelled, labels, { encoderFingerprint: fp });
    h.predict(queries);
    loadHead(bundleToBytes(saveHead(h))).predict(queries);
    prototypeLabelHeadFromNames({ 0: 'a', 1: 'b' }, { encoderFingerprint: fp, numPrototypes: 4 }).predict(queries);
    const c = createFewShotClassifier({ head: 'prototype-label', fingerprint: fp });
    labels.forEach((l, i) => c.addExamples(l, [labelled.data.subarray(i * 4, (i + 1) * 4)]));
    c.predict(queries);
    c.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
