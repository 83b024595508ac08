/**
 * What the browser builds (dist/browser/, dist/worker/msn.worker.js) get
 * instead of the Node-only modules (rollup.config.mjs, `browserStubs`):
 * node-transport.ts, node-wasm-dir.ts, io/model-loader-node.ts and
 * pretrain/parallel-node.ts. The
 * browser graph then references no node:* module and no msn.node-worker.js,
 * which bundlers (Vite, webpack) would otherwise try to resolve or ship.
 */
import { MsnConfigError } from '../errors.js';
import type { NodeWorkerOptions, Transport } from './client.js';
import type { ReplicaHost } from '../pretrain/replica.js';

export async function nodeTransport(_url?: string | URL, _options?: NodeWorkerOptions): Promise<Transport> {
  throw new MsnConfigError('This is the browser build of msn-web: worker_threads are not available. In Node, import msn-web without the "browser" condition.');
}

export async function nodeWasmDirectory(): Promise<string | undefined> {
  return undefined;
}

export async function loadModelFromDirectory(dir: string): Promise<never> {
  throw new MsnConfigError(`'${dir}' looks like a folder path; the browser build loads models by URL (e.g. new URL('/models/msn-micro/', location.href).href).`);
}

export function shippedModelDirectory(name: string): never {
  throw new MsnConfigError(`The shipped model '${name}' has no folder in the browser build; the worker bundle loads it by URL.`);
}

export async function isDirectory(_path: string): Promise<boolean> {
  return false;
}

/** Replicas in worker threads do not exist here; the engine passes Web Workers (pretrain/parallel-web.ts). */
export const nodeReplicaHost: ReplicaHost = {
  spawn() {
    throw new MsnConfigError('This is the browser build of msn-web: pretraining replicas run in Web Workers. Pass { host: webReplicaHost(workerUrl) }, or use msn.pretrain(images, { workers }).');
  },
  cores: () => 1,
};
