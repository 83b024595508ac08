/**
 * The SDK's own model format: a `model.json` manifest plus binary shard files
 * (`weights-00000.bin`, ...). Browser-safe: no Node imports; hashing uses
 * WebCrypto (`crypto.subtle`, in browsers and as a global in Node >= 20).
 *
 * model.json (version 1):
 *   {
 *     "format": "msn-web/model", "version": 1,
 *     "config": VitConfig,
 *     "tensors": [{ "name", "shape", "dtype": "float32" | "float16", "shard", "offset", "byteLength" }],
 *     "shards":  [{ "file": "weights-00000.bin", "byteLength", "sha256": "<64 hex>" }],
 *     "meta": { ... free-form JSON ... }
 *   }
 * - Tensor names are our parameter/buffer names (paramSpecs / bufferSpecs of
 *   `config`) plus the optional "prototypes" [numPrototypes, outputDim]; the
 *   shapes are in our layout (Linear weights (in, out), patch embedding
 *   (p*p*C, D)). Every parameter and buffer must be present, nothing else.
 * - Data is little-endian; each tensor lies inside one shard at a 4-byte
 *   aligned offset. Shards are filled up to `shardBytes` (default 4 MiB); a
 *   tensor larger than that gets a shard of its own.
 *
 * float16: with `{ float16: true }` every tensor of rank >= 2 (linear and
 * patch weights, position embedding, CLS token, prototypes: >99.9% of the
 * bytes) is stored as IEEE binary16, rounded to nearest, ties to even; 1-D
 * tensors (biases, LayerNorm/BatchNorm affine and running statistics) stay
 * float32. A tensor with a finite value beyond the float16 range (|x| > 65504)
 * stays float32 too. Precision loss: each stored weight has a relative
 * error <= 2^-11 (~4.9e-4) for |x| >= 2^-14 and an absolute error <= 2^-25
 * below. Effect on outputs, relative L2 error of the float16 model against the
 * float32 one: official tiny checkpoint ~2e-4 (features) / ~3e-4 (head), a
 * random-init ViT-S/16 ~6e-4 (224 px features). Tests assert < 2e-3
 * (test/io/model-format.test.ts, test/io/vit-s16.test.ts). Use float32 when
 * bit-exact parity with the PyTorch weights matters.
 */
import { MsnFormatError, MsnShapeError, MsnValueError } from '../errors.js';
import { MODEL_LIMITS, VitConfig, parameterCount, validateConfig } from '../model/config.js';
import { NamedArrays, bufferSpecs, paramSpecs } from '../model/params.js';
import { type Fail, alignUp, failWith, fromLittleEndian, littleEndianBytes } from '../util/bytes.js';
import { FLOAT16_MAX, float16ToFloat32, float32ToFloat16 } from '../util/float16.js';

export const MODEL_FORMAT = 'msn-web/model';
export const MODEL_FORMAT_VERSION = 1;
export const MANIFEST_FILE = 'model.json';
export const DEFAULT_SHARD_BYTES = 4 * 1024 * 1024;
/** Default limit on the summed shard sizes (a ViT-L/7 with head is ~1.3 GB in float32): MODEL_LIMITS.maxParameterBytes. */
export const DEFAULT_MAX_TOTAL_BYTES = MODEL_LIMITS.maxParameterBytes;
export const PROTOTYPES_TENSOR = 'prototypes';

export type StoredDType = 'float32' | 'float16';

export interface ManifestTensor {
  name: string;
  shape: number[];
  dtype: StoredDType;
  shard: number;
  offset: number;
  byteLength: number;
}
export interface ManifestShard {
  file: string;
  byteLength: number;
  sha256: string;
}
export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };
export type ModelMeta = { [k: string]: JsonValue };

export interface ModelManifest {
  format: typeof MODEL_FORMAT;
  version: typeof MODEL_FORMAT_VERSION;
  config: VitConfig;
  tensors: ManifestTensor[];
  shards: ManifestShard[];
  meta: ModelMeta;
}

/** A model in memory: what encodeModel takes and decodeModel returns. */
export interface ModelData {
  config: VitConfig;
  params: NamedArrays;
  buffers: NamedArrays;
  /** [numPrototypes * outputDim], row-major. */
  prototypes?: Float32Array;
  meta: ModelMeta;
}

