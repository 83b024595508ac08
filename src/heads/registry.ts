/**
 * One record per head kind: how to fit it, how to rebuild it from a bundle,
 * and which options of its own it takes. Every place that picks a kind at run
 * time (loadHead, the few-shot classifier, the few-shot evaluation, the
 * engine's fitHead) goes through here, so a new kind is one entry here plus
 * its class, and the compiler points at anything it misses.
 *
 * The registry imports the head classes; they only name the bundle's type
 * (bundle-format.ts), and the byte formats (bundle.ts) import the registry,
 * so nothing in src/heads imports back up (test/unit/import-graph.test.ts).
 */
import { MsnConfigError } from '../errors.js';
import type { HeadBundle } from './bundle-format.js';
import { CentroidHead, type CentroidHeadOptions, DEFAULT_CENTROID_TEMPERATURE, fitCentroidHead } from './centroid.js';
import { type FeatureInput, HEAD_KINDS, type HeadKind, isHeadKind } from './common.js';
import { DEFAULT_KNN_K, DEFAULT_KNN_TEMPERATURE, DEFAULT_KNN_VOTE, KnnHead, type KnnHeadOptions, fitKnnHead } from './knn.js';
import { DEFAULT_LINEAR_L2, LinearHead, type LinearHeadOptions, fitLinearHead } from './linear.js';
import {
  DEFAULT_PROTOTYPE_TEMPERATURE,
  PrototypeLabelHead,
  type PrototypeLabelHeadOptions,
  fitPrototypeLabelHead,
} from './prototype-label.js';

/** The head class and fit options of each kind. */
interface KindTypes {
  linear: { head: LinearHead; options: LinearHeadOptions };
  centroid: { head: CentroidHead; options: CentroidHeadOptions };
  knn: { head: KnnHead; options: KnnHeadOptions };
  'prototype-label': { head: PrototypeLabelHead; options: PrototypeLabelHeadOptions };
}

/** Linear, centroid, kNN or prototype-label head, as `loadHead` returns it. */
export type AnyHead = KindTypes[HeadKind]['head'];

export interface HeadKindEntry<K extends HeadKind = HeadKind> {
  readonly kind: K;
  /**
   * Fits a head of this kind on features (prototype-label: prototype
   * assignments) and string labels; checks every option and throws
   * MsnConfigError on a bad one.
   */
  fit(features: FeatureInput, labels: readonly string[], options: KindTypes[K]['options']): KindTypes[K]['head'];
  /** Rebuilds a head from a bundle that passed `validateBundle`; checks this kind's arrays and params. */
  fromBundle(bundle: HeadBundle): KindTypes[K]['head'];
  /**
   * The kind's own hyper-parameters and their defaults: what its bundle
   * records in `params`, its head exposes as properties of the same names,
   * and a refit needs to give the same head.
   */
  readonly options: Readonly<Record<string, number | string>>;
}

export const HEAD_REGISTRY: { readonly [K in HeadKind]: HeadKindEntry<K> } = Object.freeze({
  linear: { kind: 'linear', fit: fitLinearHead, fromBundle: LinearHead.fromBundle, options: { l2: DEFAULT_LINEAR_L2 } },
  centroid: {
    kind: 'centroid',
    fit: fitCentroidHead,
    fromBundle: CentroidHead.fromBundle,
    options: { temperature: DEFAULT_CENTROID_TEMPERATURE },
  },
  knn: {
    kind: 'knn',
    fit: fitKnnHead,
    fromBundle: KnnHead.fromBundle,
    options: { k: DEFAULT_KNN_K, vote: DEFAULT_KNN_VOTE, temperature: DEFAULT_KNN_TEMPERATURE },
  },
  'prototype-label': {
    kind: 'prototype-label',
    fit: fitPrototypeLabelHead,
    fromBundle: PrototypeLabelHead.fromBundle,
    options: { temperature: DEFAULT_PROTOTYPE_TEMPERATURE },
  },
});

/**
 * The registry entry of `kind`, typed for callers that choose the kind at
 * run time. Anything that is not a kind (including names inherited from
 * Object.prototype) is an MsnConfigError naming `what`.
 */
export function headKind(kind: unknown, what = 'kind'): HeadKindEntry {
  if (!isHeadKind(kind)) {
    const names = HEAD_KINDS.map((k) => `'${k}'`);
    throw new MsnConfigError(`${what} must be ${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}, got ${JSON.stringify(kind)}.`);
  }
  return HEAD_REGISTRY[kind] as HeadKindEntry;
}

/** The kind's own options found in `source` (fit input, or a head's properties); absent ones are left out. */
export function kindOptions(kind: HeadKind, source: object): Record<string, number | string> {
  const picked: Record<string, number | string> = {};
  for (const name of Object.keys(HEAD_REGISTRY[kind].options)) {
    const value = (source as Record<string, unknown>)[name];
    if (value !== undefined) picked[name] = value as number | string;
  }
  return picked;
}
