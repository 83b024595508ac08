/** Every public core method leaves tf.memory().numTensors where it found it. */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { PRESETS, VitConfig } from '../../src/model/config.js';
import { VisionTransformer } from '../../src/model/vit.js';
import { interpolatePosEmbed } from '../../src/model/pos-embed.js';
import { OFFICIAL_LOSS, msnLossTerms, msnTargets, targetDiagnostics } from '../../src/train/loss.js';
import { createTrainState, disposeTrainState } from '../../src/train/state.js';
import { makeSchedules, officialSchedule } from '../../src/train/schedules.js';
import { trainStep } from '../../src/train/step.js';

const CFG: VitConfig = { ...PRESETS['micro-p4-28'], depth: 1, embedDim: 16, numHeads: 2, hiddenDim: 32, outputDim: 8, numPrototypes: 6 };
const HYPER = { loss: { tau: 0.1, sinkhornIters: 3, memaxWeight: 1, entWeight: 0 }, clipGrad: 3 };

function flat(f: () => void) {
  f(); // first call may allocate caches (e.g. resize matrices), measured calls must not grow
  const before = tf.memory().numTensors;
  f();
  f();
  expect(tf.memory().numTensors).toBe(before);
}

for (const backend of ['wasm', 'cpu'] as const) {
  describe(`numTensors stays flat on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    it('create/dispose, encode (masked and resized), head, forward, get/setWeights', () => {
      const x = tf.randomNormal([3, 28, 28, 3]) as tf.Tensor4D;
      const xs = tf.randomNormal([3, 12, 12, 3]) as tf.Tensor4D;
      flat(() => VisionTransformer.create(CFG, { seed: 1 }).dispose());
      const m = VisionTransformer.create(CFG, { seed: 1 });
      flat(() => tf.dispose(Object.values(m.encode(x, { keepPatches: [0, 5, 9] }))));
      flat(() => tf.dispose(Object.values(m.encode(xs))));
      flat(() => tf.tidy(() => m.head(m.encode(x).clsNorm, 'train')).dispose());
      flat(() => tf.tidy(() => m.head(m.encode(x).clsNorm, 'eval')).dispose());
      flat(() => m.forward([{ images: x, keepPatches: [1, 2] }, { images: xs }], { bnMode: 'train' }).dispose());
      flat(() => m.setWeights(m.getWeights()));
      flat(() => interpolatePosEmbed(m.p('pos_embed') as tf.Tensor3D, 9).dispose());
      m.dispose();
      tf.dispose([x, xs]);
    });

    it('loss, targets and diagnostics', () => {
      const a = tf.randomNormal([6, 8]) as tf.Tensor2D;
      const t = tf.randomNormal([3, 8]) as tf.Tensor2D;
      const p = tf.randomNormal([5, 8]) as tf.Tensor2D;
      flat(() => {
        const tg = msnTargets(t, p, { ...OFFICIAL_LOSS });
        targetDiagnostics(tg.targets);
        const terms = msnLossTerms(a, p, tg.targets, { ...OFFICIAL_LOSS });
        tf.dispose([tg.targets, tg.sharpened, tg.unsharpened, terms.total, terms.ce, terms.memax, terms.entropy, terms.probs]);
      });
      tf.dispose([a, t, p]);
    });

    it('train state, train steps (normal and skipped), optimizer state round trip', () => {
      const x = tf.randomNormal([4, 28, 28, 3]) as tf.Tensor4D;
      const f = tf.randomNormal([8, 12, 12, 3]) as tf.Tensor4D;
      flat(() => disposeTrainState(createTrainState(CFG, { seed: 3 })));
      const s = createTrainState(CFG, { seed: 3 });
      const sched = makeSchedules(officialSchedule(100, 5));
      const batch = { target: x, anchors: [{ images: x, keepPatches: [0, 3, 7, 20] }, { images: f }] };
      flat(() => trainStep(s, batch, HYPER, sched));
      // A poisoned run: NaN prototypes make the loss non-finite, so the step is skipped.
      const poisoned = createTrainState(CFG, { seed: 4 });
      tf.tidy(() => poisoned.prototypes.assign(tf.fill(poisoned.prototypes.shape, NaN)));
      flat(() => expect(trainStep(poisoned, batch, HYPER, sched).skipped).toBe(true));
      disposeTrainState(poisoned);
      flat(() => s.optimizer.setState(s.optimizer.getState()));
      disposeTrainState(s);
      tf.dispose([x, f]);
    });
  });
}
