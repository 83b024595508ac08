/**
 * `msn-web export-hf` against the real consumer: Transformers.js
 * (@huggingface/transformers, onnxruntime-node underneath), offline
 * (`env.allowRemoteModels = false`, a local model path), loads the exported
 * folder with its own AutoModel / AutoImageProcessor resolution (config.json
 * model_type 'vit_msn' -> ViTMSNModel, preprocessor_config.json ->
 * ViTImageProcessor, onnx/model.onnx) and its `image-feature-extraction`
 * pipeline gives msn-web's features for the same images:
 * - default: last_hidden_state [n, tokens, D]; token 0 = embed({ feature: 'post' });
 * - `{ pool: true }`: pooler_output [n, D] = embed() (feature 'pre').
 * The images are RGB and grayscale at the model's size, so neither side
 * resizes (sharp's bilinear and tf.image.resizeBilinear are different
 * filters; only the size the processor resizes to is checked).
 *
 * Tolerance: both sides compute in float32 but in different orders
 * (Transformers.js scales pixels by 1/255 then normalises in JS; tfjs divides
 * by 255 in its kernels; onnxruntime's MLAS sums matmuls in other orders and
 * fuses LayerNorm), as in onnx-export.test.ts. Measured here: max difference
 * relative to the features' largest magnitude 2.7e-7 (shipped model) and
 * 4.1e-7 (random 3-head model); the bound 5e-5 is far below what a wrong
 * normalisation, channel order, token or layer produces (order 1e-2 to 1).
 */
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawImage, env, pipeline } from '@huggingface/transformers';
import { createMsn } from '../../src/index.js';
import { exportHfCommand } from '../../src/cli/export-hf.js';
import { encodeModel } from '../../src/io/model-format.js';
import { writeModelDirectory } from '../../src/io/model-loader-node.js';
import { initWeights } from '../../src/model/params.js';
import type { VitConfig } from '../../src/model/config.js';
import { Rng } from '../../src/util/rng.js';

const ROOT = mkdtempSync(join(tmpdir(), 'msn-hf-'));
const quiet = () => {};

/** A random 3-head model at 32 px (another width, head count and grid than the shipped one), with its own mean/std. */
const RANDOM: VitConfig = {
  imgSize: 32, patchSize: 4, inChannels: 3, embedDim: 48, depth: 3, numHeads: 3, mlpRatio: 2,
  hiddenDim: 32, outputDim: 16, numPrototypes: 8,
};

function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(a[i]));
  }
  return diff / scale;
}

/** n images of size x size: the first is grayscale, the rest RGB; as RawImages and as one msn-web pixel batch per kind. */
function images(size: number, n: number, seed: number) {
  const rng = new Rng(seed);
  const bytes = (len: number) => Uint8ClampedArray.from({ length: len }, () => Math.floor(rng.range(0, 256)));
  const gray = bytes(size * size);
  const rgb = bytes((n - 1) * size * size * 3);
  const raw = [new RawImage(gray, size, size, 1)];
  for (let i = 0; i < n - 1; i++) raw.push(new RawImage(rgb.slice(i * size * size * 3, (i + 1) * size * size * 3), size, size, 3));
  return { raw, gray, rgb };
}

