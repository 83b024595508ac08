// Browser test harness (no bundler): runs scenarios through dist/client.js
// and returns plain results to the test via window.msnHarness.
import { createMsn, MsnBackendError } from './msn/client.js';

export const TINY = {
  imgSize: 16, patchSize: 4, inChannels: 3, embedDim: 16, depth: 1, numHeads: 2, mlpRatio: 2,
  hiddenDim: 32, outputDim: 16, numPrototypes: 8,
};
const KINDS = ['hbar', 'vbar', 'box', 'diag'];

/** Deterministic gray 16x16 images of four kinds at seeded positions (kind = index % 4). */
function images(count, seed, size = 16) {
  let s = seed >>> 0;
  const rnd = (n) => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % n);
  const px = new Uint8Array(count * size * size);
  for (let i = 0; i < count; i++) {
    const kind = i % 4;
    const a = 2 + rnd(size - 8);
    const b = 2 + rnd(size - 8);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        let on = false;
        if (kind === 0) on = y >= a && y < a + 3;
        else if (kind === 1) on = x >= b && x < b + 3;
        else if (kind === 2) on = y >= a && y < a + 6 && x >= b && x < b + 6 && (y === a || y === a + 5 || x === b || x === b + 5);
        else on = Math.abs(x - y - (a - b)) <= 1;
        px[i * size * size + y * size + x] = on ? 200 + rnd(55) : rnd(30);
      }
    }
  }
  return px;
}
const shape = (count, size = 16) => ({ count, width: size, height: size, channels: 1 });
const labelsOf = (n) => Array.from({ length: n }, (_, i) => KINDS[i % 4]);

/** embed -> 3 pretraining steps -> embed -> linear head fit/predict -> save/load, on one backend. */
async function scenario(backend, opts = {}) {
  const t = {};
  let t0 = performance.now();
  const msn = await createMsn({ config: TINY, seed: 3, backend, worker: opts.worker ?? true });
  t.createMs = performance.now() - t0;
  const caps = await msn.capabilities();
  const probe = images(8, 11);
  t0 = performance.now();
  const before = await msn.embed(probe.slice(), shape(8));
  t.embedMs = performance.now() - t0;
  // RGBA at another size goes through the resize path.
  const rgba = new Uint8ClampedArray(2 * 20 * 20 * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * 37) % 256));
  const resized = await msn.embed(rgba, { count: 2, width: 20, height: 20, channels: 4 });
  const progress = [];
  t0 = performance.now();
  const summary = await msn.pretrain(
    { pixels: images(32, 5), shape: shape(32) },
    { steps: 3, batchSize: 8, onProgress: (p) => progress.push(p) },
  );
  t.pretrainMs = performance.now() - t0;
  const after = await msn.embed(probe.slice(), shape(8));
  t0 = performance.now();
  const headId = await msn.fitHead({ pixels: images(40, 21), shape: shape(40), labels: labelsOf(40), kind: 'linear' });
  const pred = await msn.predict(headId, { pixels: probe.slice(), shape: shape(8) });
  t.headMs = performance.now() - t0;
  const headBytes = await msn.saveHead(headId);
  const loadedId = await msn.loadHead(headBytes);
  const pred2 = await msn.predict(loadedId, { pixels: probe.slice(), shape: shape(8) });
  const ckpt = await msn.saveCheckpoint();
  await msn.loadCheckpoint(ckpt);
  const afterReload = await msn.embed(probe.slice(), shape(8));
  const memBefore = await msn.memory();
  await msn.embed(probe.slice(), shape(8));
  await msn.predict(headId, { pixels: probe.slice(), shape: shape(8) });
  const memAfter = await msn.memory();
  t0 = performance.now();
  await msn.dispose();
  t.disposeMs = performance.now() - t0;
  let afterDispose;
  try {
    await msn.embed(probe.slice(), shape(8));
  } catch (e) {
    afterDispose = e.name;
  }
  return {
    backend: caps.backend, host: caps.host, caps,
    before: Array.from(before), after: Array.from(after), afterReload: Array.from(afterReload),
    resizedFinite: resized.length === 2 * TINY.embedDim && resized.every(Number.isFinite),
    losses: progress.map((p) => p.loss), steps: summary.steps, totalStep: summary.totalStep,
    predLabels: pred.labels, predProbs: Array.from(pred.probabilities), pred2Probs: Array.from(pred2.probabilities),
    truth: labelsOf(8), headBytes: headBytes.length, ckptBytes: ckpt.length,
    memBefore: memBefore.numTensors, memAfter: memAfter.numTensors, afterDispose, timings: t,
  };
}

