/** Heads work on plain arrays: fitting, predicting, saving and loading allocate no TF.js tensors. */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { createFewShotClassifier, fitCentroidHead, fitKnnHead, fitLinearHead, loadHead, saveHead } from '../../src/heads/index.js';

describe('heads and numTensors', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('leave tf.memory().numTensors unchanged through fit, predict, save, load and the classifier', () => {
    const dim = 8;
    const feats = Float32Array.from({ length: 12 * dim }, (_, i) => Math.sin(i * 1.7) + (Math.floor(i / dim) % 3));
    const labels = Array.from({ length: 12 }, (_, i) => ['a', 'b', 'c'][i % 3]);
    const x = { data: feats, count: 12, dim };
    const before = tf.memory().numTensors;
    for (const h of [fitLinearHead(x, labels, { encoderFingerprint: 'f' }), fitCentroidHead(x, labels, { encoderFingerprint: 'f' }), fitKnnHead(x, labels, { encoderFingerprint: 'f', k: 3 })]) {
      const p = h.predict(x);
      const back = loadHead(saveHead(h), { expectedFingerprint: 'f' });
      expect(Array.from(back.predict(x).probabilities)).toEqual(Array.from(p.probabilities));
    }
    const c = createFewShotClassifier({ head: 'linear', fingerprint: 'f' });
    for (let i = 0; i < 12; i++) c.addExamples(labels[i], [feats.subarray(i * dim, (i + 1) * dim)]);
    c.fit();
    c.predict(x);
    c.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
