/**
 * Feature preprocessing of the MSN low-shot protocol. The official
 * evaluation calls cyanure's `preprocess(X, centering=True, normalize=True,
 * columns=False)`: each example (row) has its own mean over its features
 * subtracted, then is scaled to unit L2 norm. Per-row statistics need nothing
 * from the training set, so the same spec applies unchanged at predict time;
 * it is still recorded in every bundle so a loaded head cannot silently
 * disagree with how it was fitted.
 */
import { MsnConfigError, MsnFormatError } from '../errors.js';
import type { FeatureMatrix } from './common.js';

export interface PreprocessSpec {
  /** Subtract each row's own mean over its features. */
  centering: boolean;
  /** Scale each row to unit L2 norm (after centering). */
  normalize: boolean;
}

/** The MSN / cyanure default: centre rows, then L2-normalise rows. */
export const MSN_PREPROCESS: Readonly<PreprocessSpec> = Object.freeze({ centering: true, normalize: true });

/**
 * Applies the spec to every row and returns a new Float64Array (count x dim).
 * Float64 because the linear solver's optimality test (relative gradient
 * norm ~1e-6) is beyond float32 accuracy. A row that is constant becomes all
 * zeros after centering; it stays zero rather than dividing by zero, and every
 * head then scores it as equally close to all classes.
 */
export function preprocessFeatures(features: FeatureMatrix, spec: PreprocessSpec): Float64Array {
  const { data, count, dim } = features;
  const out = new Float64Array(count * dim);
  for (let i = 0; i < count; i++) {
    const o = i * dim;
    let mean = 0;
    if (spec.centering) {
      for (let j = 0; j < dim; j++) mean += data[o + j];
      mean /= dim;
    }
    let sq = 0;
    for (let j = 0; j < dim; j++) {
      const v = data[o + j] - mean;
      out[o + j] = v;
      sq += v * v;
    }
    if (spec.normalize && sq > 0) {
      const inv = 1 / Math.sqrt(sq);
      for (let j = 0; j < dim; j++) out[o + j] *= inv;
    }
  }
  return out;
}

/**
 * Scales each row of a count x dim float64 matrix to unit L2 norm in place, so
 * that dot products are cosine similarities. Zero rows stay zero.
 */
export function l2NormalizeRows(X: Float64Array, count: number, dim: number): Float64Array {
  for (let i = 0; i < count; i++) {
    const o = i * dim;
    let sq = 0;
    for (let j = 0; j < dim; j++) sq += X[o + j] * X[o + j];
    if (sq > 0) {
      const inv = 1 / Math.sqrt(sq);
      for (let j = 0; j < dim; j++) X[o + j] *= inv;
    }
  }
  return X;
}

function isSpec(value: unknown): value is PreprocessSpec {
  const v = value as Partial<PreprocessSpec> | null;
  return typeof v === 'object' && v !== null && typeof v.centering === 'boolean' && typeof v.normalize === 'boolean';
}

/** Reads the `preprocess` fit option: a copy of it, or the MSN default. */
export function preprocessOption(value: PreprocessSpec | undefined): PreprocessSpec {
  if (value === undefined) return { ...MSN_PREPROCESS };
  if (!isSpec(value)) {
    throw new MsnConfigError(`preprocess must be { centering: boolean, normalize: boolean }, got ${JSON.stringify(value)}.`);
  }
  return { centering: value.centering, normalize: value.normalize };
}

/** Reads a spec from an untrusted bundle. */
export function parsePreprocessSpec(value: unknown): PreprocessSpec {
  if (!isSpec(value)) {
    throw new MsnFormatError(
      `Invalid head bundle: preprocess must be { centering: boolean, normalize: boolean }, got ${JSON.stringify(value)}.`,
    );
  }
  return { centering: value.centering, normalize: value.normalize };
}
