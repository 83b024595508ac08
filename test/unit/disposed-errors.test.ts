/**
 * Every use after dispose() throws MsnDisposedError, whatever the object:
 * model, pretrainer, data-parallel replica, few-shot classifier, engine.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { VisionTransformer } from '../../src/model/vit.js';
import { Pretrainer } from '../../src/pretrain/pretrainer.js';
import { Replica } from '../../src/pretrain/replica.js';
import { createFewShotClassifier } from '../../src/heads/index.js';
import { MsnEngine } from '../../src/runtime/engine.js';
import { TINY } from '../pretrain/helpers.js';
import { throwsNamed } from './helpers.js';

describe('use after dispose', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('a model', () => {
    const m = VisionTransformer.create(TINY.model!, { seed: 0 });
    m.dispose();
    throwsNamed(() => m.encode(tf.zeros([1, 16, 16, 3]) as tf.Tensor4D), 'MsnDisposedError', /model has been disposed/);
  });

  it('a pretrainer', () => {
    const p = Pretrainer.create(TINY);
    p.dispose();
    throwsNamed(() => p.planSteps(1), 'MsnDisposedError', /pretrainer has been disposed/);
  });

  it('a replica, told apart from one never initialised', async () => {
    const fresh = new Replica();
    await expect(fresh.checkpoint()).rejects.toMatchObject({ name: 'MsnValueError', message: 'The replica was not initialised.' });
    const r = new Replica();
    await r.init({ kind: 'create', options: TINY }, 'cpu');
    r.dispose();
    await expect(r.checkpoint()).rejects.toMatchObject({ name: 'MsnDisposedError', message: 'The replica was disposed.' });
  });

  it('a few-shot classifier', () => {
    const clf = createFewShotClassifier({ head: 'centroid', fingerprint: 'enc@1' });
    clf.dispose();
    throwsNamed(() => clf.labels(), 'MsnDisposedError', /FewShotClassifier was disposed/);
  });

  it('an engine', async () => {
    const e = new MsnEngine();
    await e.dispose();
    await expect(e.ping()).rejects.toMatchObject({ name: 'MsnDisposedError' });
    await expect(e.init({})).rejects.toMatchObject({ name: 'MsnDisposedError' });
  });
});
