/**
 * msn-web convert <checkpoint.pth.tar | hf-folder | model.safetensors> <out-dir>
 *                 [--float16] [--num-heads N] [--which target_encoder|encoder] [--shard-mb N] [--force]
 *
 * Converts an official facebookresearch/msn checkpoint, or a Hugging Face
 * ViT-MSN model (a folder with model.safetensors and config.json, e.g.
 * facebook/vit-msn-small, or the .safetensors file with config.json next to
 * it; src/interop/hf-vit-msn.ts), into the msn-web model format
 * (model.json + weights-*.bin) and prints what it inferred.
 * Run with: npx tsx src/cli/convert.ts ...
 */
import { stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { importMsnCheckpoint, type MsnNetworkName } from '../interop/import-msn.js';
import { hfPreprocessFrom, importHfVitMsn } from '../interop/hf-vit-msn.js';
import { readSafetensors, safetensorsMaxFileBytes } from '../interop/safetensors.js';
import { torchMaxFileBytes } from '../interop/torch-checkpoint.js';
import { readFileChecked } from '../io/atomic-file.js';
import { MsnConfigError, MsnFormatError } from '../errors.js';
import { type ModelData, encodeModel, manifestTotalBytes } from '../io/model-format.js';
import { writeModelDirectory } from '../io/model-loader-node.js';
import { isUsageError, parseCommand, usage } from './args.js';
import { CONVERT, NETWORKS } from './commands.js';

const USAGE = usage(CONVERT);

export interface ConvertArgs {
  checkpoint: string;
  outDir: string;
  float16: boolean;
  numHeads?: number;
  which: MsnNetworkName;
  shardMb: number;
  force: boolean;
}

/** Parses argv (without node and script); accepts an optional leading 'convert'. Throws MsnUsageError (an MsnConfigError). */
export function parseConvertArgs(argv: string[]): ConvertArgs | 'help' {
  const args = parseCommand(CONVERT, argv[0] === 'convert' ? argv.slice(1) : argv);
  if (args === 'help') return 'help';
  return {
    checkpoint: args.positionals[0],
    outDir: args.positionals[1],
    float16: args.flag('float16'),
    numHeads: args.positive('num-heads'),
    which: args.choice('which', NETWORKS)!,
    shardMb: args.positive('shard-mb')!,
    force: args.flag('force'),
  };
}

/** The safetensors file and config.json of a Hugging Face input, or undefined for a .pth.tar. */
async function hfInput(path: string): Promise<{ weights: string; config: string } | undefined> {
  const isDir = await stat(path).then((s) => s.isDirectory(), () => false);
  if (isDir) return { weights: join(path, 'model.safetensors'), config: join(path, 'config.json') };
  if (path.endsWith('.safetensors')) return { weights: path, config: join(dirname(path), 'config.json') };
  return undefined;
}

/** A small JSON file (config.json, preprocessor_config.json), size-capped like every input. */
async function readJson(path: string, what: string): Promise<unknown> {
  const text = new TextDecoder().decode(await readFileChecked(path, 1024 * 1024, { what }));
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new MsnFormatError(`Hugging Face ViT-MSN: ${path} is not valid JSON (${(e as Error).message}).`, { cause: e });
  }
}

/** Converts a Hugging Face ViT-MSN model.safetensors + config.json (see src/interop/hf-vit-msn.ts). */
async function runConvertHf(a: ConvertArgs, hf: { weights: string; config: string }, log: (s: string) => void, t0: number): Promise<void> {
  const bytes = await readFileChecked(hf.weights, safetensorsMaxFileBytes(), { what: 'a model.safetensors file' });
  const configJson = await readJson(hf.config, `the config.json that goes with ${hf.weights}`);
  const preFile = join(dirname(hf.config), 'preprocessor_config.json');
  const preJson = (await stat(preFile).then(() => true, () => false)) ? await readJson(preFile, 'the preprocessor config') : undefined;
  const st = readSafetensors(bytes);
  const im = importHfVitMsn(st.tensors, configJson);
  const preprocess = preJson === undefined ? undefined : hfPreprocessFrom(preJson, im.config.inChannels);
  const c = im.config;
  if (a.numHeads !== undefined && a.numHeads !== c.numHeads) {
    throw new MsnConfigError(`--num-heads ${a.numHeads} contradicts the config.json (num_attention_heads ${c.numHeads}); drop the option.`);
  }
  log(`read ${hf.weights} (${(bytes.length / 1e6).toFixed(1)} MB) and ${basename(hf.config)}: Hugging Face ViT-MSN${im.hadVitPrefix ? " ('vit.' names)" : ''}`);
  log(`config: ${c.imgSize}px images, patch ${c.patchSize}, ${c.inChannels} channels, width ${c.embedDim}, depth ${c.depth}, heads ${c.numHeads}, mlp ratio ${c.mlpRatio}`);
  log(`head: none in the file; initialised at ${c.embedDim} -> ${c.hiddenDim} -> ${c.hiddenDim} -> ${c.outputDim} (seed 0), no prototypes (pretrain from the model to train them)`);
  if (im.ignoredKeys.length) log(`dropped: ${im.ignoredKeys.join(', ')}`);
  log(preprocess ? `preprocess: mean [${preprocess.mean}], std [${preprocess.std}] (preprocessor_config.json)` : 'preprocess: no preprocessor_config.json; ImageNet mean/std');
  const meta = {
    ...(preprocess ? { preprocess } : {}),
    source: 'Hugging Face ViT-MSN',
    sourceFile: basename(hf.weights),
    hfImport: { head: 'random-init (seed 0): Hugging Face ViT-MSN has no projection head or prototypes', ignoredKeys: im.ignoredKeys },
    float16: a.float16,
  };
  await writeConverted(a, { config: c, params: im.params, buffers: im.buffers, meta }, log, t0);
}

