/**
 * Reading tensors back into JS arrays, in one place. `readArrays` awaits
 * `data()`: on WebGPU that maps a staging buffer without blocking the thread.
 * `readArraysSync` uses `dataSync()`, which is fine on cpu/wasm but on WebGPU
 * stalls the thread and (tfjs-backend-webgpu 4.22 on some adapters, e.g.
 * Chromium's SwiftShader) returns zeros. Everything the engine runs on the
 * chosen backend reads through `readArrays`.
 */
import * as tf from '@tensorflow/tfjs-core';

export type NamedTensors = Record<string, tf.Tensor>;
export type NamedArrays = Record<string, { shape: number[]; data: Float32Array }>;

/** The arrays whose names start with `prefix`, under the rest of their names ('target/blocks.0.w' -> 'blocks.0.w'; views, not copies). */
export function arraysUnder(arrays: NamedArrays, prefix: string): NamedArrays {
  const out: NamedArrays = {};
  for (const [k, v] of Object.entries(arrays)) if (k.startsWith(prefix)) out[k.slice(prefix.length)] = v;
  return out;
}

export function readArraysSync(tensors: NamedTensors): NamedArrays {
  const out: NamedArrays = {};
  for (const [k, t] of Object.entries(tensors)) out[k] = { shape: t.shape.slice(), data: t.dataSync() as Float32Array };
  return out;
}

export async function readArrays(tensors: NamedTensors): Promise<NamedArrays> {
  const entries = Object.entries(tensors);
  const data = await Promise.all(entries.map(([, t]) => t.data() as Promise<Float32Array>));
  const out: NamedArrays = {};
  entries.forEach(([k, t], i) => (out[k] = { shape: t.shape.slice(), data: data[i] }));
  return out;
}

/** The backend whose synchronous reads this SDK avoids (see the module comment). */
export function syncReadsAreSafe(): boolean {
  return tf.getBackend() !== 'webgpu';
}
