/**
 * Test helpers: official-layout state dicts from our weights, and a minimal
 * torch.save-style writer for them (through the interop test builders).
 */
import { NamedArrays, toTorchLayout } from '../../src/model/params.js';
import type { VitConfig } from '../../src/model/config.js';
import type { TorchDict, TorchTensor } from '../../src/interop/torch-checkpoint.js';
import { PickleWriter, makeCheckpoint } from '../interop/builders.js';

/** Our weights -> an official state dict (torch layout), optionally with `module.` keys and num_batches_tracked. */
export function officialStateDict(cfg: VitConfig, w: { params: NamedArrays; buffers: NamedArrays }, opts: { prefix?: string } = {}): TorchDict {
  const sd: TorchDict = {};
  const p = opts.prefix ?? '';
  for (const [name, a] of Object.entries(w.params)) {
    const t = toTorchLayout(name, a.shape, a.data, cfg.patchSize);
    sd[p + name] = { shape: t.shape, dtype: 'float32', data: t.data };
  }
  for (const bn of ['fc.bn1', 'fc.bn2']) {
    for (const k of ['running_mean', 'running_var']) {
      const a = w.buffers[`${bn}.${k}`];
      sd[`${p}${bn}.${k}`] = { shape: a.shape.slice(), dtype: 'float32', data: a.data };
    }
    sd[`${p}${bn}.num_batches_tracked`] = { shape: [], dtype: 'int64', data: new BigInt64Array([1n]) };
  }
  return sd;
}

type Entry = TorchTensor | Record<string, TorchTensor> | number | string;

/**
 * torch.save-like bytes for a root dict whose values are float32/int64
 * tensors, flat dicts of tensors (state dicts) or scalars.
 */
export function torchCheckpointBytes(root: Record<string, Entry>): Uint8Array {
  const w = new PickleWriter().proto().emptyDict();
  const storages: Record<string, Uint8Array> = {};
  let next = 0;
  const tensor = (t: TorchTensor) => {
    const key = String(next++);
    const numel = t.shape.reduce((a, b) => a * b, 1);
    const stride = t.shape.map((_, i) => t.shape.slice(i + 1).reduce((a, b) => a * b, 1));
    const type = t.dtype === 'int64' ? 'LongStorage' : 'FloatStorage';
    const d = t.data as Float32Array | BigInt64Array;
    storages[key] = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
    w.tensor({ type, key, numel, shape: t.shape, stride });
  };
  const isTensor = (v: unknown): v is TorchTensor => typeof v === 'object' && v !== null && 'shape' in v && 'data' in v;
  for (const [k, v] of Object.entries(root)) {
    w.str(k);
    if (typeof v === 'number') Number.isInteger(v) ? w.int(v) : w.float(v);
    else if (typeof v === 'string') w.str(v);
    else if (isTensor(v)) tensor(v);
    else {
      w.global('collections', 'OrderedDict').emptyTuple().reduce();
      for (const [name, t] of Object.entries(v)) {
        w.str(name);
        tensor(t);
        w.setitem();
      }
    }
    w.setitem();
  }
  return makeCheckpoint(w.stop().bytes(), storages);
}
