/**
 * The contract between the main-thread client and the engine (in a worker or
 * in-thread). Every argument and result is plain data: typed arrays, numbers,
 * strings and plain objects, never tensors or class instances, so it survives
 * structured clone. Callbacks are separate arguments (comlink proxies them);
 * cancellation is a separate `abortPretraining()` call.
 */
import type { VitConfig } from '../model/config.js';
import type { ModelData } from '../io/model-format.js';
import type { LoadProgress } from '../io/model-loader.js';
import type { HeadKind, Prediction } from '../heads/common.js';
import type { PrototypeAssignment } from '../embed/assign.js';

export type { PrototypeAssignment, LoadProgress };

/** What the caller asks for; 'auto' tries webgpu, then wasm, then cpu. */
export type BackendRequest = 'auto' | 'webgpu' | 'wasm' | 'cpu';
export type BackendName = 'webgpu' | 'wasm' | 'cpu';

/**
 * Where the model comes from:
 * - the name of a model shipped in the package: 'msn-mnist-micro' (found in the
 *   installed package in Node; in browsers the worker bundle names its files as
 *   `new URL(..., import.meta.url)` assets, which bundlers emit). A folder of
 *   that name is './msn-mnist-micro';
 * - a URL of `model.json` (or its folder ending in '/'); relative URLs resolve against the page;
 * - a local folder path (Node only);
 * - an encoded model `{ manifest, shards }` (e.g. from encodeModel or a cache);
 * - decoded `ModelData` (config, params, buffers, prototypes, meta).
 */
export type ModelInput = string | { manifest: unknown; shards: Uint8Array[] } | ModelData;

export interface InitOptions {
  /** Without model, preset or config: random weights (capabilities().model.randomWeights, and a console warning). */
  model?: ModelInput;
  /** A random-init preset (e.g. 'micro-p4-28') when no model is given; default 'micro-p4-28'. */
  preset?: string;
  /** Or a random-init model of this exact configuration (e.g. a tiny one for tests). */
  config?: VitConfig;
  /** Seed of the random init (preset) and the default pretraining seed. Default 0. */
  seed?: number;
  backend?: BackendRequest;
  /** Folder (URL ending in '/') that holds the three tfjs-backend-wasm .wasm files. */
  wasmPath?: string;
  /**
   * Keep a model loaded from URLs (a named model in a browser, a model.json URL) in
   * IndexedDB and load it from there next time, also offline: true (database
   * 'msn-web-models') or a database name. Cached copies are verified (SHA-256) like
   * downloads. Where IndexedDB does not exist (Node: models load from files) it is ignored.
   */
  cache?: boolean | string;
}

/** Layout of a pixel buffer: NHWC, `count` images of height x width x channels. */
export interface ImageShape {
  count: number;
  width: number;
  height: number;
  /** 1 (gray), 3 (RGB) or 4 (RGBA; alpha is dropped). */
  channels: number;
}

/**
 * Pixels: Uint8Array / Uint8ClampedArray hold 0-255; Float32Array holds 0-1
 * unless `valueRange: 255` says 0-255. Values outside the range are an error.
 */
export type Pixels = Float32Array | Uint8Array | Uint8ClampedArray;

export interface PixelOptions {
  /** The largest value of the scale the pixels use (1 or 255). Default: 255 for bytes, 1 for floats. */
  valueRange?: 1 | 255;
  /**
   * Images whose size differs from the model's are resized (bilinear) to the
   * model's imgSize x imgSize. false: use them at their own size (the position
   * embeddings are interpolated; each side must be at least one patch).
   */
  resize?: boolean;
}

export interface EmbedOptions extends PixelOptions {
  /** Images per forward pass (default 64). */
  batchSize?: number;
  /** L2-normalise each feature row. */
  l2Normalize?: boolean;
  /** 'pre' = last-block CLS before the final norm (default, MSN's evaluation feature); 'post' = after it. */
  feature?: 'pre' | 'post';
}

export interface AssignOptions extends PixelOptions {
  /** Prototypes to report per image, most likely first (default 5, at most K). */
  topK?: number;
  /** Softmax temperature (default 0.1, the official anchor temperature). */
  temperature?: number;
  /** Also return the full K-vector of probabilities per image. */
  full?: boolean;
  /** Images per forward pass (default 64; lowered to fit memory). */
  batchSize?: number;
}

export interface PixelData {
  pixels: Pixels;
  shape: ImageShape;
  options?: PixelOptions;
}

export interface PretrainRunOptions {
  /** Optimizer steps in this call (default: the rest of totalSteps). */
  steps?: number;
  /** The following set up a new run and are rejected when a run already exists. */
  batchSize?: number;
  totalSteps?: number;
  warmupSteps?: number;
  seed?: number;
  lr?: { start?: number; ref?: number; final?: number };
  /**
   * Data-parallel replicas for a new run (default 1: this engine's thread). With N > 1 the run
   * trains in N workers (worker threads in Node, Web Workers in browsers, where the page must be
   * crossOriginIsolated), each on batchSize / N images per step, with the official multi-GPU
   * semantics (docs/pretraining.md); progress, checkpoints and the encoder in use work as with one.
   */
  workers?: number;
  /** Steps between onCheckpoint calls (0 or absent: only at the end when a callback is given). */
  checkpointEvery?: number;
  /** In-thread only: cancels the run (the client maps this to abortPretraining()). */
  signal?: AbortSignal;
}

