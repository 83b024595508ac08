/**
 * Named pretraining recipes: `msn-web pretrain --recipe <name>` and
 * `recipeOptions(name, data)`. A recipe turns the shape of a dataset (image
 * side, channels, count) into PretrainOptions: model shape, views, schedule
 * and a default run length in epochs. What each knob does and what to
 * expect on other data is in docs/pretraining.md ("Recipes").
 */
import { MNIST_MICRO_RECIPE, OFFICIAL_VIEWS, RECIPE_PLAN, thaw } from '../defaults.js';
import { MsnConfigError } from '../errors.js';
import type { VitConfig } from '../model/config.js';
import type { PretrainOptions } from './config.js';

/** What a recipe looks at: the dataset's shape, never its pixels. */
export interface RecipeData {
  height: number;
  width: number;
  channels: number;
  count: number;
}

/** What the caller fixes; the recipe fills in the rest (batch 64, its epochs). */
export interface RecipePlan {
  batchSize?: number;
  /** Planned steps; the warm-up scales with them. */
  totalSteps?: number;
}

export interface Recipe {
  readonly description: string;
  /** Passes over the data a run plans for when the caller names no length. */
  readonly epochs: number;
  options(data: RecipeData, plan?: RecipePlan): PretrainOptions;
}

/**
 * The shipped model's recipe (defaults.ts MNIST_MICRO_RECIPE, as a copy the
 * caller owns; models/msn-mnist-micro/recipe.json is this object, a test
 * keeps them equal). A 28 px ViT with 7 px patches: 16
 * tokens + CLS, so a step is cheap; 4 focal views of 14 px; no flips and no
 * hue or saturation jitter (digits are not mirror-symmetric and are grey);
 * lr 2e-3 (2x the official reference: a small model at batch 64 tolerates
 * it and learns faster); EMA from 0.99 (the official 0.996 is tuned for 300+
 * epochs; this plan is ~8).
 */
export function mnistMicro(): PretrainOptions {
  return thaw<PretrainOptions>(MNIST_MICRO_RECIPE);
}

/** The model side a small-image recipe trains at: 4x4 patches of the shorter side, 16 to 64 px. */
export function smallImageSide(data: RecipeData): { imgSize: number; patchSize: number } {
  const side = Math.min(data.height, data.width);
  const patchSize = Math.min(16, Math.max(4, Math.round(side / 4)));
  return { imgSize: 4 * patchSize, patchSize };
}

/**
 * Batch and schedule of a run: the caller's plan, else `epochs` passes at
 * batch 64 (at least 300 steps: the warm-up and cosine need room); warm-up
 * 2.5 % of the plan, as the shipped run had it (675 of 27,000).
 */
function schedule(data: RecipeData, plan: RecipePlan, epochs: number) {
  const batchSize = plan.batchSize ?? RECIPE_PLAN.batchSize;
  const totalSteps = plan.totalSteps ?? Math.max(RECIPE_PLAN.minSteps, Math.round((epochs * data.count) / batchSize));
  return { batchSize, totalSteps, warmupSteps: Math.max(1, Math.round(totalSteps * RECIPE_PLAN.warmupFraction)) };
}

const { microEpochs: MICRO_EPOCHS, officialEpochs: OFFICIAL_EPOCHS } = RECIPE_PLAN;

