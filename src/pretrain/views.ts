/**
 * MSN's multi-crop views for one batch, in the layout the train step wants:
 * one target view, `randViews` random anchor views (masked by one shared set
 * of kept patches, as the official code does), and `focalViews` small focal
 * crops (focal masking = the small crop itself), all view-major.
 */
import * as tf from '@tensorflow/tfjs-core';
import { OFFICIAL_VIEWS, OFFICIAL_VIEWS_MIN_SIZE, SMALL_VIEWS, thaw } from '../defaults.js';
import { MsnConfigError } from '../errors.js';
import { MODEL_LIMITS, VitConfig } from '../model/config.js';
import { TrainBatch } from '../train/step.js';
import { Rng } from '../util/rng.js';
import { normalizePixels } from '../image/preprocess.js';
import { ColorSpec, CropSpec, colorAugment, randomResizedCrops } from './augment.js';

export interface ViewConfig {
  randViews: number;
  focalViews: number;
  focalSize: number;
  /** Fraction of the random view's patches dropped (official 0.15 for ViT-S/16). */
  maskRatio: number;
  globalCrop: Omit<CropSpec, 'size'>;
  focalCrop: Omit<CropSpec, 'size'>;
  color: ColorSpec;
  mean: number[];
  std: number[];
}

export { IMAGENET_MEAN, IMAGENET_STD } from '../defaults.js';

/** The official views for 224 px (ViT-S/16 config; defaults.ts OFFICIAL_VIEWS), as a copy the caller owns. */
export function officialViews(): ViewConfig {
  return thaw<ViewConfig>(OFFICIAL_VIEWS);
}

/**
 * Scaled-down views for 28-32 px images. The focal side keeps the official
 * 96/224 proportion (rounded to whole patches: 12 px at 28 and 32 px); blur
 * sigma scales with the image (2 px at 224 is a quarter pixel at 28, so blur
 * is off); fewer focal views (4) keep a step affordable on one core; the
 * focal area range is widened to (0.1, 0.4) because a 5 % crop of a 28 px
 * digit is a couple of strokes; masking 0.3 (the ViT-B ratio) since small
 * grids have few redundant patches. For digits and text pass
 * `{ globalCrop: { flipProb: 0 }, focalCrop: { flipProb: 0 } }`: they are
 * not mirror-symmetric.
 */
export function smallViews(cfg: VitConfig): ViewConfig {
  const p = cfg.patchSize;
  const focalSize = Math.max(p, Math.round((cfg.imgSize * 96) / 224 / p) * p);
  const v = officialViews();
  const { focalViews, maskRatio, focalScale, blurProb } = SMALL_VIEWS;
  return {
    ...v, focalViews, focalSize, maskRatio,
    focalCrop: { ...v.focalCrop, scale: [...focalScale] },
    color: { ...v.color, blurProb },
  };
}

export function defaultViews(cfg: VitConfig): ViewConfig {
  return cfg.imgSize >= OFFICIAL_VIEWS_MIN_SIZE ? officialViews() : smallViews(cfg);
}

/**
 * Bounds on the views of one step, checked by validateViews before any view
 * is cut: each view is a full forward and backward pass per image, so a
 * checkpoint asking for 1e6 focal views must fail here, not in the wasm heap.
 * The official recipe uses 1 random (masked) view and 10 focal views.
 */
export const VIEW_LIMITS = Object.freeze({
  maxRandViews: 16,
  maxFocalViews: 64,
});

