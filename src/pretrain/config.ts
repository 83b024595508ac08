/**
 * Pretraining configuration: one typed object, validated once, stored in
 * every checkpoint so a resumed run cannot drift from the original.
 */
import { MsnConfigError } from '../errors.js';
import { VitConfig, getPreset, validateConfig } from '../model/config.js';
import { MsnLossOptions } from '../train/loss.js';
import { ScheduleConfig } from '../train/schedules.js';
import { ViewConfig, defaultViews, validateViews } from './views.js';

export interface PretrainConfig {
  model: VitConfig;
  views: ViewConfig;
  batchSize: number;
  /** Planned run length: the schedules span SCHEDULE_HORIZON_SCALE times this. */
  totalSteps: number;
  /**
   * The step the current plan starts after: 0 for a fresh run, later for a
   * continued segment (see Pretrainer.planSteps). Absent in older checkpoints.
   */
  scheduleStart?: number;
  warmupSteps: number;
  lr: { start: number; ref: number; final: number };
  weightDecay: { start: number; final: number };
  ema: { start: number; end: number };
  sharpen: { start: number; end: number };
  loss: Omit<MsnLossOptions, 'sharpenT'>;
  clipGrad: number;
  seed: number;
  /** Consecutive non-finite steps after which fit() stops with MsnNumericalError. */
  maxBadSteps: number;
}

/** Views of a new run: any field, down to one field of a crop or of the colour jitter, over the defaults. */
export type ViewOptions = Partial<Omit<ViewConfig, 'globalCrop' | 'focalCrop' | 'color'>> & {
  globalCrop?: Partial<ViewConfig['globalCrop']>;
  focalCrop?: Partial<ViewConfig['focalCrop']>;
  color?: Partial<ViewConfig['color']>;
};

export type PretrainOptions = Partial<Omit<PretrainConfig, 'model' | 'views'>> & {
  preset?: string;
  model?: VitConfig;
  views?: ViewOptions;
};

/** Official hyperparameters (ViT-S/16 config) with the run length the caller plans. */
export function pretrainConfig(opts: PretrainOptions = {}): PretrainConfig {
  const model = validateConfig(opts.model ?? getPreset(opts.preset ?? 'micro-p4-28'));
  const baseViews = defaultViews(model);
  const views: ViewConfig = {
    ...baseViews, ...opts.views,
    globalCrop: { ...baseViews.globalCrop, ...opts.views?.globalCrop },
    focalCrop: { ...baseViews.focalCrop, ...opts.views?.focalCrop },
    color: { ...baseViews.color, ...opts.views?.color },
  };
  const totalSteps = opts.totalSteps ?? 1000;
  const cfg: PretrainConfig = {
    model, views,
    batchSize: opts.batchSize ?? 32,
    totalSteps,
    warmupSteps: opts.warmupSteps ?? Math.round(totalSteps * (15 / 800)), // official: 15 of 800 epochs
    lr: { start: 2e-4, ref: 1e-3, final: 1e-6, ...opts.lr },
    weightDecay: { start: 0.04, final: 0.4, ...opts.weightDecay },
    ema: { start: 0.996, end: 1.0, ...opts.ema },
    sharpen: { start: 0.25, end: 0.25, ...opts.sharpen },
    loss: { tau: 0.1, sinkhornIters: 3, memaxWeight: 1, entWeight: 0, ...opts.loss },
    clipGrad: opts.clipGrad ?? 3,
    seed: opts.seed ?? 0,
    maxBadSteps: opts.maxBadSteps ?? 5,
  };
  validatePretrainConfig(cfg);
  return cfg;
}

export function validatePretrainConfig(c: PretrainConfig): void {
  const bad = (m: string) => {
    throw new MsnConfigError(m);
  };
  validateConfig(c.model);
  validateViews(c.views, c.model);
  if (!Number.isInteger(c.batchSize) || c.batchSize < 2) bad(`batchSize must be an integer >= 2 (BatchNorm needs 2 samples), got ${c.batchSize}.`);
  if (!Number.isInteger(c.totalSteps) || c.totalSteps < 1) bad(`totalSteps must be a positive integer, got ${c.totalSteps}.`);
  if (c.scheduleStart !== undefined && (!Number.isInteger(c.scheduleStart) || c.scheduleStart < 0)) bad(`scheduleStart must be an integer >= 0, got ${c.scheduleStart}.`);
  if (!Number.isInteger(c.warmupSteps) || c.warmupSteps < 0) bad(`warmupSteps must be an integer >= 0, got ${c.warmupSteps}.`);
  if (!(c.lr.ref > 0) || !(c.lr.start >= 0) || !(c.lr.final >= 0)) bad('lr.start, lr.ref and lr.final must be >= 0 (ref > 0).');
  if (!(c.ema.start >= 0 && c.ema.start <= 1 && c.ema.end >= 0 && c.ema.end <= 1)) bad('ema.start and ema.end must be in [0, 1].');
  if (!(c.clipGrad >= 0)) bad(`clipGrad must be >= 0, got ${c.clipGrad}.`);
  if (!Number.isInteger(c.maxBadSteps) || c.maxBadSteps < 1) bad(`maxBadSteps must be a positive integer, got ${c.maxBadSteps}.`);
  if (!Number.isInteger(c.seed)) bad(`seed must be an integer, got ${c.seed}.`);
}

/** Warm-up of a continued segment: short, since the weights and AdamW moments are already trained. */
export const SEGMENT_WARMUP_FRACTION = 0.1;

/**
 * The config of a continued segment of `steps` steps that starts at `step`:
 * the same recipe, its schedules (warm-up, cosine, EMA ramp) planned over
 * the segment alone.
 */
export function segmentConfig(c: PretrainConfig, step: number, steps: number): PretrainConfig {
  const next = { ...c, scheduleStart: step, totalSteps: steps, warmupSteps: Math.ceil(steps * SEGMENT_WARMUP_FRACTION) };
  validatePretrainConfig(next);
  return next;
}

export function scheduleConfig(c: PretrainConfig): ScheduleConfig {
  return {
    totalSteps: c.totalSteps, warmupSteps: c.warmupSteps, startStep: c.scheduleStart ?? 0,
    startLr: c.lr.start, refLr: c.lr.ref, finalLr: c.lr.final,
    startWeightDecay: c.weightDecay.start, finalWeightDecay: c.weightDecay.final,
    emaStart: c.ema.start, emaEnd: c.ema.end,
    startSharpen: c.sharpen.start, finalSharpen: c.sharpen.end,
  };
}
