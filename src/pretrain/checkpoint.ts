/**
 * Pretraining checkpoints as bytes: the tensor container (magic, CRC-32s,
 * bounds checks) with the run's config and counters as metadata. Node files
 * go through checkpoint-node.ts (atomic replace); browsers store the bytes
 * with createIdbCheckpointStore (one IndexedDB transaction per write).
 */
import { MsnFormatError } from '../errors.js';
import { decodeContainer, encodeContainer } from '../io/tensor-container.js';
import { validatePretrainConfig } from './config.js';
import { CheckpointData } from './pretrainer.js';

export const CHECKPOINT_KIND = 'msn-web/pretrain-checkpoint';
const CHECKPOINT_VERSION = 1;

export function checkpointToBytes(ckpt: CheckpointData): Uint8Array {
  return encodeContainer({
    kind: CHECKPOINT_KIND,
    meta: {
      version: CHECKPOINT_VERSION, config: ckpt.config, step: ckpt.step, iteration: ckpt.iteration,
      numBatchesTracked: ckpt.numBatchesTracked,
    },
    tensors: ckpt.tensors,
  });
}

/**
 * Reads a checkpoint. The header (version, counters, config with its model
 * and view limits) is checked before any tensor is copied, so a small file
 * that promises a huge model fails at once with MsnFormatError.
 */
export function checkpointFromBytes(bytes: Uint8Array): CheckpointData {
  let m: Partial<CheckpointData> & { version?: number } = {};
  const { tensors } = decodeContainer(bytes, {
    expectedKind: CHECKPOINT_KIND,
    checkMeta: (meta) => {
      m = checkHeader(meta);
    },
  });
  return { config: m.config!, step: m.step!, iteration: m.iteration!, numBatchesTracked: m.numBatchesTracked!, tensors };
}

function checkHeader(meta: unknown): Partial<CheckpointData> & { version?: number } {
  const m = (typeof meta === 'object' && meta !== null ? meta : {}) as Partial<CheckpointData> & { version?: number };
  if (m.version !== CHECKPOINT_VERSION) {
    throw new MsnFormatError(`Unsupported checkpoint version ${String(m.version)}; this msn-web reads version ${CHECKPOINT_VERSION}.`);
  }
  const ints = [m.step, m.iteration, m.numBatchesTracked?.encoder, m.numBatchesTracked?.target];
  if (!ints.every((v) => Number.isInteger(v) && (v as number) >= 0)) {
    throw new MsnFormatError('The checkpoint counters (step, iteration, numBatchesTracked) are missing or invalid.');
  }
  if (typeof m.config !== 'object' || m.config === null) throw new MsnFormatError('The checkpoint has no config; it was not written by msn-web.');
  try {
    // Model (MODEL_LIMITS) and views (VIEW_LIMITS) included: nothing is built from it yet.
    validatePretrainConfig(m.config);
  } catch (e) {
    throw new MsnFormatError(`The checkpoint's config is invalid: ${(e as Error).message} The file is damaged or was not written by msn-web; use another checkpoint.`, { cause: e });
  }
  return m;
}
