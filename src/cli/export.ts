/**
 * msn-web export <checkpoint.msnckpt> <out-dir> [--float16] [--force]
 * Writes the target encoder of a pretraining checkpoint (with its
 * prototypes and preprocessing) as an msn-web model folder.
 * The options are declared in EXPORT (see args.ts; `--help` prints them).
 */
import * as tf from '@tensorflow/tfjs-core';
import { encodeModel } from '../io/model-format.js';
import { writeModelDirectory } from '../io/model-loader-node.js';
import { loadCheckpointFile } from '../pretrain/checkpoint-node.js';
import { exportModel } from '../pretrain/export.js';
import { Pretrainer } from '../pretrain/pretrainer.js';
import { useBackend } from '../runtime/backend.js';
import { parseCommand, usage } from './args.js';
import { EXPORT } from './commands.js';

export async function exportCommand(argv: string[]): Promise<void> {
  const args = parseCommand(EXPORT, argv);
  if (args === 'help') {
    process.stdout.write(usage(EXPORT));
    return;
  }
  const [ckpt, outDir] = args.positionals;
  tf.env().set('PROD', true); // before the backend starts: no "install tfjs-node" banner
  await useBackend('cpu');
  const p = Pretrainer.fromCheckpoint(await loadCheckpointFile(ckpt));
  try {
    const encoded = await encodeModel(await exportModel(p), { float16: args.flag('float16') });
    const files = await writeModelDirectory(outDir, encoded, { overwrite: args.flag('force') });
    console.error(`wrote ${files.length} files to ${outDir} (step ${p.step})`);
  } finally {
    p.dispose();
  }
}
