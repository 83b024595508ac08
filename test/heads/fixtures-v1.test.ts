/**
 * Heads saved in the first byte format ("MSNHEAD1", saveHead's bytes up to
 * commit 3f4be0f) still load and predict exactly as they did. The fixtures and
 * the predictions in expected.json were made by that commit's code
 * (test/fixtures/heads-v1/make.ts); saving them again writes the tensor
 * container, which must predict the same.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FewShotClassifier, type HeadBundle, type Prediction, bundleToBytes, loadHead, readBundle } from '../../src/heads/index.js';
import { errOf } from './helpers.js';
import { writeV1 } from './v1-writer.js';

const dir = new URL('../fixtures/heads-v1/', import.meta.url);
interface Expected {
  kind: string;
  query: { count: number; dim: number; data: number[] };
  labels: string[];
  classes: string[];
  probabilities: number[];
  topIndex: number[];
}
const { fingerprint, heads } = JSON.parse(readFileSync(new URL('expected.json', dir), 'utf8')) as {
  fingerprint: string;
  heads: Record<string, Expected>;
};
const bytesOf = (name: string) => new Uint8Array(readFileSync(new URL(`${name}.msnhead`, dir)));
const query = (e: Expected) => ({ data: Float32Array.from(e.query.data), count: e.query.count, dim: e.query.dim });

function expectSame(p: Prediction, e: Expected): void {
  expect(p.classes).toEqual(e.classes);
  expect(p.labels).toEqual(e.labels);
  // Exact: the same float32 weights through the same arithmetic.
  expect(Array.from(p.probabilities)).toEqual(e.probabilities);
  expect(Array.from(p.topIndex)).toEqual(e.topIndex);
}

describe('heads saved as version-1 bytes', () => {
  it('there is one fixture per head kind', () => {
    expect(new Set(Object.values(heads).map((e) => e.kind))).toEqual(new Set(['linear', 'centroid', 'knn', 'prototype-label']));
  });

  describe.each(Object.keys(heads))('%s', (name) => {
    const e = heads[name];
    const bytes = bytesOf(name);

    it('are version-1 bytes, and the test writer reproduces them exactly', () => {
      expect(new TextDecoder().decode(bytes.subarray(0, 8))).toBe('MSNHEAD1');
      expect(writeV1(readBundle(bytes))).toEqual(bytes);
    });

    it('load and predict exactly as when they were saved', () => {
      const head = loadHead(bytes, { expectedFingerprint: fingerprint });
      expect(head.kind).toBe(e.kind);
      expectSame(head.predict(query(e)), e);
    });

    it('refuse another encoder before decoding', () => {
      expect(errOf(() => loadHead(bytes, { expectedFingerprint: 'other' }))).toMatch(/^MsnConfigError: Encoder fingerprint mismatch/);
    });

    it('saved again, are a tensor container that predicts the same', () => {
      const again = bundleToBytes(readBundle(bytes));
      expect(new TextDecoder().decode(again.subarray(0, 8))).toBe('MSNCKPT1');
      expect(readBundle(again)).toEqual(readBundle(bytes));
      expectSame(loadHead(again, { expectedFingerprint: fingerprint }).predict(query(e)), e);
    });
  });

  it('a few-shot classifier exported with its examples keeps them, and refits to the same head', () => {
    const e = heads['knn-with-examples'];
    const clf = FewShotClassifier.import(bytesOf('knn-with-examples'), { expectedFingerprint: fingerprint });
    expect(clf.exampleCount()).toBe(12);
    expectSame(clf.predict(query(e)), e);
    const exported: HeadBundle = clf.export({ includeExamples: true });
    expect(writeV1(exported)).toEqual(bytesOf('knn-with-examples'));
    clf.addExamples('cat', [Float32Array.from(e.query.data.slice(0, 6))]);
    clf.removeLabel('cat');
    // Refitted from the stored examples (the cat examples are gone): still a 2-neighbour majority vote.
    expect(clf.fit().toBundle().params).toEqual({ k: 2, vote: 'majority', temperature: 0.07 });
  });
});
