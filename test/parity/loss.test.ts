/**
 * The loss against the official init_msn_loss, every case of loss.json.
 * Tolerances from the vectors' README (float32): rel 1e-5 on losses, abs 1e-6
 * on probabilities, rel 1e-3 + abs 1e-6 on gradients. Hyperparameters come
 * from the file.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { MsnLossOptions, msnLossTerms, msnTargets, targetDiagnostics } from '../../src/train/loss.js';
import { BACKENDS, closeness, f32, readRef } from './reference.js';

const ref = readRef('loss.json');
const P = ref.params;

function options(sinkhorn: boolean): MsnLossOptions {
  return {
    tau: P.tau, sharpenT: P.T, sinkhornIters: sinkhorn ? P.sinkhorn_iters : 0,
    memaxWeight: P.me_max ? P.memax_weight : 0, entWeight: P.ent_weight,
  };
}

for (const backend of BACKENDS) {
  describe(`loss parity on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    for (const name of Object.keys(ref.cases)) {
      const c = ref.cases[name].float32;
      const opts = options(name === 'sinkhorn');

      it(`${name}: loss terms, probabilities, targets and diagnostics`, () => {
        const before = tf.memory().numTensors;
        tf.tidy(() => {
          const anchors = tf.tensor2d(f32(ref.inputs.anchor_views), ref.inputs.anchor_views.shape);
          const targetsIn = tf.tensor2d(f32(ref.inputs.target_views), ref.inputs.target_views.shape);
          const protos = tf.tensor2d(f32(ref.inputs.prototypes), ref.inputs.prototypes.shape);
          const t = msnTargets(targetsIn, protos, opts);
          expect(closeness(t.unsharpened.dataSync(), f32(c.target_probs_unsharpened), 1e-6, 0)).toBeLessThanOrEqual(1);
          expect(closeness(t.sharpened.dataSync(), f32(c.targets_sharpened), 1e-6, 0)).toBeLessThanOrEqual(1);
          const repeated = tf.concat(Array(P.num_views).fill(t.targets), 0);
          expect(closeness(repeated.dataSync(), f32(c.targets_final_repeated), 1e-6, 0)).toBeLessThanOrEqual(1);
          const terms = msnLossTerms(anchors, protos, t.targets, opts);
          expect(closeness(terms.probs.dataSync(), f32(c.anchor_probs), 1e-6, 0)).toBeLessThanOrEqual(1);
          for (const [mine, theirs] of [
            [terms.ce, c.ce_loss], [terms.memax, c.memax_loss], [terms.entropy, c.entropy_loss], [terms.total, c.total_loss],
          ] as const) {
            expect(closeness(mine.dataSync(), [theirs], 0, 1e-5)).toBeLessThanOrEqual(1);
          }
          const diag = targetDiagnostics(t.targets);
          expect(diag.numProtosUsed).toBe(c.log.np);
          expect(closeness([diag.maxTarget, diag.minTarget], [c.log.max_t, c.log.min_t], 1e-6, 1e-5)).toBeLessThanOrEqual(1);
        });
        expect(tf.memory().numTensors).toBe(before);
      });

      for (const term of ['total', 'ce', 'memax', 'entropy'] as const) {
        it(`${name}: gradient of the ${term} term w.r.t. anchors and prototypes`, () => {
          const before = tf.memory().numTensors;
          tf.tidy(() => {
            const anchors = tf.tensor2d(f32(ref.inputs.anchor_views), ref.inputs.anchor_views.shape);
            const targetsIn = tf.tensor2d(f32(ref.inputs.target_views), ref.inputs.target_views.shape);
            const protos = tf.tensor2d(f32(ref.inputs.prototypes), ref.inputs.prototypes.shape);
            const { targets } = msnTargets(targetsIn, protos, opts);
            const f = (a: tf.Tensor, p: tf.Tensor) => msnLossTerms(a as tf.Tensor2D, p as tf.Tensor2D, targets, opts)[term];
            const [ga, gp] = tf.grads(f)([anchors, protos]);
            expect(closeness(ga.dataSync(), f32(c[`grad_${term}_wrt_anchor_views`]), 1e-6, 1e-3)).toBeLessThanOrEqual(1);
            expect(closeness(gp.dataSync(), f32(c[`grad_${term}_wrt_prototypes`]), 1e-6, 1e-3)).toBeLessThanOrEqual(1);
          });
          expect(tf.memory().numTensors).toBe(before);
        });
      }
    }
  });
}
