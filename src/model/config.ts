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

/**
 * Upper bounds on every size a config can ask for, checked by validateConfig
 * before anything is allocated. Every model file, checkpoint and import goes
 * through validateConfig, so a small hostile file (say `depth: 1e9`) fails in
 * microseconds instead of allocating gigabytes. The bounds are generous: the
 * largest official MSN model (ViT-L/7 at 224 px: width 1024, 24 blocks, 1025
 * tokens, ~311M numbers with head and prototypes) uses 58 % of the
 * parameter budget; ViT-B/4 (3,137 tokens) fits as well. The parameter budget
 * matches the 2 GiB of float32 that the model format, the checkpoint reader
 * and the torch importer accept.
 */
export const MODEL_LIMITS = Object.freeze({
  /** Largest image side (px) the position embeddings may be laid out for. */
  maxImgSize: 4096,
  maxPatchSize: 64,
  maxInChannels: 16,
  /** Token width; ViT-g is 1408, ViT-G 1664. */
  maxEmbedDim: 4096,
  /** Transformer blocks; ViT-L has 24, ViT-G 48. */
  maxDepth: 64,
  maxNumHeads: 64,
  /** Width of a block's MLP (mlpRatio x embedDim). */
  maxMlpDim: 16384,
  /** Patch tokens plus CLS, (imgSize / patchSize)^2 + 1; a 128 x 128 grid. */
  maxTokens: 128 * 128 + 1,
  /** Projection-head widths (official 2048 hidden, 256 output). */
  maxHiddenDim: 16384,
  maxOutputDim: 16384,
  /** Prototypes (official 1024). */
  maxPrototypes: 65536,
  /** Parameters + BatchNorm buffers + prototypes, in numbers. */
  maxParameters: 2 ** 29,
  /** The same in float32 bytes (2 GiB). */
  maxParameterBytes: 2 ** 31,
});

/** Numbers in a model of this config: parameters, BatchNorm buffers and prototypes (matches paramSpecs/bufferSpecs). */
export function parameterCount(cfg: VitConfig): number {
  const d = cfg.embedDim;
  const mlp = Math.round(d * cfg.mlpRatio);
  const h = cfg.hiddenDim;
  const o = cfg.outputDim;
  const tokens = baseGrid(cfg) ** 2 + 1;
  const stem = d + tokens * d + cfg.patchSize ** 2 * cfg.inChannels * d + d; // cls, pos_embed, patch weight + bias
  const block = 4 * d * d + 2 * d * mlp + 9 * d + mlp; // norms, qkv, proj, fc1, fc2 with biases
  const head = 2 * d + (d * h + h) + 2 * h + (h * h + h) + 2 * h + (h * o + o); // final norm, fc1, bn1, fc2, bn2, fc3
  const buffers = 4 * h; // running mean and var of bn1, bn2
  return stem + cfg.depth * block + head + buffers + cfg.numPrototypes * o;
}

/** Checks a config (types, consistency, MODEL_LIMITS) and returns a frozen copy. */
export function validateConfig(cfg: VitConfig): VitConfig {
  if (typeof cfg !== 'object' || cfg === null) {
    throw new MsnConfigError(`A model config must be an object with imgSize, patchSize, embedDim, ...; got ${cfg === null ? 'null' : typeof cfg}.`);
  }
  const ints: (keyof VitConfig)[] = [
    'imgSize', 'patchSize', 'inChannels', 'embedDim', 'depth', 'numHeads', 'hiddenDim', 'outputDim', 'numPrototypes',
  ];
  for (const k of ints) {
    const v = cfg[k];
    if (!Number.isInteger(v) || v <= 0) {
      throw new MsnConfigError(`Config field '${k}' must be a positive integer, got ${String(v)}.`);
    }
  }
  // Field bounds first: they keep every product below 2^53, so the derived
  // sizes further down are exact.
  const bounds: [keyof VitConfig, number, string][] = [
    ['imgSize', MODEL_LIMITS.maxImgSize, 'maxImgSize'],
    ['patchSize', MODEL_LIMITS.maxPatchSize, 'maxPatchSize'],
    ['inChannels', MODEL_LIMITS.maxInChannels, 'maxInChannels'],
    ['embedDim', MODEL_LIMITS.maxEmbedDim, 'maxEmbedDim'],
    ['depth', MODEL_LIMITS.maxDepth, 'maxDepth'],
    ['numHeads', MODEL_LIMITS.maxNumHeads, 'maxNumHeads'],
    ['hiddenDim', MODEL_LIMITS.maxHiddenDim, 'maxHiddenDim'],
    ['outputDim', MODEL_LIMITS.maxOutputDim, 'maxOutputDim'],
    ['numPrototypes', MODEL_LIMITS.maxPrototypes, 'maxPrototypes'],
  ];
  for (const [k, max, limit] of bounds) {
    if ((cfg[k] as number) > max) {
      throw new MsnConfigError(
        `Config field '${k}' is ${cfg[k]}, above msn-web's limit of ${max} (MODEL_LIMITS.${limit}; ViT-L/7 needs far less). ` +
          'The model file or checkpoint is corrupt or hostile; use a smaller model.',
      );
    }
  }
  if (!(cfg.mlpRatio > 0) || !Number.isInteger(cfg.mlpRatio * cfg.embedDim)) {
    throw new MsnConfigError(`mlpRatio * embedDim must be a positive integer, got ${cfg.mlpRatio} * ${cfg.embedDim}.`);
  }
  if (cfg.mlpRatio * cfg.embedDim > MODEL_LIMITS.maxMlpDim) {
    throw new MsnConfigError(
      `The MLP width mlpRatio * embedDim = ${cfg.mlpRatio * cfg.embedDim} is above msn-web's limit of ${MODEL_LIMITS.maxMlpDim} ` +
        '(MODEL_LIMITS.maxMlpDim); use a smaller mlpRatio or width.',
    );
  }
  if (cfg.embedDim % cfg.numHeads !== 0) {
    throw new MsnConfigError(`embedDim (${cfg.embedDim}) must be divisible by numHeads (${cfg.numHeads}).`);
  }
  if (cfg.imgSize < cfg.patchSize) {
    throw new MsnConfigError(`imgSize (${cfg.imgSize}) must be at least one patch (${cfg.patchSize}).`);
  }
  const tokens = baseGrid(cfg) ** 2 + 1;
  if (tokens > MODEL_LIMITS.maxTokens) {
    throw new MsnConfigError(
      `imgSize ${cfg.imgSize} with patchSize ${cfg.patchSize} gives ${tokens} tokens, above msn-web's limit of ${MODEL_LIMITS.maxTokens} ` +
        '(MODEL_LIMITS.maxTokens); use larger patches or a smaller image size.',
    );
  }
  const count = parameterCount(cfg);
  if (count > MODEL_LIMITS.maxParameters) {
    throw new MsnConfigError(
      `This config has ${count} parameters (${(count * 4 / 2 ** 30).toFixed(2)} GiB as float32) with head and prototypes, above msn-web's ` +
        `limit of ${MODEL_LIMITS.maxParameters} (MODEL_LIMITS.maxParameters, 2 GiB); use a smaller model.`,
    );
  }
  return Object.freeze({ ...cfg });
}

/** Patch grid side for the position-embedding layout (floor, like the official conv). */
export function baseGrid(cfg: VitConfig): number {
  return Math.floor(cfg.imgSize / cfg.patchSize);
}