/** Features of Transformers.js and of msn-web for the same images; returns the two relative differences. */
async function compare(name: string, size: number, seed: number): Promise<{ post: number; pre: number }> {
  const extractor = await pipeline('image-feature-extraction', name, { device: 'cpu' });
  const msn = await createMsn({ model: join(ROOT, `${name}-model`), worker: false, backend: 'wasm' });
  try {
    const n = 4;
    const { raw, gray, rgb } = images(size, n, seed);
    const hidden = await extractor(raw);
    const d = hidden.dims[2];
    const tokens = (size / (await msn.capabilities()).model.config.patchSize) ** 2 + 1;
    expect(hidden.dims).toEqual([n, tokens, d]);
    const cls = new Float32Array(n * d);
    const h = hidden.data as Float32Array;
    for (let i = 0; i < n; i++) cls.set(h.subarray(i * tokens * d, i * tokens * d + d), i * d);
    const pooled = await extractor(raw, { pool: true });
    expect(pooled.dims).toEqual([n, d]);

    const embed = async (feature: 'pre' | 'post') => {
      const out = new Float32Array(n * d);
      out.set(await msn.embed(gray, { count: 1, width: size, height: size, channels: 1 }, { feature }), 0);
      out.set(await msn.embed(rgb, { count: n - 1, width: size, height: size, channels: 3 }, { feature }), d);
      return out;
    };
    const post = await embed('post');
    const pre = await embed('pre');
    // The two features differ from each other by far more than the bound (the check can fail).
    expect(maxRelDiff(post, pre)).toBeGreaterThan(1e-2);
    return { post: maxRelDiff(post, cls), pre: maxRelDiff(pre, pooled.data as Float32Array) };
  } finally {
    await msn.dispose();
    await extractor.dispose();
  }
}

describe('export-hf -> Transformers.js (offline, local path)', () => {
  beforeAll(async () => {
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    env.localModelPath = `${ROOT}/`;
    // The shipped model, exported as is.
    await exportHfCommand(['msn-mnist-micro', join(ROOT, 'micro')], quiet);
    cpSync('models/msn-mnist-micro', join(ROOT, 'micro-model'), { recursive: true }); // what createMsn loads in compare()
    // A random model folder, exported through the same command.
    const w = initWeights(RANDOM, 11);
    const meta = { preprocess: { mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3] } };
    await writeModelDirectory(join(ROOT, 'random-model'), await encodeModel({ config: RANDOM, params: w.params, buffers: w.buffers, meta }));
    await exportHfCommand([join(ROOT, 'random-model'), join(ROOT, 'random')], quiet);
  });
  afterAll(() => rmSync(ROOT, { recursive: true, force: true }));

  it('writes the ViT-MSN config and the processor config of the model', () => {
    const config = JSON.parse(readFileSync(join(ROOT, 'random', 'config.json'), 'utf8'));
    expect(config).toMatchObject({
      model_type: 'vit_msn', architectures: ['ViTMSNModel'], hidden_size: 48, num_hidden_layers: 3, num_attention_heads: 3,
      intermediate_size: 96, image_size: 32, patch_size: 4, num_channels: 3, layer_norm_eps: 1e-6, hidden_act: 'gelu', qkv_bias: true,
    });
    const pre = JSON.parse(readFileSync(join(ROOT, 'random', 'preprocessor_config.json'), 'utf8'));
    expect(pre).toMatchObject({
      image_processor_type: 'ViTImageProcessor', do_resize: true, size: { height: 32, width: 32 }, resample: 2,
      do_rescale: true, rescale_factor: 1 / 255, do_normalize: true, image_mean: [0.5, 0.4, 0.3], image_std: [0.2, 0.25, 0.3],
    });
  });

  it('gives the shipped model\'s features: last_hidden_state token 0 = feature post, pooler_output = feature pre', async () => {
    const { post, pre } = await compare('micro', 28, 1);
    console.log(`transformers.js vs msn-web, shipped model: max rel diff post ${post.toExponential(2)}, pre ${pre.toExponential(2)}`);
    expect(post).toBeLessThan(5e-5);
    expect(pre).toBeLessThan(5e-5);
  });

  it("gives a random 3-head model's features with its own mean/std", async () => {
    const { post, pre } = await compare('random', 32, 2);
    console.log(`transformers.js vs msn-web, random model: max rel diff post ${post.toExponential(2)}, pre ${pre.toExponential(2)}`);
    expect(post).toBeLessThan(5e-5);
    expect(pre).toBeLessThan(5e-5);
  });

  it('resizes other sizes to the model size (what preprocessor_config.json asks for)', async () => {
    const extractor = await pipeline('image-feature-extraction', 'random', { device: 'cpu' });
    try {
      const big = new RawImage(new Uint8ClampedArray(50 * 40 * 3).fill(128), 50, 40, 3);
      expect((await extractor(big)).dims).toEqual([1, 65, 48]);
    } finally {
      await extractor.dispose();
    }
  });
});
