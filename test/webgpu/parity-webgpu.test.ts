/**
 * WebGPU in Node (Dawn + SwiftShader, see dawn.ts) against the official
 * PyTorch vectors: forward passes, the loss, one full training step. Every
 * read is asynchronous (a synchronous one would throw here). Tolerances as in
 * test/parity (the vectors' README: float32 summation order only); npm test
 * also runs this file on the second reference folder.
 */
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { VisionTransformer } from '../../src/model/vit.js';
import { MsnLossOptions, msnLossTerms, msnTargets } from '../../src/train/loss.js';
import { closeness, configFromRef, f32, imagesNHWC, readRef, referenceProbs, weightsFromStateDict } from '../parity/reference.js';
import { prototypeProbabilities } from '../../src/model/prototypes.js';
import { batchPrototypeProbs } from '../../src/embed/embed.js';
import { checkTrainStepParity } from '../parity/train-step-check.js';
import { describeOnWebGpu, useWebGpu } from './dawn.js';

async function expectClose(t: tf.Tensor, ref: { shape: number[] }, atol: number, rtol: number): Promise<void> {
  expect(t.shape).toEqual(ref.shape);
  expect(closeness(await t.data(), f32(ref as never), atol, rtol)).toBeLessThanOrEqual(1);
}

await describeOnWebGpu('parity with the official code on WebGPU (Dawn, SwiftShader)', () => {
  describe('prototype assignment parity (tolerances as in test/parity/prototypes.test.ts)', () => {
    it('the official anchor probabilities, and from images through encoder, head and prototypes', async () => {
      await useWebGpu();
      const loss = readRef('loss.json');
      const fwd = readRef('tiny_forward.json');
      const weights = readRef('tiny_weights.json');
      const probs = tf.tidy(() => prototypeProbabilities(
        tf.tensor2d(f32(loss.inputs.anchor_views), loss.inputs.anchor_views.shape),
        tf.tensor2d(f32(loss.inputs.prototypes), loss.inputs.prototypes.shape),
        loss.params.tau,
      ));
      expect(closeness(await probs.data(), f32(loss.cases.no_sinkhorn.float32.anchor_probs), 1e-6, 0)).toBeLessThanOrEqual(1);
      probs.dispose();
      const cfg = configFromRef(fwd.tiny_model);
      const model = VisionTransformer.create(cfg, weightsFromStateDict(weights.after_step.target_encoder));
      const protos = f32(weights.after_step.prototypes);
      const x = imagesNHWC(fwd.inputs.x);
      const zeros = Array(cfg.inChannels).fill(0);
      const ones = Array(cfg.inChannels).fill(1);
      const got = tf.tidy(() => batchPrototypeProbs(model, x, tf.tensor2d(protos, [cfg.numPrototypes, cfg.outputDim]), { mean: zeros, std: ones, tau: 0.1, checkFinite: false }));
      const want = referenceProbs(f32(fwd.networks.target_encoder.unmasked.head_eval), x.shape[0], protos, cfg.numPrototypes, 0.1);
      expect(closeness(await got.data(), want, 1e-5, 0)).toBeLessThanOrEqual(1);
      tf.dispose([got, x]);
      model.dispose();
    });
  });

  describe('forward parity with the official ViT', () => {
    const fwd = readRef('tiny_forward.json');
    const weights = readRef('tiny_weights.json');
    for (const net of ['target_encoder', 'encoder'] as const) {
      it(`${net}: unmasked, patch drop, focal (bicubic position embeddings), multi-crop train`, async () => {
        await useWebGpu();
        const ref = fwd.networks[net];
        const model = VisionTransformer.create(configFromRef(fwd.tiny_model), weightsFromStateDict(weights.after_step[net]));
        const x = imagesNHWC(fwd.inputs.x);
        const xf = imagesNHWC(fwd.inputs.x_focal);
        const keep = ref.patch_drop.kept_patch_indices_0based_excluding_cls.data;
        const mc = ref.multicrop_train;
        const outs = tf.tidy(() => {
          const plain = model.encode(x, { checkFinite: false });
          const drop = model.encode(x, { keepPatches: keep, checkFinite: false });
          const focal = model.encode(xf, { checkFinite: false });
          return [
            [plain.clsPre, ref.unmasked.cls_prenorm], [plain.clsNorm, ref.unmasked.cls_norm],
            [model.head(plain.clsNorm, 'eval'), ref.unmasked.head_eval], [model.head(plain.clsNorm, 'train', false), ref.unmasked.head_train],
            [drop.clsPre, ref.patch_drop.cls_prenorm], [model.head(drop.clsNorm, 'eval'), ref.patch_drop.head_eval],
            [focal.clsPre, ref.focal.cls_prenorm], [model.head(focal.clsNorm, 'train', false), ref.focal.head_train],
            [model.forward([{ images: x, keepPatches: mc.kept_patch_indices_0based_excluding_cls.data }, { images: xf }], { bnMode: 'train', checkFinite: false }), mc.z],
          ] as [tf.Tensor, { shape: number[] }][];
        });
        for (const [t, r] of outs) await expectClose(t, r, 2e-5, 2e-4);
        await expectClose(model.p('fc.bn1.running_var'), mc.bn_running_var_fc_bn1_after, 2e-5, 2e-4);
        tf.dispose(outs.map(([t]) => t));
        tf.dispose([x, xf]);
        model.dispose();
      });
    }
  });

  it('one official training step: gradients, weights after AdamW and EMA, BatchNorm stats', async () => {
    await useWebGpu();
    await checkTrainStepParity();
  });

  describe('loss parity with init_msn_loss', () => {
    const ref = readRef('loss.json');
    const P = ref.params;
    for (const name of Object.keys(ref.cases)) {
      it(`${name}: targets, probabilities, the four terms and the gradients of the total`, async () => {
        await useWebGpu();
        const c = ref.cases[name].float32;
        const opts: MsnLossOptions = {
          tau: P.tau, sharpenT: P.T, sinkhornIters: name === 'sinkhorn' ? P.sinkhorn_iters : 0,
          memaxWeight: P.me_max ? P.memax_weight : 0, entWeight: P.ent_weight,
        };
        const before = tf.memory().numTensors;
        const anchors = tf.tensor2d(f32(ref.inputs.anchor_views), ref.inputs.anchor_views.shape);
        const targetsIn = tf.tensor2d(f32(ref.inputs.target_views), ref.inputs.target_views.shape);
        const protos = tf.tensor2d(f32(ref.inputs.prototypes), ref.inputs.prototypes.shape);
        const t = msnTargets(targetsIn, protos, opts);
        const terms = msnLossTerms(anchors, protos, t.targets, opts);
        const [ga, gp] = tf.grads((a: tf.Tensor, p: tf.Tensor) => msnLossTerms(a as tf.Tensor2D, p as tf.Tensor2D, t.targets, opts).total)([anchors, protos]);
        expect(closeness(await t.sharpened.data(), f32(c.targets_sharpened), 1e-6, 0)).toBeLessThanOrEqual(1);
        expect(closeness(await terms.probs.data(), f32(c.anchor_probs), 1e-6, 0)).toBeLessThanOrEqual(1);
        for (const [mine, theirs] of [[terms.ce, c.ce_loss], [terms.memax, c.memax_loss], [terms.entropy, c.entropy_loss], [terms.total, c.total_loss]] as const) {
          expect(closeness(await mine.data(), [theirs], 0, 1e-5)).toBeLessThanOrEqual(1);
        }
        expect(closeness(await ga.data(), f32(c.grad_total_wrt_anchor_views), 1e-6, 1e-3)).toBeLessThanOrEqual(1);
        expect(closeness(await gp.data(), f32(c.grad_total_wrt_prototypes), 1e-6, 1e-3)).toBeLessThanOrEqual(1);
        tf.dispose([anchors, targetsIn, protos, ga, gp, ...Object.values(t), ...Object.values(terms)]);
        expect(tf.memory().numTensors).toBe(before);
      });
    }
  });
});
