/**
 * The validation split of the pretraining benchmarks, drawn from the MNIST
 * *training* images (the test split is scored once, at the end, by
 * `msn-web eval`): shots from training images 50,000-54,999, scored on
 * 55,000-59,999, linear head, seeds 0..seeds-1. Used by bench/tta.ts (which
 * pretrains on the first 50,000 only) and bench/eval-val.ts (model cards'
 * curves and choices).
 */
import { VisionTransformer } from '../src/model/vit.js';
import { embedImages } from '../src/embed/embed.js';
import { evaluateFewShot, shotIndexUnion, type FewShotResult } from '../src/eval/fewshot.js';
import type { CheckpointData } from '../src/pretrain/pretrainer.js';
import { datasetFromPixels } from '../src/pretrain/source.js';
import { arraysUnder } from '../src/util/readback.js';
import type { readIdxFolder } from '../src/data/idx-node.js';

type Mnist = ReturnType<typeof readIdxFolder>;
const PX = 28 * 28;

/** Few-shot linear accuracy on the validation split, for each k. */
export function validationSplit(mnist: Mnist, shots: number[], seeds: number) {
  const train = mnist.train;
  const poolSet = datasetFromPixels(train.images.subarray(50_000 * PX, 55_000 * PX), 5_000, 28, 28, 1);
  const scoreSet = datasetFromPixels(train.images.subarray(55_000 * PX, 60_000 * PX), 5_000, 28, 28, 1);
  const poolLabels = train.labels.subarray(50_000, 55_000);
  const scoreLabels = train.labels.subarray(55_000, 60_000);
  const used = shotIndexUnion(poolLabels, shots, seeds);
  const rowOf = new Map<number, number>();
  used.forEach((i, r) => rowOf.set(i, r));
  return async (vit: VisionTransformer, norm: { mean: number[]; std: number[] }): Promise<FewShotResult[]> => {
    const trainF = await embedImages(vit, poolSet, norm, used);
    const testF = await embedImages(vit, scoreSet, norm);
    return evaluateFewShot(
      { features: trainF, labels: poolLabels, rowOf: (i) => rowOf.get(i)! }, { features: testF, labels: scoreLabels },
      vit.cfg.embedDim, { shots, seeds, heads: ['linear'], fingerprint: 'validation' },
    );
  };
}

/** A checkpoint's target encoder (the encoder MSN evaluates) and its preprocessing; dispose the encoder. */
export function targetEncoder(ckpt: CheckpointData): { vit: VisionTransformer; norm: { mean: number[]; std: number[] } } {
  const vit = VisionTransformer.create(ckpt.config.model, { params: arraysUnder(ckpt.tensors, 'target/'), buffers: arraysUnder(ckpt.tensors, 'target_buffers/') });
  return { vit, norm: { mean: [...ckpt.config.views.mean], std: [...ckpt.config.views.std] } };
}
