/** Shared by the export-torch tests: a small config and a random pretraining checkpoint. */
import type { VitConfig } from '../../src/model/config.js';
import { initPrototypes, initWeights, paramSpecs } from '../../src/model/params.js';
import { pretrainConfig } from '../../src/pretrain/config.js';
import type { CheckpointData } from '../../src/pretrain/pretrainer.js';
import { mulberry32 } from './builders.js';

/** A small non-official width (heads must be passed on import). */
export const CFG: VitConfig = {
  imgSize: 16, patchSize: 4, inChannels: 3, embedDim: 24, depth: 2, numHeads: 2, mlpRatio: 2, hiddenDim: 20, outputDim: 8, numPrototypes: 6,
};

const rand = (n: number, rng: () => number, lo = -1, hi = 1) => Float32Array.from({ length: n }, () => lo + (hi - lo) * rng());

/** A pretraining checkpoint with every tensor random (moments too), as Pretrainer.checkpoint() names them. */
export function syntheticRun(cfg: VitConfig = CFG, step = 7, seed = 5): CheckpointData {
  const rng = mulberry32(seed);
  const config = pretrainConfig({ model: cfg, batchSize: 4, totalSteps: 40, warmupSteps: 4 });
  const tensors: CheckpointData['tensors'] = {};
  for (const [prefix, w] of [['encoder', initWeights(cfg, seed)], ['target', initWeights(cfg, seed + 1)]] as const) {
    for (const [k, a] of Object.entries(w.params)) tensors[`${prefix}/${k}`] = a;
    for (const [k, a] of Object.entries(w.buffers)) tensors[`${prefix}_buffers/${k}`] = { shape: a.shape, data: rand(a.data.length, rng, 0.1, 2) };
  }
  tensors.prototypes = { shape: [cfg.numPrototypes, cfg.outputDim], data: initPrototypes(cfg, seed + 2) };
  for (const s of [...paramSpecs(cfg), { name: 'prototypes', shape: [cfg.numPrototypes, cfg.outputDim] }]) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    tensors[`adam_m/${s.name}`] = { shape: s.shape, data: rand(n, rng, -1e-3, 1e-3) };
    tensors[`adam_v/${s.name}`] = { shape: s.shape, data: rand(n, rng, 0, 1e-5) };
  }
  return { config, step, iteration: step + 2, numBatchesTracked: { encoder: 2 * step, target: step }, tensors };
}

