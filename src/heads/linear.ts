/**
 * Linear head: multinomial logistic regression without intercept on the
 * preprocessed features, as in the MSN low-shot evaluation (cyanure
 * `MultiClassifier(loss='multiclass-logistic', fit_intercept=False)`).
 *
 * Objective, for n examples x_i with labels y_i and weights W (classes x dim):
 *
 *   F(W) = (1/n) sum_i [ logsumexp_c(w_c . x_i) - w_{y_i} . x_i ] + (lambda/2) ||W||^2
 *   lambda = l2 / n
 *
 * `l2` is the command-line `--lambd` of the official script, which divides it
 * by n before calling the solver. F is smooth and strongly convex (lambda > 0),
 * so it has one minimiser and the fit does not depend on initialisation.
 *
 * Solver: L-BFGS (10 pairs of history) with a backtracking Armijo line search,
 * from W = 0, in float64. Strong convexity guarantees s.y >= lambda ||s||^2 > 0,
 * so every curvature pair is usable and no Wolfe search is needed. Stopping
 * rule: ||grad F(W)|| <= tol * ||grad F(0)|| (relative gradient norm), or
 * `maxIterations`. Everything is deterministic: no random init, no shuffling.
 */
import { MsnFormatError } from '../errors.js';
import {
  type FeatureInput,
  type Prediction,
  type UnknownOptions,
  addTransposedProduct,
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
import { type PreprocessSpec, preprocessFeatures, preprocessOption } from './preprocess.js';
import type { HeadBundle } from './bundle-format.js';

/** Default `l2`: the `--lambd 0.0025` of the MSN README's 5-shot example. */
export const DEFAULT_LINEAR_L2 = 0.0025;

export interface LinearHeadOptions extends UnknownOptions {
  /** Identifies the encoder that produced the features; stored in the bundle. */
  encoderFingerprint: string;
  /**
   * L2 strength before division by n (lambda = l2 / n). Default 0.0025, the
   * MSN README value for 5-shot ImageNet; the official script's own default is
   * 0.00025. Larger values give less confident probabilities (which matters
   * for `unknownThreshold`). On unit-norm features with few examples the
   * decisions change little across 0.00025-0.025 (raw MNIST, 1-10 per class:
   * within 0.5 points of accuracy).
   */
  l2?: number;
  /** Relative gradient-norm tolerance. Default 1e-6. */
  tol?: number;
  /** Iteration cap. Default 2000. */
  maxIterations?: number;
  /** Preprocessing; default (and what MSN uses) centre + L2-normalise rows. */
  preprocess?: PreprocessSpec;
}

export interface LinearFitInfo {
  /** L-BFGS iterations taken (each is one or more objective evaluations). */
  iterations: number;
  /** Objective evaluations (one gradient each). */
  evaluations: number;
  /** Final objective F(W). */
  loss: number;
  /** Final ||grad F(W)|| (Frobenius). */
  gradNorm: number;
  /** gradNorm / ||grad F(0)||; compared against `tol`. */
  relativeGradNorm: number;
  /** True when the relative gradient norm reached `tol`. */
  converged: boolean;
  /** The effective lambda = l2 / n. */
  lambda: number;
}

/**
 * F(W) and, into `grad`, its gradient. W, grad: classes x dim; X: n x dim;
 * all row-major. `scratch` (n x classes) is reused between calls by the
 * solver. Exported for tests and for checking fits.
 */
export function logisticObjective(
  W: Float64Array,
  X: Float64Array,
  y: Int32Array,
  numClasses: number,
  lambda: number,
  grad: Float64Array,
  scratch: Float64Array = new Float64Array(y.length * numClasses),
): number {
  const C = numClasses;
  const d = W.length / C;
  const n = y.length;
  // Logits z_ic = w_c . x_i, then overwritten in place by (p_ic - [c == y_i]) / n.
  const z = dotRows(X, n, W, C, d, scratch);
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const o = i * C;
    let max = -Infinity;
    for (let c = 0; c < C; c++) max = Math.max(max, z[o + c]);
    const zy = z[o + y[i]];
    let sum = 0;
    for (let c = 0; c < C; c++) {
      z[o + c] = Math.exp(z[o + c] - max);
      sum += z[o + c];
    }
    // Cross-entropy of example i: logsumexp(z) - z_y, written stably.
    loss += Math.log(sum) + max - zy;
    for (let c = 0; c < C; c++) z[o + c] = (z[o + c] / sum - (c === y[i] ? 1 : 0)) / n;
  }
  let wsq = 0;
  for (let j = 0; j < W.length; j++) {
    grad[j] = lambda * W[j];
    wsq += W[j] * W[j];
  }
  addTransposedProduct(z, X, n, C, d, grad);
  return loss / n + 0.5 * lambda * wsq;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

interface LbfgsResult {
  iterations: number;
  evaluations: number;
  loss: number;
  gradNorm: number;
  gradNorm0: number;
  converged: boolean;
}

/**
 * Minimises a smooth strongly convex f from w (updated in place).
 * `f(w, g)` returns f(w) and writes the gradient into g.
 */
function lbfgs(
  f: (w: Float64Array, g: Float64Array) => number,
  w: Float64Array,
  tol: number,
  maxIterations: number,
  memory = 10,
): LbfgsResult {
  const size = w.length;
  const g = new Float64Array(size);
  const dir = new Float64Array(size);
  const wNew = new Float64Array(size);
  const gNew = new Float64Array(size);
  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  const rho: number[] = [];
  const alpha = new Float64Array(memory);

  let fx = f(w, g);
  let evaluations = 1;
  const gradNorm0 = Math.sqrt(dot(g, g));
  let gradNorm = gradNorm0;
  const target = tol * gradNorm0;
  let iterations = 0;
  if (gradNorm <= target) return { iterations, evaluations, loss: fx, gradNorm, gradNorm0, converged: true };

  while (iterations < maxIterations) {
    // Two-loop recursion: dir = -H g, with H0 = (s.y / y.y) I from the newest pair.
    for (let j = 0; j < size; j++) dir[j] = -g[j];
    for (let m = S.length - 1; m >= 0; m--) {
      alpha[m] = rho[m] * dot(S[m], dir);
      const Ym = Y[m];
      for (let j = 0; j < size; j++) dir[j] -= alpha[m] * Ym[j];
    }
    let step = 1;
    if (S.length > 0) {
      const last = S.length - 1;
      const gamma = 1 / (rho[last] * dot(Y[last], Y[last]));
      for (let j = 0; j < size; j++) dir[j] *= gamma;
      for (let m = 0; m < S.length; m++) {
        const beta = rho[m] * dot(Y[m], dir);
        const Sm = S[m];
        for (let j = 0; j < size; j++) dir[j] += (alpha[m] - beta) * Sm[j];
      }
    } else {
      // First step along -g: scale to unit length so the line search starts sane.
      step = Math.min(1, 1 / gradNorm);
    }
    const slope = dot(g, dir);
    if (!(slope < 0)) break; // Not a descent direction: only possible at round-off level.

    // Backtracking with safeguarded quadratic interpolation (Armijo, c1 = 1e-4).
    let fNew = 0;
    let accepted = false;
    for (let tries = 0; tries < 50; tries++) {
      for (let j = 0; j < size; j++) wNew[j] = w[j] + step * dir[j];
      fNew = f(wNew, gNew);
      evaluations++;
      if (fNew <= fx + 1e-4 * step * slope) {
        accepted = true;
        break;
      }
      const quad = (-slope * step * step) / (2 * (fNew - fx - slope * step));
      step = Number.isFinite(quad) ? Math.min(0.5 * step, Math.max(0.1 * step, quad)) : 0.5 * step;
    }
    if (!accepted) break; // No decrease representable in float64: we are at the minimum.
    iterations++;

    const s = S.length === memory ? S.shift()! : new Float64Array(size);
    const yv = Y.length === memory ? Y.shift()! : new Float64Array(size);
    if (rho.length === memory) rho.shift();
    for (let j = 0; j < size; j++) {
      s[j] = wNew[j] - w[j];
      yv[j] = gNew[j] - g[j];
    }
    const sy = dot(s, yv);
    if (sy > 0) {
      S.push(s);
      Y.push(yv);
      rho.push(1 / sy);
    }
    w.set(wNew);
    g.set(gNew);
    fx = fNew;
    gradNorm = Math.sqrt(dot(g, g));
    if (gradNorm <= target) return { iterations, evaluations, loss: fx, gradNorm, gradNorm0, converged: true };
  }
  return { iterations, evaluations, loss: fx, gradNorm, gradNorm0, converged: gradNorm <= target };
}

/** Fits a linear head. Labels are any strings; classes keep first-seen order. */
export function fitLinearHead(
  features: FeatureInput,
  labels: readonly string[],
  options: LinearHeadOptions,
): LinearHead {
  const encoderFingerprint = checkFingerprint(options?.encoderFingerprint);
  const l2 = positiveOption(options.l2, DEFAULT_LINEAR_L2, 'l2');
  const tol = positiveOption(options.tol, 1e-6, 'tol');
  const maxIterations = positiveOption(options.maxIterations, 2000, 'maxIterations', true);
  const spec = preprocessOption(options.preprocess);
  const matrix = toFeatureMatrix(features);
  const { classes, y } = encodeLabels(labels, matrix.count);
  const unknown = checkUnknownOptions(options, classes);

  const n = matrix.count;
  const C = classes.length;
  const X = preprocessFeatures(matrix, spec);
  const lambda = l2 / n;
  const scratch = new Float64Array(n * C);
  const W = new Float64Array(C * matrix.dim);
  const result = lbfgs((w, g) => logisticObjective(w, X, y, C, lambda, g, scratch), W, tol, maxIterations);

  const fit: LinearFitInfo = {
    iterations: result.iterations,
    evaluations: result.evaluations,
    loss: result.loss,
    gradNorm: result.gradNorm,
    relativeGradNorm: result.gradNorm0 > 0 ? result.gradNorm / result.gradNorm0 : 0,
    converged: result.converged,
    lambda,
  };
  return new LinearHead({
    classes,
    featureDim: matrix.dim,
    encoderFingerprint,
    preprocess: spec,
    weights: Float32Array.from(W),
    l2,
    unknown,
    fit,
  });
}

export class LinearHead extends HeadBase implements Head {
  readonly kind = 'linear' as const;
  /** classes x featureDim, row-major. Predictions use exactly these float32 values. */
  readonly weights: Float32Array;
  readonly l2: number;
  /** Solver report; present on freshly fitted heads, also kept in bundles. */
  readonly fit: LinearFitInfo | undefined;

  constructor(init: HeadCommon & {
    weights: Float32Array;
    l2: number;
    fit?: LinearFitInfo;
  }) {
    super(init);
    this.weights = init.weights;
    this.l2 = init.l2;
    this.fit = init.fit;
  }

  /** Class scores w_c . preprocess(x), count x classes, row-major (float64). */
  private scores(features: FeatureInput): { scores: Float64Array; count: number } {
    const matrix = toFeatureMatrix(features, this.featureDim);
    const X = preprocessFeatures(matrix, this.preprocess);
    const C = this.classes.length;
    const out = new Float64Array(matrix.count * C);
    dotRows(X, matrix.count, this.weights, C, this.featureDim, out);
    return { scores: out, count: matrix.count };
  }

  /** Class logits before the softmax, count x classes, row-major. */
  logits(features: FeatureInput): Float32Array {
    return Float32Array.from(this.scores(features).scores);
  }

  predict(features: FeatureInput, options?: UnknownOptions): Prediction {
    const unknown = resolveUnknown(this.unknown, options, this.classes);
    const { scores, count } = this.scores(features);
    softmaxRows(scores, count, this.classes.length);
    return makePrediction(Float32Array.from(scores), count, this.classes, unknown);
  }

  toBundle(): HeadBundle {
    return {
      ...bundleHeader('linear', this),
      params: { l2: this.l2 },
      arrays: { weights: { shape: [this.classes.length, this.featureDim], data: Array.from(this.weights) } },
      ...(this.fit ? { fit: { ...this.fit } } : {}),
    };
  }

  /** Builds a head from a bundle that `loadHead` has already checked generically. */
  static fromBundle(bundle: HeadBundle): LinearHead {
    const weights = bundle.arrays.weights;
    const C = bundle.classes.length;
    if (!weights || weights.shape.length !== 2 || weights.shape[0] !== C || weights.shape[1] !== bundle.featureDim) {
      throw new MsnFormatError(
        `linear bundle needs arrays.weights of shape [${C}, ${bundle.featureDim}] (classes x featureDim), ` +
          `got ${weights ? `[${weights.shape.join(', ')}]` : 'none'}.`,
      );
    }
    const l2 = bundle.params.l2;
    if (typeof l2 !== 'number' || !(l2 > 0)) throw new MsnFormatError(`linear bundle params.l2 must be > 0, got ${l2}.`);
    return new LinearHead({
      classes: bundle.classes,
      featureDim: bundle.featureDim,
      encoderFingerprint: bundle.encoderFingerprint,
      preprocess: bundle.preprocess,
      weights: Float32Array.from(weights.data),
      l2,
      unknown: { unknownThreshold: bundle.unknown.threshold, unknownLabel: bundle.unknown.label },
      fit: bundle.fit as LinearFitInfo | undefined,
    });
  }
}
