/**
 * msn-web pretrain --data <IDX folder | image folder> [--recipe small-images | --preset micro-p4-28]
 *   [--steps N | --epochs N] [--batch-size 64] [--total-steps N] [--resume ckpt]
 *   [--out ckpt.msnckpt] [--checkpoint-every 200] [--seed 0] [--backend wasm|cpu]
 *   [--config options.json] [--workers N] [--from <model folder | shipped model name>]
 * The options are declared in PRETRAIN (see args.ts; `--help` prints them).
 * On a TTY one progress line (step/total, %, img/s, ETA; at most 100
 * columns), otherwise a log line at the first step and then about every 5 s.
 * Ctrl-C stops at a step boundary and writes the checkpoint. --from starts a
 * new run from a model's weights and prototypes (its architecture and
 * preprocessing; the rest as for a new run), as createMsn's pretrain() does
 * from the model it loaded.
 */
import { readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { DEFAULT_PRETRAIN, DEFAULT_SEED, RECIPE_PLAN, prototypeSeed } from '../defaults.js';
import { MsnConfigError } from '../errors.js';
import { useBackend } from '../runtime/backend.js';
import { Pretrainer } from '../pretrain/pretrainer.js';
import { ParallelPretrainer } from '../pretrain/parallel-node.js';
import { loadCheckpointFile, saveCheckpointFile } from '../pretrain/checkpoint-node.js';
import { PretrainOptions } from '../pretrain/config.js';
import { isRecipeName, mergePretrainOptions, recipeNames, recipeOptions } from '../pretrain/recipes.js';
import { loadImageFolder } from '../data/folder-node.js';
import { checkTrainBatch } from '../runtime/resources.js';
import { preprocessOf } from '../runtime/model-source.js';
import { loadModelFromDirectory } from '../io/model-loader-node.js';
import { initPrototypes } from '../model/params.js';
import type { ModelData } from '../io/model-format.js';
import { modelDirOf } from './paths.js';
import { MsnUsageError, parseCommand, usage } from './args.js';
import { BACKENDS, PRETRAIN } from './commands.js';
import { ProgressReporter } from './progress.js';

export async function pretrainCommand(argv: string[]): Promise<void> {
  const args = parseCommand(PRETRAIN, argv);
  if (args === 'help') {
    process.stdout.write(usage(PRETRAIN));
    return;
  }
  const data = args.string('data');
  if (!data) throw new MsnUsageError('Pass --data <folder>: an MNIST-layout IDX folder or a folder of PNG/JPEG images.');
  const out = args.string('out')!;
  // Every number and every conflict is checked before any work, so a typo fails now rather than after hours of training.
  const stepsArg = args.int('steps', 1);
  const epochsArg = args.int('epochs', 1);
  if (stepsArg !== undefined && epochsArg !== undefined) throw new MsnUsageError('Pass --steps or --epochs, not both.');
  const every = args.int('checkpoint-every', 0)!;
  const batchArg = args.int('batch-size', 2);
  const totalArg = args.int('total-steps', 1);
  const seedArg = args.int('seed', 0);
  const backend = args.choice('backend', BACKENDS)!;
  const workersArg = args.int('workers', 1);
  const resume = args.string('resume');
  const from = args.string('from');
  if (from && resume) throw new MsnUsageError('Pass --from (a new run from a model) or --resume (continue a checkpoint), not both.');
  if (from && args.has('preset')) throw new MsnUsageError(`--from takes the model's architecture from ${from}; drop --preset.`);
  const recipe = args.string('recipe');
  if (recipe !== undefined && !isRecipeName(recipe)) {
    throw new MsnUsageError(`Unknown recipe '${recipe}'. Available: ${recipeNames().join(', ')}.`);
  }
  if (recipe && args.has('preset')) throw new MsnUsageError(`--recipe ${recipe} sets the model; drop --preset (a --config file can change single fields of the recipe).`);
  if (resume) {
    const setOnly = ['recipe', 'preset', 'batch-size', 'total-steps', 'seed', 'config'].filter((k) => args.has(k));
    if (setOnly.length) throw new MsnUsageError(`${setOnly.map((k) => '--' + k).join(', ')} set up a new run; a resumed run keeps its own. Drop them or start a new run.`);
  }
  const outDir = dirname(resolve(out));
  let dirOk = false;
  try {
    dirOk = statSync(outDir).isDirectory();
  } catch {
    dirOk = false;
  }
  if (!dirOk) throw new MsnConfigError(`The folder of --out (${outDir}) does not exist; create it first.`);
  tf.env().set('PROD', true);
  await useBackend(backend);
  const dataset = await loadImageFolder(data);
  const ckpt = resume ? await loadCheckpointFile(resume) : undefined;
  const init: ModelData | undefined = from ? await loadModelFromDirectory(modelDirOf(from)) : undefined;
  let opts: PretrainOptions = {};
  if (!ckpt) {
    const config = args.string('config');
    const configOpts: PretrainOptions = config ? JSON.parse(readFileSync(config, 'utf8')) : {};
    if (init && (configOpts.model !== undefined || configOpts.preset !== undefined)) {
      throw new MsnUsageError(`--config ${config} sets 'model'/'preset', but --from takes the model from ${from}; remove them from the file.`);
    }
    // The flags, over the config file, over the recipe (planned for the run's batch and length).
    const batchSize = batchArg ?? configOpts.batchSize ?? RECIPE_PLAN.batchSize;
    const perEpoch = Math.floor(dataset.count / batchSize);
    const asked = totalArg ?? (epochsArg !== undefined ? epochsArg * perEpoch : stepsArg) ?? configOpts.totalSteps;
    let fileOpts = configOpts;
    if (recipe) {
      fileOpts = mergePretrainOptions(recipeOptions(recipe, dataset, { batchSize, totalSteps: asked }), configOpts);
      if (init) fileOpts = { ...fileOpts, model: undefined }; // --from's model replaces the recipe's
    }
    const planned = asked ?? fileOpts.totalSteps ?? DEFAULT_PRETRAIN.totalSteps;
    opts = { ...fileOpts, preset: args.string('preset') ?? fileOpts.preset, batchSize, totalSteps: planned, seed: seedArg ?? fileOpts.seed ?? DEFAULT_SEED };
    // From a model: its architecture, and views normalised with its mean/std (what its features expect).
    if (init) opts = { ...opts, preset: undefined, model: init.config, views: { ...fileOpts.views, ...preprocessOf(init) } };
  }
  // A model without prototypes (e.g. converted from a released encoder) gets fresh ones, as a new run would.
  const initPrototypesOf = (m: ModelData) => m.prototypes ?? initPrototypes(m.config, prototypeSeed(opts.seed!));
  const batch = ckpt?.config.batchSize ?? opts.batchSize!;
  const workers = workersArg ?? defaultWorkers(batch);
  if (batch % workers !== 0 || batch / workers < 2) {
    throw new MsnUsageError(`--workers ${workers} cannot split a batch of ${batch}: use a divisor of ${batch} that leaves at least 2 images per worker.`);
  }
  let p: Pretrainer | ParallelPretrainer;
  if (workers > 1) {
    const par = { workers, backend };
    if (ckpt) p = await ParallelPretrainer.fromCheckpoint(ckpt, par);
    else if (init) p = await ParallelPretrainer.fromWeights(opts, init, initPrototypesOf(init), 0, par);
    else p = await ParallelPretrainer.create(opts, par);
  } else {
    p = ckpt ? Pretrainer.fromCheckpoint(ckpt) : init ? Pretrainer.fromWeights(opts, init, initPrototypesOf(init)) : Pretrainer.create(opts);
  }
  if (init) {
    const c = init.config;
    console.error(`from ${from}: ${c.imgSize} px, width ${c.embedDim}, depth ${c.depth}, ${c.numPrototypes} prototypes; a new run of ${p.config.totalSteps} planned steps from its weights`);
  }
  if (resume) {
    // Continuing past the run's plan starts a new segment (warm-up, cosine, EMA ramp over these steps).
    const want = stepsArg ?? (epochsArg !== undefined ? epochsArg * Math.floor(dataset.count / p.config.batchSize) : undefined);
    const replanned = want !== undefined && want > 0 && (await p.planSteps(want));
    console.error(`resumed ${resume} at step ${p.step}${replanned ? `; new plan of ${want} steps from here` : ''}`);
  }
  if (workers > 1) console.error(`${workers} worker threads, ${batch / workers} images each per step (--workers 1: one thread)`);
  const cfg = p.config;
  try {
    checkTrainBatch(cfg.model, cfg.views, cfg.batchSize / workers); // each worker has its own heap
  } catch (e) {
    await p.dispose();
    throw e;
  }
  if (cfg.model.imgSize !== dataset.height || dataset.height !== dataset.width) {
    console.error(`note: images are ${dataset.height}x${dataset.width}; views are random crops resized to ${cfg.model.imgSize} px.`);
  }
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  // The steps this call runs, as fit() counts them: for "step s/total (p%)".
  const start = p.step;
  const perEpoch = Math.floor(dataset.count / cfg.batchSize);
  const end = start + (epochsArg !== undefined ? epochsArg * perEpoch : stepsArg ?? Math.max(0, p.planEnd - start));
  const progress = new ProgressReporter(start, end);
  try {
    const summary = await p.fit(dataset, {
      steps: stepsArg, epochs: epochsArg, signal: controller.signal, onProgress: (e) => progress.update(e),
      checkpointEvery: every, onCheckpoint: (c) => saveCheckpointFile(out, c),
    });
    progress.finish();
    console.error(`done: ${summary.steps} steps (${summary.skippedSteps} skipped) in ${summary.seconds.toFixed(0)} s; checkpoint ${out} (step ${p.step})`);
  } catch (e) {
    progress.finish();
    if ((e as Error).name === 'AbortError') {
      await saveCheckpointFile(out, await p.readCheckpoint());
      console.error(`stopped; checkpoint ${out} (step ${p.step}). Resume with --resume ${out}`);
    } else throw e;
  } finally {
    await p.dispose();
  }
}

/** One worker per core, as many as split the batch evenly with at least 2 images each. */
function defaultWorkers(batch: number): number {
  for (let w = availableParallelism(); w > 1; w--) if (batch % w === 0 && batch / w >= 2) return w;
  return 1;
}