/** An encoded model: the manifest and the shard bytes, in manifest order. */
export interface EncodedModel {
  manifest: ModelManifest;
  shards: Uint8Array[];
}

export interface EncodeOptions {
  /** Store rank >= 2 tensors as float16 (see the module comment). Default false. */
  float16?: boolean;
  /** Target shard size in bytes (default 4 MiB, min 1024). */
  shardBytes?: number;
}

export interface DecodeOptions {
  /** Max summed shard bytes (default 2 GiB). */
  maxTotalBytes?: number;
}

// float16 (IEEE 754 binary16) lives in util/float16.ts; re-exported here, where
// the public API has always found it.
export { float32ToFloat16, float16ToFloat32 } from '../util/float16.js';

// ---------------------------------------------------------------------------
// Helpers.

const fail: Fail = failWith('msn-web model: ');

function subtle(): SubtleCrypto {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  if (!c?.subtle) {
    fail('WebCrypto (crypto.subtle) is not available; it is needed to hash shards (browsers: use a secure context, https or localhost).');
  }
  return c.subtle;
}

/** Lower-case hex SHA-256 of the bytes (WebCrypto). */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  // digest() takes a BufferSource; pass an exact view (Node Buffers may share a pool).
  const view = new Uint8Array(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength);
  const d = new Uint8Array(await subtle().digest('SHA-256', view));
  let s = '';
  for (const b of d) s += b.toString(16).padStart(2, '0');
  return s;
}

export function shardFileName(i: number): string {
  return `weights-${String(i).padStart(5, '0')}.bin`;
}

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const sameShape = (a: number[], b: number[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/** Expected shapes: params, then buffers, then optional prototypes. */
function expectedTensors(cfg: VitConfig): Map<string, { shape: number[]; kind: 'params' | 'buffers' | 'prototypes' }> {
  const m = new Map<string, { shape: number[]; kind: 'params' | 'buffers' | 'prototypes' }>();
  for (const s of paramSpecs(cfg)) m.set(s.name, { shape: s.shape, kind: 'params' });
  for (const s of bufferSpecs(cfg)) m.set(s.name, { shape: s.shape, kind: 'buffers' });
  m.set(PROTOTYPES_TENSOR, { shape: [cfg.numPrototypes, cfg.outputDim], kind: 'prototypes' });
  return m;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkJson(v: unknown, path: string, depth = 0): void {
  if (depth > 64) fail(`${path} is nested too deeply.`);
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) fail(`${path} is not a finite number.`);
    return;
  }
  if (Array.isArray(v)) {
    v.forEach((x, i) => checkJson(x, `${path}[${i}]`, depth + 1));
    return;
  }
  if (isPlainObject(v) && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null)) {
    for (const [k, x] of Object.entries(v)) checkJson(x, `${path}.${k}`, depth + 1);
    return;
  }
  fail(`${path} is not plain JSON data.`);
}

function checkFinite(a: Float32Array, name: string, err: (m: string) => never): void {
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) err(`tensor '${name}' holds a non-finite value (${a[i]}) at element ${i}.`);
  }
}

// ---------------------------------------------------------------------------
// Encode.

/**
 * Packs a model into a manifest and shards. Checks the weights against the
 * config (MsnShapeError) and refuses NaN/Inf (MsnValueError). Async because
 * shard hashes use WebCrypto.
 */
export async function encodeModel(model: ModelData, opts: EncodeOptions = {}): Promise<EncodedModel> {
  const config = validateConfig(model.config);
  const shardBytes = opts.shardBytes ?? DEFAULT_SHARD_BYTES;
  if (!Number.isInteger(shardBytes) || shardBytes < 1024) throw new MsnValueError(`shardBytes must be an integer >= 1024, got ${shardBytes}.`);
  const meta = model.meta ?? {};
  if (!isPlainObject(meta)) throw new MsnValueError('meta must be a plain JSON object.');
  try {
    checkJson(meta, 'meta');
  } catch (e) {
    throw new MsnValueError((e as Error).message);
  }

  const blobs = modelTensors(model, config).map((t) => storedTensor(t, opts.float16 ?? false));
  const { tensors, shards } = packShards(blobs, shardBytes);
  const shardEntries: ManifestShard[] = [];
  for (let i = 0; i < shards.length; i++) {
    shardEntries.push({ file: shardFileName(i), byteLength: shards[i].length, sha256: await sha256Hex(shards[i]) });
  }
  const manifest: ModelManifest = {
    format: MODEL_FORMAT,
    version: MODEL_FORMAT_VERSION,
    config: { ...config },
    tensors,
    shards: shardEntries,
    meta: JSON.parse(JSON.stringify(meta)) as ModelMeta,
  };
  return { manifest, shards };
}

interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}
/** A tensor as it will be stored: its dtype and little-endian bytes. */
interface StoredTensor extends NamedTensor {
  dtype: StoredDType;
  bytes: Uint8Array;
}

/** The model's tensors in the fixed manifest order, each checked against the config; nothing extra allowed. */
function modelTensors(model: ModelData, config: VitConfig): NamedTensor[] {
  const list: NamedTensor[] = [];
  const expected = expectedTensors(config);
  for (const [name, spec] of expected) {
    let a: { shape: number[]; data: Float32Array } | undefined;
    if (spec.kind === 'prototypes') {
      if (!model.prototypes) continue;
      a = { shape: spec.shape, data: model.prototypes };
    } else {
      a = model[spec.kind][name];
      if (!a) throw new MsnShapeError(`encodeModel: missing ${spec.kind === 'params' ? 'parameter' : 'buffer'} '${name}' for this config.`);
      if (!sameShape(a.shape, spec.shape)) throw new MsnShapeError(`encodeModel: '${name}' has shape [${a.shape}], expected [${spec.shape}].`);
    }
    if (!(a.data instanceof Float32Array)) throw new MsnValueError(`encodeModel: '${name}' data must be a Float32Array.`);
    if (a.data.length !== numel(spec.shape)) {
      throw new MsnShapeError(`encodeModel: '${name}' holds ${a.data.length} values, shape [${spec.shape}] needs ${numel(spec.shape)}.`);
    }
    checkFinite(a.data, name, (m) => {
      throw new MsnValueError(`encodeModel: ${m}`);
    });
    list.push({ name, shape: spec.shape.slice(), data: a.data });
  }
  for (const kind of ['params', 'buffers'] as const) {
    for (const name of Object.keys(model[kind])) {
      const s = expected.get(name);
      if (!s || s.kind !== kind) throw new MsnShapeError(`encodeModel: '${name}' is not a ${kind === 'params' ? 'parameter' : 'buffer'} of this config.`);
    }
  }
  return list;
}

/** float16 for rank >= 2 tensors inside the half range when asked (module comment), float32 otherwise. */
function storedTensor(t: NamedTensor, float16: boolean): StoredTensor {
  if (float16 && t.shape.length >= 2 && t.data.every((x) => Math.abs(x) <= FLOAT16_MAX)) {
    return { ...t, dtype: 'float16', bytes: littleEndianBytes(float32ToFloat16(t.data)) };
  }
  // May view the caller's array: packShards copies the bytes into the shard.
  return { ...t, dtype: 'float32', bytes: littleEndianBytes(t.data) };
}

/** Lays the tensors out in shards: 4-byte aligned offsets, a shard closes when the next tensor would overflow it, no tensor spans two. */
function packShards(blobs: StoredTensor[], shardBytes: number): { tensors: ManifestTensor[]; shards: Uint8Array[] } {
  const tensors: ManifestTensor[] = [];
  const shardParts: { parts: { offset: number; bytes: Uint8Array }[]; size: number }[] = [];
  let cur: { parts: { offset: number; bytes: Uint8Array }[]; size: number } | undefined;
  for (const b of blobs) {
    if (!cur || (cur.size > 0 && alignUp(cur.size, 4) + b.bytes.length > shardBytes)) {
      cur = { parts: [], size: 0 };
      shardParts.push(cur);
    }
    const offset = alignUp(cur.size, 4);
    cur.parts.push({ offset, bytes: b.bytes });
    cur.size = offset + b.bytes.length;
    tensors.push({ name: b.name, shape: b.shape, dtype: b.dtype, shard: shardParts.length - 1, offset, byteLength: b.bytes.length });
  }
  const shards = shardParts.map((s) => {
    const out = new Uint8Array(s.size);
    for (const p of s.parts) out.set(p.bytes, p.offset);
    return out;
  });
  return { tensors, shards };
}

// ---------------------------------------------------------------------------
// Decode.

