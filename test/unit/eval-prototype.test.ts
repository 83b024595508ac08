/**
 * evaluateOnIdx with the prototype-label head: its rows (none for raw
 * pixels), the same accuracies as the client's prototype-label head fitted
 * on the same draws (one path from pixels to assignments), a model without
 * prototypes refused, and no tensors left behind.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { initPrototypes, initWeights } from '../../src/model/params.js';
import { evaluateOnIdx, type EvalModel } from '../../src/eval/mnist-eval.js';
import { sampleShots } from '../../src/eval/fewshot.js';
import { createMsn } from '../../src/runtime/client.js';
import type { IdxDataset } from '../../src/data/idx-node.js';
import type { VitConfig } from '../../src/model/config.js';
import { Rng } from '../../src/util/rng.js';

const TINY: VitConfig = {
  imgSize: 16, patchSize: 4, inChannels: 3, embedDim: 16, depth: 1, numHeads: 2, mlpRatio: 2, hiddenDim: 32, outputDim: 16, numPrototypes: 8,
};
const norm = { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };

/** 16x16 gray images of 3 kinds (a bar at a random place: rows, columns, diagonal), labels 0-2. */
function split(count: number, seed: number) {
  const rng = new Rng(seed);
  const images = new Uint8Array(count * 256);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const k = i % 3;
    labels[i] = k;
    const at = 2 + rng.int(10);
    for (let y = 0; y < 16; y++) for (let x = 0; x < 16; x++) {
      const v = k === 0 ? y : k === 1 ? x : (x + y) >> 1;
      images[i * 256 + y * 16 + x] = v >= at && v < at + 3 ? 255 : 0;
    }
  }
  return { images, labels, count, height: 16, width: 16 };
}

describe('evaluateOnIdx with the prototype-label head', () => {
  const weights = initWeights(TINY, 7);
  const prototypes = initPrototypes(TINY, 8);
  const model: EvalModel = { config: TINY, ...weights, ...norm, fingerprint: 'tiny', prototypes };
  const data: IdxDataset = { train: split(30, 1), test: split(24, 2) };
  beforeAll(async () => {
    await useBackend('wasm');
  });

  it('reports it beside linear for msn, not for raw pixels, with the accuracies of the client\'s head on the same draws', async () => {
    const before = tf.memory().numTensors;
    const rows = await evaluateOnIdx(model, data, { shots: [1, 3], seeds: 2, heads: ['linear', 'prototype-label'], methods: ['msn', 'raw-pixels'] });
    expect(tf.memory().numTensors).toBe(before);
    expect(rows.map((r) => `${r.method}/${r.head}/${r.shots}`)).toEqual([
      'msn/linear/1', 'msn/linear/3', 'msn/prototype-label/1', 'msn/prototype-label/3', 'raw-pixels/linear/1', 'raw-pixels/linear/3',
    ]);
    const msn = await createMsn({
      worker: false, backend: 'wasm',
      model: { config: TINY, ...weights, prototypes, meta: { preprocess: norm } },
    });
    const { train, test } = data;
    for (const r of rows.filter((x) => x.head === 'prototype-label')) {
      for (let s = 0; s < 2; s++) {
        const idx = sampleShots(train.labels, r.shots, s);
        const px = new Uint8Array(idx.length * 256);
        idx.forEach((i, j) => px.set(train.images.subarray(i * 256, (i + 1) * 256), j * 256));
        const shape = (count: number) => ({ count, width: 16, height: 16, channels: 1 });
        const id = await msn.fitHead({ pixels: px, shape: shape(idx.length), labels: Array.from(idx, (i) => String(train.labels[i])), kind: 'prototype-label' });
        const p = await msn.predict(id, { pixels: test.images.slice(), shape: shape(test.count) });
        const acc = p.labels.filter((l, i) => l === String(test.labels[i])).length / test.count;
        // The same images through the same assignment code: equal up to batch-size rounding, which
        // flips no image here (exact on wasm; the bound allows one image).
        expect(Math.abs(acc - r.accuracies[s]), `k=${r.shots} seed ${s}`).toBeLessThanOrEqual(1 / test.count + 1e-12);
      }
    }
    await msn.dispose();
  });

  it('refuses a model without prototypes when the head is asked for', async () => {
    const bare = { ...model, prototypes: undefined };
    await expect(evaluateOnIdx(bare, data, { shots: [1], seeds: 1, heads: ['prototype-label'], methods: ['msn'] })).rejects.toThrow(/no prototypes.*--heads linear/);
    const rows = await evaluateOnIdx(bare, data, { shots: [1], seeds: 1, heads: ['linear'], methods: ['msn'] });
    expect(rows).toHaveLength(1);
  });
});
