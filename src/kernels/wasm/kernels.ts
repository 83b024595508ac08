/**
 * msn-web's own kernels for tfjs's wasm backend (see kernels.c for why).
 *
 * `installWasmKernels()`
 * - replaces the wasm backend's BatchMatMul with one that runs batched and
 *   transposed products in kernels.c's SIMD loop, and leaves plain 2-D
 *   products (XNNPACK, faster) and anything unusual (int dtypes, multi-axis
 *   broadcasting) to tfjs's own kernel;
 * - adds the kernels MsnGelu, MsnGeluGrad, MsnLayerNorm, MsnLayerNormGrad,
 *   MsnAttention, MsnAttentionGrad, MsnColumnSum and MsnWeightGrad (layers.ts's
 *   gelu, layerNorm, attention and linear use them on the wasm backend while
 *   they are installed), MsnAdamW and MsnEma (the optimizer and the EMA),
 *   MsnAddLayerNorm and MsnTokens (vit.ts's inference path: the residual add
 *   with the next LayerNorm, and the CLS and position adds; from infer.c, a
 *   second module beside kernels.c), and allFiniteWasm (validate.ts);
 * - replaces the wasm backend's Identity (a copy) with one that shares the
 *   input's memory, as the cpu backend's does and tfjs-wasm's own Reshape
 *   does: tfjs tensors are immutable, and the tape clones every tensor it
 *   saves for the backward pass (~500 copies of activations per train step).
 * The modules work in place in tfjs's memory: inputs are read and the output
 * written where tfjs keeps them.
 *
 * tfjs's threaded build (crossOriginIsolated pages) keeps its (shared) memory
 * inside its Emscripten glue, where no other module can import it: there
 * tfjs's own kernels run. `wasmKernelStatus()` says whether msn-web's run.
 */
import * as tf from '@tensorflow/tfjs-core';
import { WASM_BASE64 } from './kernels.wasm.js';
import { WASM_BASE64 as INFER_WASM_BASE64 } from './infer.wasm.js';

/** kernels.c's and infer.c's exports (pointers are byte offsets into tfjs's memory). */
interface KernelExports {
  bmm(
    a: number, b: number, c: number, scratch: number, batch: number, m: number, k: number, n: number,
    transposeA: number, transposeB: number, strideA: number, strideB: number,
  ): void;
  gelu_fwd(x: number, y: number, n: number): void;
  gelu_bwd(x: number, dy: number, dx: number, n: number): void;
  layer_norm_fwd(x: number, g: number, b: number, y: number, mean: number, rstd: number, rows: number, d: number, eps: number): void;
  layer_norm_bwd(
    x: number, g: number, mean: number, rstd: number, dy: number, dx: number, dg: number, db: number, rows: number, d: number,
  ): void;
  col_sum(x: number, out: number, rows: number, cols: number): void;
  wgrad(x: number, dy: number, dw: number, rows: number, inDim: number, outDim: number): void;
  adamw(
    p: number, m: number, v: number, g: number, pOut: number, mOut: number, vOut: number, n: number,
    clip: number, keep: number, b1: number, oneMinusB1: number, b2: number, oneMinusB2: number, bc2: number, eps: number, stepSize: number,
  ): void;
  ema(t: number, o: number, out: number, n: number, mom: number, oneMinusMom: number): void;
  add_layer_norm_fwd(x: number, r: number, g: number, b: number, sum: number, y: number, rows: number, d: number, eps: number): void;
  tokens_fwd(emb: number, cls: number, pos: number, out: number, batch: number, n: number, d: number): void;
  all_finite(x: number, n: number): number;
  attn_fwd(qkv: number, out: number, probs: number, batch: number, t: number, heads: number, hd: number, scale: number): void;
  attn_bwd(
    qkv: number, probs: number, dout: number, dqkv: number, scratch: number, batch: number, t: number, heads: number, hd: number, scale: number,
  ): void;
}

