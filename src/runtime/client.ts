/**
 * createMsn(): the main-thread client. The same methods whether the engine
 * runs in a module Web Worker (browsers), a worker_threads Worker (Node) or
 * in-thread (`worker: false`). Calls go through comlink; pixel buffers are
 * transferred (the caller's copy becomes empty unless `transfer: false`),
 * callbacks are proxied, an AbortSignal becomes an abortPretraining() call,
 * and errors keep their name and message (see rpc.ts). If the worker dies
 * (terminated, crashed, out of memory), every pending and later call rejects
 * with MsnWorkerError; create a new client to continue.
 *
 * @example
 * import { createMsn } from 'msn-web';
 * const msn = await createMsn({ model: 'msn-mnist-micro', onProgress: (p) => console.log(p.loadedBytes, '/', p.totalBytes) });
 * const feats = await msn.embed(rgba, { count: 1, width: 28, height: 28, channels: 4 });
 * console.log((await msn.capabilities()).backend);
 * await msn.dispose();
 */
import * as Comlink from 'comlink';
import { MsnAbortError, MsnConfigError, MsnDisposedError, MsnWorkerError } from '../errors.js';
import type {
  AssignOptions, BackendName, Capabilities, EmbedOptions, FeatureOrPixels, FitHeadInput, ImageShape, InitOptions, LoadProgress, MemoryInfo, MsnApi,
  PixelData, Pixels, Prediction, PredictOptions, PretrainRunOptions, PretrainSummary, PrototypeAssignment,
} from './api.js';
import { type Grouping, groupByPrototype } from '../embed/groups.js';
import { registerErrorTransfer, transferable } from './rpc.js';
import { nodeTransport } from './node-transport.js';
import { isShippedModelName } from '../io/shipped-models.js';

/** A subset of worker_threads WorkerOptions (kept local so browser users need no Node types). */
export interface NodeWorkerOptions {
  execArgv?: string[];
  workerData?: unknown;
  env?: Record<string, string | undefined>;
  resourceLimits?: { maxOldGenerationSizeMb?: number; maxYoungGenerationSizeMb?: number; stackSizeMb?: number };
  [key: string]: unknown;
}

export interface CreateMsnOptions extends InitOptions {
  /** Run the engine in a worker (default true): a module Web Worker in browsers, worker_threads in Node. */
  worker?: boolean;
  /**
   * The worker script. Default: `worker/msn.worker.js` (browsers) or
   * `worker/msn.node-worker.js` (Node) next to this module in dist/.
   */
  workerUrl?: string | URL;
  /** Extra worker_threads options (Node only), e.g. resourceLimits. */
  nodeWorkerOptions?: NodeWorkerOptions;
  /**
   * Model loading progress in bytes (like Transformers.js's progress_callback):
   * `{ loadedBytes, totalBytes, file }`, first with 0 loaded, last with all of
   * them. Called for named models, URLs, folders and encoded models; errors it
   * throws are ignored.
   */
  onProgress?: (p: LoadProgress) => void;
}

export interface TransferOption {
  /** Transfer pixel buffers to the worker instead of copying them (your array becomes empty). Default true. */
  transfer?: boolean;
}

/** pretrain()'s engine arguments, whose callbacks the client takes as options. */
type PretrainArgs = Parameters<MsnApi['pretrain']>;

export interface ClientPretrainOptions extends Omit<PretrainRunOptions, 'signal'>, TransferOption {
  /** Aborting rejects pretrain() with name 'AbortError' at the next step; the run stays usable. */
  signal?: AbortSignal;
  /** Called after every iteration (errors it throws are ignored). */
  onProgress?: PretrainArgs[2];
  /** Called with checkpoint bytes every `checkpointEvery` steps and at the end. */
  onCheckpoint?: PretrainArgs[3];
}

/*
 * The client's type is derived from the engine contract (MsnApi), so the two
 * cannot drift: a method added to MsnApi is a client method too, and the
 * Client class below fails to compile until it implements it.
 */

/** Engine methods the client offers in another form: init (createMsn calls it), abortPretraining (pretrain's `signal`), pretrain and ping (below). */
type ReshapedMethods = 'init' | 'abortPretraining' | 'pretrain' | 'ping';

/** The methods that send pixels, and the argument that gets the transfer option. */
interface PixelArgument {
  embed: 2;
  assignPrototypes: 2;
  fitHead: 0;
  predict: 1;
}

