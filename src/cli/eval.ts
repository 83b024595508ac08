/**
 * msn-web eval [--model <dir>] --data <MNIST-layout IDX folder> [--shots 1,2,5,10]
 *   [--seeds 5] [--heads linear] [--methods msn,raw-pixels,random-init] [--test-limit N]
 *   [--backend wasm|cpu] [--json]
 * Few-shot accuracy of a model's features against raw pixels and a randomly
 * initialised encoder of the same architecture. Without --model: the shipped model.
 */
import * as tf from '@tensorflow/tfjs-core';
import { MsnConfigError } from '../errors.js';
import { readIdxFolder } from '../data/idx-node.js';
import { encoderFingerprint } from '../embed/fingerprint.js';
import { loadModelFromDirectory } from '../io/model-loader-node.js';
import { useBackend, CoreBackend } from '../runtime/backend.js';
import { HeadName } from '../eval/fewshot.js';
import { EvalModel, Method, evaluateOnIdx, formatTable } from '../eval/mnist-eval.js';
import { DEFAULT_MODEL_DIR, DEFAULT_DATA_DIR } from './paths.js';

function flag(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const v = argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new MsnConfigError(`Option --${name} needs a value.`);
  return v;
}

const intList = (s: string, what: string) =>
  s.split(',').map((x) => {
    const n = Number(x);
    if (!Number.isInteger(n) || n < 1) throw new MsnConfigError(`--${what} expects positive integers like 1,2,5,10; got '${s}'.`);
    return n;
  });

export async function loadEvalModel(dir: string): Promise<EvalModel> {
  const m = await loadModelFromDirectory(dir);
  const pre = (m.meta as { preprocess?: { mean?: number[]; std?: number[] } }).preprocess;
  if (!pre?.mean || !pre?.std) throw new MsnConfigError(`Model '${dir}' has no preprocess.mean/std in its manifest meta.`);
  return { config: m.config, params: m.params, buffers: m.buffers, mean: pre.mean, std: pre.std, fingerprint: await encoderFingerprint(m.config, m.params) };
}

export async function evalCommand(argv: string[]): Promise<void> {
  const known = new Set(['model', 'data', 'shots', 'seeds', 'heads', 'methods', 'test-limit', 'backend', 'json']);
  for (const a of argv) if (a.startsWith('--') && !known.has(a.slice(2))) throw new MsnConfigError(`Unknown option ${a}. Known: ${[...known].map((k) => '--' + k).join(' ')}.`);
  const json = argv.includes('--json');
  const modelDir = flag(argv, 'model') ?? DEFAULT_MODEL_DIR;
  const dataDir = flag(argv, 'data') ?? DEFAULT_DATA_DIR;
  const shots = intList(flag(argv, 'shots') ?? '1,2,5,10', 'shots');
  const seeds = intList(flag(argv, 'seeds') ?? '5', 'seeds')[0];
  const heads = (flag(argv, 'heads') ?? 'linear').split(',') as HeadName[];
  for (const h of heads) if (!['linear', 'centroid', 'knn'].includes(h)) throw new MsnConfigError(`--heads: unknown head '${h}' (linear, centroid, knn).`);
  const testLimit = flag(argv, 'test-limit') ? intList(flag(argv, 'test-limit')!, 'test-limit')[0] : undefined;
  tf.env().set('PROD', true);
  await useBackend((flag(argv, 'backend') ?? 'wasm') as CoreBackend);
  const model = await loadEvalModel(modelDir);
  const data = readIdxFolder(dataDir);
  const methods = (flag(argv, 'methods') ?? 'msn,raw-pixels,random-init').split(',') as Method[];
  for (const m of methods) if (!['msn', 'raw-pixels', 'random-init'].includes(m)) throw new MsnConfigError(`--methods: unknown method '${m}' (msn, raw-pixels, random-init).`);
  const t0 = performance.now();
  const rows = await evaluateOnIdx(model, data, { shots, seeds, heads, methods, testLimit, onStatus: json ? undefined : (m) => console.error(m) });
  if (json) {
    console.log(JSON.stringify({
      model: modelDir, data: dataDir, testImages: Math.min(data.test.count, testLimit ?? Infinity), seeds,
      results: rows.map((r) => ({ method: r.method, head: r.head, shots: r.shots, mean: r.mean, std: r.std, accuracies: r.accuracies })),
    }));
  } else {
    console.log(`few-shot accuracy on ${dataDir} (test split, mean ± std over ${seeds} draws of the labelled images), model ${modelDir}`);
    console.log(formatTable(rows));
    console.log(`(${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  }
}
