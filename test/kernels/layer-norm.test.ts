/**
 * The fused LayerNorm kernels (MsnLayerNorm / MsnLayerNormGrad in
 * src/kernels/wasm) against the composed tfjs ops they replace: values and
 * the gradients for x, g and b, on wasm and against the cpu backend, for
 * widths that exercise the 4-wide loops and their scalar tails.
 *
 * Tolerance: the same formula in float32 with a different summation order
 * for the row mean and variance (and for dg, db over the rows). Over d terms
 * that moves a normalised value by a few d * 2^-24 relative; the bound is
 * 2e-6 * (1 + |ref|) for y and dx. dg and db are float32 sums over all rows
 * of terms of size ~1, each side in its own order: up to rows * 2^-23 apart,
 * so their bound is max(1e-6, 1.2e-7 * rows) * (1 + |ref|). A dropped term (e.g. xhat * mean(dxhat * xhat)) or a
 * wrong eps is off by 1e-2 or more.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { layerNorm } from '../../src/model/layers.js';
import '../../src/runtime/gradients.js';
import { fusedKernelsActive, installWasmKernels, uninstallWasmKernels } from '../../src/kernels/wasm/kernels.js';
import { Rng } from '../../src/util/rng.js';

const EPS = 1e-6;
type Case = { shape: number[]; x: Float32Array; g: Float32Array; b: Float32Array; dy: Float32Array };
type Out = { y: Float32Array; dx: Float32Array; dg: Float32Array; db: Float32Array };

function makeCase(shape: number[], seed: number): Case {
  const rng = new Rng(seed);
  const d = shape[shape.length - 1];
  const n = shape.reduce((a, v) => a * v, 1);
  // Rows with an offset and a scale, as activations have.
  const x = Float32Array.from({ length: n }, (_, i) => 3 * rng.normal() + (Math.floor(i / d) % 5) - 2);
  return {
    shape, x,
    g: Float32Array.from({ length: d }, () => 1 + 0.3 * rng.normal()),
    b: Float32Array.from({ length: d }, () => 0.2 * rng.normal()),
    dy: Float32Array.from({ length: n }, () => rng.normal()),
  };
}

function run(c: Case): Out {
  return tf.tidy(() => {
    const d = c.shape[c.shape.length - 1];
    const x = tf.tensor(c.x, c.shape);
    const g = tf.tensor1d(c.g);
    const b = tf.tensor1d(c.b);
    const dy = tf.tensor(c.dy, c.shape);
    const f = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(layerNorm(xx, gg, bb, EPS), dy));
    const [dx, dg, db] = tf.grads(f)([x, g, b]);
    expect(dg.shape).toEqual([d]);
    return { y: layerNorm(x, g, b, EPS).dataSync() as Float32Array, dx: dx.dataSync() as Float32Array, dg: dg.dataSync() as Float32Array, db: db.dataSync() as Float32Array };
  });
}

function close(got: Float32Array, ref: Float32Array, tol: number, what: string): void {
  expect(got.length).toBe(ref.length);
  for (let i = 0; i < ref.length; i++) expect(Math.abs(got[i] - ref[i]), `${what}[${i}]`).toBeLessThanOrEqual(tol * (1 + Math.abs(ref[i])));
}

describe('fused LayerNorm kernels (wasm)', () => {
  beforeAll(async () => {
    await useBackend('wasm');
  });
  afterAll(async () => {
    await installWasmKernels();
  });

  const cases = [[5, 1], [7, 3], [4, 4], [9, 7], [300, 64], [2, 17, 96], [3, 197, 192]].map((s, i) => makeCase(s, i + 1));

  it('match the composed ops (values, dx, dg, db) on wasm and against the cpu backend', async () => {
    expect(fusedKernelsActive()).toBe(true);
    const before = tf.memory().numTensors;
    let fused = cases.map(run);
    // The fused kernels themselves ran, forward and backward (not the composed fallback).
    const names = (await tf.profile(() => void (fused = cases.map(run)))).kernels.map((k) => k.name);
    expect(names).toContain('MsnLayerNorm');
    expect(names).toContain('MsnLayerNormGrad');
    expect(names).not.toContain('Rsqrt');
    expect(tf.memory().numTensors).toBe(before);
    uninstallWasmKernels();
    const composed = cases.map(run);
    await useBackend('cpu');
    const cpu = cases.map(run);
    await useBackend('wasm');
    expect(fusedKernelsActive()).toBe(true);
    for (const ref of [composed, cpu]) {
      cases.forEach((c, i) => {
        const tag = `[${c.shape}]`;
        const rows = c.x.length / c.g.length;
        close(fused[i].y, ref[i].y, 2e-6, `y ${tag}`);
        close(fused[i].dx, ref[i].dx, 2e-6, `dx ${tag}`);
        close(fused[i].dg, ref[i].dg, Math.max(1e-6, 1.2e-7 * rows), `dg ${tag}`);
        close(fused[i].db, ref[i].db, Math.max(1e-6, 1.2e-7 * rows), `db ${tag}`);
      });
    }
  });

  it('handles zero rows (gradients for g and b are zeros) and keeps NaN rows NaN', () => {
    const empty = run({ shape: [0, 6], x: new Float32Array(0), g: new Float32Array(6).fill(1), b: new Float32Array(6), dy: new Float32Array(0) });
    expect(Array.from(empty.dg)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(Array.from(empty.db)).toEqual([0, 0, 0, 0, 0, 0]);
    const c = makeCase([3, 8], 9);
    c.x[9] = NaN; // row 1
    const out = run(c);
    expect(Array.from(out.y.subarray(8, 16)).every(Number.isNaN)).toBe(true);
    expect(Array.from(out.y.subarray(0, 8)).every(Number.isFinite)).toBe(true);
    expect(Array.from(out.y.subarray(16)).every(Number.isFinite)).toBe(true);
  });
});
