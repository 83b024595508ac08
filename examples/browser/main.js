// A plain page, no bundler: the client from dist/, the shipped model by URL.
import { createMsn } from '../../dist/client.js';

const out = document.getElementById('out');
const pad = document.getElementById('pad');
const ctx = pad.getContext('2d', { willReadFrequently: true });
const clear = () => { ctx.fillStyle = '#000'; ctx.fillRect(0, 0, 28, 28); };
clear();
let drawing = false;
pad.onpointerdown = () => { drawing = true; };
window.onpointerup = () => { drawing = false; };
pad.onpointermove = (e) => {
  if (!drawing) return;
  const r = pad.getBoundingClientRect();
  ctx.fillStyle = '#fff';
  ctx.beginPath();
  ctx.arc(((e.clientX - r.left) / r.width) * 28, ((e.clientY - r.top) / r.height) * 28, 1.6, 0, 2 * Math.PI);
  ctx.fill();
};

// ?backend=webgpu|wasm|cpu forces a backend; 'auto' picks the first that works and says why not the others.
const backend = new URLSearchParams(location.search).get('backend') ?? 'auto';
const msn = await createMsn({ model: new URL('../../models/msn-mnist-micro/', location.href).href, backend });
const caps = await msn.capabilities();
const skipped = Object.entries(caps.backends).filter(([, b]) => b.status === 'rejected').map(([n, b]) => `${n}: ${b.reason}`);
out.textContent = `model loaded; backend ${caps.backend}${skipped.length ? ` (not used: ${skipped.join('; ')})` : ''}`;
const examples = []; // { features, label }
const pixels = () => ctx.getImageData(0, 0, 28, 28).data; // RGBA 0-255
for (let d = 0; d <= 9; d++) {
  const b = document.createElement('button');
  b.textContent = `this is ${d}`;
  b.onclick = async () => {
    const features = await msn.embed(pixels(), { count: 1, width: 28, height: 28, channels: 4 });
    examples.push({ features, label: String(d) });
    out.textContent = `${examples.length} examples`;
    clear();
  };
  document.getElementById('labels').append(b);
}
let head;
document.getElementById('clear').onclick = clear;
document.getElementById('fit').onclick = async () => {
  const dim = examples[0].features.length;
  const features = new Float32Array(examples.length * dim);
  examples.forEach((e, i) => features.set(e.features, i * dim));
  head = await msn.fitHead({ features, count: examples.length, labels: examples.map((e) => e.label), kind: 'linear' });
  out.textContent = `fitted on ${examples.length} examples`;
};
document.getElementById('predict').onclick = async () => {
  if (!head) return;
  const p = await msn.predict(head, { pixels: pixels(), shape: { count: 1, width: 28, height: 28, channels: 4 } });
  out.textContent = `prediction: ${p.labels[0]}`;
};