/** Runs the conversion, reporting through `log`. */
export async function runConvert(a: ConvertArgs, log: (s: string) => void = console.log): Promise<void> {
  const t0 = performance.now();
  const hf = await hfInput(a.checkpoint);
  if (hf) return runConvertHf(a, hf, log, t0);
  // Capped by the reader's own limit, and only regular files: `convert /dev/zero`
  // must fail at once instead of reading until memory runs out.
  const bytes = await readFileChecked(a.checkpoint, torchMaxFileBytes(), { what: 'a .pth.tar checkpoint' });
  const ck = importMsnCheckpoint(bytes, { which: a.which, numHeads: a.numHeads, optimizer: false });
  const c = ck.config;
  log(`read ${a.checkpoint} (${(bytes.length / 1e6).toFixed(1)} MB)`);
  log(`network: ${ck.meta.which}${ck.meta.hadModulePrefix ? " (stripped 'module.' prefixes)" : ''}`);
  log(
    `inferred: ${c.imgSize}px images, patch ${c.patchSize}, ${c.inChannels} channels, width ${c.embedDim}, depth ${c.depth}, ` +
      `heads ${c.numHeads} (${ck.meta.numHeadsSource === 'option' ? '--num-heads' : 'official rule'}), mlp ratio ${c.mlpRatio}`,
  );
  log(
    `head: ${c.embedDim} -> ${c.hiddenDim} -> ${c.hiddenDim} -> ${c.outputDim}; prototypes: ` +
      (ck.prototypes ? `${c.numPrototypes} x ${c.outputDim}` : `none in file (numPrototypes defaults to ${c.numPrototypes})`),
  );
  if (ck.epoch !== undefined) log(`epoch: ${ck.epoch}`);
  if (ck.meta.ignoredKeys.length) log(`dropped: ${ck.meta.ignoredKeys.join(', ')}`);
  const meta = {
    source: 'facebookresearch/msn checkpoint',
    sourceFile: basename(a.checkpoint),
    network: ck.meta.which,
    numHeadsSource: ck.meta.numHeadsSource,
    ...(ck.epoch !== undefined ? { epoch: ck.epoch } : {}),
    checkpointScalars: ck.meta.scalars,
    float16: a.float16,
  };
  await writeConverted(a, { config: c, params: ck.weights.params, buffers: ck.weights.buffers, prototypes: ck.prototypes, meta }, log, t0);
}

async function writeConverted(a: ConvertArgs, model: ModelData, log: (s: string) => void, t0: number): Promise<void> {
  const enc = await encodeModel(model, { float16: a.float16, shardBytes: a.shardMb * 1024 * 1024 });
  const files = await writeModelDirectory(a.outDir, enc, { overwrite: a.force });
  const f16 = enc.manifest.tensors.filter((t) => t.dtype === 'float16').length;
  log(
    `wrote ${files.length} files to ${a.outDir}: ${(manifestTotalBytes(enc.manifest) / 1e6).toFixed(2)} MB in ${enc.shards.length} shard(s), ` +
      `${enc.manifest.tensors.length} tensors${a.float16 ? ` (${f16} as float16)` : ''}, ${((performance.now() - t0) / 1000).toFixed(2)} s`,
  );
}

/** The `msn-web convert ...` subcommand (src/cli/main.ts): throws on bad arguments or input. */
export async function convertCommand(argv: string[]): Promise<void> {
  const args = parseConvertArgs(argv);
  if (args === 'help') process.stdout.write(USAGE);
  else await runConvert(args);
}

/** Direct use: npx tsx src/cli/convert.ts <checkpoint> <out-dir> [options]. */
async function main(argv: string[]): Promise<number> {
  let args: ConvertArgs | 'help';
  try {
    args = parseConvertArgs(argv);
  } catch (e) {
    if (!isUsageError(e)) throw e;
    process.stderr.write(`msn-web convert: ${e.message}\n\n${USAGE}`);
    return 2;
  }
  if (args === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    await runConvert(args);
    return 0;
  } catch (e) {
    const err = e as Error;
    process.stderr.write(`msn-web convert: ${err.name}: ${err.message}\n`);
    return 1;
  }
}

// Only when this file itself is the script (not when main.ts imports it, bundled or not).
if (process.argv[1] && /convert\.[cm]?[jt]s$/.test(process.argv[1]) && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
