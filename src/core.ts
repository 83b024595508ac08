/**
 * msn-web/core: the MSN building blocks on TensorFlow.js (wasm and cpu
 * backends), numerically faithful to the official PyTorch implementation.
 *
 * @example
 * import { useBackend, VisionTransformer, PRESETS } from 'msn-web/core';
 * await useBackend('wasm');
 * const vit = VisionTransformer.create(PRESETS['micro-p4-28'], { seed: 0 });
 * const { clsPre } = vit.encode(images); // images: [B, 28, 28, 3] float32 NHWC
 */
export * from './errors.js';
export { useBackend, setWasmDirectory } from './runtime/backend.js';
export type { CoreBackend } from './runtime/backend.js';
export * from './model/config.js';
export { VisionTransformer } from './model/vit.js';
export type { BnMode, ViewGroup, EncodeOutput } from './model/vit.js';
export { paramSpecs, bufferSpecs, initWeights, initPrototypes } from './model/params.js';
export { fromTorchLayout, toTorchLayout } from './interop/torch-layout.js';
export type { NamedArrays, ParamSpec } from './model/params.js';
export { interpolatePosEmbed, bicubicMatrix1d, resizeGrid64, officialScale, resizedSide } from './model/pos-embed.js';
export { prototypeProbabilities, prototypeLogits, PROTOTYPE_TEMPERATURE } from './model/prototypes.js';
export { OFFICIAL_LOSS, msnTargets, msnLossTerms, targetDiagnostics, sinkhorn, l2Normalize } from './train/loss.js';
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
export { Rng } from './util/rng.js';
export type { RngState } from './util/rng.js';
