/**
 * Data-parallel pretraining: one replica per worker (each a one-thread
 * tfjs-wasm), the batch split between them, reductions through shared
 * memory with the official multi-GPU semantics (see train/all-reduce.ts).
 * The coordinator holds no tensors and never blocks: it starts the
 * replicas, shares the dataset, relays progress and checkpoints (from
 * replica 0; all replicas hold the same weights) and turns a dead replica
 * into a clear error.
 *
 * Where the replicas run is the host's business (a ReplicaHost): worker
 * threads in Node (parallel-node.ts, the default there), module Web Workers
 * in browsers (parallel-web.ts; the page must be crossOriginIsolated for
 * SharedArrayBuffer).
 *
 * The same surface as Pretrainer, asynchronous where Pretrainer is not.
 * `batchSize` stays the global batch: each of N workers trains on
 * batchSize / N images per step (BatchNorm statistics per worker, as per
 * GPU in the official code). A resume is exact with the same worker count.
 */
import * as Comlink from 'comlink';
import { MsnConfigError, MsnDisposedError, MsnValueError, MsnWorkerError, errorFromName } from '../errors.js';
import type { CoreBackend } from '../runtime/backend.js';
import { PEER_FAILED, breakGroup, clearStop, createGroupBuffer, requestStop } from '../train/all-reduce.js';
import { NamedArrays } from '../util/readback.js';
import { PretrainConfig, PretrainOptions, checkBatchSplit, pretrainConfig } from './config.js';
import type { CheckpointData, FitOptions, FitSummary, ProgressEvent } from './pretrainer.js';
import type { ReplicaHost, ReplicaInit, ReplicaMember, ReplicaStatus } from './replica.js';
import { ImageDataset, sharedPixelData } from './source.js';

export interface ParallelOptions {
  /** Workers (default: every core: `os.availableParallelism()`, `navigator.hardwareConcurrency`). */
  workers?: number;
  /** Backend of every worker (default 'wasm'). */
  backend?: CoreBackend;
  /** Where the replicas run (default: worker threads in Node; browsers pass parallel-web's host). */
  host?: ReplicaHost;
}

export class ParallelPretrainer {
  private status: ReplicaStatus;
  private dataset: ImageDataset | undefined;
  private broken: Error | undefined;
  private onBroken: ((e: Error) => void)[] = [];
  private disposed = false;

  private constructor(
    private readonly members: ReplicaMember[],
    private readonly buffer: SharedArrayBuffer,
    status: ReplicaStatus,
  ) {
    this.status = status;
  }

  /** A fresh run (as Pretrainer.create: the same seed gives every worker the same initial weights). */
  static create(opts: PretrainOptions = {}, par: ParallelOptions = {}): Promise<ParallelPretrainer> {
    return ParallelPretrainer.start({ kind: 'create', options: opts }, par);
  }

  /** Resumes a run (from a parallel or single-thread checkpoint). */
  static fromCheckpoint(ckpt: CheckpointData, par: ParallelOptions = {}): Promise<ParallelPretrainer> {
    return ParallelPretrainer.start({ kind: 'checkpoint', checkpoint: ckpt }, par);
  }

  /** A fresh run from existing weights (as Pretrainer.fromWeights). */
  static fromWeights(
    opts: PretrainOptions,
    weights: { params: NamedArrays; buffers: NamedArrays },
    prototypes: Float32Array,
    numBatchesTracked = 0,
    par: ParallelOptions = {},
  ): Promise<ParallelPretrainer> {
    return ParallelPretrainer.start({ kind: 'weights', options: opts, weights, prototypes, numBatchesTracked }, par);
  }

