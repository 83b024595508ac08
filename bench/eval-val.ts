/**
 * Few-shot accuracy on the validation split (bench/val-split.ts: drawn from
 * the MNIST training images) of checkpoints' target encoders or model
 * folders, k = 1, 2, 5, 10, linear head, 5 draws. For the model card's
 * learning curve and for choices between models; the test split is left to
 * `msn-web eval`, once, at the end.
 *   npx tsx bench/eval-val.ts <run.msnckpt | model-dir> ... [--seeds 5] [--json]
 */
import { statSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../src/runtime/backend.js';
import { readIdxFolder } from '../src/data/idx-node.js';
import { loadCheckpointFile } from '../src/pretrain/checkpoint-node.js';
import { loadEvalModel } from '../src/cli/eval.js';
import { defaultDataDir } from '../src/cli/paths.js';
import { VisionTransformer } from '../src/model/vit.js';
import { targetEncoder, validationSplit } from './val-split.js';

const argv = process.argv.slice(2);
const seeds = argv.includes('--seeds') ? Number(argv[argv.indexOf('--seeds') + 1]) : 5;
const paths = argv.filter((a, i) => !a.startsWith('--') && argv[i - 1] !== '--seeds');
const shots = [1, 2, 5, 10];
tf.env().set('PROD', true);
await useBackend('wasm');
const score = validationSplit(readIdxFolder(defaultDataDir('bench/eval-val.ts')), shots, seeds);
const rows: { source: string; step?: number; [k: string]: unknown }[] = [];
for (const path of paths) {
  let step: number | undefined;
  let enc: { vit: VisionTransformer; norm: { mean: number[]; std: number[] } };
  if (statSync(path).isDirectory()) {
    const m = await loadEvalModel(path);
    enc = { vit: VisionTransformer.create(m.config, { params: m.params, buffers: m.buffers }), norm: { mean: m.mean, std: m.std } };
  } else {
    const ckpt = await loadCheckpointFile(path);
    step = ckpt.step;
    enc = targetEncoder(ckpt);
  }
  try {
    const r = await score(enc.vit, enc.norm);
    const row: (typeof rows)[number] = { source: path, ...(step !== undefined ? { step } : {}) };
    for (const x of r) row[`k=${x.shots}`] = `${(100 * x.mean).toFixed(1)} ± ${(100 * x.std).toFixed(1)}`;
    rows.push(row);
    process.stderr.write(`${JSON.stringify(row)}\n`);
  } finally {
    enc.vit.dispose();
  }
}
if (argv.includes('--json')) console.log(JSON.stringify({ split: 'validation (train 50,000-59,999)', seeds, rows }));
else console.table(rows);
