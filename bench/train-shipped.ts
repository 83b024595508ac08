/**
 * Trains the shipped model: MSN on the MNIST training images (labels unused),
 * wasm backend, resumable. Saves the run checkpoint atomically every 100
 * steps and keeps copies at the wall-clock marks (minutes) for the model
 * card's learning curve. Wall time counts only this process's training time,
 * and carries over across resumes (stored next to the checkpoint).
 *   npx tsx bench/train-shipped.ts --config models/msn-mnist-micro/recipe.json --work <dir> [--resume]
 *     [--marks 15,30,60,120] [--stop-after-min N] [--until-step N] [--workers N]
 * One worker thread per core by default (ParallelPretrainer; --workers 1: this thread).
 * --until-step continues past the planned totalSteps (the schedules keep their
 * original horizon, 1.25 x totalSteps). --extend-to N (with --resume) replans
 * the run to N total steps.
 */
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { readIdxFolder } from '../src/data/idx-node.js';
import { useBackend } from '../src/runtime/backend.js';
import { Pretrainer } from '../src/pretrain/pretrainer.js';
import { ParallelPretrainer } from '../src/pretrain/parallel.js';
import { availableParallelism } from 'node:os';
import { datasetFromPixels } from '../src/pretrain/source.js';
import { loadCheckpointFile, saveCheckpointFile } from '../src/pretrain/checkpoint-node.js';
import { defaultDataDir } from '../src/cli/paths.js';

const arg = (n: string, d?: string) => (process.argv.includes(`--${n}`) ? process.argv[process.argv.indexOf(`--${n}`) + 1] : d);
const work = arg('work', 'models/work')!;
const ckptPath = join(work, 'run.msnckpt');
const clockPath = join(work, 'clock.json');
const marks = (arg('marks', '15,30,60,120') as string).split(',').map(Number);
const stopAfter = Number(arg('stop-after-min', 'Infinity'));
const untilArg = arg('until-step');
tf.env().set('PROD', true);
await useBackend('wasm');
const mnist = readIdxFolder(defaultDataDir('bench/train-shipped.ts'));
const train = datasetFromPixels(mnist.train.images, mnist.train.count, 28, 28, 1);
const resume = process.argv.includes('--resume') && existsSync(ckptPath);
const extendTo = arg('extend-to');
const loaded = resume ? await loadCheckpointFile(ckptPath) : undefined;
// --extend-to N: continue a finished run under a longer plan (totalSteps N, horizon 1.25 N): the
// schedules are functions of the step, so the learning rate jumps back up (a warm restart).
if (loaded && extendTo) loaded.config = { ...loaded.config, totalSteps: Number(extendTo) };
const workers = Number(arg('workers', String(availableParallelism())));
const opts = loaded ? undefined : JSON.parse(readFileSync(arg('config')!, 'utf8'));
const p: Pretrainer | ParallelPretrainer =
  workers > 1
    ? loaded ? await ParallelPretrainer.fromCheckpoint(loaded, { workers }) : await ParallelPretrainer.create(opts, { workers })
    : loaded ? Pretrainer.fromCheckpoint(loaded) : Pretrainer.create(opts);
let trainedSec = resume && existsSync(clockPath) ? JSON.parse(readFileSync(clockPath, 'utf8')).trainedSec : 0;
const log = (s: string) => console.log(`${new Date().toISOString()} ${s}`);
log(`${resume ? 'resumed' : 'started'} at step ${p.step} (${(trainedSec / 60).toFixed(1)} min trained), total ${p.config.totalSteps} steps, batch ${p.config.batchSize}, ${workers} worker(s)`);
const startSec = trainedSec;
const t0 = performance.now();
let last = 0;
const save = async () => {
  await saveCheckpointFile(ckptPath, await p.readCheckpoint());
  writeFileSync(clockPath, JSON.stringify({ trainedSec, step: p.step }));
};
const until = untilArg ? Number(untilArg) : p.config.totalSteps;
while (p.step < until && (trainedSec - startSec) / 60 < stopAfter) {
  await p.fit(train, {
    steps: Math.min(100, until - p.step),
    onProgress: (e) => {
      trainedSec = startSec + (performance.now() - t0) / 1000;
      if (performance.now() - last > 60_000) {
        last = performance.now();
        log(`step ${e.step} epoch ${e.epoch} loss ${e.loss.toFixed(4)} ce ${e.ce.toFixed(4)} me ${e.memax.toFixed(4)} lr ${e.lr.toExponential(2)} m ${e.momentum.toFixed(4)} np ${e.numProtosUsed} maxT ${e.maxTarget.toFixed(3)} ${e.imagesPerSec.toFixed(0)} img/s`);
      }
    },
  });
  await save();
  for (const m of marks) {
    const copy = join(work, `ckpt-${m}min.msnckpt`);
    if (trainedSec / 60 >= m && !existsSync(copy)) {
      copyFileSync(ckptPath, copy);
      log(`mark ${m} min: step ${p.step} -> ${copy}`);
    }
  }
}
log(`stopped at step ${p.step} after ${(trainedSec / 60).toFixed(1)} min of training`);
await p.dispose();
