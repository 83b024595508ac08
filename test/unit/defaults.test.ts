/**
 * src/defaults.ts, the one home of every default: the values are the official
 * ones (written out here, so a change to a default is a change to this test),
 * nothing can change them at run time, and each module that used to hold its
 * own copy now reads (or derives) the same value.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import * as defaults from '../../src/defaults.js';
import {
  DEFAULT_PREPROCESS, DEFAULT_PRESET, DEFAULT_PRETRAIN, IMAGENET_MEAN, IMAGENET_STD, MNIST_MICRO_RECIPE, OFFICIAL_LOSS,
  OFFICIAL_SCHEDULE, OFFICIAL_VIEWS, PROTOTYPE_TEMPERATURE, SEGMENT_WARMUP_FRACTION, SMALL_VIEWS, prototypeSeed, thaw,
} from '../../src/defaults.js';
import { OFFICIAL_LOSS as LOSS_HOME } from '../../src/train/loss.js';
import { officialSchedule } from '../../src/train/schedules.js';
import { createTrainState, disposeTrainState } from '../../src/train/state.js';
import { pretrainConfig, SEGMENT_WARMUP_FRACTION as SEGMENT_HOME } from '../../src/pretrain/config.js';
import { IMAGENET_MEAN as MEAN_HOME, IMAGENET_STD as STD_HOME, type ViewConfig, defaultViews, officialViews, smallViews } from '../../src/pretrain/views.js';
import { mnistMicro } from '../../src/pretrain/recipes.js';
import { DEFAULT_PREPROCESS as PREPROCESS_HOME, preprocessOf, resolveModel } from '../../src/runtime/model-source.js';
import { PROTOTYPE_TEMPERATURE as TEMPERATURE_HOME } from '../../src/model/prototypes.js';
import { DEFAULT_PROTOTYPE_TEMPERATURE } from '../../src/heads/prototype-label.js';
import { getPreset } from '../../src/model/config.js';
import { initPrototypes } from '../../src/model/params.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Every object and array reachable from `v`, with its path. */
function objects(v: unknown, path: string, out: [string, object][] = []): [string, object][] {
  if (typeof v === 'object' && v !== null) {
    out.push([path, v]);
    for (const [k, c] of Object.entries(v)) objects(c, `${path}.${k}`, out);
  }
  return out;
}

