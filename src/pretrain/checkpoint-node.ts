/** Node: checkpoints as files, replaced atomically so a crash keeps the last good one. */
import { readFileChecked, writeFileAtomic } from '../io/atomic-file.js';
import { checkpointFromBytes, checkpointToBytes } from './checkpoint.js';
import { CheckpointData } from './pretrainer.js';

export async function saveCheckpointFile(path: string, ckpt: CheckpointData): Promise<void> {
  await writeFileAtomic(path, checkpointToBytes(ckpt));
}

export async function loadCheckpointFile(path: string): Promise<CheckpointData> {
  return checkpointFromBytes(await readFileChecked(path, undefined, { what: 'an msn-web pretraining checkpoint' }));
}
