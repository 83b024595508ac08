/**
 * Prototype-label head: a classifier made of MSN's own prediction. Its input
 * is not encoder features but each image's soft assignment to the K learned
 * prototypes (one row of K probabilities: `assignPrototypes(..., { full: true }).full`,
 * or what the engine computes from pixels through the same code path), and it
 * holds one label distribution per prototype, `labelMap` [K x C]:
 *
 *   p(class | image) = sum_k a_k labelMap[k, class] + u / C,   u = sum of a_k over unlabelled k
 *
 * labelMap comes from one of two sources:
 * - named prototypes (`prototypeLabelHeadFromNames`): prototype id -> label,
 *   each named row one-hot. Nothing is fitted.
 * - a few labelled images (`fitPrototypeLabelHead`), in two tiers:
 *   1. a prototype that is the most likely one of some labelled images gets
 *      the vote shares of those images: their majority label wins, and a
 *      prototype that received two digits says so with a split row;
 *   2. a prototype that no labelled image chose (most of them when labels are
 *      few: 64 prototypes, 10 images at one shot per digit) gets the
 *      assignment-weighted vote of all labelled images: each votes for its
 *      label with its probability on that prototype, so the labelled images
 *      that come closest to the prototype decide. With the shipped model on
 *      MNIST this raised few-shot accuracy over leaving those prototypes
 *      unlabelled (the zero-row rule below) from 79.0 to 81.8% at one shot
 *      per digit and from 95.6 to 96.1% at ten (msn-web eval, 5 draws, both
 *      rules; the first is commit 89bf335's).
 *
 * A zero row is a prototype nobody labelled: with named prototypes, every one
 * not named. Its share u of an image's assignment is spread evenly over the
 * classes. That never changes the predicted class, which is the
 * assignment-weighted vote of the labelled prototypes (for an image on an
 * unnamed prototype: the named ones it is next closest to), but it lowers the
 * confidence, so `unknownThreshold` rejects images that sit on prototypes
 * nobody named. Spreading u over the labelled prototypes instead
 * (renormalising) would give the same labels with confidences that hide how
 * little of the assignment was labelled. An image whose whole assignment is
 * on unlabelled prototypes gets uniform probabilities.
 *
 * The assignment temperature is stored with the head (params.temperature) so
 * the engine computes inputs at predict time as they were at fit time.
 */
import { PROTOTYPE_TEMPERATURE } from '../defaults.js';
import { MsnFormatError, MsnValueError } from '../errors.js';
import {
  type FeatureInput,
  type FeatureMatrix,
  type Prediction,
  type UnknownOptions,
  checkFingerprint,
  checkUnknownOptions,
  encodeLabels,
  makePrediction,
  positiveOption,
  resolveUnknown,
  toFeatureMatrix,
} from './common.js';
import { type Head, HeadBase, type HeadCommon, bundleHeader } from './head.js';
import type { PreprocessSpec } from './preprocess.js';
import type { HeadBundle } from './bundle-format.js';

/** The official anchor temperature (defaults.ts PROTOTYPE_TEMPERATURE: a module free of tfjs, as heads must stay). */
export const DEFAULT_PROTOTYPE_TEMPERATURE = PROTOTYPE_TEMPERATURE;

/** Inputs are probabilities and are used as they are. */
export const PROTOTYPE_PREPROCESS: Readonly<PreprocessSpec> = Object.freeze({ centering: false, normalize: false });

/**
 * How far a row of assignments may sum from 1: softmax rows in float32 sum
 * to 1 within ~1e-6 for K up to 65,536; encoder features or logits passed by
 * mistake are far off.
 */
const ROW_SUM_TOLERANCE = 1e-3;
/** labelMap rows in a bundle: float32 vote shares sum to 1 within ~1e-6. */
const MAP_SUM_TOLERANCE = 1e-4;

export interface PrototypeLabelHeadOptions extends UnknownOptions {
  /** Identifies the encoder (with its projection head and prototypes); stored in the bundle. */
  encoderFingerprint: string;
  /** Softmax temperature of the assignments the head is fed (default 0.1, the official one); recorded, not applied here. */
  temperature?: number;
}

export interface NamedPrototypesOptions extends PrototypeLabelHeadOptions {
  /** K, the model's number of prototypes (capabilities().model.config.numPrototypes). */
  numPrototypes: number;
}

/**
 * Fits the head on labelled images' assignments [n x K] (rows of prototype
 * probabilities): each prototype gets the vote shares of the images whose
 * most likely prototype it is, or, when it is no image's, the
 * assignment-weighted vote of all of them (see the file comment). Labels are
 * any strings; classes keep first-seen order.
 */
