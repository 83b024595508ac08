/** Generated structured images and a tiny pretraining config for fast, seeded tests. */
import { Rng } from '../../src/util/rng.js';
import { ImageDataset, datasetFromPixels } from '../../src/pretrain/source.js';
import { PretrainOptions } from '../../src/pretrain/config.js';

/** Gray 16x16 images of four kinds (horizontal bar, vertical bar, box, diagonal) at random places. */
export function structuredImages(count: number, seed: number, size = 16): ImageDataset {
  const rng = new Rng(seed);
  const px = new Uint8Array(count * size * size);
  for (let i = 0; i < count; i++) {
    const kind = i % 4;
    const o = i * size * size;
    const a = 2 + rng.int(size - 8);
    const b = 2 + rng.int(size - 8);
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) {
        let on = false;
        if (kind === 0) on = y >= a && y < a + 3;
        else if (kind === 1) on = x >= b && x < b + 3;
        else if (kind === 2) on = y >= a && y < a + 6 && x >= b && x < b + 6 && (y === a || y === a + 5 || x === b || x === b + 5);
        else on = Math.abs(x - y - (a - b)) <= 1;
        px[o + y * size + x] = on ? 200 + rng.int(55) : rng.int(30);
      }
  }
  return datasetFromPixels(px, count, size, size, 1);
}

export const TINY: PretrainOptions = {
  model: { imgSize: 16, patchSize: 4, inChannels: 3, embedDim: 16, depth: 1, numHeads: 2, mlpRatio: 2, hiddenDim: 32, outputDim: 16, numPrototypes: 8 },
  views: { focalViews: 2, focalSize: 8 },
  batchSize: 8,
  totalSteps: 60,
  warmupSteps: 5,
  seed: 7,
};
