// The msn-web demo: a plain page (no bundler, no framework) on dist/client.js.
// The model runs in dist/worker/msn.worker.js; this file only keeps the page's
// state, draws it, and stores the user's work in IndexedDB.
import { createMsn, createIdbCheckpointStore } from '../../dist/client.js';
import { createPad, imagePixels, stack, thumbnail } from './images.js';
import { createPlot } from './plot.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const BACKEND = params.get('backend') ?? 'auto';
const store = createIdbCheckpointStore('msn-web-demo');
const PRETRAIN = { batchSize: 16, lr: { start: 1e-5, ref: 1e-4, final: 1e-6 }, checkpointEvery: 5 };

const state = {
  msn: null,
  caps: null,
  size: 28,
  busy: '', // what the page is doing now ('' when idle); most buttons wait for it
  labels: [],
  selected: '',
  examples: [], // { label, pixels: Uint8ClampedArray (size x size x 4) }
  head: null, // { id, classes, fingerprint }
  samples: null, // [{ label, pixels }] once loaded
  pretrain: { phase: 'idle', abort: null, stop: '', base: undefined, headBefore: null, historyBefore: 0 },
  accuracy: { before: null, after: null, current: null },
};

// ---------------------------------------------------------------- messages

function status(text) {
  $('status').textContent = text;
}

function showError(err) {
  const e = $('error');
  const msg = err instanceof Error ? err.message : String(err);
  e.textContent = msg.startsWith('msn-web') || !err?.name || err.name === 'Error' ? msg : `${err.name}: ${msg}`;
  e.hidden = false;
}

function clearError() {
  $('error').hidden = true;
  $('error').textContent = '';
}

// Nothing escapes as an uncaught exception: whatever slips through is shown in words.
window.addEventListener('unhandledrejection', (e) => {
  e.preventDefault();
  showError(e.reason);
});
window.addEventListener('error', (e) => {
  e.preventDefault();
  showError(e.error ?? e.message);
});

/** Runs an action: marks the page busy, disables what cannot act, shows errors in words. */
async function act(what, fn) {
  if (state.busy) return;
  clearError();
  state.busy = what;
  status(`${what}…`);
  render();
  try {
    await fn();
  } catch (err) {
    showError(err);
    status(`${what}: failed.`);
  } finally {
    state.busy = '';
    render();
  }
}

// ---------------------------------------------------------------- storage

const text = new TextEncoder();
const untext = new TextDecoder();
const putJson = (key, value) => store.put(key, text.encode(JSON.stringify(value)));
async function getJson(key) {
  const bytes = await store.get(key);
  return bytes ? JSON.parse(untext.decode(bytes)) : undefined;
}

async function saveExamples() {
  await putJson('examples-meta', { size: state.size, labels: state.labels, examples: state.examples.map((e) => e.label) });
  await store.put('examples', new Uint8Array(stack(state.examples.map((e) => e.pixels)).buffer));
}

async function saveHistory() {
  await putJson('history', plot.points);
}

// ---------------------------------------------------------------- the model

async function start() {
  $('backend-choice').value = ['auto', 'wasm', 'webgpu', 'cpu'].includes(BACKEND) ? BACKEND : 'auto';
  const t0 = performance.now();
  const msn = await createMsn({
    model: 'msn-mnist-micro',
    backend: BACKEND,
    onProgress: (p) => {
      $('load-progress').max = p.totalBytes || 1;
      $('load-progress').value = p.loadedBytes;
      $('load-text').textContent = `${(p.loadedBytes / 1e6).toFixed(2)} of ${(p.totalBytes / 1e6).toFixed(2)} MB`;
    },
  });
  state.msn = msn;
  await refreshCaps();
  $('load-progress').value = $('load-progress').max;
  $('load-text').textContent = `loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`;
  return restore();
}

