/**
 * Tests written against the mutants that survived Stryker in
 * src/heads/prototype-label.ts (docs/TESTING.md lists them): the most likely
 * prototype is searched within the image's own row and ties go to the lower id,
 * a prototype that no labelled image puts weight on stays unlabelled (a zero
 * row, not NaN), named prototypes from a Map keep ascending id order, the
 * checks of names, assignments and bundles with their exact messages, and
 * bundles with unlabelled rows round-trip. Pure JavaScript on hand-made
 * assignments.
 */
import { describe, expect, it } from 'vitest';
import {
  type HeadBundle,
  PrototypeLabelHead,
  fitPrototypeLabelHead,
  loadHead,
  prototypeLabelHeadFromNames,
  saveHead,
} from '../../src/heads/index.js';
import { errOf } from './helpers.js';

const fp = 'sha256:proto';
const m = (dim: number, ...v: number[]) => ({ data: Float32Array.from(v), count: v.length / dim, dim });
const NOT_ASSIGNMENTS =
  ', but a prototype-label head takes prototype probabilities (each row non-negative, summing to 1), ' +
  'not encoder features: pass assignPrototypes(pixels, shape, { full: true }).full, or pixels through the client.';

describe('fitting: the most likely prototype of each image', () => {
  it('is searched within the image\'s own row', () => {
    // Image 0 chooses prototype 1 (0.5); the next row starts with 0.9, larger than 0.5.
    const head = fitPrototypeLabelHead(m(3, 0.2, 0.5, 0.3, 0.9, 0.05, 0.05), ['a', 'b'], { encoderFingerprint: fp });
    // Prototype 0: image 1 (b). Prototype 1: image 0 (a). Prototype 2: nobody's choice, weighted 0.3 a, 0.05 b.
    const expected = [0, 1, 1, 0, 0.3 / 0.35, 0.05 / 0.35];
    // float32 storage of the shares: 1e-6.
    head.labelMap.forEach((v, i) => expect(v).toBeCloseTo(expected[i], 6));
  });

  it('ties go to the lower prototype id', () => {
    const head = fitPrototypeLabelHead(m(3, 0.4, 0.4, 0.2, 0.1, 0.1, 0.8), ['a', 'b'], { encoderFingerprint: fp });
    // Prototype 0 is image 0's choice (a); prototype 1 nobody's: weighted 0.4 a, 0.1 b.
    const expected = [1, 0, 0.8, 0.2, 0, 1];
    head.labelMap.forEach((v, i) => expect(v).toBeCloseTo(expected[i], 6));
  });

  it('a prototype with no weight from any labelled image stays unlabelled: a zero row, uniform predictions', () => {
    const head = fitPrototypeLabelHead(m(3, 0.7, 0.3, 0, 0.2, 0.8, 0), ['a', 'b'], { encoderFingerprint: fp });
    expect(Array.from(head.labelMap.subarray(4))).toEqual([0, 0]);
    expect(Array.from(head.predict(m(3, 0, 0, 1)).probabilities)).toEqual([0.5, 0.5]);
    // And such a head round-trips through a bundle (a zero row is valid there).
    expect(loadHead(saveHead(head)).predict(m(3, 0.1, 0.1, 0.8))).toEqual(head.predict(m(3, 0.1, 0.1, 0.8)));
  });
});

