/**
 * The encoder's parameters and buffers, keyed by the official state-dict
 * names (`blocks.0.attn.qkv.weight`, `fc.bn1.running_mean`, ...), so that
 * converting a PyTorch checkpoint is a rename-free layout change.
 *
 * Layouts are chosen for TF.js speed, not copied from PyTorch:
 * - Linear weights are stored (in, out), so a layer is one plain 2-D matMul.
 * - The patch-embedding convolution is stored as a dense (p*p*C, D) matrix
 *   whose rows run over (row, col, channel) of a patch: the TF.js conv2d
 *   filter layout (p, p, C, D) flattened. The wasm backend has no conv2d
 *   filter gradient, so the patch embedding is a reshape plus matMul.
 * Everything else keeps the PyTorch shape. The conversions to and from the
 * PyTorch layouts are in interop/torch-layout.ts; the weight-decay rule over
 * these names is the optimizer's (train/optimizer.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { NamedArrays } from '../util/readback.js';
import { Rng } from '../util/rng.js';
import { VitConfig, baseGrid } from './config.js';

export interface ParamSpec {
  name: string;
  shape: number[];
  init: 'trunc_normal' | 'patch_kaiming' | 'zeros' | 'ones';
}

/** Parameters (trainable) in the official state-dict order. */
export function paramSpecs(cfg: VitConfig): ParamSpec[] {
  const d = cfg.embedDim;
  const p = cfg.patchSize;
  const mlp = Math.round(d * cfg.mlpRatio);
  const n0 = baseGrid(cfg) ** 2;
  const specs: ParamSpec[] = [
    { name: 'cls_token', shape: [1, 1, d], init: 'trunc_normal' },
    { name: 'pos_embed', shape: [1, n0 + 1, d], init: 'trunc_normal' },
    { name: 'patch_embed.proj.weight', shape: [p * p * cfg.inChannels, d], init: 'patch_kaiming' },
    { name: 'patch_embed.proj.bias', shape: [d], init: 'zeros' },
  ];
  const linear = (name: string, fin: number, fout: number) => {
    specs.push({ name: `${name}.weight`, shape: [fin, fout], init: 'trunc_normal' });
    specs.push({ name: `${name}.bias`, shape: [fout], init: 'zeros' });
  };
  const norm = (name: string, width: number) => {
    specs.push({ name: `${name}.weight`, shape: [width], init: 'ones' });
    specs.push({ name: `${name}.bias`, shape: [width], init: 'zeros' });
  };
  for (let i = 0; i < cfg.depth; i++) {
    const b = `blocks.${i}`;
    norm(`${b}.norm1`, d);
    linear(`${b}.attn.qkv`, d, 3 * d);
    linear(`${b}.attn.proj`, d, d);
    norm(`${b}.norm2`, d);
    linear(`${b}.mlp.fc1`, d, mlp);
    linear(`${b}.mlp.fc2`, mlp, d);
  }
  norm('norm', d);
  linear('fc.fc1', d, cfg.hiddenDim);
  norm('fc.bn1', cfg.hiddenDim);
  linear('fc.fc2', cfg.hiddenDim, cfg.hiddenDim);
  norm('fc.bn2', cfg.hiddenDim);
  linear('fc.fc3', cfg.hiddenDim, cfg.outputDim);
  return specs;
}

/** BatchNorm buffers (not trained, not EMA'd). */
export function bufferSpecs(cfg: VitConfig): ParamSpec[] {
  const out: ParamSpec[] = [];
  for (const bn of ['fc.bn1', 'fc.bn2']) {
    out.push({ name: `${bn}.running_mean`, shape: [cfg.hiddenDim], init: 'zeros' });
    out.push({ name: `${bn}.running_var`, shape: [cfg.hiddenDim], init: 'ones' });
  }
  return out;
}

/** Truncated normal, std 0.02, bounds +-2 absolute (as timm's trunc_normal_). */
function truncNormal(rng: Rng, n: number, std: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let v: number;
    do v = rng.normal() * std;
    while (v < -2 || v > 2);
    out[i] = v;
  }
  return out;
}

function initValues(spec: ParamSpec, cfg: VitConfig, rng: Rng): Float32Array {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  switch (spec.init) {
    case 'zeros':
      return new Float32Array(n);
    case 'ones':
      return new Float32Array(n).fill(1);
    case 'trunc_normal':
      return truncNormal(rng, n, 0.02);
    case 'patch_kaiming': {
      // Kaiming normal, fan_in = C*p*p, ReLU gain (the official init leaves the conv's own init).
      const std = Math.sqrt(2 / (cfg.inChannels * cfg.patchSize * cfg.patchSize));
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = rng.normal() * std;
      return out;
    }
  }
}

/** Plain named arrays: what crosses worker boundaries and goes into files. */
export type { NamedArrays };

/** Fresh random weights (encoder + head) and buffers for `cfg`. */
export function initWeights(cfg: VitConfig, seed: number): { params: NamedArrays; buffers: NamedArrays } {
  const rng = new Rng(seed);
  const params: NamedArrays = {};
  for (const s of paramSpecs(cfg)) params[s.name] = { shape: s.shape, data: initValues(s, cfg, rng) };
  const buffers: NamedArrays = {};
  for (const s of bufferSpecs(cfg)) buffers[s.name] = { shape: s.shape, data: initValues(s, cfg, rng) };
  return { params, buffers };
}

/** Prototypes [K, d] ~ U(-1/sqrt(d), 1/sqrt(d)), unnormalised. */
export function initPrototypes(cfg: VitConfig, seed: number): Float32Array {
  const rng = new Rng(seed);
  const bound = 1 / Math.sqrt(cfg.outputDim);
  const out = new Float32Array(cfg.numPrototypes * cfg.outputDim);
  for (let i = 0; i < out.length; i++) out[i] = rng.range(-bound, bound);
  return out;
}

let instanceCounter = 0;

/**
 * tf.Variables for named arrays (owned by the caller; dispose them). TF.js
 * registers variables by globally unique name, so every call gets its own
 * numbered prefix.
 */
export function toVariables(arrays: NamedArrays, trainable: boolean, prefix: string): Map<string, tf.Variable> {
  const scope = `${prefix}#${instanceCounter++}`;
  const out = new Map<string, tf.Variable>();
  for (const [name, a] of Object.entries(arrays)) {
    const t = tf.tensor(a.data, a.shape, 'float32');
    out.set(name, tf.variable(t, trainable, `${scope}/${name}`));
    t.dispose();
  }
  return out;
}