async function refreshCaps() {
  const caps = await state.msn.capabilities();
  state.caps = caps;
  state.size = caps.model.config.imgSize;
  document.querySelectorAll('#img-size, .img-size').forEach((el) => (el.textContent = String(state.size)));
  const names = { webgpu: 'WebGPU', wasm: 'WebAssembly (wasm)', cpu: 'plain JavaScript (cpu)' };
  let how = caps.requested === 'auto' ? 'chosen automatically' : 'as requested';
  if (caps.backend === 'wasm' && caps.wasm) how += `; SIMD ${caps.wasm.simd ? 'on' : 'off'}, ${caps.wasm.numThreads} thread${caps.wasm.numThreads === 1 ? '' : 's'}`;
  if (caps.backend === 'webgpu' && caps.webgpu) how += `; adapter ${caps.webgpu.adapter}`;
  $('backend').textContent = `Backend: ${names[caps.backend]} (${how}), in a ${caps.host === 'browser-worker' ? 'Web Worker' : caps.host}.`;
  $('backend').dataset.backend = caps.backend;
  const reasons = $('backend-reasons');
  reasons.replaceChildren();
  for (const [name, b] of Object.entries(caps.backends)) {
    if (name === caps.backend) continue;
    const li = document.createElement('li');
    li.textContent = b.status === 'rejected'
      ? `${names[name]}: not used, ${(b.reason ?? 'it failed to start').replace(/\.$/, '')}.`
      : `${names[name]}: not tried, ${(b.reason ?? `${names[caps.backend]} came first`).replace(/\.$/, '')}.`;
    reasons.append(li);
  }
  const m = caps.model;
  const run = caps.pretraining;
  $('model-state').textContent = run
    ? `Model: your personalised copy of ${m.name ?? 'msn-mnist-micro'}, pretrained here for ${run.step} step${run.step === 1 ? '' : 's'} (saved in this browser).`
    : `Model: ${m.name ?? m.source} as shipped (ViT, ${m.config.imgSize}×${m.config.imgSize} px, ${m.config.numPrototypes} prototypes).`;
  $('model-state').dataset.step = String(run?.step ?? 0);
  return caps;
}

/** What this browser kept from the last visit: examples, the personalised model, the classifier, the plot. */
async function restore() {
  const meta = await getJson('examples-meta');
  const pixels = await store.get('examples');
  if (meta && pixels && meta.size === state.size) {
    const n = state.size * state.size * 4;
    state.labels = meta.labels;
    state.examples = meta.examples.map((label, i) => ({ label, pixels: pixels.slice(i * n, (i + 1) * n) }));
    state.selected = state.labels[0] ?? '';
  }
  const restored = [];
  const ckpt = await store.get('checkpoint');
  if (ckpt) {
    try {
      await state.msn.loadCheckpoint(ckpt);
      const caps = await refreshCaps();
      restored.push(`your personalised model (step ${caps.pretraining?.step ?? '?'})`);
    } catch (err) {
      await store.delete('checkpoint');
      showError(new Error(`The saved personalised model could not be loaded (${err.message}); it was removed, and the shipped model is used.`));
    }
  }
  plot.set((await getJson('history')) ?? [], state.caps.model.config.numPrototypes);
  const acc = await getJson('accuracy');
  if (acc) state.accuracy = acc;
  const headBytes = await store.get('head');
  const headMeta = await getJson('head-meta');
  if (headBytes && headMeta) {
    try {
      const id = await state.msn.loadHead(headBytes);
      state.head = { id, classes: headMeta.classes, fingerprint: state.caps.model.fingerprint };
      restored.push(`the classifier (${headMeta.classes.length} labels)`);
    } catch (err) {
      // A classifier of another model version: keep the examples, ask for a re-fit.
      showError(new Error(`The saved classifier does not fit the current model (${err.message}); train it again.`));
    }
  }
  renderLabels();
  renderGallery();
  render();
  return restored.length ? `Restored ${restored.join(' and ')} from this browser.` : 'Ready: add labels and examples.';
}

// ---------------------------------------------------------------- labels and examples

function addLabel(name) {
  const label = name.trim();
  if (!label) throw new Error('Type a name for the label first.');
  if (label.toLowerCase() === 'unknown') throw new Error('"unknown" is what the classifier says below the threshold; pick another name.');
  if (!state.labels.includes(label)) state.labels.push(label);
  state.selected = label;
}

