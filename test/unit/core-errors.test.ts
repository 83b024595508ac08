/** Bad input gets a typed error whose message says what was expected. */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { PRESETS, VitConfig, getPreset, validateConfig } from '../../src/model/config.js';
import { VisionTransformer } from '../../src/model/vit.js';
import { OFFICIAL_LOSS, msnLossTerms, msnTargets } from '../../src/train/loss.js';
import { makeSchedules } from '../../src/train/schedules.js';
import { throwsNamed } from './helpers.js';

const CFG: VitConfig = { ...PRESETS['micro-p4-28'], depth: 1, embedDim: 16, numHeads: 2, hiddenDim: 32, outputDim: 8, numPrototypes: 6 };


describe('input validation', () => {
  let m: VisionTransformer;
  beforeAll(async () => {
    await useBackend('cpu');
    m = VisionTransformer.create(CFG, { seed: 0 });
  });

  it('wrong rank, wrong channels, empty batch, smaller than a patch, wrong dtype', () => {
    tf.tidy(() => {
      throwsNamed(() => m.encode(tf.zeros([28, 28, 3]) as unknown as tf.Tensor4D), 'MsnShapeError', /rank-4.*\[28,28,3\]/);
      throwsNamed(() => m.encode(tf.zeros([2, 28, 28, 1]) as tf.Tensor4D), 'MsnShapeError', /expects 3 channel/);
      throwsNamed(() => m.encode(tf.zeros([0, 28, 28, 3]) as tf.Tensor4D), 'MsnShapeError', /empty/);
      throwsNamed(() => m.encode(tf.zeros([2, 3, 28, 3]) as tf.Tensor4D), 'MsnShapeError', /smaller than one 4x4 patch/);
      throwsNamed(() => m.encode(tf.zeros([2, 28, 28, 3], 'int32') as tf.Tensor4D), 'MsnValueError', /float32/);
      throwsNamed(() => m.encode(tf.zeros([2, 28, 16, 3]) as tf.Tensor4D), 'MsnShapeError', /square/);
    });
  });

  it('non-finite pixels', () => {
    tf.tidy(() => {
      const x = tf.concat([tf.zeros([1, 28, 28, 3]), tf.fill([1, 28, 28, 3], NaN)]) as tf.Tensor4D;
      throwsNamed(() => m.encode(x), 'MsnValueError', /NaN or Infinity/);
      const inf = tf.fill([1, 28, 28, 3], Infinity) as tf.Tensor4D;
      throwsNamed(() => m.encode(inf), 'MsnValueError', /NaN or Infinity/);
    });
  });

  it('kept indices out of range, repeated, empty, non-integer', () => {
    tf.tidy(() => {
      const x = tf.zeros([2, 28, 28, 3]) as tf.Tensor4D;
      throwsNamed(() => m.encode(x, { keepPatches: [0, 49] }), 'MsnValueError', /out of range.*0 to 48/);
      throwsNamed(() => m.encode(x, { keepPatches: [-1] }), 'MsnValueError', /out of range/);
      throwsNamed(() => m.encode(x, { keepPatches: [3, 3] }), 'MsnValueError', /appears twice/);
      throwsNamed(() => m.encode(x, { keepPatches: [] }), 'MsnValueError', /between 1 and 49/);
      throwsNamed(() => m.encode(x, { keepPatches: [1.5] }), 'MsnValueError', /out of range/);
    });
  });

  it('train-mode BatchNorm with one sample, empty forward', () => {
    tf.tidy(() => {
      throwsNamed(() => m.head(tf.zeros([1, 16]) as tf.Tensor2D, 'train'), 'MsnShapeError', /at least 2 samples/);
      throwsNamed(() => m.forward([], { bnMode: 'eval' }), 'MsnShapeError', /at least one view group/);
    });
  });

  it('weights of the wrong shape and disposed models', () => {
    const w = m.getWeights();
    w.params['blocks.0.attn.qkv.weight'] = { shape: [3, 3], data: new Float32Array(9) };
    throwsNamed(() => m.setWeights(w), 'MsnShapeError', /blocks\.0\.attn\.qkv\.weight.*expected shape \[16,48\]/);
    const gone = VisionTransformer.create(CFG, { seed: 0 });
    gone.dispose();
    throwsNamed(() => gone.encode(tf.zeros([1, 28, 28, 3]) as tf.Tensor4D), 'MsnDisposedError', /disposed/);
  });

  it('configs, presets, loss shapes and schedules', () => {
    throwsNamed(() => validateConfig({ ...CFG, numHeads: 3 }), 'MsnConfigError', /divisible by numHeads/);
    throwsNamed(() => validateConfig({ ...CFG, depth: 0 }), 'MsnConfigError', /depth/);
    throwsNamed(() => getPreset('vit-xxl'), 'MsnConfigError', /Available: .*vit-s16/);
    throwsNamed(() => makeSchedules({ totalSteps: 0 } as never), 'MsnConfigError', /totalSteps/);
    tf.tidy(() => {
      throwsNamed(() => msnTargets(tf.zeros([2, 8]) as tf.Tensor2D, tf.zeros([4, 7]) as tf.Tensor2D, OFFICIAL_LOSS), 'MsnShapeError', /same d/);
      const t = tf.div(tf.ones([3, 4]), 4) as tf.Tensor2D;
      throwsNamed(() => msnLossTerms(tf.zeros([7, 8]) as tf.Tensor2D, tf.zeros([4, 8]) as tf.Tensor2D, t, OFFICIAL_LOSS), 'MsnShapeError', /M\*B/);
      throwsNamed(() => msnTargets(tf.zeros([2, 8]) as tf.Tensor2D, tf.zeros([4, 8]) as tf.Tensor2D, { ...OFFICIAL_LOSS, tau: 0 }), 'MsnConfigError', /tau/);
    });
  });

  it('unknown backend names fail loudly', async () => {
    await expect(useBackend('tpu' as never)).rejects.toMatchObject({ name: 'MsnConfigError' });
  });
});
