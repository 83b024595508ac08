/**
 * MSN's prediction (soft assignment to the prototypes) against the official
 * code, on every reference folder:
 * 1. prototypeProbabilities vs the official loss's anchor probabilities
 *    (loss.json: anchors and prototypes in, `anchor_probs` out, tau 0.1).
 *    Tolerance abs 1e-6, the probability tolerance of the loss parity.
 * 2. The whole path from images (encoder, head in eval mode, prototypes) vs
 *    the same formula in float64 over the official head output and the
 *    official prototypes. Tolerance abs 1e-5: float32 summation order in the
 *    encoder and head (the head output agrees to ~1e-6 relative, far inside
 *    forward.test.ts's bound), amplified 1 / tau = 10x by the logits and
 *    damped by p(1 - p) <= 1/4 in the softmax; measured 2e-7 to 7e-7 on both
 *    reference folders, wasm and cpu.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { VisionTransformer } from '../../src/model/vit.js';
import { prototypeProbabilities } from '../../src/model/prototypes.js';
import { batchPrototypeProbs } from '../../src/embed/embed.js';
import { BACKENDS, closeness, configFromRef, f32, imagesNHWC, readRef, referenceProbs, weightsFromStateDict } from './reference.js';

const loss = readRef('loss.json');
const fwd = readRef('tiny_forward.json');
const weights = readRef('tiny_weights.json');

for (const backend of BACKENDS) {
  describe(`prototype assignment parity on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    it('equals the official anchor probabilities (loss.json, no Sinkhorn, float32)', () => {
      const tau = loss.params.tau;
      const want = loss.cases.no_sinkhorn.float32.anchor_probs;
      const got = tf.tidy(() => {
        const z = tf.tensor2d(f32(loss.inputs.anchor_views), loss.inputs.anchor_views.shape);
        const q = tf.tensor2d(f32(loss.inputs.prototypes), loss.inputs.prototypes.shape);
        return prototypeProbabilities(z, q, tau).dataSync();
      });
      expect(got.length).toBe(f32(want).length);
      expect(closeness(got, f32(want), 1e-6, 0)).toBeLessThanOrEqual(1);
    });

    it('from images: encoder, head in eval mode and prototypes give the official formula on the official head output', () => {
      const cfg = configFromRef(fwd.tiny_model);
      const model = VisionTransformer.create(cfg, weightsFromStateDict(weights.after_step.target_encoder));
      const protos = f32(weights.after_step.prototypes);
      const k = cfg.numPrototypes;
      const x = imagesNHWC(fwd.inputs.x); // already normalised: mean 0, std 1 below
      const n = x.shape[0];
      const mean = Array(cfg.inChannels).fill(0);
      const std = Array(cfg.inChannels).fill(1);
      const got = tf.tidy(() => batchPrototypeProbs(model, x, tf.tensor2d(protos, [k, cfg.outputDim]), { mean, std, tau: 0.1 }).dataSync()) as Float32Array;
      const want = referenceProbs(f32(fwd.networks.target_encoder.unmasked.head_eval), n, protos, k, 0.1);
      expect(closeness(got, want, 1e-5, 0)).toBeLessThanOrEqual(1);
      let worst = 0;
      for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
      console.log(`${backend}: max |p - p_official| = ${worst.toExponential(2)}`);
      for (let i = 0; i < n; i++) expect(got.slice(i * k, (i + 1) * k).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      x.dispose();
      model.dispose();
    });
  });
}
