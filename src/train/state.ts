/**
 * Creating and disposing the training state: online encoder, target encoder
 * (a copy of the online one at the start), prototypes and AdamW.
 */
import * as tf from '@tensorflow/tfjs-core';
import { DEFAULT_SEED, prototypeSeed } from '../defaults.js';
import { VitConfig, validateConfig } from '../model/config.js';
import { NamedArrays, initPrototypes, initWeights } from '../model/params.js';
import { VisionTransformer } from '../model/vit.js';
import { AdamWOptions, TORCH_ADAMW } from './optimizer.js';
import { MsnTrainState, createOptimizer } from './step.js';

export interface TrainStateInit {
  /** Online encoder weights; the target starts as a copy unless `target` is given. */
  encoder?: { params: NamedArrays; buffers: NamedArrays };
  target?: { params: NamedArrays; buffers: NamedArrays };
  prototypes?: Float32Array;
  seed?: number;
  adam?: AdamWOptions;
}

export function createTrainState(cfg: VitConfig, init: TrainStateInit = {}): MsnTrainState {
  const config = validateConfig(cfg);
  const seed = init.seed ?? DEFAULT_SEED;
  const enc = init.encoder ?? initWeights(config, seed);
  const encoder = VisionTransformer.create(config, enc);
  const target = VisionTransformer.create(config, init.target ?? enc);
  const protoData = init.prototypes ?? initPrototypes(config, prototypeSeed(seed));
  const prototypes = tf.tidy(() => tf.variable(tf.tensor2d(protoData, [config.numPrototypes, config.outputDim]), true));
  const optimizer = createOptimizer(encoder, prototypes, init.adam ?? TORCH_ADAMW);
  return { encoder, target, prototypes, optimizer, step: 0 };
}

export function disposeTrainState(state: MsnTrainState): void {
  state.encoder.dispose();
  state.target.dispose();
  state.prototypes.dispose();
  state.optimizer.dispose();
}
