/**
 * The asynchronous read paths the engine uses on WebGPU (trainStepAsync,
 * readWeights) give exactly what the synchronous ones give, leak nothing,
 * and the finiteness check can be turned off for inputs checked before upload.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { PRESETS, VitConfig } from '../../src/model/config.js';
import { VisionTransformer } from '../../src/model/vit.js';
import { createTrainState, disposeTrainState } from '../../src/train/state.js';
import { makeSchedules, officialSchedule } from '../../src/train/schedules.js';
import { MsnTrainState, trainStep, trainStepAsync } from '../../src/train/step.js';

const CFG: VitConfig = { ...PRESETS['micro-p4-28'], depth: 1, embedDim: 16, numHeads: 2, hiddenDim: 32, outputDim: 8, numPrototypes: 6 };
const HYPER = { loss: { tau: 0.1, sinkhornIters: 3, memaxWeight: 1, entWeight: 0 }, clipGrad: 3 };

function allWeights(s: MsnTrainState): number[][] {
  const { encoder, target, prototypes, optimizer } = s;
  const ts = [...encoder.params.values(), ...encoder.buffers.values(), ...target.params.values(), ...target.buffers.values(), prototypes];
  for (const { m, v } of optimizer.momentVariables().values()) ts.push(m, v);
  return ts.map((t) => Array.from(t.dataSync()));
}

for (const backend of ['wasm', 'cpu'] as const) {
  describe(`async reads on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    it('trainStepAsync = trainStep: same metrics and bit-identical state over normal and skipped steps', async () => {
      const x = tf.randomNormal([4, 28, 28, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
      const f = tf.randomNormal([8, 12, 12, 3], 0, 1, 'float32', 6) as tf.Tensor4D;
      // Finite (passes the input check) but overflows to Inf/NaN inside the model: the step must be skipped.
      const huge = tf.fill([4, 28, 28, 3], 3e38) as tf.Tensor4D;
      const sched = makeSchedules(officialSchedule(100, 5));
      const good = { target: x, anchors: [{ images: x, keepPatches: [0, 3, 7, 20] }, { images: f }] };
      const poisoned = { target: x, anchors: [{ images: huge }] };
      const a = createTrainState(CFG, { seed: 3 });
      const b = createTrainState(CFG, { seed: 3 });
      for (const batch of [good, poisoned, good]) {
        const ma = trainStep(a, batch, HYPER, sched);
        const mb = await trainStepAsync(b, batch, HYPER, sched);
        expect(mb).toEqual(ma);
        expect(ma.skipped).toBe(batch === poisoned);
      }
      expect(a.step).toBe(2);
      expect(allWeights(b)).toEqual(allWeights(a));
      const before = tf.memory().numTensors;
      await trainStepAsync(b, good, HYPER, sched);
      await trainStepAsync(b, poisoned, HYPER, sched);
      expect(tf.memory().numTensors).toBe(before);
      disposeTrainState(a);
      disposeTrainState(b);
      tf.dispose([x, f, huge]);
    });

    it('readWeights() = getWeights(), without leaking', async () => {
      const m = VisionTransformer.create(CFG, { seed: 1 });
      const sync = m.getWeights();
      const before = tf.memory().numTensors;
      const read = await m.readWeights();
      expect(tf.memory().numTensors).toBe(before);
      expect(Object.keys(read.params)).toEqual(Object.keys(sync.params));
      for (const part of ['params', 'buffers'] as const) {
        for (const [k, v] of Object.entries(sync[part])) {
          expect(read[part][k].shape).toEqual(v.shape);
          expect(Array.from(read[part][k].data)).toEqual(Array.from(v.data));
        }
      }
      m.dispose();
    });

    it('encode checks finiteness by default on this backend; checkFinite: false skips the read', () => {
      const m = VisionTransformer.create(CFG, { seed: 1 });
      const x = tf.fill([1, 28, 28, 3], NaN) as tf.Tensor4D;
      expect(() => m.encode(x)).toThrow(/NaN or Infinity/);
      const out = m.encode(x, { checkFinite: false });
      expect(Number.isNaN(out.clsPre.dataSync()[0])).toBe(true);
      tf.dispose([x, out.clsPre, out.clsNorm]);
      m.dispose();
    });
  });
}
