/**
 * Few-shot classifier: a small stateful wrapper around the heads for apps
 * that collect labelled examples interactively ("add 5 photos of a mug").
 * With head 'prototype-label' the examples are prototype assignments
 * (assignPrototypes' `full` rows), not features.
 * It keeps the raw features per label, refits the chosen head when asked (or
 * lazily before predicting after a change), and exports/imports bundles.
 * Everything is plain typed arrays, so `dispose()` only drops references; it
 * exists so callers can treat this like the tensor-holding parts of msn-web.
 */
import { MsnConfigError, MsnDisposedError, MsnValueError } from '../errors.js';
import { type HeadBundle, type LoadHeadOptions, checkBundleFingerprint, loadHead, readBundle } from './bundle.js';
import type { CentroidHeadOptions } from './centroid.js';
import {
  type FeatureInput,
  type HeadKind,
  type Prediction,
  type UnknownOptions,
  checkFingerprint,
  checkUnknownOptions,
  toFeatureMatrix,
} from './common.js';
import type { KnnHeadOptions } from './knn.js';
import type { LinearHeadOptions } from './linear.js';
import type { PrototypeLabelHeadOptions } from './prototype-label.js';
import { type AnyHead, headKind, kindOptions } from './registry.js';

interface CommonOptions {
  /** Fingerprint of the encoder whose features you add; stored in exports. */
  fingerprint: string;
}

/** Head kind plus that head's options (without its fingerprint, given once here). */
export type FewShotClassifierOptions = CommonOptions &
  (
    | ({ head: 'linear' } & Omit<LinearHeadOptions, 'encoderFingerprint'>)
    | ({ head: 'centroid' } & Omit<CentroidHeadOptions, 'encoderFingerprint'>)
    | ({ head: 'knn' } & Omit<KnnHeadOptions, 'encoderFingerprint'>)
    | ({ head: 'prototype-label' } & Omit<PrototypeLabelHeadOptions, 'encoderFingerprint'>)
  );

export interface ExportOptions {
  /**
   * Also store the raw training features, so an imported classifier can take
   * more examples and refit. Off by default: it makes bundles larger and
   * carries the users' data.
   */
  includeExamples?: boolean;
}

export class FewShotClassifier {
  private readonly options: FewShotClassifierOptions;
  private readonly examples = new Map<string, Float32Array[]>();
  private featureDim: number | undefined;
  private current: AnyHead | undefined;
  private stale = true;
  /** False for classifiers imported without examples: they can only predict. */
  private trainable = true;
  private disposed = false;

  constructor(options: FewShotClassifierOptions) {
    headKind(options?.head, 'head');
    checkFingerprint(options.fingerprint, 'fingerprint');
    checkUnknownOptions(options, []);
    this.options = { ...options };
  }

  get kind(): HeadKind {
    return this.options.head;
  }

  get fingerprint(): string {
    return this.options.fingerprint;
  }

  /** The last fitted (or imported) head, if any. */
  get head(): AnyHead | undefined {
    return this.current;
  }

  /** Adds examples of one label; returns how many that label now has. */
  addExamples(label: string, features: FeatureInput): number {
    this.checkAlive();
    if (!this.trainable) {
      throw new MsnConfigError(
        'This classifier was imported without its examples, so it cannot be refitted; ' +
          'export it with { includeExamples: true } to keep training after import.',
      );
    }
    if (typeof label !== 'string') throw new MsnValueError(`label must be a string, got ${typeof label}.`);
    const matrix = toFeatureMatrix(features, this.featureDim);
    if (matrix.count === 0) return this.examples.get(label)?.length ?? 0;
    this.featureDim = matrix.dim;
    const rows = this.examples.get(label) ?? [];
    for (let i = 0; i < matrix.count; i++) rows.push(matrix.data.slice(i * matrix.dim, (i + 1) * matrix.dim));
    this.examples.set(label, rows);
    this.stale = true;
    return rows.length;
  }

  /** Forgets all examples of a label; returns whether it existed. */
  removeLabel(label: string): boolean {
    this.checkAlive();
    if (!this.trainable) throw new MsnConfigError('This classifier was imported without its examples; it cannot be changed.');
    const existed = this.examples.delete(label);
    if (existed) this.stale = true;
    if (this.examples.size === 0) this.featureDim = undefined;
    return existed;
  }

  /** Labels with examples, in the order they were first added. */
  labels(): string[] {
    this.checkAlive();
    return this.trainable ? [...this.examples.keys()] : [...(this.current?.classes ?? [])];
  }

