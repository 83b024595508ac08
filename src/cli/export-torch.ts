/**
 * msn-web export-torch <run.msnckpt | model-dir> <out.pth.tar> [--epoch N] [--plain-keys] [--force]
 * Writes an msn-web pretraining checkpoint (networks, prototypes, AdamW
 * state) or a model folder (its weights and prototypes) as the official
 * facebookresearch/msn checkpoint (see src/interop/export-torch.ts). The
 * options are declared in EXPORT_TORCH. Plain arrays throughout: no
 * TensorFlow.js backend is started.
 */
import { stat } from 'node:fs/promises';
import { MsnConfigError } from '../errors.js';
import {
  exportTorchCheckpoint,
  torchArchiveName,
  torchExportFromModel,
  torchExportFromPretrain,
  type TorchExportSource,
} from '../interop/export-torch.js';
import { writeFileAtomic } from '../io/atomic-file.js';
import { decodeModel } from '../io/model-format.js';
import { isDirectory, readModelDirectory } from '../io/model-loader-node.js';
import { loadCheckpointFile } from '../pretrain/checkpoint-node.js';
import { MsnUsageError, parseCommand, usage } from './args.js';
import { EXPORT_TORCH } from './commands.js';
import { modelDirOf } from './paths.js';

export async function exportTorchCommand(argv: string[], log: (s: string) => void = (s) => console.error(s)): Promise<void> {
  const args = parseCommand(EXPORT_TORCH, argv);
  if (args === 'help') {
    process.stdout.write(usage(EXPORT_TORCH));
    return;
  }
  const [input, out] = args.positionals;
  const epoch = args.int('epoch', 0);
  if (!args.flag('force') && (await stat(out).then(() => true, () => false))) {
    throw new MsnConfigError(`${out} exists; pass --force to replace it.`);
  }
  const dir = modelDirOf(input);
  let src: TorchExportSource;
  let what: string;
  if (await isDirectory(dir)) {
    if (epoch !== undefined) throw new MsnUsageError('--epoch applies to a pretraining checkpoint; a model folder has no training state to resume.');
    const enc = await readModelDirectory(dir);
    src = torchExportFromModel(await decodeModel(enc.manifest, enc.shards));
    what = 'model folder: encoder = target_encoder = its weights, prototypes; no optimizer state';
  } else {
    const ckpt = await loadCheckpointFile(input);
    src = torchExportFromPretrain(ckpt, { epoch });
    what = `pretraining checkpoint: step ${ckpt.step}, AdamW state, epoch ${src.training!.epoch}, lr ${src.training!.lr.toPrecision(4)}`;
  }
  const plain = args.flag('plain-keys');
  const bytes = exportTorchCheckpoint(src, { archiveName: torchArchiveName(out), modulePrefix: !plain });
  await writeFileAtomic(out, bytes);
  const c = src.config;
  log(`wrote ${out} (${(bytes.length / 1e6).toFixed(1)} MB) from the ${what}; state-dict keys ${plain ? 'without a prefix (one process)' : "with DDP's 'module.' (multi-GPU)"}`);
  log(`model: ${c.imgSize}px, patch ${c.patchSize}, width ${c.embedDim}, depth ${c.depth}, heads ${c.numHeads} (the file does not record heads), ${c.numPrototypes} prototypes`);
}
