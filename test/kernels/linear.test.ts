/**
 * linear() (src/model/layers.ts): one fused product with its bias forward, and
 * on wasm the bias gradient as one column sum (MsnColumnSum) instead of
 * tfjs's Transpose + Sum, and the weight gradient x^T dy as one MsnWeightGrad
 * instead of a Transpose of x and a product. Values and the gradients for x, w and b against
 * the composed ops (matMul + add, tfjs's own gradients) on wasm and on the
 * cpu backend, for widths that use the 4-wide loop and its scalar tail.
 *
 * Tolerance: the fused product adds the bias inside the product kernel (in
 * another order than matMul then add), and each backend sums a product's k
 * terms (k = in for y, out for dx, rows for dw and db) in its own order. The
 * classic bound for a float32 sum of k terms is k * 2^-24 times the sum of
 * their magnitudes; with terms ~1 the bound used is
 * max(2e-6, k * 2^-23) * (1 + |ref|).
 * The column sum adds the rows in the order tfjs's Sum does, and the weight
 * gradient sums over rows in increasing order one product at a time, as
 * XNNPACK's product of the transposed x does: on wasm both must equal tfjs's
 * results exactly.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { linear } from '../../src/model/layers.js';
import '../../src/runtime/gradients.js';
import { fusedKernelsActive, installWasmKernels, uninstallWasmKernels } from '../../src/kernels/wasm/kernels.js';
import { Rng } from '../../src/util/rng.js';
import { expectClose as close } from './helpers.js';

type Case = { n: number; din: number; dout: number; x: Float32Array; w: Float32Array; b: Float32Array; dy: Float32Array };
type Out = { y: Float32Array; dx: Float32Array; dw: Float32Array; db: Float32Array };

function makeCase(n: number, din: number, dout: number, seed: number): Case {
  const rng = new Rng(seed);
  const r = (len: number, s: number) => Float32Array.from({ length: len }, () => s * rng.normal());
  return { n, din, dout, x: r(n * din, 1), w: r(din * dout, 1 / Math.sqrt(din)), b: r(dout, 0.5), dy: r(n * dout, 1) };
}

/** linear() itself, or (`composed`) the plain ops with tfjs's own gradients. */
function run(c: Case, composed = false): Out {
  return tf.tidy(() => {
    const x = tf.tensor2d(c.x, [c.n, c.din]);
    const w = tf.tensor2d(c.w, [c.din, c.dout]);
    const b = tf.tensor1d(c.b);
    const dy = tf.tensor2d(c.dy, [c.n, c.dout]);
    const lin = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => (composed ? tf.add(tf.matMul(xx, ww), bb) : linear(xx, ww, bb));
    const [dx, dw, db] = tf.grads((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(lin(xx, ww, bb), dy)))([x, w, b]);
    expect(db.shape).toEqual([c.dout]);
    return { y: lin(x, w, b).dataSync() as Float32Array, dx: dx.dataSync() as Float32Array, dw: dw.dataSync() as Float32Array, db: db.dataSync() as Float32Array };
  });
}

describe('linear: fused bias, column-sum bias gradient (wasm)', () => {
  beforeAll(async () => {
    await useBackend('wasm');
  });
  afterAll(async () => {
    await installWasmKernels();
  });

  // rows past one chunk of 128 (and a partial one), widths in 4 x 16 tiles and every tail
  const cases = [
    makeCase(1, 1, 1, 1), makeCase(5, 3, 7, 2), makeCase(64, 96, 288, 3), makeCase(256, 96, 384, 4), makeCase(7, 17, 5, 5),
    makeCase(300, 6, 21, 6), makeCase(2560, 64, 32, 7),
  ];
  const tol = (k: number) => Math.max(2e-6, k * 2 ** -23);

  it('matches matMul + add with tfjs gradients, on wasm and on cpu; the bias gradient is one MsnColumnSum, the weight gradient one MsnWeightGrad', async () => {
    expect(fusedKernelsActive()).toBe(true);
    const before = tf.memory().numTensors;
    let fused = cases.map((c) => run(c));
    const kernels = (await tf.profile(() => void (fused = cases.map((c) => run(c))))).kernels.map((k) => k.name);
    expect(kernels).toContain('MsnColumnSum');
    expect(kernels).toContain('_FusedMatMul');
    expect(kernels.filter((k) => k === 'MsnWeightGrad').length).toBe(cases.length);
    // one Transpose per case (w, for dx); x is not transposed
    expect(kernels.filter((k) => k === 'Transpose').length).toBe(cases.length);
    // the loss's own tf.sum is one Sum per case; the layer adds none
    expect(kernels.filter((k) => k === 'Sum').length).toBe(cases.length);
    expect(kernels).not.toContain('Add');
    expect(tf.memory().numTensors).toBe(before);
    const composedWasm = cases.map((c) => run(c, true));
    uninstallWasmKernels();
    const tfjsSum = cases.map((c) => run(c));
    await useBackend('cpu');
    const cpu = cases.map((c) => run(c, true));
    await useBackend('wasm');
    expect(fusedKernelsActive()).toBe(true);
    cases.forEach((c, i) => {
      const tag = `[${c.n}, ${c.din}] -> ${c.dout}`;
      // the column sum is tfjs's Sum, bit for bit
      expect(Array.from(fused[i].db), `db ${tag}`).toEqual(Array.from(tfjsSum[i].db));
      // the weight gradient is tfjs's Transpose + product, bit for bit
      expect(Array.from(fused[i].dw), `dw ${tag}`).toEqual(Array.from(tfjsSum[i].dw));
      for (const ref of [composedWasm[i], cpu[i]]) {
        close(fused[i].y, ref.y, tol(c.din), `y ${tag}`);
        close(fused[i].dx, ref.dx, tol(c.dout), `dx ${tag}`);
        close(fused[i].dw, ref.dw, tol(c.n), `dw ${tag}`);
        close(fused[i].db, ref.db, tol(c.n), `db ${tag}`);
      }
    });
  });

  it('keeps a NaN in one row of dy to its column of the bias and weight gradients', () => {
    const c = makeCase(4, 3, 6, 9);
    c.dy[2 * 6 + 5] = NaN;
    const out = run(c);
    expect(Number.isNaN(out.db[5])).toBe(true);
    expect(Array.from(out.db.subarray(0, 5)).every(Number.isFinite)).toBe(true);
    // dw [3, 6]: column 5 is NaN in every row, the other columns finite
    for (let r = 0; r < 3; r++) {
      expect(Number.isNaN(out.dw[r * 6 + 5])).toBe(true);
      expect(Array.from(out.dw.subarray(r * 6, r * 6 + 5)).every(Number.isFinite)).toBe(true);
    }
  });

  it('gives a zero weight gradient for zero rows, and refuses mismatched shapes', () => {
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const dw = tf.engine().runKernel('MsnWeightGrad', { x: tf.zeros([0, 3]), dy: tf.zeros([0, 5]) }) as tf.Tensor;
      expect(dw.shape).toEqual([3, 5]);
      expect(Array.from(dw.dataSync())).toEqual(new Array(15).fill(0));
      expect(() => tf.engine().runKernel('MsnWeightGrad', { x: tf.zeros([4, 3]), dy: tf.zeros([5, 5]) })).toThrow(/x \[rows, in\] and dy \[rows, out\]/);
    });
    expect(tf.memory().numTensors).toBe(before);
  });
});
