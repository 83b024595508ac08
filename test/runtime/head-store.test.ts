/**
 * The engine's head store on its own (no model, no MsnEngine): every kind is
 * fitted from features, pixels go to the encoder through HeadInputs (with a
 * prototype-label head's temperature), bundles round-trip only onto the same
 * encoder, and numTensors stays flat.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { HeadStore, type HeadInputs } from '../../src/runtime/head-store.js';
import type { FitHeadInput, PixelData } from '../../src/runtime/api.js';
import { rejection, shape } from './helpers.js';

const D = 4;
const K = 3;
/** Two well separated classes: 'a' near +e0, 'b' near -e0. */
const features = Float32Array.from([1, 0.1, 0, 0, 0.9, 0, 0.1, 0, -1, 0, 0.1, 0, -0.9, 0.1, 0, 0]);
const labels = ['a', 'a', 'b', 'b'];
const pixels: PixelData = { pixels: new Uint8Array(4 * 16 * 16), shape: shape(4) };

/** HeadInputs over fixed rows; records what the store asked for. */
function fakeInputs() {
  const calls: string[] = [];
  const inputs: HeadInputs & { fp: string; calls: string[] } = {
    fp: 'enc-1',
    calls,
    fingerprint: async () => inputs.fp,
    sizes: () => ({ embedDim: D, numPrototypes: K }),
    features: async (d) => {
      calls.push(`features ${d.shape.count}`);
      return features.slice(0, d.shape.count * D);
    },
    prototypeProbs: async (d, tau) => {
      calls.push(`prototypes ${d.shape.count} at ${tau}`);
      // Images 0, 1 on prototype 0, images 2, 3 on prototype 2.
      return Float32Array.from({ length: d.shape.count * K }, (_, i) => (i % K === (Math.floor(i / K) < 2 ? 0 : 2) ? 0.9 : 0.05));
    },
  };
  return inputs;
}

describe('HeadStore', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('fits each feature kind, predicts, lists and deletes heads by id', async () => {
    const store = new HeadStore(fakeInputs());
    const ids = [];
    for (const kind of ['linear', 'centroid', 'knn'] as const) {
      const id = await store.fit({ features, labels, kind, k: 1 });
      ids.push(id);
      const p = await store.predict(id, { features });
      expect(p.labels).toEqual(labels);
    }
    expect(ids).toEqual(['head-1', 'head-2', 'head-3']);
    expect(store.ids()).toEqual(ids);
    store.delete('head-2');
    expect(store.ids()).toEqual(['head-1', 'head-3']);
    expect(() => store.delete('head-2')).toThrow(/No head 'head-2'.*head-1, head-3/);
  });

  it('refuses an unknown kind, mismatched labels and features of another encoder size', async () => {
    const store = new HeadStore(fakeInputs());
    expect((await rejection(store.fit({ features, labels, kind: 'tree' } as unknown as FitHeadInput))).name).toBe('MsnConfigError');
    expect((await rejection(store.fit({ features, labels: ['a', 'b'] }))).name).toBe('MsnShapeError');
    expect((await rejection(store.fit({ features: new Float32Array(8), labels }))).message).toMatch(/2 values per example.*have 4/);
    expect((await rejection(store.fit({ features, labels: [1, 2, 3, 4] } as unknown as FitHeadInput))).name).toBe('MsnValueError');
    expect(store.ids()).toEqual([]);
  });

  it('embeds pixels through its inputs, and refuses pixels once the encoder changed', async () => {
    const inputs = fakeInputs();
    const store = new HeadStore(inputs);
    const id = await store.fit({ ...pixels, labels });
    expect((await store.predict(id, pixels)).labels).toEqual(labels);
    expect(inputs.calls).toEqual(['features 4', 'features 4']);
    inputs.fp = 'enc-2';
    expect((await rejection(store.predict(id, pixels))).message).toMatch(/fitted on features of encoder 'enc-1'.*'enc-2'/);
    expect((await store.predict(id, { features })).labels).toEqual(labels); // features carry no encoder: accepted
  });

  it("fits prototype-label heads from names or from assignments at the head's temperature", async () => {
    const inputs = fakeInputs();
    const store = new HeadStore(inputs);
    const named = await store.fit({ kind: 'prototype-label', prototypeLabels: { 0: 'a', 2: 'b' } });
    const fitted = await store.fit({ ...pixels, labels, kind: 'prototype-label', temperature: 0.2 });
    expect(inputs.calls).toEqual(['prototypes 4 at 0.2']);
    expect((await store.predict(fitted, pixels)).labels).toEqual(labels);
    expect(inputs.calls).toEqual(['prototypes 4 at 0.2', 'prototypes 4 at 0.2']);
    expect((await store.predict(named, pixels)).labels).toEqual(labels);
    expect(inputs.calls[2]).toBe('prototypes 4 at 0.1'); // the official temperature by default
    expect((await rejection(store.fit({ features, labels, kind: 'prototype-label' }))).message).toMatch(/3 per image.*got 4/);
  });

  it('saves a head as bytes that load back onto the same encoder only', async () => {
    const inputs = fakeInputs();
    const store = new HeadStore(inputs);
    const id = await store.fit({ features, labels, kind: 'centroid' });
    const bytes = store.save(id);
    const copy = await store.load(bytes);
    expect(copy).not.toBe(id);
    expect((await store.predict(copy, { features })).probabilities).toEqual((await store.predict(id, { features })).probabilities);
    inputs.fp = 'enc-2';
    expect((await rejection(store.load(bytes))).name).toBe('MsnConfigError');
  });

  it('keeps numTensors flat across fit, predict, save, load and delete', async () => {
    const store = new HeadStore(fakeInputs());
    const before = tf.memory().numTensors;
    for (const kind of ['linear', 'centroid', 'knn'] as const) {
      const id = await store.fit({ features, labels, kind, k: 1 });
      await store.predict(id, { features });
      await store.load(store.save(id));
    }
    store.clear();
    expect(store.ids()).toEqual([]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
