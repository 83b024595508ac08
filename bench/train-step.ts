/**
 * Train-step speed of the small presets on the wasm and cpu backends (and
 * WebGPU on request: in Node that is Dawn on whatever adapter it finds, here
 * SwiftShader, a software GPU; see test/webgpu/dawn.ts).
 * One MSN iteration = target forward + anchor forward/backward (1 masked
 * random view + F focal views) + AdamW + EMA, batch B, with the one
 * asynchronous read per step that the pretrainer does (trainStepAsync).
 *   npm run bench:backends -- [--batch 32] [--steps 5] [--presets micro-p4-28] [--backends wasm,cpu,webgpu] [--json]
 * Speeds are reported with the first backend's time per step as the baseline.
 */
import * as tf from '@tensorflow/tfjs-core';
import { getPreset } from '../src/model/config.js';
import { useBackend, CoreBackend } from '../src/runtime/backend.js';
import { createTrainState, disposeTrainState } from '../src/train/state.js';
import { makeSchedules, officialSchedule } from '../src/train/schedules.js';
import { trainStepAsync } from '../src/train/step.js';
import { selectBackend } from '../src/runtime/select-backend.js';
import { installNodeWebGpu } from '../test/webgpu/dawn.js';
import { Rng } from '../src/util/rng.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}

const batch = Number(arg('batch', '32'));
const steps = Number(arg('steps', '3'));
const presets = arg('presets', 'micro-p4-28').split(',');
const backends = arg('backends', 'wasm,cpu').split(',') as (CoreBackend | 'webgpu')[];
const focalViews = Number(arg('focal', '2'));
const maskRatio = Number(arg('mask', '0.3'));
tf.env().set('PROD', true);

const rows: Record<string, unknown>[] = [];
let adapter: string | undefined;
for (const preset of presets) {
  const cfg = getPreset(preset);
  const focal = Math.max(cfg.patchSize, Math.round(cfg.imgSize / 2 / cfg.patchSize) * cfg.patchSize);
  for (const backend of backends) {
    if (backend === 'webgpu') {
      const why = await installNodeWebGpu();
      if (why) throw new Error(`No WebGPU here: ${why}.`);
      adapter = (await selectBackend('webgpu')).webgpu?.adapter;
    } else {
      await useBackend(backend);
    }
    const state = createTrainState(cfg, { seed: 0 });
    const sched = makeSchedules(officialSchedule(1000, 10));
    const hyper = { loss: { tau: 0.1, sinkhornIters: 3, memaxWeight: 1, entWeight: 0 }, clipGrad: 3 };
    const rng = new Rng(1);
    const n = (cfg.imgSize / cfg.patchSize) ** 2;
    const keep = Array.from(rng.permutation(n).slice(0, Math.floor(n * (1 - maskRatio))));
    const target = tf.randomNormal([batch, cfg.imgSize, cfg.imgSize, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const rand = tf.randomNormal([batch, cfg.imgSize, cfg.imgSize, 3], 0, 1, 'float32', 2) as tf.Tensor4D;
    const foc = tf.randomNormal([batch * focalViews, focal, focal, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
    const b = { target, anchors: [{ images: rand, keepPatches: keep }, ...(focalViews ? [{ images: foc }] : [])] };
    await trainStepAsync(state, b, hyper, sched); // warm-up (kernel compilation, allocation)
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) await trainStepAsync(state, b, hyper, sched);
    const ms = (performance.now() - t0) / steps;
    rows.push({ preset, backend: backend === 'webgpu' ? `webgpu (${adapter})` : backend, batch, views: `1 target + 1 masked (${keep.length}/${n} patches) + ${focalViews} focal ${focal}px`, msPerStep: Math.round(ms), imagesPerSec: +(batch / (ms / 1000)).toFixed(1) });
    tf.dispose([target, rand, foc]);
    disposeTrainState(state);
  }
}
const base = rows[0].msPerStep as number;
for (const r of rows) r.speedupVsFirst = +(base / (r.msPerStep as number)).toFixed(2);
if (process.argv.includes('--json')) console.log(JSON.stringify(rows));
else console.table(rows);
