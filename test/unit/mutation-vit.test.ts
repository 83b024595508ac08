/**
 * src/model/vit.ts and the BatchNorm of src/model/layers.ts: cases from
 * mutation testing (issue #18, docs/TESTING.md, "model: survivors in
 * src/model/vit.ts"). Tiny model, fixed seeds, cpu backend. Each test pins
 * one behaviour a surviving mutant broke without any test noticing: images
 * whose side is not a multiple of the patch size, non-square grids, the
 * projection head's batch rules and its running statistics, weight checks,
 * setWeights, the public helpers and the messages' words. The image tests
 * also run on wasm, where encode() without a tape takes its inference path.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { BATCH_NORM_MOMENTUM, type VitConfig } from '../../src/model/config.js';
import { bufferSpecs, paramSpecs } from '../../src/model/params.js';
import { VisionTransformer } from '../../src/model/vit.js';
import { fusedKernelsActive } from '../../src/kernels/wasm/kernels.js';
import type { NamedArrays } from '../../src/util/readback.js';
import { Rng } from '../../src/util/rng.js';

// baseGrid = imgSize / patchSize = 2.
const CFG: VitConfig = { imgSize: 8, patchSize: 4, inChannels: 3, embedDim: 8, depth: 1, numHeads: 2, mlpRatio: 2, hiddenDim: 6, outputDim: 5, numPrototypes: 7 };

function images(b: number, h: number, w: number, seed: number): tf.Tensor4D {
  const rng = new Rng(seed);
  const data = new Float32Array(b * h * w * 3);
  for (let i = 0; i < data.length; i++) data[i] = rng.uniform() * 2 - 1;
  return tf.tensor4d(data, [b, h, w, 3]);
}

/** The error `f` throws: its class name and message. */
function thrown(f: () => unknown): { name: string; message: string } {
  try {
    f();
  } catch (e) {
    return { name: (e as Error).name, message: (e as Error).message };
  }
  throw new Error('expected an error');
}

function copyWeights(w: { params: NamedArrays; buffers: NamedArrays }): { params: NamedArrays; buffers: NamedArrays } {
  const c = (m: NamedArrays) => Object.fromEntries(Object.entries(m).map(([k, a]) => [k, { data: Float32Array.from(a.data), shape: [...a.shape] }]));
  return { params: c(w.params), buffers: c(w.buffers) };
}

function read(v: tf.Tensor): Float32Array {
  return v.dataSync() as Float32Array;
}

beforeAll(async () => {
  await useBackend('cpu');
});

// On wasm (with msn-web's kernels) encode without a tape takes the inference path, which crops and builds the grid itself.
for (const backend of ['cpu', 'wasm'] as const) describe(`images whose side is not a multiple of the patch size (${backend})`, () => {
  beforeAll(async () => {
    await useBackend(backend);
  });
  afterAll(async () => {
    await useBackend('cpu');
  });

  it('drop the bottom rows and right columns left over, as the stride-p convolution does', () => {
    expect(fusedKernelsActive()).toBe(backend === 'wasm');
    const m = VisionTransformer.create(CFG, { seed: 1 });
    // [h, w]: both sides off, only the height off, only the width off.
    for (const [h, w] of [[11, 9], [10, 8], [8, 11]]) {
      const x = images(2, h, w, 10 + h + w);
      const top = tf.slice(x, [0, 0, 0, 0], [2, 8, 8, 3]);
      const before = tf.memory().numTensors;
      const got = m.encode(x);
      expect(tf.memory().numTensors).toBe(before + 2);
      const ref = m.encode(top);
      // Same kernels on the same 8x8 pixels: the same bits.
      expect(read(got.clsPre)).toEqual(read(ref.clsPre));
      expect(read(got.clsNorm)).toEqual(read(ref.clsNorm));
      // The leftover pixels matter to nothing: change them, same output.
      const noisy = tf.concat([tf.concat([top, tf.fill([2, 8, w - 8, 3], 5)], 2), tf.fill([2, h - 8, w, 3], -5)], 1) as tf.Tensor4D;
      expect(read(m.encode(noisy).clsNorm)).toEqual(read(ref.clsNorm));
      tf.dispose([x, top, noisy, got.clsPre, got.clsNorm, ref.clsPre, ref.clsNorm]);
    }
    m.dispose();
  });
});

