/**
 * Browser module worker: hosts one MsnEngine behind comlink. Bundled with
 * TensorFlow.js (dist/worker/msn.worker.js); the tfjs .wasm files sit next to
 * it, so that folder is the default wasm path. Imported outside a worker (the
 * standalone client's `worker: false`), it only exports createEngine.
 */
import { MsnEngine, type EngineOptions } from '../src/runtime/engine.js';
import { exposeEngine } from '../src/runtime/worker-host.js';

const here = new URL('./', import.meta.url).href;

/** An in-thread engine whose default wasm folder is this bundle's folder. */
export function createEngine(opts: EngineOptions = {}): MsnEngine {
  return new MsnEngine({ defaultWasmPath: here, ...opts });
}

declare const WorkerGlobalScope: { new (): unknown } | undefined;
if (typeof WorkerGlobalScope !== 'undefined' && self instanceof WorkerGlobalScope) {
  exposeEngine(self as unknown as Parameters<typeof exposeEngine>[0], createEngine({ host: 'browser-worker' }));
}