export const GELU = 'MsnGelu';
export const GELU_GRAD = 'MsnGeluGrad';
export const LAYER_NORM = 'MsnLayerNorm';
export const LAYER_NORM_GRAD = 'MsnLayerNormGrad';
export const ATTENTION = 'MsnAttention';
export const ATTENTION_GRAD = 'MsnAttentionGrad';
export const COLUMN_SUM = 'MsnColumnSum';
export const WEIGHT_GRAD = 'MsnWeightGrad';
export const ADAMW = 'MsnAdamW';
export const EMA = 'MsnEma';
export const ADD_LAYER_NORM = 'MsnAddLayerNorm';
export const TOKENS = 'MsnTokens';

/** The scalars of one AdamW update, as the composed version (train/optimizer.ts) uses them. */
export interface AdamWAttrs {
  /** Gradient multiplier (the clipping coefficient; 1 = none). */
  clip: number;
  /** Weight-decay factor 1 - lr * wd (1 = no decay). */
  keep: number;
  beta1: number;
  beta2: number;
  /** sqrt(1 - beta2^t). */
  bc2Sqrt: number;
  eps: number;
  /** lr / (1 - beta1^t). */
  stepSize: number;
}

/** The parts of tfjs's BackendWasm this file uses. */
interface WasmBackendLike {
  wasm: { asm: { memory: WebAssembly.Memory }; _malloc(n: number): number; _free(p: number): void };
  dataIdMap: { get(id: object): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  incRef(dataId: object): void;
}

const KERNEL = 'BatchMatMul';
const IDENTITY = 'Identity';
let compiled: Promise<WebAssembly.Module[]> | undefined;
let modules: WebAssembly.Module[] | undefined;
let original: tf.KernelConfig | undefined;
let originalIdentity: tf.KernelConfig | undefined;
const instances = new WeakMap<object, KernelExports>();
let status: { active: boolean; reason: string } = { active: false, reason: 'not installed' };

function decodeBase64(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function memoryOf(backend: WasmBackendLike): WebAssembly.Memory | undefined {
  const memory = backend.wasm?.asm?.memory;
  return memory instanceof WebAssembly.Memory ? memory : undefined;
}

/** kernels.c and infer.c bound to this backend's memory (compiled by installWasmKernels), or undefined. */
function kernelsFor(backend: WasmBackendLike): KernelExports | undefined {
  let k = instances.get(backend.wasm);
  const memory = memoryOf(backend);
  if (k || !modules || !memory) return k;
  k = Object.assign({}, ...modules.map((m) => new WebAssembly.Instance(m, { env: { memory } }).exports)) as KernelExports;
  instances.set(backend.wasm, k);
  return k;
}

const offsetOf = (backend: WasmBackendLike, t: tf.TensorInfo) => backend.dataIdMap.get(t.dataId).memoryOffset;
const sizeOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * `bytes` of scratch from tfjs's heap. Emscripten's malloc answers 0 when the
 * heap cannot grow: writing there would overwrite tfjs's own data, so that is
 * an error (runtime/resources.ts turns it into MsnResourceError).
 */
function scratchOf(backend: WasmBackendLike, kernel: string, bytes: number): number {
  const p = backend.wasm._malloc(Math.max(bytes, 16));
  if (!p) throw new RangeError(`${kernel}: Failed to allocate ${bytes} bytes of wasm memory for its scratch.`);
  return p;
}

function checkFloat(kernel: string, ...ts: tf.TensorInfo[]): void {
  for (const t of ts) if (t.dtype !== 'float32') throw new Error(`${kernel} takes float32 tensors, got ${t.dtype}.`);
}

function geluKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const { x } = args.inputs as { x: tf.TensorInfo };
  const backend = args.backend as WasmBackendLike;
  checkFloat(GELU, x);
  const out = backend.makeOutput([...x.shape], 'float32');
  const n = sizeOf(x.shape);
  if (n > 0) kernelsFor(backend)!.gelu_fwd(offsetOf(backend, x), offsetOf(backend, out), n);
  return out;
}

function geluGradKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const backend = args.backend as WasmBackendLike;
  checkFloat(GELU_GRAD, x, dy);
  if (x.shape.join() !== dy.shape.join()) throw new Error(`${GELU_GRAD}: x [${x.shape}] and dy [${dy.shape}] differ.`);
  const out = backend.makeOutput([...x.shape], 'float32');
  const n = sizeOf(x.shape);
  if (n > 0) kernelsFor(backend)!.gelu_bwd(offsetOf(backend, x), offsetOf(backend, dy), offsetOf(backend, out), n);
  return out;
}

