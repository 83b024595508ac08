/**
 * The wasm Identity kernel while msn-web's kernels are installed: a clone
 * shares its input's memory (one more reference, no copy), as the cpu
 * backend's Identity does. Checked: the clone reads the same values from the
 * same heap offset; disposing either keeps the other readable; a variable
 * assigned a new value leaves an earlier clone as it was; gradients through
 * clones are unchanged; no memory is leaked; strings still copy.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import '../../src/runtime/gradients.js';
import { fusedKernelsActive, installWasmKernels, uninstallWasmKernels } from '../../src/kernels/wasm/kernels.js';

type Wasm = { dataIdMap: { get(id: object): { memoryOffset: number; refCount: number } } };
const offset = (t: tf.Tensor) => (tf.backend() as unknown as Wasm).dataIdMap.get(t.dataId).memoryOffset;

describe('Identity on wasm shares memory', () => {
  beforeAll(async () => {
    await useBackend('wasm');
  });
  afterAll(async () => {
    await installWasmKernels();
  });

  it('a clone is the same memory with one more reference, and either can be disposed first', () => {
    expect(fusedKernelsActive()).toBe(true);
    const before = tf.memory();
    const a = tf.tensor1d([1, 2, 3, 4, 5]);
    const b = tf.clone(a);
    expect(offset(b)).toBe(offset(a));
    expect(tf.memory().numDataBuffers).toBe(before.numDataBuffers + 1); // one buffer for both tensors
    a.dispose();
    expect(Array.from(b.dataSync())).toEqual([1, 2, 3, 4, 5]);
    const c = tf.clone(b);
    b.dispose();
    expect(Array.from(c.dataSync())).toEqual([1, 2, 3, 4, 5]);
    c.dispose();
    expect(tf.memory().numTensors).toBe(before.numTensors);
    expect(tf.memory().numBytes).toBe(before.numBytes);
  });

  it('a variable assigned a new value leaves an earlier clone of it as it was', () => {
    const v = tf.tidy(() => tf.variable(tf.tensor1d([1, 2])));
    const snapshot = v.clone();
    tf.tidy(() => v.assign(tf.tensor1d([7, 8])));
    expect(Array.from(snapshot.dataSync())).toEqual([1, 2]);
    expect(Array.from(v.dataSync())).toEqual([7, 8]);
    tf.dispose([v, snapshot]);
  });

  it('gives the gradients of the copying kernel, and tfjs copies again once uninstalled', () => {
    const f = (x: tf.Tensor) => tf.sum(tf.mul(tf.exp(x), tf.clone(x)));
    const x = tf.tensor1d([0.5, -1, 2]);
    const shared = tf.tidy(() => Array.from(tf.grad(f)(x).dataSync()));
    uninstallWasmKernels();
    const y = tf.clone(x);
    expect(offset(y)).not.toBe(offset(x));
    const copied = tf.tidy(() => Array.from(tf.grad(f)(x).dataSync()));
    tf.dispose([x, y]);
    expect(shared).toEqual(copied);
  });

  it('strings are still copied by tfjs', async () => {
    await installWasmKernels();
    const s = tf.tensor1d(['a', 'bc']);
    const t = tf.clone(s);
    s.dispose();
    expect(t.dataSync()).toEqual(['a', 'bc']);
    t.dispose();
  });
});
