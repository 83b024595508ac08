/**
 * Centroid head (nearest class mean, "prototype" classifier): each class is
 * the mean of its preprocessed examples, scaled to unit length, and an
 * example goes to the class with the highest cosine similarity. Nothing to
 * optimise, so it fits instantly and is a strong baseline at 1-2 examples per
 * class, where a linear head has little to learn from.
 *
 * Probabilities: softmax(cosine / temperature). The default temperature 0.1
 * is the one MSN itself uses to turn prototype similarities into
 * probabilities; lower is more peaked. It changes confidences (and so the
 * unknown threshold), never the predicted class.
 */
import { MsnFormatError } from '../errors.js';
import {
  type FeatureInput,
  type Prediction,
  type UnknownOptions,
  checkFingerprint,
  checkUnknownOptions,
  dotRows,
  encodeLabels,
  makePrediction,
  positiveOption,
  resolveUnknown,
  softmaxRows,
  toFeatureMatrix,
} from './common.js';
import { type Head, HeadBase, type HeadCommon, bundleHeader } from './head.js';
import { type PreprocessSpec, l2NormalizeRows, preprocessFeatures, preprocessOption } from './preprocess.js';
import type { HeadBundle } from './bundle-format.js';

export const DEFAULT_CENTROID_TEMPERATURE = 0.1;

export interface CentroidHeadOptions extends UnknownOptions {
  /** Identifies the encoder that produced the features; stored in the bundle. */
  encoderFingerprint: string;
  /** Softmax temperature on cosine similarities. Default 0.1. */
  temperature?: number;
  /** Preprocessing before the means; default centre + L2-normalise rows. */
  preprocess?: PreprocessSpec;
}

/** Fits a centroid head. Labels are any strings; classes keep first-seen order. */
export function fitCentroidHead(
  features: FeatureInput,
  labels: readonly string[],
  options: CentroidHeadOptions,
): CentroidHead {
  const encoderFingerprint = checkFingerprint(options?.encoderFingerprint);
  const temperature = positiveOption(options.temperature, DEFAULT_CENTROID_TEMPERATURE, 'temperature');
  const spec = preprocessOption(options.preprocess);
  const matrix = toFeatureMatrix(features);
  const { classes, y } = encodeLabels(labels, matrix.count);
  const unknown = checkUnknownOptions(options, classes);

  const d = matrix.dim;
  const C = classes.length;
  // Cosine similarity wants unit rows whatever the spec says.
  const X = l2NormalizeRows(preprocessFeatures(matrix, spec), matrix.count, d);
  const sums = new Float64Array(C * d);
  for (let i = 0; i < matrix.count; i++) {
    const o = y[i] * d;
    for (let j = 0; j < d; j++) sums[o + j] += X[i * d + j];
  }
  // The mean's length does not matter for cosine, so normalise the sum.
  l2NormalizeRows(sums, C, d);
  return new CentroidHead({
    classes,
    featureDim: d,
    encoderFingerprint,
    preprocess: spec,
    centroids: Float32Array.from(sums),
    temperature,
    unknown,
  });
}

export class CentroidHead extends HeadBase implements Head {
  readonly kind = 'centroid' as const;
  /** classes x featureDim, unit rows (a zero row if a class mean vanished). */
  readonly centroids: Float32Array;
  readonly temperature: number;

  constructor(init: HeadCommon & {
    centroids: Float32Array;
    temperature: number;
  }) {
    super(init);
    this.centroids = init.centroids;
    this.temperature = init.temperature;
  }

  /** Cosine similarity of each example to each class centroid, count x classes. */
  similarities(features: FeatureInput): Float32Array {
    return Float32Array.from(this.cosines(features).sims);
  }

  private cosines(features: FeatureInput): { sims: Float64Array; count: number } {
    const matrix = toFeatureMatrix(features, this.featureDim);
    const d = this.featureDim;
    const C = this.classes.length;
    const X = l2NormalizeRows(preprocessFeatures(matrix, this.preprocess), matrix.count, d);
    const sims = dotRows(X, matrix.count, this.centroids, C, d, new Float64Array(matrix.count * C));
    return { sims, count: matrix.count };
  }

  predict(features: FeatureInput, options?: UnknownOptions): Prediction {
    const unknown = resolveUnknown(this.unknown, options, this.classes);
    const { sims, count } = this.cosines(features);
    for (let i = 0; i < sims.length; i++) sims[i] /= this.temperature;
    softmaxRows(sims, count, this.classes.length);
    return makePrediction(Float32Array.from(sims), count, this.classes, unknown);
  }

  toBundle(): HeadBundle {
    return {
      ...bundleHeader('centroid', this),
      params: { temperature: this.temperature },
      arrays: { centroids: { shape: [this.classes.length, this.featureDim], data: Array.from(this.centroids) } },
    };
  }

  static fromBundle(bundle: HeadBundle): CentroidHead {
    const centroids = bundle.arrays.centroids;
    const C = bundle.classes.length;
    if (!centroids || centroids.shape.length !== 2 || centroids.shape[0] !== C || centroids.shape[1] !== bundle.featureDim) {
      throw new MsnFormatError(
        `centroid bundle needs arrays.centroids of shape [${C}, ${bundle.featureDim}], ` +
          `got ${centroids ? `[${centroids.shape.join(', ')}]` : 'none'}.`,
      );
    }
    const temperature = bundle.params.temperature;
    if (typeof temperature !== 'number' || !(temperature > 0)) {
      throw new MsnFormatError(`centroid bundle params.temperature must be > 0, got ${temperature}.`);
    }
    return new CentroidHead({
      classes: bundle.classes,
      featureDim: bundle.featureDim,
      encoderFingerprint: bundle.encoderFingerprint,
      preprocess: bundle.preprocess,
      centroids: Float32Array.from(centroids.data),
      temperature,
      unknown: { unknownThreshold: bundle.unknown.threshold, unknownLabel: bundle.unknown.label },
    });
  }
}
