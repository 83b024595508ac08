/**
 * Saving and loading heads. A bundle is a plain, versioned, JSON-serialisable
 * object: everything needed to predict (weights, class names, preprocessing,
 * feature size) plus the fingerprint of the encoder whose features the head
 * was fitted on, so a head is never silently applied to another encoder.
 *
 * `bundleToBytes` packs it compactly and with a checksum:
 *
 *   bytes 0..7    ASCII "MSNHEAD1"
 *   bytes 8..11   uint32 LE: length H of the JSON header
 *   bytes 12..15  uint32 LE: CRC-32 of every byte from 16 to the end
 *   16..16+H      UTF-8 JSON: the bundle with each array's `data` replaced by
 *                 `offset` (in float32 elements into the payload), plus
 *                 `payloadFloats`
 *   then          zero padding to a multiple of 4 bytes
 *   then          the float32 payload, little-endian
 *
 * The checksum makes any flipped or lost byte a clear MsnFormatError instead
 * of a head with silently different weights.
 *
 * Float32 values survive JSON exactly (a float32 widened to a double prints
 * and parses back to the same double), so both forms predict identically.
 */
import { MsnConfigError, MsnFormatError } from '../errors.js';
import type { Head, HeadKind } from './common.js';
import { CentroidHead } from './centroid.js';
import { KnnHead } from './knn.js';
import { LinearHead } from './linear.js';
import { PrototypeLabelHead } from './prototype-label.js';
import { type PreprocessSpec, parsePreprocessSpec } from './preprocess.js';
import { crc32 } from '../util/crc32.js';

/** CRC-32 (IEEE, as in zip/PNG) of the payload, to catch flipped or cut bytes. */
export { crc32 };

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
const EXAMPLES_ARRAY = 'exampleFeatures';

export interface LoadHeadOptions {
  /**
   * Fingerprint of the encoder you will feed the head. When given and
   * different from the bundle's, loading throws an MsnConfigError.
   */
  expectedFingerprint?: string;
}

const MAGIC = 'MSNHEAD1';
const PREAMBLE = 16;
const KINDS: readonly HeadKind[] = ['linear', 'centroid', 'knn', 'prototype-label'];

