/**
 * The MSN Vision Transformer (DeiT-style, pre-norm) with its projection head.
 * Masking is an explicit input (kept patch indices), never hidden randomness.
 *
 * Shapes: B batch, H x W image, C channels, p patch, N = (H/p)(W/p) patches,
 * T tokens (N + 1 with CLS, fewer when masked), D width, h heads, hd = D / h.
 */
import * as tf from '@tensorflow/tfjs-core';
import { MsnDisposedError, MsnShapeError } from '../errors.js';
import { LAYER_NORM_EPS, VitConfig, baseGrid, validateConfig } from './config.js';
import { attention, batchNorm, gelu, layerNorm, linear } from './layers.js';
import { ADD_LAYER_NORM, ATTENTION, GELU, LAYER_NORM, TOKENS, fusedKernelsActive } from '../kernels/wasm/kernels.js';
import { NamedArrays, bufferSpecs, initWeights, paramSpecs, toVariables } from './params.js';
import { interpolatePosEmbed } from './pos-embed.js';
import { readArrays, readArraysSync } from '../util/readback.js';
import { assertImages, checkKeepIndices } from './validate.js';

export type BnMode = 'train' | 'eval';

/** One resolution group of a multi-crop call: images share H x W and BatchNorm statistics. */
export interface ViewGroup {
  images: tf.Tensor4D;
  /** Kept patch indices (row-major over the grid, CLS excluded and always kept). */
  keepPatches?: ArrayLike<number>;
}

export interface EncodeOutput {
  /** Last-block CLS before the final norm [B, D]: the evaluation feature. */
  clsPre: tf.Tensor2D;
  /** CLS after the final LayerNorm [B, D]. */
  clsNorm: tf.Tensor2D;
}

export class VisionTransformer {
  readonly cfg: VitConfig;
  readonly params: Map<string, tf.Variable>;
  readonly buffers: Map<string, tf.Variable>;
  /** Updates of each BatchNorm, as PyTorch's num_batches_tracked. */
  numBatchesTracked = 0;
  private disposed = false;

  private constructor(cfg: VitConfig, weights: { params: NamedArrays; buffers: NamedArrays }) {
    this.cfg = validateConfig(cfg);
    checkWeights(this.cfg, weights);
    this.params = toVariables(weights.params, true, 'msn');
    this.buffers = toVariables(weights.buffers, false, 'msn-buf');
  }

  /** Random init with the official scheme (seeded), or given weights in our layout. */
  static create(cfg: VitConfig, init: { seed: number } | { params: NamedArrays; buffers: NamedArrays }): VisionTransformer {
    const weights = 'seed' in init ? initWeights(validateConfig(cfg), init.seed) : init;
    return new VisionTransformer(cfg, weights);
  }

  p(name: string): tf.Variable {
    const v = this.params.get(name) ?? this.buffers.get(name);
    if (!v) throw new Error(`internal: no parameter '${name}'`);
    return v;
  }

  trainableVariables(): tf.Variable[] {
    return [...this.params.values()];
  }

  /** The patch grid of x and x cropped to it: leftover pixels are dropped, as the stride-p convolution does. */
  private cropToGrid(x: tf.Tensor4D): { cropped: tf.Tensor4D; gh: number; gw: number } {
    const p = this.cfg.patchSize;
    const [b, h, w, c] = x.shape;
    const gh = Math.floor(h / p);
    const gw = Math.floor(w / p);
    const cropped = gh * p === h && gw * p === w ? x : tf.slice(x, [0, 0, 0, 0], [b, gh * p, gw * p, c]);
    return { cropped, gh, gw };
  }

