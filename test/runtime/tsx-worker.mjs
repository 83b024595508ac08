// Test helper: runs a TypeScript worker entry (workerData.entry) under tsx,
// so the Node worker tests exercise the sources without a build.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
