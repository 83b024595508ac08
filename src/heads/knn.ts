/**
 * kNN head: keeps every (preprocessed, unit-length) training example and
 * labels a query by the votes of its k most cosine-similar examples. It
 * follows the data's local shape instead of one mean per class, which helps
 * when a class has several distinct modes and there are enough examples.
 *
 * Votes (`vote` option):
 * - 'weighted' (default): neighbour j votes exp(cos_j / temperature), as in the
 *   weighted kNN evaluation of DINO (temperature 0.07). Closer neighbours count
 *   more, and ties are practically impossible.
 * - 'majority': each of the k neighbours votes 1. Ties go to the class listed
 *   first in `classes`.
 * Probabilities are vote shares among the k neighbours: classes without a
 * neighbour among them get exactly 0.
 *
 * k defaults to 10 and is capped at the number of stored examples. Equal
 * similarities are ordered by example index, so results are deterministic.
 */
import { MsnConfigError, MsnFormatError } from '../errors.js';
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
  toFeatureMatrix,
} from './common.js';
import { type Head, HeadBase, type HeadCommon, bundleHeader } from './head.js';
import { type PreprocessSpec, l2NormalizeRows, preprocessFeatures, preprocessOption } from './preprocess.js';
import type { HeadBundle } from './bundle-format.js';

export type KnnVote = 'weighted' | 'majority';

/** Default `vote`. */
export const DEFAULT_KNN_VOTE: KnnVote = 'weighted';
export const DEFAULT_KNN_K = 10;
export const DEFAULT_KNN_TEMPERATURE = 0.07;
const QUERY_BLOCK = 256;

export interface KnnHeadOptions extends UnknownOptions {
  /** Identifies the encoder that produced the features; stored in the bundle. */
  encoderFingerprint: string;
  /** Neighbours per query; default 10, capped at the number of examples. */
  k?: number;
  /** 'weighted' (default) or 'majority'; see the file comment. */
  vote?: KnnVote;
  /** Temperature of the 'weighted' vote. Default 0.07. */
  temperature?: number;
  /** Preprocessing of stored and query features; default centre + L2-normalise rows. */
  preprocess?: PreprocessSpec;
}

function checkVote(vote: unknown): KnnVote {
  if (vote !== 'weighted' && vote !== 'majority') {
    throw new MsnConfigError(`vote must be 'weighted' or 'majority', got ${JSON.stringify(vote)}.`);
  }
  return vote;
}

/** Fits (stores) a kNN head. Labels are any strings; classes keep first-seen order. */
export function fitKnnHead(features: FeatureInput, labels: readonly string[], options: KnnHeadOptions): KnnHead {
  const encoderFingerprint = checkFingerprint(options?.encoderFingerprint);
  const k = positiveOption(options.k, DEFAULT_KNN_K, 'k', true);
  const vote = checkVote(options.vote ?? DEFAULT_KNN_VOTE);
  const temperature = positiveOption(options.temperature, DEFAULT_KNN_TEMPERATURE, 'temperature');
  const spec = preprocessOption(options.preprocess);
  const matrix = toFeatureMatrix(features);
  const { classes, y } = encodeLabels(labels, matrix.count);
  const unknown = checkUnknownOptions(options, classes);
  const bank = l2NormalizeRows(preprocessFeatures(matrix, spec), matrix.count, matrix.dim);
  return new KnnHead({
    classes,
    featureDim: matrix.dim,
    encoderFingerprint,
    preprocess: spec,
    bank: Float32Array.from(bank),
    bankLabels: y,
    k,
    vote,
    temperature,
    unknown,
  });
}

export class KnnHead extends HeadBase implements Head {
  readonly kind = 'knn' as const;
  /** Stored examples, count x featureDim, unit rows. */
  readonly bank: Float32Array;
  /** Class index of each stored example. */
  readonly bankLabels: Int32Array;
  /** Requested k; the effective k is min(k, stored examples). */
  readonly k: number;
  readonly vote: KnnVote;
  readonly temperature: number;

  constructor(init: HeadCommon & {
    bank: Float32Array;
    bankLabels: Int32Array;
    k: number;
    vote: KnnVote;
    temperature: number;
  }) {
    super(init);
    this.bank = init.bank;
    this.bankLabels = init.bankLabels;
    this.k = init.k;
    this.vote = init.vote;
    this.temperature = init.temperature;
  }