export function fitPrototypeLabelHead(
  assignments: FeatureInput,
  labels: readonly string[],
  options: PrototypeLabelHeadOptions,
): PrototypeLabelHead {
  const encoderFingerprint = checkFingerprint(options?.encoderFingerprint);
  const temperature = positiveOption(options.temperature, DEFAULT_PROTOTYPE_TEMPERATURE, 'temperature');
  const a = checkAssignments(toFeatureMatrix(assignments, undefined, 'assignments'));
  const { classes, y } = encodeLabels(labels, a.count);
  const unknown = checkUnknownOptions(options, classes);
  const K = a.dim;
  const C = classes.length;
  const chosen = new Float64Array(K * C); // tier 1: one vote on the image's most likely prototype
  const weighted = new Float64Array(K * C); // tier 2: a vote of weight a_ik on every prototype k
  for (let i = 0; i < a.count; i++) {
    // Most likely prototype; ties go to the lower id, as in assignPrototypes' top-k.
    let best = 0;
    for (let k = 1; k < K; k++) if (a.data[i * K + k] > a.data[i * K + best]) best = k;
    chosen[best * C + y[i]] += 1;
    for (let k = 0; k < K; k++) weighted[k * C + y[i]] += a.data[i * K + k];
  }
  const labelMap = rowShares(chosen, K, C);
  const fallback = rowShares(weighted, K, C);
  for (let k = 0; k < K; k++) {
    if (!labelMap.subarray(k * C, (k + 1) * C).some((v) => v > 0)) labelMap.set(fallback.subarray(k * C, (k + 1) * C), k * C);
  }
  return new PrototypeLabelHead({ classes, featureDim: K, encoderFingerprint, labelMap, temperature, unknown });
}

/**
 * A head from named prototypes, without images: `names` maps prototype ids
 * (0..K-1, e.g. groups you looked at in `groupImages`) to labels. Needs at
 * least 2 distinct labels; several prototypes may share one. Classes are in
 * order of first appearance by ascending prototype id.
 */
export function prototypeLabelHeadFromNames(
  names: Readonly<Record<number, string>> | ReadonlyMap<number, string>,
  options: NamedPrototypesOptions,
): PrototypeLabelHead {
  const encoderFingerprint = checkFingerprint(options?.encoderFingerprint);
  const temperature = positiveOption(options.temperature, DEFAULT_PROTOTYPE_TEMPERATURE, 'temperature');
  const K = positiveOption(options.numPrototypes, 1, 'numPrototypes', true);
  if (typeof names !== 'object' || names === null) {
    throw new MsnValueError('prototype names must be an object or Map of prototype id -> label, e.g. { 3: "seven", 12: "one" }.');
  }
  const entries: [number, string][] = [];
  for (const [key, label] of names instanceof Map ? names : Object.entries(names)) {
    const id = Number(key);
    if (!Number.isInteger(id) || id < 0 || id >= K) {
      throw new MsnValueError(`prototype id ${JSON.stringify(key)} is not an integer from 0 to ${K - 1} (the model has ${K} prototypes).`);
    }
    if (typeof label !== 'string') throw new MsnValueError(`the label of prototype ${id} must be a string, got ${typeof label}.`);
    entries.push([id, label]);
  }
  entries.sort((x, y) => x[0] - y[0]);
  const { classes, y } = encodeLabels(entries.map(([, l]) => l), entries.length);
  const unknown = checkUnknownOptions(options, classes);
  const C = classes.length;
  const labelMap = new Float32Array(K * C);
  entries.forEach(([id], i) => (labelMap[id * C + y[i]] = 1));
  return new PrototypeLabelHead({ classes, featureDim: K, encoderFingerprint, labelMap, temperature, unknown });
}

export class PrototypeLabelHead extends HeadBase implements Head {
  readonly kind = 'prototype-label' as const;
  /** K x classes: each row sums to 1 (a labelled prototype) or is all zero (unlabelled). */
  readonly labelMap: Float32Array;
  /** Temperature of the assignments this head expects. */
  readonly temperature: number;

  constructor(init: Omit<HeadCommon, 'preprocess'> & { labelMap: Float32Array; temperature: number }) {
    super({ ...init, preprocess: PROTOTYPE_PREPROCESS });
    this.labelMap = init.labelMap;
    this.temperature = init.temperature;
  }

  /** K, the number of prototypes (the head's input width). */
  get numPrototypes(): number {
    return this.featureDim;
  }

