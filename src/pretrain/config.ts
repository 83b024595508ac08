/**
 * Pretraining configuration: one typed object, validated once, stored in
 * every checkpoint so a resumed run cannot drift from the original.
 */
import { DEFAULT_PRETRAIN, OFFICIAL_LOSS, OFFICIAL_SCHEDULE, OFFICIAL_WARMUP_FRACTION, SEGMENT_WARMUP_FRACTION } from '../defaults.js';
import { MsnConfigError, MsnValueError } from '../errors.js';
import { VitConfig, getPreset, validateConfig } from '../model/config.js';
import { MsnLossOptions } from '../train/loss.js';
import { ScheduleConfig } from '../train/schedules.js';
import { ViewConfig, defaultViews, validateViews } from './views.js';

/**
 * A run: its model, views and batch, and its plan (the ScheduleConfig it
 * extends: totalSteps, the scheduleStart of a continued segment (see
 * Pretrainer.planSteps; absent in older checkpoints), warmupSteps, and the
 * lr, weightDecay, ema and sharpen ramps), handed to makeSchedules as is.
 * The schedules span SCHEDULE_HORIZON_SCALE times totalSteps.
 */
export interface PretrainConfig extends ScheduleConfig {
  model: VitConfig;
  views: ViewConfig;
  batchSize: number;
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
  const model = validateConfig(opts.model ?? getPreset(opts.preset ?? DEFAULT_PRETRAIN.preset));
  const baseViews = defaultViews(model);
  const views: ViewConfig = {
    ...baseViews, ...opts.views,
    globalCrop: { ...baseViews.globalCrop, ...opts.views?.globalCrop },
    focalCrop: { ...baseViews.focalCrop, ...opts.views?.focalCrop },
    color: { ...baseViews.color, ...opts.views?.color },
  };
  const totalSteps = opts.totalSteps ?? DEFAULT_PRETRAIN.totalSteps;
  const { sharpenT: _, ...loss } = OFFICIAL_LOSS; // the run's sharpening is a schedule (sharpen), not a loss setting
  const cfg: PretrainConfig = {
    model, views,
    batchSize: opts.batchSize ?? DEFAULT_PRETRAIN.batchSize,
    totalSteps,
    warmupSteps: opts.warmupSteps ?? Math.round(totalSteps * OFFICIAL_WARMUP_FRACTION),
    lr: { ...OFFICIAL_SCHEDULE.lr, ...opts.lr },
    weightDecay: { ...OFFICIAL_SCHEDULE.weightDecay, ...opts.weightDecay },
    ema: { ...OFFICIAL_SCHEDULE.ema, ...opts.ema },
    sharpen: { ...OFFICIAL_SCHEDULE.sharpen, ...opts.sharpen },
    loss: { ...loss, ...opts.loss },
    clipGrad: opts.clipGrad ?? DEFAULT_PRETRAIN.clipGrad,
    seed: opts.seed ?? DEFAULT_PRETRAIN.seed,
    maxBadSteps: opts.maxBadSteps ?? DEFAULT_PRETRAIN.maxBadSteps,
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

export { SEGMENT_WARMUP_FRACTION };

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

/** A data-parallel run splits each batch evenly, at least 2 images per worker (BatchNorm needs 2). */
export function checkBatchSplit(batchSize: number, workers: number): void {
  if (batchSize % workers !== 0 || batchSize / workers < 2) {
    throw new MsnValueError(`batchSize ${batchSize} cannot be split over ${workers} workers: it must be a multiple of ${workers} with at least 2 images each (BatchNorm).`);
  }
}
