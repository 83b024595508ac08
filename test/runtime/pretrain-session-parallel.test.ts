/**
 * `pretrain(images, { workers: 2 })` in the engine's session: the run trains
 * in two replicas (real worker threads, Node's default host) and a mirror in
 * this thread holds the target encoder the engine embeds with. The run
 * equals a ParallelPretrainer started from the same weights, bit for bit
 * (same code, same wasm kernels, same shares); the encoder in use is that
 * run's target encoder; a failed start is undone; nothing leaks here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { VisionTransformer } from '../../src/model/vit.js';
import { initPrototypes } from '../../src/model/params.js';
import { prototypeSeed } from '../../src/defaults.js';
import type { LentEncoder } from '../../src/runtime/embedder.js';
import { PretrainSession, type SessionHost } from '../../src/runtime/pretrain-session.js';
import { checkPixels, pretrainPixels } from '../../src/runtime/pixels.js';
import { ParallelPretrainer } from '../../src/pretrain/parallel.js';
import { Pretrainer, type CheckpointData } from '../../src/pretrain/pretrainer.js';
import { checkpointFromBytes } from '../../src/pretrain/checkpoint.js';
import { datasetFromPixels } from '../../src/pretrain/source.js';
import { TINY, images, shape, rejection } from './helpers.js';

const preprocess = { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
const ready = async () => undefined;
const SEED = 5;

function host() {
  const base = VisionTransformer.create(TINY, { seed: 2 });
  let lent: LentEncoder | undefined;
  const h: SessionHost & { base: VisionTransformer; lent(): LentEncoder | undefined } = {
    base,
    lent: () => lent,
    start: () => ({ encoder: base, preprocess, seed: SEED }),
    follow: (l) => void (lent = l),
    releaseBase: () => void (base.isDisposed || base.dispose()),
    guard: (f) => f(),
    replicas: () => ({ backend: 'wasm' }),
  };
  return h;
}

function expectSameCheckpoint(a: CheckpointData, b: CheckpointData): void {
  expect(a.step).toBe(b.step);
  expect(a.iteration).toBe(b.iteration);
  expect(a.numBatchesTracked).toEqual(b.numBatchesTracked);
  expect(Object.keys(a.tensors).sort()).toEqual(Object.keys(b.tensors).sort());
  for (const [k, t] of Object.entries(a.tensors)) {
    expect(t.shape, k).toEqual(b.tensors[k].shape);
    expect(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).equals(Buffer.from(b.tensors[k].data.buffer, b.tensors[k].data.byteOffset, b.tensors[k].data.byteLength)), k).toBe(true);
  }
}

/** The encoder the engine embeds with has the target weights of `ckpt`. */
async function expectLentIs(h: ReturnType<typeof host>, ckpt: CheckpointData): Promise<void> {
  const expected = Pretrainer.fromCheckpoint(ckpt);
  const a = await h.lent()!.encoder.readWeights();
  const b = await expected.state.target.readWeights();
  expected.dispose();
  for (const [k, v] of Object.entries(b.params)) expect(Array.from(a.params[k].data), k).toEqual(Array.from(v.data));
}

describe('PretrainSession with workers', () => {
  let reference: ParallelPretrainer | undefined;
  beforeAll(async () => {
    await useBackend('wasm');
  });
  afterAll(async () => {
    await reference?.dispose();
  });

  it('trains over two replicas exactly as ParallelPretrainer does, and the encoder in use is its target', async () => {
    const start = tf.memory().numTensors;
    const h = host();
    // The reference: the same start the session builds (the base's weights, seeded prototypes, the host's preprocessing).
    const opts = { model: TINY, views: { mean: preprocess.mean, std: preprocess.std }, batchSize: 4, totalSteps: 2, seed: SEED };
    reference = await ParallelPretrainer.fromWeights(opts, await h.base.readWeights(), initPrototypes(TINY, prototypeSeed(SEED)), h.base.numBatchesTracked, { workers: 2 });
    const src = checkPixels(images(8), shape(8));
    const { data, channels } = pretrainPixels(src);
    await reference.fit(datasetFromPixels(data, 8, 16, 16, channels), { steps: 2 });

    const s = new PretrainSession(h);
    const events: number[] = [];
    const sum = await s.pretrain(ready, { pixels: images(8), shape: shape(8) }, { steps: 2, batchSize: 4, workers: 2 }, (p) => events.push(p.step));
    expect(sum.totalStep).toBe(2);
    expect(events).toEqual([1, 2]);
    const ours = checkpointFromBytes(await s.saveCheckpoint());
    const theirs = await reference.readCheckpoint();
    expectSameCheckpoint(ours, theirs);
    // The engine embeds with the run's target encoder, as of the end of the call.
    await expectLentIs(h, theirs);
    expect(h.base.isDisposed).toBe(true);
    // Continued: one more step on the same replicas; workers (a run option) is refused now.
    expect((await rejection(s.pretrain(ready, { pixels: images(8), shape: shape(8) }, { workers: 2 }))).name).toBe('MsnConfigError');
    expect((await s.pretrain(ready, { pixels: images(8), shape: shape(8) }, { steps: 1 })).totalStep).toBe(3);
    expect(checkpointFromBytes(await s.saveCheckpoint()).step).toBe(3);
    // Aborted: every replica stops at the same step, and the encoder in use is the run's state there.
    const aborted = s.pretrain(ready, { pixels: images(8), shape: shape(8) }, { steps: 50 }, (p) => void (p.step >= 5 && s.abort()));
    expect((await rejection(aborted)).name).toBe('AbortError');
    const stopped = checkpointFromBytes(await s.saveCheckpoint());
    expect(stopped.step).toBeGreaterThanOrEqual(5);
    expect(stopped.step).toBeLessThan(53);
    await expectLentIs(h, stopped);
    s.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it('checks workers before anything changes, and undoes a run whose replicas refuse the batch', async () => {
    const h = host();
    const before = tf.memory().numTensors;
    const s = new PretrainSession(h);
    for (const workers of [0, 1.5, 65]) {
      const err = await rejection(s.pretrain(ready, { pixels: images(8), shape: shape(8) }, { steps: 1, batchSize: 4, workers }));
      expect(err.name).toBe('MsnValueError');
      expect(err.message).toBe(`workers must be an integer from 1 to 64, got ${workers}.`);
    }
    // 4 images cannot be split over 3 replicas: refused before any worker starts; no run, the base model is back.
    const err = await rejection(s.pretrain(ready, { pixels: images(8), shape: shape(8) }, { steps: 1, batchSize: 4, workers: 3 }));
    expect(err.name).toBe('MsnValueError');
    expect(err.message).toMatch(/batchSize 4 cannot be split over 3 workers/);
    expect(s.pretrainer).toBeUndefined();
    expect(h.base.isDisposed).toBe(false);
    expect(tf.memory().numTensors).toBe(before);
    h.base.dispose();
  });
});