  /** Patch embedding: [B, H, W, C] -> [B, N, D] with the grid side(s). */
  private patchEmbed(x: tf.Tensor4D): { tokens: tf.Tensor3D; gh: number; gw: number } {
    const p = this.cfg.patchSize;
    const [b, , , c] = x.shape;
    const { cropped, gh, gw } = this.cropToGrid(x);
    const rows = tf.reshape(cropped, [b * gh, p, gw, p * c]); // [B*gh, p(row), gw, p(col)*C]
    const patches = tf.transpose(rows, [0, 2, 1, 3]); // [B*gh, gw, p(row), p(col)*C]
    const flat = tf.reshape(patches, [b * gh * gw, p * p * c]); // rows over (row, col, C)
    const emb = linear(flat, this.p('patch_embed.proj.weight'), this.p('patch_embed.proj.bias'));
    return { tokens: tf.reshape(emb, [b, gh * gw, this.cfg.embedDim]), gh, gw };
  }

  private positionEmbedding(gh: number, gw: number): tf.Tensor3D {
    const pos = this.p('pos_embed') as tf.Tensor3D;
    const g0 = baseGrid(this.cfg);
    if (gh === g0 && gw === g0) return pos;
    if (gh !== gw) {
      throw new MsnShapeError(
        `A ${gh}x${gw} patch grid needs resized position embeddings, which are defined for square grids only; use square images.`,
      );
    }
    return interpolatePosEmbed(pos, gh * gw);
  }

  /** Multi-head self-attention on x [B, T, D] (already normalised). */
  private attention(x: tf.Tensor3D, prefix: string): tf.Tensor3D {
    const [b, t, d] = x.shape;
    const qkv = linear(tf.reshape(x, [b * t, d]), this.p(`${prefix}.qkv.weight`), this.p(`${prefix}.qkv.bias`)); // [B*T, 3D]
    const merged = attention(qkv, b, t, this.cfg.numHeads); // [B*T, D]
    const out = linear(merged, this.p(`${prefix}.proj.weight`), this.p(`${prefix}.proj.bias`));
    return tf.reshape(out, [b, t, d]);
  }

  private block(x: tf.Tensor3D, i: number): tf.Tensor3D {
    const pre = `blocks.${i}`;
    const [b, t, d] = x.shape;
    const n1 = layerNorm(x, this.p(`${pre}.norm1.weight`), this.p(`${pre}.norm1.bias`), LAYER_NORM_EPS);
    x = tf.add(x, this.attention(n1, `${pre}.attn`));
    const n2 = layerNorm(x, this.p(`${pre}.norm2.weight`), this.p(`${pre}.norm2.bias`), LAYER_NORM_EPS);
    const hid = gelu(linear(tf.reshape(n2, [b * t, d]), this.p(`${pre}.mlp.fc1.weight`), this.p(`${pre}.mlp.fc1.bias`)));
    const out = linear(hid, this.p(`${pre}.mlp.fc2.weight`), this.p(`${pre}.mlp.fc2.bias`));
    return tf.add(x, tf.reshape(out, [b, t, d]));
  }

  /**
   * Runs the trunk and returns the CLS token before and after the final norm.
   * The caller owns the results (call inside tf.tidy or dispose them).
   * `checkFinite` (see validate.ts) reads one flag back synchronously; it is
   * off by default on WebGPU, where callers check their arrays before upload.
   */
  encode(images: tf.Tensor4D, opts: { keepPatches?: ArrayLike<number>; checkFinite?: boolean } = {}): EncodeOutput {
    this.assertAlive();
    assertImages(images, this.cfg, 'images', opts.checkFinite);
    if (opts.keepPatches === undefined && fusedKernelsActive() && !tf.engine().isTapeOn()) return this.encodeInference(images);
    return tf.tidy(() => {
      const { tokens, gh, gw } = this.patchEmbed(images);
      const [b, n, d] = tokens.shape;
      const keep = opts.keepPatches === undefined ? undefined : checkKeepIndices(opts.keepPatches, n);
      // Broadcast by an add, not tf.tile: Tile's gradient is B slices and B adds (one per image), this one is one sum.
      const cls = tf.add(tf.zeros([b, 1, d]), this.p('cls_token')); // [B, 1, D]
      let x = tf.add(tf.concat([cls, tokens], 1), this.positionEmbedding(gh, gw)) as tf.Tensor3D; // [B, N+1, D]
      if (keep) x = selectTokens(x, keep);
      // One scope per block: a block's temporaries are freed when it ends, not
      // when the whole trunk does (ViT-Tiny at batch 32 peaked at 3.7 GB of a
      // 4 GB wasm heap otherwise). Gradients are unaffected: the tape keeps
      // its own clones of what backprop needs.
      for (let i = 0; i < this.cfg.depth; i++) {
        const prev = x;
        x = tf.tidy(() => this.block(prev, i));
        prev.dispose();
      }
      const clsPre = tf.reshape(tf.slice(x, [0, 0, 0], [b, 1, d]), [b, d]) as tf.Tensor2D;
      const clsNorm = layerNorm(clsPre, this.p('norm.weight'), this.p('norm.bias'), LAYER_NORM_EPS);
      return { clsPre, clsNorm };
    });
  }

