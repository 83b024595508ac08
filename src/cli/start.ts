/**
 * `npm start`: a short demo of the MSN core on the wasm backend: a few
 * training steps of the smallest preset on generated images, then the
 * evaluation feature of the target encoder. (The few-shot job replaces this
 * once the shipped model and heads land.)
 */
import * as tf from '@tensorflow/tfjs-core';
import { PRESETS, createTrainState, disposeTrainState, makeSchedules, officialSchedule, trainStep, useBackend, Rng } from '../core.js';

tf.env().set('PROD', true); // silences the "install tfjs-node" banner
await useBackend('wasm');
const cfg = PRESETS['micro-p4-28'];
const state = createTrainState(cfg, { seed: 0 });
const sched = makeSchedules(officialSchedule(20, 2));
const hyper = { loss: { tau: 0.1, sinkhornIters: 3, memaxWeight: 1, entWeight: 0 }, clipGrad: 3 };
const rng = new Rng(0);
const n = (cfg.imgSize / cfg.patchSize) ** 2;
console.log(`msn-web demo: preset micro-p4-28 (${cfg.depth} blocks, width ${cfg.embedDim}), backend ${tf.getBackend()}`);
for (let i = 0; i < 5; i++) {
  const target = tf.randomUniform([16, 28, 28, 3], -1, 1, 'float32', i) as tf.Tensor4D;
  const anchor = tf.randomUniform([16, 28, 28, 3], -1, 1, 'float32', 100 + i) as tf.Tensor4D;
  const focal = tf.randomUniform([32, 12, 12, 3], -1, 1, 'float32', 200 + i) as tf.Tensor4D;
  const keep = Array.from(rng.permutation(n).slice(0, Math.floor(n * 0.7)));
  const t0 = performance.now();
  const m = trainStep(state, { target, anchors: [{ images: anchor, keepPatches: keep }, { images: focal }] }, hyper, sched);
  console.log(
    `step ${m.step}: loss ${m.loss.toFixed(4)} (ce ${m.ce.toFixed(4)}, me-max ${m.memax.toFixed(4)}), lr ${m.lr.toExponential(2)}, ` +
      `prototypes used ${m.numProtosUsed}/${cfg.numPrototypes}, ${(performance.now() - t0).toFixed(0)} ms`,
  );
  tf.dispose([target, anchor, focal]);
}
const feats = tf.tidy(() => state.target.encode(tf.randomUniform([4, 28, 28, 3], -1, 1) as tf.Tensor4D).clsPre);
console.log(`evaluation features: [${feats.shape}] (last-block CLS of the target encoder, before the final norm)`);
feats.dispose();
disposeTrainState(state);
console.log(`tensors left: ${tf.memory().numTensors}. Run the tests with: npm test`);
