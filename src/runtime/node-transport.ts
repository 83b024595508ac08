/**
 * The Node transport: the engine in a worker_threads Worker
 * (dist/worker/msn.node-worker.js). Node-only: browser builds replace this
 * module with node-only.browser.ts, so they never reference node:* modules or
 * the Node worker.
 */
import * as Comlink from 'comlink';
import { MsnWorkerError } from '../errors.js';
import type { MsnApi } from './api.js';
import type { NodeWorkerOptions, Transport } from './client.js';

export async function nodeTransport(url: string | URL | undefined, options: NodeWorkerOptions | undefined): Promise<Transport> {
  const [{ Worker }, { default: nodeEndpoint }] = await Promise.all([
    import('node:worker_threads'),
    import('comlink/dist/esm/node-adapter.mjs'),
  ]);
  const src = url ?? new URL('./worker/msn.node-worker.js', import.meta.url);
  const w = new Worker(src, options as ConstructorParameters<typeof Worker>[1]);
  let lastError: Error | undefined;
  let death: ((e: MsnWorkerError) => void) | undefined;
  w.on('error', (e: Error) => (lastError = e));
  w.on('exit', (code: number) => {
    const why = lastError ? `: ${(lastError as { code?: string }).code ?? lastError.name}: ${lastError.message}` : '';
    death?.(new MsnWorkerError(`The msn-web worker exited with code ${code}${why}. Pending calls were cancelled; create a new client.`));
  });
  return {
    api: Comlink.wrap<MsnApi>(nodeEndpoint(w as unknown as Parameters<typeof nodeEndpoint>[0])),
    host: 'node-worker',
    worker: w,
    remote: true,
    terminate: async () => {
      await w.terminate();
    },
    onDeath: (cb) => (death = cb),
    keepAlive: (on) => (on ? w.ref() : w.unref()),
  };
}