  /** `assignments`: [count x K] prototype probabilities (rows summing to 1). */
  predict(assignments: FeatureInput, options?: UnknownOptions): Prediction {
    const unknown = resolveUnknown(this.unknown, options, this.classes);
    const a = checkAssignments(toFeatureMatrix(assignments, this.featureDim, 'assignments'));
    const K = this.featureDim;
    const C = this.classes.length;
    const probs = new Float32Array(a.count * C);
    const acc = new Float64Array(C);
    for (let i = 0; i < a.count; i++) {
      acc.fill(0);
      let labelled = 0;
      let total = 0;
      for (let k = 0; k < K; k++) {
        const w = a.data[i * K + k];
        total += w;
        let rowSum = 0;
        for (let c = 0; c < C; c++) {
          const m = this.labelMap[k * C + c];
          acc[c] += w * m;
          rowSum += m;
        }
        if (rowSum > 0) labelled += w;
      }
      // Normalised by the row's own total, so float32 rounding of the assignment does not leak into the sum.
      const spread = (total - labelled) / C;
      for (let c = 0; c < C; c++) probs[i * C + c] = (acc[c] + spread) / total;
    }
    return makePrediction(probs, a.count, this.classes, unknown);
  }

  toBundle(): HeadBundle {
    return {
      ...bundleHeader('prototype-label', this),
      params: { temperature: this.temperature },
      arrays: { labelMap: { shape: [this.featureDim, this.classes.length], data: Array.from(this.labelMap) } },
    };
  }

  static fromBundle(bundle: HeadBundle): PrototypeLabelHead {
    const K = bundle.featureDim;
    const C = bundle.classes.length;
    const map = bundle.arrays.labelMap;
    if (!map || map.shape.length !== 2 || map.shape[0] !== K || map.shape[1] !== C) {
      throw new MsnFormatError(
        `prototype-label bundle needs arrays.labelMap of shape [${K}, ${C}] (prototypes x classes), ` +
          `got ${map ? `[${map.shape.join(', ')}]` : 'none'}.`,
      );
    }
    if (bundle.preprocess.centering || bundle.preprocess.normalize) {
      throw new MsnFormatError('prototype-label bundle must have preprocess { centering: false, normalize: false }: its inputs are probabilities.');
    }
    let labelled = 0;
    for (let k = 0; k < K; k++) {
      let sum = 0;
      for (let c = 0; c < C; c++) {
        const v = map.data[k * C + c];
        if (!(v >= 0 && v <= 1)) throw new MsnFormatError(`prototype-label bundle arrays.labelMap[${k}, ${c}] is ${v}, not a share in [0, 1].`);
        sum += v;
      }
      if (sum !== 0 && Math.abs(sum - 1) > MAP_SUM_TOLERANCE) {
        throw new MsnFormatError(`prototype-label bundle arrays.labelMap row ${k} sums to ${sum}; each row must sum to 1 (labelled) or 0 (unlabelled).`);
      }
      if (sum !== 0) labelled++;
    }
    if (labelled === 0) throw new MsnFormatError('prototype-label bundle labels no prototype (arrays.labelMap is all zero).');
    const temperature = bundle.params.temperature;
    if (typeof temperature !== 'number' || !(temperature > 0)) {
      throw new MsnFormatError(`prototype-label bundle params.temperature must be > 0, got ${temperature}.`);
    }
    return new PrototypeLabelHead({
      classes: bundle.classes,
      featureDim: K,
      encoderFingerprint: bundle.encoderFingerprint,
      labelMap: Float32Array.from(map.data),
      temperature,
      unknown: { unknownThreshold: bundle.unknown.threshold, unknownLabel: bundle.unknown.label },
    });
  }
}

/** Rows of prototype probabilities: non-negative, each summing to 1. */
function checkAssignments(a: FeatureMatrix): FeatureMatrix {
  for (let i = 0; i < a.count; i++) {
    let sum = 0;
    for (let k = 0; k < a.dim; k++) {
      const v = a.data[i * a.dim + k];
      if (v < 0) throw new MsnValueError(notAssignments(`assignments[${i}][${k}] is ${v}`));
      sum += v;
    }
    if (Math.abs(sum - 1) > ROW_SUM_TOLERANCE) throw new MsnValueError(notAssignments(`row ${i} sums to ${sum}`));
  }
  return a;
}

function notAssignments(what: string): string {
  return (
    `${what}, but a prototype-label head takes prototype probabilities (each row non-negative, summing to 1), ` +
    'not encoder features: pass assignPrototypes(pixels, shape, { full: true }).full, or pixels through the client.'
  );
}

/** Each row of counts as shares of its total (zero rows stay zero). */
function rowShares(counts: Float64Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += counts[r * cols + c];
    if (sum > 0) for (let c = 0; c < cols; c++) out[r * cols + c] = counts[r * cols + c] / sum;
  }
  return out;
}