const SHARD_FILE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const SHA_RE = /^[0-9a-f]{64}$/;
const MAX_TENSORS = 100_000;
/** More shards than tensors would hold nothing but padding. */
const MAX_SHARDS = MAX_TENSORS;

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Checks a parsed model.json (schema, config, file names, sizes, tensor table
 * against the config) without the shard bytes. Returns it typed. Used by the
 * loaders before downloading anything.
 */
export function validateManifest(raw: unknown, opts: DecodeOptions = {}): ModelManifest {
  if (!isPlainObject(raw)) fail('model.json is not a JSON object.');
  if (raw.format !== MODEL_FORMAT) fail(`model.json has format ${JSON.stringify(raw.format)}, expected "${MODEL_FORMAT}" (is this an msn-web model?).`);
  if (raw.version !== MODEL_FORMAT_VERSION) {
    if (typeof raw.version === 'number' && raw.version > MODEL_FORMAT_VERSION) {
      fail(`model.json is format version ${raw.version}; this msn-web reads version ${MODEL_FORMAT_VERSION}. Upgrade msn-web.`);
    }
    fail(`model.json has an unsupported version ${JSON.stringify(raw.version)}.`);
  }
  const extra = Object.keys(raw).filter((k) => !['format', 'version', 'config', 'tensors', 'shards', 'meta'].includes(k));
  if (extra.length) fail(`model.json has unknown field(s): ${extra.join(', ')}.`);

  if (!isPlainObject(raw.config)) fail('model.json has no config object.');
  const cfgKeys = ['imgSize', 'patchSize', 'inChannels', 'embedDim', 'depth', 'numHeads', 'mlpRatio', 'hiddenDim', 'outputDim', 'numPrototypes'];
  for (const k of cfgKeys) if (typeof raw.config[k] !== 'number') fail(`config.${k} is missing or not a number.`);
  const extraCfg = Object.keys(raw.config).filter((k) => !cfgKeys.includes(k));
  if (extraCfg.length) fail(`config has unknown field(s): ${extraCfg.join(', ')}.`);
  let config: VitConfig;
  try {
    config = validateConfig(raw.config as unknown as VitConfig);
  } catch (e) {
    throw new MsnFormatError(`msn-web model: invalid config: ${(e as Error).message}`, { cause: e });
  }

  if (raw.meta === undefined) fail('model.json has no meta object.');
  if (!isPlainObject(raw.meta)) fail('meta is not a JSON object.');
  checkJson(raw.meta, 'meta');

  const { shards, total } = validateShards(raw.shards, opts.maxTotalBytes ?? DEFAULT_MAX_TOTAL_BYTES);
  const tensors = validateTensorTable(raw.tensors, config, shards, total);
  return { format: MODEL_FORMAT, version: MODEL_FORMAT_VERSION, config, tensors, shards, meta: raw.meta as ModelMeta };
}

/** The shard list: plain, distinct file names, sizes that add up to at most `maxTotal`, SHA-256 digests. */
function validateShards(list: unknown, maxTotal: number): { shards: ManifestShard[]; total: number } {
  if (!Array.isArray(list) || list.length === 0) fail('model.json has no shards list.');
  if (list.length > MAX_SHARDS) fail(`model.json lists ${list.length} shards, more than the limit of ${MAX_SHARDS}; re-export the model.`);
  let total = 0;
  const files = new Set<string>();
  const shards: ManifestShard[] = list.map((s: unknown, i: number) => {
    if (!isPlainObject(s)) fail(`shards[${i}] is not an object.`);
    if (typeof s.file !== 'string' || !SHARD_FILE_RE.test(s.file) || s.file === MANIFEST_FILE || s.file.includes('..')) {
      fail(`shards[${i}].file ${JSON.stringify(s.file)} is not a plain file name (letters, digits, '.', '_', '-').`);
    }
    if (files.has(s.file)) fail(`shards[${i}].file '${s.file}' is listed twice.`);
    files.add(s.file);
    if (!isNonNegInt(s.byteLength)) fail(`shards[${i}].byteLength is not a non-negative integer.`);
    if (typeof s.sha256 !== 'string' || !SHA_RE.test(s.sha256)) fail(`shards[${i}].sha256 is not 64 lower-case hex digits.`);
    total += s.byteLength;
    if (total > maxTotal) fail(`the shards add up to more than ${maxTotal} bytes (maxTotalBytes).`);
    return { file: s.file, byteLength: s.byteLength, sha256: s.sha256 };
  });
  return { shards, total };
}