  /** Number of stored examples of `label`, or of all labels. */
  exampleCount(label?: string): number {
    this.checkAlive();
    if (label !== undefined) return this.examples.get(label)?.length ?? 0;
    let total = 0;
    for (const rows of this.examples.values()) total += rows.length;
    return total;
  }

  /** Fits the head on all stored examples (needs at least 2 labels). */
  fit(): AnyHead {
    this.checkAlive();
    if (!this.trainable) {
      if (!this.current) throw new MsnConfigError('Nothing to fit.');
      return this.current;
    }
    const labels: string[] = [];
    const rows: Float32Array[] = [];
    for (const [label, list] of this.examples) {
      for (const row of list) {
        labels.push(label);
        rows.push(row);
      }
    }
    if (this.examples.size < 2) {
      throw new MsnValueError(
        `fit() needs examples of at least 2 labels; have ${this.examples.size}` +
          (this.examples.size ? ` (${[...this.examples.keys()].map((l) => `'${l}'`).join(', ')})` : '') +
          '. Add examples with addExamples(label, features).',
      );
    }
    const { head, fingerprint, ...rest } = this.options;
    const headOptions = { ...rest, encoderFingerprint: fingerprint };
    this.current = headKind(head).fit(rows, labels, headOptions);
    this.stale = false;
    return this.current;
  }

  /** Predicts with the current head, refitting first if examples changed. */
  predict(features: FeatureInput, options?: UnknownOptions): Prediction {
    this.checkAlive();
    return this.ensureFitted().predict(features, options);
  }

  /** A bundle for `FewShotClassifier.import` or `loadHead` (fits first if needed). */
  export(options: ExportOptions = {}): HeadBundle {
    this.checkAlive();
    const bundle = this.ensureFitted().toBundle();
    if (options.includeExamples && this.trainable) {
      const labels: string[] = [];
      const data: number[] = [];
      for (const [label, list] of this.examples) {
        for (const row of list) {
          labels.push(label);
          for (let j = 0; j < row.length; j++) data.push(row[j]);
        }
      }
      bundle.exampleLabels = labels;
      bundle.arrays.exampleFeatures = { shape: [labels.length, bundle.featureDim], data };
    }
    return bundle;
  }

  /**
   * Rebuilds a classifier from an export (object, JSON text or bytes). With
   * stored examples it can keep training; without, it only predicts.
   * `expectedFingerprint` works as in `loadHead`.
   */
  static import(source: HeadBundle | Uint8Array | string, options: LoadHeadOptions = {}): FewShotClassifier {
    const bundle = readBundle(source);
    checkBundleFingerprint(bundle, options.expectedFingerprint);
    const head = loadHead(bundle);
    const common = {
      fingerprint: bundle.encoderFingerprint,
      preprocess: bundle.preprocess,
      unknownThreshold: bundle.unknown.threshold,
      unknownLabel: bundle.unknown.label,
    };
    // The head's own options (l2, k, temperature...) so a refit gives the same kind of head.
    const classifier = new FewShotClassifier({ ...common, head: head.kind, ...kindOptions(head.kind, head) } as FewShotClassifierOptions);
    classifier.current = head;
    classifier.featureDim = bundle.featureDim;
    if (bundle.exampleLabels) {
      const features = bundle.arrays.exampleFeatures.data;
      const d = bundle.featureDim;
      bundle.exampleLabels.forEach((label, i) => {
        const rows = classifier.examples.get(label) ?? [];
        rows.push(Float32Array.from(features.slice(i * d, (i + 1) * d)));
        classifier.examples.set(label, rows);
      });
      // The stored head matches the stored examples: no refit until they change.
      classifier.stale = false;
    } else {
      classifier.trainable = false;
      classifier.stale = false;
    }
    return classifier;
  }

  /** Drops examples and head. There are no tensors to free; later calls throw. */
  dispose(): void {
    this.examples.clear();
    this.current = undefined;
    this.disposed = true;
  }

  private ensureFitted(): AnyHead {
    if (this.stale || !this.current) return this.fit();
    return this.current;
  }

  private checkAlive(): void {
    if (this.disposed) throw new MsnDisposedError('This FewShotClassifier was disposed.');
  }
}

/** Creates an empty few-shot classifier; see FewShotClassifier. */
export function createFewShotClassifier(options: FewShotClassifierOptions): FewShotClassifier {
  return new FewShotClassifier(options);
}
