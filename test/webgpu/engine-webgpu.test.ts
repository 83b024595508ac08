/**
 * The engine on WebGPU in Node (Dawn + SwiftShader, see dawn.ts): backend
 * selection, the whole path (embed, pretraining steps, head, checkpoint)
 * against the cpu backend, and WebGPU errors surfacing as MsnBackendError.
 * Tolerances as in the browser test (test/browser/browser.test.ts explains
 * each).
 */
import { expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { createEngine } from '../../src/runtime/engine.js';
import { selectBackend } from '../../src/runtime/select-backend.js';
import { describeOnWebGpu } from './dawn.js';

await describeOnWebGpu('the engine on WebGPU (Dawn, SwiftShader)', () => {
  it("'auto' passes the software adapter by for wasm and says why; explicit 'webgpu' takes it", async () => {
    const auto = await selectBackend('auto');
    expect(auto.backend).toBe('wasm');
    expect(auto.backends.webgpu).toMatchObject({ status: 'rejected', reason: expect.stringMatching(/SwiftShader.*software/i) });
    const explicit = await selectBackend('webgpu');
    expect(explicit.backend).toBe('webgpu');
    expect(explicit.webgpu?.adapter).toMatch(/swiftshader/i);
  });

  const TINY = { imgSize: 16, patchSize: 4, inChannels: 3, embedDim: 16, depth: 1, numHeads: 2, mlpRatio: 2, hiddenDim: 32, outputDim: 16, numPrototypes: 8 };
  const images = (n: number, seed: number) => new Uint8Array(n * 256).map((_, i) => ((i + seed) * 7919) % 256);
  const shape = (count: number) => ({ count, width: 16, height: 16, channels: 1 });

  async function scenario(backend: 'cpu' | 'webgpu') {
    const e = createEngine();
    const caps = await e.init({ config: TINY, seed: 3, backend });
    const before = await e.embed(images(8, 1), shape(8));
    const losses: number[] = [];
    const summary = await e.pretrain({ pixels: images(32, 2), shape: shape(32) }, { steps: 3, batchSize: 8 }, (p) => losses.push(p.loss));
    const after = await e.embed(images(8, 1), shape(8));
    const labels = Array.from({ length: 16 }, (_, i) => ['a', 'b'][i % 2]);
    const head = await e.fitHead({ pixels: images(16, 3), shape: shape(16), labels });
    const pred = await e.predict(head, { pixels: images(8, 1), shape: shape(8) });
    const ckpt = await e.saveCheckpoint();
    await e.loadCheckpoint(ckpt);
    const reloaded = await e.embed(images(8, 1), shape(8));
    const mem0 = (await e.memory()).numTensors;
    await e.embed(images(8, 1), shape(8));
    await e.pretrain({ pixels: images(32, 2), shape: shape(32) }, { steps: 1 });
    await e.saveCheckpoint();
    const mem1 = (await e.memory()).numTensors;
    await e.dispose();
    return { caps, before, after, reloaded, losses, steps: summary.steps, probs: pred.probabilities, mem0, mem1 };
  }

  it('embeds, pretrains 3 steps, fits a head and round-trips a checkpoint like the cpu backend', async () => {
    const cpu = await scenario('cpu');
    const gpu = await scenario('webgpu');
    expect(gpu.caps.backend).toBe('webgpu');
    expect(gpu.caps.webgpu?.probeMaxError).toBeLessThan(1e-3);
    const diff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
    expect(gpu.steps).toBe(3);
    expect(gpu.losses).toHaveLength(3); // no skipped steps
    gpu.losses.forEach((l, i) => expect(Math.abs(l - cpu.losses[i]) / Math.abs(cpu.losses[i])).toBeLessThan(1e-4));
    expect(diff(gpu.before, cpu.before)).toBeLessThan(1e-5);
    expect(diff(gpu.after, cpu.after)).toBeLessThan(1e-4);
    expect(diff(gpu.probs, cpu.probs)).toBeLessThan(1e-3);
    expect(Array.from(gpu.reloaded)).toEqual(Array.from(gpu.after));
    expect(gpu.mem1).toBe(gpu.mem0);
  });

  it('a WebGPU error during a call rejects it with MsnBackendError', async () => {
    const e = createEngine();
    await e.init({ config: TINY, seed: 3, backend: 'webgpu' });
    // tf.addN binds every input as a storage buffer; 12 exceed SwiftShader's limit of 8 per shader.
    const parts = Array.from({ length: 12 }, (_, i) => tf.fill([2048], i));
    const sum = tf.addN(parts);
    await sum.data();
    tf.dispose([...parts, sum]);
    await expect(e.embed(images(2, 1), shape(2))).rejects.toMatchObject({ name: 'MsnBackendError', message: expect.stringMatching(/WebGPU reported .*storage buffers/) });
    expect((await e.embed(images(2, 1), shape(2))).length).toBe(2 * TINY.embedDim); // errors are reported once
    await e.dispose();
  });
});
