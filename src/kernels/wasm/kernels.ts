/**
 * msn-web's own kernels for tfjs's wasm backend (see bmm.c for why).
 *
 * `installWasmKernels()` replaces the wasm backend's BatchMatMul with one that
 * runs batched and transposed products in bmm.c's SIMD loop, and leaves plain
 * 2-D products (XNNPACK, faster) and anything unusual (int dtypes, multi-axis
 * broadcasting) to tfjs's own kernel. The module works in place in tfjs's
 * memory: inputs are read and the output written where tfjs keeps them.
 *
 * Not installed when tfjs runs its threaded build (a crossOriginIsolated page):
 * that memory is shared and bmm.wasm is built for unshared memory, so tfjs's
 * kernel stays; `wasmKernelStatus()` says which one runs.
 */
import * as tf from '@tensorflow/tfjs-core';
import { WASM_BASE64 } from './bmm.wasm.js';

type BmmFn = (
  a: number, b: number, c: number, scratch: number, batch: number, m: number, k: number, n: number,
  transposeA: number, transposeB: number, strideA: number, strideB: number,
) => void;

/** The parts of tfjs's BackendWasm this file uses. */
interface WasmBackendLike {
  wasm: { asm: { memory: WebAssembly.Memory }; _malloc(n: number): number; _free(p: number): void };
  dataIdMap: { get(id: object): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}

const KERNEL = 'BatchMatMul';
let compiled: Promise<WebAssembly.Module> | undefined;
let module: WebAssembly.Module | undefined;
let original: tf.KernelConfig | undefined;
const instances = new WeakMap<object, BmmFn>();
let status: { active: boolean; reason: string } = { active: false, reason: 'not installed' };

function decodeBase64(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The bmm function bound to this backend's memory, or undefined where it cannot link. */
function bmmFor(backend: WasmBackendLike): BmmFn | undefined {
  let fn = instances.get(backend.wasm);
  if (fn || !module) return fn;
  const memory = backend.wasm.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory) || memory.buffer instanceof (globalThis.SharedArrayBuffer ?? class {})) return undefined;
  const inst = new WebAssembly.Instance(module, { env: { memory } });
  fn = inst.exports.bmm as BmmFn;
  instances.set(backend.wasm, fn);
  return fn;
}

/** Product of an operand's batch axes (all but the last two). */
function flatBatch(shape: number[]): number {
  let n = 1;
  for (let i = 0; i < shape.length - 2; i++) n *= shape[i];
  return n;
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
  const fn = a.dtype === 'float32' && b.dtype === 'float32' && !plain2d && (sameOuter || broadcastOne) ? bmmFor(backend) : undefined;
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
  const out = backend.makeOutput([...outer, m, n], 'float32'); // may grow memory: offsets are read after
  if (batch * m * n === 0) return out;
  const off = (t: tf.TensorInfo) => backend.dataIdMap.get(t.dataId).memoryOffset;
  const scratch = transposeB ? backend.wasm._malloc(k * n * 4) : 0;
  try {
    fn(off(a), off(b), off(out), scratch, batch, m, k, n, transposeA ? 1 : 0, transposeB ? 1 : 0,
      batchA === 1 ? 0 : m * k, batchB === 1 ? 0 : k * n);
  } finally {
    if (scratch) backend.wasm._free(scratch);
  }
  return out;
}

/**
 * Registers msn-web's wasm kernels (idempotent). Call after the wasm backend
 * has started; `useBackend('wasm')` does. Returns whether they run.
 */
export async function installWasmKernels(): Promise<boolean> {
  compiled ??= WebAssembly.compile(decodeBase64(WASM_BASE64) as BufferSource);
  module = await compiled;
  const backend = tf.findBackend('wasm') as unknown as WasmBackendLike | null;
  if (!backend || !bmmFor(backend)) {
    status = { active: false, reason: backend ? "tfjs's wasm memory is shared (threaded build)" : 'the wasm backend has not started' };
    return false;
  }
  if (!original) {
    const current = tf.getKernel(KERNEL, 'wasm');
    if (!current) throw new Error('tfjs-backend-wasm has no BatchMatMul kernel registered.');
    original = { ...current };
    tf.unregisterKernel(KERNEL, 'wasm');
    tf.registerKernel({ ...original, kernelFunc: batchMatMul as tf.KernelFunc });
  }
  status = { active: true, reason: 'bmm.wasm' };
  return true;
}

/** Puts tfjs's own BatchMatMul back (benchmarks compare both). */
export function uninstallWasmKernels(): void {
  if (!original) return;
  tf.unregisterKernel(KERNEL, 'wasm');
  tf.registerKernel(original);
  original = undefined;
  status = { active: false, reason: 'uninstalled' };
}

/** Whether msn-web's wasm kernels run, and why not if they do not. */
export function wasmKernelStatus(): { active: boolean; reason: string } {
  return { ...status };
}
