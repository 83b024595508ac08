/**
 * msn-web/client: the main-thread client alone (createMsn and the error
 * classes). Its dist build (dist/client.js) has no dependencies and no bare
 * imports, so a plain page can import it without a bundler; the engine and
 * TensorFlow.js live in dist/worker/msn.worker.js.
 *
 * @example
 * <script type="module">
 *   import { createMsn } from './msn-web/client.js';
 *   const msn = await createMsn({ preset: 'micro-p4-28' });
 *   console.log((await msn.capabilities()).backend);
 * </script>
 */
export * from './errors.js';
export { createMsn } from './runtime/client.js';
// IndexedDB storage has no tfjs in it, so a page can keep checkpoints and heads without the engine's bundle.
export { createIdbCheckpointStore } from './io/idb-store.js';
export type { CheckpointStore, IdbCheckpointStoreOptions } from './io/idb-store.js';
export type { MsnClient, CreateMsnOptions, ClientPretrainOptions, TransferOption, NodeWorkerOptions } from './runtime/client.js';
export type * from './runtime/api.js';
export type { Grouping, PrototypeGroup, PrototypeUsage } from './embed/groups.js';
