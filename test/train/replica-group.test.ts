/**
 * A data-parallel group of two replicas whose rank 0 runs in this thread: the
 * replica-group paths of src/train (Sinkhorn's counts over the group,
 * ME-MAX's mean over the group, gradient averaging, the shared-memory
 * reduction of a group of two) run here, where a mutation tool can switch
 * them, while rank 1 is a real worker thread running the same code.
 * test/pretrain/parallel.test.ts checks the coordinator (both ranks in workers).
 */
import { Worker } from 'node:worker_threads';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { Pretrainer } from '../../src/pretrain/pretrainer.js';
import { NodeReplica, spawnReplica } from '../../src/pretrain/parallel-node.js';
import { sharedPixelData } from '../../src/pretrain/source.js';
import type { PretrainOptions } from '../../src/pretrain/config.js';
import { SharedAllReduce, createGroupBuffer } from '../../src/train/all-reduce.js';
import { TINY, structuredImages } from '../pretrain/helpers.js';
import { expectOfficialMultiGpuSteps, tensorsOf } from '../pretrain/multi-gpu-reference.js';

const data = structuredImages(64, 3);
const OPTS: PretrainOptions = { ...TINY, batchSize: 8 };
/** A step of TINY takes well under a second; a group whose ranks disagree would wait forever. */
const DEADLINE_MS = 30_000;

/** A worker thread that imports src/train/all-reduce.ts (under tsx, as spawnReplica boots) and runs `body` with it as `ar`. */
function allReduceWorker(body: string, workerData: unknown): Worker {
  const tsx = import.meta.resolve('tsx/esm/api');
  const mod = new URL('../../src/train/all-reduce.ts', import.meta.url).href;
  const boot = `const { workerData, parentPort } = require('node:worker_threads');
    import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(mod)}); }).then((ar) => { ${body} });`;
  return new Worker(boot, { eval: true, workerData });
}

/**
 * Breaks the group after `ms` unless terminated first: this thread blocks in
 * Atomics.wait while it waits for rank 1, so its own timers cannot fire.
 */
function watchdog(buffer: SharedArrayBuffer, ms: number): Worker {
  return allReduceWorker('setTimeout(() => ar.breakGroup(workerData.buffer), workerData.ms);', { buffer, ms });
}

describe('a replica group with rank 0 in this thread (wasm)', () => {
  let other: NodeReplica | undefined;
  let dog: Worker | undefined;
  beforeAll(async () => {
    await useBackend('wasm');
  });
  afterEach(async () => {
    await dog?.terminate();
    await other?.worker.terminate();
    other = dog = undefined;
  });

  async function groupOfTwo(): Promise<{ rank0: Pretrainer; buffer: SharedArrayBuffer; rank1: NodeReplica }> {
    other = spawnReplica();
    const { reduceLength } = await other.api.init({ kind: 'create', options: OPTS }, 'wasm');
    const buffer = createGroupBuffer(2, reduceLength);
    await other.api.setData(sharedPixelData(data)!);
    await other.api.join(buffer, 1, 2);
    const rank0 = Pretrainer.create(OPTS);
    rank0.joinGroup(new SharedAllReduce(buffer, 0, 2));
    dog = watchdog(buffer, DEADLINE_MS);
    return { rank0, buffer, rank1: other };
  }

  it('takes the official multi-GPU step (Sinkhorn and ME-MAX over both shares, averaged gradients) for 2 steps', async () => {
    const before = tf.memory().numTensors; // before rank 0 exists: its own variables must go with dispose()
    const { rank0, rank1 } = await groupOfTwo();
    // Rank 1's call is posted before this thread starts blocking on the group's barrier.
    const far = rank1.api.fit({ steps: 2 });
    const near = await rank0.fit(data, { steps: 2 });
    const farDone = await far;
    expect(near.steps).toBe(2);
    expect(rank0.step).toBe(2);
    expect(farDone.status.step).toBe(2);
    const got = tensorsOf(await rank0.readCheckpoint());
    // Both ranks applied the same averaged gradient from the same start: the same bits (BatchNorm's
    // running statistics are each replica's own, as per GPU in the official code).
    const theirs = tensorsOf(await rank1.api.checkpoint());
    const shared = Object.keys(got).filter((k) => !k.includes('_buffers/'));
    expect(shared.length).toBeGreaterThan(10);
    for (const k of shared) expect(theirs[k], k).toEqual(got[k]);
    rank0.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expectOfficialMultiGpuSteps(got, data, OPTS, 2);
  }, 60_000);

  it('a failing peer stops this thread with MsnWorkerError instead of waiting forever', async () => {
    const { rank0, buffer } = await groupOfTwo();
    await other!.worker.terminate(); // rank 1 is gone: nobody will reach the barrier
    other = undefined;
    dog?.terminate();
    dog = watchdog(buffer, 500); // the coordinator's part: it breaks the group when a worker exits
    const err = await rank0.fit(data, { steps: 1 }).catch((e) => e);
    expect(err).toMatchObject({ name: 'MsnWorkerError', message: 'Another training replica failed; this run stopped.' });
    rank0.dispose();
  }, 60_000);

  it('two reductions in a row use separate memory: the inputs of the first stay until every replica has read them', async () => {
    const buffer = createGroupBuffer(2, 3);
    const a = [Float32Array.of(1.5, 2.5, 3.5), Float32Array.of(10, 20, 30)];
    const b = [Float32Array.of(-7, -8, -9), Float32Array.of(0.25, 0.5, 0.75)];
    const peer = allReduceWorker(
      `const g = new ar.SharedAllReduce(workerData.buffer, 1, 2);
       parentPort.postMessage([Array.from(g.sum(workerData.a)), Array.from(g.sum(workerData.b))]);`,
      { buffer, a: a[1], b: b[1] },
    );
    const theirs = new Promise<number[][]>((resolve, reject) => peer.once('message', resolve).once('error', reject));
    try {
      const dogHere = watchdog(buffer, DEADLINE_MS);
      const g = new SharedAllReduce(buffer, 0, 2);
      const mine = [Array.from(g.sum(a[0])), Array.from(g.sum(b[0]))];
      await dogHere.terminate();
      expect(mine).toEqual([[11.5, 22.5, 33.5], [-6.75, -7.5, -8.25]]);
      expect(await theirs).toEqual(mine);
      // Every input of both reductions is still in the group's memory, each in a place of its own: a
      // replica that writes the next reduction while a slower one still reads this one cannot change
      // what the slower one reads.
      const mem = Array.from(new Float32Array(buffer, 16)); // after the four Int32 control words
      const at = (v: Float32Array) => mem.findIndex((_, i) => v.every((x, j) => mem[i + j] === x));
      const places = [...a, ...b].map(at);
      expect(places.every((p) => p >= 0), JSON.stringify(places)).toBe(true);
      expect(new Set(places).size).toBe(4);
    } finally {
      await peer.terminate();
    }
  }, 60_000);
});