function fail(message: string): never {
  throw new MsnFormatError(`Invalid head bundle: ${message}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
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
function checkFields(value: unknown): PreprocessSpec {
  if (!isRecord(value)) fail(`expected an object, got ${value === null ? 'null' : typeof value}.`);
  if (value.format !== HEAD_BUNDLE_FORMAT) fail(`format must be '${HEAD_BUNDLE_FORMAT}', got ${JSON.stringify(value.format)}.`);
  if (value.version !== HEAD_BUNDLE_VERSION) {
    fail(
      `unsupported version ${JSON.stringify(value.version)}; this msn-web reads version ${HEAD_BUNDLE_VERSION}` +
        (typeof value.version === 'number' && value.version > HEAD_BUNDLE_VERSION ? ' (upgrade msn-web).' : '.'),
    );
  }
  if (!KINDS.includes(value.kind as HeadKind)) fail(`kind must be one of ${KINDS.join(', ')}, got ${JSON.stringify(value.kind)}.`);
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
function checkArrayTable(bundle: HeadBundle, table: Record<string, unknown>): void {
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

/** The bundle of a head (a fresh object; safe to JSON.stringify or mutate). */
export function saveHead(head: Head): HeadBundle {
  return head.toBundle();
}

/** Linear, centroid, kNN or prototype-label head, as `loadHead` returns it. */
export type AnyHead = LinearHead | CentroidHead | KnnHead | PrototypeLabelHead;

/**
 * Rebuilds a head from a bundle object, its JSON text, or `bundleToBytes`
 * output. Throws MsnFormatError on anything malformed and MsnConfigError when
 * `expectedFingerprint` is given and differs from the bundle's.
 */
export function loadHead(source: HeadBundle | Uint8Array | string, options: LoadHeadOptions = {}): AnyHead {
  const bundle = readBundle(source, options);
  checkBundleFingerprint(bundle, options.expectedFingerprint);
  switch (bundle.kind) {
    case 'linear':
      return LinearHead.fromBundle(bundle);
    case 'centroid':
      return CentroidHead.fromBundle(bundle);
    case 'knn':
      return KnnHead.fromBundle(bundle);
    case 'prototype-label':
      return PrototypeLabelHead.fromBundle(bundle);
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

/**
 * Parses and validates a bundle from any of its three forms. With
 * `expectedFingerprint`, bytes from another encoder are refused
 * (MsnConfigError) before their arrays are decoded.
 */
export function readBundle(source: HeadBundle | Uint8Array | string, options: LoadHeadOptions = {}): HeadBundle {
  if (source instanceof Uint8Array) return bundleFromBytes(source, options);
  if (typeof source === 'string') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(source);
    } catch (err) {
      fail(`not valid JSON (${(err as Error).message}).`);
    }
    return validateBundle(parsed);
  }
  return validateBundle(source);
}

/** Packs a bundle into bytes: magic, JSON header, float32 payload. */
export function bundleToBytes(input: HeadBundle): Uint8Array {
  const bundle = validateBundle(input);
  const refs: Record<string, { shape: number[]; offset: number }> = {};
  let floats = 0;
  for (const [name, array] of Object.entries(bundle.arrays)) {
    refs[name] = { shape: [...array.shape], offset: floats };
    floats += array.data.length;
  }
  const header = { ...bundle, arrays: refs, payloadFloats: floats };
  const headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const start = align4(PREAMBLE + headerBytes.length);
  const out = new Uint8Array(start + floats * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < MAGIC.length; i++) out[i] = MAGIC.charCodeAt(i);
  view.setUint32(8, headerBytes.length, true);
  out.set(headerBytes, PREAMBLE);
  for (const [name, array] of Object.entries(bundle.arrays)) {
    const base = start + refs[name].offset * 4;
    array.data.forEach((v, i) => view.setFloat32(base + i * 4, v, true));
  }
  view.setUint32(12, crc32(out.subarray(PREAMBLE)), true);
  return out;
}

/**
 * Inverse of `bundleToBytes`; throws MsnFormatError on any damage. Everything
 * in the header is checked before a value is decoded: the fields and their
 * limits, then the fingerprint (`expectedFingerprint`, MsnConfigError), then
 * the arrays table: only this kind's arrays, each inside the payload, no two
 * sharing bytes (aliased entries would expand one payload many times over).
 */
export function bundleFromBytes(bytes: Uint8Array, options: LoadHeadOptions = {}): HeadBundle {
  if (!(bytes instanceof Uint8Array)) fail('expected a Uint8Array.');
  if (bytes.length < PREAMBLE || String.fromCharCode(...bytes.subarray(0, 8)) !== MAGIC) {
    fail(`bytes do not start with '${MAGIC}' (not a head bundle, or truncated).`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (crc32(bytes.subarray(PREAMBLE)) !== view.getUint32(12, true)) {
    fail('checksum mismatch: the bytes were truncated or altered after saving.');
  }
  const headerLength = view.getUint32(8, true);
  if (PREAMBLE + headerLength > bytes.length) fail(`header says ${headerLength} bytes but only ${bytes.length - PREAMBLE} follow.`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(PREAMBLE, PREAMBLE + headerLength)));
  } catch (err) {
    fail(`header is not valid UTF-8 JSON (${(err as Error).message}).`);
  }
  if (!isRecord(header) || !isRecord(header.arrays)) fail('header has no arrays table.');
  const floats = header.payloadFloats;
  const start = align4(PREAMBLE + headerLength);
  if (typeof floats !== 'number' || !Number.isInteger(floats) || floats < 0 || start + floats * 4 !== bytes.length) {
    fail(`payload should be ${String(floats)} float32 values after byte ${start}; there are ${bytes.length} bytes.`);
  }
  checkFields(header);
  checkBundleFingerprint(header as unknown as HeadBundle, options.expectedFingerprint);
  const table = header.arrays as Record<string, unknown>;
  checkArrayTable(header as unknown as HeadBundle, table);

  // Every range is checked (and the ranges against each other) before one value is read.
  const refs: { name: string; shape: number[]; offset: number; size: number }[] = [];
  for (const [name, ref] of Object.entries(table)) {
    if (!isRecord(ref) || !Array.isArray(ref.shape) || typeof ref.offset !== 'number') {
      fail(`arrays.${name} must be { shape, offset } in the header.`);
    }
    const shape = ref.shape as unknown[];
    if (!shape.every((d) => typeof d === 'number' && Number.isInteger(d) && d >= 0)) {
      fail(`arrays.${name}.shape must hold non-negative integers, got ${JSON.stringify(shape.slice(0, 8))}.`);
    }
    // Grown one dimension at a time against the payload, so no product overflows.
    let size = 1;
    for (const d of shape as number[]) {
      size *= d;
      if (size > floats) break;
    }
    const offset = ref.offset;
    if (!Number.isInteger(offset) || offset < 0 || size > floats || offset + size > floats) {
      fail(`arrays.${name} [offset ${offset}, shape ${JSON.stringify(shape.slice(0, 8))}] lies outside the payload.`);
    }
    refs.push({ name, shape: shape as number[], offset, size });
  }
  const spans = refs.filter((r) => r.size > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i].offset < spans[i - 1].offset + spans[i - 1].size) {
      fail(
        `arrays.${spans[i - 1].name} and arrays.${spans[i].name} share payload bytes, but every array must have its own range; ` +
          'the bundle is damaged or was not written by msn-web: save the head again with saveHead().',
      );
    }
  }

  const arrays: Record<string, BundleArray> = {};
  for (const { name, shape, offset, size } of refs) {
    const data = new Array<number>(size);
    for (let i = 0; i < size; i++) data[i] = view.getFloat32(start + (offset + i) * 4, true);
    // defineProperty: a name such as "__proto__" (refused above anyway) stays an own entry.
    Object.defineProperty(arrays, name, { value: { shape, data }, enumerable: true, writable: true, configurable: true });
  }
  const { payloadFloats: _floats, ...rest } = header;
  return validateBundle({ ...rest, arrays });
}

function align4(n: number): number {
  return (n + 3) & ~3;
}
