/**
 * Backend setup in one place: wasm (SIMD, XNNPACK) and cpu, in Node and in
 * bundlers, without any network access. WebGPU selection lives in the client
 * runtime (it needs a probe), not here.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { MsnBackendError, MsnConfigError } from '../errors.js';

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
  setWasmPaths(prefix);
  wasmPathsSet = true;
}

async function nodeWasmDirectory(): Promise<string | undefined> {
  const isNode = typeof process !== 'undefined' && !!process.versions?.node;
  if (!isNode) return undefined;
  // Resolve the installed package's dist folder; the emscripten glue reads the
  // files with fs in Node, so a plain path works and nothing is fetched.
  const { createRequire } = await import('node:module');
  const path = await import('node:path');
  const require = createRequire(import.meta.url);
  const main = require.resolve('@tensorflow/tfjs-backend-wasm');
  return path.dirname(main) + path.sep;
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
}
