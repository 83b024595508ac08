import { describe, expect, it } from 'vitest';
import {
  type AnyHead,
  type HeadBundle,
  bundleFromBytes,
  bundleToBytes,
  fitCentroidHead,
  fitKnnHead,
  fitLinearHead,
  loadHead,
  saveHead,
} from '../../src/heads/index.js';
import { TEN_CLASSES, errorName, makeClusters } from './helpers.js';

const data = makeClusters({ seed: 21, classes: TEN_CLASSES, dim: 48, trainCount: 60, testCount: 200, noise: 1.5 });
const fp = 'vit-tiny@sha256:abc123';
const heads: Record<string, () => AnyHead> = {
  linear: () => fitLinearHead(data.train, data.trainLabels, { encoderFingerprint: fp, unknownThreshold: 0.3 }),
  centroid: () => fitCentroidHead(data.train, data.trainLabels, { encoderFingerprint: fp, temperature: 0.2 }),
  knn: () => fitKnnHead(data.train, data.trainLabels, { encoderFingerprint: fp, k: 7, vote: 'majority' }),
};

describe.each(Object.keys(heads))('%s head bundle', (kind) => {
  const head = heads[kind]();
  const before = head.predict(data.test);

  it('records what is needed to predict', () => {
    const bundle = saveHead(head);
    expect(bundle).toMatchObject({
      format: 'msn-web/head',
      version: 1,
      kind,
      featureDim: 48,
      classes: TEN_CLASSES,
      preprocess: { centering: true, normalize: true },
      encoderFingerprint: fp,
    });
  });

  it('round-trips through JSON text and through bytes with identical predictions', () => {
    const json = JSON.stringify(saveHead(head));
    for (const loaded of [loadHead(json), loadHead(JSON.parse(json) as HeadBundle), loadHead(bundleToBytes(saveHead(head)))]) {
      expect(loaded.kind).toBe(kind);
      const after = loaded.predict(data.test);
      expect(after.labels).toEqual(before.labels);
      expect(after.classes).toEqual(before.classes);
      expect(after.probabilities).toEqual(before.probabilities);
      expect(loaded.toBundle()).toEqual(saveHead(head));
    }
  });

  it('checks the encoder fingerprint', () => {
    expect(loadHead(saveHead(head), { expectedFingerprint: fp }).encoderFingerprint).toBe(fp);
    const mismatch = () => loadHead(bundleToBytes(saveHead(head)), { expectedFingerprint: 'vit-small@sha256:def' });
    expect(errorName(mismatch)).toBe('MsnConfigError');
    expect(mismatch).toThrow(/fingerprint mismatch.*vit-tiny@sha256:abc123.*vit-small@sha256:def/);
  });
});

describe('corrupted bundles', () => {
  const head = heads.linear();
  const good = () => JSON.parse(JSON.stringify(saveHead(head))) as HeadBundle & Record<string, unknown>;
  const formatError = (source: unknown) => errorName(() => loadHead(source as HeadBundle));

  it('rejects bad objects and JSON with MsnFormatError', () => {
    expect(formatError('{"format": "msn-web/head", ')).toBe('MsnFormatError');
    expect(formatError('[1, 2, 3]')).toBe('MsnFormatError');
    expect(formatError(null)).toBe('MsnFormatError');
    const cases: Array<(b: ReturnType<typeof good>) => void> = [
      (b) => (b.version = 2 as never),
      (b) => (b.format = 'other' as never),
      (b) => (b.kind = 'svm' as never),
      (b) => (b.featureDim = 47),
      (b) => (b.featureDim = 0),
      (b) => (b.classes = ['only-one']),
      (b) => (b.classes = [...TEN_CLASSES.slice(0, 9), 'cat']),
      (b) => (b.preprocess = { centering: 'yes' } as never),
      (b) => (b.encoderFingerprint = ''),
      (b) => (b.arrays.weights.data[5] = Number.NaN),
      (b) => (b.arrays.weights.data[5] = null as never),
      (b) => (b.arrays.weights.data[5] = Number.POSITIVE_INFINITY),
      (b) => b.arrays.weights.data.pop(),
      (b) => (b.arrays.weights.shape = [48, 10]),
      (b) => delete (b.arrays as Record<string, unknown>).weights,
      (b) => (b.params.l2 = -1),
      (b) => (b.unknown = { threshold: 3, label: 'x' }),
      (b) => (b.unknown = { threshold: 0.5, label: 'cat' }),
    ];
    cases.forEach((corrupt, i) => {
      const b = good();
      corrupt(b);
      expect([i, formatError(b)]).toEqual([i, 'MsnFormatError']);
      expect([i, formatError(JSON.stringify(b))]).toEqual([i, 'MsnFormatError']);
    });
  });

  it('rejects damaged bytes with MsnFormatError', () => {
    const bytes = bundleToBytes(saveHead(head));
    expect(bundleFromBytes(bytes).classes).toEqual(TEN_CLASSES);
    const flipped = bytes.slice();
    flipped[bytes.length - 7] ^= 0x10; // inside the float payload
    const headerFlip = bytes.slice();
    headerFlip[40] ^= 0x01;
    const wrongMagic = bytes.slice();
    wrongMagic[0] = 0x4e;
    for (const damaged of [
      bytes.subarray(0, bytes.length - 4),
      bytes.subarray(0, 10),
      new Uint8Array(0),
      flipped,
      headerFlip,
      wrongMagic,
      new TextEncoder().encode(JSON.stringify(saveHead(head))),
    ]) {
      expect(errorName(() => loadHead(damaged))).toBe('MsnFormatError');
    }
  });

  it('rejects kNN label indices outside the classes', () => {
    const b = JSON.parse(JSON.stringify(saveHead(heads.knn()))) as HeadBundle;
    b.arrays.bankLabels.data[0] = 10;
    expect(errorName(() => loadHead(b))).toBe('MsnFormatError');
    b.arrays.bankLabels.data[0] = 0.5;
    expect(errorName(() => loadHead(b))).toBe('MsnFormatError');
  });
});
