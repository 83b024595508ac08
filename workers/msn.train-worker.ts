/**
 * Node worker_threads entry of a data-parallel pretraining replica
 * (src/pretrain/replica.ts), driven by src/pretrain/parallel-node.ts.
 */
import { parentPort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { Replica } from '../src/pretrain/replica.js';

if (!parentPort) throw new Error('msn.train-worker must be started as a worker_threads Worker.');
Comlink.expose(new Replica(), nodeEndpoint(parentPort));