function renderLabels() {
  const box = $('labels');
  box.querySelectorAll('label').forEach((l) => l.remove());
  $('labels-empty').hidden = state.labels.length > 0;
  for (const label of state.labels) {
    const l = document.createElement('label');
    const r = document.createElement('input');
    r.type = 'radio';
    r.name = 'label';
    r.value = label;
    r.checked = label === state.selected;
    r.addEventListener('change', () => {
      state.selected = label;
      render();
    });
    const count = state.examples.filter((e) => e.label === label).length;
    l.append(r, ` ${label} (${count})`);
    box.append(l);
  }
}

function renderGallery() {
  const g = $('gallery');
  g.replaceChildren();
  for (const label of state.labels) {
    const items = state.examples.filter((e) => e.label === label);
    const row = document.createElement('div');
    row.className = 'group';
    row.dataset.label = label;
    row.dataset.count = String(items.length);
    const name = document.createElement('strong');
    name.textContent = `${label}: ${items.length}`;
    row.append(name, ...items.slice(-16).map((e) => thumbnail(e.pixels, state.size, `example of ${label}`)));
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.textContent = `Remove label ${label}`;
    remove.className = 'needs-idle';
    remove.addEventListener('click', () => act(`Removing label ${label}`, async () => {
      state.labels = state.labels.filter((l) => l !== label);
      state.examples = state.examples.filter((e) => e.label !== label);
      if (state.selected === label) state.selected = state.labels[0] ?? '';
      await examplesChanged();
    }));
    row.append(remove);
    g.append(row);
  }
}

async function examplesChanged(note) {
  renderLabels();
  renderGallery();
  await saveExamples();
  status(note ?? `${state.examples.length} examples of ${state.labels.length} labels.`);
}

function addExample(pixels) {
  if (!state.selected) throw new Error('Add or select a label first: examples go to the selected label.');
  state.examples.push({ label: state.selected, pixels: new Uint8ClampedArray(pixels) });
}

async function addFiles(files) {
  if (!state.selected) throw new Error('Add or select a label first: examples go to the selected label.');
  const bad = [];
  let added = 0;
  for (const file of files) {
    try {
      addExample(await imagePixels(file, state.size));
      added++;
    } catch (err) {
      bad.push(err.message);
    }
  }
  await examplesChanged(`Added ${added} image${added === 1 ? '' : 's'} as examples of ${state.selected}.`);
  if (bad.length) throw new Error(`Skipped ${bad.length} file${bad.length === 1 ? '' : 's'}: ${bad.join(' ')}`);
}

async function loadSamples() {
  if (state.samples) return state.samples;
  const res = await fetch('./samples/samples.json');
  if (!res.ok) throw new Error('The sample digits are missing (start the demo with `npm run demo`, which writes them).');
  const { samples } = await res.json();
  state.samples = await Promise.all(samples.map(async (s) => ({ label: s.label, pixels: await imagePixels(`./samples/${s.file}`, state.size) })));
  return state.samples;
}

// ---------------------------------------------------------------- the classifier

/** Features of the examples (one embed call in the worker), in order. */
async function embedExamples(list) {
  const features = await state.msn.embed(stack(list.map((e) => e.pixels)), { count: list.length, width: state.size, height: state.size, channels: 4 });
  return { features, dim: features.length / list.length };
}

const rows = (f, dim, idx) => {
  const out = new Float32Array(idx.length * dim);
  idx.forEach((r, i) => out.set(f.subarray(r * dim, (r + 1) * dim), i * dim));
  return out;
};

/** 2-fold cross-validated accuracy on the examples (each label's examples alternate between the folds). */
async function crossValidate(list, features, dim) {
  const fold = [];
  const seen = {};
  list.forEach((e) => fold.push((seen[e.label] = (seen[e.label] ?? -1) + 1) % 2));
  let right = 0, tested = 0;
  for (const k of [0, 1]) {
    const train = fold.flatMap((f, i) => (f === k ? [i] : []));
    const test = fold.flatMap((f, i) => (f !== k ? [i] : []));
    if (!test.length || new Set(train.map((i) => list[i].label)).size < 2) continue;
    const id = await state.msn.fitHead({ features: rows(features, dim, train), count: train.length, labels: train.map((i) => list[i].label), kind: 'linear' });
    const p = await state.msn.predict(id, { features: rows(features, dim, test), count: test.length });
    await state.msn.deleteHead(id);
    test.forEach((r, i) => (right += p.labels[i] === list[r].label ? 1 : 0));
    tested += test.length;
  }
  return tested ? { right, tested, accuracy: right / tested } : null;
}

