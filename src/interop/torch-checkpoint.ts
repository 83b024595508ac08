/**
 * Reads PyTorch checkpoints written by `torch.save` (zip format, PyTorch >= 1.6,
 * e.g. the official MSN `.pth.tar` files) into plain JS values — no Python,
 * no tfjs, no code execution.
 *
 * Layout of such a file: a ZIP archive `<name>/data.pkl` (a protocol-2 pickle
 * of the saved object) plus one raw little-endian buffer per tensor storage at
 * `<name>/data/<key>`; tensors in the pickle are `_rebuild_tensor_v2(storage,
 * offset, size, stride, ...)` calls whose storage is a persistent id
 * `('storage', torch.FloatStorage, key, location, numel)`.
 *
 * Output representation:
 * - dict / OrderedDict → plain object in insertion order (keys are str, or
 *   ints written in decimal; JS lists integer-like keys first in ascending
 *   order, which is the order torch's optimizer state uses anyway). A
 *   state_dict's `_metadata` attribute is dropped.
 * - list and tuple → array; None → null; bool → boolean; float → number;
 *   int → number, or bigint beyond ±2^53.
 * - tensor → `TorchTensor` `{ shape, dtype, data }`: a fresh, contiguous,
 *   row-major copy (storage offset and strides applied). Data arrays:
 *   float32 → Float32Array, float64 → Float64Array, int64 → BigInt64Array
 *   (exact), int32/int16/int8 → Int32Array/Int16Array/Int8Array, uint8 and
 *   bool (0/1) → Uint8Array, float16 and bfloat16 → Float32Array (widened,
 *   exactly: every half/bfloat value is a float32). A 0-d tensor has shape [].
 */
import { MsnFormatError, MsnResourceError } from '../errors.js';
import { MODEL_LIMITS } from '../model/config.js';
import { openZip, type ZipArchive, type ZipEntry } from './zip.js';
import {
  BUILTIN_GLOBALS,
  PyDict,
  PyExternal,
  PyGlobal,
  PyTuple,
  unpickle,
  type GlobalFn,
  type PyValue,
  type UnpickleLimits,
} from './pickle.js';
import { HOST_LITTLE_ENDIAN, type Fail, failWith } from '../util/bytes.js';
import { bfloat16BitsToNumber, float16BitsToNumber } from '../util/float16.js';

export type TorchDType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';
export type TorchTensorData = Float32Array | Float64Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;
export interface TorchTensor {
  shape: number[];
  dtype: TorchDType;
  data: TorchTensorData;
}
export type TorchValue = null | boolean | number | bigint | string | TorchTensor | TorchValue[] | TorchDict;
export interface TorchDict {
  [key: string]: TorchValue;
}

export interface TorchCheckpointOptions extends UnpickleLimits {
  /** Max bytes of tensor data materialised in total (default 2 GiB, MODEL_LIMITS.maxParameterBytes). */
  maxTotalBytes?: number;
  /** Max size of the pickle record `data.pkl` (default 64 MiB; an official checkpoint's is under 1 MB). */
  maxPickleBytes?: number;
  /** Max elements in a single tensor (default 2^29). */
  maxTensorElements?: number;
  /** Verify the CRC-32 of every entry read (default true; costs ~1 ms/MB). */
  verifyCrc?: boolean;
  /** Max ZIP entries (default 100 000). */
  maxEntries?: number;
  /** Max nesting depth of the returned tree (default 1000). */
  maxDepth?: number;
}

interface DTypeInfo {
  dtype: TorchDType;
  itemSize: number;
}
/** The storage classes torch pickles; pure type tags, never called. */
const STORAGE_TYPES = new Map<string, DTypeInfo>([
  ['torch.FloatStorage', { dtype: 'float32', itemSize: 4 }],
  ['torch.DoubleStorage', { dtype: 'float64', itemSize: 8 }],
  ['torch.HalfStorage', { dtype: 'float16', itemSize: 2 }],
  ['torch.BFloat16Storage', { dtype: 'bfloat16', itemSize: 2 }],
  ['torch.LongStorage', { dtype: 'int64', itemSize: 8 }],
  ['torch.IntStorage', { dtype: 'int32', itemSize: 4 }],
  ['torch.ShortStorage', { dtype: 'int16', itemSize: 2 }],
  ['torch.CharStorage', { dtype: 'int8', itemSize: 1 }],
  ['torch.ByteStorage', { dtype: 'uint8', itemSize: 1 }],
  ['torch.BoolStorage', { dtype: 'bool', itemSize: 1 }],
]);