/** Arguments `A` with TransferOption added to argument `I`. */
type WithTransferAt<A extends unknown[], I extends number> = { [K in keyof A]: K extends `${I}` ? A[K] & TransferOption : A[K] };

/** MsnApi's methods as the client has them: the same arguments and results, plus `transfer` where pixels are sent. */
export type ClientMethods = {
  [M in Exclude<keyof MsnApi, ReshapedMethods>]: M extends keyof PixelArgument
    ? (...args: WithTransferAt<Parameters<MsnApi[M]>, PixelArgument[M]>) => ReturnType<MsnApi[M]>
    : MsnApi[M];
};

/** The client: every method is async and takes/returns plain data. */
export interface MsnClient extends ClientMethods {
  /** Where the engine runs. */
  readonly host: Capabilities['host'];
  /** The backend chosen at creation. */
  readonly backend: BackendName;
  /** The underlying Worker (browser) or worker_threads Worker (Node); undefined in-thread. Terminate it only via dispose(). */
  readonly worker: unknown;
  /** Images grouped by their most likely prototype, typical images first, with the prototype usage. */
  groupImages(pixels: Pixels, shape: ImageShape, opts?: AssignOptions & TransferOption & { typical?: number }): Promise<Grouping>;
  /** MsnApi.pretrain with the callbacks, an AbortSignal and `transfer` as options. */
  pretrain(data: PretrainArgs[0], opts?: ClientPretrainOptions): ReturnType<MsnApi['pretrain']>;
  /**
   * Health check: resolves with the byte length the engine received. A
   * Float32Array/Uint8Array is transferred unless `transfer: false`.
   */
  ping(data?: Float32Array | Uint8Array, opts?: TransferOption): ReturnType<MsnApi['ping']>;
}

/** The engine as a transport reaches it: comlink's view of it in a worker, the engine itself in-thread. */
export type EngineHandle = Comlink.Remote<MsnApi> | MsnApi;

export interface Transport {
  api: EngineHandle;
  host: Capabilities['host'];
  worker: unknown;
  remote: boolean;
  terminate(): Promise<void>;
  /** Registers the callback for a worker that dies on its own. */
  onDeath(cb: (err: MsnWorkerError) => void): void;
  /** Node: whether the worker keeps the process alive (only while a call is pending, so scripts exit without dispose()). */
  keepAlive(on: boolean): void;
}

function isNode(): boolean {
  return typeof process !== 'undefined' && !!process.versions?.node && typeof (globalThis as { window?: unknown }).window === 'undefined';
}

async function browserTransport(url: string | URL | undefined): Promise<Transport> {
  if (typeof Worker === 'undefined') throw new MsnConfigError('Web Workers are not available here; pass worker: false.');
  // The literal `new Worker(new URL('./worker/...', import.meta.url), { type: 'module' })` form is what
  // bundlers (Vite, webpack) detect: they then bundle the worker with its chunks and .wasm files.
  const w = url
    ? new Worker(url, { type: 'module', name: 'msn-web' })
    : new Worker(new URL('./worker/msn.worker.js', import.meta.url), { type: 'module', name: 'msn-web' });
  const src = url ?? 'worker/msn.worker.js';
  let death: ((e: MsnWorkerError) => void) | undefined;
  w.addEventListener('error', (ev: ErrorEvent) => {
    ev.preventDefault();
    const what = ev.message || `no details: check that ${String(src)} is served with a JavaScript MIME type and allowed by the page's CSP`;
    death?.(new MsnWorkerError(`The msn-web worker crashed or failed to load (${what}). Create a new client.`));
  });
  return {
    api: Comlink.wrap<MsnApi>(w),
    host: 'browser-worker',
    worker: w,
    remote: true,
    terminate: async () => w.terminate(),
    onDeath: (cb) => (death = cb),
    keepAlive: () => undefined,
  };
}

async function inThreadTransport(): Promise<Transport> {
  // Loaded on demand so the main-thread bundle carries no tfjs when a worker is used.
  const { createEngine } = await import('./engine.js');
  const engine = createEngine({ host: 'in-thread' });
  return {
    api: engine, host: 'in-thread', worker: undefined, remote: false,
    terminate: async () => undefined, onDeath: () => undefined, keepAlive: () => undefined,
  };
}

/**
 * 'auto' that ends on cpu because webgpu/wasm failed to start (e.g. the .wasm
 * files are not served) works, but ~20x slower: say so once per client, with
 * the reasons capabilities().backends keeps.
 */
