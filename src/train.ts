/**
 * msn-web/train: pretraining on the user's images (Pretrainer, recipes,
 * views, checkpoints, export to a model file) and its building blocks (the
 * MSN loss, schedules, AdamW, the train step). The model and the datasets
 * come from 'msn-web/core'; the datasets are re-exported here, as every
 * pretraining run starts from one.
 *
 * @example
 * import { createPretrainer, datasetFromImages } from 'msn-web/train';
 * const p = await createPretrainer({ preset: 'micro-p4-28' });
 * await p.fit(datasetFromImages(images), { steps: 100 });
 */
export * from './errors.js';

// Pretraining.
export { Pretrainer, createPretrainer } from './pretrain/pretrainer.js';
export type { CheckpointData, FitOptions, FitSummary, ProgressEvent } from './pretrain/pretrainer.js';
export { pretrainConfig } from './pretrain/config.js';
export type { PretrainConfig, PretrainOptions, ViewOptions } from './pretrain/config.js';
export { RECIPES, recipeOptions, recipeNames, mergePretrainOptions } from './pretrain/recipes.js';
export type { Recipe, RecipeData } from './pretrain/recipes.js';
export { datasetFromImages, datasetFromPixels, datasetFromTensor } from './pretrain/source.js';
export type { ImageDataset, ImageLike } from './pretrain/source.js';
export { defaultViews, officialViews, smallViews, makeViews } from './pretrain/views.js';
export type { ViewConfig } from './pretrain/views.js';
export { checkpointToBytes, checkpointFromBytes, CHECKPOINT_KIND } from './pretrain/checkpoint.js';
export { exportModel } from './pretrain/export.js';
export { createIdbCheckpointStore } from './io/idb-store.js';
export type { CheckpointStore, IdbCheckpointStoreOptions } from './io/idb-store.js';

// The building blocks of a train step.
export { OFFICIAL_LOSS, msnTargets, msnLossTerms, targetDiagnostics, sinkhorn } from './train/loss.js';
export type { MsnLossOptions, LossTerms, TargetDiagnostics } from './train/loss.js';
export { makeSchedules, officialSchedule, SCHEDULE_HORIZON_SCALE } from './train/schedules.js';
export type { ScheduleConfig, Schedules } from './train/schedules.js';
export { AdamW, TORCH_ADAMW, isDecayed } from './train/optimizer.js';
export type { AdamWOptions, AdamWState } from './train/optimizer.js';
export {
  trainStep, trainStepAsync, computeGradients, computeGradientsAsync, applyGradients, encoderGradNorm, emaUpdate, createOptimizer, PROTOTYPES,
} from './train/step.js';
export type { MsnTrainState, TrainBatch, TrainHyper, StepMetrics } from './train/step.js';
export { createTrainState, disposeTrainState } from './train/state.js';
export type { TrainStateInit } from './train/state.js';