/**
 * The tensor table against the config and the shards: every parameter and
 * buffer once, config shapes, dtype, aligned in-bounds byte ranges, no two
 * tensors sharing bytes, and no more shard bytes than the tensors need.
 */
function validateTensorTable(list: unknown, config: VitConfig, shards: ManifestShard[], total: number): ManifestTensor[] {
  if (!Array.isArray(list)) fail('model.json has no tensors list.');
  if (list.length > MAX_TENSORS) fail(`model.json lists more than ${MAX_TENSORS} tensors.`);
  // The shards hold the tensors and at most 3 bytes of alignment padding
  // before each; more bytes than that would only make a loader download (and
  // hash) data nobody reads.
  const needed = parameterCount(config) * 4 + 4 * list.length;
  if (total > needed) {
    fail(`the shards add up to ${total} bytes, but a model of this config needs at most ${needed}; the manifest is inconsistent, re-export the model.`);
  }
  const expected = expectedTensors(config);
  const seen = new Set<string>();
  const perShard: { start: number; end: number; name: string }[][] = shards.map(() => []);
  const tensors: ManifestTensor[] = list.map((t: unknown, i: number) => {
    if (!isPlainObject(t)) fail(`tensors[${i}] is not an object.`);
    const name = t.name;
    if (typeof name !== 'string') fail(`tensors[${i}].name is not a string.`);
    const spec = expected.get(name);
    if (!spec) fail(`tensor '${name}' is not part of a model with this config.`);
    if (seen.has(name)) fail(`tensor '${name}' is listed twice.`);
    seen.add(name);
    if (!Array.isArray(t.shape) || !t.shape.every(isNonNegInt)) fail(`tensor '${name}' has an invalid shape.`);
    const shape = t.shape as number[];
    if (!sameShape(shape, spec.shape)) fail(`tensor '${name}' has shape [${shape}], the config needs [${spec.shape}].`);
    if (t.dtype !== 'float32' && t.dtype !== 'float16') fail(`tensor '${name}' has dtype ${JSON.stringify(t.dtype)}, expected "float32" or "float16".`);
    const item = t.dtype === 'float32' ? 4 : 2;
    if (!isNonNegInt(t.shard) || t.shard >= shards.length) fail(`tensor '${name}' names shard ${JSON.stringify(t.shard)}, but there are ${shards.length}.`);
    if (!isNonNegInt(t.offset) || t.offset % item !== 0) fail(`tensor '${name}' has an invalid or misaligned offset ${JSON.stringify(t.offset)}.`);
    if (!isNonNegInt(t.byteLength) || t.byteLength !== numel(shape) * item) {
      fail(`tensor '${name}' has byteLength ${JSON.stringify(t.byteLength)}; [${shape}] x ${t.dtype} needs ${numel(shape) * item}.`);
    }
    if (t.offset + t.byteLength > shards[t.shard].byteLength) {
      fail(`tensor '${name}' (bytes ${t.offset}..${t.offset + t.byteLength}) reaches past the end of shard ${t.shard} (${shards[t.shard].byteLength} bytes).`);
    }
    perShard[t.shard].push({ start: t.offset, end: t.offset + t.byteLength, name });
    return { name, shape: shape.slice(), dtype: t.dtype, shard: t.shard, offset: t.offset, byteLength: t.byteLength };
  });
  for (const [name, spec] of expected) {
    if (spec.kind !== 'prototypes' && !seen.has(name)) fail(`tensor '${name}' (shape [${spec.shape}]) is missing.`);
  }
  for (const spans of perShard) {
    spans.sort((a, b) => a.start - b.start);
    for (let i = 1; i < spans.length; i++) {
      if (spans[i].start < spans[i - 1].end) fail(`tensors '${spans[i - 1].name}' and '${spans[i].name}' overlap.`);
    }
  }
  return tensors;
}

