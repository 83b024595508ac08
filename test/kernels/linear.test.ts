/**
 * linear() (src/model/layers.ts): one fused product with its bias forward, and
 * on wasm the bias gradient as one column sum (MsnColumnSum) instead of
 * tfjs's Transpose + Sum. Values and the gradients for x, w and b against
 * the composed ops (matMul + add, tfjs's own gradients) on wasm and on the
 * cpu backend, for widths that use the 4-wide loop and its scalar tail.
 *
 * Tolerance: the fused product adds the bias inside the product kernel (in
 * another order than matMul then add), and each backend sums a product's k
 * terms (k = in for y, out for dx, rows for dw and db) in its own order. The
 * classic bound for a float32 sum of k terms is k * 2^-24 times the sum of
 * their magnitudes; with terms ~1 the bound used is
 * max(2e-6, k * 2^-23) * (1 + |ref|).
 * The column sum adds the rows in the order tfjs's Sum does: on wasm it must
 * equal tfjs's result exactly.
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

  const cases = [makeCase(1, 1, 1, 1), makeCase(5, 3, 7, 2), makeCase(64, 96, 288, 3), makeCase(256, 96, 384, 4), makeCase(7, 17, 5, 5)];
  const tol = (k: number) => Math.max(2e-6, k * 2 ** -23);

  it('matches matMul + add with tfjs gradients, on wasm and on cpu; the bias gradient is one MsnColumnSum, no Sum or Add', async () => {
    expect(fusedKernelsActive()).toBe(true);
    const before = tf.memory().numTensors;
    let fused = cases.map((c) => run(c));
    const kernels = (await tf.profile(() => void (fused = cases.map((c) => run(c))))).kernels.map((k) => k.name);
    expect(kernels).toContain('MsnColumnSum');
    expect(kernels).toContain('_FusedMatMul');
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
      for (const ref of [composedWasm[i], cpu[i]]) {
        close(fused[i].y, ref.y, tol(c.din), `y ${tag}`);
        close(fused[i].dx, ref.dx, tol(c.dout), `dx ${tag}`);
        close(fused[i].dw, ref.dw, tol(c.n), `dw ${tag}`);
        close(fused[i].db, ref.db, tol(c.n), `db ${tag}`);
      }
    });
  });

  it('keeps a NaN in one row of dy to its column of the bias gradient', () => {
    const c = makeCase(4, 3, 6, 9);
    c.dy[2 * 6 + 5] = NaN;
    const out = run(c);
    expect(Number.isNaN(out.db[5])).toBe(true);
    expect(Array.from(out.db.subarray(0, 5)).every(Number.isFinite)).toBe(true);
  });
});
