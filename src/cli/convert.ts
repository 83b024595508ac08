/**
 * msn-web convert <checkpoint.pth.tar> <out-dir> [--float16] [--num-heads N]
 *                 [--which target_encoder|encoder] [--shard-mb N] [--force]
 *
 * Converts an official facebookresearch/msn checkpoint into the msn-web model
 * format (model.json + weights-*.bin) and prints what it inferred.
 * Run with: npx tsx src/cli/convert.ts ...
 */
import { basename } from 'node:path';
import { pathToFileURL } from 'node:url';
import { importMsnCheckpoint, type MsnNetworkName } from '../interop/import-msn.js';
import { torchMaxFileBytes } from '../interop/torch-checkpoint.js';
import { readFileChecked } from '../io/atomic-file.js';
import { encodeModel, manifestTotalBytes } from '../io/model-format.js';
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

/** Runs the conversion, reporting through `log`. */
export async function runConvert(a: ConvertArgs, log: (s: string) => void = console.log): Promise<void> {
  const t0 = performance.now();
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
  const enc = await encodeModel(
    { config: c, params: ck.weights.params, buffers: ck.weights.buffers, prototypes: ck.prototypes, meta },
    { float16: a.float16, shardBytes: a.shardMb * 1024 * 1024 },
  );
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
