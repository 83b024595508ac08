/**
 * msn-web pretrain --data <IDX folder | image folder> [--preset micro-p4-28]
 *   [--steps N | --epochs N] [--batch-size 64] [--total-steps N] [--resume ckpt]
 *   [--out ckpt.msnckpt] [--checkpoint-every 200] [--seed 0] [--backend wasm|cpu]
 *   [--config options.json]
 * A progress bar on a TTY, plain log lines otherwise. Ctrl-C stops at a step
 * boundary and writes the checkpoint.
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { MsnConfigError } from '../errors.js';
import { useBackend, CoreBackend } from '../runtime/backend.js';
import { Pretrainer, ProgressEvent } from '../pretrain/pretrainer.js';
import { loadCheckpointFile, saveCheckpointFile } from '../pretrain/checkpoint-node.js';
import { PretrainOptions } from '../pretrain/config.js';
import { loadImageFolder } from '../data/folder-node.js';
import { checkTrainBatch } from '../runtime/resources.js';

function parseArgs(argv: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new MsnConfigError(`Unexpected argument '${a}'. Options look like --name value.`);
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new MsnConfigError(`Option ${a} needs a value.`);
    out.set(a.slice(2), v);
    i++;
  }
  return out;
}

export async function pretrainCommand(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  const known = ['data', 'preset', 'steps', 'epochs', 'batch-size', 'total-steps', 'resume', 'out', 'checkpoint-every', 'seed', 'backend', 'config'];
  for (const k of args.keys()) if (!known.includes(k)) throw new MsnConfigError(`Unknown option --${k}. Known: ${known.map((x) => '--' + x).join(' ')}.`);
  const data = args.get('data');
  if (!data) throw new MsnConfigError('Pass --data <folder>: an MNIST-layout IDX folder or a folder of PNG/JPEG images.');
  const out = args.get('out') ?? 'msn-checkpoint.msnckpt';
  // Every number is checked before any work, so a typo fails now rather than after hours of training.
  const int = (k: string, min: number): number | undefined => {
    if (!args.has(k)) return undefined;
    const raw = args.get(k)!;
    const v = Number(raw);
    if (!/^[+-]?\d+$/.test(raw.trim()) || !Number.isSafeInteger(v) || v < min) throw new MsnConfigError(`--${k} must be an integer >= ${min}, got '${raw}'.`);
    return v;
  };
  const stepsArg = int('steps', 1);
  const epochsArg = int('epochs', 1);
  if (stepsArg !== undefined && epochsArg !== undefined) throw new MsnConfigError('Pass --steps or --epochs, not both.');
  const every = int('checkpoint-every', 0) ?? 200;
  const batchArg = int('batch-size', 2);
  const totalArg = int('total-steps', 1);
  const seedArg = int('seed', 0);
  const outDir = dirname(resolve(out));
  let dirOk = false;
  try {
    dirOk = statSync(outDir).isDirectory();
  } catch {
    dirOk = false;
  }
  if (!dirOk) throw new MsnConfigError(`The folder of --out (${outDir}) does not exist; create it first.`);
  tf.env().set('PROD', true);
  await useBackend((args.get('backend') ?? 'wasm') as CoreBackend);
  const dataset = await loadImageFolder(data);
  let p: Pretrainer;
  const resume = args.get('resume');
  if (resume) {
    const setOnly = ['preset', 'batch-size', 'total-steps', 'seed', 'config'].filter((k) => args.has(k));
    if (setOnly.length) throw new MsnConfigError(`${setOnly.map((k) => '--' + k).join(', ')} set up a new run; a resumed run keeps its own. Drop them or start a new run.`);
    p = Pretrainer.fromCheckpoint(await loadCheckpointFile(resume));
    // Continuing past the run's plan starts a new segment (warm-up, cosine, EMA ramp over these steps).
    const want = stepsArg ?? (epochsArg !== undefined ? epochsArg * Math.floor(dataset.count / p.config.batchSize) : undefined);
    const replanned = want !== undefined && want > 0 && p.planSteps(want);
    console.error(`resumed ${resume} at step ${p.step}${replanned ? `; new plan of ${want} steps from here` : ''}`);
  } else {
    const fileOpts: PretrainOptions = args.has('config') ? JSON.parse(readFileSync(args.get('config')!, 'utf8')) : {};
    const batchSize = batchArg ?? fileOpts.batchSize ?? 64;
    const perEpoch = Math.floor(dataset.count / batchSize);
    const planned = totalArg ?? (epochsArg !== undefined ? epochsArg * perEpoch : stepsArg) ?? fileOpts.totalSteps ?? 1000;
    p = Pretrainer.create({
      ...fileOpts, preset: args.get('preset') ?? fileOpts.preset, batchSize, totalSteps: planned,
      seed: seedArg ?? fileOpts.seed ?? 0,
    });
  }
  const cfg = p.config;
  try {
    checkTrainBatch(cfg.model, cfg.views, cfg.batchSize);
  } catch (e) {
    p.dispose();
    throw e;
  }
  if (cfg.model.imgSize !== dataset.height || dataset.height !== dataset.width) {
    console.error(`note: images are ${dataset.height}x${dataset.width}; views are random crops resized to ${cfg.model.imgSize} px.`);
  }
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  const tty = process.stderr.isTTY;
  let last = 0;
  const show = (e: ProgressEvent) => {
    const line = `step ${e.step} epoch ${e.epoch} loss ${e.loss.toFixed(4)} ce ${e.ce.toFixed(4)} me-max ${e.memax.toFixed(4)} ` +
      `lr ${e.lr.toExponential(2)} wd ${e.weightDecay.toFixed(3)} m ${e.momentum.toFixed(4)} protos ${e.numProtosUsed} ` +
      `maxT ${e.maxTarget.toFixed(2)} ${e.imagesPerSec.toFixed(0)} img/s eta ${Math.round(e.etaSec)}s${e.skipped ? ' SKIPPED (non-finite)' : ''}`;
    if (tty) process.stderr.write(`\r${line.padEnd(150)}`);
    else if (performance.now() - last > 10_000 || e.skipped) {
      last = performance.now();
      console.error(line);
    }
  };
  try {
    const summary = await p.fit(dataset, {
      steps: stepsArg, epochs: epochsArg, signal: controller.signal, onProgress: show,
      checkpointEvery: every, onCheckpoint: (c) => saveCheckpointFile(out, c),
    });
    if (tty) process.stderr.write('\n');
    console.error(`done: ${summary.steps} steps (${summary.skippedSteps} skipped) in ${summary.seconds.toFixed(0)} s; checkpoint ${out} (step ${p.step})`);
  } catch (e) {
    if ((e as Error).name === 'AbortError') {
      await saveCheckpointFile(out, p.checkpoint());
      console.error(`\nstopped; checkpoint ${out} (step ${p.step}). Resume with --resume ${out}`);
    } else throw e;
  } finally {
    p.dispose();
  }
}