for (const backend of ['cpu', 'wasm'] as const) describe(`non-square patch grids (${backend})`, () => {
  beforeAll(async () => {
    await useBackend(backend);
  });
  afterAll(async () => {
    await useBackend('cpu');
  });

  it('are refused with MsnShapeError whichever side equals the base grid', () => {
    const m = VisionTransformer.create(CFG, { seed: 1 });
    for (const [h, w, gh, gw] of [[12, 8, 3, 2], [8, 12, 2, 3], [12, 16, 3, 4]]) {
      const x = images(1, h, w, 3);
      const before = tf.memory().numTensors;
      expect(thrown(() => m.encode(x))).toEqual({
        name: 'MsnShapeError',
        message: `A ${gh}x${gw} patch grid needs resized position embeddings, which are defined for square grids only; use square images.`,
      });
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
    }
    m.dispose();
  });
});

describe('the projection head: batch rules and BatchNorm statistics', () => {
  it('a single image runs in eval mode, giving the row the same image gets in a batch of two', () => {
    const m = VisionTransformer.create(CFG, { seed: 2 });
    const two = images(2, 8, 8, 4);
    const one = tf.slice(two, [0, 0, 0, 0], [1, 8, 8, 3]);
    const y1 = m.forward([{ images: one }], { bnMode: 'eval' });
    const y2 = m.forward([{ images: two }], { bnMode: 'eval' });
    expect(y1.shape).toEqual([1, CFG.outputDim]);
    // Eval mode is per sample; a batch of 1 and of 2 may sum products in another
    // order, hence 1e-6 (float32 rounding of values of order 1), not bit equality.
    const a = read(y1);
    const b = read(y2).slice(0, CFG.outputDim);
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual(1e-6);
    expect(m.numBatchesTracked).toBe(0);
    tf.dispose([two, one, y1, y2]);
    m.dispose();
  });

  it('train mode needs at least 2 samples per group: 1 is refused (in forward and head), 2 are accepted', () => {
    const m = VisionTransformer.create(CFG, { seed: 2 });
    const msg = 'The projection head in train mode needs at least 2 samples per group (BatchNorm statistics).';
    const one = images(1, 8, 8, 5);
    expect(thrown(() => m.forward([{ images: one }], { bnMode: 'train' }))).toEqual({ name: 'MsnShapeError', message: msg });
    expect(thrown(() => m.head(tf.zeros([1, CFG.embedDim]) as tf.Tensor2D, 'train'))).toEqual({ name: 'MsnShapeError', message: msg });
    expect(m.numBatchesTracked).toBe(0);
    const two = images(2, 8, 8, 6);
    const y = m.forward([{ images: two }], { bnMode: 'train' });
    expect(y.shape).toEqual([2, CFG.outputDim]);
    expect(m.numBatchesTracked).toBe(1);
    tf.dispose([one, two, y]);
    m.dispose();
  });

  it('a train forward moves the running stats by momentum 0.1 toward the batch (unbiased variance) and counts one batch per group', () => {
    const m = VisionTransformer.create(CFG, { seed: 3 });
    const x = images(4, 8, 8, 7);
    // bn1's input, computed by hand from the public parts: fc1(clsNorm).
    const { clsPre, clsNorm } = m.encode(x);
    const h = tf.add(tf.matMul(clsNorm, m.p('fc.fc1.weight')), m.p('fc.fc1.bias'));
    const hv = read(h);
    const [n, c] = h.shape;
    const mean0 = Float32Array.from(read(m.p('fc.bn1.running_mean')));
    const var0 = Float32Array.from(read(m.p('fc.bn1.running_var')));
    const y = m.forward([{ images: x }, { images: x }], { bnMode: 'train' });
    expect(m.numBatchesTracked).toBe(2);
    const mean1 = read(m.p('fc.bn1.running_mean'));
    const var1 = read(m.p('fc.bn1.running_var'));
    const mo = BATCH_NORM_MOMENTUM;
    let e = 0;
    for (let j = 0; j < c; j++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += hv[i * c + j];
      const mu = s / n;
      let q = 0;
      for (let i = 0; i < n; i++) q += (hv[i * c + j] - mu) ** 2;
      const unbiased = q / (n - 1);
      // Two groups of the same images: two identical updates.
      let em = mean0[j];
      let ev = var0[j];
      for (let k = 0; k < 2; k++) {
        em = (1 - mo) * em + mo * mu;
        ev = (1 - mo) * ev + mo * unbiased;
      }
      e = Math.max(e, Math.abs(mean1[j] - em), Math.abs(var1[j] - ev) / ev);
    }
    // float32 moments of 4 values of order 0.1-1 against a float64 computation.
    expect(e).toBeLessThanOrEqual(1e-5);
    expect(Math.max(...Array.from(mean1, (v, j) => Math.abs(v - mean0[j])))).toBeGreaterThan(1e-3);
    tf.dispose([clsPre, clsNorm, h, x, y]);
    m.dispose();
  });

  it('updateStats: false in train mode normalises with the batch but leaves the running stats and the count alone', () => {
    const a = VisionTransformer.create(CFG, { seed: 4 });
    const b = VisionTransformer.create(CFG, { seed: 4 });
    const x = images(3, 8, 8, 8);
    const stats = (m: VisionTransformer) => bufferSpecs(CFG).map((s) => Array.from(read(m.p(s.name))));
    const start = stats(a);
    const ya = a.forward([{ images: x }], { bnMode: 'train', updateStats: false });
    expect(stats(a)).toEqual(start);
    expect(a.numBatchesTracked).toBe(0);
    // The same output as a forward that does update (the batch statistics are used either way).
    const yb = b.forward([{ images: x }], { bnMode: 'train', updateStats: true });
    expect(read(ya)).toEqual(read(yb));
    expect(stats(b)).not.toEqual(start);
    expect(b.numBatchesTracked).toBe(1);
    tf.dispose([x, ya, yb]);
    a.dispose();
    b.dispose();
  });

  it('head() alone: train mode updates by default, eval mode never, and updateStats: false holds', () => {
    const m = VisionTransformer.create(CFG, { seed: 5 });
    const cls = tf.tensor2d(Float32Array.from({ length: 3 * CFG.embedDim }, (_, i) => Math.sin(i + 1)), [3, CFG.embedDim]);
    const mean = () => Array.from(read(m.p('fc.bn2.running_mean')));
    const start = mean();
    tf.dispose(m.head(cls, 'eval'));
    tf.dispose(m.head(cls, 'eval', true));
    expect(mean()).toEqual(start);
    expect(m.numBatchesTracked).toBe(0);
    tf.dispose(m.head(cls, 'train', false));
    expect(mean()).toEqual(start);
    expect(m.numBatchesTracked).toBe(0);
    tf.dispose(m.head(cls, 'train'));
    expect(mean()).not.toEqual(start);
    expect(m.numBatchesTracked).toBe(1);
    cls.dispose();
    m.dispose();
  });

  it('an eval forward does not count a batch, whatever updateStats says', () => {
    const m = VisionTransformer.create(CFG, { seed: 6 });
    const x = images(2, 8, 8, 9);
    tf.dispose(m.forward([{ images: x }], { bnMode: 'eval' }));
    tf.dispose(m.forward([{ images: x }], { bnMode: 'eval', updateStats: true }));
    expect(m.numBatchesTracked).toBe(0);
    x.dispose();
    m.dispose();
  });
});

