/**
 * Node-only model I/O: read and write a model directory (model.json +
 * shards) with node:fs. Kept apart from model-loader.ts so that browser
 * bundles never pull in Node modules.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MsnAbortError, MsnConfigError, MsnError, MsnFormatError } from '../errors.js';
import { readFileChecked } from './atomic-file.js';
import { LoadModelOptions, LoadedModel, loadModel, progressTracker } from './model-loader.js';
import { EncodedModel, MANIFEST_FILE, formatManifest, manifestTotalBytes, validateManifest } from './model-format.js';
import type { ShippedModelName } from './shipped-models.js';

function fail(msg: string, cause?: unknown): never {
  throw new MsnFormatError(`msn-web model: ${msg}`, cause === undefined ? undefined : { cause });
}

const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;

/**
 * A whole file, at most `maxBytes`, refusing non-regular files (a device such
 * as /dev/zero, a pipe) before reading: every read is capped by what the
 * manifest allows.
 */
async function readCapped(path: string, maxBytes: number, what: string): Promise<Uint8Array> {
  try {
    return await readFileChecked(path, maxBytes, { what });
  } catch (e) {
    const err = e as MsnError;
    if (err.name === 'MsnFormatError') throw err;
    return fail(`cannot read ${path}: ${err.message}`, e);
  }
}

/**
 * The folder of the installed msn-web package: the nearest package.json named
 * msn-web above this module (src/io from source, dist/ or dist/worker/ when
 * built, wherever npm put the package).
 */
export function msnPackageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: unknown }).name === 'msn-web') return dir;
      } catch {
        // Not JSON: keep walking up.
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new MsnConfigError(`Cannot find msn-web's package.json above ${fileURLToPath(import.meta.url)}; reinstall msn-web.`);
    dir = up;
  }
}

/** The folder of a model shipped in the package (models/<name>), checked to hold a model.json. */
export function shippedModelDirectory(name: ShippedModelName): string {
  const dir = join(msnPackageRoot(), 'models', name);
  if (!existsSync(join(dir, MANIFEST_FILE))) {
    throw new MsnConfigError(`The shipped model '${name}' is missing from ${dir} (was models/ left out of the install?); reinstall msn-web or pass a model folder or URL.`);
  }
  return dir;
}

/** Whether `path` is an existing folder. */
export async function isDirectory(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isDirectory(), () => false);
}

/** Reads model.json and the shards of a local directory (sizes checked before reading; hashes by decodeModel). */
export async function readModelDirectory(dir: string, opts: LoadModelOptions = {}): Promise<EncodedModel> {
  const mpath = join(dir, MANIFEST_FILE);
  const mbytes = await readCapped(mpath, MAX_MANIFEST_BYTES, `an msn-web ${MANIFEST_FILE} (at most 16 MiB)`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(mbytes);
  } catch (e) {
    return fail(`${mpath} is not UTF-8 text.`, e);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return fail(`${mpath} is not valid JSON (${(e as Error).message}).`, e);
  }
  const manifest = validateManifest(raw, opts);
  const tick = progressTracker(manifestTotalBytes(manifest), opts.onProgress);
  const shards: Uint8Array[] = [];
  for (const s of manifest.shards) {
    if (opts.signal?.aborted) throw new MsnAbortError('Model loading was cancelled.');
    const p = join(dir, s.file);
    let size: number;
    try {
      size = (await stat(p)).size;
    } catch (e) {
      return fail(`shard file ${p} is missing: ${(e as Error).message}`, e);
    }
    if (size !== s.byteLength) fail(`shard file ${p} has ${size} bytes, the manifest says ${s.byteLength} (truncated or wrong file?).`);
    const b = await readCapped(p, s.byteLength, `a ${s.byteLength}-byte shard of this model`);
    shards.push(b);
    tick(b.byteLength, s.file);
  }
  return { manifest, shards };
}

/** Loads and verifies a model from a local directory (optionally through a cache keyed by `cacheKey`). */
export async function loadModelFromDirectory(dir: string, opts: LoadModelOptions = {}): Promise<LoadedModel> {
  const enc = await readModelDirectory(dir, opts);
  const m = await loadModel(enc, { ...opts, onProgress: undefined });
  return { ...m, from: 'files' };
}

/**
 * Writes model.json and the shards into `dir` (created if needed). Refuses to
 * replace an existing model.json unless `overwrite`. Returns the written paths.
 */
export async function writeModelDirectory(dir: string, model: EncodedModel, opts: { overwrite?: boolean } = {}): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const mpath = join(dir, MANIFEST_FILE);
  if (!opts.overwrite) {
    const exists = await stat(mpath).then(() => true, () => false);
    if (exists) throw new MsnConfigError(`${mpath} already exists; pass { overwrite: true } (CLI: --force) to replace it.`);
  }
  const written: string[] = [];
  // Shards first, manifest last: a model.json on disk always has its shards.
  for (let i = 0; i < model.shards.length; i++) {
    const p = join(dir, model.manifest.shards[i].file);
    await writeFile(p, model.shards[i]);
    written.push(p);
  }
  await writeFile(mpath, formatManifest(model.manifest));
  written.push(mpath);
  return written;
}
