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
import { MsnConfigError } from '../errors.js';
import { importMsnCheckpoint, type MsnNetworkName } from '../interop/import-msn.js';
import { torchMaxFileBytes } from '../interop/torch-checkpoint.js';
import { readFileChecked } from '../io/atomic-file.js';
import { encodeModel, manifestTotalBytes } from '../io/model-format.js';
import { writeModelDirectory } from '../io/model-loader-node.js';

const USAGE = `Usage: msn-web convert <checkpoint.pth.tar> <out-dir> [options]

Converts a facebookresearch/msn checkpoint (training or released layout) into
an msn-web model folder (model.json + weights-NNNNN.bin shards).

Options:
  --float16            store weight matrices as float16 (half the size; ~5e-4 relative rounding per weight)
  --num-heads N        attention heads (required for non-official widths; the file does not record it)
  --which NET          target_encoder (default) or encoder
  --shard-mb N         shard size in MiB (default 4)
  --force              replace an existing model.json in <out-dir>
  -h, --help           show this help
`;

export interface ConvertArgs {
  checkpoint: string;
  outDir: string;
  float16: boolean;
  numHeads?: number;
  which: MsnNetworkName;
  shardMb: number;
  force: boolean;
}

/** Parses argv (without node and script); accepts an optional leading 'convert'. Throws MsnConfigError. */
export function parseConvertArgs(argv: string[]): ConvertArgs | 'help' {
  const args = argv[0] === 'convert' ? argv.slice(1) : argv.slice();
  const pos: string[] = [];
  const out: Omit<ConvertArgs, 'checkpoint' | 'outDir'> = { float16: false, which: 'target_encoder', shardMb: 4, force: false };
  const intArg = (flag: string, v: string | undefined): number => {
    if (v === undefined || !/^\d+$/.test(v) || Number(v) <= 0) throw new MsnConfigError(`${flag} needs a positive integer, got ${v ?? 'nothing'}.`);
    return Number(v);
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const flag = eq > 0 ? a.slice(0, eq) : a;
    const inline = eq > 0 ? a.slice(eq + 1) : undefined;
    const value = () => inline ?? args[++i];
    switch (flag) {
      case '-h':
      case '--help':
        return 'help';
      case '--float16':
        out.float16 = true;
        break;
      case '--force':
        out.force = true;
        break;
      case '--num-heads':
        out.numHeads = intArg(flag, value());
        break;
      case '--shard-mb':
        out.shardMb = intArg(flag, value());
        break;
      case '--which': {
        const v = value();
        if (v !== 'target_encoder' && v !== 'encoder') throw new MsnConfigError(`--which must be target_encoder or encoder, got ${v ?? 'nothing'}.`);
        out.which = v;
        break;
      }
      default:
        if (a.startsWith('-') && a !== '-') throw new MsnConfigError(`unknown option ${a}.`);
        pos.push(a);
    }
  }
  if (pos.length !== 2) throw new MsnConfigError(`expected <checkpoint.pth.tar> <out-dir>, got ${pos.length} argument(s). Run with --help for the options.`);
  return { checkpoint: pos[0], outDir: pos[1], ...out };
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
    process.stderr.write(`msn-web convert: ${(e as Error).message}\n\n${USAGE}`);
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
