// A webpack 5 app: one plain import from msn-web, no loaders, no copied files.
import { createMsn } from 'msn-web';

const out = document.getElementById('out');
const show = (line) => (out.textContent += `\n${line}`);

/** Labelled 28x28 gray images: "h" (horizontal bars) and "v" (vertical bars), alternating, with a random phase and noise. */
function bars(count, seed) {
  let state = seed;
  const next = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 4294967296;
  const pixels = new Uint8Array(count * 784);
  const labels = [];
  for (let i = 0; i < count; i++) {
    const label = i % 2 ? 'v' : 'h';
    const phase = Math.floor(next() * 4);
    labels.push(label);
    for (let p = 0; p < 784; p++) {
      const line = label === 'h' ? Math.floor(p / 28) : p % 28;
      pixels[i * 784 + p] = ((line + phase) % 4 < 2 ? 220 : 30) + Math.floor(next() * 20);
    }
  }
  return { pixels, shape: { count, width: 28, height: 28, channels: 1 }, labels };
}

async function run() {
  const started = performance.now();
  const progress = [];
  // The model shipped in the package, by name: webpack emitted its files as assets.
  const msn = await createMsn({ model: 'msn-mnist-micro', onProgress: ({ loadedBytes, totalBytes }) => progress.push([loadedBytes, totalBytes]) });
  const caps = await msn.capabilities();
  out.textContent = `model ${caps.model.name}, backend ${caps.backend}`;
  for (const [name, b] of Object.entries(caps.backends)) if (b.status === 'rejected') show(`  not ${name}: ${b.reason}`);

  const train = bars(16, 1);
  const features = await msn.embed(train.pixels, train.shape, { transfer: false });
  const head = await msn.fitHead({ features, count: train.shape.count, labels: train.labels, kind: 'linear' });
  const test = bars(6, 2);
  const { labels: predicted } = await msn.predict(head, { pixels: test.pixels, shape: test.shape });
  show(`predicted ${predicted.join('')}, truth ${test.labels.join('')}`);

  const summary = await msn.pretrain({ pixels: train.pixels, shape: train.shape }, { steps: 2, batchSize: 8 });
  show(`pretraining: ${summary.steps} steps, last loss ${summary.lastLoss.toFixed(4)}`);
  const after = await msn.embed(bars(6, 2).pixels, test.shape);
  await msn.dispose();

  const seconds = (performance.now() - started) / 1000;
  show(`done in ${seconds.toFixed(1)} s`);
  return {
    ok: true, backend: caps.backend, host: msn.host, backends: caps.backends, wasm: caps.wasm ?? null,
    model: caps.model.name ?? null, randomWeights: caps.model.randomWeights, progress,
    dim: caps.model.config.embedDim, featuresLength: features.length, featuresFinite: features.every(Number.isFinite),
    predicted, truth: test.labels, steps: summary.steps, lastLoss: summary.lastLoss,
    afterLength: after.length, afterFinite: after.every(Number.isFinite), seconds,
  };
}

run().then(
  (result) => (document.body.dataset.result = JSON.stringify(result)),
  (e) => {
    show(`error: ${e.name}: ${e.message}`);
    document.body.dataset.result = JSON.stringify({ ok: false, name: e.name, message: e.message });
  },
);