  /**
   * encode() without masking when nothing records gradients and msn-web's wasm
   * kernels run: the same kernels on the same data as the path above, so the
   * same bits, in far fewer kernel calls (38 instead of 146 plus 51 scopes for
   * the shipped model; at batch 1 the calls, not the arithmetic, are most of the time):
   * the products run tfjs's _FusedMatMul directly on [1, rows, in] activations
   * (no customGrad scope, no op's reshapes), LayerNorm, attention and GELU
   * their kernels without the reshapes to 2-D, each residual add is fused with
   * the LayerNorm that follows it (MsnAddLayerNorm), and the CLS and position
   * adds are one kernel (MsnTokens). Without a tape nothing needs the
   * gradient scopes of the general path.
   */
  private encodeInference(images: tf.Tensor4D): EncodeOutput {
    const cfg = this.cfg;
    const eps = LAYER_NORM_EPS;
    const heads = cfg.numHeads;
    const scale = 1 / Math.sqrt(cfg.embedDim / heads); // as layers.ts's attention
    const run = (kernel: string, inputs: Record<string, tf.TensorInfo>, attrs: tf.NamedAttrMap = {}) =>
      tf.engine().runKernel(kernel, inputs as tf.NamedTensorMap, attrs) as tf.Tensor | tf.Tensor[];
    /**
     * t's data under another shape, as a kernel input only (what a Reshape
     * kernel would make, without making a tensor): valid while t lives.
     */
    const view = (t: tf.TensorInfo, shape: number[]): tf.TensorInfo => ({ dataId: t.dataId, shape, dtype: t.dtype });
    /** x [rows, in] @ w + bias: [1, rows, out]. */
    const product = (x: tf.TensorInfo, rows: number, name: string) => {
      const w = this.p(`${name}.weight`);
      return run('_FusedMatMul', { a: view(x, [1, rows, w.shape[0]]), b: view(w, [1, ...w.shape]), bias: this.p(`${name}.bias`) }, {
        transposeA: false, transposeB: false, activation: 'linear', leakyreluAlpha: 0.2,
      }) as tf.Tensor3D;
    };
    const norm = (x: tf.TensorInfo, name: string) => {
      const [y, mean, rstd] = run(LAYER_NORM, { x, g: this.p(`${name}.weight`), b: this.p(`${name}.bias`) }, { eps }) as tf.Tensor[];
      mean.dispose();
      rstd.dispose();
      return y;
    };
    /** [x + r, LayerNorm(x + r)] with the norm `name`, both in x's shape. */
    const addNorm = (x: tf.Tensor, r: tf.Tensor, name: string) =>
      run(ADD_LAYER_NORM, { x, r: view(r, x.shape), g: this.p(`${name}.weight`), b: this.p(`${name}.bias`) }, { eps }) as tf.Tensor[];
    return tf.tidy(() => {
      const b = images.shape[0];
      const d = cfg.embedDim;
      // patchEmbed() with views for its reshapes (the transpose reads one, the product another).
      const p = cfg.patchSize;
      const c = images.shape[3];
      const { cropped, gh, gw } = this.cropToGrid(images);
      const patches = run('Transpose', { x: view(cropped, [b * gh, p, gw, p * c]) }, { perm: [0, 2, 1, 3] }) as tf.Tensor;
      const n = gh * gw;
      const t = n + 1;
      const rows = b * t;
      const emb = product(patches, b * n, 'patch_embed.proj');
      // The stream x [B, T, D] and the next block's normalised input.
      let x = run(TOKENS, { emb: view(emb, [b, n, d]), cls: this.p('cls_token'), pos: this.positionEmbedding(gh, gw) }) as tf.Tensor;
      let normed = norm(view(x, [rows, d]), 'blocks.0.norm1');
      for (let i = 0; i < cfg.depth; i++) {
        const [prevX, prevNormed] = [x, normed];
        [x, normed] = tf.tidy(() => {
          const pre = `blocks.${i}`;
          const qkv = product(prevNormed, rows, `${pre}.attn.qkv`);
          const [att] = run(ATTENTION, { qkv: view(qkv, [b, t, 3 * d]) }, { heads, scale }) as tf.Tensor[];
          const [x1, n2] = addNorm(prevX, product(att, rows, `${pre}.attn.proj`), `${pre}.norm2`);
          const hid = run(GELU, { x: product(n2, rows, `${pre}.mlp.fc1`) }) as tf.Tensor;
          const out = product(hid, rows, `${pre}.mlp.fc2`);
          if (i + 1 < cfg.depth) return addNorm(x1, out, `blocks.${i + 1}.norm1`);
          // The last block: no norm follows (x1 is freed with the outer scope's other tensors).
          return [run('Add', { a: x1, b: view(out, x1.shape) }) as tf.Tensor, x1];
        });
        prevX.dispose();
        prevNormed.dispose();
      }
      const clsPre = run('Slice', { x: view(x, [b, t * d]) }, { begin: [0, 0], size: [b, d] }) as tf.Tensor2D; // each image's first row
      const clsNorm = norm(clsPre, 'norm') as tf.Tensor2D;
      return { clsPre, clsNorm };
    });
  }

