/**
 * Writes what `torch.save(obj, f)` writes (PyTorch >= 1.6 zip format), from
 * plain JS values: the writing side of torch-checkpoint.ts.
 *
 * The archive holds `<archive>/data.pkl` (a protocol-2 pickle of the object),
 * one raw little-endian record `<archive>/data/<key>` per tensor storage,
 * `<archive>/byteorder` ("little") and `<archive>/version` ("3"). Each tensor
 * is pickled as `torch._utils._rebuild_tensor_v2(storage, 0, size, stride,
 * False, OrderedDict())`, its storage as the persistent id `('storage',
 * torch.<Type>Storage, key, 'cpu', numel)`, contiguous, one storage per
 * tensor. The pickle references no global beyond TORCH_SAVE_GLOBALS.
 *
 * Values (Python's int/float distinction is explicit, JS numbers have none):
 * - null → None, boolean → bool, string → str, bigint → int;
 * - number → int if it is an integer, float otherwise; `new PyFloatOut(x)`
 *   forces a float (e.g. `lr = 1.0`, or NaN);
 * - array → list, `new PyTupleOut([...])` → tuple;
 * - plain object → dict (string keys, insertion order), `new PyDictOut(entries,
 *   ordered)` → dict or collections.OrderedDict with str or int keys;
 * - TorchTensor `{ shape, dtype, data }` → tensor (float32, float64 or int64).
 */
import { MsnValueError } from '../errors.js';
import type { TorchDType, TorchTensor } from './torch-checkpoint.js';
import { PickleWriter } from './pickle-write.js';
import { writeZip, type ZipInput } from './zip-write.js';
import { littleEndianBytes } from '../util/bytes.js';

/** A Python float, also when the value is integral. */
export class PyFloatOut {
  constructor(readonly value: number) {}
}
/** A Python tuple. */
export class PyTupleOut {
  constructor(readonly items: readonly TorchSaveValue[]) {}
}
/** A dict (ordered = false) or collections.OrderedDict (ordered = true) with str or int keys, in this order. */
export class PyDictOut {
  constructor(
    readonly entries: ReadonlyArray<readonly [string | number, TorchSaveValue]>,
    readonly ordered = false,
  ) {}
}
export type TorchSaveValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | PyFloatOut
  | PyTupleOut
  | PyDictOut
  | TorchTensor
  | TorchSaveValue[]
  | { [key: string]: TorchSaveValue };

/** Storage type per dtype this writer supports. */
const STORAGE_OF: Partial<Record<TorchDType, { type: string; itemSize: number; array: Function }>> = {
  float32: { type: 'FloatStorage', itemSize: 4, array: Float32Array },
  float64: { type: 'DoubleStorage', itemSize: 8, array: Float64Array },
  int64: { type: 'LongStorage', itemSize: 8, array: BigInt64Array },
};

/** The globals a torch.save pickle of these values can name ("module.name"). */
export const TORCH_SAVE_GLOBALS: readonly string[] = [
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  ...Object.values(STORAGE_OF).map((s) => `torch.${s!.type}`),
];

export interface TorchSaveOptions {
  /** The folder name inside the archive (torch uses the file's base name without extension; default 'archive'). */
  archiveName?: string;
  /** Max nesting depth of the object (default 100). */
  maxDepth?: number;
}

function isTensor(v: unknown): v is TorchTensor {
  return typeof v === 'object' && v !== null && Array.isArray((v as TorchTensor).shape) && ArrayBuffer.isView((v as TorchTensor).data);
}

/** The bytes of `torch.save(root)`; `root` must be a dict (plain object or PyDictOut). Throws MsnValueError for values it cannot write. */
export function writeTorchCheckpoint(root: { [key: string]: TorchSaveValue } | PyDictOut, opts: TorchSaveOptions = {}): Uint8Array {
  const archive = opts.archiveName ?? 'archive';
  if (!/^[A-Za-z0-9_.-]{1,128}$/.test(archive)) throw new MsnValueError(`writeTorchCheckpoint: archiveName "${archive}" must be 1-128 letters, digits, '_', '.' or '-'.`);
  if (!(root instanceof PyDictOut) && (typeof root !== 'object' || root === null || Array.isArray(root) || isTensor(root))) {
    throw new MsnValueError('writeTorchCheckpoint: the saved object must be a dict.');
  }
  const pickler = new TorchPickler(archive, opts.maxDepth ?? 100);
  pickler.value(root as TorchSaveValue, '', 0);
  const enc = new TextEncoder();
  return writeZip([
    { name: `${archive}/data.pkl`, data: pickler.w.stop().bytes() },
    { name: `${archive}/byteorder`, data: enc.encode('little') },
    ...pickler.storages,
    { name: `${archive}/version`, data: enc.encode('3\n') },
  ]);
}