async function fit() {
  const list = state.examples.filter((e) => state.labels.includes(e.label));
  const labels = [...new Set(list.map((e) => e.label))];
  if (labels.length < 2) throw new Error('The classifier needs examples of at least two labels; add some first.');
  const t0 = performance.now();
  $('fit-progress').hidden = false;
  try {
    $('fit-state').textContent = `Computing the features of ${list.length} examples in the worker…`;
    const { features, dim } = await embedExamples(list);
    $('fit-state').textContent = `Training the linear head on ${list.length} examples of ${labels.length} labels (L-BFGS, in the worker)…`;
    if (state.head) await state.msn.deleteHead(state.head.id).catch(() => undefined);
    state.head = null;
    const id = await state.msn.fitHead({ features, count: list.length, labels: list.map((e) => e.label), kind: 'linear' });
    state.head = { id, classes: labels.slice().sort(), fingerprint: state.caps.model.fingerprint };
    $('fit-state').textContent = 'Measuring the accuracy on your examples (2-fold cross-validation)…';
    const cv = await crossValidate(list, features, dim);
    state.accuracy.current = cv;
    if (state.pretrain.phase !== 'idle' || plot.points.length) state.accuracy.after = cv;
    // The head's classes in its own column order, read from one prediction.
    state.head.classes = (await state.msn.predict(id, { features: features.slice(0, dim), count: 1 })).classes;
    await store.put('head', await state.msn.saveHead(id));
    await putJson('head-meta', { classes: state.head.classes });
    await putJson('accuracy', state.accuracy);
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    $('fit-state').textContent = `Trained on ${list.length} examples of ${labels.length} labels in ${secs} s.` +
      (cv ? ` Cross-validated accuracy on your examples: ${pct(cv.accuracy)} (${cv.right} of ${cv.tested}).` : ' Add two or more examples per label to measure its accuracy.');
    status('Classifier ready: draw on the pad to see it classify live.');
    livePredict();
  } finally {
    $('fit-progress').hidden = true;
  }
}

const pct = (x) => `${Math.round(x * 1000) / 10}%`;
const headUsable = () => !!state.head && state.head.fingerprint === state.caps?.model.fingerprint && state.pretrain.phase !== 'running';
const threshold = () => Number($('threshold').value);

let liveBusy = false;
let liveAgain = false;
/** Classifies the pad's drawing; calls that arrive while one runs collapse into one more. */
async function livePredict() {
  if (!headUsable() || pad.empty) return renderBars(null);
  if (liveBusy) return void (liveAgain = true);
  liveBusy = true;
  try {
    const p = await state.msn.predict(state.head.id, { pixels: pad.pixels(state.size), shape: { count: 1, width: state.size, height: state.size, channels: 4 } }, { unknownThreshold: threshold(), unknownLabel: 'unknown' });
    renderBars(p);
  } catch (err) {
    showError(err);
  } finally {
    liveBusy = false;
    if (liveAgain) {
      liveAgain = false;
      livePredict();
    }
  }
}

function renderBars(p) {
  const bars = $('bars');
  bars.replaceChildren();
  if (!p) {
    $('live-label').textContent = headUsable() ? 'Draw on the pad.'
      : state.pretrain.phase === 'running' ? 'Pretraining is changing the model: live classification returns when the classifier is trained again.'
      : state.head ? 'The model changed since the classifier was trained: train it again (step 3).'
      : 'Train the classifier (step 3) to see what it thinks of your drawing.';
    delete $('live-label').dataset.label;
    return;
  }
  const label = p.labels[0];
  $('live-label').textContent = label === 'unknown' ? `unknown (best guess ${p.classes[p.topIndex[0]]}, ${pct(p.topProbability[0])})` : `${label} (${pct(p.topProbability[0])})`;
  $('live-label').dataset.label = label;
  p.classes.forEach((c, i) => {
    const v = p.probabilities[i];
    const row = document.createElement('div');
    row.className = `bar${i === p.topIndex[0] ? ' top' : ''}`;
    row.innerHTML = '<span></span><span class="track" role="meter" aria-valuemin="0" aria-valuemax="100"><span class="fill"></span></span><span></span>';
    row.children[0].textContent = c;
    row.children[1].setAttribute('aria-valuenow', String(Math.round(v * 100)));
    row.children[1].setAttribute('aria-label', `probability of ${c}`);
    row.children[1].firstChild.style.width = `${(v * 100).toFixed(1)}%`;
    row.children[2].textContent = pct(v);
    bars.append(row);
  });
}

