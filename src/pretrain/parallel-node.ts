/**
 * Data-parallel pretraining in Node: the replicas of a ParallelPretrainer
 * (parallel.ts) in worker threads, each a one-thread tfjs-wasm. This is the
 * default ReplicaHost in Node; browser builds replace this module with a
 * stub (rollup.config.mjs, NODE_ONLY).
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { MsnWorkerError } from '../errors.js';
import type { Replica, ReplicaHost, ReplicaMember } from './replica.js';

/** A replica in a worker thread. */
export interface NodeReplica extends ReplicaMember {
  readonly worker: Worker;
}

/** Worker threads, one per core by default. */
export const nodeReplicaHost: ReplicaHost = { spawn: () => spawnReplica(), cores: () => availableParallelism() };

/**
 * The worker entry: dist/worker/msn.train-worker.js next to the built
 * library (dist/node.js or dist/cli/main.js), or the TypeScript source under
 * tsx when msn-web runs from its repository. (Exported for
 * test/train/replica-group.test.ts and the benchmark's independent runs.)
 */
export function spawnReplica(): NodeReplica {
  const built = [new URL('./worker/msn.train-worker.js', import.meta.url), new URL('../worker/msn.train-worker.js', import.meta.url)];
  const found = built.find((u) => u.protocol === 'file:' && existsSync(fileURLToPath(u)));
  // Workers inherit Node's flags; --input-type (node --input-type=module -e ...) is refused for file entries.
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--input-type'));
  let worker: Worker;
  if (found) {
    worker = new Worker(found, { execArgv });
  } else {
    const source = new URL('../../workers/msn.train-worker.ts', import.meta.url);
    if (!existsSync(fileURLToPath(source))) throw new MsnWorkerError('Cannot find msn.train-worker.js next to msn-web; reinstall the package.');
    const tsx = import.meta.resolve('tsx/esm/api'); // the ESM entry (createRequire would give the CommonJS one)
    const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(source.href)}); });`;
    worker = new Worker(boot, { eval: true, execArgv });
  }
  return nodeMember(worker);
}

/** A replica in a worker thread, for the coordinator (the thread itself stays reachable for tests). */
function nodeMember(worker: Worker): NodeReplica {
  return {
    worker,
    api: Comlink.wrap<Replica>(nodeEndpoint(worker as unknown as Parameters<typeof nodeEndpoint>[0])),
    onDeath(f) {
      const onExit = (code: number) => f(`exited (code ${code})`);
      worker.once('exit', onExit);
      return () => void worker.off('exit', onExit);
    },
    terminate: () => worker.terminate(),
    keepAlive: (on) => void (on ? worker.ref() : worker.unref()),
  };
}
