/**
 * Every default setting of msn-web, in one place and frozen: the official
 * MSN hyperparameters (ViT-S/16 config of the official repository), the
 * default pretraining run, the views, the shipped model's recipe, the
 * default preset, the input normalisation and the seed rules.
 *
 * This module sits at the bottom of the layering: it imports nothing, not
 * even types (a type import from a module that reads these values would be
 * an import cycle; test/unit/import-graph.test.ts), so inference code,
 * training code and the heads can all read it without pulling in anything
 * else. The values keep their literal types; each is checked against its
 * option type where its home module takes it (e.g. OFFICIAL_LOSS as
 * MsnLossOptions in train/loss.ts, MNIST_MICRO_RECIPE as PretrainOptions in
 * pretrain/recipes.ts). The old homes (OFFICIAL_LOSS in train/loss.ts,
 * officialSchedule in train/schedules.ts, DEFAULT_PREPROCESS in
 * runtime/model-source.ts, officialViews in pretrain/views.ts, mnistMicro in
 * pretrain/recipes.ts ...) re-export or derive their values from here.
 */

/** A value no one can change: every nested object and array is read-only, to the type checker and at run time. */
export type Frozen<T> = T extends object ? { readonly [K in keyof T]: Frozen<T[K]> } : T;

/** Object.freeze all the way down (Object.freeze alone leaves nested objects writable). */
function deepFreeze<const T>(value: T): Frozen<T> {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value as Frozen<T>;
}

/** A writable deep copy of a default, for a caller that builds on it (configs are plain data owned by their caller). */
export function thaw<T>(value: Frozen<T>): T {
  return structuredClone(value) as T;
}

// --- the official hyperparameters --------------------------------------------

/** The MSN loss of the official config: tau 0.1, T 0.25, 3 Sinkhorn iterations, ME-MAX weight 1, entropy weight 0. */
export const OFFICIAL_LOSS = deepFreeze({
  tau: 0.1, sharpenT: 0.25, sinkhornIters: 3, memaxWeight: 1, entWeight: 0,
});

/** The temperature of MSN's own prediction (prototype probabilities): the loss's anchor temperature. */
export const PROTOTYPE_TEMPERATURE: number = OFFICIAL_LOSS.tau;

/** The official schedule values: lr 2e-4 -> 1e-3 -> 1e-6, weight decay 0.04 -> 0.4, EMA 0.996 -> 1, sharpening 0.25 throughout. */
export const OFFICIAL_SCHEDULE = deepFreeze({
  lr: { start: 2e-4, ref: 1e-3, final: 1e-6 },
  weightDecay: { start: 0.04, final: 0.4 },
  ema: { start: 0.996, end: 1.0 },
  sharpen: { start: OFFICIAL_LOSS.sharpenT, end: OFFICIAL_LOSS.sharpenT },
});

/** The official warm-up: 15 of 800 epochs, as a fraction of the planned steps. */
export const OFFICIAL_WARMUP_FRACTION = 15 / 800;

// --- normalisation and the default model -------------------------------------

/** ImageNet statistics: the official pretraining normalisation, and the one a model without its own uses. */
export const IMAGENET_MEAN: readonly number[] = deepFreeze([0.485, 0.456, 0.406]);
export const IMAGENET_STD: readonly number[] = deepFreeze([0.229, 0.224, 0.225]);

/** Per-channel (x - mean) / std of a model that carries no preprocessing (random-init presets). */
export const DEFAULT_PREPROCESS: Frozen<{ mean: number[]; std: number[] }> = deepFreeze({ mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] });

/** The random-init preset init() and pretrainConfig() use when given no model. */
export const DEFAULT_PRESET = 'micro-p4-28';

// --- seeds -------------------------------------------------------------------

/** The seed of a run or a random-init model when none is given. */
export const DEFAULT_SEED = 0;

/**
 * The prototypes of a model are initialised with the seed after the
 * encoder's, so a random-init preset and a fresh pretraining run with the
 * same seed start from the same weights.
 */
