/**
 * Data-parallel pretraining in browsers: the replicas of a ParallelPretrainer
 * (parallel.ts) in module Web Workers. Each replica is a copy of the worker
 * bundle (dist/worker/msn.worker.js) started with `?msn-role=replica`, so it
 * needs no file of its own and a bundler that emitted the worker serves the
 * replicas too. The page must be crossOriginIsolated (SharedArrayBuffer).
 */
import * as Comlink from 'comlink';
import type { Replica, ReplicaHost, ReplicaMember } from './replica.js';

/** The query parameter that makes the worker bundle a replica instead of an engine. */
export const REPLICA_ROLE = 'msn-role';

/** Replicas from the worker bundle at `workerUrl`, one per logical core by default. */
export function webReplicaHost(workerUrl: string | URL): ReplicaHost {
  return {
    spawn: () => spawnWebReplica(workerUrl),
    cores: () => Math.max(1, globalThis.navigator?.hardwareConcurrency ?? 1),
  };
}

function spawnWebReplica(workerUrl: string | URL): ReplicaMember {
  const url = new URL(workerUrl);
  url.searchParams.set(REPLICA_ROLE, 'replica');
  const worker = new Worker(url, { type: 'module', name: 'msn-web pretraining replica' });
  return {
    api: Comlink.wrap<Replica>(worker),
    // A Web Worker has no exit event: an error that escapes it (a failed start, a crash outside
    // a reduction) is its death as far as the run is concerned. Errors inside fit() break the group.
    onDeath(f) {
      const onError = (e: ErrorEvent) => {
        e.preventDefault();
        f(`failed (${e.message || 'the worker could not start or crashed'})`);
      };
      worker.addEventListener('error', onError);
      return () => worker.removeEventListener('error', onError);
    },
    terminate: async () => worker.terminate(),
    keepAlive: () => undefined,
  };
}
