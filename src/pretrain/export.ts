/**
 * Turning a pretraining run into a model: the target encoder (the one MSN
 * evaluates), its prototypes, and the preprocessing it was trained with.
 */
import { ModelData } from '../io/model-format.js';
import { Pretrainer } from './pretrainer.js';

/** Reads asynchronously, so it works on every backend (WebGPU included). */
export async function exportModel(p: Pretrainer, extraMeta: Record<string, string | number | boolean> = {}): Promise<ModelData> {
  const { params, buffers } = await p.state.target.readWeights();
  const cfg = p.config;
  return {
    config: cfg.model,
    params,
    buffers,
    prototypes: (await p.state.prototypes.data()) as Float32Array,
    meta: {
      preprocess: { mean: cfg.views.mean, std: cfg.views.std },
      pretraining: { steps: p.step, batchSize: cfg.batchSize, seed: cfg.seed, totalSteps: cfg.totalSteps },
      ...extraMeta,
    },
  };
}