/** Pickles one object the way torch.save does, collecting a storage record per tensor. */
class TorchPickler {
  readonly w = new PickleWriter().proto(2);
  readonly storages: ZipInput[] = [];
  /** Memo slot of each global already pickled ("module.name"). */
  private readonly memo = new Map<string, number>();

  constructor(
    private readonly archive: string,
    private readonly maxDepth: number,
  ) {}

  value(v: TorchSaveValue, path: string, depth: number): void {
    const w = this.w;
    if (depth > this.maxDepth) bad(path, `is nested deeper than ${this.maxDepth} levels (a cycle?).`);
    if (v === null) w.none();
    else if (typeof v === 'boolean') w.bool(v);
    else if (typeof v === 'string') w.str(v);
    else if (typeof v === 'bigint') w.int(v);
    else if (typeof v === 'number') {
      if (Number.isInteger(v) && Number.isSafeInteger(v)) w.int(v);
      else w.float(v);
    } else if (v instanceof PyFloatOut) w.float(v.value);
    else if (v instanceof PyTupleOut) {
      if (v.items.length === 0) w.emptyTuple();
      else {
        w.mark();
        v.items.forEach((x, i) => this.value(x, `${path}[${i}]`, depth + 1));
        w.tuple();
      }
    } else if (Array.isArray(v)) {
      w.emptyList();
      if (v.length > 0) {
        w.mark();
        v.forEach((x, i) => this.value(x, `${path}[${i}]`, depth + 1));
        w.appends();
      }
    } else if (isTensor(v)) this.tensor(v, path);
    else if (v instanceof PyDictOut) this.dict(v.entries, v.ordered, path, depth);
    else if (typeof v === 'object') this.dict(Object.entries(v), false, path, depth);
    else bad(path, `is a ${typeof v}, which has no pickle form here.`);
  }

  /** A global, pickled once and then fetched from the memo, as CPython's pickler does. */
  private global(module: string, name: string): PickleWriter {
    const key = `${module}.${name}`;
    const at = this.memo.get(key);
    if (at !== undefined) return this.w.get(at);
    this.memo.set(key, this.memo.size);
    return this.w.global(module, name).put(this.memo.size - 1);
  }

  /** `_rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())` over a new contiguous storage. */
  private tensor(t: TorchTensor, path: string): void {
    const info = STORAGE_OF[t.dtype];
    if (!info) bad(path, `is a ${t.dtype} tensor; this writer supports float32, float64 and int64.`);
    if (!(t.data instanceof (info!.array as typeof Float32Array))) bad(path, `has dtype ${t.dtype} but its data is a ${t.data.constructor.name}.`);
    let numel = 1;
    for (const d of t.shape) {
      if (!Number.isSafeInteger(d) || d < 0) bad(path, `has an invalid shape [${t.shape.join(', ')}].`);
      numel *= d;
    }
    if (numel !== t.data.length) bad(path, `has shape [${t.shape.join(', ')}] (${numel} elements) but ${t.data.length} values.`);
    const stride = t.shape.map((_, i) => t.shape.slice(i + 1).reduce((a, b) => a * b, 1));
    const key = String(this.storages.length);
    // A view on little-endian hosts, not a copy: writeZip copies it into the archive.
    const bytes = littleEndianBytes(t.data as Float32Array | Float64Array | BigInt64Array);
    this.storages.push({ name: `${this.archive}/data/${key}`, data: bytes });
    const w = this.w;
    this.global('torch._utils', '_rebuild_tensor_v2').mark();
    w.mark().str('storage');
    this.global('torch', info!.type);
    w.str(key).str('cpu').int(numel).tuple().persid();
    w.int(0).tupleOf(t.shape).tupleOf(stride).bool(false);
    this.global('collections', 'OrderedDict').emptyTuple().reduce();
    w.tuple().reduce();
  }

  private dict(entries: ReadonlyArray<readonly [string | number, TorchSaveValue]>, ordered: boolean, path: string, depth: number): void {
    if (ordered) this.global('collections', 'OrderedDict').emptyTuple().reduce();
    else this.w.emptyDict();
    const seen = new Set<string | number>();
    // SETITEMS in batches of 1000, as CPython does.
    for (let i = 0; i < entries.length; i += 1000) {
      this.w.mark();
      for (const [k, x] of entries.slice(i, i + 1000)) {
        if (seen.has(k)) bad(path, `has the key ${JSON.stringify(k)} twice.`);
        seen.add(k);
        const p = `${path}[${JSON.stringify(k)}]`;
        if (typeof k === 'string') this.w.str(k);
        else if (Number.isSafeInteger(k)) this.w.int(k);
        else bad(p, `has the key ${String(k)}, which is neither a string nor an integer.`);
        this.value(x, p, depth + 1);
      }
      this.w.setitems();
    }
  }
}

function bad(path: string, msg: string): never {
  throw new MsnValueError(`writeTorchCheckpoint: ${path || 'the root'} ${msg}`);
}