  /**
   * Projection head fc1 -> bn1 -> GELU -> fc2 -> bn2 -> GELU -> fc3 on [B, D].
   * In train mode with `updateStats`, the BatchNorm running stats move.
   */
  head(cls: tf.Tensor2D, mode: BnMode, updateStats = mode === 'train'): tf.Tensor2D {
    this.assertAlive();
    if (mode === 'train' && cls.shape[0] < 2) {
      throw new MsnShapeError('The projection head in train mode needs at least 2 samples per group (BatchNorm statistics).');
    }
    const out = tf.tidy(() => {
      const bn = (x: tf.Tensor2D, name: string) =>
        batchNorm(
          x, this.p(`${name}.weight`), this.p(`${name}.bias`),
          this.p(`${name}.running_mean`), this.p(`${name}.running_var`), mode, updateStats,
        );
      let x = linear(cls, this.p('fc.fc1.weight'), this.p('fc.fc1.bias'));
      x = gelu(bn(x, 'fc.bn1'));
      x = linear(x, this.p('fc.fc2.weight'), this.p('fc.fc2.bias'));
      x = gelu(bn(x, 'fc.bn2'));
      return linear(x, this.p('fc.fc3.weight'), this.p('fc.fc3.bias'));
    });
    if (mode === 'train' && updateStats) this.numBatchesTracked++;
    return out;
  }

