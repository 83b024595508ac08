/** Seeded data for the head tests (no Math.random: results must not vary). */
import type { FeatureMatrix } from '../../src/heads/index.js';

/** mulberry32: a small, fast, seeded PRNG returning floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal samples (Box-Muller). */
export function gaussian(random: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

export interface Clusters {
  train: FeatureMatrix;
  trainLabels: string[];
  test: FeatureMatrix;
  testLabels: string[];
}

/**
 * Gaussian clusters: class means ~ N(0, I), examples = mean + noise * N(0, I).
 * Classes get the given names; examples are assigned round-robin.
 */
export function makeClusters(opts: {
  seed: number;
  classes: string[];
  dim: number;
  trainCount: number;
  testCount: number;
  noise: number;
}): Clusters {
  const normal = gaussian(prng(opts.seed));
  const means = opts.classes.map(() => Float64Array.from({ length: opts.dim }, normal));
  const sample = (count: number): { matrix: FeatureMatrix; labels: string[] } => {
    const data = new Float32Array(count * opts.dim);
    const labels: string[] = [];
    for (let i = 0; i < count; i++) {
      const c = i % opts.classes.length;
      labels.push(opts.classes[c]);
      for (let j = 0; j < opts.dim; j++) data[i * opts.dim + j] = means[c][j] + opts.noise * normal();
    }
    return { matrix: { data, count, dim: opts.dim }, labels };
  };
  const train = sample(opts.trainCount);
  const test = sample(opts.testCount);
  return { train: train.matrix, trainLabels: train.labels, test: test.matrix, testLabels: test.labels };
}

export function accuracy(predicted: string[], truth: string[]): number {
  let ok = 0;
  predicted.forEach((p, i) => {
    if (p === truth[i]) ok++;
  });
  return ok / truth.length;
}

/** Runs fn and returns 'Name: message' of the thrown error (or 'no error'). */
export function errOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return `${(e as Error).name}: ${(e as Error).message}`;
  }
  return 'no error';
}

/** Runs fn and returns the thrown error's name (or 'no error'). */
export function errorName(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).name;
  }
  return 'no error';
}

export const TEN_CLASSES = ['cat', 'dog', 'mug', 'chat noir', '猫', '', 'constructor', '__proto__', 'a,b', 'ünïcødé'];
