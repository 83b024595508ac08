/**
 * One replica of a data-parallel pretraining run, inside a worker: a Node
 * worker thread (workers/msn.train-worker.ts) or a browser Web Worker
 * (workers/msn.worker.ts started as a replica) exposes it with comlink; the
 * coordinator is parallel.ts, and a ReplicaHost (below; parallel-node.ts,
 * parallel-web.ts) starts the workers. It holds a whole Pretrainer; the
 * replicas of a run start from the same state, train on their shares of each
 * batch and reduce through shared memory (train/all-reduce.ts), so they stay
 * identical.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as Comlink from 'comlink';
import { MsnDisposedError, MsnValueError } from '../errors.js';
import { CoreBackend, useBackend } from '../runtime/backend.js';
import { SharedAllReduce } from '../train/all-reduce.js';
import { NamedArrays } from '../util/readback.js';
import { PretrainConfig, PretrainOptions } from './config.js';
import { CheckpointData, FitSummary, Pretrainer, ProgressEvent } from './pretrainer.js';
import { ImageDataset, PixelData, datasetFromPixels } from './source.js';

/** How every replica of a run builds its starting state (the same on each). */
export type ReplicaInit =
  | { kind: 'create'; options: PretrainOptions }
  | { kind: 'checkpoint'; checkpoint: CheckpointData }
  | { kind: 'weights'; options: PretrainOptions; weights: { params: NamedArrays; buffers: NamedArrays }; prototypes: Float32Array; numBatchesTracked: number };

/** The run's counters as the coordinator mirrors them. */
export interface ReplicaStatus {
  step: number;
  iteration: number;
  planEnd: number;
  config: PretrainConfig;
}

/** One replica as the coordinator sees it, whatever kind of worker runs it. */
export interface ReplicaMember {
  readonly api: Comlink.Remote<Replica>;
  /** Calls `f` when the replica dies (how: e.g. 'exited (code 1)'); returns the unsubscribe. */
  onDeath(f: (how: string) => void): () => void;
  terminate(): Promise<unknown>;
  /** Whether the replica may keep the process alive (Node; a no-op in browsers). */
  keepAlive(on: boolean): void;
}

/** Starts replicas: Node's worker threads, a browser's Web Workers. */
export interface ReplicaHost {
  spawn(): ReplicaMember;
  /** Workers when the caller names no number: one per core. */
  cores(): number;
}

export interface ReplicaFitOptions {
  steps?: number;
  epochs?: number;
  checkpointEvery?: number;
}

export class Replica {
  private pretrainer: Pretrainer | undefined;
  private group: SharedAllReduce | undefined;
  private dataset: ImageDataset | undefined;
  private disposed = false;

  /** Builds the state; returns the number of values a step reduces (loss terms and every gradient). */
  async init(init: ReplicaInit, backend: CoreBackend): Promise<{ reduceLength: number; status: ReplicaStatus }> {
    tf.env().set('PROD', true);
    await useBackend(backend);
    const p =
      init.kind === 'create' ? Pretrainer.create(init.options)
      : init.kind === 'checkpoint' ? Pretrainer.fromCheckpoint(init.checkpoint)
      : Pretrainer.fromWeights(init.options, init.weights, init.prototypes, init.numBatchesTracked);
    this.pretrainer = p;
    let grads = p.state.prototypes.size;
    for (const v of p.state.encoder.params.values()) grads += v.size;
    return { reduceLength: 4 + grads, status: this.status() }; // 4: total, ce, memax, entropy
  }

  join(buffer: SharedArrayBuffer, rank: number, size: number): void {
    const group = new SharedAllReduce(buffer, rank, size);
    this.live().joinGroup(group);
    this.group = group;
  }

  setData(data: PixelData): void {
    this.dataset = datasetFromPixels(data.pixels, data.count, data.height, data.width, data.channels);
  }

  planSteps(steps: number): { replanned: boolean; status: ReplicaStatus } {
    return { replanned: this.live().planSteps(steps), status: this.status() };
  }

  /**
   * fit() on this replica's share. Only rank 0 gets the callbacks. Any
   * failure breaks the group, so the other replicas stop instead of waiting.
   */
  async fit(
    opts: ReplicaFitOptions,
    onProgress?: (e: ProgressEvent) => void,
    onCheckpoint?: (c: CheckpointData) => Promise<void>,
  ): Promise<{ summary: FitSummary; status: ReplicaStatus }> {
    const p = this.live();
    if (!this.dataset || !this.group) throw new MsnValueError('The replica has no data or group yet (call setData and join first).');
    // Progress goes out without waiting (as in-thread); the last delivery is awaited before fit() returns, so no event arrives after it.
    let delivered: Promise<unknown> = Promise.resolve();
    const progress = onProgress && ((e: ProgressEvent) => void (delivered = Promise.resolve(onProgress(e))));
    try {
      const summary = await p.fit(this.dataset, { ...opts, onProgress: progress, onCheckpoint });
      await delivered;
      return { summary, status: this.status() };
    } catch (e) {
      // An agreed stop or a numerical stop happens on every replica at the same step; anything else must release the others.
      if ((e as Error).name !== 'AbortError' && (e as Error).name !== 'MsnNumericalError') this.group.fail();
      throw e;
    } finally {
      // The callbacks are comlink proxies: release them, or their ports keep the coordinator's Node process alive.
      for (const f of [onProgress, onCheckpoint]) (f as Partial<Comlink.ProxyMethods> | undefined)?.[Comlink.releaseProxy]?.();
    }
  }

  async checkpoint(): Promise<CheckpointData> {
    return this.live().readCheckpoint();
  }

  /** Live tensors of this worker's TensorFlow.js (for leak tests). */
  numTensors(): number {
    return tf.memory().numTensors;
  }

  dispose(): void {
    this.disposed = true;
    this.pretrainer?.dispose();
    this.pretrainer = undefined;
  }

  private status(): ReplicaStatus {
    const p = this.live();
    return { step: p.step, iteration: p.iteration, planEnd: p.planEnd, config: p.config };
  }

  private live(): Pretrainer {
    if (this.disposed) throw new MsnDisposedError('The replica was disposed.');
    if (!this.pretrainer) throw new MsnValueError('The replica was not initialised.');
    return this.pretrainer;
  }
}
