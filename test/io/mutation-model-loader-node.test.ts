/**
 * model-loader-node.ts cases found by mutation testing (issue #18,
 * docs/TESTING.md): the messages of a model folder that cannot be read,
 * progress, abort, the package root and shipped models, and what
 * writeModelDirectory writes in which order.
 */
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { VitConfig } from '../../src/model/config.js';
import { initWeights } from '../../src/model/params.js';
import { type EncodedModel, encodeModel, formatManifest } from '../../src/io/model-format.js';
import type { LoadProgress } from '../../src/io/model-loader.js';
import {
  isDirectory,
  loadModelFromDirectory,
  msnPackageRoot,
  readModelDirectory,
  shippedModelDirectory,
  writeModelDirectory,
} from '../../src/io/model-loader-node.js';
import { catchAsyncError, catchError } from './container-test-helpers.js';

const CFG: VitConfig = { imgSize: 4, patchSize: 2, inChannels: 1, embedDim: 8, depth: 1, numHeads: 2, mlpRatio: 1, hiddenDim: 8, outputDim: 8, numPrototypes: 4 };
let enc: EncodedModel | undefined;
const model = async () => (enc ??= await encodeModel({ config: CFG, ...initWeights(CFG, 5), meta: {} }, { shardBytes: 1024 }));

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'msn-mut-mln-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('writeModelDirectory', () => {
  it('creates the folder, writes the shards then model.json (formatted), returns the paths in that order', async () => {
    const e = await model();
    const target = join(dir, 'a', 'b');
    const written = await writeModelDirectory(target, e);
    expect(written).toEqual([...e.manifest.shards.map((s) => join(target, s.file)), join(target, 'model.json')]);
    expect(await readFile(join(target, 'model.json'), 'utf8')).toBe(formatManifest(e.manifest));
    expect(Array.from(await readFile(join(target, e.manifest.shards[1].file)))).toEqual(Array.from(e.shards[1]));
    const err = await catchAsyncError(() => writeModelDirectory(target, e, {}));
    expect(err.name).toBe('MsnConfigError');
    expect(err.message).toBe(`${join(target, 'model.json')} already exists; pass { overwrite: true } (CLI: --force) to replace it.`);
    expect((await writeModelDirectory(target, e, { overwrite: true })).length).toBe(e.shards.length + 1);
  });
});

describe('readModelDirectory', () => {
  it('reads every shard with progress; loadModelFromDirectory reports files and no progress of its own', async () => {
    const e = await model();
    await writeModelDirectory(dir, e);
    const ev: LoadProgress[] = [];
    const r = await readModelDirectory(dir, { onProgress: (p) => ev.push(p) });
    r.shards.forEach((s, i) => expect(Array.from(s)).toEqual(Array.from(e.shards[i])));
    const total = e.shards.reduce((a, s) => a + s.length, 0);
    expect(ev[0]).toEqual({ loadedBytes: 0, totalBytes: total });
    expect(ev.slice(1).map((p) => p.file)).toEqual(e.manifest.shards.map((s) => s.file));
    expect(ev.at(-1)!.loadedBytes).toBe(total);
    const ev2: LoadProgress[] = [];
    const m = await loadModelFromDirectory(dir, { onProgress: (p) => ev2.push(p) });
    expect(m.from).toBe('files');
    expect(ev2.length).toBe(ev.length);
  });

  it('messages: missing folder, non-UTF-8 or invalid model.json, a missing or wrong-sized shard, a shard that is a folder', async () => {
    const e = await model();
    const nope = join(dir, 'nope');
    const e1 = await catchAsyncError(() => readModelDirectory(nope));
    expect(e1.name).toBe('MsnFormatError');
    expect(e1.message).toMatch(new RegExp(`^msn-web model: cannot read ${join(nope, 'model.json').replace(/[./]/g, '\\$&')}: Could not inspect .*there is no file at that path\\.$`));
    await writeModelDirectory(dir, e);
    await writeFile(join(dir, 'model.json'), Uint8Array.of(0x7b, 0xff, 0x7d));
    const e2 = await catchAsyncError(() => readModelDirectory(dir));
    expect(e2.message).toBe(`msn-web model: ${join(dir, 'model.json')} is not UTF-8 text.`);
    await writeFile(join(dir, 'model.json'), '{');
    expect((await catchAsyncError(() => readModelDirectory(dir))).message).toMatch(/^msn-web model: .*model\.json is not valid JSON \(.+\)\.$/);
    await writeFile(join(dir, 'model.json'), formatManifest(e.manifest));
    const s1 = join(dir, e.manifest.shards[1].file);
    await rm(s1);
    const e3 = await catchAsyncError(() => readModelDirectory(dir));
    expect(e3.name).toBe('MsnFormatError');
    expect(e3.message).toMatch(new RegExp(`^msn-web model: shard file ${s1.replace(/[./]/g, '\\$&')} is missing: ENOENT`));
    await writeFile(s1, new Uint8Array(3));
    expect((await catchAsyncError(() => readModelDirectory(dir))).message).toBe(
      `msn-web model: shard file ${s1} has 3 bytes, the manifest says ${e.manifest.shards[1].byteLength} (truncated or wrong file?).`,
    );
    await rm(s1);
    await mkdir(s1);
    const e4 = await catchAsyncError(() => readModelDirectory(dir));
    expect(e4.name).toBe('MsnFormatError');
    expect(e4.message).toMatch(/^msn-web model: (shard file .* has \d+ bytes|cannot read .*not a regular file)/);
  });

  it('a model.json over 16 MiB is refused before it is read', async () => {
    await writeFile(join(dir, 'model.json'), new Uint8Array(16 * 1024 * 1024 + 1));
    const err = await catchAsyncError(() => readModelDirectory(dir));
    expect(err.name).toBe('MsnFormatError');
    // readFileChecked's own error, passed on unwrapped.
    expect(err.message).toBe(
      `'${join(dir, 'model.json')}' is 16777217 bytes, over the limit of 16777216 for an msn-web model.json (at most 16 MiB); check that this is the right file, or pass a larger maxBytes if you trust it.`,
    );
  });

  it('an abort between shards stops reading', async () => {
    const e = await model();
    await writeModelDirectory(dir, e);
    const ac = new AbortController();
    const err = await catchAsyncError(() => readModelDirectory(dir, { signal: ac.signal, onProgress: (p) => p.file && ac.abort() }));
    expect(err.name).toBe('AbortError');
    expect(err.message).toBe('Model loading was cancelled.');
  });
});