/** Every global a checkpoint may reference; anything else is refused by the unpickler. */
export const ALLOWED_TORCH_GLOBALS: readonly string[] = [
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_parameter',
  ...STORAGE_TYPES.keys(),
];

interface Storage {
  key: string;
  info: DTypeInfo;
  numel: number;
  bytes: Uint8Array;
  /** Elements read by the views built on it so far (see MAX_STORAGE_REUSE). */
  viewed: number;
}

const fail: Fail = failWith('torch checkpoint: ');

const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a];

export const DEFAULT_TORCH_MAX_TOTAL_BYTES = MODEL_LIMITS.maxParameterBytes;
const DEFAULT_MAX_PICKLE_BYTES = 64 * 1024 * 1024;
/** Room for the zip headers and the pickle on top of the tensor bytes. */
const FILE_OVERHEAD_BYTES = 64 * 1024 * 1024;
/**
 * Views of one storage may together read it at most twice over (plus a few
 * scalars): a tensor saved next to its transpose is fine, a thousand tensors
 * aliasing the same bytes (a small file that expands to gigabytes) is not.
 */
const MAX_STORAGE_REUSE = 2;
const STORAGE_REUSE_SLACK = 64;

/**
 * The largest `.pth.tar` worth reading with these options: the tensor budget
 * plus headroom for the zip and pickle records. Callers reading from disk
 * refuse bigger files before reading them (see cli/convert.ts).
 */
export function torchMaxFileBytes(opts: TorchCheckpointOptions = {}): number {
  return (opts.maxTotalBytes ?? DEFAULT_TORCH_MAX_TOTAL_BYTES) + FILE_OVERHEAD_BYTES;
}

/**
 * Parse a `torch.save` zip checkpoint. The root object must be a dict.
 * Throws `MsnFormatError` for anything malformed, truncated, oversized or unsafe.
 */
export function readTorchCheckpoint(bytes: Uint8Array, opts: TorchCheckpointOptions = {}): TorchDict {
  try {
    return read(bytes, opts);
  } catch (e) {
    if (e instanceof Error && (e.name === 'MsnFormatError' || e.name === 'MsnResourceError')) throw e;
    // Safety net only: every known failure is validated explicitly above; this
    // keeps unforeseen engine errors (RangeError, stack overflow) typed.
    const err = e instanceof Error ? e : new Error(String(e));
    throw new MsnFormatError(`torch checkpoint could not be read (internal ${err.name}: ${err.message})`, { cause: e });
  }
}

function read(bytes: Uint8Array, opts: TorchCheckpointOptions): TorchDict {
  if (!(bytes instanceof Uint8Array)) fail('input must be a Uint8Array');
  // A plain view: Node's Buffer subclass has a non-copying slice(), which would alias the input.
  bytes = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const maxFile = torchMaxFileBytes(opts);
  if (bytes.length > maxFile) {
    throw new MsnResourceError(
      `torch checkpoint: the file is ${bytes.length} bytes, over the limit of ${maxFile} for a model of at most ${opts.maxTotalBytes ?? DEFAULT_TORCH_MAX_TOTAL_BYTES} tensor bytes; ` +
        'pass a larger reader.maxTotalBytes if you trust this file.',
    );
  }
  if (LEGACY_MAGIC.every((b, i) => bytes[i] === b)) {
    fail('this is the legacy (pre-1.6) torch serialization format; re-save it with a recent torch.save');
  }
  const archive = openArchive(bytes, opts);
  const globals = torchGlobals(tensorBuilder(archive, opts));

  const maxPickle = opts.maxPickleBytes ?? DEFAULT_MAX_PICKLE_BYTES;
  if (archive.pickle.size > maxPickle) {
    fail(`data.pkl is ${archive.pickle.size} bytes, over the ${maxPickle}-byte limit (maxPickleBytes; an MSN checkpoint's is under 1 MB)`);
  }
  const pkl = archive.zip.read(archive.pickle, { verifyCrc: archive.verifyCrc });
  const root = unpickle(pkl, { ...opts, globals, persistentLoad: storageLoader(archive) });
  if (!(root instanceof PyDict)) fail('the saved object is not a dict');
  return toPlain(root, 0, opts.maxDepth ?? 1000, new Map(), new Set()) as TorchDict;
}

