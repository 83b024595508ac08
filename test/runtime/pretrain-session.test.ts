/**
 * The engine's pretraining session on its own (no MsnEngine, no embedder: a
 * host that records what it is told): a run is adopted, the base model is
 * released after the first step, a failed start is undone, checkpoints
 * round-trip, abort and stop end a run at a step boundary, and every tensor
 * is freed.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { VisionTransformer } from '../../src/model/vit.js';
import type { LentEncoder } from '../../src/runtime/embedder.js';
import { PretrainSession, type SessionHost } from '../../src/runtime/pretrain-session.js';
import { TINY, images, shape, rejection } from './helpers.js';

const preprocess = { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
const ready = async () => undefined;

/** A host around one base model; `log` lists follow/release calls in order. */
function host() {
  const base = VisionTransformer.create(TINY, { seed: 2 });
  const log: string[] = [];
  let lent: LentEncoder | undefined;
  const h: SessionHost & { base: VisionTransformer; log: string[]; lent(): LentEncoder | undefined } = {
    base,
    log,
    lent: () => lent,
    start: () => ({ encoder: base, preprocess, seed: 5 }),
    follow: (l) => {
      lent = l;
      log.push(l ? 'follow run' : 'follow base');
    },
    releaseBase: () => {
      if (!base.isDisposed) base.dispose();
      log.push('release');
    },
    guard: (f) => f(),
    replicas: () => ({ backend: 'wasm' }),
  };
  return h;
}

describe('PretrainSession', () => {
  beforeAll(async () => {
    await useBackend('wasm');
  });

  it('adopts a new run, releases the base after its first step, and continues it', async () => {
    const start = tf.memory().numTensors;
    const h = host();
    const s = new PretrainSession(h);
    const sum = await s.pretrain(ready, { pixels: images(8), shape: shape(8) }, { steps: 1, batchSize: 4 });
    expect(sum.totalStep).toBe(1);
    expect(s.origin).toBe('pretrained');
    expect(s.pretrainer!.config.views.mean).toEqual(preprocess.mean);
    expect(h.lent()!.encoder).toBe(s.pretrainer!.state.target);
    expect(h.lent()!.encoder).not.toBe(h.base);
    expect(h.log).toEqual(['follow run', 'release', 'follow run']);
    expect(h.base.isDisposed).toBe(true);
    // A second call continues the run; options that set up a run are refused.
    expect((await rejection(s.pretrain(ready, { pixels: images(8), shape: shape(8) }, { batchSize: 4 }))).name).toBe('MsnConfigError');
    expect((await s.pretrain(ready, { pixels: images(8), shape: shape(8) }, { steps: 1 })).totalStep).toBe(2);
    s.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it('undoes a run that fails before its first step: the base model is back, nothing leaks', async () => {
    const h = host();
    const before = tf.memory().numTensors;
    const s = new PretrainSession(h);
    const err = await rejection(s.pretrain(ready, { pixels: images(2), shape: shape(2) }, { steps: 1, batchSize: 4 }));
    expect(err.message).toMatch(/fewer than one batch of 4/);
    expect(s.pretrainer).toBeUndefined();
    expect(s.origin).toBeUndefined();
    // An abort sent right after the call stops it before its first step: undone too.
    const aborted = s.pretrain(ready, { pixels: images(8), shape: shape(8) }, { steps: 3, batchSize: 4 });
    s.abort();
    expect((await rejection(aborted)).name).toBe('AbortError');
    expect(s.pretrainer).toBeUndefined();
    expect(h.log).toEqual(['follow base', 'follow run', 'follow base', 'follow base']);
    expect(h.base.isDisposed).toBe(false);
    expect(tf.memory().numTensors).toBe(before);
    h.base.dispose();
  });

  it('refuses a second call while one runs, and stop() ends it with MsnDisposedError', async () => {
    const h = host();
    const s = new PretrainSession(h);
    let started!: () => void;
    const firstStep = new Promise<void>((r) => (started = r));
    const run = rejection(s.pretrain(ready, { pixels: images(8), shape: shape(8) }, { steps: 1000, batchSize: 4 }, () => started()));
    expect((await rejection(s.pretrain(ready, { pixels: images(8), shape: shape(8) }))).message).toMatch(/already in progress/);
    expect((await rejection(s.loadCheckpoint(new Uint8Array(4)))).message).toMatch(/in progress/);
    await firstStep;
    await s.stop();
    expect((await run).name).toBe('MsnDisposedError');
    expect(s.pretrainer!.step).toBeGreaterThan(0); // stopped at a step boundary, still consistent
    s.dispose();
  });

  it('saves the run as a checkpoint that another session resumes exactly', async () => {
    const a = new PretrainSession(host());
    expect((await rejection(a.saveCheckpoint())).name).toBe('MsnValueError');
    await a.pretrain(ready, { pixels: images(8), shape: shape(8) }, { steps: 2, batchSize: 4, totalSteps: 4 });
    const bytes = await a.saveCheckpoint();
    const hb = host();
    const b = new PretrainSession(hb);
    expect((await rejection(b.loadCheckpoint('x' as unknown as Uint8Array))).name).toBe('MsnValueError');
    await b.loadCheckpoint(bytes);
    expect(b.origin).toBe('checkpoint');
    expect(b.pretrainer!.step).toBe(2);
    expect(hb.log).toEqual(['release', 'follow run']);
    expect(hb.lent()!.preprocess).toEqual(preprocess);
    const data = { pixels: images(8, 3), shape: shape(8) };
    const ra = await a.pretrain(ready, data, { steps: 2 });
    const rb = await b.pretrain(ready, data, { steps: 2 });
    expect(rb.lastLoss).toBe(ra.lastLoss);
    a.dispose();
    b.dispose();
  });
});
