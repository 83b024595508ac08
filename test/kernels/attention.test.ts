/**
 * The fused attention kernels (MsnAttention / MsnAttentionGrad in
 * src/kernels/wasm) against the composed tfjs ops they replace (split, head
 * transposes, scaled batched products, softmax): the output and the gradient
 * for qkv, on wasm and against the cpu backend, for head widths that use the
 * 4-wide loops and their scalar tails, one token, and the shipped model's
 * and ViT-Tiny's shapes.
 *
 * Tolerance: the same float32 formula with the dot products over hd summed
 * in another order (four partial sums), tfjs's exp against the kernel's
 * polynomial (~1 ulp) and the softmax sum in another order: a few 2^-24
 * relative per term, over t terms of size ~1. The bound 2e-6 * (1 + |ref|)
 * (times sqrt(t / 16) for long rows, and spread^2 for inputs of spread
 * `spread`: a score's error grows with |q| |k|) is 2-20x the observed differences; a
 * wrong scale, a missing max shift at large scores or a dropped term of the
 * softmax gradient is off by 1e-2 or more.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { attention } from '../../src/model/layers.js';
import '../../src/runtime/gradients.js';
import { fusedKernelsActive, installWasmKernels, uninstallWasmKernels } from '../../src/kernels/wasm/kernels.js';
import { Rng } from '../../src/util/rng.js';
import { expectClose as close } from './helpers.js';

/** b sequences of t tokens, `heads` heads of hd: qkv [b*t, 3*heads*hd] and an upstream gradient. */
type Case = { b: number; t: number; heads: number; hd: number; qkv: Float32Array; dy: Float32Array; spread: number };
type Out = { y: Float32Array; dqkv: Float32Array };

function makeCase(b: number, t: number, heads: number, hd: number, seed: number, spread = 1): Case {
  const rng = new Rng(seed);
  const d = heads * hd;
  return {
    b, t, heads, hd, spread,
    qkv: Float32Array.from({ length: b * t * 3 * d }, () => spread * rng.normal()),
    dy: Float32Array.from({ length: b * t * d }, () => rng.normal()),
  };
}

function run(c: Case): Out {
  return tf.tidy(() => {
    const d = c.heads * c.hd;
    const qkv = tf.tensor2d(c.qkv, [c.b * c.t, 3 * d]);
    const dy = tf.tensor2d(c.dy, [c.b * c.t, d]);
    const f = (x: tf.Tensor) => tf.sum(tf.mul(attention(x as tf.Tensor2D, c.b, c.t, c.heads), dy));
    const [dqkv] = tf.grads(f)([qkv]);
    return { y: attention(qkv, c.b, c.t, c.heads).dataSync() as Float32Array, dqkv: dqkv.dataSync() as Float32Array };
  });
}

