/**
 * Data-parallel pretraining over worker threads (src/pretrain/parallel-node.ts):
 * the official multi-GPU step, equality with one thread, exact resume, a
 * dying worker, abort, memory and bad input. Real worker_threads, real
 * shared memory, tfjs-wasm in every worker.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { ParallelPretrainer } from '../../src/pretrain/parallel.js';
import { CheckpointData, Pretrainer } from '../../src/pretrain/pretrainer.js';
import { loadCheckpointFile, saveCheckpointFile } from '../../src/pretrain/checkpoint-node.js';
import { TINY, structuredImages } from './helpers.js';
import { expectOfficialMultiGpuSteps, tensorsOf } from './multi-gpu-reference.js';

const data = structuredImages(64, 3);
const OPTS = { ...TINY, batchSize: 8 };

describe('ParallelPretrainer (worker_threads, wasm)', () => {
  beforeAll(async () => {
    await useBackend('wasm');
  });

  it('two workers take the official multi-GPU step: equal to the same shares written out in one thread', async () => {
    const run = await ParallelPretrainer.create(OPTS, { workers: 2 });
    await run.fit(data, { steps: 2 });
    const got = tensorsOf(await run.readCheckpoint());
    await run.dispose();

    expectOfficialMultiGpuSteps(got, data, OPTS, 2);
  }, 60_000);

  it('one worker is bit-identical to the single-thread Pretrainer', async () => {
    const run = await ParallelPretrainer.create(OPTS, { workers: 1 });
    await run.fit(data, { steps: 3 });
    const got = tensorsOf(await run.readCheckpoint());
    await run.dispose();
    const p = Pretrainer.create(OPTS);
    await p.fit(data, { steps: 3 });
    const want = tensorsOf(p.checkpoint());
    p.dispose();
    expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
    for (const k of Object.keys(want)) expect(Array.from(got[k]), k).toEqual(Array.from(want[k]));
  }, 60_000);

  it('resumes exactly: 2 steps, checkpoint, a new run of 2 workers, 2 more equals 4 straight', async () => {
    const straight = await ParallelPretrainer.create(OPTS, { workers: 2 });
    let atTwo: CheckpointData | undefined;
    await straight.fit(data, { steps: 4, checkpointEvery: 2, onCheckpoint: (c) => void (c.step === 2 && (atTwo = c)) });
    const want = tensorsOf(await straight.readCheckpoint());
    await straight.dispose();
    expect(atTwo?.step).toBe(2);
    const resumed = await ParallelPretrainer.fromCheckpoint(atTwo!, { workers: 2 });
    expect(resumed.step).toBe(2);
    await resumed.fit(data, { steps: 2 });
    expect(resumed.step).toBe(4);
    const got = tensorsOf(await resumed.readCheckpoint());
    await resumed.dispose();
    for (const k of Object.keys(want)) expect(Array.from(got[k]), k).toEqual(Array.from(want[k]));
  }, 60_000);

  describe('a live run of two workers', () => {
    let run: ParallelPretrainer;
    beforeAll(async () => {
      run = await ParallelPretrainer.create(OPTS, { workers: 2 });
    });
    afterAll(async () => {
      await run.dispose();
    });

    it('reports progress from worker 0 and keeps the step counters', async () => {
      const steps: number[] = [];
      const s = await run.fit(data, { steps: 3, onProgress: (e) => steps.push(e.step) });
      expect(s.steps).toBe(3);
      expect(steps).toEqual([1, 2, 3]);
      expect(run.step).toBe(3);
      expect(run.iteration).toBe(3);
    }, 60_000);

    it('aborts at a step boundary on every worker, and the run goes on afterwards', async () => {
      const ac = new AbortController();
      const at = run.step;
      const err = await run.fit(data, { steps: 50, signal: ac.signal, onProgress: (e) => void (e.step === at + 2 && ac.abort()) }).catch((e) => e);
      expect(err.name).toBe('AbortError');
      const stopped = run.step;
      expect(stopped).toBeGreaterThanOrEqual(at + 2);
      expect(stopped).toBeLessThan(at + 50);
      expect((await run.readCheckpoint()).step).toBe(stopped);
      await run.fit(data, { steps: 1 });
      expect(run.step).toBe(stopped + 1);
    }, 60_000);

    it('rethrows an error from the progress callback and stops', async () => {
      const err = await run.fit(data, { steps: 20, onProgress: () => { throw new Error('user callback failed'); } }).catch((e) => e);
      expect(err.message).toBe('user callback failed');
      await run.fit(data, { steps: 1 }); // still usable
    }, 60_000);

    it('leaks no tensors in the workers or in this thread across fit() and readCheckpoint()', async () => {
      await run.fit(data, { steps: 1 });
      await run.readCheckpoint();
      const before = await run.numTensors();
      const here = tf.memory().numTensors;
      await run.fit(data, { steps: 2, checkpointEvery: 1, onCheckpoint: () => undefined });
      await run.readCheckpoint();
      await run.planSteps(5);
      expect(await run.numTensors()).toEqual(before);
      expect(tf.memory().numTensors).toBe(here);
    }, 60_000);
  });

  it('a dying worker stops the run with MsnWorkerError and the last checkpoint file stays intact', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'msn-parallel-'));
    const file = join(dir, 'run.msnckpt');
    const run = await ParallelPretrainer.create(OPTS, { workers: 2 });
    const err = await run
      .fit(data, {
        steps: 40, checkpointEvery: 1, onCheckpoint: (c) => saveCheckpointFile(file, c),
        onProgress: (e) => void (e.step === 3 && run.replica(1).terminate()),
      })
      .catch((e) => e);
    expect(err.name).toBe('MsnWorkerError');
    expect(err.message).toMatch(/worker 1 of 2 exited.*resume from the last one/);
    const saved = await loadCheckpointFile(file);
    expect(saved.step).toBeGreaterThanOrEqual(2);
    expect(saved.step).toBeLessThan(40);
    const again = await run.fit(data, { steps: 1 }).catch((e) => e);
    expect(again.name).toBe('MsnWorkerError');
    await run.dispose();
    // The file resumes.
    const resumed = await ParallelPretrainer.fromCheckpoint(saved, { workers: 2 });
    await resumed.fit(data, { steps: 1 });
    expect(resumed.step).toBe(saved.step + 1);
    await resumed.dispose();
  }, 60_000);

  it('dispose() during fit() rejects the pending call instead of leaving it waiting', async () => {
    const run = await ParallelPretrainer.create(OPTS, { workers: 2 });
    const pending = run.fit(data, { steps: 200, onProgress: (e) => void (e.step === 2 && run.dispose()) });
    await expect(pending).rejects.toMatchObject({ name: 'MsnWorkerError', message: expect.stringMatching(/disposed during this call/) });
  }, 60_000);

  it('the built library (dist/node.js) starts its replicas from dist/worker/msn.train-worker.js', () => {
    // npm test builds dist/ before vitest runs; from source, the workers run under tsx instead.
    expect(existsSync('dist/worker/msn.train-worker.js')).toBe(true);
    const script = `
      import { ParallelPretrainer } from './dist/node.js';
      import { datasetFromPixels } from './dist/train.js';
      const px = new Uint8Array(16 * 16 * 16).map((_, i) => (i * 37) % 256);
      const run = await ParallelPretrainer.create(${JSON.stringify(OPTS)}, { workers: 2 });
      const s = await run.fit(datasetFromPixels(px, 16, 16, 16, 1), { steps: 2 });
      console.log(JSON.stringify({ steps: s.steps, step: run.step }));
      await run.dispose();`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).not.toMatch(/Error/);
    expect(JSON.parse(r.stdout.trim().split('\n').pop()!)).toEqual({ steps: 2, step: 2 });
  }, 60_000);

  it('refuses what it cannot split or share, before any work', async () => {
    await expect(ParallelPretrainer.create(OPTS, { workers: 0 })).rejects.toMatchObject({ name: 'MsnValueError' });
    await expect(ParallelPretrainer.create({ ...OPTS, batchSize: 6 }, { workers: 4 })).rejects.toMatchObject({
      name: 'MsnValueError', message: expect.stringMatching(/batchSize 6 cannot be split over 4 workers/),
    });
    const run = await ParallelPretrainer.create(OPTS, { workers: 2 });
    const stream = { async *[Symbol.asyncIterator]() {} };
    await expect(run.fit(stream as never, { steps: 1 })).rejects.toMatchObject({ name: 'MsnValueError', message: expect.stringMatching(/in-memory dataset/) });
    await run.dispose();
    await expect(run.fit(data, { steps: 1 })).rejects.toMatchObject({ name: 'MsnDisposedError' });
  }, 60_000);
});
