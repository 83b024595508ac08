/**
 * msn-web export <checkpoint.msnckpt> <out-dir> [--float16] [--force]
 * Writes the target encoder of a pretraining checkpoint (with its
 * prototypes and preprocessing) as an msn-web model folder.
 */
import { MsnConfigError } from '../errors.js';
import { encodeModel } from '../io/model-format.js';
import { writeModelDirectory } from '../io/model-loader-node.js';
import { loadCheckpointFile } from '../pretrain/checkpoint-node.js';
import { exportModel } from '../pretrain/export.js';
import { Pretrainer } from '../pretrain/pretrainer.js';
import { useBackend } from '../runtime/backend.js';

export async function exportCommand(argv: string[]): Promise<void> {
  const pos = argv.filter((a) => !a.startsWith('--'));
  if (pos.length !== 2) throw new MsnConfigError('usage: msn-web export <checkpoint.msnckpt> <out-dir> [--float16] [--force]');
  await useBackend('cpu');
  const p = Pretrainer.fromCheckpoint(await loadCheckpointFile(pos[0]));
  try {
    const encoded = await encodeModel(await exportModel(p), { float16: argv.includes('--float16') });
    const files = await writeModelDirectory(pos[1], encoded, { overwrite: argv.includes('--force') });
    console.error(`wrote ${files.length} files to ${pos[1]} (step ${p.step})`);
  } finally {
    p.dispose();
  }
}