  private static async start(init: ReplicaInit, par: ParallelOptions): Promise<ParallelPretrainer> {
    const host = par.host ?? (await defaultHost());
    const n = par.workers ?? host.cores();
    if (!Number.isInteger(n) || n < 1 || n > 64) throw new MsnValueError(`workers must be an integer from 1 to 64, got ${String(par.workers)}.`);
    if (typeof SharedArrayBuffer === 'undefined') {
      throw new MsnConfigError('Data-parallel pretraining needs SharedArrayBuffer: in a browser, serve the page crossOriginIsolated (headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp), or train with one worker.');
    }
    checkBatchSplit(init.kind === 'checkpoint' ? init.checkpoint.config.batchSize : pretrainConfig(init.options).batchSize, n); // before any worker starts
    const members = Array.from({ length: n }, () => host.spawn());
    try {
      const ready = await raceDeaths(members, Promise.all(members.map((m) => m.api.init(init, par.backend ?? 'wasm'))));
      const buffer = createGroupBuffer(n, ready[0].reduceLength);
      await raceDeaths(members, Promise.all(members.map((m, rank) => m.api.join(buffer, rank, n))));
      const run = new ParallelPretrainer(members, buffer, ready[0].status);
      members.forEach((m, rank) => m.onDeath((how) => run.lost(rank, how)));
      keepAlive(members, false);
      return run;
    } catch (e) {
      await Promise.all(members.map((m) => m.terminate()));
      throw e;
    }
  }

  get workers(): number {
    return this.members.length;
  }

  get step(): number {
    return this.status.step;
  }

  get iteration(): number {
    return this.status.iteration;
  }

  get config(): PretrainConfig {
    return this.status.config;
  }

  get planEnd(): number {
    return this.status.planEnd;
  }

  /** As Pretrainer.planSteps, on every replica. */
  async planSteps(steps: number): Promise<boolean> {
    const r = await this.all((m) => m.api.planSteps(steps));
    this.status = r[0].status;
    return r[0].replanned;
  }

  /**
   * As Pretrainer.fit on an in-memory dataset (shared with the workers once,
   * without copies per step). Progress and checkpoints come from worker 0.
   * If a worker dies, this rejects with MsnWorkerError and the run is over:
   * the checkpoints written so far are intact, resume from the last one.
   */
  async fit(dataset: ImageDataset, opts: FitOptions = {}): Promise<FitSummary> {
    this.assertUsable();
    if (dataset !== this.dataset) {
      const data = sharedPixelData(dataset);
      if (!data) throw new MsnValueError('Data-parallel pretraining needs an in-memory dataset (datasetFromPixels, datasetFromImages, loadImageFolder).');
      if (data.count < this.config.batchSize) {
        throw new MsnValueError(`The dataset has ${data.count} images, fewer than one batch of ${this.config.batchSize}; add images or lower batchSize.`);
      }
      await this.all((m) => m.api.setData(data));
      this.dataset = dataset;
    }
    clearStop(this.buffer);
    const stop = () => requestStop(this.buffer);
    if (opts.signal?.aborted) stop();
    opts.signal?.addEventListener('abort', stop);
    // A throwing callback stops the run at the next step and is rethrown (as it would be in-thread).
    let callbackError: unknown;
    const guard = <A extends unknown[]>(f: (...a: A) => unknown) => async (...a: A) => {
      try {
        await f(...a);
      } catch (e) {
        callbackError ??= e;
        stop();
      }
    };
    const onProgress = (e: ProgressEvent) => {
      this.status = { ...this.status, step: e.step, iteration: e.iteration };
      opts.onProgress?.(e);
    };
    const onCheckpoint = opts.onCheckpoint;
    const runOpts = { steps: opts.steps, epochs: opts.epochs, checkpointEvery: opts.checkpointEvery };
    try {
      const r = await this.all((m, rank) =>
        rank === 0
          ? m.api.fit(runOpts, Comlink.proxy(guard(onProgress)), onCheckpoint ? Comlink.proxy(async (c: CheckpointData) => {
            await onCheckpoint(c); // not guarded: a failed write must fail the run
          }) : undefined)
          : m.api.fit(runOpts),
      );
      this.status = r[0].status;
      if (callbackError) throw callbackError;
      return r[0].summary;
    } catch (e) {
      if (callbackError) throw callbackError;
      throw e;
    } finally {
      opts.signal?.removeEventListener('abort', stop);
    }
  }

