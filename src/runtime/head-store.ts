/**
 * The engine's fitted heads by id: fit, predict, save, load, delete.
 *
 * Heads see the encoder only through HeadInputs (its fingerprint and sizes,
 * and features or prototype probabilities of pixels), so the store works,
 * and is tested, without a model: with `{ features }` inputs it never
 * computes anything from pixels.
 */
import { MsnConfigError, MsnShapeError, MsnValueError } from '../errors.js';
import { bundleToBytes, loadHead as loadHeadBundle, type AnyHead } from '../heads/bundle.js';
import { headKind, kindOptions } from '../heads/registry.js';
import { prototypeLabelHeadFromNames } from '../heads/prototype-label.js';
import type { FeatureMatrix, HeadKind, Prediction } from '../heads/common.js';
import type { FeatureOrPixels, FitHeadInput, PixelData, PredictOptions } from './api.js';
import { checkTemperature } from './embedder.js';

/** What heads need from the encoder in use. */
export interface HeadInputs {
  /** Fingerprint of the encoder's weights (heads remember the one they were fitted on). */
  fingerprint(): Promise<string>;
  /** Feature size (D) and number of prototypes (K) of the encoder. */
  sizes(): { embedDim: number; numPrototypes: number };
  /** Encoder features of the images, [count x D]. */
  features(data: PixelData): Promise<Float32Array>;
  /** Every prototype probability of the images at temperature `tau`, [count x K]. */
  prototypeProbs(data: PixelData, tau: number): Promise<Float32Array>;
}

/** What every kind's fit takes besides the examples. */
interface CommonFit {
  encoderFingerprint: string;
  unknownThreshold?: number;
}

/**
 * The one place a head kind is chosen: fits a head of `kind` on `matrix`
 * (features, or prototype probabilities for 'prototype-label').
 */
function fitOfKind(kind: HeadKind, matrix: FeatureMatrix, labels: string[], options: object, common: CommonFit): AnyHead {
  return headKind(kind).fit(matrix, labels, { ...common, ...kindOptions(kind, options) });
}

export class HeadStore {
  private readonly heads = new Map<string, AnyHead>();
  private nextHead = 1;

  constructor(private readonly inputs: HeadInputs) {}

  /** Ids of the heads held, in the order they were added. */
  ids(): string[] {
    return [...this.heads.keys()];
  }

  /**
   * Fits a head on features (or on images, embedded first); returns its id.
   * kind 'prototype-label' takes prototype assignments (or images, assigned
   * first), or `prototypeLabels` instead of examples.
   */
  async fit(input: FitHeadInput): Promise<string> {
    if (input?.kind === 'prototype-label') return this.add(await this.prototypeHead(input));
    if (typeof input !== 'object' || input === null || !('labels' in input)) {
      throw new MsnValueError("fitHead() needs { labels } with { features } or { pixels, shape } ({ prototypeLabels } only with kind 'prototype-label').");
    }
    const labels = checkLabels(input.labels);
    const matrix = await this.matrix(input, labels.length);
    const { embedDim } = this.inputs.sizes();
    if (matrix.count !== labels.length) throw new MsnShapeError(`Got ${matrix.count} examples but ${labels.length} labels.`);
    if (matrix.dim !== embedDim) {
      throw new MsnShapeError(
        `features have ${matrix.dim} values per example, but this encoder's features have ${embedDim}: ` +
          'pass features from embed() on this client, or pixels.',
      );
    }
    const common = { encoderFingerprint: await this.inputs.fingerprint(), unknownThreshold: input.unknownThreshold };
    return this.add(fitOfKind(input.kind ?? 'linear', matrix, labels, input, common));
  }