/** The zip side of a checkpoint: where its records live and how its storages are ordered. */
interface Archive {
  zip: ZipArchive;
  /** `<archive>/`, the folder every record lives in. */
  prefix: string;
  /** The `<archive>/data.pkl` entry. */
  pickle: ZipEntry;
  /** Byte order of the storages (`<archive>/byteorder`; little when absent, as in torch < 1.10). */
  littleEndian: boolean;
  verifyCrc: boolean;
}

function openArchive(bytes: Uint8Array, opts: TorchCheckpointOptions): Archive {
  const verifyCrc = opts.verifyCrc ?? true;
  const zip = openZip(bytes, { maxEntries: opts.maxEntries });
  const pkls = zip.entries.filter((e) => /^[^/]+\/data\.pkl$/.test(e.name));
  if (pkls.length !== 1) fail(`expected exactly one "<archive>/data.pkl" entry, found ${pkls.length} (not a torch.save file?)`);
  const prefix = pkls[0].name.slice(0, -'data.pkl'.length);
  let littleEndian = true;
  const bo = zip.get(`${prefix}byteorder`);
  if (bo) {
    const s = String.fromCharCode(...zip.read(bo, { verifyCrc }).subarray(0, 16));
    if (s !== 'little' && s !== 'big') fail(`unknown byteorder record "${s}"`);
    littleEndian = s === 'little';
  }
  return { zip, prefix, pickle: pkls[0], littleEndian, verifyCrc };
}

/**
 * The unpickler's persistent_load: a `('storage', type, key, location, numel)`
 * id becomes the storage's record, read (and size-checked) once per key.
 */
function storageLoader(archive: Archive): (pid: PyValue) => PyValue {
  const { zip, prefix, verifyCrc } = archive;
  const storages = new Map<string, Storage>();
  return (pid) => {
    const t = pid instanceof PyTuple ? pid.items : [];
    if (t.length !== 5 || t[0] !== 'storage') fail('persistent id is not a ("storage", type, key, location, numel) tuple');
    const [, type, key, location, numel] = t;
    const info = type instanceof PyGlobal ? STORAGE_TYPES.get(type.qualname) : undefined;
    if (!info) fail('persistent id does not name a torch storage type');
    if (typeof key !== 'string' || !/^[A-Za-z0-9_]{1,64}$/.test(key)) fail('storage key is not a short alphanumeric string');
    if (typeof location !== 'string') fail(`storage ${key} has a non-string location`);
    if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) fail(`storage ${key} has an invalid element count`);
    let s = storages.get(key);
    if (s) {
      if (s.info !== info || s.numel !== numel) fail(`storage ${key} is referenced with conflicting type or size`);
    } else {
      const entry = zip.get(`${prefix}data/${key}`);
      if (!entry) fail(`storage record "${prefix}data/${key}" is missing`);
      if (entry.size !== numel * info.itemSize) {
        fail(`storage ${key} holds ${entry.size} bytes but ${numel} × ${info.dtype} needs ${numel * info.itemSize}`);
      }
      s = { key, info, numel, bytes: zip.read(entry, { verifyCrc }), viewed: 0 };
      storages.set(key, s);
    }
    return new PyExternal('storage', s);
  };
}

