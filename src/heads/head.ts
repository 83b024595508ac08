/**
 * What every head is: the `Head` interface that saveHead/loadHead and the
 * few-shot classifier rely on, the state all heads share (`HeadBase`), and the
 * bundle fields they all write (`bundleHeader`). Apart from common.ts so the
 * numeric helpers there stay free of the bundle format, which depends on them.
 */
import type { HeadBundle } from './bundle-format.js';
import type { FeatureInput, HeadKind, Prediction, UnknownOptions } from './common.js';
import type { PreprocessSpec } from './preprocess.js';

/** What every head offers; `toBundle()` is read by `saveHead`/`loadHead`. */
export interface Head {
  readonly kind: HeadKind;
  readonly classes: readonly string[];
  readonly featureDim: number;
  readonly encoderFingerprint: string;
  predict(features: FeatureInput, options?: UnknownOptions): Prediction;
  /** A plain, JSON-serialisable snapshot; see bundle-format.ts. */
  toBundle(): HeadBundle;
}

/** The fields every head bundle shares (format, version, classes, preprocessing, fingerprint, unknown). */
export function bundleHeader(
  kind: HeadBundle['kind'],
  h: { featureDim: number; classes: readonly string[]; preprocess: HeadBundle['preprocess']; encoderFingerprint: string; unknown: Required<UnknownOptions> },
): Omit<HeadBundle, 'params' | 'arrays'> {
  return {
    format: 'msn-web/head',
    version: 1,
    kind,
    featureDim: h.featureDim,
    classes: [...h.classes],
    preprocess: { ...h.preprocess },
    encoderFingerprint: h.encoderFingerprint,
    unknown: { threshold: h.unknown.unknownThreshold, label: h.unknown.unknownLabel },
  };
}

/** What every head is built from (besides its own parameters). */
export interface HeadCommon {
  classes: readonly string[];
  featureDim: number;
  encoderFingerprint: string;
  preprocess: PreprocessSpec;
  unknown: Required<UnknownOptions>;
}

/** The state every head shares: frozen classes and preprocessing, encoder fingerprint, unknown-class rule. */
export abstract class HeadBase {
  readonly classes: readonly string[];
  readonly featureDim: number;
  readonly encoderFingerprint: string;
  readonly preprocess: PreprocessSpec;
  readonly unknown: Required<UnknownOptions>;

  protected constructor(init: HeadCommon) {
    this.classes = Object.freeze([...init.classes]);
    this.featureDim = init.featureDim;
    this.encoderFingerprint = init.encoderFingerprint;
    this.preprocess = Object.freeze({ ...init.preprocess });
    this.unknown = init.unknown;
  }
}