export function validateViews(v: ViewConfig, cfg: VitConfig): void {
  const bad = (m: string) => {
    throw new MsnConfigError(`views: ${m}`);
  };
  if (typeof v !== 'object' || v === null) bad(`expected an object (see officialViews()), got ${v === null ? 'null' : typeof v}.`);
  if (!Number.isInteger(v.randViews) || v.randViews < 1) bad(`randViews must be an integer >= 1, got ${v.randViews}.`);
  if (v.randViews > VIEW_LIMITS.maxRandViews) {
    bad(`randViews is ${v.randViews}, above the limit of ${VIEW_LIMITS.maxRandViews} (VIEW_LIMITS.maxRandViews; the official recipe uses 1). Use fewer masked views.`);
  }
  if (!Number.isInteger(v.focalViews) || v.focalViews < 0) bad(`focalViews must be an integer >= 0, got ${v.focalViews}.`);
  if (v.focalViews > VIEW_LIMITS.maxFocalViews) {
    bad(`focalViews is ${v.focalViews}, above the limit of ${VIEW_LIMITS.maxFocalViews} (VIEW_LIMITS.maxFocalViews; the official recipe uses 10). Use fewer focal views.`);
  }
  if (v.focalViews > 0) {
    const max = MODEL_LIMITS.maxImgSize;
    if (!Number.isInteger(v.focalSize) || v.focalSize < cfg.patchSize || v.focalSize === cfg.imgSize || v.focalSize > max) {
      bad(
        `focalSize must be an integer of at least one patch (${cfg.patchSize}), at most ${max} (MODEL_LIMITS.maxImgSize), ` +
          `and differ from the image size ${cfg.imgSize}, got ${v.focalSize}.`,
      );
    }
    const tokens = Math.floor(v.focalSize / cfg.patchSize) ** 2 + 1;
    if (tokens > MODEL_LIMITS.maxTokens) {
      bad(`focalSize ${v.focalSize} gives ${tokens} tokens per focal view, above the limit of ${MODEL_LIMITS.maxTokens} (MODEL_LIMITS.maxTokens); use smaller focal crops.`);
    }
  }
  if (!(v.maskRatio >= 0 && v.maskRatio < 1)) bad(`maskRatio must be in [0, 1), got ${v.maskRatio}.`);
  for (const [name, c] of [['globalCrop', v.globalCrop], ['focalCrop', v.focalCrop]] as const) {
    if (typeof c !== 'object' || c === null || !Array.isArray(c.scale) || !Array.isArray(c.ratio)) bad(`${name} must be { scale: [lo, hi], ratio: [lo, hi] }.`);
    if (!(c.scale[0] > 0 && c.scale[0] <= c.scale[1] && c.scale[1] <= 1)) bad(`${name}.scale must satisfy 0 < lo <= hi <= 1.`);
    if (!(c.ratio[0] > 0 && c.ratio[0] <= c.ratio[1])) bad(`${name}.ratio must satisfy 0 < lo <= hi.`);
  }
  if (
    !Array.isArray(v.mean) || !Array.isArray(v.std) ||
    v.mean.length !== cfg.inChannels || v.std.length !== cfg.inChannels || v.std.some((s) => !(s > 0))
  ) {
    bad(`mean and std need ${cfg.inChannels} entries with std > 0.`);
  }
}

/** Kept patch indices for one masked group: the first floor(N (1 - r)) of a random permutation. */
export function sampleKeep(rng: Rng, numPatches: number, maskRatio: number): number[] {
  const keep = Math.max(1, Math.floor(numPatches * (1 - maskRatio)));
  return Array.from(rng.permutation(numPatches).subarray(0, keep));
}

/**
 * Views of `images` ([B, H, W, C] in [0, 1], C = cfg.inChannels). The caller
 * owns the returned tensors (disposeBatch).
 */
export function makeViews(images: tf.Tensor4D, cfg: VitConfig, v: ViewConfig, rng: Rng): TrainBatch {
  const s = cfg.imgSize;
  const prep = (x: tf.Tensor4D) => {
    const c = colorAugment(x, v.color, rng);
    const out = normalizePixels(c, v.mean, v.std);
    c.dispose();
    x.dispose();
    return out;
  };
  const target = prep(randomResizedCrops(images, 1, { ...v.globalCrop, size: s }, rng));
  const rand = prep(randomResizedCrops(images, v.randViews, { ...v.globalCrop, size: s }, rng));
  const g = Math.floor(s / cfg.patchSize);
  const keepPatches = v.maskRatio > 0 ? sampleKeep(rng, g * g, v.maskRatio) : undefined;
  const anchors: TrainBatch['anchors'] = [{ images: rand, keepPatches }];
  if (v.focalViews > 0) {
    anchors.push({ images: prep(randomResizedCrops(images, v.focalViews, { ...v.focalCrop, size: v.focalSize }, rng)) });
  }
  return { target, anchors };
}

export function disposeBatch(b: TrainBatch): void {
  tf.dispose([b.target, ...b.anchors.map((a) => a.images)]);
}
