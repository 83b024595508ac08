/**
 * The data-parallel reductions (src/train/all-reduce.ts) in this thread: the
 * shared-memory group at size 1 and its failure/stop flags, and the
 * autograd semantics of the official AllReduce against a peer whose
 * contribution is known. (Two real replicas in worker threads:
 * test/pretrain/parallel.test.ts.)
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import '../../src/runtime/gradients.js';
import {
  AllReduce, PEER_FAILED, SharedAllReduce, allReduceMean, allReduceSum, averageTensors, breakGroup, clearStop, createGroupBuffer, requestStop,
} from '../../src/train/all-reduce.js';
import { sinkhorn } from '../../src/train/loss.js';

/** A group of two in which the other replica always contributes `peer` (same length as the call). */
function withPeer(peer: number[]): AllReduce & { calls: number } {
  return {
    rank: 0, size: 2, calls: 0,
    sum(values: Float32Array) {
      this.calls++;
      return Float32Array.from(values, (v, i) => v + peer[i]);
    },
  };
}

describe('SharedAllReduce', () => {
  it('a group of one returns its own values, in the bank it wrote, call after call', () => {
    const g = new SharedAllReduce(createGroupBuffer(1, 4), 0, 1);
    expect(Array.from(g.sum(Float32Array.of(1, 2, 3)))).toEqual([1, 2, 3]);
    expect(Array.from(g.sum(Float32Array.of(-4.5, 0.25, 1e-30, 7)))).toEqual([-4.5, 0.25, Math.fround(1e-30), 7]);
    expect(Array.from(g.sum(Float32Array.of(9)))).toEqual([9]);
  });

  it('refuses a reduction longer than the group was sized for, and a rank outside the group', () => {
    const buf = createGroupBuffer(2, 3);
    expect(() => new SharedAllReduce(buf, 0, 2).sum(new Float32Array(4))).toThrow(/4 values exceeds the group's capacity of 3/);
    const bytes = buf.byteLength;
    expect(() => new SharedAllReduce(buf, 2, 2)).toThrow(expect.objectContaining({ name: 'MsnValueError', message: `Replica 2 of 2 does not fit a group buffer of ${bytes} bytes.` }));
    expect(() => new SharedAllReduce(buf, -1, 2)).toThrow(expect.objectContaining({ name: 'MsnValueError', message: `Replica -1 of 2 does not fit a group buffer of ${bytes} bytes.` }));
    expect(() => createGroupBuffer(0, 3)).toThrow(expect.objectContaining({ name: 'MsnValueError', message: 'A replica group needs size >= 1 and capacity >= 1, got 0 and 3.' }));
    expect(() => createGroupBuffer(2, 0)).toThrow(expect.objectContaining({ name: 'MsnValueError', message: 'A replica group needs size >= 1 and capacity >= 1, got 2 and 0.' }));
    expect(() => createGroupBuffer(2.5, 3)).toThrow(/got 2.5 and 3/);
  });

  it('a broken group makes every reduction throw MsnWorkerError instead of waiting', () => {
    const buf = createGroupBuffer(2, 2);
    const g = new SharedAllReduce(buf, 1, 2);
    breakGroup(buf);
    expect(() => g.sum(Float32Array.of(1, 2))).toThrow(expect.objectContaining({ name: 'MsnWorkerError', message: expect.stringContaining(PEER_FAILED) }));
    const h = new SharedAllReduce(createGroupBuffer(1, 1), 0, 1);
    h.fail();
    expect(() => h.sum(Float32Array.of(1))).toThrow(expect.objectContaining({ name: 'MsnWorkerError' }));
  });

  it('a stop request is seen by agreeToStop until it is cleared; a local stop counts too', () => {
    const buf = createGroupBuffer(1, 1);
    const g = new SharedAllReduce(buf, 0, 1);
    expect(g.agreeToStop(false)).toBe(false);
    expect(g.agreeToStop(true)).toBe(true);
    requestStop(buf);
    expect(g.agreeToStop(false)).toBe(true);
    clearStop(buf);
    expect(g.agreeToStop(false)).toBe(false);
  });
});

describe('reductions inside TensorFlow.js', () => {
  beforeAll(async () => {
    await useBackend('wasm');
  });

  it('allReduceMean: the mean over replicas as value, the gradient passed through unchanged (official AllReduce)', () => {
    const group = withPeer([3, -1, 0.5]);
    const before = tf.memory().numTensors;
    const w = tf.tensor1d([10, 20, 30]);
    const x = tf.tidy(() => tf.variable(tf.tensor1d([1, 2, 3]), true, 'ar_x'));
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(allReduceMean(x, group), w)) as tf.Scalar, [x]);
    // value: sum(((1+3)/2, (2-1)/2, (3+0.5)/2) * w) = 2*10 + 0.5*20 + 1.75*30
    expect(value.dataSync()[0]).toBeCloseTo(20 + 10 + 52.5, 4);
    // gradient w, not w / 2: DDP's averaging of the gradients divides by the replicas later
    expect(Array.from(grads['ar_x'].dataSync())).toEqual([10, 20, 30]);
    expect(group.calls).toBe(1);
    tf.dispose([value, w, x, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('sinkhorn without iterations over a group: q / (sum over every replica) x (B of every replica)', () => {
    // distributed_sinkhorn with 0 iterations: Q /= all_reduce(sum(Q)); Q *= B, B = local B x world size.
    // (With iterations B cancels: each prototype's row is renormalised after it.)
    const t = tf.tensor2d([[1, 2, 3], [4, 5, 6]]); // [B = 2, K = 3], sum 21
    const group = withPeer([63]); // the other replica's sum: 63, so 84 in all
    const q = sinkhorn(t, 0, group);
    expect(group.calls).toBe(1);
    expect(Array.from(q.dataSync())).toEqual([1, 2, 3, 4, 5, 6].map((v) => Math.fround(Math.fround(v / 84) * 4)));
    tf.dispose([t, q]);
  });

  it('allReduceSum: the elementwise sum, same shape', () => {
    const t = tf.tensor2d([[1, 2], [3, 4]]);
    const s = allReduceSum(t, withPeer([1, 1, 1, 1]));
    expect(s.shape).toEqual([2, 2]);
    expect(Array.from(s.dataSync())).toEqual([2, 3, 4, 5]);
    tf.dispose([t, s]);
  });

  it('averageTensors: one reduction for many tensors, means in their shapes, inputs disposed', () => {
    const a = tf.tensor2d([[2, 4], [6, 8]]);
    const b = tf.scalar(1);
    const c = tf.tensor1d([0, -2, 10]);
    const group = withPeer([0, 0, 0, 0, 3, 2, 2, -10]);
    const before = tf.memory().numTensors;
    const [ma, mb, mc] = averageTensors([a, b, c], group);
    expect(group.calls).toBe(1);
    expect(ma.shape).toEqual([2, 2]);
    expect(mb.shape).toEqual([]);
    expect(Array.from(ma.dataSync())).toEqual([1, 2, 3, 4]);
    expect(Array.from(mb.dataSync())).toEqual([2]);
    expect(Array.from(mc.dataSync())).toEqual([1, 0, 0]);
    expect(a.isDisposed && b.isDisposed && c.isDisposed).toBe(true);
    expect(tf.memory().numTensors).toBe(before); // three in, three out
    tf.dispose([ma, mb, mc]);
  });
});