describe('fitting and predicting: checks and their messages', () => {
  it('options and assignments name what is wrong', () => {
    expect(errOf(() => fitPrototypeLabelHead(m(2, 1, 0, 0, 1), ['a', 'b'], undefined as never))).toMatch(
      /^MsnConfigError: encoderFingerprint must be a non-empty string/,
    );
    expect(errOf(() => fitPrototypeLabelHead(m(2, 1, 0, 0, 1), ['a', 'b'], { encoderFingerprint: fp, temperature: 0 }))).toBe(
      'MsnConfigError: temperature must be a positive finite number, got 0.',
    );
    expect(errOf(() => fitPrototypeLabelHead({ data: [1, 0] as never, count: 1, dim: 2 }, ['a'], { encoderFingerprint: fp }))).toBe(
      'MsnValueError: assignments.data must be a Float32Array, got an Array of length 2.',
    );
  });

  it('a negative probability is refused even when its row sums to 1', () => {
    expect(errOf(() => fitPrototypeLabelHead(m(2, 1.25, -0.25, 0, 1), ['a', 'b'], { encoderFingerprint: fp }))).toBe(
      `MsnValueError: assignments[0][1] is -0.25${NOT_ASSIGNMENTS}`,
    );
    const head = prototypeLabelHeadFromNames({ 0: 'a', 1: 'b' }, { encoderFingerprint: fp, numPrototypes: 2 });
    expect(errOf(() => head.predict(m(2, 0.5, 0.5, -0.5, 1.5)))).toBe(`MsnValueError: assignments[1][0] is -0.5${NOT_ASSIGNMENTS}`);
    expect(errOf(() => head.predict(m(2, 0.5, 0.4)))).toBe(`MsnValueError: row 0 sums to ${Math.fround(0.5) + Math.fround(0.4)}${NOT_ASSIGNMENTS}`);
    expect(errOf(() => head.predict({ data: [0.5, 0.5] as never, count: 1, dim: 2 }))).toBe(
      'MsnValueError: assignments.data must be a Float32Array, got an Array of length 2.',
    );
    // Exact zeros are valid probabilities.
    expect(head.predict(m(2, 0, 1)).labels).toEqual(['b']);
  });
});

describe('named prototypes', () => {
  const o = { encoderFingerprint: fp, numPrototypes: 4 };

  it('a Map in any insertion order gives classes by ascending prototype id', () => {
    const head = prototypeLabelHeadFromNames(new Map([[3, 'seven'], [2, 'two'], [0, 'zero']]), o);
    expect(head.classes).toEqual(['zero', 'two', 'seven']);
    expect(Array.from(head.labelMap)).toEqual([1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]);
  });

  it('names, ids, labels and options are checked with messages that say what to pass', () => {
    expect(errOf(() => prototypeLabelHeadFromNames('ab' as never, o))).toBe(
      'MsnValueError: prototype names must be an object or Map of prototype id -> label, e.g. { 3: "seven", 12: "one" }.',
    );
    expect(errOf(() => prototypeLabelHeadFromNames({ 4: 'x', 0: 'y' }, o))).toBe(
      'MsnValueError: prototype id "4" is not an integer from 0 to 3 (the model has 4 prototypes).',
    );
    expect(errOf(() => prototypeLabelHeadFromNames(new Map([[0, 'y'], [-1, 'x']]), o))).toBe(
      'MsnValueError: prototype id -1 is not an integer from 0 to 3 (the model has 4 prototypes).',
    );
    expect(errOf(() => prototypeLabelHeadFromNames({ 0: 'y', 2: 5 } as never, o))).toBe('MsnValueError: the label of prototype 2 must be a string, got number.');
    expect(errOf(() => prototypeLabelHeadFromNames({ 0: 'x', 1: 'y' }, { ...o, numPrototypes: 2.5 }))).toBe(
      'MsnConfigError: numPrototypes must be a positive integer, got 2.5.',
    );
    expect(errOf(() => prototypeLabelHeadFromNames({ 0: 'x', 1: 'y' }, { ...o, temperature: Infinity }))).toBe(
      'MsnConfigError: temperature must be a positive finite number, got Infinity.',
    );
    expect(errOf(() => prototypeLabelHeadFromNames({ 0: 'x', 1: 'y' }, undefined as never))).toMatch(
      /^MsnConfigError: encoderFingerprint must be a non-empty string/,
    );
  });
});