describe('the defaults', () => {
  it('are the official values', () => {
    expect(OFFICIAL_LOSS).toEqual({ tau: 0.1, sharpenT: 0.25, sinkhornIters: 3, memaxWeight: 1, entWeight: 0 });
    expect(OFFICIAL_SCHEDULE).toEqual({
      lr: { start: 2e-4, ref: 1e-3, final: 1e-6 }, weightDecay: { start: 0.04, final: 0.4 },
      ema: { start: 0.996, end: 1.0 }, sharpen: { start: 0.25, end: 0.25 },
    });
    expect(IMAGENET_MEAN).toEqual([0.485, 0.456, 0.406]);
    expect(IMAGENET_STD).toEqual([0.229, 0.224, 0.225]);
    expect(DEFAULT_PREPROCESS).toEqual({ mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
    expect(DEFAULT_PRESET).toBe('micro-p4-28');
    expect(PROTOTYPE_TEMPERATURE).toBe(0.1);
    expect(OFFICIAL_VIEWS).toMatchObject({ randViews: 1, focalViews: 10, focalSize: 96, maskRatio: 0.15, mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] });
    expect([prototypeSeed(0), prototypeSeed(41), prototypeSeed(-3)]).toEqual([1, 42, -2]);
  });

  it('cannot be changed: every nested object and array is frozen, and writing throws', () => {
    const found = Object.entries(defaults).flatMap(([name, v]) => objects(v, name));
    // the nested ones are there (a shallow freeze would pass the first few)
    for (const p of ['OFFICIAL_SCHEDULE.lr', 'OFFICIAL_VIEWS.globalCrop.scale', 'OFFICIAL_VIEWS.color.blurSigma', 'MNIST_MICRO_RECIPE.views.color', 'DEFAULT_PREPROCESS.mean']) {
      expect(found.map(([path]) => path)).toContain(p);
    }
    for (const [path, o] of found) expect(Object.isFrozen(o), path).toBe(true);
    expect(() => {
      (OFFICIAL_SCHEDULE.lr as { ref: number }).ref = 1;
    }).toThrow(TypeError);
    expect(() => (DEFAULT_PREPROCESS.mean as number[]).push(0)).toThrow(TypeError);
    expect(() => {
      (OFFICIAL_VIEWS.globalCrop.scale as unknown as number[])[0] = 0;
    }).toThrow(TypeError);
    expect(OFFICIAL_SCHEDULE.lr.ref).toBe(1e-3);
    const probe = (): void => {
      // @ts-expect-error a Frozen value is read-only to the type checker too
      DEFAULT_PRETRAIN.batchSize = 1;
    };
    expect(probe).toThrow(TypeError);
  });

  it('thaw gives a writable deep copy that leaves the default alone', () => {
    const v = thaw<ViewConfig>(OFFICIAL_VIEWS);
    v.globalCrop.scale[0] = 0.9;
    expect(OFFICIAL_VIEWS.globalCrop.scale[0]).toBe(0.3);
  });
});

describe('each old home reads the defaults', () => {
  it('the loss, the schedules and the temperatures', () => {
    expect(LOSS_HOME).toBe(OFFICIAL_LOSS);
    expect(officialSchedule(100, 10)).toEqual({ totalSteps: 100, warmupSteps: 10, ...OFFICIAL_SCHEDULE });
    expect(TEMPERATURE_HOME).toBe(OFFICIAL_LOSS.tau);
    expect(DEFAULT_PROTOTYPE_TEMPERATURE).toBe(OFFICIAL_LOSS.tau);
  });

  it('pretrainConfig: the official schedule and loss, the default preset and run', () => {
    const c = pretrainConfig();
    const { sharpenT: _, ...loss } = OFFICIAL_LOSS;
    expect(c).toMatchObject({ ...OFFICIAL_SCHEDULE, loss, model: getPreset(DEFAULT_PRESET) });
    expect(c).toMatchObject({
      batchSize: DEFAULT_PRETRAIN.batchSize, totalSteps: DEFAULT_PRETRAIN.totalSteps, clipGrad: DEFAULT_PRETRAIN.clipGrad,
      seed: DEFAULT_PRETRAIN.seed, maxBadSteps: DEFAULT_PRETRAIN.maxBadSteps, warmupSteps: Math.round(1000 * (15 / 800)),
    });
    expect(SEGMENT_HOME).toBe(SEGMENT_WARMUP_FRACTION);
    // a config is the caller's own: changing it leaves the defaults alone
    c.lr.ref = 5;
    c.views.mean[0] = 5;
    expect(OFFICIAL_SCHEDULE.lr.ref).toBe(1e-3);
    expect(IMAGENET_MEAN[0]).toBe(0.485);
  });

  it('views, normalisation and the shipped recipe', () => {
    expect(officialViews()).toEqual(OFFICIAL_VIEWS);
    expect(defaultViews(getPreset('vit-s16'))).toEqual(OFFICIAL_VIEWS);
    const small = smallViews(getPreset(DEFAULT_PRESET));
    expect(small).toMatchObject({ focalViews: SMALL_VIEWS.focalViews, maskRatio: SMALL_VIEWS.maskRatio });
    expect(small.focalCrop.scale).toEqual(SMALL_VIEWS.focalScale);
    expect(small.color.blurProb).toBe(SMALL_VIEWS.blurProb);
    expect(defaultViews(getPreset(DEFAULT_PRESET))).toEqual(small);
    expect([MEAN_HOME, STD_HOME]).toEqual([IMAGENET_MEAN, IMAGENET_STD]);
    expect(PREPROCESS_HOME).toBe(DEFAULT_PREPROCESS);
    const cfg = getPreset(DEFAULT_PRESET);
    expect(preprocessOf({ config: cfg, params: {}, buffers: {}, meta: {} })).toEqual(DEFAULT_PREPROCESS);
    expect(mnistMicro()).toEqual(MNIST_MICRO_RECIPE);
    const root = join(import.meta.dirname, '..', '..');
    expect(JSON.parse(readFileSync(join(root, 'models/msn-mnist-micro/recipe.json'), 'utf8'))).toEqual(MNIST_MICRO_RECIPE);
  });

  it('the seed rule: a random-init preset and a fresh run both give the prototypes prototypeSeed(seed)', async () => {
    const cfg = getPreset(DEFAULT_PRESET);
    const expected = initPrototypes(cfg, prototypeSeed(7));
    expect(expected).not.toEqual(initPrototypes(cfg, 7));
    const { data } = await resolveModel(undefined, undefined, undefined, 7);
    expect(data.config).toEqual(cfg);
    expect(data.prototypes).toEqual(expected);
    const state = createTrainState(cfg, { seed: 7 });
    try {
      expect(state.prototypes.dataSync()).toEqual(expected);
    } finally {
      disposeTrainState(state);
    }
  });
});
