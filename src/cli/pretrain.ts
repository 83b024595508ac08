/**
 * msn-web pretrain --data <IDX folder | image folder> [--preset micro-p4-28]
 *   [--steps N | --epochs N] [--batch-size 64] [--total-steps N] [--resume ckpt]
 *   [--out ckpt.msnckpt] [--checkpoint-every 200] [--seed 0] [--backend wasm|cpu]
 *   [--config options.json]
 * A progress bar on a TTY, plain log lines otherwise. Ctrl-C stops at a step
 * boundary and writes the checkpoint.
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { MsnConfigError } from '../errors.js';
import { useBackend, CoreBackend } from '../runtime/backend.js';
import { Pretrainer, ProgressEvent } from '../pretrain/pretrainer.js';
import { loadCheckpointFile, saveCheckpointFile } from '../pretrain/checkpoint-node.js';
import { PretrainOptions } from '../pretrain/config.js';
import { loadImageFolder } from '../data/folder-node.js';

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
  tf.env().set('PROD', true);
  await useBackend((args.get('backend') ?? 'wasm') as CoreBackend);
  const dataset = await loadImageFolder(data);
  let p: Pretrainer;
  const resume = args.get('resume');
  if (resume) {
    p = Pretrainer.fromCheckpoint(await loadCheckpointFile(resume));
    console.error(`resumed ${resume} at step ${p.step}`);
  } else {
    const fileOpts: PretrainOptions = args.has('config') ? JSON.parse(readFileSync(args.get('config')!, 'utf8')) : {};
    const num = (k: string) => (args.has(k) ? Number(args.get(k)) : undefined);
    const batchSize = num('batch-size') ?? fileOpts.batchSize ?? 64;
    const perEpoch = Math.floor(dataset.count / batchSize);
    const planned = num('total-steps') ?? (num('epochs') !== undefined ? num('epochs')! * perEpoch : num('steps')) ?? fileOpts.totalSteps ?? 1000;
    p = Pretrainer.create({
      ...fileOpts, preset: args.get('preset') ?? fileOpts.preset, batchSize, totalSteps: planned,
      seed: num('seed') ?? fileOpts.seed ?? 0,
    });
  }
  const cfg = p.config;
  if (cfg.model.imgSize !== dataset.height || dataset.height !== dataset.width) {
    console.error(`note: images are ${dataset.height}x${dataset.width}; views are random crops resized to ${cfg.model.imgSize} px.`);
  }
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  const tty = process.stderr.isTTY;
  const stepsArg = args.has('steps') ? Number(args.get('steps')) : undefined;
  const epochsArg = args.has('epochs') ? Number(args.get('epochs')) : undefined;
  const every = Number(args.get('checkpoint-every') ?? 200);
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
