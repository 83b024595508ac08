/**
 * The inference path of VisionTransformer.encode on wasm (no tape: MsnTokens,
 * MsnAddLayerNorm, _FusedMatMul on views) and its kernels, against the
 * composed ops they replace.
 *
 * Bit-identical where the same float32 operations run in the same order:
 * - MsnAddLayerNorm against tf.add followed by layerNorm (MsnLayerNorm): the
 *   add is one float32 add per element and the norm is the same C code;
 * - MsnTokens against vit.ts's zeros + cls, concat and position add;
 * - encode() without a tape against encode() with one (the general path,
 *   taken inside tf.grad), for the shipped model, batch 1 and 3, a cropped
 *   35 px input, and a narrow config whose widths leave 4-wide loops a tail.
 * Against the composed LayerNorm of tfjs ops (moments, rsqrt; kernels
 * uninstalled) and the cpu backend: 2e-6 * (1 + |ref|), as
 * test/kernels/layer-norm.test.ts argues (the row sums in another order).
 * allFiniteWasm: NaN and +-Infinity found at every position (vector body and
 * scalar tail), undefined when the kernels are not installed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import '../../src/runtime/gradients.js';
import { layerNorm } from '../../src/model/layers.js';
import { VisionTransformer } from '../../src/model/vit.js';
import { getPreset, type VitConfig } from '../../src/model/config.js';
import { loadModelFromDirectory } from '../../src/io/model-loader-node.js';
import {
  ADD_LAYER_NORM, TOKENS, allFiniteWasm, fusedKernelsActive, installWasmKernels, uninstallWasmKernels,
} from '../../src/kernels/wasm/kernels.js';
import { WASM_BASE64 as INFER_WASM_BASE64 } from '../../src/kernels/wasm/infer.wasm.js';
import { Rng } from '../../src/util/rng.js';

const EPS = 1e-6;
const randn = (n: number, rng: Rng, scale = 1, shift = 0) => Float32Array.from({ length: n }, () => scale * rng.normal() + shift);
const same = (got: Float32Array, ref: Float32Array, what: string) => {
  expect(got.length, what).toBe(ref.length);
  let bad = -1;
  for (let i = 0; i < ref.length && bad < 0; i++) if (!Object.is(got[i], ref[i])) bad = i;
  expect(bad, `${what}: first difference at ${bad}: ${got[bad]} vs ${ref[bad]}`).toBe(-1);
};
const close = (got: Float32Array, ref: Float32Array, tol: number, what: string) => {
  expect(got.length).toBe(ref.length);
  for (let i = 0; i < ref.length; i++) expect(Math.abs(got[i] - ref[i]), `${what}[${i}]`).toBeLessThanOrEqual(tol * (1 + Math.abs(ref[i])));
};

describe('inference kernels and path (wasm)', () => {
  beforeAll(async () => {
    await useBackend('wasm');
    await installWasmKernels();
  });
  afterAll(async () => {
    await useBackend('wasm');
    await installWasmKernels();
  });

  it('infer.wasm imports only the memory and exports its three kernels', () => {
    const mod = new WebAssembly.Module(Uint8Array.from(atob(INFER_WASM_BASE64), (ch) => ch.charCodeAt(0)));
    expect(WebAssembly.Module.imports(mod)).toEqual([{ module: 'env', name: 'memory', kind: 'memory' }]);
    expect(WebAssembly.Module.exports(mod).map((e) => e.name)).toEqual(['add_layer_norm_fwd', 'tokens_fwd', 'all_finite']);
  });

  const shapes = [[1, 17, 96], [3, 5, 7], [2, 4], [6, 1], [4, 197, 192]];

  it('MsnAddLayerNorm is tf.add then LayerNorm: the same bits as the two kernels, close to the composed ops and cpu', async () => {
    expect(fusedKernelsActive()).toBe(true);
    const rng = new Rng(7);
    const cases = shapes.map((shape) => {
      const d = shape[shape.length - 1];
      const n = shape.reduce((a, v) => a * v, 1);
      return { shape, x: randn(n, rng, 3, 1), r: randn(n, rng), g: randn(d, rng, 0.3, 1), b: randn(d, rng, 0.2) };
    });
    const mk = (c: (typeof cases)[number]) => [tf.tensor(c.x, c.shape), tf.tensor(c.r, c.shape), tf.tensor1d(c.g), tf.tensor1d(c.b)];
    const composed = () => cases.map((c) => tf.tidy(() => {
      const [x, r, g, b] = mk(c);
      const sum = tf.add(x, r);
      return [sum.dataSync().slice() as Float32Array, layerNorm(sum, g, b, EPS).dataSync().slice() as Float32Array];
    }));
    const before = tf.memory().numTensors;
    const fused = cases.map((c) => tf.tidy(() => {
      const [x, r, g, b] = mk(c);
      const [sum, y] = tf.engine().runKernel(ADD_LAYER_NORM, { x, r, g, b }, { eps: EPS }) as tf.Tensor[];
      expect(sum.shape).toEqual(c.shape);
      expect(y.shape).toEqual(c.shape);
      return [sum.dataSync().slice() as Float32Array, y.dataSync().slice() as Float32Array];
    }));
    expect(tf.memory().numTensors).toBe(before);
    const twoKernels = composed();
    cases.forEach((c, i) => {
      same(fused[i][0], twoKernels[i][0], `sum [${c.shape}]`);
      same(fused[i][1], twoKernels[i][1], `y [${c.shape}]`);
    });
    uninstallWasmKernels();
    const tfjsOps = composed();
    await useBackend('cpu');
    const cpu = composed();
    await useBackend('wasm');
    await installWasmKernels();
    for (const [ref, tag] of [[tfjsOps, 'tfjs ops'], [cpu, 'cpu']] as const) {
      cases.forEach((c, i) => {
        same(fused[i][0], ref[i][0], `sum [${c.shape}] (${tag})`);
        close(fused[i][1], ref[i][1], 2e-6, `y [${c.shape}] (${tag})`);
      });
    }
  });

  it('MsnAddLayerNorm rejects mismatched shapes', () => {
    const x = tf.zeros([2, 4]);
    expect(() => tf.engine().runKernel(ADD_LAYER_NORM, { x, r: tf.zeros([4, 2]), g: tf.ones([4]), b: tf.zeros([4]) }, { eps: EPS })).toThrow(/differ/);
    expect(() => tf.engine().runKernel(ADD_LAYER_NORM, { x, r: tf.zeros([2, 4]), g: tf.ones([3]), b: tf.zeros([4]) }, { eps: EPS })).toThrow(/d = 4/);
  });

  it('MsnTokens is the zeros + cls, concat and position add of the composed version, bit for bit', () => {
    const rng = new Rng(3);
    for (const [b, n, d] of [[1, 16, 96], [3, 49, 7], [2, 1, 5]]) {
      const emb = tf.tensor3d(randn(b * n * d, rng), [b, n, d]);
      const cls = tf.tensor3d(randn(d, rng), [1, 1, d]);
      const pos = tf.tensor3d(randn((n + 1) * d, rng), [1, n + 1, d]);
      const ref = tf.tidy(() => tf.add(tf.concat([tf.add(tf.zeros([b, 1, d]), cls), emb], 1), pos));
      const got = tf.engine().runKernel(TOKENS, { emb, cls, pos }) as tf.Tensor;
      expect(got.shape).toEqual([b, n + 1, d]);
      same(got.dataSync() as Float32Array, ref.dataSync() as Float32Array, `tokens [${b}, ${n}, ${d}]`);
      expect(() => tf.engine().runKernel(TOKENS, { emb, cls, pos: tf.zeros([1, n, d]) })).toThrow(/MsnTokens takes/);
      tf.dispose([emb, cls, pos, ref, got]);
    }
  });

  it('allFiniteWasm finds NaN and +-Infinity anywhere, and is undefined without the kernels', () => {
    for (const n of [0, 1, 3, 4, 7, 8, 2352]) {
      const t = tf.ones([n]);
      expect(allFiniteWasm(t), `n ${n}`).toBe(true);
      t.dispose();
      for (let at = 0; at < n; at += Math.max(1, Math.floor(n / 9))) {
        for (const bad of [NaN, Infinity, -Infinity]) {
          const a = new Float32Array(n).fill(0.5);
          a[at] = bad;
          const u = tf.tensor1d(a);
          expect(allFiniteWasm(u), `n ${n}, ${bad} at ${at}`).toBe(false);
          u.dispose();
        }
      }
    }
    const big = tf.tensor1d(new Float32Array([3.4e38, -3.4e38, 1e-45, -0]));
    expect(allFiniteWasm(big)).toBe(true);
    uninstallWasmKernels();
    expect(allFiniteWasm(big)).toBeUndefined();
    big.dispose();
  });

  it('encode without a tape gives the bits of the general path, in far fewer kernels, and frees its temporaries', async () => {
    await installWasmKernels();
    const shipped = await loadModelFromDirectory(new URL('../../models/msn-mnist-micro', import.meta.url).pathname);
    // A narrow config: widths 18 (hd 6), 72, patch 5 -> every 4-wide loop has a tail.
    const narrow: VitConfig = { ...getPreset('micro-p4-28'), patchSize: 5, imgSize: 20, embedDim: 18, numHeads: 3, depth: 2, mlpRatio: 4 };
    const models = [
      { tag: 'shipped', vit: VisionTransformer.create(shipped.config, shipped), sizes: [28, 35] },
      { tag: 'narrow', vit: VisionTransformer.create(narrow, { seed: 5 }), sizes: [20] },
    ];
    for (const { tag, vit, sizes } of models) {
      const c = vit.cfg.inChannels;
      for (const s of sizes) {
        for (const b of [1, 3]) {
          const x = tf.randomNormal([b, s, s, c], 0, 1, 'float32', 11) as tf.Tensor4D;
          const before = tf.memory().numTensors;
          const o = vit.encode(x);
          const fast = [o.clsPre.dataSync().slice() as Float32Array, o.clsNorm.dataSync().slice() as Float32Array];
          expect(o.clsPre.shape).toEqual([b, vit.cfg.embedDim]);
          expect(o.clsNorm.shape).toEqual([b, vit.cfg.embedDim]);
          tf.dispose([o.clsPre, o.clsNorm]);
          expect(tf.memory().numTensors).toBe(before);
          let general: Float32Array[] = [];
          tf.tidy(() => tf.grad((xx: tf.Tensor) => {
            const r = vit.encode(xx as tf.Tensor4D);
            general = [r.clsPre.dataSync().slice() as Float32Array, r.clsNorm.dataSync().slice() as Float32Array];
            return tf.sum(r.clsNorm);
          })(x));
          same(fast[0], general[0], `${tag} ${s}px batch ${b} clsPre`);
          same(fast[1], general[1], `${tag} ${s}px batch ${b} clsNorm`);
          x.dispose();
        }
      }
      const x = tf.randomNormal([1, sizes[0], sizes[0], c]) as tf.Tensor4D;
      const prof = await tf.profile(() => tf.dispose(Object.values(vit.encode(x))));
      const names = prof.kernels.map((k) => k.name);
      expect(names).toContain('MsnAddLayerNorm');
      expect(names).toContain('MsnTokens');
      expect(names.filter((k) => k === '_FusedMatMul').length).toBe(1 + 4 * vit.cfg.depth);
      expect(prof.kernels.length).toBeLessThanOrEqual(10 * vit.cfg.depth + 5);
      // A NaN pixel is still refused.
      const bad = tf.tidy(() => tf.concat([tf.fill([1, 1, sizes[0], c], NaN), tf.zeros([1, sizes[0] - 1, sizes[0], c])], 1)) as tf.Tensor4D;
      expect(() => vit.encode(bad)).toThrow(/NaN or Infinity/);
      tf.dispose([x, bad]);
      vit.dispose();
    }
  });
});
