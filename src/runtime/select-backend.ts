/**
 * Backend selection in one place. 'auto' tries, in order:
 *   1. WebGPU: navigator.gpu, then a hardware adapter (software ones such as
 *      SwiftShader are slower than wasm), then tfjs-backend-webgpu
 *      (imported only now, so it is registered only where WebGPU exists),
 *      then a probe: a tiny ViT forward AND backward pass whose outputs and
 *      gradients must match the cpu backend's within PROBE_TOLERANCE.
 *   2. wasm: SIMD when WebAssembly supports it; the threaded binary when the
 *      page is crossOriginIsolated (COOP/COEP headers).
 *   3. cpu.
 * The reason each backend was rejected (or not tried) is kept for
 * capabilities(). An explicit backend that cannot start throws
 * MsnBackendError; it never falls back silently.
 */
import * as tf from '@tensorflow/tfjs-core';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { MsnBackendError, MsnConfigError } from '../errors.js';
import { batchNorm, gelu, layerNorm, linear } from '../model/layers.js';
import type { BackendName, BackendRequest, BackendStatus, Capabilities } from './api.js';
import { setWasmDirectory, setWasmFiles, useBackend, type WasmFiles } from './backend.js';

/**
 * Largest accepted probe error: max |gpu - cpu| / (max |cpu| + PROBE_ATOL)
 * per tensor (the absolute floor keeps gradients that are mathematically ~0,
 * e.g. of a bias before a train-mode BatchNorm, from dividing noise by
 * noise). Float32 with another summation order differs from the cpu backend
 * by ~1e-6 here (SwiftShader); 1e-3 still rejects a broken kernel (off by
 * O(1)) and leaves room for GPUs with fast-math exp/erf.
 */
export const PROBE_TOLERANCE = 1e-3;
export const PROBE_ATOL = 1e-3;

export interface SelectOptions {
  /** Folder (ending in '/') with the tfjs .wasm files; Node finds the installed ones itself. */
  wasmPath?: string;
  /** Otherwise each .wasm file's URL (the worker bundle's own, so bundlers emit them); wasmPath wins. */
  wasmFiles?: WasmFiles;
  probeTolerance?: number;
}

/** What selection decided: the backend part of the engine's capabilities. */
export type BackendSelection = Pick<Capabilities, 'backend' | 'requested' | 'backends' | 'wasm' | 'webgpu'>;

const ORDER: BackendName[] = ['webgpu', 'wasm', 'cpu'];

/** Starts the requested backend (or the first that works for 'auto'); see the module comment. */
export async function selectBackend(request: BackendRequest, opts: SelectOptions = {}): Promise<BackendSelection> {
  if (!['auto', ...ORDER].includes(request)) {
    throw new MsnConfigError(`Unknown backend '${String(request)}': expected 'auto', 'webgpu', 'wasm' or 'cpu'.`);
  }
  const candidates = request === 'auto' ? ORDER : [request as BackendName];
  const backends = Object.fromEntries(
    ORDER.map((b) => [b, { status: 'not-tried', reason: request === 'auto' ? undefined : `not requested (backend: '${request}')` }]),
  ) as Record<BackendName, BackendStatus>;
  for (const name of candidates) {
    try {
      const info = await start(name, opts, request === 'auto');
      backends[name] = { status: 'chosen' };
      for (const other of ORDER) {
        if (backends[other].status === 'not-tried' && !backends[other].reason) backends[other].reason = `'${name}' was chosen first`;
      }
      return { backend: name, requested: request, backends, ...info };
    } catch (e) {
      const reason = (e as Error).message;
      backends[name] = { status: 'rejected', reason };
      if (request !== 'auto') {
        throw new MsnBackendError(`The '${name}' backend cannot start: ${reason} Use backend: 'auto' to fall back to another backend.`);
      }
    }
  }
  const why = ORDER.map((b) => `${b}: ${backends[b].reason}`).join('; ');
  throw new MsnBackendError(`No backend could start (${why}).`);
}

async function start(name: BackendName, opts: SelectOptions, auto: boolean): Promise<Omit<BackendSelection, 'backend' | 'requested' | 'backends'>> {
  if (name === 'cpu') {
    await useBackend('cpu');
    return {};
  }
  if (name === 'wasm') return { wasm: await startWasm(opts.wasmPath, opts.wasmFiles) };
  return { webgpu: await startWebGpu(opts.probeTolerance ?? PROBE_TOLERANCE, auto) };
}

