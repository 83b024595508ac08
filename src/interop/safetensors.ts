/**
 * A defensive reader and a small writer for the safetensors format (Hugging
 * Face's `model.safetensors`), in pure TypeScript over in-memory bytes, so it
 * runs in browsers as well as Node.
 *
 * Layout (https://github.com/huggingface/safetensors, "Format"):
 *   u64 little-endian N | N bytes of UTF-8 JSON header | data buffer
 *   header = { "<name>": { "dtype": "F32", "shape": [..], "data_offsets": [begin, end] },
 *              "__metadata__"?: { "<key>": "<string>" } }
 * Offsets are relative to the start of the data buffer, row-major,
 * little-endian; the tensors must tile the buffer exactly (no gaps, no
 * overlaps), which the reference implementation enforces too.
 *
 * Everything read is treated as hostile, like the zip and pickle readers:
 * the header length is capped (MAX_HEADER_BYTES, the reference's own 100 MB
 * limit) and must fit the file, the header must be a JSON object of
 * well-formed entries, every dtype must be known, every shape a list of
 * non-negative safe integers whose element count times the item size equals
 * its `data_offsets` span, every span inside the buffer, and the spans must
 * cover the buffer exactly. The summed tensor bytes are capped by
 * `maxTotalBytes` (default: the model budget, MODEL_LIMITS.maxParameterBytes).
 * Every failure is an MsnFormatError; no RangeError/TypeError escapes.
 *
 * Floating-point tensors (F32, F16, BF16, F64) are returned as Float32Array
 * (half and bfloat16 widen exactly; F64 rounds); integer and bool tensors are
 * listed with their dtype and shape but their values are not decoded (no
 * importer needs them).
 */
import { MsnFormatError } from '../errors.js';
import { MODEL_LIMITS } from '../model/config.js';
import { bfloat16ToFloat32, float16ToFloat32 } from '../util/float16.js';
import { HOST_LITTLE_ENDIAN, type Fail, failWith, fromLittleEndian } from '../util/bytes.js';

/** The reference implementation's cap on the JSON header (safetensors' MAX_HEADER_SIZE). */
export const MAX_HEADER_BYTES = 100_000_000;
/** Most tensors one file may list (a ViT-L has ~300). */
export const MAX_TENSORS = 100_000;
const MAX_RANK = 8;

/** Item size in bytes of every dtype the format defines. */
export const SAFETENSORS_DTYPES: Readonly<Record<string, number>> = Object.freeze({
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, I16: 2, U16: 2, F16: 2, BF16: 2, I32: 4, U32: 4, F32: 4, I64: 8, U64: 8, F64: 8,
});
const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  /** The values for F32/F16/BF16/F64 (widened to float32); undefined for other dtypes. */
  data?: Float32Array;
}

export interface SafetensorsFile {
  /** Tensors in header order. */
  tensors: Map<string, SafetensorsEntry>;
  /** `__metadata__` (string to string), empty when absent. */
  metadata: Record<string, string>;
}

export interface SafetensorsReadOptions {
  /** Cap on the summed tensor bytes (default MODEL_LIMITS.maxParameterBytes, 2 GiB). */
  maxTotalBytes?: number;
}

/** The largest file worth reading with these options (callers refuse bigger files before reading them). */
export function safetensorsMaxFileBytes(opts: SafetensorsReadOptions = {}): number {
  return (opts.maxTotalBytes ?? MODEL_LIMITS.maxParameterBytes) + 8 + MAX_HEADER_BYTES;
}