/** Product of an operand's batch axes (all but the last two). */
function flatBatch(shape: number[]): number {
  let n = 1;
  for (let i = 0; i < shape.length - 2; i++) n *= shape[i];
  return n;
}

/** Checks a [rows, d] x with [d] g (and b) and returns rows and d. */
function layerNormShapes(kernel: string, x: tf.TensorInfo, ...vecs: tf.TensorInfo[]): [number, number] {
  checkFloat(kernel, x, ...vecs);
  const d = x.shape[x.shape.length - 1];
  if (x.shape.length !== 2) throw new Error(`${kernel} takes x [rows, d], got [${x.shape}].`);
  for (const v of vecs) if (v.shape.length !== 1 || v.shape[0] !== d) throw new Error(`${kernel}: [${v.shape}] does not match d = ${d}.`);
  return [x.shape[0], d];
}

/** y, mean [rows], rstd [rows] = LayerNorm(x [rows, d]; g, b [d]) over the last axis. */
function layerNormKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo[] {
  const { x, g, b } = args.inputs as { x: tf.TensorInfo; g: tf.TensorInfo; b: tf.TensorInfo };
  const eps = (args.attrs as { eps: number }).eps;
  const backend = args.backend as WasmBackendLike;
  const [rows, d] = layerNormShapes(LAYER_NORM, x, g, b);
  const y = backend.makeOutput([rows, d], 'float32');
  const mean = backend.makeOutput([rows], 'float32');
  const rstd = backend.makeOutput([rows], 'float32');
  const off = (t: tf.TensorInfo) => offsetOf(backend, t);
  if (rows * d > 0) kernelsFor(backend)!.layer_norm_fwd(off(x), off(g), off(b), off(y), off(mean), off(rstd), rows, d, eps);
  return [y, mean, rstd];
}

/** dx [rows, d], dg [d], db [d] of LayerNorm, from what the forward saved. */
function layerNormGradKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo[] {
  const { x, g, mean, rstd, dy } = args.inputs as Record<'x' | 'g' | 'mean' | 'rstd' | 'dy', tf.TensorInfo>;
  const backend = args.backend as WasmBackendLike;
  const [rows, d] = layerNormShapes(LAYER_NORM_GRAD, x, g);
  checkFloat(LAYER_NORM_GRAD, mean, rstd, dy);
  if (dy.shape.join() !== x.shape.join() || mean.shape.join() !== `${rows}` || rstd.shape.join() !== `${rows}`) {
    throw new Error(`${LAYER_NORM_GRAD}: dy [${dy.shape}], mean [${mean.shape}], rstd [${rstd.shape}] do not match x [${x.shape}].`);
  }
  const dx = backend.makeOutput([rows, d], 'float32');
  const dg = backend.makeOutput([d], 'float32');
  const db = backend.makeOutput([d], 'float32');
  const off = (t: tf.TensorInfo) => offsetOf(backend, t);
  if (d > 0) kernelsFor(backend)!.layer_norm_bwd(off(x), off(g), off(mean), off(rstd), off(dy), off(dx), off(dg), off(db), rows, d);
  return [dx, dg, db];
}

/** Checks qkv [B, T, 3D] against `heads` and returns B, T, D and the head width. */
function attentionShapes(kernel: string, qkv: tf.TensorInfo, heads: number): [number, number, number, number] {
  checkFloat(kernel, qkv);
  const [b, t, d3] = qkv.shape;
  if (qkv.shape.length !== 3 || d3 % 3 !== 0 || !Number.isInteger(heads) || heads < 1 || (d3 / 3) % heads !== 0) {
    throw new Error(`${kernel} takes qkv [B, T, 3D] with D a multiple of heads (${heads}), got [${qkv.shape}].`);
  }
  return [b, t, d3 / 3, d3 / 3 / heads];
}