function warnCpuFallback(caps: Capabilities): void {
  if (caps.requested !== 'auto' || caps.backend !== 'cpu') return;
  const failed = Object.entries(caps.backends ?? {}).filter(([, b]) => b?.status === 'rejected');
  if (!failed.length) return;
  console.warn(
    `msn-web: backend 'auto' fell back to the slow cpu backend because ${failed.map(([name, b]) => `'${name}' failed to start (${b.reason ?? 'no reason given'})`).join(' and ')}. ` +
      "See capabilities().backends; pass backend: 'wasm' to make this an error.",
  );
}

/**
 * createMsn() with no model, preset or config gets random weights: its
 * features and prototypes mean nothing yet. Say so once per client
 * (capabilities().model.randomWeights says it too).
 */
function warnRandomWeights(opts: InitOptions, caps: Capabilities): void {
  if (opts.model !== undefined || opts.preset !== undefined || opts.config !== undefined || !caps.model.randomWeights) return;
  console.warn(
    'msn-web: no model given, so the encoder has random weights: ' +
      "its features and prototypes are not meaningful yet. Pass model: 'msn-mnist-micro' (the shipped model), a model URL or folder, " +
      "or pretrain() first; pass preset: 'micro-p4-28' to ask for random weights without this warning.",
  );
}

class Client implements MsnClient {
  backend: BackendName = 'cpu';
  private failure: Error | undefined;
  private rejectAll!: (e: Error) => void;
  private readonly failed: Promise<never>;
  private disposing: Promise<void> | undefined;
  private pending = 0;

  constructor(private readonly t: Transport) {
    this.failed = new Promise<never>((_, reject) => (this.rejectAll = reject));
    this.failed.catch(() => undefined);
    t.onDeath((err) => this.fail(err));
  }

  get host(): Capabilities['host'] {
    return this.t.host;
  }

  get worker(): unknown {
    return this.t.worker;
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.rejectAll(err);
    void this.t.terminate().catch(() => undefined);
  }

