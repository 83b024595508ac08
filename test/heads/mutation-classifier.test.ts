/**
 * FewShotClassifier bookkeeping found untested by mutation testing
 * (docs/TESTING.md, heads: classifier): constructor checks and messages,
 * empty additions, removing labels (feature size reset, head kept when
 * nothing changed), classifiers imported without examples, import without a
 * refit, and the messages that say what to do. Pure JavaScript, fixed data.
 */
import { describe, expect, it } from 'vitest';
import { FewShotClassifier, createFewShotClassifier } from '../../src/heads/index.js';
import { errOf } from './helpers.js';


const row = (...v: number[]) => Float32Array.from(v);
/** Two separable labels of 3 features. */
function filled() {
  const clf = createFewShotClassifier({ head: 'centroid', fingerprint: 'enc@1' });
  clf.addExamples('a', [row(1, 0, 0), row(0.9, 0.1, 0)]);
  clf.addExamples('b', [row(0, 1, 0), row(0, 0.9, 0.1)]);
  return clf;
}

describe('FewShotClassifier bookkeeping', () => {
  it('the constructor names what is wrong', () => {
    expect(errOf(() => new FewShotClassifier(undefined as never))).toBe(
      "MsnConfigError: head must be 'linear', 'centroid', 'knn' or 'prototype-label', got undefined.",
    );
    expect(errOf(() => createFewShotClassifier({ head: 'svm', fingerprint: 'x' } as never))).toMatch(/got "svm"\.$/);
    expect(errOf(() => createFewShotClassifier({ head: 'knn', fingerprint: '' }))).toMatch(/^MsnConfigError: fingerprint must be a non-empty string/);
    expect(errOf(() => createFewShotClassifier({ head: 'knn', fingerprint: 'x', unknownThreshold: 2 }))).toMatch(/^MsnConfigError: unknownThreshold must be a number in \[0, 1\]/);
  });

  it('kind and fingerprint, also after an import', () => {
    const clf = filled();
    expect([clf.kind, clf.fingerprint]).toEqual(['centroid', 'enc@1']);
    const copy = FewShotClassifier.import(clf.export());
    expect([copy.kind, copy.fingerprint]).toEqual(['centroid', 'enc@1']);
  });

  it('adding no examples changes nothing and reports the count', () => {
    const clf = filled();
    expect(clf.addExamples('c', [])).toBe(0);
    expect(clf.addExamples('a', [])).toBe(2);
    expect(clf.labels()).toEqual(['a', 'b']);
    expect(clf.exampleCount('c')).toBe(0);
    expect(clf.exampleCount()).toBe(4);
    expect(errOf(() => clf.addExamples(5 as never, [row(1, 0, 0)]))).toBe('MsnValueError: label must be a string, got number.');
  });

  it('removing a label: the feature size resets only when no example is left; a missing label keeps the fitted head', () => {
    const clf = filled();
    clf.predict([row(1, 0, 0)]);
    const head = clf.head;
    expect(clf.removeLabel('nope')).toBe(false);
    clf.predict([row(1, 0, 0)]);
    expect(clf.head).toBe(head); // nothing changed: no refit
    expect(clf.removeLabel('a')).toBe(true);
    expect(errOf(() => clf.addExamples('c', [row(1, 0)]))).toMatch(/^MsnShapeError: /); // b still has 3 features
    expect(clf.removeLabel('b')).toBe(true);
    expect(clf.addExamples('c', [row(1, 0)])).toBe(1); // nothing left: any size again
    expect(clf.exampleCount()).toBe(1);
  });

  it('fit() with fewer than 2 labels says which labels there are and what to do', () => {
    const clf = createFewShotClassifier({ head: 'knn', fingerprint: 'enc@1', k: 1 });
    expect(errOf(() => clf.fit())).toBe('MsnValueError: fit() needs examples of at least 2 labels; have 0. Add examples with addExamples(label, features).');
    clf.addExamples('a', [row(1, 0)]);
    expect(errOf(() => clf.fit())).toBe("MsnValueError: fit() needs examples of at least 2 labels; have 1 ('a'). Add examples with addExamples(label, features).");
    const three = filled();
    three.removeLabel('b');
    three.addExamples('x', [row(0, 0, 1)]);
    three.removeLabel('x');
    three.addExamples('y', [row(0, 0, 1)]);
    three.removeLabel('y');
    expect(errOf(() => three.fit())).toMatch(/have 1 \('a'\)\./);
  });

  it('an import with its examples keeps the stored head until the examples change', () => {
    const clf = filled();
    const copy = FewShotClassifier.import(clf.export({ includeExamples: true }));
    const head = copy.head;
    expect(head).toBeDefined();
    copy.predict([row(1, 0, 0)]);
    expect(copy.head).toBe(head);
    copy.addExamples('a', [row(0.8, 0.2, 0)]);
    copy.predict([row(1, 0, 0)]);
    expect(copy.head).not.toBe(head);
  });

  it('an import without examples predicts, lists its classes, refits to itself and refuses changes', () => {
    const copy = FewShotClassifier.import(filled().export());
    const head = copy.head;
    expect(copy.labels()).toEqual(['a', 'b']);
    expect(copy.exampleCount()).toBe(0);
    expect(copy.exampleCount('a')).toBe(0);
    expect(copy.fit()).toBe(head);
    expect(copy.predict([row(1, 0, 0)]).labels).toEqual(['a']);
    expect(errOf(() => copy.addExamples('a', [row(1, 0, 0)]))).toBe(
      'MsnConfigError: This classifier was imported without its examples, so it cannot be refitted; export it with { includeExamples: true } to keep training after import.',
    );
    expect(errOf(() => copy.removeLabel('a'))).toBe('MsnConfigError: This classifier was imported without its examples; it cannot be changed.');
  });

  it('a disposed classifier says so', () => {
    const clf = filled();
    clf.dispose();
    for (const call of [() => clf.labels(), () => clf.fit(), () => clf.addExamples('a', [row(1, 0, 0)])]) {
      expect(errOf(call)).toBe('MsnDisposedError: This FewShotClassifier was disposed.');
    }
  });
});
