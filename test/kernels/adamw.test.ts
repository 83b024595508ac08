/**
 * The fused AdamW and EMA kernels (MsnAdamW / MsnEma in src/kernels/wasm):
 * every operation in the order and precision of the composed version in
 * src/train/optimizer.ts and step.ts, so the results must be the same bits,
 * on wasm with the kernels off and on the cpu backend (float32 +, -, *, /
 * and sqrt are correctly rounded everywhere, and a double result rounded to
 * float32 equals the float32 operation), over several steps with and
 * without weight decay and clipping, for sizes with a scalar tail.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { AdamW } from '../../src/train/optimizer.js';
import { emaUpdate } from '../../src/train/step.js';
import { VisionTransformer } from '../../src/model/vit.js';
import { fusedKernelsActive, installWasmKernels, uninstallWasmKernels } from '../../src/kernels/wasm/kernels.js';
import { Rng } from '../../src/util/rng.js';

const SIZES = [[1], [3], [4], [7, 5], [96, 97]];

/** Five AdamW steps on parameters of SIZES (the odd ones decayed), clipping 0.37 the first two; the final weights and moments. */
function adamwRun(): Float32Array[] {
  const rng = new Rng(3);
  const vars = SIZES.map((shape, i) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const init = Float32Array.from({ length: n }, () => rng.normal());
    return { name: `p${i}`, variable: tf.tidy(() => tf.variable(tf.tensor(init, shape))), decay: i % 2 === 1 };
  });
  const opt = new AdamW(vars);
  for (let step = 0; step < 5; step++) {
    const grads = new Map(vars.map(({ name, variable }) => [name, tf.tensor(Float32Array.from({ length: variable.size }, () => (step === 3 ? 100 : 1) * rng.normal()), variable.shape)]));
    const clip = step < 2 ? 0.37 : 1;
    opt.step(grads, 1e-3 * (step + 1), 0.04 + 0.1 * step, (name) => (name === 'p4' ? 1 : clip));
    tf.dispose([...grads.values()]);
  }
  const out = [...vars.map((v) => v.variable.dataSync() as Float32Array)];
  for (const { m, v } of opt.momentVariables().values()) out.push(m.dataSync() as Float32Array, v.dataSync() as Float32Array);
  opt.dispose();
  vars.forEach((v) => v.variable.dispose());
  return out;
}

/** Three EMA updates of a tiny ViT's target toward its online copy; the target's weights. */
function emaRun(): Float32Array[] {
  const cfg = { imgSize: 8, patchSize: 4, inChannels: 3, embedDim: 8, depth: 1, numHeads: 2, mlpRatio: 2, hiddenDim: 8, outputDim: 4, numPrototypes: 3 };
  const target = VisionTransformer.create(cfg, { seed: 1 });
  const online = VisionTransformer.create(cfg, { seed: 2 });
  for (const m of [0.996, 0.9, 0.123456789]) emaUpdate(target, online, m);
  const out = [...target.params.values()].map((v) => v.dataSync() as Float32Array);
  target.dispose();
  online.dispose();
  return out;
}

describe('fused AdamW and EMA kernels (wasm)', () => {
  beforeAll(async () => {
    await useBackend('wasm');
  });
  afterAll(async () => {
    await installWasmKernels();
  });

  it('give the same bits as the composed ops on wasm and on the cpu backend, in one kernel per parameter', async () => {
    expect(fusedKernelsActive()).toBe(true);
    const before = tf.memory().numTensors;
    let fused: Float32Array[][] = [];
    const kernels = (await tf.profile(() => void (fused = [adamwRun(), emaRun()]))).kernels.map((k) => k.name);
    expect(kernels.filter((k) => k === 'MsnAdamW').length).toBe(5 * SIZES.length);
    expect(kernels.filter((k) => k === 'MsnEma').length).toBeGreaterThan(0);
    expect(kernels).not.toContain('Sqrt');
    expect(tf.memory().numTensors).toBe(before);
    uninstallWasmKernels();
    const composed = [adamwRun(), emaRun()];
    await useBackend('cpu');
    const cpu = [adamwRun(), emaRun()];
    await useBackend('wasm');
    expect(fusedKernelsActive()).toBe(true);
    for (const ref of [composed, cpu]) {
      ref.forEach((arrays, k) => arrays.forEach((a, i) => expect(Array.from(fused[k][i]), `${k ? 'ema' : 'adamw'} array ${i}`).toEqual(Array.from(a))));
    }
    // the runs moved the weights (a no-op kernel would also be "equal" to nothing)
    expect(fused[0][0][0]).not.toBe(new Rng(3).normal());
  });

  it('refuses tensors of different shapes', () => {
    const [a, b] = [tf.zeros([2, 3]), tf.zeros([3, 2])];
    expect(() => tf.engine().runKernel('MsnEma', { t: a, o: b }, { momentum: 0.5 })).toThrow(/MsnEma: shapes \[2,3\], \[3,2\] differ/);
    tf.dispose([a, b]);
  });
});