/** out [B, T, D] and probs [B, H, T, T] of multi-head attention on qkv [B, T, 3D] (see kernels.c). */
function attentionKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo[] {
  const { qkv } = args.inputs as { qkv: tf.TensorInfo };
  const { heads, scale } = args.attrs as { heads: number; scale: number };
  const backend = args.backend as WasmBackendLike;
  const [b, t, d, hd] = attentionShapes(ATTENTION, qkv, heads);
  const out = backend.makeOutput([b, t, d], 'float32');
  const probs = backend.makeOutput([b, heads, t, t], 'float32');
  const off = (x: tf.TensorInfo) => offsetOf(backend, x);
  if (b * t * d > 0) kernelsFor(backend)!.attn_fwd(off(qkv), off(out), off(probs), b, t, heads, hd, scale);
  return [out, probs];
}

/** dqkv [B, T, 3D] from qkv, the forward's probs and dy [B, T, D]. */
function attentionGradKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const { qkv, probs, dy } = args.inputs as Record<'qkv' | 'probs' | 'dy', tf.TensorInfo>;
  const { heads, scale } = args.attrs as { heads: number; scale: number };
  const backend = args.backend as WasmBackendLike;
  const [b, t, d, hd] = attentionShapes(ATTENTION_GRAD, qkv, heads);
  checkFloat(ATTENTION_GRAD, probs, dy);
  if (dy.shape.join() !== `${b},${t},${d}` || probs.shape.join() !== `${b},${heads},${t},${t}`) {
    throw new Error(`${ATTENTION_GRAD}: dy [${dy.shape}] or probs [${probs.shape}] do not match qkv [${qkv.shape}] with ${heads} heads.`);
  }
  if (b * t * d === 0) return backend.makeOutput([b, t, 3 * d], 'float32');
  const scratch = scratchOf(backend, ATTENTION_GRAD, t * t * 4); // first: a failure leaves no output behind
  const off = (x: tf.TensorInfo) => offsetOf(backend, x);
  try {
    const dqkv = backend.makeOutput([b, t, 3 * d], 'float32'); // may grow memory: offsets are read after
    kernelsFor(backend)!.attn_bwd(off(qkv), off(probs), off(dy), off(dqkv), scratch, b, t, heads, hd, scale);
    return dqkv;
  } finally {
    backend.wasm._free(scratch);
  }
}

/** out [cols] = the sums of x [rows, cols] over its rows. */
function columnSumKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const { x } = args.inputs as { x: tf.TensorInfo };
  const backend = args.backend as WasmBackendLike;
  checkFloat(COLUMN_SUM, x);
  if (x.shape.length !== 2) throw new Error(`${COLUMN_SUM} takes x [rows, cols], got [${x.shape}].`);
  const [rows, cols] = x.shape;
  const out = backend.makeOutput([cols], 'float32');
  if (cols > 0) kernelsFor(backend)!.col_sum(offsetOf(backend, x), offsetOf(backend, out), rows, cols);
  return out;
}

/** dw [in, out] = x^T dy for x [rows, in], dy [rows, out]: a linear layer's weight gradient. */
function weightGradKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const { x, dy } = args.inputs as Record<'x' | 'dy', tf.TensorInfo>;
  const backend = args.backend as WasmBackendLike;
  checkFloat(WEIGHT_GRAD, x, dy);
  if (x.shape.length !== 2 || dy.shape.length !== 2 || x.shape[0] !== dy.shape[0]) {
    throw new Error(`${WEIGHT_GRAD} takes x [rows, in] and dy [rows, out], got [${x.shape}] and [${dy.shape}].`);
  }
  const out = backend.makeOutput([x.shape[1], dy.shape[1]], 'float32');
  if (x.shape[1] > 0 && dy.shape[1] > 0) {
    kernelsFor(backend)!.wgrad(offsetOf(backend, x), offsetOf(backend, dy), offsetOf(backend, out), x.shape[0], x.shape[1], dy.shape[1]);
  }
  return out;
}

/** Checks that every tensor is float32 and has the shape of the first. */
function sameShapes(kernel: string, ...ts: tf.TensorInfo[]): number {
  checkFloat(kernel, ...ts);
  const shape = ts[0].shape.join();
  for (const t of ts) if (t.shape.join() !== shape) throw new Error(`${kernel}: shapes [${ts.map((x) => x.shape).join('], [')}] differ.`);
  return sizeOf(ts[0].shape);
}

