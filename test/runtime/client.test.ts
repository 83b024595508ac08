/**
 * The client in Node: in-thread and in a worker_threads worker (running the
 * TypeScript sources through tsx), the same results, errors that keep their
 * kind across the boundary, transfers, abort, dead workers, dispose and
 * memory. One test drives the built dist/ (default worker URL).
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { createMsn, type MsnClient } from '../../src/runtime/client.js';
import { MsnEngine } from '../../src/runtime/engine.js';
import { MsnAbortError, MsnBackendError, MsnShapeError, MsnWorkerError } from '../../src/errors.js';
import { VisionTransformer } from '../../src/model/vit.js';
import { initWeights } from '../../src/model/params.js';
import { embedImages } from '../../src/embed/embed.js';
import { datasetFromPixels } from '../../src/pretrain/source.js';
import { useBackend } from '../../src/runtime/backend.js';
import { TINY, WORKER, images, shape, rejection } from './helpers.js';

const labels = (n: number) => Array.from({ length: n }, (_, i) => ['a', 'b', 'c'][i % 3]);

/** p, or a failure naming `what` after `ms` (a deadline for calls that must settle, not a speed check). */
function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`after ${ms} ms: ${what}`)), ms)));
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

describe('in-thread engine', () => {
  beforeAll(async () => {
    await useBackend('wasm');
  });

  it('embeds exactly like embedImages (same backend, same math)', async () => {
    const engine = new MsnEngine();
    await engine.init({ config: TINY, seed: 4, backend: 'wasm' });
    const px = images(6);
    const got = await engine.embed(px, shape(6));
    const vit = VisionTransformer.create(TINY, initWeights(TINY, 4));
    const want = await embedImages(vit, datasetFromPixels(px, 6, 16, 16, 1), { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
    vit.dispose();
    expect(Array.from(got)).toEqual(Array.from(want));
    await engine.dispose();
  });

  it('leaves tf.memory().numTensors where it found it after a full lifecycle', async () => {
    const before = tf.memory().numTensors;
    const engine = new MsnEngine();
    await engine.init({ config: TINY, backend: 'wasm' });
    await engine.embed(images(4), shape(4));
    await engine.pretrain({ pixels: images(16, 2), shape: shape(16) }, { steps: 2, batchSize: 8 });
    const id = await engine.fitHead({ pixels: images(9, 3), shape: shape(9), labels: labels(9) });
    await engine.predict(id, { pixels: images(3), shape: shape(3) });
    const bytes = await engine.saveCheckpoint();
    await engine.loadCheckpoint(bytes);
    await engine.loadHead(await engine.saveHead(id));
    // Repeated calls do not grow the count.
    const m0 = (await engine.memory()).numTensors;
    await engine.embed(images(4), shape(4));
    await engine.predict(id, { pixels: images(3), shape: shape(3) });
    expect((await engine.memory()).numTensors).toBe(m0);
    await engine.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect((await rejection(engine.embed(images(1), shape(1)))).name).toBe('MsnDisposedError');
  });
});

describe('worker_threads client', () => {
  let worker: MsnClient;
  let local: MsnClient;

  beforeAll(async () => {
    [worker, local] = await Promise.all([
      createMsn({ ...WORKER, config: TINY, seed: 5, backend: 'wasm' }),
      createMsn({ worker: false, config: TINY, seed: 5, backend: 'wasm' }),
    ]);
  });
  afterAll(async () => {
    await worker?.dispose();
    await local?.dispose();
  });

  it('runs in a worker and gives the in-thread results bit for bit', async () => {
    expect(worker.host).toBe('node-worker');
    expect(local.host).toBe('in-thread');
    const a = await worker.embed(images(5), shape(5));
    const b = await local.embed(images(5), shape(5));
    expect(Array.from(a)).toEqual(Array.from(b));
    const caps = await worker.capabilities();
    expect(caps.backend).toBe('wasm');
    expect(caps.wasmKernels).toEqual({ active: true, reason: 'kernels.wasm' }); // in the worker thread too
    expect(caps.backends.webgpu.status).toBe('not-tried');
    expect(caps.model.fingerprint).toBe((await local.capabilities()).model.fingerprint);
  });

  it('transfers pixel buffers unless transfer: false, and refuses detached ones', async () => {
    const px = images(2);
    await worker.embed(px, shape(2));
    expect(px.byteLength).toBe(0);
    const kept = images(2);
    await worker.embed(kept, shape(2), { transfer: false });
    expect(kept.byteLength).toBe(2 * 256);
    const err = await rejection(worker.embed(px, shape(2)));
    expect(err.name).toBe('MsnValueError');
    expect(err.message).toMatch(/detached/);
    // A view into a larger buffer is copied, not detached.
    const big = images(4);
    const view = big.subarray(256, 768);
    await worker.embed(view, shape(2));
    expect(big.byteLength).toBe(4 * 256);
    expect(await worker.ping(new Float32Array(1000))).toBe(4000);
  });

  it('keeps error names, classes and messages across the boundary', async () => {
    const [a, b] = await Promise.all([
      rejection(worker.embed(images(1), { count: 2, width: 16, height: 16, channels: 1 })),
      rejection(local.embed(images(1), { count: 2, width: 16, height: 16, channels: 1 })),
    ]);
    expect(a.name).toBe('MsnShapeError');
    expect(a).toBeInstanceOf(MsnShapeError);
    expect(a.message).toBe(b.message);
    const range = await rejection(worker.embed(new Float32Array(256).fill(3), shape(1)));
    expect(range.name).toBe('MsnValueError');
    expect(range.message).toMatch(/valueRange: 255/);
    const backend = await rejection(createMsn({ ...WORKER, config: TINY, backend: 'webgpu' }));
    expect(backend).toBeInstanceOf(MsnBackendError);
    expect(backend.message).toMatch(/navigator\.gpu is not available/);
  });

  it('checks the encoder fingerprint when loading a head', async () => {
    const id = await worker.fitHead({ pixels: images(9, 3), shape: shape(9), labels: labels(9), kind: 'centroid' });
    const bytes = await worker.saveHead(id);
    const other = await createMsn({ worker: false, config: TINY, seed: 6, backend: 'wasm' });
    const err = await rejection(other.loadHead(bytes));
    await other.dispose();
    expect(err.name).toBe('MsnConfigError');
    expect(err.message).toMatch(/fingerprint mismatch/);
    const again = await worker.loadHead(bytes);
    const p = await worker.predict(again, { pixels: images(3), shape: shape(3) });
    expect(p.labels).toHaveLength(3);
  });

  it('pretrains with progress and checkpoint callbacks, aborts, and resumes from bytes', async () => {
    const steps: number[] = [];
    const ckpts: number[] = [];
    const s = await worker.pretrain(
      { pixels: images(16, 9), shape: shape(16) },
      { steps: 2, batchSize: 8, totalSteps: 50, onProgress: (p) => steps.push(p.step), onCheckpoint: (b, step) => void ckpts.push(step, b.length) },
    );
    expect(s.steps).toBe(2);
    expect(steps).toEqual([1, 2]);
    expect(ckpts[0]).toBe(2);
    expect(ckpts[1]).toBeGreaterThan(1000);
    const ac = new AbortController();
    const err = await rejection(worker.pretrain(
      { pixels: images(16, 9), shape: shape(16) },
      { steps: 400, signal: ac.signal, onProgress: (p) => (p.step >= 4 ? ac.abort() : undefined) },
    ));
    expect(err).toBeInstanceOf(MsnAbortError);
    const caps = await worker.capabilities();
    expect(caps.pretraining?.step).toBeGreaterThanOrEqual(4);
    expect(caps.pretraining?.step).toBeLessThan(10);
    const again = await rejection(worker.pretrain({ pixels: images(16, 9), shape: shape(16) }, { steps: 1, batchSize: 4 }));
    expect(again.name).toBe('MsnConfigError');
    const bytes = await worker.saveCheckpoint();
    await local.loadCheckpoint(bytes);
    expect(Array.from(await local.embed(images(3), shape(3)))).toEqual(Array.from(await worker.embed(images(3), shape(3))));
  });

  it('pretrains over two replicas from inside the worker engine (workers: 2), as the same run in this thread does', async () => {
    const [par, one] = await Promise.all([
      createMsn({ ...WORKER, config: TINY, seed: 5, backend: 'wasm' }),
      createMsn({ worker: false, config: TINY, seed: 5, backend: 'wasm' }),
    ]);
    try {
      const data = () => ({ pixels: images(16, 9), shape: shape(16) }); // fresh: a call transfers its pixels
      const steps: number[] = [];
      const s = await par.pretrain(data(), { steps: 2, batchSize: 8, workers: 2, onProgress: (p) => steps.push(p.step) });
      expect(s.totalStep).toBe(2);
      expect(steps).toEqual([1, 2]);
      expect((await par.capabilities()).pretraining).toEqual({ step: 2, totalSteps: 2, batchSize: 8, workers: 2 });
      const m0 = (await par.memory()).numTensors;
      await par.pretrain(data(), { steps: 1 });
      expect((await par.memory()).numTensors).toBe(m0); // a new mirror replaces the old one, nothing stays behind
      // The same run in one thread differs (BatchNorm statistics per replica, as per GPU), so the
      // two replicas really trained: the encoder in use is the replicas' and its checkpoint resumes.
      await one.pretrain(data(), { steps: 3, batchSize: 8 });
      const probe = () => images(3);
      expect(Array.from(await par.embed(probe(), shape(3)))).not.toEqual(Array.from(await one.embed(probe(), shape(3))));
      await one.loadCheckpoint(await par.saveCheckpoint());
      expect(Array.from(await one.embed(probe(), shape(3)))).toEqual(Array.from(await par.embed(probe(), shape(3))));
    } finally {
      await Promise.all([par.dispose(), one.dispose()]);
    }
  });

  it('keeps numTensors flat in the worker across repeated calls', async () => {
    const id = await worker.fitHead({ pixels: images(6, 4), shape: shape(6), labels: labels(6) });
    await worker.embed(images(3), shape(3));
    const m0 = (await worker.memory()).numTensors;
    for (let i = 0; i < 3; i++) {
      await worker.embed(images(3), shape(3));
      await worker.predict(id, { pixels: images(2), shape: shape(2) });
    }
    expect((await worker.memory()).numTensors).toBe(m0);
  });
});

describe('worker lifecycle', () => {
  it('a killed worker rejects every pending call with MsnWorkerError; a new client works', async () => {
    const msn = await createMsn({ ...WORKER, config: TINY, backend: 'wasm' });
    const run = rejection(msn.pretrain({ pixels: images(16), shape: shape(16) }, { steps: 1000, batchSize: 8 }));
    const embed = rejection(msn.embed(images(2), shape(2))).catch(() => new Error('resolved'));
    await new Promise((r) => setTimeout(r, 300));
    await (msn.worker as { terminate(): Promise<number> }).terminate(); // as if the OS killed it
    // Its own deadline: a client that misses the death would otherwise fail only at vitest's 120 s timeout.
    const [e1, e2] = await within(10_000, 'pending calls were not rejected after the worker died', Promise.all([run, embed]));
    expect(e1).toBeInstanceOf(MsnWorkerError);
    expect(e1.message).toMatch(/exited with code 1/);
    expect(['MsnWorkerError', 'resolved']).toContain(e2.message === 'resolved' ? 'resolved' : e2.name); // it may have finished first
    expect((await within(10_000, 'a call after the death did not reject', rejection(msn.memory()))).name).toBe('MsnWorkerError');
    await msn.dispose();
    const fresh = await createMsn({ ...WORKER, config: TINY, backend: 'wasm' });
    expect((await fresh.embed(images(1), shape(1))).length).toBe(16);
    await fresh.dispose();
  });

  it('a worker that runs out of memory rejects with MsnWorkerError naming the cause', async () => {
    const err = await rejection(createMsn({
      ...WORKER,
      nodeWorkerOptions: { ...WORKER.nodeWorkerOptions, resourceLimits: { maxOldGenerationSizeMb: 4, maxYoungGenerationSizeMb: 1 } },
      config: TINY,
      backend: 'wasm',
    }));
    expect(err).toBeInstanceOf(MsnWorkerError);
    expect(err.message).toMatch(/ERR_WORKER_OUT_OF_MEMORY/);
  });

  it('dispose() frees the engine, terminates the thread and rejects pending and later calls', async () => {
    const msn = await createMsn({ ...WORKER, config: TINY, backend: 'wasm' });
    const w = msn.worker as { threadId: number; once(ev: 'exit', cb: (code: number) => void): void };
    const exited = new Promise<number>((r) => w.once('exit', r));
    // Handle the rejection right away: tfjs-backend-wasm's Node glue turns unhandled rejections into crashes.
    const pending = rejection(msn.pretrain({ pixels: images(16), shape: shape(16) }, { steps: 1000, batchSize: 8 }));
    await new Promise((r) => setTimeout(r, 200));
    await msn.dispose();
    expect((await pending).name).toBe('MsnDisposedError'); // as documented, not the AbortError of the stopped loop
    await exited;
    expect((await rejection(msn.embed(images(1), shape(1)))).name).toBe('MsnDisposedError');
  });
});

describe('built dist/', () => {
  it('createMsn from dist/index.js starts dist/worker/msn.node-worker.js by default', async () => {
    if (!existsSync(new URL('../../dist/worker/msn.node-worker.js', import.meta.url))) {
      throw new Error('dist/ is not built: run `npm run build` (npm test does it first).');
    }
    const dist = (await import(new URL('../../dist/index.js', import.meta.url).href)) as typeof import('../../src/index.js');
    const msn = await dist.createMsn({ config: TINY, backend: 'wasm' });
    expect(msn.host).toBe('node-worker');
    const f = await msn.embed(images(2), shape(2));
    expect(f.length).toBe(32);
    const err = await rejection(msn.embed(images(1), shape(3)));
    expect(err.name).toBe('MsnShapeError'); // (the class is whichever msn-web copy registered comlink's handler first)
    await msn.dispose();
  });
});