const fail: Fail = failWith('safetensors: ');

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parses a safetensors file. Throws MsnFormatError for anything malformed, truncated or oversized. */
export function readSafetensors(bytes: Uint8Array, opts: SafetensorsReadOptions = {}): SafetensorsFile {
  if (!(bytes instanceof Uint8Array)) fail('expected the file as a Uint8Array.');
  const maxTotal = opts.maxTotalBytes ?? MODEL_LIMITS.maxParameterBytes;
  if (bytes.length < 8) fail(`the file is ${bytes.length} bytes, too short for the 8-byte header length.`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = dv.getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) fail(`the header claims ${n} bytes, over the ${MAX_HEADER_BYTES}-byte limit (not a safetensors file, or corrupt).`);
  const headerLen = Number(n);
  if (8 + headerLen > bytes.length) fail(`the header claims ${headerLen} bytes but the file has only ${bytes.length - 8} after the length (truncated?).`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen)));
  } catch (e) {
    throw new MsnFormatError(`safetensors: the header is not valid UTF-8 JSON (${(e as Error).message}).`, { cause: e });
  }
  if (!isPlainObject(header)) fail('the header is not a JSON object.');
  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;

  const metadata: Record<string, string> = {};
  const raw = header.__metadata__;
  if (raw !== undefined) {
    if (!isPlainObject(raw)) fail(`'__metadata__' is not an object of strings.`);
    for (const [k, v] of Object.entries(raw)) {
      if (typeof v !== 'string') fail(`'__metadata__.${k}' is not a string.`);
      metadata[k] = v;
    }
  }

  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  if (names.length > MAX_TENSORS) fail(`the header lists ${names.length} tensors, over the limit of ${MAX_TENSORS}.`);
  const spans: { name: string; begin: number; end: number; dtype: string; shape: number[] }[] = [];
  let total = 0;
  for (const name of names) {
    const e = header[name];
    if (!isPlainObject(e)) fail(`entry '${name}' is not an object.`);
    const { dtype, shape, data_offsets: offsets } = e;
    if (typeof dtype !== 'string' || !Object.hasOwn(SAFETENSORS_DTYPES, dtype)) {
      fail(`entry '${name}' has dtype ${JSON.stringify(dtype)}; known dtypes are ${Object.keys(SAFETENSORS_DTYPES).join(', ')}.`);
    }
    if (!Array.isArray(shape) || shape.length > MAX_RANK || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`entry '${name}' has shape ${JSON.stringify(shape)}; expected at most ${MAX_RANK} non-negative integers.`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]) {
      fail(`entry '${name}' has data_offsets ${JSON.stringify(offsets)}; expected [begin, end] with 0 <= begin <= end.`);
    }
    const [begin, end] = offsets as number[];
    if (end > dataLen) fail(`entry '${name}' ends at byte ${end} of the data, past its end (${dataLen} bytes; truncated?).`);
    let numel = 1;
    for (const d of shape as number[]) {
      numel *= d;
      if (numel * SAFETENSORS_DTYPES[dtype] > dataLen) fail(`entry '${name}' has shape [${shape}], larger than the whole data (${dataLen} bytes).`);
    }
    const byteLength = numel * SAFETENSORS_DTYPES[dtype];
    if (end - begin !== byteLength) fail(`entry '${name}' (${dtype} [${shape}]) needs ${byteLength} bytes but data_offsets span ${end - begin}.`);
    total += byteLength;
    if (total > maxTotal) fail(`the tensors hold more than ${maxTotal} bytes (maxTotalBytes).`);
    spans.push({ name, begin, end, dtype, shape: (shape as number[]).slice() });
  }
  // The tensors must tile the data buffer: sorted by offset, each starts where the last ended.
  const sorted = [...spans].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const s of sorted) {
    if (s.begin < at) fail(`entry '${s.name}' overlaps the tensor before it (it starts at byte ${s.begin}, the previous one ends at ${at}).`);
    if (s.begin > at) fail(`bytes ${at}..${s.begin} of the data belong to no tensor (before '${s.name}').`);
    at = s.end;
  }
  if (at !== dataLen) fail(`the data has ${dataLen - at} trailing byte(s) that belong to no tensor.`);

  const tensors = new Map<string, SafetensorsEntry>();
  const data = bytes.subarray(dataStart);
  for (const s of spans) {
    const entry: SafetensorsEntry = { dtype: s.dtype, shape: s.shape };
    if (FLOAT_DTYPES.has(s.dtype)) entry.data = decodeFloats(s.dtype, data.subarray(s.begin, s.end));
    tensors.set(s.name, entry);
  }
  return { tensors, metadata };
}

/** Little-endian F32/F16/BF16/F64 bytes -> Float32Array (copied: the source may be unaligned). */
function decodeFloats(dtype: string, b: Uint8Array): Float32Array {
  if (!HOST_LITTLE_ENDIAN) fail('big-endian hosts are not supported.');
  switch (dtype) {
    case 'F32':
      return fromLittleEndian(Float32Array, b, 0, b.length / 4);
    case 'F64':
      return Float32Array.from(fromLittleEndian(Float64Array, b, 0, b.length / 8));
    case 'F16':
      return float16ToFloat32(fromLittleEndian(Uint16Array, b, 0, b.length / 2));
    default:
      return bfloat16ToFloat32(fromLittleEndian(Uint16Array, b, 0, b.length / 2));
  }
}

/** One float32 tensor to write. */
export interface SafetensorsTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/**
 * Writes float32 tensors (in the given order) as a safetensors file. The
 * header is padded with spaces to a multiple of 8 bytes, as the reference
 * writer does, so every tensor starts 8-byte aligned.
 */
export function writeSafetensors(tensors: SafetensorsTensor[], metadata: Record<string, string> = {}): Uint8Array {
  if (!HOST_LITTLE_ENDIAN) fail('big-endian hosts are not supported.');
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    if (t.name === '__metadata__' || Object.hasOwn(header, t.name)) fail(`cannot write two tensors named '${t.name}'.`);
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (!(t.data instanceof Float32Array) || t.data.length !== numel) fail(`tensor '${t.name}' has ${t.data?.length} values, its shape [${t.shape}] needs ${numel}.`);
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + 4 * numel] };
    offset += 4 * numel;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((new TextEncoder().encode(json).length) % 8)) % 8);
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const t of tensors) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}
