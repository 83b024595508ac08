/**
 * msn-web's wasm BatchMatMul (src/kernels/wasm/bmm.c) against a float64
 * product, for every transpose combination, ragged sizes (1..9 and past the
 * 8-wide and 4-row blocks), broadcasting and empty shapes.
 *
 * Tolerance: the standard float32 dot-product bound, |error| <= gamma_k *
 * sum_p |a_ip b_pj| with gamma_k = k u / (1 - k u), u = 2^-24 (Higham, 3.1),
 * plus the final rounding to float32. A wrong index or a missed column breaks
 * it by orders of magnitude; summation order alone cannot.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { installWasmKernels, uninstallWasmKernels, wasmKernelStatus } from '../../src/kernels/wasm/kernels.js';
import { WASM_BASE64 } from '../../src/kernels/wasm/kernels.wasm.js';
import { Rng } from '../../src/util/rng.js';

const U = 2 ** -24;

function randomArray(rng: Rng, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal();
  return out;
}

/** Checks tf.matMul on the active backend against a float64 product of the same float32 inputs. */
function checkProduct(aShape: number[], bShape: number[], ta: boolean, tb: boolean, seed: number): void {
  const rng = new Rng(seed);
  const av = randomArray(rng, aShape.reduce((x, y) => x * y, 1));
  const bv = randomArray(rng, bShape.reduce((x, y) => x * y, 1));
  const a = tf.tensor(av, aShape);
  const b = tf.tensor(bv, bShape);
  const c = tf.matMul(a, b, ta, tb);
  const got = c.dataSync();
  const ra = aShape.length;
  const rb = bShape.length;
  const m = ta ? aShape[ra - 1] : aShape[ra - 2];
  const k = ta ? aShape[ra - 2] : aShape[ra - 1];
  const n = tb ? bShape[rb - 2] : bShape[rb - 1];
  const batchA = aShape.slice(0, -2).reduce((x, y) => x * y, 1);
  const batchB = bShape.slice(0, -2).reduce((x, y) => x * y, 1);
  const batch = Math.max(batchA, batchB);
  expect(c.shape).toEqual([...(batchA >= batchB ? aShape : bShape).slice(0, -2), m, n]);
  const gamma = (k * U) / (1 - k * U);
  let worst = 0;
  for (let bi = 0; bi < batch; bi++) {
    const ao = batchA === 1 ? 0 : bi * m * k;
    const bo = batchB === 1 ? 0 : bi * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let exact = 0;
        let mag = 0;
        for (let p = 0; p < k; p++) {
          const x = av[ao + (ta ? p * m + i : i * k + p)] * bv[bo + (tb ? j * k + p : p * n + j)];
          exact += x;
          mag += Math.abs(x);
        }
        const err = Math.abs(got[bi * m * n + i * n + j] - exact);
        const bound = gamma * mag + U * Math.abs(exact) + 1e-30;
        worst = Math.max(worst, err / bound);
      }
    }
  }
  expect(worst).toBeLessThanOrEqual(1);
  tf.dispose([a, b, c]);
}