async function classifyFiles(files) {
  if (!headUsable()) throw new Error(state.head ? 'The model changed since the classifier was trained: train it again first.' : 'Train the classifier first (it needs examples of at least two labels).');
  const list = $('classified');
  list.replaceChildren();
  const images = [];
  const names = [];
  for (const f of files) {
    images.push(await imagePixels(f, state.size));
    names.push(f.name);
  }
  const p = await state.msn.predict(state.head.id, { pixels: stack(images), shape: { count: images.length, width: state.size, height: state.size, channels: 4 } }, { unknownThreshold: threshold(), unknownLabel: 'unknown' });
  images.forEach((im, i) => {
    const li = document.createElement('li');
    li.dataset.file = names[i];
    li.dataset.label = p.labels[i];
    li.append(thumbnail(im, state.size, names[i]), `${p.labels[i]} (${pct(p.topProbability[i])})`);
    list.append(li);
  });
  status(`Classified ${images.length} image${images.length === 1 ? '' : 's'}.`);
}

// ---------------------------------------------------------------- pretraining

async function pretrainImages() {
  const source = $('pretrain-source').value;
  const mine = state.examples.map((e) => e.pixels);
  const samples = source === 'examples' ? [] : (await loadSamples()).map((s) => s.pixels);
  const images = source === 'samples' ? samples : source === 'both' ? [...mine, ...samples] : mine;
  if (images.length < PRETRAIN.batchSize) {
    throw new Error(`Pretraining takes batches of ${PRETRAIN.batchSize} images and there ${images.length === 1 ? 'is' : 'are'} only ${images.length}: add examples or choose the sample digits.`);
  }
  return { pixels: stack(images), shape: { count: images.length, width: state.size, height: state.size, channels: 4 } };
}

/** Start (a new segment of `steps`) or resume (the rest of the plan) a pretraining run in the worker. */
async function runPretraining(resume) {
  const pt = state.pretrain;
  const data = await pretrainImages();
  const caps = await state.msn.capabilities();
  const steps = Number($('pretrain-steps').value);
  if (!resume && !(Number.isInteger(steps) && steps >= 1 && steps <= 2000)) throw new Error('Steps must be a whole number from 1 to 2000.');
  if (!resume) {
    // What Cancel goes back to: the stored model (or the shipped one) and classifier, the plot so far.
    pt.base = (await store.get('checkpoint')) ?? null;
    pt.headBefore = headUsable() ? await state.msn.saveHead(state.head.id) : null;
    pt.historyBefore = plot.points.length;
    if (new Set(state.examples.map((e) => e.label)).size >= 2) {
      const list = state.examples;
      const { features, dim } = await embedExamples(list);
      state.accuracy.before = await crossValidate(list, features, dim);
      state.accuracy.after = null;
      await putJson('accuracy', state.accuracy);
    }
  }
  const opts = resume ? {} : caps.pretraining ? { steps } : { ...PRETRAIN, totalSteps: steps, warmupSteps: Math.min(5, Math.floor(steps / 10)) };
  pt.abort = new AbortController();
  pt.stop = '';
  pt.phase = 'running';
  render();
  renderBars(null);
  let lastSave = Promise.resolve();
  try {
    const summary = await state.msn.pretrain(data, {
      ...opts,
      checkpointEvery: PRETRAIN.checkpointEvery,
      signal: pt.abort.signal,
      onProgress: (e) => {
        plot.add({ step: e.step, loss: e.loss, memax: e.memax, protos: e.numProtosUsed });
        $('plot-latest').textContent = `step ${e.step}: loss ${e.loss.toFixed(3)}, ME-MAX ${e.memax.toFixed(3)}, ${e.numProtosUsed} prototypes in use, ${e.imagesPerSec.toFixed(1)} images/s${e.etaSec > 0 ? `, about ${Math.ceil(e.etaSec)} s left` : ''}`;
        $('pt-state').textContent = `Pretraining: step ${e.step}.`;
      },
      // Every few steps the run is saved, so a closed tab loses little.
      onCheckpoint: (bytes) => (lastSave = Promise.all([store.put('checkpoint', bytes), saveHistory()])),
    });
    await lastSave;
    pt.phase = 'idle';
    $('pt-state').textContent = `Done: ${summary.steps} steps in ${summary.seconds.toFixed(1)} s (step ${summary.totalStep} of the run). Train the classifier again to use the new features.`;
  } catch (err) {
    await lastSave.catch(() => undefined);
    if (err?.name !== 'AbortError') {
      pt.phase = 'idle';
      throw err;
    }
    if (pt.stop === 'cancel') return await cancelRestore();
    pt.phase = 'paused';
  } finally {
    pt.abort = null;
  }
  // Paused or done: the run as it is now is the saved one (paused before its first step, a new run leaves none).
  const after = await refreshCaps();
  if (after.pretraining) await store.put('checkpoint', await state.msn.saveCheckpoint());
  else pt.phase = 'idle';
  await saveHistory();
  if (pt.phase === 'paused') $('pt-state').textContent = `Paused at step ${after.pretraining?.step}: Resume continues, Cancel goes back to the model from before Start.`;
  renderBars(null);
}