/** Builds a tensor from `(storage, offset, size, stride, ...)` after checking the view and the budgets. */
type TensorBuilder = (args: readonly PyValue[], what: string) => PyValue;

function tensorBuilder(archive: Archive, opts: TorchCheckpointOptions): TensorBuilder {
  const maxTotalBytes = opts.maxTotalBytes ?? DEFAULT_TORCH_MAX_TOTAL_BYTES;
  const maxElems = opts.maxTensorElements ?? 2 ** 29;
  let totalBytes = 0;
  return (args, what) => {
    const [st, offset, size, stride] = args;
    const s = st instanceof PyExternal && st.tag === 'storage' ? (st.value as Storage) : undefined;
    if (!s) fail(`${what}: first argument is not a storage`);
    const shape = intTuple(size, `${what}: size`);
    const strides = intTuple(stride, `${what}: stride`);
    if (shape.length !== strides.length) fail(`${what}: size has ${shape.length} dims but stride has ${strides.length}`);
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) fail(`${what}: invalid storage offset`);
    const numel = checkView(s, offset, shape, strides, maxElems, what);
    const outItem = s.info.dtype === 'float16' || s.info.dtype === 'bfloat16' ? 4 : s.info.itemSize;
    totalBytes += numel * outItem;
    if (totalBytes > maxTotalBytes) fail(`tensors exceed the ${maxTotalBytes}-byte limit (maxTotalBytes)`);
    s.viewed += numel;
    if (s.viewed > MAX_STORAGE_REUSE * s.numel + STORAGE_REUSE_SLACK) {
      fail(
        `${what}: the views of storage ${s.key} read its ${s.numel} elements more than ${MAX_STORAGE_REUSE} times over ` +
          '(many tensors aliasing the same bytes); the file is corrupt or hostile',
      );
    }
    const tensor: TorchTensor = { shape, dtype: s.info.dtype, data: copyTensor(s, offset, shape, strides, numel, archive.littleEndian) };
    return new PyExternal('tensor', tensor);
  };
}

/**
 * Checks a view before its copy is allocated and returns its element count.
 * A view reads only bytes its storage holds, so a tensor can never be larger
 * than the file: no more elements than the storage, and no broadcasting
 * (stride 0 repeats one element along a dimension; torch.save writes it only
 * for expand()ed tensors, which MSN checkpoints do not hold).
 */
function checkView(s: Storage, offset: number, shape: number[], strides: number[], maxElems: number, what: string): number {
  let numel = 1;
  for (const d of shape) {
    numel *= d;
    if (numel > maxElems) fail(`${what}: tensor of shape [${shape}] exceeds ${maxElems} elements`);
  }
  if (numel > s.numel) {
    fail(`${what}: a view of shape [${shape}] (${numel} elements) is larger than its ${s.numel}-element storage ${s.key}; the file is corrupt or hostile`);
  }
  for (let i = 0; i < shape.length; i++) {
    if (strides[i] === 0 && shape[i] > 1) {
      fail(`${what}: stride 0 on dimension ${i} (size ${shape[i]}) repeats storage elements (an expand()ed tensor); save tensor.contiguous() instead`);
    }
  }
  // The furthest element read must lie inside the storage.
  if (numel > 0) {
    let last = offset;
    for (let i = 0; i < shape.length; i++) last += (shape[i] - 1) * strides[i];
    if (!Number.isSafeInteger(last) || last >= s.numel) {
      fail(`${what}: view (offset ${offset}, shape [${shape}], stride [${strides}]) reaches outside its ${s.numel}-element storage`);
    }
  } else if (offset > s.numel) {
    fail(`${what}: storage offset ${offset} is past the end of its ${s.numel}-element storage`);
  }
  return numel;
}

