/**
 * The engine's embedder on its own (no MsnEngine): the one embedding loop
 * gives embedImages' features, passes split as asked, assignments are
 * probabilities, a lent encoder replaces the base one and gives it back, and
 * numTensors stays flat.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { VisionTransformer } from '../../src/model/vit.js';
import { initPrototypes } from '../../src/model/params.js';
import { embedImages } from '../../src/embed/embed.js';
import { Embedder } from '../../src/runtime/embedder.js';
import { checkPixels, pixelBatch } from '../../src/runtime/pixels.js';
import { TINY, images, shape, rejection } from './helpers.js';

const preprocess = { mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3] };

function embedder(seed = 1, withPrototypes = true): Embedder {
  const model = VisionTransformer.create(TINY, { seed });
  return new Embedder(model, { prototypes: withPrototypes ? initPrototypes(TINY, seed + 1) : undefined, preprocess });
}

describe('Embedder', () => {
  beforeAll(async () => {
    await useBackend('wasm');
  });

  it('embeds like embedImages over the same images, whatever the pass size', async () => {
    const e = embedder();
    const src = checkPixels(images(5), shape(5));
    const all = await e.embed(src);
    const inTwos = await e.embed(src, { batchSize: 2 });
    const want = await embedImages(e.encoder, { count: 5, batch: (idx, ch) => pixelBatch(src, idx, ch, TINY.imgSize) }, { ...preprocess, batchSize: 3 });
    expect(all.length).toBe(5 * TINY.embedDim);
    expect(inTwos).toEqual(all);
    expect(want).toEqual(all);
    const unit = await e.embed(src, { l2Normalize: true, feature: 'post' });
    expect(Math.hypot(...unit.subarray(0, TINY.embedDim))).toBeCloseTo(1, 5);
    e.dispose();
  });

  it('refuses a bad batchSize, feature or missing prototypes before any work', async () => {
    const e = embedder(1, false);
    const src = checkPixels(images(2), shape(2));
    expect((await rejection(e.embed(src, { batchSize: 0 }))).name).toBe('MsnValueError');
    expect((await rejection(e.embed(src, { feature: 'mid' as 'pre' }))).name).toBe('MsnValueError');
    expect((await rejection(e.assign(src))).name).toBe('MsnConfigError');
    e.dispose();
  });

  it('assigns each image a probability distribution over the prototypes, top-k first', async () => {
    const e = embedder();
    const a = await e.assign(checkPixels(images(4), shape(4)), { topK: 3, full: true });
    expect(a.count).toBe(4);
    expect(a.numPrototypes).toBe(TINY.numPrototypes);
    for (let i = 0; i < 4; i++) {
      const row = a.full!.subarray(i * TINY.numPrototypes, (i + 1) * TINY.numPrototypes);
      expect(row.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 5);
      expect(a.probs[i * 3]).toBe(Math.max(...row));
      expect(a.probs[i * 3]).toBeGreaterThanOrEqual(a.probs[i * 3 + 1]);
    }
    expect((await rejection(e.assign(checkPixels(images(1), shape(1)), { topK: TINY.numPrototypes + 1 }))).name).toBe('MsnValueError');
    expect((await rejection(e.assign(checkPixels(images(1), shape(1)), { temperature: 0 }))).name).toBe('MsnValueError');
    e.dispose();
  });

  it('uses a lent encoder and its prototypes until it is given back; the fingerprint follows', async () => {
    const e = embedder(1);
    const other = VisionTransformer.create(TINY, { seed: 7 });
    const protos = tf.tensor2d(initPrototypes(TINY, 8), [TINY.numPrototypes, TINY.outputDim]);
    const src = checkPixels(images(3), shape(3));
    const baseFeats = await e.embed(src);
    const baseFp = await e.fingerprint();
    e.follow({ encoder: other, prototypes: protos, preprocess: { mean: [0, 0, 0], std: [1, 1, 1] } });
    expect(e.encoder).toBe(other);
    expect(e.preprocess.mean).toEqual([0, 0, 0]);
    expect(await e.fingerprint()).not.toBe(baseFp);
    expect(await e.embed(src)).not.toEqual(baseFeats);
    await e.assign(src);
    expect(protos.isDisposed).toBe(false); // lent: the embedder never frees it
    e.follow(undefined);
    expect(await e.fingerprint()).toBe(baseFp);
    expect(await e.embed(src)).toEqual(baseFeats);
    // Once the base is released only a lent encoder remains.
    e.follow({ encoder: other, prototypes: protos, preprocess });
    e.releaseBase();
    expect(e.basePrototypes).toBeUndefined();
    e.follow(undefined);
    expect(() => e.encoder).toThrow(/not initialised/);
    e.dispose();
    other.dispose();
    protos.dispose();
  });

  it('keeps numTensors flat across calls and frees its model on dispose', async () => {
    const start = tf.memory().numTensors;
    const e = embedder();
    const src = checkPixels(images(6), shape(6));
    await e.warmUp();
    await e.embed(src, { batchSize: 4 });
    await e.assign(src, { full: true });
    const before = tf.memory().numTensors;
    await e.embed(src, { batchSize: 4 });
    await e.assign(src, { batchSize: 5, full: true });
    await e.fingerprint();
    expect(tf.memory().numTensors).toBe(before);
    e.dispose();
    e.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });
});
