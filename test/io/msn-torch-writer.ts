/**
 * Test helpers: official-layout state dicts from our weights, and torch.save
 * bytes for them, through the src exporter's pieces (export-torch.ts,
 * torch-save.ts).
 */
import type { NamedArrays } from '../../src/model/params.js';
import type { VitConfig } from '../../src/model/config.js';
import type { TorchDict, TorchTensor } from '../../src/interop/torch-checkpoint.js';
import { officialStateDict as stateDictEntries } from '../../src/interop/export-torch.js';
import { PyDictOut, writeTorchCheckpoint, type TorchSaveValue } from '../../src/interop/torch-save.js';

/** Our weights -> an official state dict (torch layout, num_batches_tracked = 1), optionally with `module.` keys. */
export function officialStateDict(cfg: VitConfig, w: { params: NamedArrays; buffers: NamedArrays }, opts: { prefix?: string } = {}): TorchDict {
  return Object.fromEntries(stateDictEntries(cfg, w, { prefix: opts.prefix, numBatchesTracked: 1 }));
}

type Entry = TorchTensor | Record<string, TorchTensor> | number | string;

/**
 * torch.save bytes for a root dict whose values are float32/int64 tensors,
 * flat dicts of tensors (written as OrderedDict state dicts) or scalars.
 */
export function torchCheckpointBytes(root: Record<string, Entry>): Uint8Array {
  const isTensor = (v: unknown): v is TorchTensor => typeof v === 'object' && v !== null && 'shape' in v && 'data' in v;
  const entries: Array<[string, TorchSaveValue]> = Object.entries(root).map(([k, v]) => [
    k,
    typeof v === 'object' && !isTensor(v) ? new PyDictOut(Object.entries(v), true) : v,
  ]);
  return writeTorchCheckpoint(new PyDictOut(entries));
}
