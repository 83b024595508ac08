/**
 * src/model/validate.ts and pos-embed.ts cases found by mutation testing
 * (issue #18, docs/TESTING.md, "model: pos-embed and validate"): what reaches
 * the encoder that is not a tensor, images exactly one patch in size or
 * narrower than one, keepPatches that is not an array or keeps every patch;
 * the 1-D bicubic matrix on its own (the 2-D resize multiplies two of them,
 * so a sign error in both cancels there).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { PRESETS, VitConfig } from '../../src/model/config.js';
import { VisionTransformer } from '../../src/model/vit.js';
import { assertImages } from '../../src/model/validate.js';
import { bicubicMatrix1d } from '../../src/model/pos-embed.js';
import { catchError } from '../io/container-test-helpers.js';

const CFG: VitConfig = { ...PRESETS['micro-p4-28'], depth: 1, embedDim: 16, numHeads: 2, hiddenDim: 32, outputDim: 8, numPrototypes: 6 };

describe('encoder input checks (validate.ts)', () => {
  let m: VisionTransformer;
  beforeAll(async () => {
    await useBackend('cpu');
    m = VisionTransformer.create(CFG, { seed: 0 });
  });

  it('something that is not a tensor: MsnValueError naming the argument and the expected shape', () => {
    for (const bad of [[[1, 2]], null, { shape: [1, 28, 28, 3] }]) {
      const e = catchError(() => m.encode(bad as unknown as tf.Tensor4D));
      expect(e.name).toBe('MsnValueError');
      expect(e.message).toBe('images: expected a tf.Tensor of shape [batch, height, width, 3].');
    }
    const named = catchError(() => assertImages([] as unknown as tf.Tensor, CFG, 'anchors'));
    expect(named.message).toBe('anchors: expected a tf.Tensor of shape [batch, height, width, 3].');
  });

  it('one patch is the smallest image: 4x4 px passes, 3 px in either direction does not', () => {
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      expect(() => assertImages(tf.zeros([1, 4, 4, 3]), { ...CFG, imgSize: 4 })).not.toThrow();
      for (const shape of [[1, 4, 3, 3], [1, 3, 4, 3]]) {
        const e = catchError(() => assertImages(tf.zeros(shape), CFG));
        expect(e.name).toBe('MsnShapeError');
        expect(e.message).toBe(`images: ${shape[1]}x${shape[2]} px is smaller than one 4x4 patch; resize images to at least 4 px.`);
      }
    });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('keepPatches must be an array of indices; keeping every patch is allowed', () => {
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const x = tf.randomNormal([2, 28, 28, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
      for (const bad of [null, 5, { 0: 1 }]) {
        const e = catchError(() => m.encode(x, { keepPatches: bad as unknown as number[] }));
        expect(e.name).toBe('MsnValueError');
        expect(e.message).toBe('keepPatches: expected an array of patch indices.');
      }
      const n = (28 / 4) ** 2;
      const all = Array.from({ length: n }, (_, i) => i);
      const kept = m.encode(x, { keepPatches: all });
      const plain = m.encode(x);
      // Every patch kept in order: the same tokens as no masking, bit for bit (the selection product's
      // rows are one-hot, so each picked value is 1 x itself plus zeros).
      expect(Array.from(kept.clsPre.dataSync())).toEqual(Array.from(plain.clsPre.dataSync()));
      const tooMany = catchError(() => m.encode(x, { keepPatches: [...all, 0] }));
      expect(tooMany.message).toBe(`keepPatches: expected between 1 and ${n} indices, got ${n + 1}.`);
    });
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('bicubicMatrix1d (pos-embed.ts)', () => {
  it('rows sum to 1 (border taps clamped onto the edge), and scale 1 is the identity', () => {
    for (const [g0, scale] of [[14, 6 / 14], [8, 0.5], [4, 1.75], [7, 2]]) { // shrinking and growing: border taps clamp
      const m = bicubicMatrix1d(g0, scale);
      const rows = m.length / g0;
      expect(rows).toBe(Math.floor(g0 * scale));
      for (let i = 0; i < rows; i++) {
        let sum = 0;
        for (let j = 0; j < g0; j++) sum += m[i * g0 + j];
        expect(Math.abs(sum - 1)).toBeLessThan(1e-12); // float64 sums of four taps
      }
    }
    expect(Array.from(bicubicMatrix1d(5, 1))).toEqual(Array.from({ length: 25 }, (_, k) => (k % 6 === 0 ? 1 : 0)));
  });
});
