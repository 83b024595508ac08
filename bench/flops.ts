/**
 * Multiply-add work of msn-web's models, counted as 2 FLOPs per multiply-add
 * of the matrix products (patch embedding, qkv, attention, projection, MLP,
 * head, prototypes). Elementwise work is left out, as GFLOP/s figures usually
 * do, so "achieved GFLOP/s" is model FLOPs over wall time.
 */
import type { VitConfig } from '../src/model/config.js';

/** One image through the trunk with `tokens` tokens (CLS included) after embedding `patches` patches. */
export function trunkFlops(cfg: VitConfig, patches: number, tokens: number): number {
  const d = cfg.embedDim;
  const mlp = cfg.mlpRatio * d;
  const embed = 2 * patches * cfg.patchSize * cfg.patchSize * cfg.inChannels * d;
  const block = 2 * tokens * d * 3 * d + 2 * 2 * tokens * tokens * d + 2 * tokens * d * d + 2 * 2 * tokens * d * mlp;
  return embed + cfg.depth * block;
}

/** Projection head and prototype scores of one image. */
export function headFlops(cfg: VitConfig): number {
  const h = cfg.hiddenDim;
  return 2 * (cfg.embedDim * h + h * h + h * cfg.outputDim) + 2 * cfg.outputDim * cfg.numPrototypes;
}

export interface StepViews {
  batch: number;
  /** Patches kept in the masked random view. */
  keep: number;
  focalViews: number;
  focalSize: number;
}

/**
 * One MSN step: the target encoder's forward on the full view (no gradient)
 * plus forward and backward (twice the forward's products: one for the
 * inputs' gradient, one for the weights') of the masked view and the focal views.
 */
export function trainStepFlops(cfg: VitConfig, v: StepViews): number {
  const n = (cfg.imgSize / cfg.patchSize) ** 2;
  const nf = Math.floor(v.focalSize / cfg.patchSize) ** 2;
  const target = trunkFlops(cfg, n, n + 1) + headFlops(cfg);
  const masked = trunkFlops(cfg, n, v.keep + 1) + headFlops(cfg);
  const focal = trunkFlops(cfg, nf, nf + 1) + headFlops(cfg);
  return v.batch * (target + 3 * (masked + v.focalViews * focal));
}