/** Cancel: the model, classifier and plot from before Start. */
async function cancelRestore() {
  const pt = state.pretrain;
  pt.phase = 'idle';
  if (pt.base) {
    await state.msn.loadCheckpoint(pt.base);
    await store.put('checkpoint', pt.base);
  } else {
    await store.delete('checkpoint');
    await recreate();
  }
  await refreshCaps();
  if (pt.headBefore) {
    const id = await state.msn.loadHead(pt.headBefore);
    state.head = { ...state.head, id, fingerprint: state.caps.model.fingerprint };
    await store.put('head', pt.headBefore);
  }
  plot.set(plot.points.slice(0, pt.historyBefore));
  await saveHistory();
  state.accuracy.after = null;
  $('pt-state').textContent = 'Cancelled: back to the model from before Start.';
  renderBars(null);
  livePredict();
}

/** A fresh worker with the shipped model (there is no way to drop a run and keep the engine). */
async function recreate() {
  const old = state.msn;
  state.msn = null;
  await old.dispose();
  state.msn = await createMsn({ model: 'msn-mnist-micro', backend: BACKEND });
  state.head = null;
}

function pretrainButton(phase) {
  return act(phase === 'resume' ? 'Pretraining (resumed)' : 'Pretraining', () => runPretraining(phase === 'resume'));
}

// ---------------------------------------------------------------- files

