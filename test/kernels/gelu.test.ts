/**
 * The fused GELU kernels (MsnGelu / MsnGeluGrad in src/kernels/wasm) against
 * the composed tfjs ops they replace, forward and gradient, on the wasm
 * backend, and against the cpu backend's composed GELU.
 *
 * Tolerance: both use the same erf polynomial (A&S 7.1.26); they differ in
 * exp (Cephes' polynomial, ~2 ulp, against the C library's) and in rounding
 * order, so erf differs by a few 1e-8 and GELU by that times |x|/2 plus an ulp
 * of the result: |fused - composed| <= 2e-7 (1 + |x|) forward and
 * 5e-7 (1 + |x|) |dy| for the gradient. A wrong constant or a dropped term
 * (e.g. the x exp(-x^2/2) part of the gradient) is off by 1e-2 or more.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { gelu } from '../../src/model/layers.js';
import '../../src/runtime/gradients.js';
import { fusedKernelsActive, installWasmKernels, uninstallWasmKernels } from '../../src/kernels/wasm/kernels.js';
import { Rng } from '../../src/util/rng.js';

/** x values: a normal spread, the erf polynomial's whole range, and an odd count (tail of 3). */
function inputs(): Float32Array {
  const rng = new Rng(9);
  const out: number[] = [];
  for (let i = 0; i < 4001; i++) out.push(rng.normal() * 3);
  for (let v = -12; v <= 12; v += 0.01) out.push(v);
  out.push(0, -0, 1e-30, -1e-30, 40, -40, 1e5, -1e5);
  return Float32Array.from(out);
}

/** GELU and its gradient for dy on the active backend (fused when installed). */
function valueAndGrad(x: Float32Array, dy: Float32Array): { y: Float32Array; dx: Float32Array } {
  return tf.tidy(() => {
    const xt = tf.tensor1d(x);
    const f = (t: tf.Tensor) => tf.sum(tf.mul(gelu(t), tf.tensor1d(dy)));
    const dx = tf.grad(f)(xt);
    return { y: gelu(xt).dataSync() as Float32Array, dx: dx.dataSync() as Float32Array };
  });
}

describe('fused GELU kernels (wasm)', () => {
  beforeAll(async () => {
    await useBackend('wasm');
  });
  afterAll(async () => {
    await installWasmKernels();
  });

  it('match the composed ops forward and backward, on wasm and against the cpu backend', async () => {
    const x = inputs();
    const rng = new Rng(3);
    const dy = Float32Array.from(x, () => rng.normal());
    expect(fusedKernelsActive()).toBe(true);
    const before = tf.memory().numTensors;
    let fused = valueAndGrad(x, dy);
    // The fused kernels themselves ran, forward and backward (not the composed fallback).
    const names = (await tf.profile(() => void (fused = valueAndGrad(x, dy)))).kernels.map((k) => k.name);
    expect(names).toContain('MsnGelu');
    expect(names).toContain('MsnGeluGrad');
    expect(names).not.toContain('Erf');
    expect(tf.memory().numTensors).toBe(before);
    uninstallWasmKernels();
    expect(fusedKernelsActive()).toBe(false);
    const composed = valueAndGrad(x, dy);
    await useBackend('cpu');
    const cpu = valueAndGrad(x, dy);
    await useBackend('wasm'); // installs the kernels again
    expect(fusedKernelsActive()).toBe(true);
    for (const ref of [composed, cpu]) {
      for (let i = 0; i < x.length; i++) {
        const w = 1 + Math.abs(x[i]);
        expect(Math.abs(fused.y[i] - ref.y[i]), `gelu(${x[i]})`).toBeLessThanOrEqual(2e-7 * w);
        expect(Math.abs(fused.dx[i] - ref.dx[i]), `gelu'(${x[i]})`).toBeLessThanOrEqual(5e-7 * w * Math.abs(dy[i]));
      }
    }
  });

  it('gives non-finite values where the composed ops do', () => {
    const x = Float32Array.of(NaN, Infinity, -Infinity, 1, NaN);
    const dy = Float32Array.of(1, 1, 1, NaN, 1);
    const fused = valueAndGrad(x, dy);
    uninstallWasmKernels();
    const composed = valueAndGrad(x, dy);
    expect(Array.from(fused.y)).toEqual(Array.from(composed.y)); // NaN, Inf, NaN (-Inf * 0), gelu(1), NaN
    // At +-Infinity the composed tape gives NaN (Inf * 0) and the fused one +-Infinity: both
    // non-finite, which is what the train step's skip test looks at.
    expect(Array.from(fused.dx).map(Number.isFinite)).toEqual(Array.from(composed.dx).map(Number.isFinite));
    expect(Array.from(fused.dx).map(Number.isFinite)).toEqual([false, false, false, false, false]);
  });
});
