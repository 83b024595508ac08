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
import { ParallelPretrainer } from '../../src/pretrain/parallel-node.js';
import { CheckpointData, Pretrainer, epochPermutation, viewSeed } from '../../src/pretrain/pretrainer.js';
import { pretrainConfig } from '../../src/pretrain/config.js';
import { disposeBatch, makeViews } from '../../src/pretrain/views.js';
import { loadCheckpointFile, saveCheckpointFile } from '../../src/pretrain/checkpoint-node.js';
import { createTrainState, disposeTrainState } from '../../src/train/state.js';
import { makeSchedules } from '../../src/train/schedules.js';
import { MsnTrainState, PROTOTYPES, TrainBatch, TrainHyper, applyGradients } from '../../src/train/step.js';
import { msnLossTerms, msnTargets } from '../../src/train/loss.js';
import { Rng } from '../../src/util/rng.js';
import { TINY, structuredImages } from './helpers.js';
import { exactZeroGradient } from '../parity/train-step-check.js';

const data = structuredImages(64, 3);
const OPTS = { ...TINY, batchSize: 8 };

function tensorsOf(c: CheckpointData): Record<string, Float32Array> {
  return Object.fromEntries(Object.entries(c.tensors).map(([k, v]) => [k, v.data]));
}

/**
 * The step of N workers written out in one thread: each worker's share goes
 * through its own forward passes (BatchNorm statistics per share), Sinkhorn
 * runs over all shares' targets together, the cross-entropy is the mean of
 * the shares' means, ME-MAX uses the mean probabilities of all shares.
 */
function referenceStep(
  state: MsnTrainState, shares: TrainBatch[], hyper: TrainHyper, schedules: ReturnType<typeof makeSchedules>, gradsOut: Map<string, Float32Array>[],
): number {
  const s = state.step + 1;
  const sched = { lr: schedules.lr(s), weightDecay: schedules.weightDecay(s), momentum: schedules.momentum(state.step) };
  const lossOpts = { ...hyper.loss, sharpenT: schedules.sharpen(state.step) };
  const protos = state.prototypes as unknown as tf.Tensor2D;
  const parts = tf.tidy(() => {
    const z = tf.concat(shares.map((b) => state.target.forward([{ images: b.target }], { bnMode: 'train' }))) as tf.Tensor2D;
    return tf.split(msnTargets(z, protos, lossOpts).targets, shares.length);
  }) as tf.Tensor2D[];
  const names = [...state.encoder.params.keys(), PROTOTYPES];
  const vars = [...state.encoder.params.values(), state.prototypes];
  const { value, grads } = tf.variableGrads(() => {
    const terms = shares.map((b, r) => msnLossTerms(state.encoder.forward(b.anchors, { bnMode: 'train' }), protos, parts[r], { ...lossOpts, memaxWeight: 0 }));
    const ce = tf.mean(tf.stack(terms.map((t) => t.ce)));
    const avg = tf.mean(tf.concat(terms.map((t) => t.probs)), 0);
    const memax = tf.add(tf.sum(tf.mul(avg, tf.log(avg))), Math.log(avg.shape[0]));
    return tf.add(ce, tf.mul(memax, hyper.loss.memaxWeight)) as tf.Scalar;
  }, vars);
  const byName = new Map<string, tf.Tensor>(names.map((n, i) => [n, grads[vars[i].name]]));
  const norm = Math.sqrt([...byName].filter(([n]) => n !== PROTOTYPES).reduce((a, [, g]) => a + tf.tidy(() => tf.sum(tf.square(g)).dataSync()[0]), 0));
  gradsOut.push(new Map([...byName].map(([n, g]) => [n, g.dataSync() as Float32Array])));
  applyGradients(state, byName, norm, hyper, sched);
  state.step++;
  tf.dispose([value, ...parts]);
  return norm;
}