describe('wasm BatchMatMul kernel (bmm.wasm)', () => {
  beforeAll(async () => {
    await useBackend('wasm');
  });
  afterAll(async () => {
    await installWasmKernels();
  });

  it('is installed by useBackend("wasm") and ships only a memory import and its eleven kernel exports', () => {
    expect(wasmKernelStatus()).toEqual({ active: true, reason: 'kernels.wasm' });
    const mod = new WebAssembly.Module(Uint8Array.from(atob(WASM_BASE64), (ch) => ch.charCodeAt(0)));
    expect(WebAssembly.Module.imports(mod)).toEqual([{ module: 'env', name: 'memory', kind: 'memory' }]);
    expect(WebAssembly.Module.exports(mod).map((e) => e.name)).toEqual(['bmm', 'gelu_fwd', 'gelu_bwd', 'layer_norm_fwd', 'layer_norm_bwd', 'attn_fwd', 'attn_bwd', 'col_sum', 'adamw', 'ema', 'wgrad']);
  });

  const sizes = [1, 3, 4, 5, 8, 9, 13, 17];
  it('matches a float64 product for every transpose pair and ragged m, k, n', () => {
    let seed = 1;
    for (const ta of [false, true]) {
      for (const tb of [false, true]) {
        for (const m of sizes) {
          for (const [k, n] of [[1, 9], [5, 8], [8, 17], [17, 3], [24, 13]]) {
            const aShape = ta ? [3, k, m] : [3, m, k];
            const bShape = tb ? [3, n, k] : [3, k, n];
            checkProduct(aShape, bShape, ta, tb, seed++);
          }
        }
      }
    }
  });

  it('handles attention-sized products, extra batch axes, 2-D transposes and a broadcast 2-D operand', () => {
    checkProduct([2, 3, 50, 16], [2, 3, 50, 16], false, true, 11); // scores, [B, h, T, hd]
    checkProduct([2, 3, 50, 50], [2, 3, 50, 16], false, false, 12); // context
    checkProduct([6, 50, 16], [6, 50, 50], true, false, 13); // a gradient
    checkProduct([40, 24], [40, 33], true, false, 14); // 2-D with a transpose flag
    checkProduct([33, 24], [40, 24], false, true, 15);
    checkProduct([4, 9, 12], [12, 7], false, false, 16); // B broadcast
    checkProduct([9, 12], [4, 7, 12], false, true, 17); // A broadcast, B transposed (packed once)
  });

  it('returns empty products and zeros for k = 0', () => {
    const z = tf.matMul(tf.zeros([2, 0, 3]), tf.zeros([2, 3, 4]));
    expect(z.shape).toEqual([2, 0, 4]);
    const k0 = tf.matMul(tf.zeros([2, 3, 0]), tf.zeros([2, 0, 4]));
    expect(Array.from(k0.dataSync())).toEqual(new Array(24).fill(0));
    tf.dispose([z, k0]);
  });

  it('agrees with tfjs\'s own kernel, and leaves plain 2-D products and broadcasts it does not do to it', () => {
    const rng = new Rng(5);
    const a = tf.tensor(randomArray(rng, 2 * 3 * 10 * 7), [2, 3, 10, 7]);
    const b = tf.tensor(randomArray(rng, 1 * 3 * 7 * 6), [1, 3, 7, 6]); // [1,3] vs [2,3]: tfjs broadcasts
    const w = tf.tensor(randomArray(rng, 7 * 6), [7, 6]);
    const x = tf.tensor(randomArray(rng, 5 * 7), [5, 7]);
    const ours = [tf.matMul(a, b), tf.matMul(x, w), tf.matMul(a, w)];
    // The float64 checks above ran msn-web's kernel: installing replaced tfjs's, and uninstalling puts it back.
    const installed = tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc;
    uninstallWasmKernels();
    expect(wasmKernelStatus().active).toBe(false);
    expect(tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc).not.toBe(installed);
    const theirs = [tf.matMul(a, b), tf.matMul(x, w), tf.matMul(a, w)];
    for (let i = 0; i < 3; i++) {
      expect(ours[i].shape).toEqual(theirs[i].shape);
      const d = tf.max(tf.abs(tf.sub(ours[i], theirs[i]))).dataSync()[0];
      expect(d).toBeLessThan(1e-5); // 7-term sums of N(0,1) products, |x| < 20: a few ulps
    }
    tf.dispose([a, b, w, x, ...ours, ...theirs]);
  });

  it('keeps numTensors flat and survives the wasm memory growing between calls', async () => {
    await installWasmKernels();
    const a = tf.randomNormal([8, 20, 16]);
    const b = tf.randomNormal([8, 20, 16]);
    const first = tf.matMul(a, b, false, true);
    const before = tf.memory().numTensors;
    const big = tf.zeros([64 * 1024 * 1024]); // 256 MiB: grows the heap (new ArrayBuffer behind it)
    const again = tf.matMul(a, b, false, true);
    const d = tf.tidy(() => tf.max(tf.abs(tf.sub(first, again))).dataSync()[0]);
    expect(d).toBe(0);
    tf.dispose([big, again]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([a, b, first]);
  });
});