/** Checks one shard's size and hash against its manifest entry. */
export async function verifyShard(manifest: ModelManifest, index: number, bytes: Uint8Array): Promise<void> {
  const s = manifest.shards[index];
  if (!(bytes instanceof Uint8Array)) fail(`shard ${index} (${s.file}) is not a Uint8Array.`);
  if (bytes.byteLength !== s.byteLength) {
    fail(`shard ${index} (${s.file}) has ${bytes.byteLength} bytes, the manifest says ${s.byteLength} (truncated or wrong file?).`);
  }
  const h = await sha256Hex(bytes);
  if (h !== s.sha256) fail(`shard ${index} (${s.file}) is corrupt: SHA-256 ${h} does not match the manifest's ${s.sha256}.`);
}

function readTensor(t: ManifestTensor, shard: Uint8Array): Float32Array {
  // validateManifest checked these against the manifest and verifyShard the
  // shard against the manifest; checking the real bytes again keeps a caller
  // that skips either (or a manifest edited in between) from reading short.
  const item = t.dtype === 'float32' ? 4 : 2;
  if (t.byteLength !== numel(t.shape) * item) fail(`tensor '${t.name}' has ${t.byteLength} bytes; [${t.shape}] x ${t.dtype} needs ${numel(t.shape) * item}.`);
  if (t.offset + t.byteLength > shard.byteLength) {
    fail(`tensor '${t.name}' (bytes ${t.offset}..${t.offset + t.byteLength}) reaches past the end of its ${shard.byteLength}-byte shard; the model files are damaged, re-download them.`);
  }
  const n = t.byteLength / item;
  if (t.dtype === 'float32') return fromLittleEndian(Float32Array, shard, t.offset, n);
  return float16ToFloat32(fromLittleEndian(Uint16Array, shard, t.offset, n));
}

/**
 * Checks everything and returns the model: manifest schema, shard count and
 * sizes, SHA-256 of every shard, tensor bounds and shapes against
 * paramSpecs(config), NaN/Inf, size limits. Throws MsnFormatError.
 */
export async function decodeModel(manifestRaw: unknown, shards: Uint8Array[], opts: DecodeOptions = {}): Promise<ModelData> {
  const manifest = validateManifest(manifestRaw, opts);
  if (!Array.isArray(shards)) fail('shards must be an array of Uint8Array.');
  if (shards.length !== manifest.shards.length) fail(`got ${shards.length} shard(s), the manifest lists ${manifest.shards.length}.`);
  for (let i = 0; i < shards.length; i++) await verifyShard(manifest, i, shards[i]);
  const params: NamedArrays = {};
  const buffers: NamedArrays = {};
  let prototypes: Float32Array | undefined;
  const expected = expectedTensors(manifest.config);
  for (const t of manifest.tensors) {
    const data = readTensor(t, shards[t.shard]);
    if (data.length !== numel(t.shape)) fail(`tensor '${t.name}' decoded to ${data.length} values, its shape [${t.shape}] needs ${numel(t.shape)}.`);
    checkFinite(data, t.name, fail);
    const kind = expected.get(t.name)!.kind;
    if (kind === 'prototypes') prototypes = data;
    else (kind === 'params' ? params : buffers)[t.name] = { shape: t.shape.slice(), data };
  }
  // Keep the official order regardless of the manifest's order.
  const ordered = (src: NamedArrays, names: string[]) => Object.fromEntries(names.map((n) => [n, src[n]])) as NamedArrays;
  return {
    config: manifest.config,
    params: ordered(params, paramSpecs(manifest.config).map((s) => s.name)),
    buffers: ordered(buffers, bufferSpecs(manifest.config).map((s) => s.name)),
    prototypes,
    meta: manifest.meta,
  };
}

/** Summed shard bytes of a (validated) manifest. */
export function manifestTotalBytes(manifest: ModelManifest): number {
  return manifest.shards.reduce((a, s) => a + s.byteLength, 0);
}

/** model.json text: valid JSON, one tensor and one shard per line (readable diffs, small files). */
export function formatManifest(manifest: ModelManifest): string {
  const j = (v: unknown) => JSON.stringify(v);
  const list = (items: unknown[]) => (items.length ? `[\n${items.map((x) => `  ${j(x)}`).join(',\n')}\n ]` : '[]');
  return (
    `{\n "format": ${j(manifest.format)},\n "version": ${j(manifest.version)},\n "config": ${j(manifest.config)},\n` +
    ` "tensors": ${list(manifest.tensors)},\n "shards": ${list(manifest.shards)},\n "meta": ${j(manifest.meta)}\n}\n`
  );
}