function download(bytes, name) {
  const url = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

async function importHead(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  const id = await state.msn.loadHead(bytes);
  // The classes in the head's column order, from one prediction of a blank image.
  const blank = new Uint8ClampedArray(state.size * state.size * 4);
  const { classes } = await state.msn.predict(id, { pixels: blank, shape: { count: 1, width: state.size, height: state.size, channels: 4 } });
  if (state.head) await state.msn.deleteHead(state.head.id).catch(() => undefined);
  state.head = { id, classes, fingerprint: state.caps.model.fingerprint };
  for (const c of classes) if (!state.labels.includes(c)) state.labels.push(c);
  state.selected ||= classes[0];
  await store.put('head', bytes);
  await putJson('head-meta', { classes });
  await examplesChanged(`Imported a classifier of ${classes.length} labels: ${classes.join(', ')}.`);
  $('fit-state').textContent = `Classifier imported from ${file.name} (${classes.length} labels).`;
  livePredict();
}

async function importCheckpoint(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  await state.msn.loadCheckpoint(bytes);
  await store.put('checkpoint', bytes);
  const caps = await refreshCaps();
  status(`Imported a personalised model (pretrained for ${caps.pretraining?.step ?? 0} steps).${state.head && !headUsable() ? ' Train or import a classifier for it.' : ''}`);
  renderBars(null);
}

// ---------------------------------------------------------------- enabling

function render() {
  const ready = !!state.msn && !!state.caps;
  const idle = ready && !state.busy;
  const pt = state.pretrain.phase;
  const running = pt === 'running';
  const set = (id, on, why) => {
    const el = $(id);
    el.disabled = !on;
    el.title = on ? '' : why;
  };
  const labelled = new Set(state.examples.map((e) => e.label)).size;
  const busyWhy = state.busy ? `Wait: ${state.busy.toLowerCase()}.` : 'Wait for the model to load.';
  set('label-add', idle, busyWhy);
  set('samples-add', idle, busyWhy);
  set('pad-add', idle && !!state.selected, state.selected ? busyWhy : 'Add or select a label first.');
  set('pad-clear', true, '');
  set('files-add', idle && !!state.selected, state.selected ? busyWhy : 'Add or select a label first.');
  set('examples-clear', idle && state.examples.length > 0, state.examples.length ? busyWhy : 'There are no examples.');
  set('fit-run', idle && labelled >= 2, labelled >= 2 ? busyWhy : 'Add examples of at least two labels first.');
  set('files-classify', idle && headUsable(), headUsable() ? busyWhy : 'Train the classifier first.');
  set('pt-start', idle && pt !== 'running', busyWhy);
  set('pt-pause', running && !state.pretrain.stop, 'Pretraining is not running.');
  set('pt-resume', idle && pt === 'paused', 'Nothing is paused.');
  set('pt-cancel', pt === 'paused' || (running && !state.pretrain.stop), 'Pretraining is not running or paused.');
  set('pt-forget', idle && (!!state.caps?.pretraining || plot.points.length > 0), 'The model is the shipped one.');
  set('head-export', idle && headUsable(), 'Train or import a classifier first.');
  set('head-import', idle, busyWhy);
  set('ckpt-export', idle && !!state.caps?.pretraining, 'Pretrain first: the shipped model needs no export.');
  set('ckpt-import', idle, busyWhy);
  set('backend-apply', !running, 'Pause pretraining first.');
  document.querySelectorAll('.needs-idle').forEach((b) => (b.disabled = !idle));
  document.body.dataset.busy = state.busy ? 'true' : 'false';
  document.body.dataset.pretrain = pt;
  const a = state.accuracy;
  $('accuracy').textContent = a.before || a.after
    ? `Accuracy on your examples (2-fold cross-validation): before pretraining ${a.before ? pct(a.before.accuracy) : 'not measured'}, ` +
      `after ${a.after ? pct(a.after.accuracy) : '— train the classifier again to measure it'}.`
    : '';
}

// ---------------------------------------------------------------- wiring

const plot = createPlot($('plot'));
plot.draw();
const pad = createPad($('pad'), (what) => {
  if (what !== 'clear') livePredict();
  else renderBars(null);
});

$('label-form').addEventListener('submit', (e) => {
  e.preventDefault();
  act('Adding the label', async () => {
    addLabel($('label-name').value);
    $('label-name').value = '';
    await examplesChanged(`Label ${state.selected} added and selected: draw or pick examples of it.`);
  });
});
$('samples-add').addEventListener('click', () => act('Adding sample digits', async () => {
  const samples = await loadSamples();
  const per = {};
  const before = state.selected;
  for (const s of samples) {
    if ((per[s.label] = (per[s.label] ?? 0) + 1) > 5) continue;
    if (!state.labels.includes(s.label)) state.labels.push(s.label);
    state.examples.push({ label: s.label, pixels: new Uint8ClampedArray(s.pixels) });
  }
  state.selected = before || state.labels[0];
  await examplesChanged(`Added ${Object.keys(per).length * 5} sample digits (5 of each of ${Object.keys(per).join(', ')}).`);
}));
const addDrawing = () => act('Adding the drawing', async () => {
  if (pad.empty) throw new Error('The pad is empty: draw something first.');
  addExample(pad.pixels(state.size));
  pad.clear();
  await examplesChanged(`Added the drawing as an example of ${state.selected}.`);
});
$('pad-add').addEventListener('click', addDrawing);
$('pad-clear').addEventListener('click', () => pad.clear());
$('pad').addEventListener('keydown', (e) => {
  if (e.key === 'Enter') addDrawing();
  if (e.key === 'Escape' || e.key === 'Delete' || e.key === 'Backspace') pad.clear();
});
for (const [ev, on] of [['dragenter', true], ['dragover', true], ['dragleave', false], ['drop', false]]) {
  $('pad').addEventListener(ev, (e) => {
    e.preventDefault();
    $('pad').classList.toggle('drop', on);
  });
}
$('pad').addEventListener('drop', (e) => {
  const files = [...(e.dataTransfer?.files ?? [])];
  if (files.length) act('Adding the dropped images', () => addFiles(files));
});
$('files-add').addEventListener('change', (e) => {
  const files = [...e.target.files];
  e.target.value = '';
  if (files.length) act('Adding the images', () => addFiles(files));
});
$('examples-clear').addEventListener('click', () => act('Removing the examples', async () => {
  state.examples = [];
  await examplesChanged('All examples removed (the labels stay).');
}));
$('fit-run').addEventListener('click', () => act('Training the classifier', fit));
$('files-classify').addEventListener('change', (e) => {
  const files = [...e.target.files];
  e.target.value = '';
  if (files.length) act('Classifying the images', () => classifyFiles(files));
});
$('threshold').addEventListener('input', () => {
  $('threshold-out').value = Number($('threshold').value).toFixed(2);
  livePredict();
});
$('pt-start').addEventListener('click', () => pretrainButton('start'));
$('pt-resume').addEventListener('click', () => pretrainButton('resume'));
$('pt-pause').addEventListener('click', () => {
  state.pretrain.stop = 'pause';
  state.pretrain.abort?.abort();
  $('pt-state').textContent = 'Pausing after the current step…';
  render();
});
$('pt-cancel').addEventListener('click', () => {
  if (state.pretrain.phase === 'running') {
    state.pretrain.stop = 'cancel';
    state.pretrain.abort?.abort();
    $('pt-state').textContent = 'Cancelling after the current step…';
    render();
  } else {
    act('Cancelling pretraining', cancelRestore);
  }
});
$('pt-forget').addEventListener('click', () => act('Going back to the shipped model', async () => {
  await Promise.all(['checkpoint', 'history', 'accuracy'].map((k) => store.delete(k)));
  await recreate();
  await store.delete('head');
  plot.set([]);
  state.pretrain.phase = 'idle';
  state.accuracy = { before: null, after: null, current: null };
  await refreshCaps();
  renderBars(null);
  $('pt-state').textContent = 'Back to the shipped model; train the classifier again.';
}));
$('head-export').addEventListener('click', () => act('Exporting the classifier', async () => {
  download(await state.msn.saveHead(state.head.id), `msn-classifier-${state.head.classes.length}-labels.msnhead`);
  status('Classifier exported (see your downloads).');
}));
$('ckpt-export').addEventListener('click', () => act('Exporting the personalised model', async () => {
  download(await state.msn.saveCheckpoint(), `msn-personalised-step-${state.caps.pretraining?.step ?? 0}.msnckpt`);
  status('Personalised model exported (see your downloads).');
}));
for (const [id, what, fn] of [['head-import', 'Importing the classifier', importHead], ['ckpt-import', 'Importing the personalised model', importCheckpoint]]) {
  $(id).addEventListener('change', (e) => {
    const file = e.target.files[0];
    e.target.value = '';
    if (file) act(what, () => fn(file));
  });
}
$('backend-apply').addEventListener('click', () => {
  const u = new URL(location.href);
  u.searchParams.set('backend', $('backend-choice').value);
  location.href = u.href;
});

render();
state.busy = 'Loading the model';
status('Loading the model…');
try {
  const note = await start();
  state.busy = '';
  status(note);
} catch (err) {
  state.busy = '';
  $('load-text').textContent = 'failed';
  showError(err);
  status('The model could not be started: see the message above. Other backends: use "Run on" above.');
  state.msn = null;
}
render();
document.body.dataset.ready = state.msn ? 'true' : 'error';