async function startWasm(wasmPath: string | undefined, wasmFiles: WasmFiles | undefined): Promise<{ simd: boolean; threads: boolean; numThreads: number }> {
  if (typeof WebAssembly === 'undefined') throw new Error('WebAssembly is not available here.');
  if (wasmPath) setWasmDirectory(wasmPath.endsWith('/') ? wasmPath : wasmPath + '/');
  else if (wasmFiles) setWasmFiles(wasmFiles);
  await useBackend('wasm');
  const simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
  const threads = Boolean(await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'));
  return { simd, threads, numThreads: getThreadsCount() };
}

interface GpuLike {
  requestAdapter(o?: unknown): Promise<null | { info?: Record<string, string>; isFallbackAdapter?: boolean }>;
}

/** Adapters that run shaders on the CPU (Chromium's SwiftShader, Mesa's llvmpipe/lavapipe). */
const SOFTWARE_ADAPTER = /swiftshader|llvmpipe|lavapipe|software/i;

async function startWebGpu(tolerance: number, auto: boolean): Promise<{ adapter: string; probeMaxError: number }> {
  const gpu = (globalThis as { navigator?: { gpu?: GpuLike } }).navigator?.gpu;
  if (!gpu) throw new Error('navigator.gpu is not available (no WebGPU in this browser, context or runtime).');
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new Error('navigator.gpu.requestAdapter() returned null (WebGPU is disabled or there is no usable adapter).');
  const info = adapter.info ?? {};
  const described = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ') || 'unknown adapter';
  // A CPU-emulated GPU is far slower than wasm (an MSN step ~80x on SwiftShader:
  // bench/train-step.ts, README), so 'auto' passes it by; explicit 'webgpu' uses it.
  if (auto && (adapter.isFallbackAdapter || SOFTWARE_ADAPTER.test(described))) {
    throw new Error(`the adapter (${described}) is a software (CPU-emulated) one, slower than wasm; pass backend: 'webgpu' to use it anyway.`);
  }
  await import('@tensorflow/tfjs-backend-webgpu'); // registers 'webgpu' on import
  let ok = false;
  try {
    ok = await tf.setBackend('webgpu');
    await tf.ready();
  } catch (e) {
    throw new Error(`tfjs-backend-webgpu failed to start on ${described}: ${(e as Error).message}`);
  }
  if (!ok || tf.getBackend() !== 'webgpu') throw new Error(`tfjs-backend-webgpu failed to start on ${described}.`);
  let maxErr: number;
  let detail = '';
  try {
    ({ worst: maxErr, detail } = await compareWithCpu());
  } catch (e) {
    tf.removeBackend('webgpu');
    throw new Error(`the forward/backward probe failed on ${described}: ${(e as Error).message}`);
  }
  if (!(maxErr <= tolerance)) {
    tf.removeBackend('webgpu');
    throw new Error(`the forward/backward probe on ${described} differs from the cpu backend by ${maxErr.toExponential(2)} (relative), more than ${tolerance} (per output: ${detail}).`);
  }
  await tf.setBackend('webgpu');
  watchDevice();
  // No dataSync() probe: the engine reads everything asynchronously
  // (util/readback.ts), and a failed synchronous read can lose the device.
  return { adapter: described, probeMaxError: maxErr };
}

interface DeviceLike {
  addEventListener?(type: 'uncapturederror', cb: (e: { error?: { message?: string } }) => void): void;
  lost?: Promise<{ message?: string; reason?: string }>;
}

let gpuErrors: string[] = [];

/**
 * tfjs-backend-webgpu does not check for WebGPU errors: a shader over the
 * adapter's limits or a lost device only shows up as wrong numbers (often
 * zeros). The device's error events are collected here, and the engine turns
 * them into MsnBackendError after each call (checkGpuErrors).
 */
const watched = new WeakSet<object>();

function watchDevice(): void {
  const device = (tf.backend() as unknown as { device?: DeviceLike }).device;
  if (!device || watched.has(device)) return; // one listener per device, however often selection runs
  watched.add(device);
  device.addEventListener?.('uncapturederror', (e) => gpuErrors.push(e.error?.message?.split('\n')[0] ?? 'unknown WebGPU error'));
  device.lost?.then((info) => {
    // 'destroyed' is tfjs removing its backend on purpose (e.g. after a failed probe), not a failure.
    if (info.reason !== 'destroyed') gpuErrors.push(`the GPU device was lost (${info.reason ?? 'unknown'}: ${info.message ?? ''})`);
  });
}

/**
 * Throws MsnBackendError when WebGPU reported errors since the last check
 * (the results of `what` are then suspect); each error is reported once.
 */
export async function checkGpuErrors(what: string): Promise<void> {
  if (tf.getBackend() !== 'webgpu') return;
  await new Promise((r) => setTimeout(r, 0)); // error events arrive as tasks
  const errors = gpuErrors;
  gpuErrors = [];
  if (errors.length) {
    throw new MsnBackendError(
      `WebGPU reported ${errors.length} error(s) during ${what}(), so its results cannot be trusted: ${errors.slice(0, 3).join(' | ')}. ` +
        "Create a new client with backend: 'wasm'.",
    );
  }
}

/** Runs `f`, then checkGpuErrors; WebGPU errors take precedence over f's own failure (often their symptom). */
export async function withGpuCheck<T>(what: string, f: () => Promise<T>): Promise<T> {
  let result: T;
  try {
    result = await f();
  } catch (e) {
    await checkGpuErrors(what);
    throw e;
  }
  await checkGpuErrors(what);
  return result;
}

/** Runs the probe on the active backend (webgpu) and on cpu; the largest relative difference. */
async function compareWithCpu(): Promise<{ worst: number; detail: string }> {
  // The probe differentiates; gradients are registered only now (inference never needs them).
  await import('./gradients.js');
  const gpu = await probe();
  await useBackend('cpu');
  const ref = await probe();
  let worst = 0;
  const per: string[] = [];
  ref.forEach((r, i) => {
    const g = gpu[i];
    let scale = 0;
    let diff = 0;
    for (let j = 0; j < r.length; j++) {
      scale = Math.max(scale, Math.abs(r[j]));
      const d = Math.abs(r[j] - g[j]);
      diff = Number.isNaN(d) ? Infinity : Math.max(diff, d);
    }
    const err = diff / (scale + PROBE_ATOL);
    worst = Math.max(worst, err);
    per.push(`#${i} ${err.toExponential(1)}`);
  });
  return { worst, detail: per.join(', ') };
}

/** Deterministic weights/inputs in [-scale, scale]. */
function det(shape: number[], seed: number, scale: number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, (_, i) => scale * Math.sin(seed * 12.9898 + i * 0.7853)), shape, 'float32');
}