describe('PrototypeLabelHead bundles', () => {
  /** K = 3, classes a and b, prototype 2 unnamed (a zero row). */
  const base = () =>
    JSON.parse(JSON.stringify(saveHead(prototypeLabelHeadFromNames({ 0: 'a', 1: 'b' }, { encoderFingerprint: fp, numPrototypes: 3 })))) as HeadBundle;
  const load = (patch: (b: HeadBundle) => void) => {
    const b = base();
    patch(b);
    return errOf(() => loadHead(b));
  };
  const direct = (patch: (b: HeadBundle) => void) => {
    const b = base();
    patch(b);
    return errOf(() => PrototypeLabelHead.fromBundle(b));
  };

  it('a bundle with an unlabelled prototype round-trips', () => {
    const b = base();
    expect(b.arrays.labelMap.data).toEqual([1, 0, 0, 1, 0, 0]);
    const q = m(3, 0.2, 0.3, 0.5);
    expect(loadHead(b).predict(q)).toEqual(prototypeLabelHeadFromNames({ 0: 'a', 1: 'b' }, { encoderFingerprint: fp, numPrototypes: 3 }).predict(q));
  });

  it('labelMap must be [featureDim, classes]; the message gives the shape found', () => {
    const msg = (got: string) => `MsnFormatError: prototype-label bundle needs arrays.labelMap of shape [3, 2] (prototypes x classes), got ${got}.`;
    expect(load((b) => (b.arrays.labelMap.shape = [6]))).toBe(msg('[6]'));
    expect(load((b) => (b.arrays.labelMap.shape = [3, 2, 1]))).toBe(msg('[3, 2, 1]'));
    expect(load((b) => (b.arrays.labelMap = { shape: [4, 2], data: [1, 0, 0, 1, 0, 0, 0, 0] }))).toBe(msg('[4, 2]'));
    expect(load((b) => (b.arrays.labelMap = { shape: [3, 3], data: [1, 0, 0, 0, 1, 0, 0, 0, 0] }))).toBe(msg('[3, 3]'));
    expect(direct((b) => delete (b.arrays as Record<string, unknown>).labelMap)).toBe(msg('none'));
  });

  it('preprocess must be off on both counts', () => {
    const msg = 'MsnFormatError: prototype-label bundle must have preprocess { centering: false, normalize: false }: its inputs are probabilities.';
    expect(load((b) => (b.preprocess = { centering: true, normalize: false }))).toBe(msg);
    expect(load((b) => (b.preprocess = { centering: false, normalize: true }))).toBe(msg);
  });

  it('each share is in [0, 1], even in a row that sums to 1', () => {
    expect(load((b) => (b.arrays.labelMap.data = [1.5, -0.5, 0, 1, 0, 0]))).toBe(
      'MsnFormatError: prototype-label bundle arrays.labelMap[0, 0] is 1.5, not a share in [0, 1].',
    );
    expect(load((b) => (b.arrays.labelMap.data = [1, 0, -0.5, 1.5, 0, 0]))).toBe(
      'MsnFormatError: prototype-label bundle arrays.labelMap[1, 0] is -0.5, not a share in [0, 1].',
    );
    // NaN cannot come through loadHead's generic checks; fromBundle refuses it too.
    expect(direct((b) => (b.arrays.labelMap.data = [1, 0, 0, 1, Number.NaN, 0]))).toBe(
      'MsnFormatError: prototype-label bundle arrays.labelMap[2, 0] is NaN, not a share in [0, 1].',
    );
  });

  it('rows sum to 1 or 0, and at least one prototype is labelled', () => {
    expect(load((b) => (b.arrays.labelMap.data = [1, 0, 0.5, 0.25, 0, 0]))).toBe(
      'MsnFormatError: prototype-label bundle arrays.labelMap row 1 sums to 0.75; each row must sum to 1 (labelled) or 0 (unlabelled).',
    );
    expect(load((b) => (b.arrays.labelMap.data = [0, 0, 0, 0, 0, 0]))).toBe(
      'MsnFormatError: prototype-label bundle labels no prototype (arrays.labelMap is all zero).',
    );
    // One labelled row is enough.
    expect(load((b) => (b.arrays.labelMap.data = [0, 0, 0.5, 0.5, 0, 0]))).toBe('no error');
  });

  it('params.temperature must be a number > 0', () => {
    expect(load((b) => (b.params.temperature = 0))).toBe('MsnFormatError: prototype-label bundle params.temperature must be > 0, got 0.');
    // A string would pass `> 0` by coercion.
    expect(load((b) => (b.params.temperature = '0.1'))).toBe('MsnFormatError: prototype-label bundle params.temperature must be > 0, got 0.1.');
    expect(load((b) => delete (b.params as Record<string, unknown>).temperature)).toBe(
      'MsnFormatError: prototype-label bundle params.temperature must be > 0, got undefined.',
    );
  });
});
