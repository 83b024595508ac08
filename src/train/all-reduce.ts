/**
 * Data-parallel MSN across replicas (worker threads), with the official
 * multi-GPU semantics (msn_train.py under DistributedDataParallel):
 *   - each replica runs its own share of the batch; BatchNorm statistics are
 *     per replica (as per GPU);
 *   - Sinkhorn's normalisers are summed over all replicas
 *     (`distributed_sinkhorn`: all_reduce of sum(Q) and of the row sums, B
 *     counted over all replicas);
 *   - ME-MAX uses the mean anchor probabilities of all replicas (the official
 *     `AllReduce`: forward averages, backward passes the gradient unchanged);
 *   - gradients are averaged (DDP), then every replica applies the same
 *     update, so the replicas stay bit-identical.
 *
 * The reduction is synchronous (SharedArrayBuffer + Atomics.wait), so it can
 * run inside a gradient tape between two ops. Every replica sums the slots in
 * rank order, so all of them get the same bits.
 */
import * as tf from '@tensorflow/tfjs-core';
import { MsnValueError, MsnWorkerError } from '../errors.js';

/** What the training code needs from a group of replicas. */
export interface AllReduce {
  readonly rank: number;
  readonly size: number;
  /** Elementwise sum of `values` over all replicas (every replica calls it, same lengths, same order). */
  sum(values: Float32Array): Float32Array;
}

/** Control words at the start of the shared buffer (Int32). */
const ARRIVED = 0;
const GENERATION = 1;
const BROKEN = 2;
const STOP = 3;
const CONTROL_BYTES = 16;
/** How often a waiting replica checks whether the group was broken (ms). */
const POLL_MS = 250;

/** Thrown in every replica once another one failed or the coordinator broke the group. */
export const PEER_FAILED = 'Another training replica failed';

/**
 * The shared memory of one group: control words and two banks of
 * `size` slots of `capacity` floats (alternating banks let one barrier per
 * reduction suffice: a replica can only overwrite a bank after every replica
 * has passed the next barrier, i.e. finished reading it).
 */
export function createGroupBuffer(size: number, capacity: number): SharedArrayBuffer {
  if (!Number.isInteger(size) || size < 1 || !Number.isInteger(capacity) || capacity < 1) {
    throw new MsnValueError(`A replica group needs size >= 1 and capacity >= 1, got ${size} and ${capacity}.`);
  }
  return new SharedArrayBuffer(CONTROL_BYTES + 2 * size * capacity * 4);
}

/** Sets the group's broken flag and wakes every waiting replica (they throw). */
export function breakGroup(buffer: SharedArrayBuffer): void {
  const ctl = new Int32Array(buffer, 0, 4);
  Atomics.store(ctl, BROKEN, 1);
  Atomics.notify(ctl, GENERATION);
}

/** Asks the replicas to stop at their next step boundary (they agree on it by a reduction). */
export function requestStop(buffer: SharedArrayBuffer): void {
  Atomics.store(new Int32Array(buffer, 0, 4), STOP, 1);
}

export function clearStop(buffer: SharedArrayBuffer): void {
  Atomics.store(new Int32Array(buffer, 0, 4), STOP, 0);
}

/** A replica's view of its group: reductions, the collective stop decision, and failure. */
export interface ReplicaGroup extends AllReduce {
  /** True when any replica saw a stop request (collective: every replica must call it at the same point). */
  agreeToStop(localStop: boolean): boolean;
  /** Marks the group broken (this replica failed): the others throw instead of waiting forever. */
  fail(): void;
}

export class SharedAllReduce implements ReplicaGroup {
  private readonly ctl: Int32Array;
  private readonly capacity: number;
  private bank = 0;

