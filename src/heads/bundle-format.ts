/**
 * What a head bundle is, independent of how it is stored: the plain,
 * versioned, JSON-serialisable object with everything needed to predict
 * (weights, class names, preprocessing, feature size) plus the fingerprint of
 * the encoder whose features the head was fitted on, so a head is never
 * silently applied to another encoder; the bounds it must respect; and the
 * checks every reader runs (the object, its JSON text, both byte formats).
 * Kind-specific shapes are checked by each head's `fromBundle`.
 *
 * Depends on nothing but common.ts and preprocess.ts, so the head classes can
 * name `HeadBundle` without importing the code that loads them.
 */
import { MsnConfigError, MsnFormatError } from '../errors.js';
import { HEAD_KINDS, type HeadKind, isHeadKind } from './common.js';
import { type PreprocessSpec, parsePreprocessSpec } from './preprocess.js';

export const HEAD_BUNDLE_FORMAT = 'msn-web/head';
export const HEAD_BUNDLE_VERSION = 1;

/** A float32 array as JSON: `data.length` equals the product of `shape`. */
export interface BundleArray {
  shape: number[];
  data: number[];
}

export interface HeadBundle {
  format: 'msn-web/head';
  version: 1;
  kind: HeadKind;
  /** Features per example the head expects. */
  featureDim: number;
  /** Class names, in the column order of predicted probabilities. */
  classes: string[];
  preprocess: PreprocessSpec;
  /** The encoder the features came from; see `loadHead`'s `expectedFingerprint`. */
  encoderFingerprint: string;
  /** Default rejection: threshold 0 never rejects. */
  unknown: { threshold: number; label: string };
  /** Kind-specific hyper-parameters (linear: l2; centroid: temperature; knn: k, vote, temperature; prototype-label: temperature). */
  params: Record<string, number | string>;
  /** Kind-specific float32 arrays (linear: weights; centroid: centroids; knn: bank, bankLabels; prototype-label: labelMap). */
  arrays: Record<string, BundleArray>;
  /** Solver report of a linear head; informational. */
  fit?: Record<string, number | boolean>;
  /**
   * Raw (unpreprocessed) training examples, present when a few-shot
   * classifier was exported with `includeExamples`: labels here and features
   * in `arrays.exampleFeatures` (count x featureDim).
   */
  exampleLabels?: string[];
}

/**
 * Bounds on what a bundle may describe, checked before its arrays are
 * expanded. Generous for real heads (ImageNet-21k has 21,841 classes; MSN
 * features are 384-1024 wide) and small against a hostile file.
 */
export const HEAD_LIMITS = Object.freeze({
  maxClasses: 100_000,
  maxFeatureDim: 65_536,
  /** Characters in one class name or label. */
  maxNameLength: 1_000,
});

/** The arrays each head kind stores; `exampleFeatures` joins them when `exampleLabels` is present. */
const KIND_ARRAYS: Readonly<Record<HeadKind, readonly string[]>> = {
  linear: ['weights'],
  centroid: ['centroids'],
  knn: ['bank', 'bankLabels'],
  'prototype-label': ['labelMap'],
};
export const EXAMPLES_ARRAY = 'exampleFeatures';

export interface LoadHeadOptions {
  /**
   * Fingerprint of the encoder you will feed the head. When given and
   * different from the bundle's, loading throws an MsnConfigError.
   */
  expectedFingerprint?: string;
}

