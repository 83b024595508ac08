/**
 * Forward passes against the official deit.VisionTransformer (+ head).
 * Tolerance abs 2e-5 / rel 2e-4 (vectors README: a float32 implementation
 * differs from the float32 reference by summation order only; NumPy float64
 * vs the reference differs by 1.6e-6).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { VisionTransformer } from '../../src/model/vit.js';
import { BACKENDS, closeness, configFromRef, f32, imagesNHWC, readRef, weightsFromStateDict } from './reference.js';

const ATOL = 2e-5;
const RTOL = 2e-4;
const fwd = readRef('tiny_forward.json');
const weights = readRef('tiny_weights.json');

function expectClose(t: tf.Tensor, ref: any) {
  expect(t.shape).toEqual(ref.shape);
  expect(closeness(t.dataSync(), f32(ref), ATOL, RTOL)).toBeLessThanOrEqual(1);
}

for (const backend of BACKENDS) {
  describe(`forward parity on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    for (const net of ['target_encoder', 'encoder'] as const) {
      const ref = fwd.networks[net];
      const make = () => VisionTransformer.create(configFromRef(fwd.tiny_model), weightsFromStateDict(weights.after_step[net]));

      it(`${net}: unmasked CLS (pre/post norm) and head in eval and train mode`, () => {
        const model = make();
        const x = imagesNHWC(fwd.inputs.x);
        tf.tidy(() => {
          const { clsPre, clsNorm } = model.encode(x);
          expectClose(clsPre, ref.unmasked.cls_prenorm);
          expectClose(clsNorm, ref.unmasked.cls_norm);
          expectClose(model.head(clsNorm, 'eval'), ref.unmasked.head_eval);
          expectClose(model.head(clsNorm, 'train', false), ref.unmasked.head_train);
        });
        x.dispose();
        model.dispose();
      });

      it(`${net}: patch drop with the recorded kept indices`, () => {
        const model = make();
        const x = imagesNHWC(fwd.inputs.x);
        const keep = ref.patch_drop.kept_patch_indices_0based_excluding_cls.data;
        tf.tidy(() => {
          const { clsPre, clsNorm } = model.encode(x, { keepPatches: keep });
          expectClose(clsPre, ref.patch_drop.cls_prenorm);
          expectClose(clsNorm, ref.patch_drop.cls_norm);
          expectClose(model.head(clsNorm, 'eval'), ref.patch_drop.head_eval);
          expectClose(model.head(clsNorm, 'train', false), ref.patch_drop.head_train);
        });
        x.dispose();
        model.dispose();
      });

      it(`${net}: focal view with bicubic-resized position embeddings`, () => {
        const model = make();
        const x = imagesNHWC(fwd.inputs.x_focal);
        tf.tidy(() => {
          const { clsPre, clsNorm } = model.encode(x);
          expectClose(clsPre, ref.focal.cls_prenorm);
          expectClose(model.head(clsNorm, 'eval'), ref.focal.head_eval);
          expectClose(model.head(clsNorm, 'train', false), ref.focal.head_train);
        });
        x.dispose();
        model.dispose();
      });

      it(`${net}: multi-crop train call (per-group BatchNorm, running stats)`, () => {
        const model = make();
        const x = imagesNHWC(fwd.inputs.x);
        const xf = imagesNHWC(fwd.inputs.x_focal);
        const mc = ref.multicrop_train;
        tf.tidy(() => {
          const z = model.forward(
            [{ images: x, keepPatches: mc.kept_patch_indices_0based_excluding_cls.data }, { images: xf }],
            { bnMode: 'train' },
          );
          expectClose(z, mc.z);
        });
        expectClose(model.p('fc.bn1.running_mean'), mc.bn_running_mean_fc_bn1_after);
        expectClose(model.p('fc.bn1.running_var'), mc.bn_running_var_fc_bn1_after);
        x.dispose();
        xf.dispose();
        model.dispose();
      });
    }
  });
}
