/**
 * Label-efficient heads on frozen encoder features: linear (multinomial
 * logistic regression, the MSN low-shot protocol), centroid (cosine nearest
 * class mean), kNN (cosine) and prototype-label (MSN's prototype assignment
 * with labelled prototypes), plus versioned save/load and a stateful
 * few-shot classifier. Pure TypeScript on Float32Array; no tfjs.
 */
export type { FeatureInput, FeatureMatrix, HeadKind, Prediction, UnknownOptions } from './common.js';
export type { Head } from './head.js';
export { DEFAULT_UNKNOWN_LABEL } from './common.js';
export type { PreprocessSpec } from './preprocess.js';
export { MSN_PREPROCESS, preprocessFeatures } from './preprocess.js';
export type { LinearFitInfo, LinearHeadOptions } from './linear.js';
export { DEFAULT_LINEAR_L2, LinearHead, fitLinearHead, logisticObjective } from './linear.js';
export type { CentroidHeadOptions } from './centroid.js';
export { CentroidHead, DEFAULT_CENTROID_TEMPERATURE, fitCentroidHead } from './centroid.js';
export type { KnnHeadOptions, KnnVote } from './knn.js';
export { DEFAULT_KNN_K, DEFAULT_KNN_TEMPERATURE, KnnHead, fitKnnHead } from './knn.js';
export type { NamedPrototypesOptions, PrototypeLabelHeadOptions } from './prototype-label.js';
export {
  DEFAULT_PROTOTYPE_TEMPERATURE,
  PrototypeLabelHead,
  fitPrototypeLabelHead,
  prototypeLabelHeadFromNames,
} from './prototype-label.js';
export type { AnyHead, BundleArray, HeadBundle, LoadHeadOptions } from './bundle.js';
export {
  HEAD_BUNDLE_FORMAT,
  HEAD_BUNDLE_VERSION,
  bundleFromBytes,
  bundleToBytes,
  loadHead,
  readBundle,
  saveHead,
  validateBundle,
} from './bundle.js';
export type { ExportOptions, FewShotClassifierOptions } from './classifier.js';
export { FewShotClassifier, createFewShotClassifier } from './classifier.js';