describe('weights given to create and setWeights are checked', () => {
  const good = () => copyWeights(VisionTransformer.create(CFG, { seed: 7 }).getWeights());

  const cases: [string, (w: { params: NamedArrays; buffers: NamedArrays }) => void, string][] = [
    ['a missing parameter', (w) => delete w.params['norm.weight'], "Missing parameter 'norm.weight' for this config."],
    ['a missing buffer', (w) => delete w.buffers['fc.bn1.running_var'], "Missing buffer 'fc.bn1.running_var' for this config."],
    [
      'the right shape with too few values',
      (w) => (w.params['norm.bias'] = { data: new Float32Array(7), shape: [8] }),
      "parameter 'norm.bias': expected shape [8], got [8] (7 values).",
    ],
    [
      'the right number of values in another shape',
      (w) => (w.params['patch_embed.proj.weight'] = { data: w.params['patch_embed.proj.weight'].data, shape: [8, 48] }),
      "parameter 'patch_embed.proj.weight': expected shape [48,8], got [8,48] (384 values).",
    ],
    [
      'a buffer of the wrong size',
      (w) => (w.buffers['fc.bn2.running_mean'] = { data: new Float32Array(5), shape: [5] }),
      "buffer 'fc.bn2.running_mean': expected shape [6], got [5] (5 values).",
    ],
  ];

  for (const [what, spoil, message] of cases) {
    it(`${what}: MsnShapeError, no tensor left behind, a model keeps its weights`, () => {
      const w = good();
      spoil(w);
      const before = tf.memory().numTensors;
      expect(thrown(() => VisionTransformer.create(CFG, w))).toEqual({ name: 'MsnShapeError', message });
      expect(tf.memory().numTensors).toBe(before);
      const m = VisionTransformer.create(CFG, { seed: 8 });
      const kept = m.getWeights();
      expect(thrown(() => m.setWeights(w))).toEqual({ name: 'MsnShapeError', message });
      expect(m.getWeights()).toEqual(kept);
      m.dispose();
    });
  }

  it('create with good weights uses them exactly', () => {
    const w = good();
    const m = VisionTransformer.create(CFG, w);
    expect(m.getWeights()).toEqual(w);
    m.dispose();
  });
});