  /**
   * The multi-crop forward: each group runs trunk + head separately (so
   * BatchNorm statistics are per group) and the outputs are concatenated in
   * group order: [sum of group batches, outputDim].
   */
  forward(groups: ViewGroup[], opts: { bnMode: BnMode; updateStats?: boolean; checkFinite?: boolean }): tf.Tensor2D {
    if (groups.length === 0) throw new MsnShapeError('forward() needs at least one view group.');
    return tf.tidy(() => {
      const outs = groups.map((g) => {
        const { clsNorm } = this.encode(g.images, { keepPatches: g.keepPatches, checkFinite: opts.checkFinite });
        return this.head(clsNorm, opts.bnMode, opts.updateStats ?? opts.bnMode === 'train');
      });
      return outs.length === 1 ? outs[0] : (tf.concat(outs, 0) as tf.Tensor2D);
    });
  }

  /** Weights and buffers as plain arrays (our layout), read synchronously (cpu/wasm; see util/readback). */
  getWeights(): { params: NamedArrays; buffers: NamedArrays } {
    this.assertAlive();
    return { params: readArraysSync(Object.fromEntries(this.params)), buffers: readArraysSync(Object.fromEntries(this.buffers)) };
  }

  /** getWeights() with asynchronous reads: works on every backend, WebGPU included. */
  async readWeights(): Promise<{ params: NamedArrays; buffers: NamedArrays }> {
    this.assertAlive();
    const [params, buffers] = await Promise.all([readArrays(Object.fromEntries(this.params)), readArrays(Object.fromEntries(this.buffers))]);
    return { params, buffers };
  }

  /** Overwrites all weights and buffers (shapes are checked). */
  setWeights(weights: { params: NamedArrays; buffers: NamedArrays }): void {
    this.assertAlive();
    checkWeights(this.cfg, weights);
    const load = (m: Map<string, tf.Variable>, src: NamedArrays) => {
      for (const [k, v] of m) tf.tidy(() => v.assign(tf.tensor(src[k].data, v.shape, 'float32')));
    };
    load(this.params, weights.params);
    load(this.buffers, weights.buffers);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const v of this.params.values()) v.dispose();
    for (const v of this.buffers.values()) v.dispose();
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  private assertAlive(): void {
    if (this.disposed) throw new MsnDisposedError('This model has been disposed; create a new one.');
  }
}

/**
 * Keeps tokens [0] + (keep + 1) of x [B, T, D], in the given order. Written as
 * a one-hot selection matMul because the wasm backend has no gather gradient
 * (UnsortedSegmentSum): [Tk, T] @ [T, B*D].
 */
function selectTokens(x: tf.Tensor3D, keep: Int32Array): tf.Tensor3D {
  const [b, t, d] = x.shape;
  const tk = keep.length + 1;
  const sel = new Float32Array(tk * t);
  sel[0] = 1; // CLS
  for (let i = 0; i < keep.length; i++) sel[(i + 1) * t + keep[i] + 1] = 1;
  const flat = tf.reshape(tf.transpose(x, [1, 0, 2]), [t, b * d]); // [T, B*D]
  const picked = tf.matMul(tf.tensor2d(sel, [tk, t]), flat); // [Tk, B*D]
  return tf.transpose(tf.reshape(picked, [tk, b, d]), [1, 0, 2]); // [B, Tk, D]
}

function checkWeights(cfg: VitConfig, w: { params: NamedArrays; buffers: NamedArrays }): void {
  const check = (specs: { name: string; shape: number[] }[], src: NamedArrays, kind: string) => {
    for (const s of specs) {
      const a = src[s.name];
      if (!a) throw new MsnShapeError(`Missing ${kind} '${s.name}' for this config.`);
      const n = s.shape.reduce((x, y) => x * y, 1);
      if (a.data.length !== n || a.shape.join(',') !== s.shape.join(',')) {
        throw new MsnShapeError(`${kind} '${s.name}': expected shape [${s.shape}], got [${a.shape}] (${a.data.length} values).`);
      }
    }
  };
  check(paramSpecs(cfg), w.params, 'parameter');
  check(bufferSpecs(cfg), w.buffers, 'buffer');
}
