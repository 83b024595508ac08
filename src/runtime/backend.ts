/**
 * Backend setup in one place: wasm (SIMD, XNNPACK) and cpu, in Node and in
 * bundlers, without any network access. WebGPU selection lives in the client
 * runtime (it needs a probe), not here.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { MsnBackendError, MsnConfigError } from '../errors.js';
import { nodeWasmDirectory } from './node-wasm-dir.js';
import { installWasmKernels } from '../kernels/wasm/kernels.js';

export type CoreBackend = 'wasm' | 'cpu';

let wasmPathsSet = false;

/**
 * Points the wasm backend at a folder holding the three tfjs-backend-wasm
 * .wasm files (URL or path, ending in '/'). Browsers: call this with the
 * folder you host them in. Node: not needed, the installed package is used.
 */
export function setWasmDirectory(prefix: string): void {
  if (!prefix.endsWith('/')) {
    throw new MsnConfigError(`setWasmDirectory() expects a folder ending in '/', got '${prefix}'.`);
  }
  // A full map (not the prefix form) so it also replaces an earlier setWasmFiles() map.
  setWasmPaths(Object.fromEntries(WASM_FILES.map((f) => [f, prefix + f])) as WasmFiles);
  wasmPathsSet = true;
}

/** The three tfjs-backend-wasm binaries. */
export const WASM_FILES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'] as const;
export type WasmFiles = Record<(typeof WASM_FILES)[number], string>;

/**
 * Points the wasm backend at each binary's own URL (file name -> URL), e.g.
 * `new URL('./tfjs-backend-wasm.wasm', import.meta.url).href` literals that a
 * bundler rewrites to the files it emits (hashed names, any folder).
 */
export function setWasmFiles(files: WasmFiles): void {
  const missing = WASM_FILES.filter((f) => typeof files?.[f] !== 'string');
  if (missing.length) throw new MsnConfigError(`setWasmFiles() needs a URL for ${missing.join(', ')}.`);
  setWasmPaths({ ...files });
  wasmPathsSet = true;
}

/**
 * Makes `name` the active tfjs backend and waits until it is ready. Throws
 * MsnBackendError if it cannot start (never falls back silently).
 */
export async function useBackend(name: CoreBackend): Promise<void> {
  if (name !== 'wasm' && name !== 'cpu') {
    throw new MsnConfigError(`Unknown backend '${String(name)}': expected 'wasm' or 'cpu'.`);
  }
  if (name === 'wasm' && !wasmPathsSet) {
    const dir = await nodeWasmDirectory();
    if (dir) setWasmDirectory(dir);
  }
  let ok = false;
  try {
    ok = await tf.setBackend(name);
    await tf.ready();
  } catch (err) {
    throw new MsnBackendError(`The '${name}' backend failed to start: ${(err as Error).message}`);
  }
  if (!ok || tf.getBackend() !== name) {
    throw new MsnBackendError(
      `The '${name}' backend failed to start. For wasm in a browser, call setWasmDirectory() ` +
        `with the folder that holds the tfjs-backend-wasm .wasm files.`,
    );
  }
  // msn-web's own kernels (batched products for attention); see src/kernels/wasm.
  if (name === 'wasm') await installWasmKernels();
}
