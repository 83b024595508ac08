/**
 * Named recipes: the shipped model's recipe is exactly the recipe.json it
 * was trained with, every recipe gives a valid config for any image shape,
 * and the plan, the image side and the colour rules follow the data.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { describe, expect, it } from 'vitest';
import { RECIPES, mergePretrainOptions, mnistMicro, recipeNames, recipeOptions, smallImageSide } from '../../src/pretrain/recipes.js';
import { pretrainConfig } from '../../src/pretrain/config.js';
import { MsnConfigError } from '../../src/errors.js';

const root = join(import.meta.dirname, '..', '..');
const MNIST = { height: 28, width: 28, channels: 1, count: 60_000 };

describe('recipes', () => {
  it("mnist-micro is the shipped model's recipe.json, and on MNIST's 60,000 images plans its 27,000 steps and 675 warm-up steps", () => {
    const shipped = JSON.parse(readFileSync(join(root, 'models/msn-mnist-micro/recipe.json'), 'utf8'));
    expect(mnistMicro()).toEqual(shipped);
    expect(recipeOptions('mnist-micro', MNIST)).toEqual(shipped);
    // the config a run gets from either is the same, field for field
    expect(pretrainConfig(recipeOptions('mnist-micro', MNIST))).toEqual(pretrainConfig(shipped));
  });

  it('plans from the data and the caller: epochs x count / batch (at least 300), warm-up 2.5 % of the plan', () => {
    const small = { height: 28, width: 28, channels: 1, count: 1000 };
    // 28.8 epochs of 1,000 at 64 = 450 steps, 11 of them warm-up
    expect(recipeOptions('mnist-micro', small)).toMatchObject({ batchSize: 64, totalSteps: 450, warmupSteps: 11 });
    // of 500: 225 steps, raised to the 300-step floor
    expect(recipeOptions('mnist-micro', { ...small, count: 500 })).toMatchObject({ batchSize: 64, totalSteps: 300, warmupSteps: 8 });
    expect(recipeOptions('small-images', { ...small, count: 20_000 }, { batchSize: 32 })).toMatchObject({ batchSize: 32, totalSteps: 18_000, warmupSteps: 450 });
    expect(recipeOptions('small-images', small, { totalSteps: 40 })).toMatchObject({ totalSteps: 40, warmupSteps: 1 });
    expect(recipeOptions('official', { height: 256, width: 256, channels: 3, count: 12_800 })).toEqual({ preset: 'vit-s16', batchSize: 64, totalSteps: 60_000 });
  });

  it('small-images: 4x4 patches of the shorter side within 16-64 px, focal crops of two patches, hue and saturation only in colour', () => {
    expect(smallImageSide({ height: 28, width: 28, channels: 1, count: 1 })).toEqual({ imgSize: 28, patchSize: 7 });
    expect(smallImageSide({ height: 32, width: 48, channels: 3, count: 1 })).toEqual({ imgSize: 32, patchSize: 8 });
    expect(smallImageSide({ height: 8, width: 8, channels: 3, count: 1 })).toEqual({ imgSize: 16, patchSize: 4 });
    expect(smallImageSide({ height: 500, width: 300, channels: 3, count: 1 })).toEqual({ imgSize: 64, patchSize: 16 });
    const grey = recipeOptions('small-images', { height: 32, width: 32, channels: 1, count: 5000 });
    expect(grey.model).toMatchObject({ imgSize: 32, patchSize: 8, embedDim: 96, depth: 4 });
    expect(grey.views).toMatchObject({ focalSize: 16, globalCrop: { flipProb: 0.5 }, focalCrop: { flipProb: 0.5 }, color: { saturation: 0, hue: 0 } });
    const colour = recipeOptions('small-images', { height: 32, width: 32, channels: 3, count: 5000 });
    expect(colour.views?.color).toMatchObject({ saturation: 0.4, hue: 0.1, brightness: 0.4 });
  });

  it('every recipe gives a valid config for every image side from 1 to 300 px, grey or colour', () => {
    for (const name of recipeNames()) {
      for (let side = 1; side <= 300; side += 7) {
        for (const channels of [1, 3]) {
          const cfg = pretrainConfig(recipeOptions(name, { height: side, width: side + 3, channels, count: 777 }));
          expect(cfg.model.imgSize % cfg.model.patchSize).toBe(0);
          expect(cfg.views.focalSize % cfg.model.patchSize).toBe(0);
          expect(cfg.warmupSteps).toBeLessThan(cfg.totalSteps);
        }
      }
    }
  });

  it('a config file changes single fields of a recipe; a model or preset in it replaces the recipe model', () => {
    const base = recipeOptions('small-images', { height: 32, width: 32, channels: 3, count: 5000 });
    const over = mergePretrainOptions(base, { views: { color: { hue: 0 }, focalCrop: { scale: [0.2, 0.5] } }, lr: { ref: 1e-3 } as never, seed: 4 });
    expect(over.views?.color).toEqual({ ...base.views!.color, hue: 0 });
    expect(over.views?.focalCrop).toEqual({ ...base.views!.focalCrop, scale: [0.2, 0.5] });
    expect(over.views?.globalCrop).toEqual(base.views!.globalCrop);
    expect(over.lr).toEqual({ ...base.lr, ref: 1e-3 });
    expect(over.seed).toBe(4);
    expect(over.model).toEqual(base.model);
    const preset = mergePretrainOptions(base, { preset: 'micro-p4-28' });
    expect(preset.model).toBeUndefined();
    expect(pretrainConfig({ ...preset, views: { ...preset.views, focalSize: 12 } }).model.patchSize).toBe(4);
    // the recipe's own object is not changed by a merge
    expect(recipeOptions('small-images', { height: 32, width: 32, channels: 3, count: 5000 })).toEqual(base);
  });

  it('refuses unknown names (listing the known ones), bad plans and bad data shapes with MsnConfigError', () => {
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(MsnConfigError);
        return (e as Error).message;
      }
      throw new Error('expected an error');
    };
    expect(err(() => recipeOptions('toString', MNIST))).toBe("Unknown recipe 'toString'. Available: mnist-micro, small-images, official.");
    expect(err(() => recipeOptions('mnist-micro', MNIST, { batchSize: 1 }))).toMatch(/batchSize must be an integer >= 2, got 1/);
    expect(err(() => recipeOptions('mnist-micro', MNIST, { totalSteps: 2.5 }))).toMatch(/totalSteps must be an integer >= 1, got 2.5/);
    expect(err(() => recipeOptions('mnist-micro', { ...MNIST, count: 0 }))).toMatch(/count must be a positive integer, got 0/);
    expect(err(() => recipeOptions('small-images', { ...MNIST, height: NaN }))).toMatch(/height must be a positive integer/);
    expect(Object.keys(RECIPES)).toEqual(['mnist-micro', 'small-images', 'official']);
  });

  it('creates no tensors', () => {
    const before = tf.memory().numTensors;
    for (const name of recipeNames()) pretrainConfig(recipeOptions(name, MNIST));
    expect(tf.memory().numTensors).toBe(before);
  });
});
