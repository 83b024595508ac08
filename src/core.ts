/**
 * msn-web/core: the MSN building blocks for inference on TensorFlow.js (wasm
 * and cpu backends), numerically faithful to the official PyTorch
 * implementation: the model, embedding, heads, model files, the importers of
 * official checkpoints, evaluation. No training code (that is
 * 'msn-web/train'; test/browser/entries.test.ts checks the built files).
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

// The model.
export * from './model/config.js';
export { VisionTransformer } from './model/vit.js';
export type { BnMode, ViewGroup, EncodeOutput } from './model/vit.js';
export { paramSpecs, bufferSpecs, initWeights, initPrototypes } from './model/params.js';
export type { NamedArrays, ParamSpec } from './model/params.js';
export { interpolatePosEmbed, bicubicMatrix1d, resizeGrid64, officialScale, resizedSide } from './model/pos-embed.js';
export { prototypeProbabilities, prototypeLogits, PROTOTYPE_TEMPERATURE, l2Normalize } from './model/prototypes.js';
export { Rng } from './util/rng.js';
export type { RngState } from './util/rng.js';

// Images in, features and prototype assignments out.
export { datasetFromImages, datasetFromPixels, datasetFromTensor } from './pretrain/source.js';
export type { ImageDataset, ImageLike } from './pretrain/source.js';
export { embedImages, batchPrototypeProbs } from './embed/embed.js';
export type { EmbedImagesOptions, IndexedImages } from './embed/embed.js';
export { assignImages } from './embed/assign.js';
export { groupByPrototype } from './embed/groups.js';
export type { Grouping, PrototypeGroup, PrototypeUsage } from './embed/groups.js';
export { encoderFingerprint } from './embed/fingerprint.js';

// Heads and evaluation.
export * from './heads/index.js';
export { evaluateFewShot, sampleShots } from './eval/fewshot.js';
export type { FewShotResult, HeadName } from './eval/fewshot.js';
export { parseIdx, parseIdxImages, parseIdxLabels } from './data/idx.js';

// Official checkpoints and the model format.
export { importMsnCheckpoint, importMsnState, inferConfig } from './interop/import-msn.js';
export { readTorchCheckpoint, stripModulePrefix } from './interop/torch-checkpoint.js';
export { fromTorchLayout, toTorchLayout } from './interop/torch-layout.js';
export { encodeModel, decodeModel, validateManifest, float32ToFloat16, float16ToFloat32, MODEL_FORMAT, MODEL_FORMAT_VERSION } from './io/model-format.js';
export type { ModelManifest, ModelData, EncodedModel } from './io/model-format.js';
export { loadModel } from './io/model-loader.js';
export type { ModelSource, LoadModelOptions, LoadedModel, LoadProgress } from './io/model-loader.js';
export { openModelCache, MemoryModelCache } from './io/model-cache.js';
export type { ModelCache } from './io/model-cache.js';
