/** The Pretrainer: learning, exact resume, abort, NaN guard, memory, bad input. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { Pretrainer, CheckpointData } from '../../src/pretrain/pretrainer.js';
import { checkpointFromBytes, checkpointToBytes } from '../../src/pretrain/checkpoint.js';
import { loadCheckpointFile, saveCheckpointFile } from '../../src/pretrain/checkpoint-node.js';
import { datasetFromImages, datasetFromPixels } from '../../src/pretrain/source.js';
import { TINY, structuredImages } from './helpers.js';
import { initPrototypes, initWeights } from '../../src/model/params.js';

const data = structuredImages(64, 1);

function weightsOf(p: Pretrainer): Float32Array[] {
  const c = p.checkpoint();
  return Object.keys(c.tensors).sort().map((k) => c.tensors[k].data);
}

describe('Pretrainer on wasm', () => {
  beforeAll(async () => {
    await useBackend('wasm');
  });

  it('pretrains end to end: the cross-entropy falls and prototypes stay in use', async () => {
    const p = Pretrainer.create({ ...TINY, totalSteps: 80 });
    const ce: number[] = [];
    let used = 0;
    await p.fit(data, { steps: 80, onProgress: (e) => { ce.push(e.ce); used = e.numProtosUsed; } });
    const first = ce.slice(0, 8).reduce((a, b) => a + b) / 8;
    const last = ce.slice(-8).reduce((a, b) => a + b) / 8;
    expect(p.step).toBe(80);
    expect(last).toBeLessThan(first - 0.1);
    expect(used).toBeGreaterThan(1); // not collapsed onto one prototype
    p.dispose();
  });

  it('resumes exactly: N steps, save, load, M steps equals N + M steps', async () => {
    const straight = Pretrainer.create(TINY);
    await straight.fit(data, { steps: 7 });
    const a = weightsOf(straight);
    straight.dispose();

    const first = Pretrainer.create(TINY);
    await first.fit(data, { steps: 4 });
    const bytes = checkpointToBytes(first.checkpoint());
    first.dispose();
    const resumed = Pretrainer.fromCheckpoint(checkpointFromBytes(bytes));
    expect(resumed.step).toBe(4);
    await resumed.fit(data, { steps: 3 });
    const b = weightsOf(resumed);
    resumed.dispose();
    expect(b.length).toBe(a.length);
    for (let i = 0; i < a.length; i++) expect(Array.from(b[i])).toEqual(Array.from(a[i]));
  });

  it('checkpoints to a file atomically and reloads it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'msn-ckpt-'));
    const path = join(dir, 'run.msnckpt');
    const p = Pretrainer.create(TINY);
    let saves = 0;
    await p.fit(data, { steps: 4, checkpointEvery: 2, onCheckpoint: async (c) => { saves++; await saveCheckpointFile(path, c); } });
    expect(saves).toBe(2);
    const loaded = await loadCheckpointFile(path);
    expect(loaded.step).toBe(4);
    const q = Pretrainer.fromCheckpoint(loaded);
    expect(weightsOf(q)).toEqual(weightsOf(p));
    q.dispose();
    p.dispose();
    // A corrupted file is refused with a clear error, never half-loaded.
    writeFileSync(path, new Uint8Array(100));
    await expect(loadCheckpointFile(path)).rejects.toMatchObject({ name: 'MsnFormatError' });
  });

  it('stops at a step boundary on abort, with a consistent, resumable state', async () => {
    const p = Pretrainer.create(TINY);
    const ctl = new AbortController();
    const err = await p.fit(data, { steps: 50, signal: ctl.signal, onProgress: (e) => { if (e.step === 3) ctl.abort(); } }).catch((e) => e);
    expect(err.name).toBe('AbortError');
    expect(p.step).toBe(3);
    const ckpt: CheckpointData = p.checkpoint();
    const q = Pretrainer.fromCheckpoint(checkpointFromBytes(checkpointToBytes(ckpt)));
    await q.fit(data, { steps: 1 });
    expect(q.step).toBe(4);
    q.dispose();
    p.dispose();
  });

  it('skips non-finite steps, reports them, and stops after maxBadSteps with the last good state', async () => {
    const p = Pretrainer.create({ ...TINY, maxBadSteps: 3 });
    await p.fit(data, { steps: 2 });
    const good = weightsOf(p);
    // NaN prototypes make every loss non-finite from here on.
    tf.tidy(() => p.state.prototypes.assign(tf.fill([8, 16], NaN)));
    const skipped: boolean[] = [];
    const err = await p.fit(data, { steps: 10, onProgress: (e) => skipped.push(e.skipped) }).catch((e) => e);
    expect(err.name).toBe('MsnNumericalError');
    expect(skipped).toEqual([true, true, true]);
    expect(p.step).toBe(2);
    const after = weightsOf(p);
    // Everything except the prototypes we poisoned is untouched.
    const names = Object.keys(p.checkpoint().tensors).sort();
    names.forEach((n, i) => {
      if (n !== 'prototypes') expect(Array.from(after[i])).toEqual(Array.from(good[i]));
    });
    p.dispose();
  });

  it('keeps numTensors flat over 50 steps', async () => {
    const p = Pretrainer.create(TINY);
    await p.fit(data, { steps: 2 });
    const before = tf.memory().numTensors;
    await p.fit(data, { steps: 50 });
    expect(tf.memory().numTensors).toBe(before);
    p.checkpoint();
    await p.readCheckpoint();
    expect(tf.memory().numTensors).toBe(before);
    p.dispose();
  });

  it('fromWeights() with the seeded init weights is the same run as create()', async () => {
    const created = Pretrainer.create(TINY);
    const cfg = created.config.model;
    const fromWeights = Pretrainer.fromWeights(TINY, initWeights(cfg, TINY.seed!), initPrototypes(cfg, TINY.seed! + 1));
    await created.fit(data, { steps: 2 });
    await fromWeights.fit(data, { steps: 2 });
    expect(Buffer.from(checkpointToBytes(fromWeights.checkpoint())).equals(Buffer.from(checkpointToBytes(created.checkpoint())))).toBe(true);
    created.dispose();
    fromWeights.dispose();
  });

  it('readCheckpoint() (async reads, for WebGPU) gives the same bytes as checkpoint()', async () => {
    const p = Pretrainer.create(TINY);
    await p.fit(data, { steps: 3 });
    const sync = checkpointToBytes(p.checkpoint());
    const read = checkpointToBytes(await p.readCheckpoint());
    expect(read.length).toBeGreaterThan(10_000);
    expect(Buffer.from(read).equals(Buffer.from(sync))).toBe(true);
    p.dispose();
  });

  it('trains from an async iterable of batches (tensors or ImageData-like arrays) until it ends', async () => {
    const p = Pretrainer.create(TINY);
    async function* batches() {
      for (let i = 0; i < 3; i++) yield data.batch(Int32Array.from({ length: 8 }, (_, j) => (8 * i + j) % 64), 1);
      const img = (v: number) => ({ data: new Uint8Array(16 * 16 * 4).fill(v), width: 16, height: 16 });
      yield [img(10), img(200), img(90), img(30)];
    }
    const before = tf.memory().numTensors;
    const steps: number[] = [];
    const summary = await p.fit(batches(), { steps: 10, onProgress: (e) => steps.push(e.step) });
    expect(summary.steps).toBe(4); // the stream ended after 4 batches
    expect(steps).toEqual([1, 2, 3, 4]);
    expect(p.step).toBe(4);
    // the yielded tensors belong to the caller; nothing of the pretrainer's is left behind
    expect(tf.memory().numTensors - before).toBe(3);
    await expect(p.fit(batches(), { epochs: 1 })).rejects.toMatchObject({ name: 'MsnValueError', message: expect.stringMatching(/stream/) });
    async function* tooSmall() {
      yield [{ data: new Uint8Array(16 * 16), width: 16, height: 16 }];
    }
    await expect(p.fit(tooSmall(), { steps: 1 })).rejects.toMatchObject({ name: 'MsnValueError', message: expect.stringMatching(/at least 2 images/) });
    p.dispose();
  });

  it('rejects bad sources with clear errors', async () => {
    const p = Pretrainer.create(TINY);
    expect(() => datasetFromImages([])).toThrow(expect.objectContaining({ name: 'MsnValueError', message: expect.stringMatching(/empty/) }));
    const img = (w: number, h: number) => ({ data: new Uint8Array(w * h * 4), width: w, height: h });
    expect(() => datasetFromImages([img(16, 16), img(16, 20)])).toThrow(expect.objectContaining({ name: 'MsnShapeError', message: expect.stringMatching(/image 1 is 16x20/) }));
    expect(() => datasetFromImages([img(16, 16), { data: new Uint8Array(10), width: 16, height: 16 }])).toThrow(expect.objectContaining({ name: 'MsnShapeError' }));
    expect(() => datasetFromPixels(new Float32Array(16 * 16).fill(NaN), 1, 16, 16, 1)).toThrow(expect.objectContaining({ name: 'MsnValueError' }));
    await expect(p.fit(structuredImages(4, 2))).rejects.toMatchObject({ name: 'MsnValueError', message: expect.stringMatching(/fewer than one batch/) });
    expect(() => Pretrainer.create({ ...TINY, batchSize: 1 })).toThrow(expect.objectContaining({ name: 'MsnConfigError' }));
    p.dispose();
  });
});
