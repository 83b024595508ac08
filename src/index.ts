/**
 * msn-web: Masked Siamese Networks in the browser and Node.
 * The main entry is the client, as 'msn-web/client' (src/client.ts):
 * createMsn (the engine in a worker or in-thread, the same methods), the
 * errors, the plain-data types of its API and the IndexedDB store. Only the
 * builds differ: this one leaves comlink and TensorFlow.js to the app's
 * bundler or Node. The building blocks are in the other entries, which state
 * the line between inference and training (test/browser/entries.test.ts
 * checks the built files):
 * - 'msn-web/core': model, embedding, heads, model files and importers, evaluation (no training code);
 * - 'msn-web/train': pretraining and its building blocks (loss, schedules, AdamW, the train step);
 * - 'msn-web/node': Node-only helpers (files and folders, exporters, data-parallel pretraining).
 */
export * from './client.js';
