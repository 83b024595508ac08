/**
 * Pretraining throughput (images/s, augmentations included) of the small
 * presets on the wasm and cpu backends, on generated 28/32 px images.
 *   npx tsx bench/pretrain.ts [--steps 4] [--batch 64] [--cpu-steps 1] [--backends wasm,cpu] [--json]
 * Rows are compared with the first row (wasm, micro-p4-28) of the same run.
 */
import * as tf from '@tensorflow/tfjs-core';
import { useBackend, CoreBackend } from '../src/runtime/backend.js';
import { Pretrainer } from '../src/pretrain/pretrainer.js';
import { PretrainOptions } from '../src/pretrain/config.js';
import { datasetFromPixels } from '../src/pretrain/source.js';
import { Rng } from '../src/util/rng.js';
import { readFileSync } from 'node:fs';

const arg = (n: string, d: string) => (process.argv.includes(`--${n}`) ? process.argv[process.argv.indexOf(`--${n}`) + 1] : d);
const steps = Number(arg('steps', '4'));
const cpuSteps = Number(arg('cpu-steps', '1'));
const batch = Number(arg('batch', '64'));
tf.env().set('PROD', true);

function images(size: number, count: number): ReturnType<typeof datasetFromPixels> {
  const rng = new Rng(1);
  const px = new Uint8Array(count * size * size);
  for (let i = 0; i < px.length; i++) px[i] = rng.uniform() < 0.2 ? 255 : 0;
  return datasetFromPixels(px, count, size, size, 1);
}

const mnistRecipe: PretrainOptions = JSON.parse(readFileSync(new URL('../models/msn-mnist-micro/recipe.json', import.meta.url), 'utf8'));
const setups: { name: string; opts: PretrainOptions }[] = [
  { name: 'micro-p4-28', opts: { preset: 'micro-p4-28' } },
  { name: 'tiny-p4-32', opts: { preset: 'tiny-p4-32' } },
  { name: 'mnist recipe (p7, shipped model)', opts: mnistRecipe },
];
const rows: Record<string, string | number>[] = [];
for (const backend of arg('backends', 'wasm,cpu').split(',') as CoreBackend[]) {
  await useBackend(backend);
  for (const s of setups) {
    const p = Pretrainer.create({ ...s.opts, batchSize: batch, totalSteps: 1000, warmupSteps: 10 });
    const v = p.config.views;
    const data = images(p.config.model.imgSize, batch * 4);
    await p.fit(data, { steps: 1 }); // warm-up
    const n = backend === 'cpu' ? cpuSteps : steps;
    const t0 = performance.now();
    await p.fit(data, { steps: n });
    const sec = (performance.now() - t0) / 1000;
    rows.push({
      setup: s.name, backend, batch,
      views: `1 target + ${v.randViews} masked (${Math.round(v.maskRatio * 100)}%) + ${v.focalViews} focal ${v.focalSize}px`,
      msPerStep: Math.round((1000 * sec) / n), imagesPerSec: +((batch * n) / sec).toFixed(1),
    });
    p.dispose();
  }
}
const base = rows[0].imagesPerSec as number;
for (const r of rows) r.vsFirstRow = +((r.imagesPerSec as number) / base).toFixed(3);
if (process.argv.includes('--json')) console.log(JSON.stringify(rows));
else console.table(rows);