/** Errors keep name/message across the boundary; dead workers reject; abort works. */
async function errors() {
  const out = {};
  const grab = async (f) => {
    try {
      await f();
      return { name: 'none' };
    } catch (e) {
      return { name: e.name, message: e.message, isBackendError: e instanceof MsnBackendError };
    }
  };
  out.badWasm = await grab(() => createMsn({ config: TINY, backend: 'wasm', wasmPath: './no-such-folder/' }));
  out.missingWorker = await grab(() => createMsn({ config: TINY, workerUrl: new URL('./no-such-worker.js', location.href) }));
  const msn = await createMsn({ config: TINY, backend: 'wasm' });
  out.badShape = await grab(() => msn.embed(new Uint8Array(10), shape(1)));
  out.badRange = await grab(() => msn.embed(new Float32Array(256).fill(7), shape(1)));
  out.badHead = await grab(() => msn.predict('head-404', { features: new Float32Array(16), count: 1 }));
  // Abort: a long run stopped from the main thread after 2 steps.
  const ac = new AbortController();
  let seen = 0;
  out.abort = await grab(() => msn.pretrain(
    { pixels: images(16, 1), shape: shape(16) },
    { steps: 500, batchSize: 8, signal: ac.signal, onProgress: () => { if (++seen === 2) ac.abort(); } },
  ));
  out.stepsAtAbort = (await msn.capabilities()).pretraining?.step;
  // Dispose with a call pending: it rejects, later calls reject too.
  const pending = grab(() => msn.pretrain({ pixels: images(16, 1), shape: shape(16) }, { steps: 500 }));
  await new Promise((r) => setTimeout(r, 50));
  await msn.dispose();
  out.pendingAtDispose = await pending;
  out.afterDispose = await grab(() => msn.memory());
  // A new client works after all that.
  const again = await createMsn({ config: TINY, backend: 'wasm' });
  out.againBackend = again.backend;
  await again.dispose();
  return out;
}

/** The same wasm embedding in-thread (this page imports the worker bundle) and in the worker. */
async function inThreadVsWorker() {
  const a = await createMsn({ config: TINY, seed: 3, backend: 'wasm', worker: false });
  const b = await createMsn({ config: TINY, seed: 3, backend: 'wasm', worker: true });
  const probe = images(8, 11);
  const fa = await a.embed(probe.slice(), shape(8));
  const fb = await b.embed(probe.slice(), shape(8));
  const hosts = [a.host, b.host];
  await a.dispose();
  await b.dispose();
  return { inThread: Array.from(fa), worker: Array.from(fb), hosts };
}

/** Boundary cost: tiny calls and a transferred 32x3x28x28 float32 buffer, worker vs in-thread. */
async function overhead(n = 1000) {
  const res = {};
  for (const worker of [false, true]) {
    const msn = await createMsn({ preset: 'micro-p4-28', backend: 'wasm', worker });
    for (let i = 0; i < 20; i++) await msn.ping();
    let t0 = performance.now();
    for (let i = 0; i < n; i++) await msn.ping();
    const tiny = (performance.now() - t0) / n;
    t0 = performance.now();
    for (let i = 0; i < n; i++) await msn.ping(new Float32Array(32 * 3 * 28 * 28));
    const buf = (performance.now() - t0) / n;
    t0 = performance.now();
    for (let i = 0; i < n; i++) await msn.ping(new Float32Array(32 * 3 * 28 * 28), { transfer: false });
    const copy = (performance.now() - t0) / n;
    const imgs = new Float32Array(32 * 28 * 28 * 3).fill(0.5);
    await msn.embed(imgs.slice(), { count: 32, width: 28, height: 28, channels: 3 });
    t0 = performance.now();
    for (let i = 0; i < 20; i++) await msn.embed(imgs.slice(), { count: 32, width: 28, height: 28, channels: 3 });
    const embed = (performance.now() - t0) / 20;
    res[worker ? 'worker' : 'inThread'] = { tinyCallMs: tiny, transferredBufferMs: buf, copiedBufferMs: copy, embed32Ms: embed };
    await msn.dispose();
  }
  return res;
}