/** The whitelist the unpickler resolves GLOBAL against: tensor rebuilders, OrderedDict, and storage type tags that refuse to be called. */
function torchGlobals(makeTensor: TensorBuilder): Map<string, GlobalFn> {
  const globals = new Map<string, GlobalFn>(BUILTIN_GLOBALS);
  globals.set('torch._utils._rebuild_tensor_v2', (a) => {
    // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    if (a.length !== 6 && a.length !== 7) fail(`_rebuild_tensor_v2 takes 6 or 7 arguments, got ${a.length}`);
    if (typeof a[4] !== 'boolean') fail('_rebuild_tensor_v2: requires_grad is not a bool');
    if (!(a[5] instanceof PyDict)) fail('_rebuild_tensor_v2: backward_hooks is not a dict');
    if (a.length === 7 && a[6] !== null && !(a[6] instanceof PyDict)) fail('_rebuild_tensor_v2: metadata is not a dict');
    return makeTensor(a, '_rebuild_tensor_v2');
  });
  globals.set('torch._utils._rebuild_tensor', (a) => {
    if (a.length !== 4) fail(`_rebuild_tensor takes 4 arguments, got ${a.length}`);
    return makeTensor(a, '_rebuild_tensor');
  });
  globals.set('torch._utils._rebuild_parameter', (a) => {
    // (data, requires_grad, backward_hooks): a Parameter is just its tensor here.
    if (a.length !== 3 || !(a[0] instanceof PyExternal) || a[0].tag !== 'tensor') fail('_rebuild_parameter needs (tensor, bool, hooks)');
    return a[0];
  });
  for (const name of STORAGE_TYPES.keys()) {
    globals.set(name, () => fail(`${name} may only appear as a storage type tag, not be called`));
  }
  return globals;
}

function intTuple(v: PyValue, what: string): number[] {
  if (!(v instanceof PyTuple)) fail(`${what} is not a tuple`);
  if (v.items.length > 64) fail(`${what} has more than 64 dimensions`);
  return v.items.map((x) => {
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0) fail(`${what} holds a value that is not a non-negative integer`);
    return x;
  });
}

/** Contiguous row-major copy of a strided view; fast path for plain contiguous data. */
function copyTensor(s: Storage, offset: number, shape: number[], strides: number[], numel: number, le: boolean): TorchTensorData {
  const { dtype, itemSize } = s.info;
  let contiguous = true;
  for (let i = shape.length - 1, expect = 1; i >= 0; i--) {
    if (shape[i] === 1) continue; // a size-1 dim's stride is irrelevant (torch writes arbitrary ones)
    if (strides[i] !== expect) contiguous = false;
    expect *= shape[i];
  }
  const byteStart = offset * itemSize;
  if (contiguous && le && HOST_LITTLE_ENDIAN && dtype !== 'float16' && dtype !== 'bfloat16' && dtype !== 'bool') {
    // Copy into a fresh (hence aligned) buffer; the typed array views it directly.
    const copy = new Uint8Array(numel * itemSize);
    copy.set(s.bytes.subarray(byteStart, byteStart + numel * itemSize));
    return new ARRAY_TYPES[dtype](copy.buffer);
  }
  const out = new ARRAY_TYPES[dtype](numel);
  const dv = new DataView(s.bytes.buffer, s.bytes.byteOffset, s.bytes.byteLength);
  const get = elementReader(dtype, dv, le);
  const put = out as unknown as Array<number | bigint>;
  // Odometer over the index space, tracking the source element index.
  const rank = shape.length;
  const idx = new Array<number>(rank).fill(0);
  let src = offset;
  for (let i = 0; i < numel; i++) {
    put[i] = get(src * itemSize);
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      src += strides[d];
      if (idx[d] < shape[d]) break;
      src -= strides[d] * shape[d];
      idx[d] = 0;
    }
  }
  return out;
}

/** Output array type per dtype (half/bfloat widen to float32, bool is 0/1 bytes). */
type ArrayCtor = new (lengthOrBuffer: number | ArrayBuffer) => TorchTensorData;
const ARRAY_TYPES = {
  float32: Float32Array, float16: Float32Array, bfloat16: Float32Array, float64: Float64Array, int64: BigInt64Array,
  int32: Int32Array, int16: Int16Array, int8: Int8Array, uint8: Uint8Array, bool: Uint8Array,
} as unknown as Record<TorchDType, ArrayCtor>;