export interface PretrainProgress {
  step: number;
  iteration: number;
  epoch: number;
  loss: number;
  ce: number;
  memax: number;
  lr: number;
  numProtosUsed: number;
  skipped: boolean;
  imagesPerSec: number;
  etaSec: number;
}

export interface PretrainSummary {
  /** Steps taken in this call. */
  steps: number;
  skippedSteps: number;
  /** Step counter of the whole run. */
  totalStep: number;
  lastLoss: number;
  seconds: number;
}

/**
 * A head's input: images, or what the engine would compute from them. For
 * 'prototype-label' heads `features` are prototype probabilities, K per image
 * (assignPrototypes(..., { full: true }).full); for the others, embed() rows.
 */
export type FeatureOrPixels =
  | { features: Float32Array; count?: number }
  | PixelData;

export type FitHeadInput = (
  | (FeatureOrPixels & {
      /** One label per example. */
      labels: string[];
    })
  | {
      /** 'prototype-label' only, instead of labelled examples: prototype id -> label, e.g. `{ 3: 'seven', 12: 'one' }`. */
      prototypeLabels: Record<number, string>;
    }
) & {
  /**
   * Default 'linear' (MSN's low-shot protocol). 'prototype-label' classifies by
   * the prototype assignment: each prototype gets the majority label of the
   * labelled images assigned to it (or the name you give it).
   */
  kind?: HeadKind;
  /** Linear: l2 strength; centroid/knn: temperature; prototype-label: the assignment temperature (default 0.1); knn: k. */
  l2?: number;
  temperature?: number;
  k?: number;
  unknownThreshold?: number;
};

export interface PredictOptions {
  unknownThreshold?: number;
  unknownLabel?: string;
}

export type { Prediction, HeadKind };

export interface BackendStatus {
  status: 'chosen' | 'rejected' | 'not-tried';
  reason?: string;
}

export interface Capabilities {
  backend: BackendName;
  requested: BackendRequest;
  /** Why each backend was chosen, rejected or not tried. */
  backends: Record<BackendName, BackendStatus>;
  wasm?: { simd: boolean; threads: boolean; numThreads: number };
  /** On wasm: whether msn-web's own kernels (batched products, GELU) run, and why not if they do not. */
  wasmKernels?: { active: boolean; reason: string };
  webgpu?: { adapter: string; probeMaxError: number };
  crossOriginIsolated: boolean;
  /** Where the engine runs. */
  host: 'browser-worker' | 'node-worker' | 'in-thread';
  model: {
    config: VitConfig;
    fingerprint: string;
    preprocess: { mean: number[]; std: number[] };
    source: 'url' | 'directory' | 'memory' | 'preset' | 'pretrained' | 'checkpoint';
    /** The shipped model's name when the model was named ('msn-mnist-micro'). */
    name?: string;
    /** True when the weights came from the model cache (the `cache` option) instead of the network. */
    fromCache?: boolean;
    /**
     * True while the weights are a random initialisation (a preset or config, not
     * pretrained): features and prototypes mean nothing yet. Load a trained model
     * (model: 'msn-mnist-micro', a URL, a folder) or pretrain() first.
     */
    randomWeights: boolean;
  };
  /** Pretraining run in this engine, if any. */
  /** The pretraining run, once there is one (`workers`: its data-parallel replicas, 1 in this engine's thread). */
  pretraining?: { step: number; totalSteps: number; batchSize: number; workers: number };
  heads: string[];
  tfjsVersion: string;
}

export interface MemoryInfo {
  numTensors: number;
  numBytes: number;
}

/**
 * The engine's methods as the client calls them. In a worker every result is
 * a promise; the in-thread engine implements the same signatures. MsnClient's
 * type is derived from this one (client.ts), so a method added here must be
 * added to the client too.
 */
export interface MsnApi {
  /** `onProgress`: bytes of the model's shards loaded so far (model files and URLs only). */
  init(opts: InitOptions, onProgress?: (p: LoadProgress) => void): Promise<Capabilities>;
  embed(pixels: Pixels, shape: ImageShape, opts?: EmbedOptions): Promise<Float32Array>;
  /** MSN's prediction: each image's probabilities over the prototypes, as the official loss computes them. */
  assignPrototypes(pixels: Pixels, shape: ImageShape, opts?: AssignOptions): Promise<PrototypeAssignment>;
  pretrain(
    data: PixelData,
    opts?: PretrainRunOptions,
    onProgress?: (p: PretrainProgress) => void,
    onCheckpoint?: (bytes: Uint8Array, step: number) => void | Promise<void>,
  ): Promise<PretrainSummary>;
  /** Stops a running pretrain() at the next step boundary (it rejects with name 'AbortError'). */
  abortPretraining(): Promise<void>;
  saveCheckpoint(): Promise<Uint8Array>;
  loadCheckpoint(bytes: Uint8Array): Promise<Capabilities>;
  fitHead(input: FitHeadInput): Promise<string>;
  predict(headId: string, input: FeatureOrPixels, opts?: PredictOptions): Promise<Prediction>;
  saveHead(headId: string): Promise<Uint8Array>;
  loadHead(bytes: Uint8Array): Promise<string>;
  deleteHead(headId: string): Promise<void>;
  capabilities(): Promise<Capabilities>;
  memory(): Promise<MemoryInfo>;
  /** Health check and transport timing: resolves with the byte length of `data` as the engine received it. */
  ping(data?: ArrayBufferView): Promise<number>;
  /** Frees every tensor (the client also terminates the worker); pending and later calls reject with MsnDisposedError. */
  dispose(): Promise<void>;
}