/** Pretraining images/s of micro-p4-28 in the worker (wasm): `steps` timed steps after 2 warm-up steps. */
async function pretrainRate(steps = 8, batchSize = 64, workers = 1) {
  const msn = await createMsn({ preset: 'micro-p4-28', backend: 'wasm' });
  const caps = await msn.capabilities();
  const px = images(512, 9, 28);
  await msn.pretrain({ pixels: px.slice(), shape: shape(512, 28) }, { steps: 2, batchSize, workers });
  const t0 = performance.now();
  await msn.pretrain({ pixels: px.slice(), shape: shape(512, 28) }, { steps });
  const seconds = (performance.now() - t0) / 1000;
  await msn.dispose();
  return { imagesPerSec: (steps * batchSize) / seconds, wasm: caps.wasm, crossOriginIsolated: self.crossOriginIsolated };
}

/**
 * pretrain({ workers }) in this page: 3 steps over `workers` replicas (Web Workers of the worker
 * bundle) and the same 3 steps in one thread; the embeddings of both, and of a third client that
 * loaded the parallel run's checkpoint. Errors come back as { name, message }.
 */
async function parallelPretrain(workers) {
  const probe = images(3, 21);
  const run = async (w) => {
    const msn = await createMsn({ config: TINY, seed: 3, backend: 'wasm' });
    try {
      const steps = [];
      const s = await msn.pretrain({ pixels: images(32, 5), shape: shape(32) }, { steps: 3, batchSize: 8, workers: w, onProgress: (p) => steps.push(p.step) });
      const caps = await msn.capabilities();
      return { steps, totalStep: s.totalStep, features: Array.from(await msn.embed(probe.slice(), shape(3))), checkpoint: await msn.saveCheckpoint(), pretraining: caps.pretraining ?? null };
    } catch (e) {
      // The engine stays usable after a refused run: it still embeds.
      return { error: { name: e.name, message: e.message }, embedsAfter: (await msn.embed(probe.slice(), shape(3))).length, pretraining: (await msn.capabilities()).pretraining ?? null };
    } finally {
      await msn.dispose();
    }
  };
  const par = await run(workers);
  if (par.error) return { crossOriginIsolated: self.crossOriginIsolated, par };
  const one = await run(1);
  const msn = await createMsn({ config: TINY, seed: 3, backend: 'wasm' });
  await msn.loadCheckpoint(par.checkpoint);
  const resumed = Array.from(await msn.embed(probe.slice(), shape(3)));
  await msn.dispose();
  return { crossOriginIsolated: self.crossOriginIsolated, par: { ...par, checkpoint: par.checkpoint.length }, one: { features: one.features }, resumed };
}

/** The named model loaded twice with `cache: dbName`: where each load came from, and the same features. */
async function cachedModel(dbName) {
  const probe = images(2, 4, 28);
  const out = [];
  for (let i = 0; i < 2; i++) {
    const msn = await createMsn({ model: 'msn-mnist-micro', backend: 'wasm', cache: dbName });
    const caps = await msn.capabilities();
    out.push({ fromCache: caps.model.fromCache, name: caps.model.name, features: Array.from(await msn.embed(probe.slice(), shape(2, 28))) });
    await msn.dispose();
  }
  return out;
}

window.msnHarness = { scenario, errors, inThreadVsWorker, overhead, pretrainRate, parallelPretrain, cachedModel };
window.harnessReady = true;
