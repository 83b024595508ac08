/** Kernel-time profile of one train step (development aid): npx tsx bench/profile-step.ts [preset] [backend] */
import * as tf from '@tensorflow/tfjs-core';
import { getPreset } from '../src/model/config.js';
import { useBackend, CoreBackend } from '../src/runtime/backend.js';
import { createTrainState, disposeTrainState } from '../src/train/state.js';
import { makeSchedules, officialSchedule } from '../src/train/schedules.js';
import { trainStep } from '../src/train/step.js';

const cfg = getPreset(process.argv[2] ?? 'micro-p4-28');
await useBackend((process.argv[3] ?? 'wasm') as CoreBackend);
tf.env().set('PROD', true);
const batch = 32;
const state = createTrainState(cfg, { seed: 0 });
const sched = makeSchedules(officialSchedule(1000, 10));
const hyper = { loss: { tau: 0.1, sinkhornIters: 3, memaxWeight: 1, entWeight: 0 }, clipGrad: 3 };
const n = (cfg.imgSize / cfg.patchSize) ** 2;
const keep = Array.from({ length: Math.floor(n * 0.7) }, (_, i) => i);
const x = tf.randomNormal([batch, cfg.imgSize, cfg.imgSize, 3]) as tf.Tensor4D;
const f = tf.randomNormal([batch * 2, 16, 16, 3]) as tf.Tensor4D;
const b = { target: x, anchors: [{ images: x, keepPatches: keep }, { images: f }] };
trainStep(state, b, hyper, sched);
const t0 = performance.now();
const prof = await tf.profile(() => { trainStep(state, b, hyper, sched); });
const wall = performance.now() - t0;
const by = new Map<string, { ms: number; n: number }>();
for (const k of prof.kernels) {
  const e = by.get(k.name) ?? { ms: 0, n: 0 };
  e.ms += k.kernelTimeMs as number; e.n++;
  by.set(k.name, e);
}
const rows = [...by].sort((a, b) => b[1].ms - a[1].ms).slice(0, 25).map(([k, v]) => ({ kernel: k, ms: +v.ms.toFixed(1), calls: v.n }));
console.table(rows);
console.log('kernels', prof.kernels.length, 'sum kernel ms', prof.kernels.reduce((a, k) => a + (k.kernelTimeMs as number), 0).toFixed(0), 'wall (with profiling)', wall.toFixed(0));
disposeTrainState(state);
