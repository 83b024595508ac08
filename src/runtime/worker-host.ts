/**
 * Serving an MsnEngine over a comlink endpoint (a worker's `self` or a
 * worker_threads parentPort): results that are buffers are transferred back,
 * progress/checkpoint callbacks arrive as comlink proxies and are released
 * when the run ends, and comlink's finalizer disposes the engine.
 */
import * as Comlink from 'comlink';
import type { MsnApi } from './api.js';
import type { MsnEngine } from './engine.js';
import { registerErrorTransfer } from './rpc.js';

type Releasable = { [Comlink.releaseProxy]?: () => void };

function release(cb: unknown): void {
  try {
    (cb as Releasable | undefined)?.[Comlink.releaseProxy]?.();
  } catch {
    // Already released or never a proxy.
  }
}

function out<T extends Uint8Array | Float32Array>(a: T): T {
  return Comlink.transfer(a, [a.buffer as ArrayBuffer]);
}

/** Exposes `engine` on `endpoint`; returns the exposed API object. */
export function exposeEngine(endpoint: Comlink.Endpoint, engine: MsnEngine): MsnApi {
  registerErrorTransfer();
  const api: MsnApi & { [Comlink.finalizer]: () => void } = {
    init: async (o, onProgress) => {
      try {
        return await engine.init(o, onProgress);
      } finally {
        release(onProgress);
      }
    },
    embed: async (p, s, o) => out(await engine.embed(p, s, o)),
    assignPrototypes: async (p, s, o) => {
      const a = await engine.assignPrototypes(p, s, o);
      const buffers = [a.ids, a.probs, a.meanProbs, ...(a.full ? [a.full] : [])].map((x) => x.buffer as ArrayBuffer);
      return Comlink.transfer(a, buffers);
    },
    pretrain: async (data, opts, onProgress, onCheckpoint) => {
      try {
        return await engine.pretrain(
          data,
          opts,
          onProgress && ((e) => void onProgress(e)),
          onCheckpoint && (async (bytes, step) => {
            await onCheckpoint(out(bytes), step);
          }),
        );
      } finally {
        release(onProgress);
        release(onCheckpoint);
      }
    },
    abortPretraining: () => engine.abortPretraining(),
    saveCheckpoint: async () => out(await engine.saveCheckpoint()),
    loadCheckpoint: (b) => engine.loadCheckpoint(b),
    fitHead: (i) => engine.fitHead(i),
    predict: (id, i, o) => engine.predict(id, i, o),
    saveHead: async (id) => out(await engine.saveHead(id)),
    loadHead: (b) => engine.loadHead(b),
    deleteHead: (id) => engine.deleteHead(id),
    capabilities: () => engine.capabilities(),
    memory: () => engine.memory(),
    ping: (d) => engine.ping(d),
    dispose: () => engine.dispose(),
    [Comlink.finalizer]: () => void engine.dispose(),
  };
  Comlink.expose(api, endpoint);
  return api;
}
