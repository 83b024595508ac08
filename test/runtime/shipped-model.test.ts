/**
 * Naming the shipped model: createMsn({ model: 'msn-mnist-micro' }) loads
 * models/msn-mnist-micro from the package (in-thread and in a worker), with
 * progress in bytes; createMsn() without a model says that its weights are
 * random (capabilities() and one console warning). The browser worker
 * bundle's per-file URLs name every file of each shipped model.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createMsn, type LoadProgress } from '../../src/index.js';
import { loadModelFromDirectory } from '../../src/io/model-loader-node.js';
import { SHIPPED_MODELS } from '../../src/io/shipped-models.js';
import { encoderFingerprint } from '../../src/embed/fingerprint.js';
import { WORKER } from './helpers.js';

const DIR = fileURLToPath(new URL('../../models/msn-mnist-micro/', import.meta.url));
const SHARD_BYTES = statSync(`${DIR}weights-00000.bin`).size;

function expectProgress(events: LoadProgress[]): void {
  expect(events.length).toBeGreaterThanOrEqual(2);
  expect(events[0]).toMatchObject({ loadedBytes: 0, totalBytes: SHARD_BYTES });
  expect(events.at(-1)).toMatchObject({ loadedBytes: SHARD_BYTES, totalBytes: SHARD_BYTES });
  for (let i = 1; i < events.length; i++) expect(events[i].loadedBytes).toBeGreaterThanOrEqual(events[i - 1].loadedBytes);
}

const ours = (warn: { mock: { calls: unknown[][] } }) => warn.mock.calls.map((c) => String(c[0])).filter((m) => m.startsWith('msn-web:'));

describe("createMsn({ model: 'msn-mnist-micro' })", () => {
  afterEach(() => vi.restoreAllMocks());

  it('loads the shipped model in-thread, reports bytes, and names it in capabilities()', async () => {
    const warn = vi.spyOn(console, 'warn');
    const events: LoadProgress[] = [];
    const msn = await createMsn({ model: 'msn-mnist-micro', worker: false, backend: 'wasm', onProgress: (p) => events.push(p) });
    try {
      const caps = await msn.capabilities();
      expect(caps.model).toMatchObject({ name: 'msn-mnist-micro', source: 'directory', randomWeights: false });
      const want = await loadModelFromDirectory(DIR);
      expect(caps.model.fingerprint).toBe(await encoderFingerprint(want.config, want.params));
      expectProgress(events);
      expect(ours(warn)).toEqual([]);
    } finally {
      await msn.dispose();
    }
  });

  it('loads it in a worker_threads worker, with the progress callback proxied across', async () => {
    const events: LoadProgress[] = [];
    const msn = await createMsn({ ...WORKER, model: 'msn-mnist-micro', backend: 'wasm', onProgress: (p) => events.push(p) });
    try {
      const caps = await msn.capabilities();
      expect(caps.host).toBe('node-worker');
      expect(caps.model.name).toBe('msn-mnist-micro');
      expect(caps.model.config.embedDim).toBe(96);
      expectProgress(events);
    } finally {
      await msn.dispose();
    }
  });

  it('a throwing progress callback does not fail the load', async () => {
    const msn = await createMsn({ model: 'msn-mnist-micro', worker: false, backend: 'wasm', onProgress: () => { throw new Error('boom'); } });
    expect((await msn.capabilities()).model.name).toBe('msn-mnist-micro');
    await msn.dispose();
  });

  it('cache: ignored in Node (the model loads from its folder), a value that is no boolean or name refused', async () => {
    const msn = await createMsn({ model: 'msn-mnist-micro', worker: false, backend: 'cpu', cache: true });
    try {
      const caps = await msn.capabilities();
      expect(caps.model.source).toBe('directory');
      expect(caps.model.fromCache).toBeUndefined(); // only URL loads report it (see test/browser: cache)
    } finally {
      await msn.dispose();
    }
    for (const bad of [5, '', {}]) {
      const err = await createMsn({ model: 'msn-mnist-micro', worker: false, backend: 'cpu', cache: bad as never }).then(() => undefined, (e: Error) => e);
      expect(err?.name).toBe('MsnConfigError');
      expect(err?.message).toMatch(/cache must be true, false or a database name/);
    }
  });

  it('an unknown name that is no folder either says which names exist', async () => {
    const err = await createMsn({ model: 'msn-mnist-nano', worker: false, backend: 'cpu' }).then(() => undefined, (e: Error) => e);
    expect(err?.name).toBe('MsnConfigError');
    expect(err?.message).toContain("model 'msn-mnist-nano' is neither a shipped model (msn-mnist-micro) nor a model folder");
  });
});

describe('createMsn() without a model', () => {
  afterEach(() => vi.restoreAllMocks());

  it('says in capabilities() and in one console warning that the weights are random', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const msn = await createMsn({ worker: false, backend: 'wasm' });
    try {
      expect((await msn.capabilities()).model).toMatchObject({ source: 'preset', randomWeights: true });
      await msn.embed(new Uint8Array(28 * 28), { count: 1, width: 28, height: 28, channels: 1 });
      await msn.capabilities();
      const lines = ours(warn);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain('random weights');
      expect(lines[0]).toContain("model: 'msn-mnist-micro'");
      expect(lines[0]).toContain('pretrain()');
    } finally {
      await msn.dispose();
    }
  });

  it('does not warn when random weights were asked for (preset), but still reports them', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const msn = await createMsn({ worker: false, backend: 'wasm', preset: 'micro-p4-28' });
    try {
      expect((await msn.capabilities()).model.randomWeights).toBe(true);
      expect(ours(warn)).toEqual([]);
    } finally {
      await msn.dispose();
    }
  });
});

describe('the browser worker bundle names every file of each shipped model', () => {
  it('SHIPPED_MODEL_URLS lists model.json and exactly its shards, and the files exist', async () => {
    const { SHIPPED_MODEL_URLS } = await import('../../workers/msn.worker.js');
    expect(Object.keys(SHIPPED_MODEL_URLS).sort()).toEqual([...SHIPPED_MODELS].sort());
    for (const name of SHIPPED_MODELS) {
      const urls = SHIPPED_MODEL_URLS[name];
      const manifest = fileURLToPath(urls.manifest);
      expect(manifest).toBe(fileURLToPath(new URL(`../../models/${name}/model.json`, import.meta.url)));
      const shards = (JSON.parse(readFileSync(manifest, 'utf8')) as { shards: { file: string }[] }).shards.map((s) => s.file);
      expect(Object.keys(urls.files).sort()).toEqual(shards.sort());
      for (const [file, url] of Object.entries(urls.files)) expect(fileURLToPath(url)).toBe(fileURLToPath(new URL(file, urls.manifest)));
      for (const url of Object.values(urls.files)) expect(existsSync(fileURLToPath(url))).toBe(true);
    }
  });
});