  /** The run's state from worker 0 (all workers hold the same weights; BatchNorm buffers are worker 0's, as DDP broadcasts rank 0's). */
  async readCheckpoint(): Promise<CheckpointData> {
    return (await this.all((m, rank) => (rank === 0 ? m.api.checkpoint() : Promise.resolve(undefined))))[0]!;
  }

  /** Live tensors in each worker (for leak tests). */
  async numTensors(): Promise<number[]> {
    return this.all((m) => m.api.numTensors());
  }

  /** Stops the workers; a running fit() rejects with MsnWorkerError. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    breakGroup(this.buffer);
    const gone = new MsnWorkerError('The parallel pretrainer was disposed during this call; resume from the last checkpoint.');
    for (const f of this.onBroken) f(gone); // a pending fit() rejects instead of waiting on terminated workers
    await Promise.all(this.members.map((m) => m.terminate()));
  }

  /** Calls every member; a dead worker or a failed member rejects with the root cause. */
  private async all<T>(call: (m: ReplicaMember, rank: number) => Promise<T>): Promise<T[]> {
    this.assertUsable();
    keepAlive(this.members, true); // while a call is pending; an idle run never keeps Node alive
    const settled = await raceDeaths(this.members, Promise.allSettled(this.members.map(call)), this).finally(() => keepAlive(this.members, false));
    const failures = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected').map((s) => asError(s.reason));
    if (failures.length) throw failures.find((e) => !e.message.startsWith(PEER_FAILED)) ?? failures[0];
    return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
  }

  private lost(rank: number, how: string): void {
    if (this.disposed || this.broken) return;
    this.broken = new MsnWorkerError(
      `Pretraining worker ${rank} of ${this.members.length} ${how}; the run stopped. Checkpoints written so far are intact: resume from the last one.`,
    );
    breakGroup(this.buffer);
    for (const m of this.members) void m.terminate();
    for (const f of this.onBroken) f(this.broken);
  }

  /** @internal */
  whenBroken(f: (e: Error) => void): () => void {
    this.onBroken.push(f);
    return () => (this.onBroken = this.onBroken.filter((g) => g !== f));
  }

  private assertUsable(): void {
    if (this.disposed) throw new MsnDisposedError('This parallel pretrainer has been disposed; create a new one or resume from a checkpoint.');
    if (this.broken) throw this.broken;
  }

  /** @internal For tests of a worker crash. */
  replica(rank: number): ReplicaMember {
    return this.members[rank];
  }
}

/** Convenience factory (the create* style of the other entry points). */
export function createParallelPretrainer(opts: PretrainOptions = {}, par: ParallelOptions = {}): Promise<ParallelPretrainer> {
  return ParallelPretrainer.create(opts, par);
}

/** Settles with `p`, or rejects as soon as a member dies (before the run exists: any exit; after: the run's broken error). */
function raceDeaths<T>(members: ReplicaMember[], p: Promise<T>, run?: ParallelPretrainer): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const cleanups: (() => void)[] = [];
    const done = () => cleanups.forEach((c) => c());
    if (run) {
      cleanups.push(run.whenBroken((e) => (done(), reject(e))));
    } else {
      members.forEach((m, rank) => {
        cleanups.push(m.onDeath((how) => {
          done();
          reject(new MsnWorkerError(`Pretraining worker ${rank} ${how} while starting.`));
        }));
      });
    }
    p.then((v) => (done(), resolve(v)), (e) => (done(), reject(asError(e))));
  });
}

function keepAlive(members: ReplicaMember[], on: boolean): void {
  for (const m of members) m.keepAlive(on);
}

/** Errors from comlink keep name and message; give them back their msn-web class. */
function asError(e: unknown): Error {
  if (e instanceof Error) return e.name.startsWith('Msn') || e.name === 'AbortError' ? errorFromName(e.name, e.message, e.stack) : e;
  return new MsnWorkerError(String(e));
}

/** Node's worker threads unless the caller names a host (browser builds get a stub that says to). */
async function defaultHost(): Promise<ReplicaHost> {
  return (await import('./parallel-node.js')).nodeReplicaHost;
}