  predict(features: FeatureInput, options?: UnknownOptions): Prediction {
    const unknown = resolveUnknown(this.unknown, options, this.classes);
    const matrix = toFeatureMatrix(features, this.featureDim);
    const d = this.featureDim;
    const C = this.classes.length;
    const n = this.bankLabels.length;
    const k = Math.min(this.k, n);
    const X = l2NormalizeRows(preprocessFeatures(matrix, this.preprocess), matrix.count, d);
    const probs = new Float32Array(matrix.count * C);
    // Similarities for a block of queries at a time: fast blocked products,
    // bounded memory (QUERY_BLOCK x n doubles) however many queries come in.
    const sims = new Float64Array(Math.min(QUERY_BLOCK, matrix.count) * n);
    // Current top-k, kept sorted by decreasing similarity (insertion; k is small).
    const topSim = new Float64Array(k);
    const topIdx = new Int32Array(k);
    const votes = new Float64Array(C);
    for (let start = 0; start < matrix.count; start += QUERY_BLOCK) {
      const rows = Math.min(QUERY_BLOCK, matrix.count - start);
      dotRows(X.subarray(start * d, (start + rows) * d), rows, this.bank, n, d, sims);
      for (let r = 0; r < rows; r++) {
        let filled = 0;
        for (let b = 0; b < n; b++) {
          const s = sims[r * n + b];
          // Strict '>' keeps the lower index first among equal similarities.
          if (filled === k && s <= topSim[k - 1]) continue;
          let pos = filled < k ? filled++ : k - 1;
          while (pos > 0 && s > topSim[pos - 1]) {
            topSim[pos] = topSim[pos - 1];
            topIdx[pos] = topIdx[pos - 1];
            pos--;
          }
          topSim[pos] = s;
          topIdx[pos] = b;
        }
        votes.fill(0);
        let total = 0;
        for (let m = 0; m < k; m++) {
          // exp((cos - cos_max) / T): shifting by the top similarity cancels in
          // the shares and keeps the nearest neighbour's weight at exactly 1.
          const w = this.vote === 'weighted' ? Math.exp((topSim[m] - topSim[0]) / this.temperature) : 1;
          votes[this.bankLabels[topIdx[m]]] += w;
          total += w;
        }
        const o = (start + r) * C;
        for (let c = 0; c < C; c++) probs[o + c] = votes[c] / total;
      }
    }
    return makePrediction(probs, matrix.count, this.classes, unknown);
  }

  toBundle(): HeadBundle {
    const n = this.bankLabels.length;
    return {
      ...bundleHeader('knn', this),
      params: { k: this.k, vote: this.vote, temperature: this.temperature },
      arrays: {
        bank: { shape: [n, this.featureDim], data: Array.from(this.bank) },
        bankLabels: { shape: [n], data: Array.from(this.bankLabels) },
      },
    };
  }

  static fromBundle(bundle: HeadBundle): KnnHead {
    const { bank, bankLabels } = bundle.arrays;
    const C = bundle.classes.length;
    if (!bank || bank.shape.length !== 2 || bank.shape[0] < 1 || bank.shape[1] !== bundle.featureDim) {
      throw new MsnFormatError(`knn bundle needs arrays.bank of shape [examples, ${bundle.featureDim}].`);
    }
    if (!bankLabels || bankLabels.shape.length !== 1 || bankLabels.shape[0] !== bank.shape[0]) {
      throw new MsnFormatError(`knn bundle needs arrays.bankLabels of shape [${bank.shape[0]}].`);
    }
    if (!bankLabels.data.every((c) => Number.isInteger(c) && c >= 0 && c < C)) {
      throw new MsnFormatError(`knn bundle arrays.bankLabels must be class indices in [0, ${C}).`);
    }
    const { k, vote, temperature } = bundle.params;
    if (typeof k !== 'number' || !Number.isInteger(k) || k < 1) throw new MsnFormatError(`knn bundle params.k must be a positive integer, got ${k}.`);
    if (vote !== 'weighted' && vote !== 'majority') throw new MsnFormatError(`knn bundle params.vote is invalid: ${JSON.stringify(vote)}.`);
    if (typeof temperature !== 'number' || !(temperature > 0)) {
      throw new MsnFormatError(`knn bundle params.temperature must be > 0, got ${temperature}.`);
    }
    return new KnnHead({
      classes: bundle.classes,
      featureDim: bundle.featureDim,
      encoderFingerprint: bundle.encoderFingerprint,
      preprocess: bundle.preprocess,
      bank: Float32Array.from(bank.data),
      bankLabels: Int32Array.from(bankLabels.data),
      k,
      vote,
      temperature,
      unknown: { unknownThreshold: bundle.unknown.threshold, unknownLabel: bundle.unknown.label },
    });
  }
}
