/**
 * A data-parallel run as the engine's pretraining session holds it
 * (`pretrain(images, { workers })`): the replicas train in their workers
 * (pretrain/parallel.ts); a mirror Pretrainer in this thread holds the
 * run's state as of the end of the last call, so the target encoder the
 * engine embeds with lives here, as it does for a one-thread run.
 *
 * Loaded with dynamic import() by the session only (training code).
 */
import { ParallelPretrainer, type ParallelOptions } from '../pretrain/parallel.js';
import { Pretrainer, type CheckpointData, type FitOptions, type FitSummary } from '../pretrain/pretrainer.js';
import type { PretrainOptions } from '../pretrain/config.js';
import type { ImageDataset } from '../pretrain/source.js';
import type { NamedArrays } from '../util/readback.js';

export class MirroredParallelRun {
  private constructor(
    private readonly replicas: ParallelPretrainer,
    private mirror: Pretrainer,
    /** Called when the mirror was replaced (the engine follows the new target encoder), before the old one is freed. */
    private readonly onMirror: () => void,
  ) {}

  /** Starts `par.workers` replicas from these weights, and the mirror from the same ones. */
  static async fromWeights(
    opts: PretrainOptions,
    weights: { params: NamedArrays; buffers: NamedArrays },
    prototypes: Float32Array,
    numBatchesTracked: number,
    par: ParallelOptions,
    onMirror: () => void,
  ): Promise<MirroredParallelRun> {
    const replicas = await ParallelPretrainer.fromWeights(opts, weights, prototypes, numBatchesTracked, par);
    try {
      return new MirroredParallelRun(replicas, Pretrainer.fromWeights(opts, weights, prototypes, numBatchesTracked), onMirror);
    } catch (e) {
      await replicas.dispose();
      throw e;
    }
  }

  get workers(): number {
    return this.replicas.workers;
  }

  get step(): number {
    return this.replicas.step;
  }

  get config() {
    return this.replicas.config;
  }

  get planEnd(): number {
    return this.replicas.planEnd;
  }

  /** The mirror's state: the run as of the end of the last call. */
  get state() {
    return this.mirror.state;
  }

  planSteps(steps: number): Promise<boolean> {
    return this.replicas.planSteps(steps);
  }

  /** Trains on the replicas, then brings the mirror up to their state (also after an abort). */
  async fit(dataset: ImageDataset, opts: FitOptions): Promise<FitSummary> {
    try {
      return await this.replicas.fit(dataset, opts);
    } finally {
      await this.sync();
    }
  }

  readCheckpoint(): Promise<CheckpointData> {
    return this.replicas.readCheckpoint();
  }

  /** Frees the mirror now and stops the replicas (their workers end; nothing to wait for). */
  dispose(): void {
    this.replicas.dispose().catch(() => undefined);
    this.mirror.dispose();
  }

  /** The replicas' state into a new mirror; a broken run (a replica died) keeps the last one. */
  private async sync(): Promise<void> {
    let ckpt: CheckpointData;
    try {
      ckpt = await this.replicas.readCheckpoint();
    } catch {
      return; // the run is over (MsnWorkerError): the mirror stays at the start of this call
    }
    if (ckpt.step === this.mirror.step) return;
    const old = this.mirror;
    this.mirror = Pretrainer.fromCheckpoint(ckpt);
    this.onMirror();
    old.dispose();
  }
}