  /** Runs a call unless the client is dead; a death while it is pending rejects it. */
  private call<T>(f: () => Promise<T>): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    let p: Promise<T>;
    try {
      p = f();
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.pending++ === 0) this.t.keepAlive(true);
    const settle = () => {
      if (--this.pending === 0) this.t.keepAlive(false);
    };
    p.then(settle, settle);
    return Promise.race([p, this.failed]);
  }

  private pixels<T extends { pixels: Pixels }>(obj: T, transfer: boolean | undefined): T {
    if (!this.t.remote || transfer === false || !ArrayBuffer.isView(obj.pixels)) return obj;
    const { value, transfer: list } = transferable(obj.pixels);
    const out = { ...obj, pixels: value };
    Comlink.transfer(value, list); // when the array itself is the argument
    return Comlink.transfer(out, list); // when it sits inside an object
  }

  async init(opts: InitOptions, onProgress?: (p: LoadProgress) => void): Promise<Capabilities> {
    const o = { ...opts };
    const loc = (globalThis as { location?: { href: string } }).location;
    if (typeof o.model === 'string' && loc && !isNode() && !/^[a-z][a-z0-9+.-]*:/i.test(o.model) && !isShippedModelName(o.model)) {
      o.model = new URL(o.model, loc.href).href;
    }
    if (o.wasmPath && loc && !isNode()) o.wasmPath = new URL(o.wasmPath, loc.href).href;
    const progress = onProgress && (this.t.remote ? Comlink.proxy(onProgress) : onProgress);
    const caps = await this.call(() => this.t.api.init(o, progress));
    this.backend = caps.backend;
    warnCpuFallback(caps);
    warnRandomWeights(opts, caps);
    return caps;
  }

  embed(pixels: Pixels, shape: ImageShape, opts: EmbedOptions & TransferOption = {}): Promise<Float32Array> {
    const { transfer, ...rest } = opts;
    return this.call(() => this.t.api.embed(this.pixels({ pixels }, transfer).pixels, shape, rest));
  }

  assignPrototypes(pixels: Pixels, shape: ImageShape, opts: AssignOptions & TransferOption = {}): Promise<PrototypeAssignment> {
    const { transfer, ...rest } = opts;
    return this.call(() => this.t.api.assignPrototypes(this.pixels({ pixels }, transfer).pixels, shape, rest));
  }

  async groupImages(pixels: Pixels, shape: ImageShape, opts: AssignOptions & TransferOption & { typical?: number } = {}): Promise<Grouping> {
    const { typical, ...rest } = opts;
    return groupByPrototype(await this.assignPrototypes(pixels, shape, rest), { typical });
  }

  async pretrain(data: PixelData, opts: ClientPretrainOptions = {}): Promise<PretrainSummary> {
    const { signal, onProgress, onCheckpoint, transfer, ...run } = opts;
    if (signal?.aborted) throw new MsnAbortError('Pretraining was aborted before it started.');
    const remote = this.t.remote;
    const progress = onProgress && (remote ? Comlink.proxy(onProgress) : onProgress);
    const checkpoint = onCheckpoint && (remote ? Comlink.proxy(onCheckpoint) : onCheckpoint);
    const abort = () => void this.t.api.abortPretraining().catch(() => undefined);
    signal?.addEventListener('abort', abort);
    try {
      return await this.call(() => this.t.api.pretrain(this.pixels(data, transfer), run, progress, checkpoint));
    } finally {
      signal?.removeEventListener('abort', abort);
    }
  }

  saveCheckpoint(): Promise<Uint8Array> {
    return this.call(() => this.t.api.saveCheckpoint());
  }

  loadCheckpoint(bytes: Uint8Array): Promise<Capabilities> {
    return this.call(() => this.t.api.loadCheckpoint(bytes));
  }

  fitHead(input: FitHeadInput & TransferOption): Promise<string> {
    const { transfer, ...rest } = input;
    return this.call(() => this.t.api.fitHead(('pixels' in rest ? this.pixels(rest, transfer) : rest) as FitHeadInput));
  }

  predict(headId: string, input: FeatureOrPixels & TransferOption, opts?: PredictOptions): Promise<Prediction> {
    const { transfer, ...rest } = input;
    return this.call(() => this.t.api.predict(headId, ('pixels' in rest ? this.pixels(rest, transfer) : rest) as FeatureOrPixels, opts));
  }

  saveHead(headId: string): Promise<Uint8Array> {
    return this.call(() => this.t.api.saveHead(headId));
  }

  loadHead(bytes: Uint8Array): Promise<string> {
    return this.call(() => this.t.api.loadHead(bytes));
  }

  deleteHead(headId: string): Promise<void> {
    return this.call(() => this.t.api.deleteHead(headId));
  }

  capabilities(): Promise<Capabilities> {
    return this.call(() => this.t.api.capabilities());
  }

  memory(): Promise<MemoryInfo> {
    return this.call(() => this.t.api.memory());
  }

  ping(data?: Float32Array | Uint8Array, opts: TransferOption = {}): Promise<number> {
    return this.call(() => this.t.api.ping(data === undefined ? undefined : this.pixels({ pixels: data }, opts.transfer).pixels));
  }

  dispose(): Promise<void> {
    this.disposing ??= (async () => {
      if (!this.failure) {
        // Free the tensors first (a worker is torn down anyway; in-thread this is what frees memory).
        let timer: ReturnType<typeof setTimeout> | undefined;
        const timeout = new Promise<void>((r) => (timer = setTimeout(r, 5000)));
        try {
          await Promise.race([this.call(() => this.t.api.dispose()), timeout]);
        } catch {
          // The worker may already be gone.
        } finally {
          clearTimeout(timer);
        }
      }
      this.fail(new MsnDisposedError('This msn-web client was disposed; create a new one.'));
      await this.t.terminate();
    })();
    return this.disposing;
  }
}

/**
 * Creates a client with the engine in a worker (default) or in-thread and
 * initialises it (backend selection, model load, warm-up). Rejects with
 * MsnBackendError when an explicitly requested backend cannot start and with
 * MsnWorkerError when the worker cannot start.
 */
export async function createMsn(opts: CreateMsnOptions = {}): Promise<MsnClient> {
  registerErrorTransfer();
  const { worker = true, workerUrl, nodeWorkerOptions, onProgress, ...init } = opts;
  const t = !worker ? await inThreadTransport() : isNode() ? await nodeTransport(workerUrl, nodeWorkerOptions) : await browserTransport(workerUrl);
  const client = new Client(t);
  try {
    await client.init(init, onProgress);
  } catch (e) {
    await client.dispose();
    throw e;
  }
  return client;
}
