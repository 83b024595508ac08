/**
 * Turning a pretraining run into a model: the target encoder (the one MSN
 * evaluates), its prototypes, and the preprocessing it was trained with.
 */
import { ModelData } from '../io/model-format.js';
import { Pretrainer } from './pretrainer.js';

export function exportModel(p: Pretrainer, extraMeta: Record<string, string | number | boolean> = {}): ModelData {
  const { params, buffers } = p.state.target.getWeights();
  const cfg = p.config;
  return {
    config: cfg.model,
    params,
    buffers,
    prototypes: p.state.prototypes.dataSync() as Float32Array,
    meta: {
      preprocess: { mean: cfg.views.mean, std: cfg.views.std },
      pretraining: { steps: p.step, batchSize: cfg.batchSize, seed: cfg.seed, totalSteps: cfg.totalSteps },
      ...extraMeta,
    },
  };
}