export const RECIPES: Readonly<Record<string, Recipe>> = Object.freeze({
  'mnist-micro': {
    description: 'the shipped model\'s recipe: 28 px, 7 px patches, width 96, depth 4, no flips (digits, glyphs, grey icons)',
    epochs: MICRO_EPOCHS,
    options(data, plan = {}) {
      return { ...mnistMicro(), ...schedule(data, plan, MICRO_EPOCHS) };
    },
  },
  'small-images': {
    description: 'the same model and schedule at 16-64 px (4x4 patches of the shorter side), with flips and colour jitter (photos, objects)',
    epochs: MICRO_EPOCHS,
    options(data, plan = {}) {
      const base = mnistMicro();
      const { imgSize, patchSize } = smallImageSide(data);
      const model: VitConfig = { ...base.model!, imgSize, patchSize };
      const colour = data.channels >= 3;
      return {
        ...base, model, ...schedule(data, plan, MICRO_EPOCHS),
        views: {
          ...base.views,
          focalSize: imgSize / 2, // two patches: the 14-of-28 px proportion of the shipped recipe
          // The official crop and flip (the focal crop keeps the recipe's wider scale).
          globalCrop: { scale: [...OFFICIAL_VIEWS.globalCrop.scale], flipProb: OFFICIAL_VIEWS.globalCrop.flipProb },
          focalCrop: { ...base.views!.focalCrop, flipProb: OFFICIAL_VIEWS.focalCrop.flipProb },
          // Hue and saturation only mean something in colour; the official values.
          color: { ...base.views!.color!, saturation: colour ? OFFICIAL_VIEWS.color.saturation : 0, hue: colour ? OFFICIAL_VIEWS.color.hue : 0 },
        },
      };
    },
  },
  official: {
    description: 'the official ViT-S/16 recipe at 224 px (1 + 10 views, lr 1e-3, EMA 0.996); needs large images and a lot of compute',
    epochs: OFFICIAL_EPOCHS,
    options(data, plan = {}) {
      // pretrainConfig's defaults are the official values (views: officialViews at 224 px).
      const { batchSize, totalSteps } = schedule(data, plan, OFFICIAL_EPOCHS);
      return { preset: 'vit-s16', batchSize, totalSteps };
    },
  },
});

export function recipeNames(): string[] {
  return Object.keys(RECIPES);
}

/** Whether `name` is a recipe (own keys only: 'toString' is not one). */
export function isRecipeName(name: string): boolean {
  return Object.prototype.hasOwnProperty.call(RECIPES, name);
}

/** PretrainOptions of the recipe `name` for a dataset of this shape. */
export function recipeOptions(name: string, data: RecipeData, plan: RecipePlan = {}): PretrainOptions {
  const r = isRecipeName(name) ? RECIPES[name] : undefined;
  if (!r) throw new MsnConfigError(`Unknown recipe '${name}'. Available: ${recipeNames().join(', ')}.`);
  for (const [k, min] of [['batchSize', 2], ['totalSteps', 1]] as const) {
    const v = plan[k];
    if (v !== undefined && (!Number.isInteger(v) || v < min)) throw new MsnConfigError(`${k} must be an integer >= ${min}, got ${v}.`);
  }
  for (const k of ['height', 'width', 'count'] as const) {
    if (!Number.isInteger(data[k]) || data[k] < 1) throw new MsnConfigError(`The data's ${k} must be a positive integer, got ${data[k]}.`);
  }
  return r.options(data, plan);
}

/**
 * `over` laid over `base`, one level into the grouped settings (views and
 * their crops and colour, lr, weight decay, EMA, sharpening, loss), so a
 * config file can change one field of a recipe. A `model` or `preset` in
 * `over` replaces the recipe's model.
 */
export function mergePretrainOptions(base: PretrainOptions, over: PretrainOptions): PretrainOptions {
  const out: PretrainOptions = { ...base, ...over };
  if (over.model !== undefined || over.preset !== undefined) {
    out.model = over.model;
    out.preset = over.preset;
  }
  for (const k of ['lr', 'weightDecay', 'ema', 'sharpen', 'loss'] as const) {
    if (base[k] || over[k]) (out as Record<string, unknown>)[k] = { ...base[k], ...over[k] };
  }
  if (base.views || over.views) {
    const b = base.views ?? {};
    const o = over.views ?? {};
    out.views = {
      ...b, ...o,
      globalCrop: { ...b.globalCrop, ...o.globalCrop },
      focalCrop: { ...b.focalCrop, ...o.focalCrop },
      color: { ...b.color, ...o.color },
    };
  }
  return out;
}
