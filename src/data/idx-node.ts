/**
 * Node-only IDX helpers: reading files (gzipped or not) and whole
 * MNIST-layout folders. Kept apart from idx.ts so browser bundles never pull
 * in node:fs or node:zlib.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { MsnConfigError, MsnFormatError } from '../errors.js';
import { type IdxArray, type IdxSplit, isGzip, makeIdxSplit, parseIdx, parseIdxImages, parseIdxLabels } from './idx.js';
import { readFileCappedSync } from './read-capped.js';

/** Largest decompressed size accepted: the full EMNIST training set is ~0.6 GB. */
const MAX_GUNZIP_BYTES = 1 << 30;

export interface IdxDataset {
  train: IdxSplit;
  test: IdxSplit;
}

/** Gunzip with a size cap, turning zlib errors into MsnFormatError. */
export function gunzipIdx(bytes: Uint8Array, name = 'gzip data'): Uint8Array {
  try {
    const out = gunzipSync(bytes, { maxOutputLength: MAX_GUNZIP_BYTES });
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (err) {
    throw new MsnFormatError(`${name} could not be decompressed: ${(err as Error).message}`);
  }
}

/** A file on disk is never larger than its decompressed content may be. */
function readBytes(path: string): Uint8Array {
  return readFileCappedSync(path, MAX_GUNZIP_BYTES, 'an IDX file (gzipped or not)');
}

/** Reads and parses one IDX file; gzip is detected from the bytes, not the name. */
export function readIdxFile(path: string): IdxArray {
  const bytes = readBytes(path);
  return parseIdx(bytes, { name: path, gunzip: (b) => gunzipIdx(b, path) });
}

const FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

/**
 * The accepted spellings of one file, most preferred first: the canonical
 * `train-images-idx3-ubyte`, the `train-images.idx3-ubyte` seen in some
 * mirrors, each optionally with `.gz`. Matching ignores case.
 */
function candidates(base: string): string[] {
  const dotted = base.replace(/-(idx\d-ubyte)$/, '.$1');
  return [base, dotted, `${base}.gz`, `${dotted}.gz`];
}

/**
 * Reads the four MNIST files from a folder and returns both splits. Throws
 * MsnFormatError when a file is missing, malformed, or images and labels
 * disagree in count.
 */
export function readIdxFolder(dir: string): IdxDataset {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (err) {
    throw new MsnConfigError(`Cannot list folder '${dir}': ${(err as Error).message}`);
  }
  const byLower = new Map(entries.map((e) => [e.toLowerCase(), e]));
  const find = (base: string): string => {
    for (const name of candidates(base)) {
      const found = byLower.get(name.toLowerCase());
      if (found) return join(dir, found);
    }
    throw new MsnFormatError(
      `'${dir}' is not an MNIST-layout folder: missing ${base} (also looked for ${candidates(base).slice(1).join(', ')}).`,
    );
  };
  const load = (base: string): { path: string; bytes: Uint8Array } => {
    const path = find(base);
    const raw = readBytes(path);
    return { path, bytes: isGzip(raw) ? gunzipIdx(raw, path) : raw };
  };
  const split = (imagesBase: string, labelsBase: string, name: string): IdxSplit => {
    const images = load(imagesBase);
    const labels = load(labelsBase);
    return makeIdxSplit(
      parseIdxImages(images.bytes, { name: images.path }),
      parseIdxLabels(labels.bytes, { name: labels.path }),
      `${name} split of '${dir}'`,
    );
  };
  return {
    train: split(FILES.trainImages, FILES.trainLabels, 'train'),
    test: split(FILES.testImages, FILES.testLabels, 'test'),
  };
}
