/**
 * Reads a reference folder made by the official PyTorch code (layout of
 * test/fixtures/msn, see its README). Everything a parity test needs (model
 * config, shapes, kept indices, hyperparameters, schedule values) comes from
 * these files, so the suite runs against any folder of that layout:
 *   MSN_REFERENCE_DIR=/path/to/vectors npx vitest run test/parity
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { VitConfig } from '../../src/model/config.js';
import { NamedArrays } from '../../src/model/params.js';
import { fromTorchLayout } from '../../src/interop/torch-layout.js';

export const REF_DIR = process.env.MSN_REFERENCE_DIR || join(import.meta.dirname, '..', 'fixtures', 'msn');

export interface RefArray {
  shape: number[];
  dtype: string;
  data: number[];
}

const cache = new Map<string, any>();
export function readRef(file: string): any {
  if (!cache.has(file)) cache.set(file, JSON.parse(readFileSync(join(REF_DIR, file), 'utf8')));
  return cache.get(file);
}
export function hasRef(file: string): boolean {
  return existsSync(join(REF_DIR, file));
}

export function f32(a: RefArray): Float32Array {
  return Float32Array.from(a.data, (x) => Math.fround(x));
}

/** NCHW reference images -> NHWC tensor. */
export function imagesNHWC(a: RefArray): tf.Tensor4D {
  return tf.tidy(() => tf.transpose(tf.tensor4d(f32(a), a.shape as [number, number, number, number]), [0, 2, 3, 1]));
}

export function configFromRef(tinyModel: any, inChannels = 3): VitConfig {
  return {
    imgSize: tinyModel.img_size,
    patchSize: tinyModel.patch_size,
    inChannels,
    embedDim: tinyModel.embed_dim,
    depth: tinyModel.depth,
    numHeads: tinyModel.num_heads,
    mlpRatio: tinyModel.mlp_ratio,
    hiddenDim: tinyModel.hidden_dim,
    outputDim: tinyModel.output_dim,
    numPrototypes: tinyModel.num_proto,
  };
}

const BUFFER_SUFFIXES = ['running_mean', 'running_var'];

/** An official state dict (JSON arrays) -> our params and buffers. */
export function weightsFromStateDict(sd: Record<string, RefArray>): { params: NamedArrays; buffers: NamedArrays } {
  const params: NamedArrays = {};
  const buffers: NamedArrays = {};
  for (const [name, a] of Object.entries(sd)) {
    if (name.endsWith('num_batches_tracked')) continue;
    const conv = fromTorchLayout(name, a.shape, f32(a));
    if (BUFFER_SUFFIXES.some((s) => name.endsWith(s))) buffers[name] = conv;
    else params[name] = conv;
  }
  return { params, buffers };
}

/** Max |a - b| / (atol + rtol |b|) <= 1 elementwise; returns the worst ratio for messages. */
export function closeness(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != ${expected.length}`);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    const r = Math.abs(actual[i] - expected[i]) / (atol + rtol * Math.abs(expected[i]));
    if (!(r <= worst)) worst = Number.isNaN(r) ? Infinity : Math.max(worst, r);
  }
  return worst;
}

export const BACKENDS = ['wasm', 'cpu'] as const;

/**
 * The views of one recorded iteration: `imgs_0` is the target view; `imgs_1..`
 * are the anchors, grouped by equal size like the official list forward (the
 * first group gets `keptPatches` when given). The caller disposes the tensors
 * (disposeBatch).
 */
export function batchFromInputs(
  inputs: Record<string, RefArray>,
  keptPatches: ArrayLike<number> | undefined,
): { target: tf.Tensor4D; anchors: { images: tf.Tensor4D; keepPatches?: ArrayLike<number> }[] } {
  const count = Object.keys(inputs).filter((k) => /^imgs_\d+$/.test(k)).length;
  const target = imagesNHWC(inputs.imgs_0);
  const groups: tf.Tensor4D[][] = [];
  for (let i = 1; i < count; i++) {
    const x = imagesNHWC(inputs[`imgs_${i}`]);
    const last = groups[groups.length - 1];
    if (last && last[0].shape[1] === x.shape[1] && last[0].shape[2] === x.shape[2]) last.push(x);
    else groups.push([x]);
  }
  const anchors = groups.map((g, gi) => {
    const images = g.length === 1 ? g[0] : (tf.concat(g, 0) as tf.Tensor4D); // view-major
    if (g.length > 1) tf.dispose(g);
    return { images, keepPatches: gi === 0 ? keptPatches : undefined };
  });
  return { target, anchors };
}

export function disposeBatch(b: { target: tf.Tensor; anchors: { images: tf.Tensor }[] }): void {
  tf.dispose([b.target, ...b.anchors.map((g) => g.images)]);
}

/** Loss options and clipping of a reference `config` block (tiny_train_step.json layout). */
export function hyperFromConfig(c: any): {
  loss: { tau: number; sinkhornIters: number; memaxWeight: number; entWeight: number };
  clipGrad: number;
} {
  return {
    loss: {
      tau: c.temperature,
      sinkhornIters: c.use_sinkhorn ? 3 : 0,
      memaxWeight: c.me_max ? c.memax_weight : 0,
      entWeight: c.use_ent ? c.ent_weight : 0,
    },
    clipGrad: c.clip_grad,
  };
}

/** softmax(normalize(z) normalize(q)^T / tau) in float64. */
export function referenceProbs(z: Float32Array, rows: number, q: Float32Array, k: number, tau: number): Float64Array {
  const d = z.length / rows;
  const unit = (a: Float32Array, n: number) => {
    const out = new Float64Array(a.length);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += a[i * d + j] ** 2;
      const norm = Math.max(Math.sqrt(s), 1e-12);
      for (let j = 0; j < d; j++) out[i * d + j] = a[i * d + j] / norm;
    }
    return out;
  };
  const zn = unit(z, rows);
  const qn = unit(q, k);
  const out = new Float64Array(rows * k);
  for (let i = 0; i < rows; i++) {
    let max = -Infinity;
    for (let c = 0; c < k; c++) {
      let dot = 0;
      for (let j = 0; j < d; j++) dot += zn[i * d + j] * qn[c * d + j];
      out[i * k + c] = dot / tau;
      max = Math.max(max, out[i * k + c]);
    }
    let sum = 0;
    for (let c = 0; c < k; c++) sum += (out[i * k + c] = Math.exp(out[i * k + c] - max));
    for (let c = 0; c < k; c++) out[i * k + c] /= sum;
  }
  return out;
}
