/**
 * On wasm with msn-web's kernels, AdamW and the EMA update run one fused kernel per parameter
 * (MsnAdamW, MsnEma; src/train/optimizer.ts and step.ts), not the composed ops. Their values are
 * the composed ops' bits (test/kernels/adamw.test.ts checks that), so a fused branch skipped or
 * taken wrongly changes no number, only the kernels dispatched: this file counts them, so that
 * `npm run mutate -- train` sees such a change (test/kernels is outside that scope). The counts
 * are exact: one kernel per parameter that has a gradient, nothing else of the update's arithmetic.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { fusedKernelsActive } from '../../src/kernels/wasm/kernels.js';
import { VisionTransformer } from '../../src/model/vit.js';
import { AdamW } from '../../src/train/optimizer.js';
import { emaUpdate } from '../../src/train/step.js';

const TINY = { imgSize: 8, patchSize: 4, inChannels: 3, embedDim: 8, depth: 1, numHeads: 2, mlpRatio: 2, hiddenDim: 8, outputDim: 4, numPrototypes: 3 };
const ARITHMETIC = ['Mul', 'Add', 'AddV2', 'Sub', 'RealDiv', 'Sqrt', 'Square'];

describe('fused AdamW and EMA dispatch (wasm)', () => {
  beforeAll(async () => {
    await useBackend('wasm');
  });
  afterAll(async () => {
    await useBackend('cpu');
  });

  it('AdamW.step runs one MsnAdamW per parameter with a gradient, with clipping and decay', async () => {
    expect(fusedKernelsActive()).toBe(true);
    const vars = [[3], [4, 5], [2]].map((shape, i) => ({
      name: `p${i}`,
      variable: tf.variable(tf.fill(shape, 0.5 + i)),
      decay: i !== 1,
    }));
    const opt = new AdamW(vars);
    // p2 gets no gradient: it is skipped, in either branch.
    const grads = new Map([['p0', tf.fill([3], 0.25)], ['p1', tf.fill([4, 5], -1)]]);
    const before = vars.map((v) => Array.from(v.variable.dataSync()));
    const { kernels } = await tf.profile(() => opt.step(grads, 0.01, 0.04, (n) => (n === 'p0' ? 0.5 : 1)));
    const names = kernels.map((k) => k.name);
    expect(names.filter((k) => k === 'MsnAdamW')).toHaveLength(2);
    expect(names.filter((k) => ARITHMETIC.includes(k))).toEqual([]);
    // The update happened (p0 and p1 moved against their gradients, p2 did not move).
    const after = vars.map((v) => Array.from(v.variable.dataSync()));
    expect(after[0][0]).toBeLessThan(before[0][0]);
    expect(after[1][0]).toBeGreaterThan(before[1][0]);
    expect(after[2]).toEqual(before[2]);
    tf.dispose([...grads.values()]);
    opt.dispose();
    vars.forEach((v) => v.variable.dispose());
  });

  it('emaUpdate runs one MsnEma per parameter of the target', async () => {
    const target = VisionTransformer.create(TINY, { seed: 1 });
    const online = VisionTransformer.create(TINY, { seed: 2 });
    const { kernels } = await tf.profile(() => emaUpdate(target, online, 0.9));
    const names = kernels.map((k) => k.name);
    expect(names.filter((k) => k === 'MsnEma')).toHaveLength(target.params.size);
    expect(names.filter((k) => ARITHMETIC.includes(k))).toEqual([]);
    target.dispose();
    online.dispose();
  });
});
