/**
 * Model configuration and presets. One typed, frozen object per model; the
 * head width is explicit (the official code guessed it from the model name).
 */
import { MsnConfigError } from '../errors.js';

export interface VitConfig {
  /** Side of the square training image the position embeddings are laid out for (px). */
  imgSize: number;
  /** Patch side (px); the patch embedding is a p x p stride-p convolution. */
  patchSize: number;
  /** Input channels (3 for RGB; grayscale is expanded to 3 by the image pipeline). */
  inChannels: number;
  /** Token width D. */
  embedDim: number;
  depth: number;
  numHeads: number;
  mlpRatio: number;
  /** Projection head: D -> hidden -> hidden -> output, BatchNorm after the first two. */
  hiddenDim: number;
  outputDim: number;
  /** Number of learnable prototypes K (dimension = outputDim). */
  numPrototypes: number;
}

export const LAYER_NORM_EPS = 1e-6;
export const BATCH_NORM_EPS = 1e-5;
export const BATCH_NORM_MOMENTUM = 0.1;

function official(patchSize: number, embedDim: number, depth: number, numHeads: number): VitConfig {
  return Object.freeze({
    imgSize: 224, patchSize, inChannels: 3, embedDim, depth, numHeads, mlpRatio: 4,
    hiddenDim: 2048, outputDim: 256, numPrototypes: 1024,
  });
}

/**
 * Official sizes (so converted checkpoints load) and small presets for
 * on-device work on 28-32 px images.
 */
export const PRESETS = Object.freeze({
  'vit-s16': official(16, 384, 12, 6),
  'vit-b16': official(16, 768, 12, 12),
  'vit-b8': official(8, 768, 12, 12),
  'vit-b4': official(4, 768, 12, 12),
  'vit-l16': official(16, 1024, 24, 16),
  'vit-l7': official(7, 1024, 24, 16),
  /** 28 px (MNIST-sized) images, 4 px patches: 7x7 = 49 tokens + CLS. */
  'micro-p4-28': Object.freeze({
    imgSize: 28, patchSize: 4, inChannels: 3, embedDim: 64, depth: 4, numHeads: 4, mlpRatio: 4,
    hiddenDim: 256, outputDim: 64, numPrototypes: 128,
  }),
  /** 32 px images, 4 px patches: 8x8 = 64 tokens + CLS. */
  'tiny-p4-32': Object.freeze({
    imgSize: 32, patchSize: 4, inChannels: 3, embedDim: 128, depth: 6, numHeads: 4, mlpRatio: 4,
    hiddenDim: 512, outputDim: 128, numPrototypes: 256,
  }),
} satisfies Record<string, VitConfig>);

export type PresetName = keyof typeof PRESETS;

export function getPreset(name: string): VitConfig {
  const cfg = (PRESETS as Record<string, VitConfig>)[name];
  if (!cfg) {
    throw new MsnConfigError(`Unknown preset '${name}'. Available: ${Object.keys(PRESETS).join(', ')}.`);
  }
  return cfg;
}

/** Checks a config and returns a frozen copy. */
export function validateConfig(cfg: VitConfig): VitConfig {
  const ints: (keyof VitConfig)[] = [
    'imgSize', 'patchSize', 'inChannels', 'embedDim', 'depth', 'numHeads', 'hiddenDim', 'outputDim', 'numPrototypes',
  ];
  for (const k of ints) {
    const v = cfg[k];
    if (!Number.isInteger(v) || v <= 0) {
      throw new MsnConfigError(`Config field '${k}' must be a positive integer, got ${String(v)}.`);
    }
  }
  if (!(cfg.mlpRatio > 0) || !Number.isInteger(cfg.mlpRatio * cfg.embedDim)) {
    throw new MsnConfigError(`mlpRatio * embedDim must be a positive integer, got ${cfg.mlpRatio} * ${cfg.embedDim}.`);
  }
  if (cfg.embedDim % cfg.numHeads !== 0) {
    throw new MsnConfigError(`embedDim (${cfg.embedDim}) must be divisible by numHeads (${cfg.numHeads}).`);
  }
  if (cfg.imgSize < cfg.patchSize) {
    throw new MsnConfigError(`imgSize (${cfg.imgSize}) must be at least one patch (${cfg.patchSize}).`);
  }
  return Object.freeze({ ...cfg });
}

/** Patch grid side for the position-embedding layout (floor, like the official conv). */
export function baseGrid(cfg: VitConfig): number {
  return Math.floor(cfg.imgSize / cfg.patchSize);
}