/** New p, m, v of one parameter tensor (see kernels.c adamw). */
function adamwKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo[] {
  const { p, m, v, g } = args.inputs as Record<'p' | 'm' | 'v' | 'g', tf.TensorInfo>;
  const a = args.attrs as unknown as AdamWAttrs;
  const backend = args.backend as WasmBackendLike;
  const n = sameShapes(ADAMW, p, m, v, g);
  const outs = [p, m, v].map((t) => backend.makeOutput([...t.shape], 'float32'));
  const off = (x: tf.TensorInfo) => offsetOf(backend, x);
  // 1 - beta as JavaScript computes it; every scalar becomes a float32 at the call, as a tfjs scalar would.
  if (n > 0) {
    kernelsFor(backend)!.adamw(off(p), off(m), off(v), off(g), off(outs[0]), off(outs[1]), off(outs[2]), n,
      a.clip, a.keep, a.beta1, 1 - a.beta1, a.beta2, 1 - a.beta2, a.bc2Sqrt, a.eps, a.stepSize);
  }
  return outs;
}

/** t * momentum + o * (1 - momentum). */
function emaKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const { t, o } = args.inputs as Record<'t' | 'o', tf.TensorInfo>;
  const { momentum } = args.attrs as { momentum: number };
  const backend = args.backend as WasmBackendLike;
  const n = sameShapes(EMA, t, o);
  const out = backend.makeOutput([...t.shape], 'float32');
  if (n > 0) kernelsFor(backend)!.ema(offsetOf(backend, t), offsetOf(backend, o), offsetOf(backend, out), n, momentum, 1 - momentum);
  return out;
}

/**
 * sum = x + r and y = LayerNorm(sum; g, b) over the last axis, for x and r of
 * one shape [..., d] (the forward pass's residual add and the next norm).
 */
function addLayerNormKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo[] {
  const { x, r, g, b } = args.inputs as Record<'x' | 'r' | 'g' | 'b', tf.TensorInfo>;
  const eps = (args.attrs as { eps: number }).eps;
  const backend = args.backend as WasmBackendLike;
  const n = sameShapes(ADD_LAYER_NORM, x, r);
  const d = x.shape[x.shape.length - 1];
  checkFloat(ADD_LAYER_NORM, g, b);
  if (x.shape.length < 1) throw new Error(`${ADD_LAYER_NORM} takes x [..., d], got a scalar.`);
  for (const v of [g, b]) if (v.shape.length !== 1 || v.shape[0] !== d) throw new Error(`${ADD_LAYER_NORM}: [${v.shape}] does not match d = ${d}.`);
  const sum = backend.makeOutput([...x.shape], 'float32');
  const y = backend.makeOutput([...x.shape], 'float32');
  const off = (t: tf.TensorInfo) => offsetOf(backend, t);
  if (n > 0) kernelsFor(backend)!.add_layer_norm_fwd(off(x), off(r), off(g), off(b), off(sum), off(y), n / d, d, eps);
  return [sum, y];
}

/** out [B, N + 1, D]: CLS + pos[0], then emb [B, N, D] + pos[1..] (cls [.., D], pos [.., N + 1, D]). */
function tokensKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const { emb, cls, pos } = args.inputs as Record<'emb' | 'cls' | 'pos', tf.TensorInfo>;
  const backend = args.backend as WasmBackendLike;
  checkFloat(TOKENS, emb, cls, pos);
  const [b, n, d] = emb.shape;
  if (emb.shape.length !== 3 || sizeOf(cls.shape) !== d || cls.shape[cls.shape.length - 1] !== d ||
    sizeOf(pos.shape) !== (n + 1) * d || pos.shape[pos.shape.length - 1] !== d) {
    throw new Error(`${TOKENS} takes emb [B, N, D], cls [1, 1, D] and pos [1, N + 1, D], got [${emb.shape}], [${cls.shape}], [${pos.shape}].`);
  }
  const out = backend.makeOutput([b, n + 1, d], 'float32');
  if (b * d > 0) kernelsFor(backend)!.tokens_fwd(offsetOf(backend, emb), offsetOf(backend, cls), offsetOf(backend, pos), offsetOf(backend, out), b, n, d);
  return out;
}

/**
 * Whether every element of a float32 tensor is finite, read where the wasm
 * backend keeps it (no kernel, no copy); undefined when msn-web's kernels do
 * not run for the current backend (the caller checks with tfjs ops instead).
 */