/** Throws the MsnFormatError every bundle reader uses. */
export function fail(message: string): never {
  throw new MsnFormatError(`Invalid head bundle: ${message}`);
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Checks everything that does not depend on the head kind and returns the
 * bundle typed. Kind-specific shapes are checked by each head's `fromBundle`.
 */
export function validateBundle(value: unknown): HeadBundle {
  const preprocess = checkFields(value);
  const v = value as Record<string, unknown>;
  if (!isRecord(v.arrays)) fail('arrays must be an object.');
  const arrays = v.arrays as Record<string, unknown>;
  checkArrayTable(v as unknown as HeadBundle, arrays);
  for (const [name, array] of Object.entries(arrays)) checkArray(name, array);
  return { ...(v as unknown as HeadBundle), preprocess };
}

/** Every field except the arrays' contents; returns the parsed preprocess spec. */
export function checkFields(value: unknown): PreprocessSpec {
  if (!isRecord(value)) fail(`expected an object, got ${value === null ? 'null' : typeof value}.`);
  if (value.format !== HEAD_BUNDLE_FORMAT) fail(`format must be '${HEAD_BUNDLE_FORMAT}', got ${JSON.stringify(value.format)}.`);
  if (value.version !== HEAD_BUNDLE_VERSION) {
    fail(
      `unsupported version ${JSON.stringify(value.version)}; this msn-web reads version ${HEAD_BUNDLE_VERSION}` +
        (typeof value.version === 'number' && value.version > HEAD_BUNDLE_VERSION ? ' (upgrade msn-web).' : '.'),
    );
  }
  if (!isHeadKind(value.kind)) fail(`kind must be one of ${HEAD_KINDS.join(', ')}, got ${JSON.stringify(value.kind)}.`);
  const featureDim = value.featureDim;
  if (typeof featureDim !== 'number' || !Number.isInteger(featureDim) || featureDim < 1) {
    fail(`featureDim must be a positive integer, got ${JSON.stringify(featureDim)}.`);
  }
  if (featureDim > HEAD_LIMITS.maxFeatureDim) {
    fail(`featureDim is ${featureDim}, above the limit of ${HEAD_LIMITS.maxFeatureDim} (HEAD_LIMITS.maxFeatureDim); the bundle is damaged or not a head of this SDK.`);
  }
  const classes = value.classes;
  if (!Array.isArray(classes) || classes.length < 2 || !classes.every((c) => typeof c === 'string')) {
    fail('classes must be an array of at least 2 strings.');
  }
  if (classes.length > HEAD_LIMITS.maxClasses) {
    fail(`the bundle lists ${classes.length} classes, above the limit of ${HEAD_LIMITS.maxClasses} (HEAD_LIMITS.maxClasses); split the problem into smaller heads.`);
  }
  if (classes.some((c) => c.length > HEAD_LIMITS.maxNameLength)) fail(`a class name is longer than ${HEAD_LIMITS.maxNameLength} characters; shorten it.`);
  if (new Set(classes).size !== classes.length) fail('classes contains duplicate names.');
  const preprocess = parsePreprocessSpec(value.preprocess);
  if (typeof value.encoderFingerprint !== 'string' || value.encoderFingerprint.length === 0) {
    fail('encoderFingerprint must be a non-empty string.');
  }
  const unknown = value.unknown;
  if (
    !isRecord(unknown) ||
    typeof unknown.threshold !== 'number' ||
    !(unknown.threshold >= 0 && unknown.threshold <= 1) ||
    typeof unknown.label !== 'string'
  ) {
    fail('unknown must be { threshold: number in [0, 1], label: string }.');
  }
  if (unknown.threshold > 0 && classes.includes(unknown.label)) fail(`unknown.label '${unknown.label}' is also a class name.`);
  if (
    !isRecord(value.params) ||
    !Object.values(value.params).every((p) => (typeof p === 'number' && Number.isFinite(p)) || typeof p === 'string')
  ) {
    fail('params must be an object of finite numbers and strings.');
  }
  if (
    value.fit !== undefined &&
    (!isRecord(value.fit) || !Object.values(value.fit).every((v) => typeof v === 'number' || typeof v === 'boolean'))
  ) {
    fail('fit must be an object of numbers and booleans when present.');
  }
  if (value.exampleLabels !== undefined) {
    const labels = value.exampleLabels;
    if (!Array.isArray(labels) || !labels.every((l) => typeof l === 'string' && l.length <= HEAD_LIMITS.maxNameLength)) {
      fail(`exampleLabels must be strings of at most ${HEAD_LIMITS.maxNameLength} characters.`);
    }
  }
  return preprocess;
}

/**
 * The arrays table (names and shapes only): exactly the arrays of this head
 * kind, nothing else, so a bundle cannot smuggle in extra entries to expand.
 */
export function checkArrayTable(bundle: HeadBundle, table: Record<string, unknown>): void {
  const allowed = [...KIND_ARRAYS[bundle.kind], ...(bundle.exampleLabels !== undefined ? [EXAMPLES_ARRAY] : [])];
  const extra = Object.keys(table).filter((n) => !allowed.includes(n));
  if (extra.length > 0) {
    fail(
      `arrays ${extra.slice(0, 4).map((n) => JSON.stringify(n.length > 40 ? `${n.slice(0, 40)}...` : n)).join(', ')}` +
        `${extra.length > 4 ? ` and ${extra.length - 4} more` : ''} are not part of a ${bundle.kind} head (expected ${allowed.join(', ')}); ` +
        'the bundle is damaged or was not written by msn-web: save the head again with saveHead().',
    );
  }
  if (bundle.exampleLabels !== undefined) {
    const features = table[EXAMPLES_ARRAY] as { shape?: unknown } | undefined;
    const shape = isRecord(features) && Array.isArray(features.shape) ? (features.shape as unknown[]) : undefined;
    if (!shape || shape.length !== 2 || shape[0] !== bundle.exampleLabels.length || shape[1] !== bundle.featureDim) {
      fail(`arrays.exampleFeatures must have shape [${bundle.exampleLabels.length}, ${bundle.featureDim}] to match exampleLabels.`);
    }
  }
}

function checkArray(name: string, array: unknown): asserts array is BundleArray {
  if (!isRecord(array) || !Array.isArray(array.shape) || !Array.isArray(array.data)) {
    fail(`arrays.${name} must be { shape: number[], data: number[] }.`);
  }
  if (!array.shape.every((s) => typeof s === 'number' && Number.isInteger(s) && s >= 0)) {
    fail(`arrays.${name}.shape must hold non-negative integers, got ${JSON.stringify(array.shape)}.`);
  }
  const size = (array.shape as number[]).reduce((a, b) => a * b, 1);
  if (array.data.length !== size) {
    fail(`arrays.${name} has ${array.data.length} values; shape [${array.shape.join(', ')}] needs ${size}.`);
  }
  // JSON turns NaN and Infinity into null, so non-numbers here are corruption too.
  const data = array.data as unknown[];
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) fail(`arrays.${name}.data[${i}] is ${String(v)}, not a finite number.`);
  }
}

/** Throws MsnConfigError when `expected` is given and is not the bundle's fingerprint. */
export function checkBundleFingerprint(bundle: HeadBundle, expected: string | undefined): void {
  if (expected !== undefined && expected !== bundle.encoderFingerprint) {
    throw new MsnConfigError(
      `Encoder fingerprint mismatch: this head was fitted on features of encoder '${bundle.encoderFingerprint}', ` +
        `but expectedFingerprint is '${expected}'. Its predictions on other features would be meaningless; ` +
        `refit the head on features of the current encoder.`,
    );
  }
}