  /** A prototype-label head from named prototypes, or from labelled images (pixels, or their assignments as features). */
  private async prototypeHead(input: FitHeadInput): Promise<AnyHead> {
    const k = this.inputs.sizes().numPrototypes;
    const temperature = checkTemperature(input.temperature);
    const common = { encoderFingerprint: await this.inputs.fingerprint(), unknownThreshold: input.unknownThreshold };
    if ('prototypeLabels' in input) return prototypeLabelHeadFromNames(input.prototypeLabels, { ...common, temperature, numPrototypes: k });
    const labels = checkLabels(input.labels);
    const a = await this.matrix(input, labels.length, temperature);
    if (a.dim !== k) {
      throw new MsnShapeError(
        `A prototype-label head takes prototype probabilities, ${k} per image for this model (assignPrototypes(..., { full: true }).full), ` +
          `but got ${a.dim} values per example; pass those, or pixels.`,
      );
    }
    return fitOfKind('prototype-label', a, labels, { temperature }, common);
  }

  /** Class probabilities and labels for features or images. */
  async predict(headId: string, input: FeatureOrPixels, opts: PredictOptions = {}): Promise<Prediction> {
    const head = this.get(headId);
    if (!('features' in input)) {
      const fp = await this.inputs.fingerprint();
      if (head.encoderFingerprint !== fp) {
        throw new MsnConfigError(
          `Head '${headId}' was fitted on features of encoder '${head.encoderFingerprint}', but the current encoder is '${fp}' ` +
            '(it changed through pretraining or a checkpoint). Refit the head on the current encoder.',
        );
      }
    }
    const count = 'features' in input ? input.count ?? input.features.length / head.featureDim : undefined;
    const matrix = await this.matrix(input, count, head.kind === 'prototype-label' ? head.temperature : undefined);
    return head.predict(matrix, opts);
  }

  /** The head as bytes (versioned bundle with a checksum and the encoder fingerprint). */
  save(headId: string): Uint8Array {
    return bundleToBytes(this.get(headId).toBundle());
  }

  /** Adds a head saved by save(); MsnConfigError if it was fitted on another encoder. */
  async load(bytes: Uint8Array): Promise<string> {
    return this.add(loadHeadBundle(bytes, { expectedFingerprint: await this.inputs.fingerprint() }));
  }

  delete(headId: string): void {
    this.get(headId);
    this.heads.delete(headId);
  }

  clear(): void {
    this.heads.clear();
  }

  private add(head: AnyHead): string {
    const id = `head-${this.nextHead++}`;
    this.heads.set(id, head);
    return id;
  }

  private get(id: string): AnyHead {
    const h = this.heads.get(id);
    if (!h) throw new MsnValueError(`No head '${String(id)}' in this engine (known: ${this.ids().join(', ') || 'none'}).`);
    return h;
  }

  /**
   * A head's input: `features` as given, or computed from pixels: encoder
   * features, or with `prototypesAt` (a prototype-label head's temperature)
   * every prototype probability.
   */
  private async matrix(input: FeatureOrPixels, count: number | undefined, prototypesAt?: number): Promise<FeatureMatrix> {
    if (typeof input !== 'object' || input === null) throw new MsnValueError('Expected { features } or { pixels, shape }.');
    if ('features' in input) {
      const data = input.features;
      if (!(data instanceof Float32Array)) throw new MsnValueError('features must be a Float32Array (count x dim, row-major).');
      const n = input.count ?? count;
      if (n === undefined || !Number.isInteger(n) || n < 1 || data.length % n !== 0) {
        throw new MsnShapeError(`features has ${data.length} values, which is not a whole number of rows for count ${String(n)}.`);
      }
      return { data, count: n, dim: data.length / n };
    }
    const { embedDim, numPrototypes } = this.inputs.sizes();
    const data = prototypesAt === undefined ? await this.inputs.features(input) : await this.inputs.prototypeProbs(input, prototypesAt);
    const dim = prototypesAt === undefined ? embedDim : numPrototypes;
    return { data, count: data.length / dim, dim };
  }
}

function checkLabels(labels: unknown): string[] {
  if (!Array.isArray(labels) || !labels.every((l) => typeof l === 'string')) throw new MsnValueError('labels must be an array of strings.');
  return labels;
}
