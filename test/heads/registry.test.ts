/**
 * The head registry (src/heads/registry.ts): one entry per kind, whose
 * defaults are the ones its fit really uses, whose fromBundle rebuilds what
 * its fit made, and whose kind check names every kind.
 */
import { describe, expect, it } from 'vitest';
import { HEAD_KINDS, type HeadKind } from '../../src/heads/common.js';
import { FewShotClassifier, createFewShotClassifier, loadHead } from '../../src/heads/index.js';
import { HEAD_REGISTRY, headKind, kindOptions } from '../../src/heads/registry.js';
import { errOf, makeClusters } from './helpers.js';

const data = makeClusters({ seed: 3, classes: ['a', 'b', 'c'], dim: 5, trainCount: 9, testCount: 4, noise: 0.3 });
/** Prototype-label heads take rows of probabilities; the same clusters, softmaxed. */
function probabilities(m: { data: Float32Array; count: number; dim: number }) {
  const out = new Float32Array(m.data.length);
  for (let i = 0; i < m.count; i++) {
    const row = m.data.subarray(i * m.dim, (i + 1) * m.dim).map(Math.exp);
    const sum = row.reduce((s, v) => s + v, 0);
    out.set(row.map((v) => v / sum), i * m.dim);
  }
  return { data: out, count: m.count, dim: m.dim };
}
const inputsOf = (kind: HeadKind) => (kind === 'prototype-label' ? probabilities(data.train) : data.train);

describe('HEAD_REGISTRY', () => {
  it('has exactly one entry per kind, under its own name', () => {
    expect(Object.keys(HEAD_REGISTRY).sort()).toEqual([...HEAD_KINDS].sort());
    for (const kind of HEAD_KINDS) expect(HEAD_REGISTRY[kind].kind).toBe(kind);
    expect(Object.isFrozen(HEAD_REGISTRY)).toBe(true);
  });

  it.each(HEAD_KINDS)("%s: the options' defaults are what fit uses, and what the bundle records", (kind) => {
    const head = HEAD_REGISTRY[kind].fit(inputsOf(kind), data.trainLabels, { encoderFingerprint: 'e' });
    expect(head.kind).toBe(kind);
    expect(head.toBundle().params).toEqual(HEAD_REGISTRY[kind].options);
    expect(kindOptions(kind, head)).toEqual(HEAD_REGISTRY[kind].options);
  });

  it.each(HEAD_KINDS)('%s: fromBundle rebuilds what fit made', (kind) => {
    const entry = headKind(kind);
    const head = entry.fit(inputsOf(kind), data.trainLabels, { encoderFingerprint: 'e' });
    const back = entry.fromBundle(head.toBundle());
    expect(back.toBundle()).toEqual(head.toBundle());
    expect(loadHead(head.toBundle()).constructor).toBe(back.constructor);
  });

  it('headKind refuses anything that is not a kind, names included that objects inherit', () => {
    for (const bad of ['svm', 'toString', '__proto__', undefined, 3]) {
      expect(errOf(() => headKind(bad))).toBe(
        `MsnConfigError: kind must be 'linear', 'centroid', 'knn' or 'prototype-label', got ${JSON.stringify(bad)}.`,
      );
    }
    expect(errOf(() => headKind('svm', 'head'))).toMatch(/^MsnConfigError: head must be 'linear', /);
  });

  it("kindOptions picks the kind's own options that are set, nothing else", () => {
    const input = { l2: 0.5, k: 3, temperature: undefined, vote: 'majority', tol: 1e-3, encoderFingerprint: 'e' };
    expect(kindOptions('linear', input)).toEqual({ l2: 0.5 });
    expect(kindOptions('knn', input)).toEqual({ k: 3, vote: 'majority' });
    expect(kindOptions('centroid', input)).toEqual({});
  });

  it("a classifier imported with its examples refits with its head's own options (kindOptions of the loaded head)", () => {
    const clf = createFewShotClassifier({ head: 'knn', fingerprint: 'e', k: 3, vote: 'majority', temperature: 0.5 });
    data.trainLabels.forEach((label, i) => clf.addExamples(label, [data.train.data.slice(i * 5, (i + 1) * 5)]));
    const again = FewShotClassifier.import(clf.export({ includeExamples: true }));
    again.addExamples('a', [data.test.data.slice(0, 5)]);
    expect(again.fit().toBundle().params).toEqual({ k: 3, vote: 'majority', temperature: 0.5 });
  });
});