export function allFiniteWasm(t: tf.Tensor): boolean | undefined {
  if (!fusedKernelsActive() || t.dtype !== 'float32') return undefined;
  const backend = tf.backend() as unknown as WasmBackendLike;
  const k = kernelsFor(backend);
  const info = backend.dataIdMap.get(t.dataId) as { memoryOffset: number } | undefined; // undefined: held by another backend
  if (!k || !info) return undefined;
  return t.size === 0 || k.all_finite(info.memoryOffset, t.size) === 1;
}

/** The same data under a new tensor: one more reference, no copy (strings: tfjs's own kernel). */
function identityKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const { x } = args.inputs as { x: tf.TensorInfo };
  if (x.dtype === 'string') return (originalIdentity!.kernelFunc as (a: typeof args) => tf.TensorInfo)(args);
  (args.backend as WasmBackendLike).incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}

function batchMatMul(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
  const backend = args.backend as WasmBackendLike;
  const batchA = flatBatch(a.shape);
  const batchB = flatBatch(b.shape);
  const plain2d = batchA === 1 && batchB === 1 && !transposeA && !transposeB;
  const sameOuter =
    a.shape.length === b.shape.length && a.shape.slice(0, -2).every((d, i) => d === b.shape[i]);
  const broadcastOne = (batchA === 1 && a.shape.length === 2) || (batchB === 1 && b.shape.length === 2);
  const fn = a.dtype === 'float32' && b.dtype === 'float32' && !plain2d && (sameOuter || broadcastOne) ? kernelsFor(backend) : undefined;
  if (!fn) return (original!.kernelFunc as (x: typeof args) => tf.TensorInfo)(args);

  const ra = a.shape.length;
  const rb = b.shape.length;
  const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
  const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
  if (k !== kb) {
    throw new Error(`Error in matMul: inner shapes (${k}) and (${kb}) of Tensors with shapes ${a.shape} and ${b.shape} must match.`);
  }
  const outer = (batchA >= batchB ? a : b).shape.slice(0, -2);
  const batch = Math.max(batchA, batchB);
  if (batch * m * n === 0) return backend.makeOutput([...outer, m, n], 'float32');
  const off = (t: tf.TensorInfo) => offsetOf(backend, t);
  const scratch = transposeB ? scratchOf(backend, KERNEL, k * n * 4) : 0; // first: a failure leaves no output behind
  try {
    const out = backend.makeOutput([...outer, m, n], 'float32'); // may grow memory: offsets are read after
    fn.bmm(off(a), off(b), off(out), scratch, batch, m, k, n, transposeA ? 1 : 0, transposeB ? 1 : 0,
      batchA === 1 ? 0 : m * k, batchB === 1 ? 0 : k * n);
    return out;
  } finally {
    if (scratch) backend.wasm._free(scratch);
  }
}

/**
 * Registers msn-web's wasm kernels (idempotent). Call after the wasm backend
 * has started; `useBackend('wasm')` does. Returns whether they run.
 */
