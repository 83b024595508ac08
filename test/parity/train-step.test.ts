/**
 * One official training iteration (tiny_train_step.json + tiny_weights.json)
 * on wasm and cpu; the check itself, with its tolerances, is in
 * train-step-check.ts (test/webgpu runs it on WebGPU).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../../src/runtime/backend.js';
import { VisionTransformer } from '../../src/model/vit.js';
import { isDecayed } from '../../src/train/optimizer.js';
import { PROTOTYPES } from '../../src/train/step.js';
import { BACKENDS, configFromRef } from './reference.js';
import { checkTrainStepParity, ref, schedules } from './train-step-check.js';

describe('schedules and parameter groups', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('first-step lr, weight decay, momentum and sharpening match the official schedulers', () => {
    const s = schedules();
    const f = ref.schedules_first_step;
    expect(s.lr(1)).toBeCloseTo(f.lr, 15);
    expect(s.weightDecay(1)).toBeCloseTo(f.weight_decay, 15);
    expect(s.momentum(0)).toBeCloseTo(f.momentum, 15);
    expect(s.sharpen(0)).toBeCloseTo(f.sharpen_T, 15);
    expect(ref.optimizer.groups_after_step[0].lr).toBeCloseTo(s.lr(1), 15);
    expect(ref.optimizer.groups_after_step[0].weight_decay).toBeCloseTo(s.weightDecay(1), 15);
  });

  it('decay / no-decay / prototype groups match the official param groups', () => {
    const [decayed, plain, protos] = ref.optimizer.param_group_members as string[][];
    const cfg = configFromRef(ref.tiny_model, ref.inputs.imgs_0.shape[1]);
    const model = VisionTransformer.create(cfg, { seed: 1 });
    const mine = [...model.params].map(([n, v]) => ({ n, d: isDecayed(n, v.shape) }));
    expect(mine.filter((x) => x.d).map((x) => x.n).sort()).toEqual([...decayed].sort());
    expect(mine.filter((x) => !x.d).map((x) => x.n).sort()).toEqual([...plain].sort());
    expect(protos).toEqual([PROTOTYPES]);
    model.dispose();
  });
});

for (const backend of BACKENDS) {
  describe(`training step parity on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    it('gradients before clipping, weights after AdamW and EMA, BatchNorm stats', async () => {
      await checkTrainStepParity();
    });
  });
}