describe('package root and shipped models', () => {
  it('msnPackageRoot is the folder of the package.json named msn-web; shipped models live under models/', async () => {
    const root = msnPackageRoot();
    expect(JSON.parse(await readFile(join(root, 'package.json'), 'utf8')).name).toBe('msn-web');
    expect(shippedModelDirectory('msn-mnist-micro')).toBe(join(root, 'models', 'msn-mnist-micro'));
    expect(existsSync(join(root, 'models', 'msn-mnist-micro', 'model.json'))).toBe(true);
    const e = catchError(() => shippedModelDirectory('not-shipped' as never));
    expect(e.name).toBe('MsnConfigError');
    expect(e.message).toBe(
      `The shipped model 'not-shipped' is missing from ${join(root, 'models', 'not-shipped')} (was models/ left out of the install?); reinstall msn-web or pass a model folder or URL.`,
    );
  });

  it('isDirectory: true for folders, false for files and missing paths', async () => {
    await writeFile(join(dir, 'f'), 'x');
    expect(await isDirectory(dir)).toBe(true);
    expect(await isDirectory(join(dir, 'f'))).toBe(false);
    expect(await isDirectory(join(dir, 'missing'))).toBe(false);
    expect((await readdir(dir)).length).toBe(1);
  });
});

describe('survivors of the first run', () => {
  it('loadModelFromDirectory passes its cache options on; an error without a cause has no cause property', async () => {
    const { MemoryModelCache } = await import('../../src/io/model-cache.js');
    const e = await model();
    await writeModelDirectory(dir, e);
    const cache = new MemoryModelCache();
    await loadModelFromDirectory(dir, { cache, cacheKey: 'folder' });
    expect((await cache.list()).map((x) => x.key)).toEqual(['folder']);
    await writeFile(join(dir, e.manifest.shards[0].file), new Uint8Array(3));
    const err = await catchAsyncError(() => readModelDirectory(dir));
    expect(err.message).toContain('has 3 bytes');
    expect('cause' in err).toBe(false);
  });

  it("an error caused by another keeps it as its cause (a missing shard: the ENOENT of stat; bad UTF-8: the decoder's error)", async () => {
    const e = await model();
    await writeModelDirectory(dir, e);
    await rm(join(dir, e.manifest.shards[0].file));
    const missing = await catchAsyncError(() => readModelDirectory(dir));
    expect(missing.name).toBe('MsnFormatError');
    expect(missing.cause).toBeInstanceOf(Error);
    expect((missing.cause as NodeJS.ErrnoException).code).toBe('ENOENT');
    await writeFile(join(dir, 'model.json'), Uint8Array.of(0x7b, 0xff, 0x7d));
    const text = await catchAsyncError(() => readModelDirectory(dir));
    expect(text.cause).toBeInstanceOf(TypeError); // TextDecoder({ fatal: true }) throws a TypeError
  });
});