export function prototypeSeed(seed: number): number {
  return seed + 1;
}

// --- views -------------------------------------------------------------------

/** The official views for 224 px (ViT-S/16 config): 1 masked random view, 10 focal views of 96 px. */
export const OFFICIAL_VIEWS = deepFreeze({
  randViews: 1, focalViews: 10, focalSize: 96, maskRatio: 0.15,
  globalCrop: { scale: [0.3, 1.0], ratio: [3 / 4, 4 / 3], flipProb: 0.5 },
  focalCrop: { scale: [0.05, 0.3], ratio: [3 / 4, 4 / 3], flipProb: 0.5 },
  color: {
    jitterProb: 0.8, brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1,
    grayscaleProb: 0.2, blurProb: 0.5, blurSigma: [0.1, 2.0],
  },
  mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD],
});

/** Images at least this large get the official views by default; smaller ones the small views (pretrain/views.ts smallViews). */
export const OFFICIAL_VIEWS_MIN_SIZE = 160;

/** How the small views depart from the official ones (the reasons are at smallViews). */
export const SMALL_VIEWS = deepFreeze({
  focalViews: 4,
  maskRatio: 0.3,
  focalScale: [0.1, 0.4] as [number, number],
  blurProb: 0,
});

// --- pretraining runs ----------------------------------------------------------

/** What pretrainConfig() fills in besides the official values (its run length, batch, clipping, patience). */
export const DEFAULT_PRETRAIN = deepFreeze({
  preset: DEFAULT_PRESET,
  batchSize: 32,
  totalSteps: 1000,
  clipGrad: 3,
  seed: DEFAULT_SEED,
  /** Consecutive non-finite steps after which fit() stops. */
  maxBadSteps: 5,
});

/** Warm-up of a continued segment: short, since the weights and AdamW moments are already trained. */
export const SEGMENT_WARMUP_FRACTION = 0.1;

/**
 * The shipped model's recipe (models/msn-mnist-micro, whose recipe.json is
 * this object; a test keeps them equal). The reasons for each value are at
 * pretrain/recipes.ts mnistMicro.
 */
export const MNIST_MICRO_RECIPE = deepFreeze({
  model: {
    imgSize: 28, patchSize: 7, inChannels: 3, embedDim: 96, depth: 4, numHeads: 4, mlpRatio: 4,
    hiddenDim: 256, outputDim: 64, numPrototypes: 64,
  },
  views: {
    randViews: 1, focalViews: 4, focalSize: 14, maskRatio: 0.3,
    globalCrop: { scale: [0.5, 1.0], flipProb: 0 },
    focalCrop: { scale: [0.1, 0.4], flipProb: 0 },
    color: { jitterProb: 0.8, brightness: 0.4, contrast: 0.4, saturation: 0, hue: 0, grayscaleProb: 0.2, blurProb: 0 },
  },
  batchSize: 64,
  totalSteps: 27000,
  warmupSteps: 675,
  lr: { start: 0.0002, ref: 0.002, final: 0.000001 },
  weightDecay: { start: 0.04, final: 0.4 },
  ema: { start: 0.99, end: 1.0 },
  sharpen: { start: 0.25, end: 0.25 },
  loss: { tau: 0.1, sinkhornIters: 3, memaxWeight: 1, entWeight: 0 },
  clipGrad: 3,
  seed: 0,
});

/**
 * How a recipe plans a run the caller gives no length: `epochs` passes at
 * this batch, at least `minSteps` (the warm-up and cosine need room), warm-up
 * this fraction of the plan (the shipped run's 675 of 27,000).
 */
export const RECIPE_PLAN = deepFreeze({
  batchSize: 64,
  minSteps: 300,
  warmupFraction: 0.025,
  /** The shipped plan: 27,000 steps of 64 over MNIST's 60,000 training images. */
  microEpochs: 28.8,
  /** The official ViT-S/16 run (SPEC: 300 epochs for ViT-S/16). */
  officialEpochs: 300,
});
