/**
 * ONNX export: onnxruntime-web (its wasm build, in Node) runs the exported
 * graph and gives msn-web's features, on the shipped model and on a random
 * ViT-Tiny/16 at 224 px (the CLI's export-onnx is tested in test/cli).
 *
 * Tolerance: both sides compute in float32 with different summation orders
 * (XNNPACK / bmm.wasm against onnxruntime's MLAS, which also fuses LayerNorm
 * and GELU). The difference is measured relative to the features' largest
 * magnitude: ~1e-6 for 4 blocks and ~1e-5 for 12 blocks at width 192 here;
 * the bound is 5e-5, far below what any wrong weight layout, head split or
 * missing op produces (differences of order 1).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-web';
import onnxProto from 'onnx-proto';
import { useBackend } from '../../src/runtime/backend.js';
import { VisionTransformer } from '../../src/model/vit.js';
import { initWeights } from '../../src/model/params.js';
import { loadModelFromDirectory } from '../../src/io/model-loader-node.js';
import { exportOnnx } from '../../src/interop/onnx-export.js';
import type { VitConfig } from '../../src/model/config.js';
import { Rng } from '../../src/util/rng.js';

const VIT_TINY: VitConfig = {
  imgSize: 224, patchSize: 16, inChannels: 3, embedDim: 192, depth: 12, numHeads: 3, mlpRatio: 4,
  hiddenDim: 256, outputDim: 64, numPrototypes: 16,
};

/** Random normalised images, NHWC for msn-web and NCHW for ONNX. */
function images(n: number, size: number, seed: number): { nhwc: tf.Tensor4D; nchw: Float32Array } {
  const rng = new Rng(seed);
  const data = Float32Array.from({ length: n * size * size * 3 }, () => rng.normal());
  const nhwc = tf.tensor4d(data, [n, size, size, 3]);
  const nchw = tf.tidy(() => tf.transpose(nhwc, [0, 3, 1, 2]).dataSync() as Float32Array);
  return { nhwc, nchw };
}

async function compare(
  vit: VisionTransformer, model: Parameters<typeof exportOnnx>[0], feature: 'pre' | 'post', n: number, seed: number,
): Promise<number> {
  const cfg = model.config;
  const session = await ort.InferenceSession.create(exportOnnx(model, { feature }));
  const { nhwc, nchw } = images(n, cfg.imgSize, seed);
  const ours = tf.tidy(() => {
    const o = vit.encode(nhwc);
    return (feature === 'pre' ? o.clsPre : o.clsNorm).dataSync();
  });
  const out = await session.run({ pixel_values: new ort.Tensor('float32', nchw, [n, 3, cfg.imgSize, cfg.imgSize]) });
  await session.release();
  nhwc.dispose();
  expect(out.features.dims).toEqual([n, cfg.embedDim]);
  const theirs = out.features.data as Float32Array;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < ours.length; i++) {
    diff = Math.max(diff, Math.abs(ours[i] - theirs[i]));
    scale = Math.max(scale, Math.abs(ours[i]));
  }
  return diff / scale;
}

describe('exportOnnx', () => {
  beforeAll(async () => {
    await useBackend('wasm');
    ort.env.wasm.numThreads = 1;
  });

  it('runs in onnxruntime-web with the shipped model\'s features, before and after the final norm', async () => {
    const model = await loadModelFromDirectory('models/msn-mnist-micro');
    const vit = VisionTransformer.create(model.config, model);
    const before = tf.memory().numTensors;
    expect(await compare(vit, model, 'pre', 5, 1)).toBeLessThan(5e-5);
    expect(await compare(vit, model, 'post', 3, 2)).toBeLessThan(5e-5);
    expect(tf.memory().numTensors).toBe(before);
    vit.dispose();
  });

  it('runs a random ViT-Tiny/16 at 224 px (12 blocks, 3 heads) with a dynamic batch', async () => {
    const weights = initWeights(VIT_TINY, 7);
    const vit = VisionTransformer.create(VIT_TINY, weights);
    const model = { config: VIT_TINY, params: weights.params, meta: {} };
    expect(await compare(vit, model, 'pre', 2, 3)).toBeLessThan(5e-5);
    vit.dispose();
  });

  it('writes a standard opset-17 model with the preprocessing in its metadata', async () => {
    const model = await loadModelFromDirectory('models/msn-mnist-micro');
    const decoded = onnxProto.onnx.ModelProto.decode(exportOnnx(model));
    expect(decoded.opsetImport.map((o) => [o.domain, Number(o.version)])).toEqual([['', 17]]);
    expect(new Set((decoded.graph?.node ?? []).map((n) => n.opType))).toEqual(
      new Set(['Conv', 'Reshape', 'Transpose', 'Shape', 'Slice', 'Concat', 'Expand', 'Add', 'LayerNormalization', 'MatMul',
        'Gather', 'Squeeze', 'Mul', 'Softmax', 'Erf', 'Identity']),
    );
    const meta = Object.fromEntries(decoded.metadataProps.map((p) => [p.key, p.value]));
    expect(JSON.parse(meta['msn_web.preprocess'])).toEqual(model.meta.preprocess);
    expect(JSON.parse(meta['msn_web.config'])).toEqual(model.config);
  });

  it('refuses a model whose weights are missing or the wrong size', async () => {
    const weights = initWeights(VIT_TINY, 1);
    const { ['blocks.3.attn.qkv.weight']: _gone, ...missing } = weights.params;
    expect(() => exportOnnx({ config: VIT_TINY, params: missing, meta: {} })).toThrow(/blocks\.3\.attn\.qkv\.weight.*missing/);
    const short = { ...weights.params, pos_embed: { shape: [1, 197, 192], data: new Float32Array(10) } };
    expect(() => exportOnnx({ config: VIT_TINY, params: short, meta: {} })).toThrow(expect.objectContaining({ name: 'MsnFormatError' }));
  });
});
