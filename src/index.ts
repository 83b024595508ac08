/**
 * msn-web: Masked Siamese Networks in the browser and Node.
 * The main entry re-exports the core building blocks; the worker client and
 * the few-shot heads are added here as they land.
 */
export * from './core.js';
