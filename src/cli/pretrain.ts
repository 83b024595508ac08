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
import { type CheckpointData, Pretrainer } from '../pretrain/pretrainer.js';
import { ParallelPretrainer } from '../pretrain/parallel.js';
import { loadCheckpointFile, saveCheckpointFile } from '../pretrain/checkpoint-node.js';
import { PretrainOptions } from '../pretrain/config.js';
import { isRecipeName, mergePretrainOptions, recipeNames, recipeOptions } from '../pretrain/recipes.js';
import { loadImageFolder } from '../data/folder-node.js';
import type { ImageDataset } from '../pretrain/source.js';
import { checkTrainBatch } from '../runtime/resources.js';
import { preprocessOf } from '../runtime/model-source.js';
import { loadModelFromDirectory } from '../io/model-loader-node.js';
import { initPrototypes } from '../model/params.js';
import type { ModelData } from '../io/model-format.js';
import { modelDirOf } from './paths.js';
import { MsnUsageError, parseCommand, usage } from './args.js';
import { BACKENDS, PRETRAIN } from './commands.js';
import { ProgressReporter } from './progress.js';

type Args = Exclude<ReturnType<typeof parseCommand>, 'help'>;

/** The command's flags, every number and every conflict checked before any work (a typo fails now, not after hours of training). */
function readFlags(args: Args) {
  const data = args.string('data');
  if (!data) throw new MsnUsageError('Pass --data <folder>: an MNIST-layout IDX folder or a folder of PNG/JPEG images.');
  const out = args.string('out')!;
  const steps = args.int('steps', 1);
  const epochs = args.int('epochs', 1);
  if (steps !== undefined && epochs !== undefined) throw new MsnUsageError('Pass --steps or --epochs, not both.');
  const flags = {
    data, out, steps, epochs,
    every: args.int('checkpoint-every', 0)!,
    batch: args.int('batch-size', 2),
    total: args.int('total-steps', 1),
    seed: args.int('seed', 0),
    backend: args.choice('backend', BACKENDS)!,
    workers: args.int('workers', 1),
    resume: args.string('resume'),
    from: args.string('from'),
    recipe: args.string('recipe'),
    preset: args.string('preset'),
    config: args.string('config'),
  };
  const { resume, from, recipe } = flags;
  if (from && resume) throw new MsnUsageError('Pass --from (a new run from a model) or --resume (continue a checkpoint), not both.');
  if (from && args.has('preset')) throw new MsnUsageError(`--from takes the model's architecture from ${from}; drop --preset.`);
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
  return flags;
}
type Flags = ReturnType<typeof readFlags>;

/** A new run's options: the flags, over the config file, over the recipe (planned for the run's batch and length), over --from's model. */
function newRunOptions(flags: Flags, dataset: ImageDataset, init: ModelData | undefined): PretrainOptions {
  const { config, recipe, from } = flags;
  const configOpts: PretrainOptions = config ? JSON.parse(readFileSync(config, 'utf8')) : {};
  if (init && (configOpts.model !== undefined || configOpts.preset !== undefined)) {
    throw new MsnUsageError(`--config ${config} sets 'model'/'preset', but --from takes the model from ${from}; remove them from the file.`);
  }
  const batchSize = flags.batch ?? configOpts.batchSize ?? RECIPE_PLAN.batchSize;
  const perEpoch = Math.floor(dataset.count / batchSize);
  const asked = flags.total ?? (flags.epochs !== undefined ? flags.epochs * perEpoch : flags.steps) ?? configOpts.totalSteps;
  let fileOpts = configOpts;
  if (recipe) {
    fileOpts = mergePretrainOptions(recipeOptions(recipe, dataset, { batchSize, totalSteps: asked }), configOpts);
    if (init) fileOpts = { ...fileOpts, model: undefined }; // --from's model replaces the recipe's
  }
  const planned = asked ?? fileOpts.totalSteps ?? DEFAULT_PRETRAIN.totalSteps;
  const opts = { ...fileOpts, preset: flags.preset ?? fileOpts.preset, batchSize, totalSteps: planned, seed: flags.seed ?? fileOpts.seed ?? DEFAULT_SEED };
  // From a model: its architecture, and views normalised with its mean/std (what its features expect).
  return init ? { ...opts, preset: undefined, model: init.config, views: { ...fileOpts.views, ...preprocessOf(init) } } : opts;
}

/** A pretrainer in this thread or over worker threads: resumed, from a model's weights, or new. */
async function openPretrainer(
  workers: number, backend: Flags['backend'], ckpt: CheckpointData | undefined, init: ModelData | undefined, opts: PretrainOptions,
): Promise<Pretrainer | ParallelPretrainer> {
  // A model without prototypes (e.g. converted from a released encoder) gets fresh ones, as a new run would.
  const initPrototypesOf = (m: ModelData) => m.prototypes ?? initPrototypes(m.config, prototypeSeed(opts.seed!));
  if (workers > 1) {
    const par = { workers, backend };
    if (ckpt) return ParallelPretrainer.fromCheckpoint(ckpt, par);
    if (init) return ParallelPretrainer.fromWeights(opts, init, initPrototypesOf(init), 0, par);
    return ParallelPretrainer.create(opts, par);
  }
  return ckpt ? Pretrainer.fromCheckpoint(ckpt) : init ? Pretrainer.fromWeights(opts, init, initPrototypesOf(init)) : Pretrainer.create(opts);
}

export async function pretrainCommand(argv: string[]): Promise<void> {
  const args = parseCommand(PRETRAIN, argv);
  if (args === 'help') {
    process.stdout.write(usage(PRETRAIN));
    return;
  }
  const flags = readFlags(args);
  const { out, resume, from, steps: stepsArg, epochs: epochsArg } = flags;
  tf.env().set('PROD', true);
  await useBackend(flags.backend);
  const dataset = await loadImageFolder(flags.data);
  const ckpt = resume ? await loadCheckpointFile(resume) : undefined;
  const init: ModelData | undefined = from ? await loadModelFromDirectory(modelDirOf(from)) : undefined;
  const opts = ckpt ? {} : newRunOptions(flags, dataset, init);
  const batch = ckpt?.config.batchSize ?? opts.batchSize!;
  const workers = flags.workers ?? defaultWorkers(batch);
  if (batch % workers !== 0 || batch / workers < 2) {
    throw new MsnUsageError(`--workers ${workers} cannot split a batch of ${batch}: use a divisor of ${batch} that leaves at least 2 images per worker.`);
  }
  const p = await openPretrainer(workers, flags.backend, ckpt, init, opts);
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
  await runFit(p, dataset, flags);
}

/** fit() with the progress line; Ctrl-C stops at a step boundary and writes the checkpoint. Disposes the pretrainer. */
async function runFit(p: Pretrainer | ParallelPretrainer, dataset: ImageDataset, flags: Flags): Promise<void> {
  const { out, steps, epochs } = flags;
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  // The steps this call runs, as fit() counts them: for "step s/total (p%)".
  const start = p.step;
  const perEpoch = Math.floor(dataset.count / p.config.batchSize);
  const end = start + (epochs !== undefined ? epochs * perEpoch : steps ?? Math.max(0, p.planEnd - start));
  const progress = new ProgressReporter(start, end);
  try {
    const summary = await p.fit(dataset, {
      steps, epochs, signal: controller.signal, onProgress: (e) => progress.update(e),
      checkpointEvery: flags.every, onCheckpoint: (c) => saveCheckpointFile(out, c),
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
