/**
 * Browser module worker: hosts one MsnEngine behind comlink. Bundled with
 * TensorFlow.js (dist/worker/msn.worker.js); the tfjs .wasm files sit next to
 * it. Imported outside a worker (the standalone client's `worker: false`), it
 * only exports createEngine.
 *
 * Bundlers: each .wasm file is named by a literal
 * `new URL('./<file>.wasm', import.meta.url)`, so Vite/webpack emit the files
 * and rewrite the URLs; the engine and everything else live in
 * chunks/engine.js, so the lazy chunks (pretraining, WebGPU, gradients) never
 * import this entry (in `vite dev` a worker entry loaded twice, once as the
 * worker and once as a chunk's import, would register tfjs twice). The
 * shipped models' files are such literals too.
 *
 * Started with `?msn-role=replica` (pretrain/parallel-web.ts), the same bundle
 * is a replica of data-parallel pretraining instead of an engine.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as Comlink from 'comlink';
import { MsnEngine, type EngineOptions } from '../src/runtime/engine.js';
import { exposeEngine } from '../src/runtime/worker-host.js';
import { setWasmFiles } from '../src/runtime/backend.js';
import { REPLICA_ROLE, webReplicaHost } from '../src/pretrain/parallel-web.js';
import type { ShippedModelName, ShippedModelUrls } from '../src/io/shipped-models.js';
import type { Replica } from '../src/pretrain/replica.js';

/** Every public method of a Replica: the forwarding table below must name each one (a new method is a type error until it does). */
type ReplicaMethod = keyof Replica;

const WASM_FILES = {
  'tfjs-backend-wasm.wasm': new URL('./tfjs-backend-wasm.wasm', import.meta.url).href,
  'tfjs-backend-wasm-simd.wasm': new URL('./tfjs-backend-wasm-simd.wasm', import.meta.url).href,
  'tfjs-backend-wasm-threaded-simd.wasm': new URL('./tfjs-backend-wasm-threaded-simd.wasm', import.meta.url).href,
};

/**
 * The shipped models (models/ at the package root), one literal per file so
 * that bundlers emit each of them (and may rename them). The paths are
 * relative to this source file; the build rewrites them for
 * dist/worker/msn.worker.js (rollup.config.mjs, `modelUrlsFromDist`).
 */
export const SHIPPED_MODEL_URLS: Record<ShippedModelName, ShippedModelUrls> = {
  'msn-mnist-micro': {
    manifest: new URL('../models/msn-mnist-micro/model.json', import.meta.url).href,
    files: { 'weights-00000.bin': new URL('../models/msn-mnist-micro/weights-00000.bin', import.meta.url).href },
  },
};

/** An in-thread engine whose default .wasm files and shipped models are the ones next to this bundle. */
export function createEngine(opts: EngineOptions = {}): MsnEngine {
  // Replicas of a data-parallel run are this same file, whatever URL a bundler gave it.
  return new MsnEngine({ defaultWasmFiles: WASM_FILES, shippedModels: SHIPPED_MODEL_URLS, replicaHost: webReplicaHost(import.meta.url), ...opts });
}

declare const WorkerGlobalScope: { new (): unknown } | undefined;
if (typeof WorkerGlobalScope !== 'undefined' && self instanceof WorkerGlobalScope) {
  if (new URL(self.location.href).searchParams.get(REPLICA_ROLE) === 'replica') {
    exposeReplica();
  } else {
    exposeEngine(self as unknown as Parameters<typeof exposeEngine>[0], createEngine({ host: 'browser-worker' }));
  }
}

/**
 * A pretraining replica: one core each, so tfjs's single-threaded wasm build
 * (whose memory msn-web's own kernels share). Exposed at once, so that no
 * message from the coordinator arrives before a listener; the training code
 * itself loads on the first call.
 */
function exposeReplica(): void {
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  setWasmFiles(WASM_FILES);
  const replica = import('../src/pretrain/replica.js').then(({ Replica }) => new Replica());
  const forward = <K extends ReplicaMethod>(k: K) => async (...a: Parameters<Replica[K]>) => ((await replica)[k] as (...x: unknown[]) => unknown)(...a);
  const api: Record<ReplicaMethod, unknown> = {
    init: forward('init'), join: forward('join'), setData: forward('setData'), planSteps: forward('planSteps'),
    fit: forward('fit'), checkpoint: forward('checkpoint'), numTensors: forward('numTensors'), dispose: forward('dispose'),
  };
  Comlink.expose(api, self as unknown as Parameters<typeof Comlink.expose>[1]);
}
