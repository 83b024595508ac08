import { describe, expect, it } from 'vitest';
import { FewShotClassifier, bundleToBytes, createFewShotClassifier } from '../../src/heads/index.js';
import type { FeatureMatrix } from '../../src/heads/index.js';
import { accuracy, errorName, makeClusters } from './helpers.js';

const classes = ['mug', 'plant', 'keyboard', 'lamp'];
const d = makeClusters({ seed: 31, classes, dim: 32, trainCount: 20, testCount: 200, noise: 1 });

/** The training examples of one label, as a matrix. */
function examplesOf(label: string): FeatureMatrix {
  const idx = d.trainLabels.flatMap((l, i) => (l === label ? [i] : []));
  const data = new Float32Array(idx.length * 32);
  idx.forEach((src, i) => data.set(d.train.data.subarray(src * 32, (src + 1) * 32), i * 32));
  return { data, count: idx.length, dim: 32 };
}

function filled(head: 'linear' | 'centroid' | 'knn') {
  const clf = createFewShotClassifier({ head, fingerprint: 'enc-1' });
  for (const label of classes) clf.addExamples(label, examplesOf(label));
  return clf;
}

describe.each(['linear', 'centroid', 'knn'] as const)('few-shot classifier (%s)', (head) => {
  it('adds, fits, predicts and lists labels', () => {
    const clf = filled(head);
    expect(clf.labels()).toEqual(classes);
    expect(clf.exampleCount('mug')).toBe(5);
    expect(clf.exampleCount()).toBe(20);
    expect(clf.fit().kind).toBe(head);
    const p = clf.predict(d.test);
    expect(p.classes).toEqual(classes);
    expect(accuracy(p.labels, d.testLabels)).toBeGreaterThan(0.95);
  });

  it('refits lazily after examples change, and removeLabel drops a class', () => {
    const clf = filled(head);
    const first = clf.fit();
    expect(clf.predict(d.test).classes).toEqual(classes);
    expect(clf.head).toBe(first);
    expect(clf.removeLabel('lamp')).toBe(true);
    expect(clf.removeLabel('lamp')).toBe(false);
    expect(clf.labels()).toEqual(['mug', 'plant', 'keyboard']);
    const p = clf.predict(d.test); // no explicit fit(): refits because examples changed
    expect(p.classes).toEqual(['mug', 'plant', 'keyboard']);
    expect(clf.head).not.toBe(first);
  });

  it('exports and imports with identical predictions', () => {
    const clf = filled(head);
    const before = clf.predict(d.test);
    for (const source of [clf.export(), JSON.stringify(clf.export()), bundleToBytes(clf.export())]) {
      const copy = FewShotClassifier.import(source, { expectedFingerprint: 'enc-1' });
      expect(copy.kind).toBe(head);
      expect(copy.labels()).toEqual(classes);
      expect(copy.predict(d.test)).toEqual(before);
      // Without its examples it can only predict.
      expect(errorName(() => copy.addExamples('cup', examplesOf('mug')))).toBe('MsnConfigError');
    }
    expect(errorName(() => FewShotClassifier.import(clf.export(), { expectedFingerprint: 'enc-2' }))).toBe('MsnConfigError');
  });

  it('keeps training after an import that includes the examples', () => {
    const clf = createFewShotClassifier({ head, fingerprint: 'enc-1' });
    for (const label of classes.slice(0, 3)) clf.addExamples(label, examplesOf(label));
    const bytes = bundleToBytes(clf.export({ includeExamples: true }));
    const copy = FewShotClassifier.import(bytes);
    expect(copy.exampleCount()).toBe(15);
    expect(copy.predict(d.test)).toEqual(clf.predict(d.test));
    copy.addExamples('lamp', examplesOf('lamp'));
    expect(copy.labels()).toEqual(classes);
    expect(accuracy(copy.predict(d.test).labels, d.testLabels)).toBeGreaterThan(0.95);
    // The refit equals fitting from scratch on the same examples.
    expect(copy.predict(d.test)).toEqual(filled(head).predict(d.test));
  });
});

describe('few-shot classifier errors', () => {
  it('needs two labels, consistent dims, and a valid configuration', () => {
    const clf = createFewShotClassifier({ head: 'linear', fingerprint: 'enc', l2: 0.01 });
    expect(errorName(() => clf.fit())).toBe('MsnValueError');
    clf.addExamples('mug', examplesOf('mug'));
    expect(() => clf.predict(d.test)).toThrow(/at least 2 labels; have 1 \('mug'\)/);
    expect(errorName(() => clf.addExamples('plant', [new Float32Array(31)]))).toBe('MsnShapeError');
    expect(errorName(() => clf.addExamples(3 as never, [new Float32Array(32)]))).toBe('MsnValueError');
    expect(errorName(() => createFewShotClassifier({ head: 'svm', fingerprint: 'x' } as never))).toBe('MsnConfigError');
    expect(errorName(() => createFewShotClassifier({ head: 'knn', fingerprint: '' }))).toBe('MsnConfigError');
  });

  it('applies its unknown threshold and can be disposed', () => {
    const clf = createFewShotClassifier({ head: 'centroid', fingerprint: 'enc', unknownThreshold: 0.999, unknownLabel: 'none' });
    for (const label of classes) clf.addExamples(label, examplesOf(label));
    const p = clf.predict(d.test);
    expect(p.labels).toContain('none');
    expect(clf.predict(d.test, { unknownThreshold: 0 }).labels).not.toContain('none');
    const copy = FewShotClassifier.import(clf.export());
    expect(copy.predict(d.test).labels).toEqual(p.labels);
    clf.dispose();
    expect(errorName(() => clf.predict(d.test))).toBe('MsnDisposedError');
  });
});
