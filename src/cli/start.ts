/**
 * `npm start`, the main job: the shipped MSN model (pretrained by msn-web on
 * the MNIST training images without labels) learns MNIST from k labelled
 * images per class; its accuracy is printed next to logistic regression on
 * raw pixels, measured in the same run.
 */
import * as tf from '@tensorflow/tfjs-core';
import { readIdxFolder } from '../data/idx-node.js';
import { evaluateOnIdx, formatTable } from '../eval/mnist-eval.js';
import { useBackend } from '../runtime/backend.js';
import { loadEvalModel } from './eval.js';
import { DEFAULT_MODEL_DIR, defaultDataDir } from './paths.js';

tf.env().set('PROD', true); // silences the "install tfjs-node" banner
await useBackend('wasm');
const t0 = performance.now();
const model = await loadEvalModel(DEFAULT_MODEL_DIR);
const data = readIdxFolder(defaultDataDir('npm start'));
const c = model.config;
console.log(`msn-web: shipped model ${DEFAULT_MODEL_DIR}`);
console.log(`  ViT ${c.imgSize}px, patch ${c.patchSize}, width ${c.embedDim}, ${c.depth} blocks; backend ${tf.getBackend()}`);
console.log(`  few-shot MNIST: k labelled train images per class, linear head on frozen features, all ${data.test.count} test images, 5 draws\n`);
const rows = await evaluateOnIdx(model, data, {
  shots: [1, 2, 5, 10], seeds: 5, heads: ['linear'], methods: ['msn', 'raw-pixels'],
  onStatus: (m) => console.error(`  ... ${m}`),
});
console.log(formatTable(rows));
console.log(`\n(${((performance.now() - t0) / 1000).toFixed(0)} s)`);
console.log(`
Your own images:
  npx tsx src/cli/main.ts pretrain --data <folder of PNG/JPEG or IDX files> --out run.msnckpt   # continue MSN on them
  npx tsx src/cli/main.ts export run.msnckpt my-model                                          # write a model folder
  npx tsx src/cli/main.ts eval --model my-model --data <MNIST-layout IDX folder>                # few-shot accuracy
In code: createFewShotClassifier() from 'msn-web/core' on features from embedImages(); see README.md.`);
