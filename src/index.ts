/**
 * msn-web: Masked Siamese Networks in the browser and Node.
 * The main entry is the client (createMsn: the engine in a worker or
 * in-thread, the same methods), the errors and the plain-data types of its
 * API. The building blocks are in the other entries, which state the line
 * between inference and training (test/browser/entries.test.ts checks the
 * built files):
 * - 'msn-web/core': model, embedding, heads, model files and importers, evaluation (no training code);
 * - 'msn-web/train': pretraining and its building blocks (loss, schedules, AdamW, the train step);
 * - 'msn-web/node': Node-only helpers (files and folders, exporters, data-parallel pretraining).
 */
export * from './errors.js';
export { createMsn } from './runtime/client.js';
export type { MsnClient, CreateMsnOptions, ClientPretrainOptions, TransferOption, NodeWorkerOptions } from './runtime/client.js';
export type * from './runtime/api.js';
export type { Grouping, PrototypeGroup, PrototypeUsage } from './embed/groups.js';
// IndexedDB storage for the client's checkpoint and head bytes has no tfjs in it (as in 'msn-web/client').
export { createIdbCheckpointStore } from './io/idb-store.js';
export type { CheckpointStore, IdbCheckpointStoreOptions } from './io/idb-store.js';
