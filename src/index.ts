/**
 * msn-web: Masked Siamese Networks in the browser and Node.
 * The main entry re-exports the core building blocks and adds the client
 * (createMsn: the engine in a worker or in-thread, the same methods).
 */
export * from './core.js';
export { createMsn } from './runtime/client.js';
export type { MsnClient, CreateMsnOptions, ClientPretrainOptions, TransferOption, NodeWorkerOptions } from './runtime/client.js';
export type * from './runtime/api.js';
