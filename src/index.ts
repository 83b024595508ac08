/**
 * msn-web: Masked Siamese Networks in the browser and Node.
 * The main entry re-exports the core building blocks and adds the client
 * (createMsn: the engine in a worker or in-thread, the same methods).
 */
export * from './core.js';
export { createMsn } from './runtime/client.js';
export type { MsnClient, CreateMsnOptions, ClientPretrainOptions, TransferOption, NodeWorkerOptions } from './runtime/client.js';
export type * from './runtime/api.js';

// Pretraining on the user's images (training code: tree-shaken when unused).
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
export type { CheckpointStore } from './io/idb-store.js';

// Features, heads and evaluation.
export { embedImages, batchPrototypeProbs } from './embed/embed.js';
export { assignImages } from './embed/assign.js';
export { groupByPrototype } from './embed/groups.js';
export type { Grouping, PrototypeGroup, PrototypeUsage } from './embed/groups.js';
export type { EmbedImagesOptions, IndexedImages } from './embed/embed.js';
export { encoderFingerprint } from './embed/fingerprint.js';
export * from './heads/index.js';
export { evaluateFewShot, sampleShots } from './eval/fewshot.js';
export type { FewShotResult, HeadName } from './eval/fewshot.js';
export { parseIdx, parseIdxImages, parseIdxLabels } from './data/idx.js';

// Official checkpoints and the model format.
export { importMsnCheckpoint, importMsnState, inferConfig } from './interop/import-msn.js';
export { readTorchCheckpoint, stripModulePrefix } from './interop/torch-checkpoint.js';
export { encodeModel, decodeModel, validateManifest, float32ToFloat16, float16ToFloat32, MODEL_FORMAT, MODEL_FORMAT_VERSION } from './io/model-format.js';
export type { ModelManifest, ModelData, EncodedModel } from './io/model-format.js';
export { loadModel } from './io/model-loader.js';
export type { ModelSource, LoadModelOptions, LoadedModel, LoadProgress } from './io/model-loader.js';
export { openModelCache, MemoryModelCache } from './io/model-cache.js';
export type { ModelCache } from './io/model-cache.js';