  constructor(
    private readonly buffer: SharedArrayBuffer,
    readonly rank: number,
    readonly size: number,
  ) {
    this.ctl = new Int32Array(buffer, 0, 4);
    this.capacity = (buffer.byteLength - CONTROL_BYTES) / (8 * size);
    if (!(rank >= 0 && rank < size) || !Number.isInteger(this.capacity)) {
      throw new MsnValueError(`Replica ${rank} of ${size} does not fit a group buffer of ${buffer.byteLength} bytes.`);
    }
  }

  sum(values: Float32Array): Float32Array {
    const n = values.length;
    if (n > this.capacity) throw new MsnValueError(`A reduction of ${n} values exceeds the group's capacity of ${this.capacity}.`);
    const bankOffset = CONTROL_BYTES + this.bank * this.size * this.capacity * 4;
    this.bank ^= 1;
    const slot = (r: number) => new Float32Array(this.buffer, bankOffset + r * this.capacity * 4, n);
    slot(this.rank).set(values);
    this.barrier();
    const acc = new Float64Array(n);
    for (let r = 0; r < this.size; r++) {
      const s = slot(r);
      for (let i = 0; i < n; i++) acc[i] += s[i];
    }
    return Float32Array.from(acc);
  }

  agreeToStop(localStop: boolean): boolean {
    const asked = localStop || Atomics.load(this.ctl, STOP) === 1;
    return this.sum(Float32Array.of(asked ? 1 : 0))[0] > 0;
  }

  fail(): void {
    breakGroup(this.buffer);
  }

  private barrier(): void {
    const ctl = this.ctl;
    const gen = Atomics.load(ctl, GENERATION);
    if (Atomics.load(ctl, BROKEN)) throw new MsnWorkerError(`${PEER_FAILED}; this run stopped.`);
    if (Atomics.add(ctl, ARRIVED, 1) === this.size - 1) {
      Atomics.store(ctl, ARRIVED, 0);
      Atomics.add(ctl, GENERATION, 1);
      Atomics.notify(ctl, GENERATION);
      return;
    }
    while (Atomics.load(ctl, GENERATION) === gen) {
      if (Atomics.load(ctl, BROKEN)) throw new MsnWorkerError(`${PEER_FAILED}; this run stopped.`);
      Atomics.wait(ctl, GENERATION, gen, POLL_MS);
    }
  }
}

/**
 * The official AllReduce autograd function: the value is the mean over the
 * replicas, the gradient passes through unchanged (DDP's gradient averaging
 * then divides it by the number of replicas).
 */
export function allReduceMean<T extends tf.Tensor>(x: T, group: AllReduce): T {
  const f = tf.customGrad((...args) => {
    const input = args[0] as tf.Tensor;
    const summed = group.sum(input.dataSync() as Float32Array);
    for (let i = 0; i < summed.length; i++) summed[i] /= group.size;
    return { value: tf.tensor(summed, input.shape), gradFunc: (dy: tf.Tensor) => dy };
  });
  return f(x) as T;
}

/** A tensor's sum over the replicas, as a constant (no gradient: Sinkhorn runs outside the tape). */
export function allReduceSum<T extends tf.Tensor>(x: T, group: AllReduce): T {
  return tf.tensor(group.sum(x.dataSync() as Float32Array), x.shape) as T;
}

/**
 * The mean of each tensor over the replicas, in one reduction (DDP's
 * gradient averaging). Returns new tensors and disposes the inputs.
 */
export function averageTensors(tensors: tf.Tensor[], group: AllReduce): tf.Tensor[] {
  const flat = tf.tidy(() => tf.concat(tensors.map((t) => tf.reshape(tf.cast(t, 'float32'), [-1]))));
  const values = flat.dataSync() as Float32Array;
  flat.dispose();
  const summed = group.sum(values);
  const inv = 1 / group.size;
  let at = 0;
  const out = tensors.map((t) => {
    const part = summed.subarray(at, at + t.size);
    at += t.size;
    for (let i = 0; i < part.length; i++) part[i] *= inv;
    return tf.tensor(part, t.shape);
  });
  tf.dispose(tensors);
  return out;
}
