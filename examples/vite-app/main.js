// A Vite app: a plain `import` from msn-web. Vite bundles the worker, its
// chunks and the tfjs .wasm files itself; nothing is copied into public/.
import { createMsn } from 'msn-web';

const out = document.getElementById('out');
const log = (line) => (out.textContent += `\n${line}`);

/** `count` 28x28 gray images: even indices horizontal stripes ("h"), odd ones vertical ("v"), a little noise. */
function stripes(count, seed = 1) {
  const px = new Uint8Array(count * 28 * 28);
  let s = seed;
  const rand = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  for (let i = 0; i < count; i++) {
    const phase = Math.floor(rand() * 4);
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        const line = i % 2 === 0 ? y : x;
        px[i * 784 + y * 28 + x] = ((line + phase) % 4 < 2 ? 220 : 30) + Math.floor(rand() * 20);
      }
    }
  }
  return { pixels: px, shape: { count, width: 28, height: 28, channels: 1 }, labels: Array.from({ length: count }, (_, i) => (i % 2 === 0 ? 'h' : 'v')) };
}

async function main() {
  const t0 = performance.now();
  // The model shipped in the package, by name (Vite emits its files as assets); or model: '/models/your-model/'.
  // ?worker=0 runs the engine on the page instead (TensorFlow.js is then loaded on demand, on the main thread).
  const worker = new URLSearchParams(location.search).get('worker') !== '0';
  const progress = [];
  const msn = await createMsn({ model: 'msn-mnist-micro', backend: 'auto', worker, onProgress: (p) => progress.push(p) });
  const caps = await msn.capabilities();
  out.textContent = `model: ${caps.model.name} (${progress.at(-1)?.totalBytes} bytes)`;
  log(`backend: ${caps.backend}${caps.wasm ? ` (simd ${caps.wasm.simd}, threads ${caps.wasm.threads})` : ''}`);
  for (const [name, b] of Object.entries(caps.backends)) if (b.status === 'rejected') log(`  not ${name}: ${b.reason}`);

  const train = stripes(16, 1);
  const features = await msn.embed(train.pixels, train.shape, { transfer: false });
  log(`embed: ${train.shape.count} images -> ${features.length / train.shape.count} features each`);

  const head = await msn.fitHead({ features, count: train.shape.count, labels: train.labels, kind: 'linear' });
  const test = stripes(6, 2);
  const prediction = await msn.predict(head, { pixels: test.pixels, shape: test.shape });
  log(`predict: ${prediction.labels.join(' ')} (truth ${test.labels.join(' ')})`);

  const summary = await msn.pretrain({ pixels: train.pixels, shape: train.shape }, {
    steps: 2, batchSize: 8, onProgress: (p) => log(`pretrain step ${p.step}: loss ${p.loss.toFixed(4)}`),
  });
  log(`pretrain: ${summary.steps} steps, last loss ${summary.lastLoss.toFixed(4)}`);
  const again = stripes(6, 2); // predict() transferred test.pixels to the worker (that array is now empty)
  const after = await msn.embed(again.pixels, again.shape);

  const result = {
    ok: true, backend: caps.backend, host: msn.host, backends: caps.backends, wasm: caps.wasm ?? null,
    model: caps.model.name ?? null, randomWeights: caps.model.randomWeights, progress: progress.map((p) => [p.loadedBytes, p.totalBytes]),
    dim: caps.model.config.embedDim, featuresLength: features.length, featuresFinite: features.every(Number.isFinite),
    predicted: prediction.labels, truth: test.labels, steps: summary.steps, lastLoss: summary.lastLoss,
    afterLength: after.length, afterFinite: after.every(Number.isFinite), seconds: (performance.now() - t0) / 1000,
  };
  await msn.dispose();
  log(`done in ${result.seconds.toFixed(1)} s`);
  return result;
}

main().then(
  (r) => (document.body.dataset.result = JSON.stringify(r)),
  (e) => {
    log(`error: ${e.name}: ${e.message}`);
    document.body.dataset.result = JSON.stringify({ ok: false, name: e.name, message: e.message });
  },
);
