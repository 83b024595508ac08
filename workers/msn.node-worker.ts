/**
 * Node worker_threads entry: hosts one MsnEngine behind comlink's node
 * adapter. tfjs resolves from node_modules; the wasm backend finds its .wasm
 * files in the installed package.
 */
import { parentPort } from 'node:worker_threads';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { MsnEngine } from '../src/runtime/engine.js';
import { exposeEngine } from '../src/runtime/worker-host.js';

if (!parentPort) throw new Error('msn.node-worker must be started as a worker_threads Worker.');
exposeEngine(nodeEndpoint(parentPort), new MsnEngine({ host: 'node-worker' }));