/**
 * A transformer block with the model's own layer functions (patch
 * embedding, LayerNorm, 2-head softmax attention, exact-erf GELU MLP,
 * BatchNorm in train mode, log-softmax loss): the loss, the block output and
 * every weight gradient, read asynchronously (no dataSync, which
 * tfjs-backend-webgpu serves through a canvas copy). Sizes keep the tensors
 * above tfjs-webgpu's CPU hand-off size (1000 values), so the GPU runs them.
 */
async function probe(): Promise<Float32Array[]> {
  const T = 17; // 16 patches + CLS
  const D = 32;
  const H = 2;
  const hd = D / H;
  const w = {
    pe: det([48, D], 1, 0.2), peB: det([D], 2, 0.1), cls: det([1, D], 3, 0.5), pos: det([T, D], 4, 0.1),
    g1: det([D], 5, 0.2), b1: det([D], 6, 0.1), qkv: det([D, 3 * D], 7, 0.2), qkvB: det([3 * D], 8, 0.1),
    proj: det([D, D], 9, 0.2), projB: det([D], 10, 0.1), g2: det([D], 11, 0.2), b2: det([D], 12, 0.1),
    fc1: det([D, 2 * D], 13, 0.2), fc1B: det([2 * D], 14, 0.1), fc2: det([2 * D, D], 15, 0.2), fc2B: det([D], 16, 0.1),
    bnG: det([D], 17, 0.3), bnB: det([D], 18, 0.1), out: det([D, 64], 19, 0.3), outB: det([64], 20, 0.1),
  };
  const vars = Object.entries(w).map(([k, t]) => {
    const v = tf.variable(t, true, `msn-probe-${k}-${Math.random().toString(36).slice(2)}`);
    t.dispose();
    return v;
  });
  const [pe, peB, cls, pos, g1, b1, qkv, qkvB, proj, projB, g2, b2, fc1, fc1B, fc2, fc2B, bnG, bnB, out, outB] = vars;
  const x = det([1, 16, 16, 3], 21, 1);
  const runMean = tf.variable(tf.zeros([D]), false);
  const runVar = tf.variable(tf.ones([D]), false);
  const block = (): tf.Tensor2D => {
    const patches = tf.reshape(tf.transpose(tf.reshape(x, [4, 4, 4, 12]), [0, 2, 1, 3]), [16, 48]); // [N, p*p*C]
    let h = tf.concat([cls, tf.add(linear(patches, pe, peB), 0)], 0); // [T, D]
    h = tf.add(h, pos);
    const qkvOut = linear(layerNorm(h, g1, b1, 1e-6), qkv, qkvB); // [T, 3D]
    const [q, k, v] = tf.split(qkvOut, 3, 1).map((t) => tf.transpose(tf.reshape(t, [T, H, hd]), [1, 0, 2])); // [H, T, hd]
    const att = tf.softmax(tf.div(tf.matMul(q, k, false, true), Math.sqrt(hd))); // [H, T, T]
    const mixed = tf.reshape(tf.transpose(tf.matMul(att, v), [1, 0, 2]), [T, D]);
    h = tf.add(h, linear(mixed, proj, projB));
    h = tf.add(h, linear(gelu(linear(layerNorm(h, g2, b2, 1e-6), fc1, fc1B)), fc2, fc2B));
    return h as tf.Tensor2D;
  };
  try {
    const feats = tf.tidy(block);
    const { value, grads } = tf.variableGrads(() => tf.tidy(() => {
      const z = batchNorm(block(), bnG, bnB, runMean, runVar, 'train', false); // tokens as the batch
      const logits = linear(gelu(z), out, outB);
      return tf.neg(tf.mean(tf.logSoftmax(tf.div(logits, 0.1)))) as tf.Scalar;
    }), vars);
    const outs = [feats, value, ...vars.map((v) => grads[v.name])];
    const data = await Promise.all(outs.map(async (t) => Float32Array.from(await t.data())));
    tf.dispose(outs);
    tf.dispose(Object.values(grads));
    return data;
  } finally {
    tf.dispose([x, runMean, runVar, ...vars]);
  }
}