export async function installWasmKernels(): Promise<boolean> {
  const backend = tf.findBackend('wasm') as unknown as WasmBackendLike | null;
  const memory = backend ? memoryOf(backend) : undefined;
  if (!backend || !memory) {
    status = {
      active: false,
      reason: !backend
        ? 'the wasm backend has not started'
        : "tfjs's threaded wasm build keeps its memory private (crossOriginIsolated page): tfjs's own kernels run",
    };
    return false;
  }
  try {
    compiled ??= Promise.all([WASM_BASE64, INFER_WASM_BASE64].map((b64) => WebAssembly.compile(decodeBase64(b64) as BufferSource)));
    modules = await compiled;
    kernelsFor(backend);
  } catch (e) {
    // tfjs's own kernel keeps working; say why ours does not run.
    status = { active: false, reason: `bmm.wasm did not link: ${(e as Error).message}` };
    return false;
  }
  if (!original) {
    const current = tf.getKernel(KERNEL, 'wasm');
    if (!current) throw new Error('tfjs-backend-wasm has no BatchMatMul kernel registered.');
    const identity = tf.getKernel(IDENTITY, 'wasm');
    if (!identity) throw new Error('tfjs-backend-wasm has no Identity kernel registered.');
    original = { ...current };
    originalIdentity = { ...identity };
    tf.unregisterKernel(KERNEL, 'wasm');
    tf.registerKernel({ ...original, kernelFunc: batchMatMul as tf.KernelFunc });
    tf.unregisterKernel(IDENTITY, 'wasm');
    tf.registerKernel({ ...originalIdentity, kernelFunc: identityKernel as tf.KernelFunc });
    tf.registerKernel({ kernelName: GELU, backendName: 'wasm', kernelFunc: geluKernel as tf.KernelFunc });
    tf.registerKernel({ kernelName: GELU_GRAD, backendName: 'wasm', kernelFunc: geluGradKernel as tf.KernelFunc });
    tf.registerKernel({ kernelName: LAYER_NORM, backendName: 'wasm', kernelFunc: layerNormKernel as unknown as tf.KernelFunc });
    tf.registerKernel({ kernelName: LAYER_NORM_GRAD, backendName: 'wasm', kernelFunc: layerNormGradKernel as unknown as tf.KernelFunc });
    tf.registerKernel({ kernelName: ATTENTION, backendName: 'wasm', kernelFunc: attentionKernel as unknown as tf.KernelFunc });
    tf.registerKernel({ kernelName: ATTENTION_GRAD, backendName: 'wasm', kernelFunc: attentionGradKernel as unknown as tf.KernelFunc });
    tf.registerKernel({ kernelName: COLUMN_SUM, backendName: 'wasm', kernelFunc: columnSumKernel as tf.KernelFunc });
    tf.registerKernel({ kernelName: WEIGHT_GRAD, backendName: 'wasm', kernelFunc: weightGradKernel as tf.KernelFunc });
    tf.registerKernel({ kernelName: ADAMW, backendName: 'wasm', kernelFunc: adamwKernel as unknown as tf.KernelFunc });
    tf.registerKernel({ kernelName: EMA, backendName: 'wasm', kernelFunc: emaKernel as unknown as tf.KernelFunc });
    tf.registerKernel({ kernelName: ADD_LAYER_NORM, backendName: 'wasm', kernelFunc: addLayerNormKernel as unknown as tf.KernelFunc });
    tf.registerKernel({ kernelName: TOKENS, backendName: 'wasm', kernelFunc: tokensKernel as tf.KernelFunc });
  }
  status = { active: true, reason: 'kernels.wasm' };
  return true;
}

/** Puts tfjs's own BatchMatMul back and removes msn-web's other kernels (benchmarks compare both). */
export function uninstallWasmKernels(): void {
  if (!original) return;
  tf.unregisterKernel(KERNEL, 'wasm');
  tf.unregisterKernel(GELU, 'wasm');
  tf.unregisterKernel(GELU_GRAD, 'wasm');
  tf.unregisterKernel(LAYER_NORM, 'wasm');
  tf.unregisterKernel(LAYER_NORM_GRAD, 'wasm');
  tf.unregisterKernel(ATTENTION, 'wasm');
  tf.unregisterKernel(ATTENTION_GRAD, 'wasm');
  tf.unregisterKernel(COLUMN_SUM, 'wasm');
  tf.unregisterKernel(WEIGHT_GRAD, 'wasm');
  tf.unregisterKernel(ADAMW, 'wasm');
  tf.unregisterKernel(EMA, 'wasm');
  tf.unregisterKernel(ADD_LAYER_NORM, 'wasm');
  tf.unregisterKernel(TOKENS, 'wasm');
  tf.registerKernel(original);
  tf.unregisterKernel(IDENTITY, 'wasm');
  tf.registerKernel(originalIdentity!);
  originalIdentity = undefined;
  original = undefined;
  status = { active: false, reason: 'uninstalled' };
}

/** Whether msn-web's wasm kernels run, and why not if they do not. */
export function wasmKernelStatus(): { active: boolean; reason: string } {
  return { ...status };
}

/** Whether the fused GELU, LayerNorm and attention kernels run for the current backend (layers.ts asks before each call). */
export function fusedKernelsActive(): boolean {
  return status.active && tf.getBackend() === 'wasm';
}
