/**
 * src/image/preprocess.ts, the one path from stored pixels to model input
 * (inference and pretraining both take it): values against a hand
 * computation, the channel rules, the index check, and no tensor left behind.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { gatherPixels, normalizePixels, pixelsToTensor, type StoredPixels } from '../../src/image/preprocess.js';
import { checkPixels, pixelBatch } from '../../src/runtime/pixels.js';
import { datasetFromPixels } from '../../src/pretrain/source.js';
import { MsnValueError } from '../../src/errors.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const f = Math.fround;
const stored = (pixels: ArrayLike<number>, count: number, height: number, width: number, channels: number, range: number): StoredPixels => ({
  pixels, count, height, width, channels, range,
});

describe('gatherPixels', () => {
  it('bytes: the images named by indices, in that order, each value / 255', () => {
    // two 1x2 RGB images
    const src = stored(new Uint8Array([0, 51, 102, 153, 204, 255, 10, 20, 30, 40, 50, 60]), 2, 1, 2, 3, 255);
    const out = gatherPixels(src, new Int32Array([1, 0, 1]), 3);
    const img1 = [10, 20, 30, 40, 50, 60].map((v) => f(v * (1 / 255)));
    const img0 = [0, f(51 / 255), f(102 / 255), f(153 / 255), f(204 / 255), 1];
    expect(Array.from(out)).toEqual([...img1, ...img0, ...img1]);
  });

  it('floats in [0, 1] pass unchanged; 0-255 floats are scaled', () => {
    expect(Array.from(gatherPixels(stored(new Float32Array([0.25, 0.75]), 1, 1, 2, 1, 1), new Int32Array([0]), 1))).toEqual([0.25, 0.75]);
    expect(Array.from(gatherPixels(stored(new Float32Array([51, 255]), 1, 1, 2, 1, 255), new Int32Array([0]), 1))).toEqual([f(51 / 255), 1]);
  });

  it('gray is repeated into each output channel; RGBA drops alpha', () => {
    const gray = stored(new Uint8Array([255, 0]), 1, 1, 2, 1, 255);
    expect(Array.from(gatherPixels(gray, new Int32Array([0]), 3))).toEqual([1, 1, 1, 0, 0, 0]);
    const rgba = stored(new Uint8Array([255, 0, 51, 7, 0, 255, 0, 9]), 1, 1, 2, 4, 255);
    expect(Array.from(gatherPixels(rgba, new Int32Array([0]), 3))).toEqual([1, 0, f(51 / 255), 0, 1, 0]);
  });

  it('an index outside 0..count-1 is a MsnValueError naming it', () => {
    const src = stored(new Uint8Array(6), 3, 1, 2, 1, 255);
    for (const i of [3, -1]) {
      expect(() => gatherPixels(src, new Int32Array([0, i]), 1)).toThrow(MsnValueError);
      expect(() => gatherPixels(src, new Int32Array([i]), 1)).toThrow(`Image index ${i} is out of range 0..2.`);
    }
  });
});

describe('normalizePixels', () => {
  it('(x - mean) / std per channel, as float32 computes it', async () => {
    const x = tf.tensor4d([0, 0.5, 1, 0.25, 0.75, 0.1], [1, 1, 2, 3]);
    const mean = [0.485, 0.456, 0.406];
    const std = [0.229, 0.224, 0.225];
    const y = normalizePixels(x, mean, std);
    const want = [0, 0.5, 1, 0.25, 0.75, 0.1].map((v, i) => f(f(f(v) - f(mean[i % 3])) / f(std[i % 3])));
    expect(Array.from(await y.data())).toEqual(want);
    expect(y.shape).toEqual([1, 1, 2, 3]);
    tf.dispose([x, y]);
  });

  it('leaves nothing behind but its result, call after call', () => {
    const src = stored(new Uint8Array(4 * 8 * 8), 4, 8, 8, 1, 255);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) {
      const raw = pixelsToTensor(src, new Int32Array([0, 1, 2, 3]), 3);
      const x = normalizePixels(raw, [0.5, 0.5, 0.5], [0.2, 0.2, 0.2]);
      expect(tf.memory().numTensors).toBe(before + 2);
      tf.dispose([raw, x]);
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('inference and pretraining share the conversion', () => {
  it('pixelBatch and an ImageDataset batch of the same images are equal (gray to RGB)', async () => {
    const bytes = Uint8Array.from({ length: 3 * 4 * 4 }, (_, i) => (i * 37) % 256);
    const idx = new Int32Array([2, 0]);
    const a = pixelBatch(checkPixels(bytes, { count: 3, height: 4, width: 4, channels: 1 }), idx, 3);
    const b = datasetFromPixels(bytes, 3, 4, 4, 1).batch(idx, 3);
    expect(a.shape).toEqual([2, 4, 4, 3]);
    expect(Array.from(await a.data())).toEqual(Array.from(await b.data()));
    tf.dispose([a, b]);
  });

  it('pixelBatch with a resize leaves only its result', () => {
    const src = checkPixels(new Uint8Array(2 * 6 * 6), { count: 2, height: 6, width: 6, channels: 1 });
    const before = tf.memory().numTensors;
    const t = pixelBatch(src, new Int32Array([0, 1]), 3, 4);
    expect(t.shape).toEqual([2, 4, 4, 3]);
    expect(tf.memory().numTensors).toBe(before + 1);
    t.dispose();
  });
});
