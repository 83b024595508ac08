/**
 * The few-shot evaluation of `msn-web eval` and `npm start`: a model's
 * evaluation features against two baselines measured in the same run,
 * logistic regression on raw pixels and the same architecture at random
 * initialisation. Samples k labelled train images per class per seed, scores
 * the test split. The prototype-label head runs on the images' prototype
 * assignments (assignImages, the engine's path) instead of their features:
 * the model's own prototypes for 'msn', random ones for 'random-init', none
 * for raw pixels.
 */
import * as tf from '@tensorflow/tfjs-core';
import { MsnConfigError } from '../errors.js';
import { assignImages } from '../embed/assign.js';
import { PROTOTYPE_TEMPERATURE } from '../model/prototypes.js';
import { DEFAULT_SEED, prototypeSeed } from '../defaults.js';
import { IdxDataset } from '../data/idx-node.js';
import { embedImages } from '../embed/embed.js';
import { VitConfig } from '../model/config.js';
import { NamedArrays, initPrototypes, initWeights } from '../model/params.js';
import { VisionTransformer } from '../model/vit.js';
import { type ImageDataset, datasetFromPixels } from '../pretrain/source.js';
import type { HeadKind } from '../heads/common.js';
import { FewShotResult, evaluateFewShot, shotIndexUnion } from './fewshot.js';

export type Method = 'msn' | 'raw-pixels' | 'random-init';

export interface EvalModel {
  config: VitConfig;
  params: NamedArrays;
  buffers: NamedArrays;
  /** Pretraining normalisation (per channel). */
  mean: number[];
  std: number[];
  fingerprint: string;
  /** [numPrototypes x outputDim]; needed by the prototype-label head. */
  prototypes?: Float32Array;
}

export interface EvalOptions {
  shots: number[];
  seeds: number;
  heads: HeadKind[];
  methods: Method[];
  /** Use only the first n test images (default: all). */
  testLimit?: number;
  onStatus?: (msg: string) => void;
}

export type EvalRow = FewShotResult & { method: Method };

export async function evaluateOnIdx(model: EvalModel, data: IdxDataset, opts: EvalOptions): Promise<EvalRow[]> {
  const { train, test } = data;
  if (train.height !== test.height || train.width !== test.width) throw new MsnConfigError('Train and test images differ in size.');
  const testN = Math.min(test.count, opts.testLimit ?? test.count);
  const px = train.height * train.width;
  const used = shotIndexUnion(train.labels, opts.shots, opts.seeds);
  const rowOfMap = new Map<number, number>();
  used.forEach((i, r) => rowOfMap.set(i, r));
  const rowOf = (i: number) => rowOfMap.get(i)!;
  const testLabels = test.labels.subarray(0, testN);
  const trainSet = datasetFromPixels(train.images, train.count, train.height, train.width, 1);
  const testSet = datasetFromPixels(test.images.subarray(0, testN * px), testN, test.height, test.width, 1);
  const featureHeads = opts.heads.filter((h) => h !== 'prototype-label');
  const protoHead = opts.heads.includes('prototype-label');
  if (protoHead && opts.methods.includes('msn') && !model.prototypes) {
    throw new MsnConfigError("The model has no prototypes, which the prototype-label head needs; drop it from the heads (--heads linear).");
  }
  const out: EvalRow[] = [];
  for (const method of opts.methods) {
    opts.onStatus?.(`features: ${method}`);
    let dim = 0;
    let trainF: Float32Array = new Float32Array(0);
    let testF: Float32Array = new Float32Array(0);
    let assigned: { train: Float32Array; test: Float32Array } | undefined;
    if (method === 'raw-pixels') {
      dim = px;
      trainF = new Float32Array(used.length * px);
      used.forEach((i, r) => {
        for (let j = 0; j < px; j++) trainF[r * px + j] = train.images[i * px + j] / 255;
      });
      testF = Float32Array.from(test.images.subarray(0, testN * px), (v) => v / 255);
    } else {
      const weights = method === 'msn' ? { params: model.params, buffers: model.buffers } : initWeights(model.config, DEFAULT_SEED);
      const vit = VisionTransformer.create(model.config, weights);
      try {
        const norm = { mean: model.mean, std: model.std };
        dim = model.config.embedDim;
        if (featureHeads.length) {
          trainF = await embedImages(vit, trainSet, norm, used);
          testF = await embedImages(vit, testSet, norm);
        }
        if (protoHead) {
          opts.onStatus?.(`prototype assignments: ${method}`);
          const protos = method === 'msn' ? model.prototypes! : initPrototypes(model.config, prototypeSeed(DEFAULT_SEED)); // the random-init baseline, as a preset
          assigned = { train: await assignmentsOf(vit, trainSet, protos, norm, used), test: await assignmentsOf(vit, testSet, protos, norm) };
        }
      } finally {
        vit.dispose();
      }
    }
    opts.onStatus?.(`heads: ${method}`);
    const fingerprint = method === 'msn' ? model.fingerprint : method;
    const common = { shots: opts.shots, seeds: opts.seeds, fingerprint };
    if (featureHeads.length) {
      const res = evaluateFewShot(
        { features: trainF, labels: train.labels, rowOf }, { features: testF, labels: testLabels }, dim, { ...common, heads: featureHeads },
      );
      for (const r of res) out.push({ method, ...r });
    }
    if (assigned) {
      const res = evaluateFewShot(
        { features: assigned.train, labels: train.labels, rowOf }, { features: assigned.test, labels: testLabels }, model.config.numPrototypes,
        { ...common, heads: ['prototype-label'] },
      );
      for (const r of res) out.push({ method, ...r });
    }
  }
  return out;
}

/** Prototype probabilities [n x K] of the images (all, or `indices`), as the engine computes them for assignPrototypes. */
async function assignmentsOf(
  vit: VisionTransformer, images: ImageDataset, prototypes: Float32Array, norm: { mean: number[]; std: number[] }, indices?: Int32Array,
): Promise<Float32Array> {
  const idx = indices ?? Int32Array.from({ length: images.count }, (_, i) => i);
  const protos = tf.tensor2d(prototypes, [vit.cfg.numPrototypes, vit.cfg.outputDim]);
  try {
    const batch = (start: number, n: number) => images.batch(idx.subarray(start, start + n), vit.cfg.inChannels);
    const a = await assignImages(vit, batch, idx.length, protos, { ...norm, tau: PROTOTYPE_TEMPERATURE, topK: 1, full: true, passSize: 256 });
    return a.full!;
  } finally {
    protos.dispose();
  }
}

/** A plain-text table: one line per method and head, one column per k. */
export function formatTable(rows: EvalRow[]): string {
  const shots = [...new Set(rows.map((r) => r.shots))].sort((a, b) => a - b);
  const keys = [...new Set(rows.map((r) => `${r.method} / ${r.head}`))];
  const head = `${'method / head'.padEnd(32)}${shots.map((k) => `k=${k}`.padStart(16)).join('')}`;
  const lines = keys.map((key) => {
    const cells = shots.map((k) => {
      const r = rows.find((x) => `${x.method} / ${x.head}` === key && x.shots === k);
      return (r ? `${(100 * r.mean).toFixed(1)} ± ${(100 * r.std).toFixed(1)}` : '-').padStart(16);
    });
    return key.padEnd(32) + cells.join('');
  });
  return [head, ...lines].join('\n');
}