function elementReader(dtype: TorchDType, dv: DataView, le: boolean): (byteOff: number) => number | bigint {
  switch (dtype) {
    case 'float32': return (o) => dv.getFloat32(o, le);
    case 'float64': return (o) => dv.getFloat64(o, le);
    case 'int64': return (o) => dv.getBigInt64(o, le);
    case 'int32': return (o) => dv.getInt32(o, le);
    case 'int16': return (o) => dv.getInt16(o, le);
    case 'int8': return (o) => dv.getInt8(o);
    case 'uint8': return (o) => dv.getUint8(o);
    case 'bool': return (o) => (dv.getUint8(o) !== 0 ? 1 : 0);
    case 'float16': return (o) => float16BitsToNumber(dv.getUint16(o, le));
    case 'bfloat16': return (o) => bfloat16BitsToNumber(dv.getUint16(o, le));
  }
}

/** Convert unpickled values to plain JS; shared references stay shared, cycles are refused. */
function toPlain(v: PyValue, depth: number, maxDepth: number, done: Map<object, TorchValue>, active: Set<object>): TorchValue {
  if (v === null || typeof v !== 'object') return v as TorchValue;
  if (depth > maxDepth) fail(`structure is nested deeper than ${maxDepth} levels`);
  if (v instanceof PyExternal) {
    if (v.tag === 'tensor') return v.value as TorchTensor;
    return fail('a bare storage outside a tensor is not supported');
  }
  if (v instanceof PyGlobal) fail(`a bare reference to ${v.qualname} cannot be represented as data`);
  const seen = done.get(v);
  if (seen !== undefined) return seen;
  if (active.has(v)) fail('the saved object contains a reference cycle');
  active.add(v);
  let out: TorchValue;
  if (Array.isArray(v) || v instanceof PyTuple) {
    const items = Array.isArray(v) ? v : v.items;
    out = items.map((x) => toPlain(x, depth + 1, maxDepth, done, active));
  } else {
    const obj: TorchDict = {};
    for (const [k, x] of v.map) {
      let key: string;
      if (typeof k === 'string') key = k;
      else if ((typeof k === 'number' && Number.isInteger(k)) || typeof k === 'bigint') key = String(k);
      else return fail(`dict key ${String(k)} (${typeof k}) cannot become an object key`);
      if (Object.hasOwn(obj, key)) fail(`dict keys collide as "${key}"`);
      // defineProperty: a key such as "__proto__" becomes an ordinary own property.
      Object.defineProperty(obj, key, { value: toPlain(x, depth + 1, maxDepth, done, active), enumerable: true, writable: true, configurable: true });
    }
    out = obj;
  }
  active.delete(v);
  done.set(v, out);
  return out;
}

export function isTorchTensor(v: unknown): v is TorchTensor {
  return typeof v === 'object' && v !== null && ArrayBuffer.isView((v as TorchTensor).data) && Array.isArray((v as TorchTensor).shape);
}

/**
 * Drop a leading `module.` (DistributedDataParallel) from every key that has
 * it, keeping order and values. Only one level is stripped. Two keys that
 * become equal (e.g. `module.x` and `x`) are an error, not a silent overwrite.
 */
export function stripModulePrefix(stateDict: TorchDict, prefix = 'module.'): TorchDict {
  const out: TorchDict = {};
  for (const [k, v] of Object.entries(stateDict)) {
    const key = k.startsWith(prefix) ? k.slice(prefix.length) : k;
    if (Object.hasOwn(out, key)) throw new MsnFormatError(`stripModulePrefix: keys "${k}" and "${key}" collide after removing "${prefix}"`);
    Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** A tensor's values as float32 (e.g. for tf.tensor); int64 goes through Number(). */
export function tensorToFloat32(t: TorchTensor): Float32Array {
  if (t.data instanceof Float32Array) return t.data;
  const out = new Float32Array(t.data.length);
  for (let i = 0; i < out.length; i++) out[i] = Number(t.data[i]);
  return out;
}

