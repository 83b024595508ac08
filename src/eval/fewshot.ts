/**
 * The few-shot protocol: for each seed, draw k labelled images per class
 * from the train split, fit a head on their features, and score the test
 * split. Features are computed once; only the sampling changes per seed.
 * For the 'prototype-label' head the "features" are the images' prototype
 * assignments (K probabilities each).
 */
import { MsnConfigError } from '../errors.js';
import { Rng } from '../util/rng.js';
import type { HeadKind } from '../heads/common.js';
import { HEAD_REGISTRY } from '../heads/registry.js';

/** @deprecated Use `HeadKind`, the same union; `HeadName` will be removed in the next major version. */
export type HeadName = HeadKind;

export interface FewShotResult {
  head: HeadKind;
  shots: number;
  mean: number;
  std: number;
  accuracies: number[];
}

/** k indices per class, drawn with a seeded Rng (classes in ascending order). */
export function sampleShots(labels: ArrayLike<number>, k: number, seed: number): Int32Array {
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i];
    if (!byClass.has(c)) byClass.set(c, []);
    byClass.get(c)!.push(i);
  }
  // k larger than a class would silently mean "all of it" and be reported as k shots: refuse.
  for (const [c, pool] of byClass) {
    if (pool.length < k) throw new MsnConfigError(`${k} shots per class asked for, but class ${c} has only ${pool.length} labelled images; use at most ${pool.length}.`);
  }
  const rng = new Rng(seed);
  const out: number[] = [];
  for (const c of [...byClass.keys()].sort((a, b) => a - b)) {
    const pool = byClass.get(c)!;
    const perm = rng.permutation(pool.length);
    for (let j = 0; j < Math.min(k, pool.length); j++) out.push(pool[perm[j]]);
  }
  return Int32Array.from(out);
}

function rows(features: Float32Array, dim: number, idx: Int32Array): Float32Array {
  const out = new Float32Array(idx.length * dim);
  idx.forEach((r, i) => out.set(features.subarray(r * dim, (r + 1) * dim), i * dim));
  return out;
}

/** Every train index any (shots, seed) draw of evaluateFewShot will use, sorted. */
export function shotIndexUnion(labels: ArrayLike<number>, shots: number[], seeds: number, seedBase = 0): Int32Array {
  const set = new Set<number>();
  for (const k of shots) for (let s = 0; s < seeds; s++) for (const i of sampleShots(labels, k, seedBase + s)) set.add(i);
  return Int32Array.from([...set].sort((a, b) => a - b));
}

/**
 * Accuracy of a head fitted on k shots per class, for each seed. `train`
 * features may cover only some rows: `rowOf` maps a train index to its row.
 */
export function evaluateFewShot(
  train: { features: Float32Array; labels: ArrayLike<number>; rowOf?: (index: number) => number },
  test: { features: Float32Array; labels: ArrayLike<number> },
  dim: number,
  opts: { shots: number[]; seeds: number; heads: HeadKind[]; fingerprint: string; seedBase?: number },
): FewShotResult[] {
  const testLabels = Array.from(test.labels, String);
  const testCount = test.labels.length;
  const results: FewShotResult[] = [];
  for (const head of opts.heads) {
    for (const k of opts.shots) {
      const accuracies: number[] = [];
      for (let s = 0; s < opts.seeds; s++) {
        const idx = sampleShots(train.labels, k, (opts.seedBase ?? 0) + s);
        const at = train.rowOf ? idx.map(train.rowOf) : idx;
        const feats = { data: rows(train.features, dim, at), count: idx.length, dim };
        const labels = Array.from(idx, (i) => String(train.labels[i]));
        const h = HEAD_REGISTRY[head].fit(feats, labels, { encoderFingerprint: opts.fingerprint });
        const pred = h.predict({ data: test.features, count: testCount, dim });
        let correct = 0;
        for (let i = 0; i < testCount; i++) if (pred.labels[i] === testLabels[i]) correct++;
        accuracies.push(correct / testCount);
      }
      const mean = accuracies.reduce((a, b) => a + b, 0) / accuracies.length;
      const std = Math.sqrt(accuracies.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, accuracies.length - 1));
      results.push({ head, shots: k, mean, std, accuracies });
    }
  }
  return results;
}