describe('ParallelPretrainer (worker_threads, wasm)', () => {
  beforeAll(async () => {
    await useBackend('wasm');
  });

  it('two workers take the official multi-GPU step: equal to the same shares written out in one thread', async () => {
    const run = await ParallelPretrainer.create(OPTS, { workers: 2 });
    await run.fit(data, { steps: 2 });
    const got = tensorsOf(await run.readCheckpoint());
    await run.dispose();

    // The same two iterations in this thread, shares and augmentations as the workers draw them.
    const cfg = pretrainConfig(OPTS);
    const state = createTrainState(cfg.model, { seed: cfg.seed });
    const schedules = makeSchedules(cfg);
    const hyper: TrainHyper = { loss: cfg.loss, clipGrad: cfg.clipGrad };
    const perm = epochPermutation(cfg.seed, 0, data.count);
    let maxNorm = 0;
    const stepGrads: Map<string, Float32Array>[] = [];
    for (let it = 0; it < 2; it++) {
      const shares = [0, 1].map((rank) => {
        const indices = perm.subarray(it * 8 + rank * 4, it * 8 + rank * 4 + 4);
        const images = data.batch(indices, cfg.model.inChannels);
        const batch = makeViews(images, cfg.model, cfg.views, new Rng(viewSeed(cfg.seed, it, rank)));
        images.dispose();
        return batch;
      });
      maxNorm = Math.max(maxNorm, referenceStep(state, shares, hyper, schedules, stepGrads));
      shares.forEach(disposeBatch);
    }
    const want: Record<string, Float32Array> = { prototypes: state.prototypes.dataSync() as Float32Array };
    for (const [k, v] of state.encoder.params) want[`encoder/${k}`] = v.dataSync() as Float32Array;
    for (const [k, v] of state.target.params) want[`target/${k}`] = v.dataSync() as Float32Array;
    for (const [k, { m, v }] of state.optimizer.momentVariables()) {
      want[`adam_m/${k}`] = m.dataSync() as Float32Array;
      want[`adam_v/${k}`] = v.dataSync() as Float32Array;
    }
    disposeTrainState(state);
    // Only the order of float32 sums differs (each worker's partial sums, then across workers), so a
    // gradient element differs by float32 noise, at most 2e-5 of the gradient norm (as in test/parity).
    // Weights move by lr times Adam's normalised step m^/sqrt(v^), which is homogeneous of degree 0 in
    // the element's gradients: a gradient error d moves it by at most ~3 d / |g| per step, and never
    // by more than the step itself (<= 4): so the weight bound is 4e-7 (2x the largest difference of
    // elements with gradients far above the noise) plus, per step, lr x min(4, 3 noise / |g|). An
    // element whose gradient is at the noise level (exactly zero in exact arithmetic: biases in front of
    // a train-mode BatchNorm, key biases, see test/parity; or merely that small) can take a full
    // Adam step either way. Moments: 1e-4 of the tensor's largest value; where the gradient is exactly
    // zero, the noise itself (m <= noise, v <= noise^2 after two steps).
    const noiseG = 2e-5 * maxNorm;
    const adamSlack = (param: string, i: number) =>
      stepGrads.reduce((a, grads, s) => a + schedules.lr(s + 1) * Math.min(4, (3 * noiseG) / Math.abs(grads.get(param)![i])), 0);
    let worst = 0;
    for (const [k, w] of Object.entries(want)) {
      const g = got[k];
      expect(g, k).toBeDefined();
      const name = k.slice(k.indexOf('/') + 1);
      const param = k === 'prototypes' ? PROTOTYPES : name;
      const dim = cfg.model.embedDim;
      const moments = k.startsWith('adam_');
      const scale = moments ? Math.max(...w.map(Math.abs)) * 1e-4 + 1e-12 : 4e-7;
      for (let i = 0; i < w.length; i++) {
        const noise = k !== 'prototypes' && exactZeroGradient(name, dim, i);
        let tol = scale;
        if (!moments) tol += adamSlack(param, i);
        else if (noise) tol = k.startsWith('adam_m/') ? noiseG : noiseG * noiseG;
        worst = Math.max(worst, Math.abs(g[i] - w[i]) / tol);
      }
    }
    expect(worst).toBeLessThan(1);
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
        onProgress: (e) => void (e.step === 3 && run.workerThread(1).terminate()),
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
