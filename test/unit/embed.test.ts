/** Embedding and fingerprints: features equal the encoder's CLS, memory stays flat, fingerprints tell encoders apart. */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { VisionTransformer } from '../../src/model/vit.js';
import { initWeights } from '../../src/model/params.js';
import { embedImages } from '../../src/embed/embed.js';
import { encoderFingerprint } from '../../src/embed/fingerprint.js';

import { fitLinearHead } from '../../src/heads/index.js';
import { TINY, structuredImages } from '../pretrain/helpers.js';

const cfg = TINY.model!;
const norm = { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };

describe('embedImages', () => {
  beforeAll(async () => {
    await useBackend('wasm');
  });

  it('returns the last-block CLS before the final norm of normalised images, in batches', async () => {
    const vit = VisionTransformer.create(cfg, { seed: 3 });
    const data = structuredImages(10, 4);
    const feats = await embedImages(vit, data, { ...norm, batchSize: 4 });
    expect(feats.length).toBe(10 * cfg.embedDim);
    const direct = tf.tidy(() => {
      const x = data.batch(Int32Array.from({ length: 10 }, (_, i) => i), 3);
      return vit.encode(tf.div(tf.sub(x, 0.5), 0.25) as tf.Tensor4D).clsPre.dataSync();
    });
    for (let i = 0; i < feats.length; i++) expect(Math.abs(feats[i] - direct[i])).toBeLessThanOrEqual(1e-6 + 1e-5 * Math.abs(direct[i]));
    const unit = await embedImages(vit, data, { ...norm, l2Normalize: true }, Int32Array.from([2, 7]));
    const n = Math.hypot(...unit.subarray(0, cfg.embedDim));
    expect(n).toBeCloseTo(1, 5);
    vit.dispose();
  });

  it('leaves numTensors unchanged', async () => {
    const vit = VisionTransformer.create(cfg, { seed: 3 });
    const data = structuredImages(9, 4);
    await embedImages(vit, data, norm);
    const before = tf.memory().numTensors;
    await embedImages(vit, data, { ...norm, batchSize: 2, l2Normalize: true });
    expect(tf.memory().numTensors).toBe(before);
    vit.dispose();
  });

  it('feeds a linear head that separates generated shapes far above chance', async () => {
    // random-init features of 4 structured kinds: a sanity check of the plumbing, not of MSN
    const vit = VisionTransformer.create(cfg, { seed: 3 });
    const data = structuredImages(80, 5);
    const feats = await embedImages(vit, data, norm);
    const labels = Array.from({ length: 80 }, (_, i) => `k${i % 4}`);
    const head = fitLinearHead({ data: feats.subarray(0, 40 * cfg.embedDim), count: 40, dim: cfg.embedDim }, labels.slice(0, 40), { encoderFingerprint: 'x' });
    const pred = head.predict({ data: feats.subarray(40 * cfg.embedDim), count: 40, dim: cfg.embedDim });
    const acc = pred.labels.filter((l, i) => l === labels[40 + i]).length / 40;
    expect(acc).toBeGreaterThan(0.5); // chance is 0.25
    vit.dispose();
  });

  it('rejects mean/std of the wrong length', async () => {
    const vit = VisionTransformer.create(cfg, { seed: 3 });
    await expect(embedImages(vit, structuredImages(2, 1), { mean: [0.5], std: [0.5] })).rejects.toMatchObject({ name: 'MsnShapeError' });
    vit.dispose();
  });
});

describe('encoderFingerprint', () => {
  it('is stable for equal weights and changes when one weight changes', async () => {
    const w = initWeights(cfg, 1);
    const a = await encoderFingerprint(cfg, w.params);
    expect(await encoderFingerprint(cfg, initWeights(cfg, 1).params)).toBe(a);
    w.params['norm.weight'].data[0] += 1e-3;
    expect(await encoderFingerprint(cfg, w.params)).not.toBe(a);
    expect(a).toMatch(/^sha256:[0-9a-f]{32}$/);
  });
});

