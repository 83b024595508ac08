/** Shared pieces of the client tests: a tiny model, the tsx worker entry, generated images. */
import type { VitConfig } from '../../src/model/config.js';

export const TINY: VitConfig = {
  imgSize: 16, patchSize: 4, inChannels: 3, embedDim: 16, depth: 1, numHeads: 2, mlpRatio: 2,
  hiddenDim: 32, outputDim: 16, numPrototypes: 8,
};

/** Runs workers/msn.node-worker.ts under tsx, so the worker tests need no build. */
export const WORKER = {
  workerUrl: new URL('./tsx-worker.mjs', import.meta.url),
  nodeWorkerOptions: { workerData: { entry: new URL('../../workers/msn.node-worker.ts', import.meta.url).href } },
};

/** `count` gray size x size images of seeded pseudo-random bytes. */
export function images(count: number, seed = 1, size = 16): Uint8Array {
  return Uint8Array.from({ length: count * size * size }, (_, i) => (Math.imul(i + seed * 7919, 2654435761) >>> 24) & 255);
}

export const shape = (count: number, size = 16) => ({ count, width: size, height: size, channels: 1 });

/** The error `p` rejects with (fails the test when it resolves). */
export async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}