describe('fused attention kernels (wasm)', () => {
  beforeAll(async () => {
    await useBackend('wasm');
  });
  afterAll(async () => {
    await installWasmKernels();
  });

  const cases = [
    makeCase(1, 1, 1, 4, 1), // one token: probs are exactly 1
    makeCase(2, 5, 3, 7, 2), // hd with a scalar tail
    makeCase(3, 17, 4, 24, 3), // the shipped model's global views
    makeCase(4, 12, 4, 24, 4, 4), // large scores: the softmax needs its max shift
    makeCase(2, 5, 2, 1, 5),
    makeCase(2, 65, 4, 16, 6), // micro-p4-28
    makeCase(1, 197, 3, 64, 7), // ViT-Tiny/16 at 224 px
  ];
  // A score's rounding error grows with |q| |k| (spread^2) and moves the probabilities by that much, relatively.
  const tol = (c: Case) => 2e-6 * Math.max(1, Math.sqrt(c.t / 16)) * c.spread ** 2;

  it('match the composed ops (output and dqkv) on wasm and against the cpu backend, in one kernel each way', async () => {
    expect(fusedKernelsActive()).toBe(true);
    const before = tf.memory().numTensors;
    let fused = cases.map(run);
    const names = (await tf.profile(() => void (fused = cases.map(run)))).kernels.map((k) => k.name);
    expect(names).toContain('MsnAttention');
    expect(names).toContain('MsnAttentionGrad');
    expect(names).not.toContain('Softmax');
    expect(names).not.toContain('SplitV');
    expect(tf.memory().numTensors).toBe(before);
    uninstallWasmKernels();
    const composed = cases.map(run);
    await useBackend('cpu');
    const cpu = cases.map(run);
    await useBackend('wasm');
    expect(fusedKernelsActive()).toBe(true);
    for (const ref of [composed, cpu]) {
      cases.forEach((c, i) => {
        const tag = `b ${c.b} t ${c.t} heads ${c.heads} hd ${c.hd}`;
        close(fused[i].y, ref[i].y, tol(c), `y ${tag}`);
        close(fused[i].dqkv, ref[i].dqkv, tol(c), `dqkv ${tag}`);
      });
    }
  });

  it('one token attends to itself: the output is its v, and q and k get no gradient', () => {
    const c = makeCase(2, 1, 2, 3, 8);
    const out = run(c);
    for (let s = 0; s < 2; s++) {
      for (let j = 0; j < 6; j++) expect(out.y[s * 6 + j]).toBe(c.qkv[s * 18 + 12 + j]);
      expect(Array.from(out.dqkv.subarray(s * 18, s * 18 + 12))).toEqual(new Array(12).fill(0));
      expect(Array.from(out.dqkv.subarray(s * 18 + 12, s * 18 + 18))).toEqual(Array.from(c.dy.subarray(s * 6, s * 6 + 6)));
    }
  });

  it('a NaN in one sequence stays in that sequence', () => {
    const c = makeCase(2, 4, 2, 4, 9);
    c.qkv[5] = NaN; // sequence 0, token 0, a q value of head 1
    const out = run(c);
    const d = 8;
    expect(Array.from(out.y.subarray(4 * d)).every(Number.isFinite)).toBe(true);
    expect(out.y.subarray(0, 4 * d).some(Number.isNaN)).toBe(true);
  });

  it('a scratch allocation that fails is an error, not a write at address 0', () => {
    // The heap cannot be exhausted cheaply here (reliability.test.ts fills it for real): the
    // backend's malloc is made to answer 0, as Emscripten's does when the heap cannot grow.
    const c = makeCase(1, 3, 1, 4, 10);
    const qkv = tf.tensor3d(c.qkv, [1, 3, 12]);
    const [y, probs] = tf.engine().runKernel('MsnAttention', { qkv }, { heads: 1, scale: 0.5 }) as tf.Tensor[];
    const dy = tf.onesLike(y);
    const wasm = (tf.backend() as unknown as { wasm: { _malloc(n: number): number } }).wasm;
    const malloc = wasm._malloc;
    const before = tf.memory().numTensors;
    const dataIds = tf.engine().backend.numDataIds(); // the backend's buffers, registered as tensors or not
    wasm._malloc = (n: number) => (n === 3 * 3 * 4 ? 0 : malloc.call(wasm, n));
    try {
      expect(() => tf.engine().runKernel('MsnAttentionGrad', { qkv, probs, dy }, { heads: 1, scale: 0.5 })).toThrow(RangeError);
      expect(() => tf.engine().runKernel('MsnAttentionGrad', { qkv, probs, dy }, { heads: 1, scale: 0.5 })).toThrow(/Failed to allocate 36 bytes/);
    } finally {
      wasm._malloc = malloc;
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(tf.engine().backend.numDataIds()).toBe(dataIds); // no output buffer left behind
    expect(Array.from(qkv.dataSync())).toEqual(Array.from(c.qkv)); // the inputs are untouched
    tf.dispose([qkv, y, probs, dy]);
  });

  it('refuses shapes that do not split into heads', () => {
    const qkv = tf.zeros([2, 3, 10]);
    expect(() => tf.engine().runKernel('MsnAttention', { qkv }, { heads: 3, scale: 1 })).toThrow(/qkv \[B, T, 3D\] with D a multiple of heads \(3\)/);
    qkv.dispose();
  });
});