describe('setWeights', () => {
  it('overwrites every parameter and buffer: the outputs become those of the source model', () => {
    const src = VisionTransformer.create(CFG, { seed: 11 });
    const x = images(2, 8, 8, 12);
    // Move the source's running stats off their init so that buffers are checked too.
    tf.dispose(src.forward([{ images: x }], { bnMode: 'train' }));
    const w = copyWeights(src.getWeights());
    const dst = VisionTransformer.create(CFG, { seed: 12 });
    expect(dst.getWeights()).not.toEqual(w);
    const before = tf.memory().numTensors;
    dst.setWeights(w);
    expect(tf.memory().numTensors).toBe(before);
    expect(dst.getWeights()).toEqual(w);
    const ys = src.forward([{ images: x }], { bnMode: 'eval' });
    const yd = dst.forward([{ images: x }], { bnMode: 'eval' });
    expect(read(yd)).toEqual(read(ys));
    tf.dispose([x, ys, yd]);
    src.dispose();
    dst.dispose();
  });
});

describe('public helpers', () => {
  it('trainableVariables() is every parameter, trainable, and no buffer; buffers are not trainable', () => {
    const m = VisionTransformer.create(CFG, { seed: 13 });
    const vars = m.trainableVariables();
    expect(vars).toEqual([...m.params.values()]);
    expect(vars.map((v) => v.name.replace(/^msn#\d+\//, ''))).toEqual(paramSpecs(CFG).map((s) => s.name));
    expect(vars.every((v) => v.trainable)).toBe(true);
    const bufs = [...m.buffers.values()];
    expect(bufs.map((v) => v.name.replace(/^msn-buf#\d+\//, ''))).toEqual(bufferSpecs(CFG).map((s) => s.name));
    expect(bufs.every((v) => !v.trainable)).toBe(true);
    for (const v of bufs) expect(vars).not.toContain(v);
    m.dispose();
  });

  it('p(name) finds parameters and buffers, and throws for other names', () => {
    const m = VisionTransformer.create(CFG, { seed: 13 });
    expect(m.p('cls_token')).toBe(m.params.get('cls_token'));
    expect(m.p('fc.bn1.running_mean')).toBe(m.buffers.get('fc.bn1.running_mean'));
    expect(thrown(() => m.p('nope'))).toEqual({ name: 'Error', message: "internal: no parameter 'nope'" });
    m.dispose();
  });

  it('isDisposed turns true on dispose (twice is fine), after which calls throw MsnDisposedError', () => {
    const before = tf.memory().numTensors;
    const m = VisionTransformer.create(CFG, { seed: 14 });
    expect(m.isDisposed).toBe(false);
    m.dispose();
    expect(m.isDisposed).toBe(true);
    m.dispose();
    expect(m.isDisposed).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
    const x = images(1, 8, 8, 1);
    expect(thrown(() => m.encode(x))).toEqual({ name: 'MsnDisposedError', message: 'This model has been disposed; create a new one.' });
    x.dispose();
  });

  it("bad images are named 'images' in the message", () => {
    const m = VisionTransformer.create(CFG, { seed: 15 });
    const x = tf.zeros([8, 8, 3]) as unknown as tf.Tensor4D;
    expect(thrown(() => m.encode(x))).toEqual({
      name: 'MsnShapeError',
      message: 'images: expected a rank-4 tensor [batch, height, width, 3] (NHWC), got shape [8,8,3].',
    });
    x.dispose();
    m.dispose();
  });
});
