/**
 * A small, safe binary container for named float32 tensors plus JSON
 * metadata: the on-disk form of MSN training checkpoints and model files.
 * Browser-safe (no Node imports).
 *
 * Byte layout (all integers little-endian):
 *
 *   bytes 0..7     ASCII "MSNCKPT1"
 *   bytes 8..11    uint32 H: byte length of the JSON header
 *   bytes 12..15   uint32: CRC-32 (IEEE) of every byte from 16 to the end of the file
 *   16..16+H       UTF-8 JSON header (no BOM):
 *                    { "format_version": 1,
 *                      "kind": string,            what the file holds, e.g. "msn-checkpoint"
 *                      "meta": any JSON value,    caller's metadata
 *                      "payload_bytes": P,        size of the data section
 *                      "tensors": [ { "name": string, "dtype": "float32", "shape": int[],
 *                                     "offset": bytes into the data section (multiple of 4),
 *                                     "length": number of float32 elements (= product of shape),
 *                                     "crc32": CRC-32 of the tensor's 4*length data bytes } ] }
 *   then           zero bytes up to the next multiple of 4 (D = align4(16 + H))
 *   D..D+P         the data section: float32 values, little-endian; the file ends at D + P
 *
 * The writer lays tensors out back to back in insertion order; the reader
 * accepts any aligned, non-overlapping layout inside the data section.
 *
 * Decoding never trusts a size before checking it against the real byte
 * count (so a lying header fails before any allocation), verifies both
 * checksums, rejects non-finite values, and copies every tensor out of the
 * input so the caller may reuse or free the input buffer.
 */
import { MsnConfigError, MsnValueError } from '../errors.js';
import { crc32 } from '../util/crc32.js';
import { type Fail, alignUp, failWith, fromLittleEndian, littleEndianBytes, readUintLE, writeUintLE } from '../util/bytes.js';

export const CONTAINER_MAGIC = 'MSNCKPT1';
export const CONTAINER_FORMAT_VERSION = 1;
/** Default `maxBytes` for `decodeContainer`: 2 GiB. */
export const DEFAULT_CONTAINER_MAX_BYTES = 2 * 1024 ** 3;

/** Bytes before the JSON header: magic, header length, checksum. */
const PREAMBLE = 16;
const MAGIC_BYTES = Uint8Array.from(CONTAINER_MAGIC, (c) => c.charCodeAt(0));
const RESTORE = 'the file is corrupted or truncated; restore the previous checkpoint';
/** How deep `meta` may nest; deeper values are almost certainly a mistake (or a cycle). */
const MAX_META_DEPTH = 256;

export interface ContainerTensor {
  /** Dimensions; `[]` is a scalar (one value). */
  shape: number[];
  /** Row-major values; `data.length` equals the product of `shape`. */
  data: Float32Array;
}

export interface ContainerContents {
  /** What the file holds, e.g. 'msn-checkpoint'; checked by `decodeContainer`'s `expectedKind`. */
  kind: string;
  /**
   * JSON-serialisable metadata: null, booleans, finite numbers, strings,
   * arrays and plain objects. Object properties whose value is `undefined`
   * are dropped (as JSON.stringify does); -0 reads back as 0.
   */
  meta: unknown;
  tensors: Record<string, ContainerTensor>;
}

export interface DecodeContainerOptions {
  /** Reject files whose `kind` differs (MsnFormatError). */
  expectedKind?: string;
  /** Reject inputs larger than this many bytes before looking inside; default 2 GiB. */
  maxBytes?: number;
  /**
   * Called with the header's `meta` once the header is checked and before
   * any tensor is copied out; throw to refuse the file. Lets a caller check
   * what the metadata promises (a config, sizes) before paying for the data.
   */
  checkMeta?: (meta: unknown) => void;
}

const formatError: Fail = failWith('Checkpoint container: ');

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)}`;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return typeof value;
}

/** Quote a name for a message without letting a hostile header flood it. */
function quote(name: string): string {
  return JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}...` : name);
}

// ---------------------------------------------------------------- encoding

/**
 * Pack `kind`, `meta` and named float32 tensors into one buffer (layout in
 * the module comment). Throws MsnValueError for inputs that could not be read
 * back: empty names or kind, shapes that do not match the data, NaN or
 * Infinity in a tensor, or meta that is not plain JSON.
 */
export function encodeContainer(contents: ContainerContents): Uint8Array {
  if (!isRecord(contents)) throw new MsnValueError(`encodeContainer: expected { kind, meta, tensors }, got ${describe(contents)}.`);
  const { kind, meta, tensors } = contents;
  if (typeof kind !== 'string' || kind.length === 0) {
    throw new MsnValueError(`encodeContainer: kind must be a non-empty string such as 'msn-checkpoint', got ${describe(kind)}.`);
  }
  if (meta === undefined) throw new MsnValueError('encodeContainer: meta is undefined; pass null (or {}) when there is no metadata.');
  checkMeta(meta, 'meta', 0, new Set());
  if (!isRecord(tensors)) {
    throw new MsnValueError(`encodeContainer: tensors must be an object mapping names to { shape, data }, got ${describe(tensors)}.`);
  }

  type Entry = { name: string; dtype: 'float32'; shape: number[]; offset: number; length: number; crc32: number };
  const entries: Entry[] = [];
  const datas: Float32Array[] = [];
  let payloadBytes = 0;
  for (const [name, tensor] of Object.entries(tensors)) {
    if (name.length === 0) throw new MsnValueError('encodeContainer: a tensor has an empty name; give every tensor a non-empty name.');
    if (!isRecord(tensor) || !Array.isArray(tensor.shape) || !(tensor.data instanceof Float32Array)) {
      throw new MsnValueError(
        `encodeContainer: tensor ${quote(name)} must be { shape: number[], data: Float32Array }; convert other arrays with Float32Array.from.`,
      );
    }
    const shape = tensor.shape as unknown[];
    const data = tensor.data;
    let size = 1;
    for (const d of shape) {
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
        throw new MsnValueError(`encodeContainer: tensor ${quote(name)} has shape ${JSON.stringify(shape)}; dimensions must be non-negative integers.`);
      }
      size *= d;
    }
    if (size !== data.length) {
      throw new MsnValueError(
        `encodeContainer: tensor ${quote(name)} has shape ${JSON.stringify(shape)} (${size} values) but data holds ${data.length}; reshape or fix the data.`,
      );
    }
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (v - v !== 0) {
        throw new MsnValueError(
          `encodeContainer: tensor ${quote(name)} holds ${v} at index ${i}; checkpoints must be finite (the run has diverged: resume from an earlier checkpoint or lower the learning rate).`,
        );
      }
    }
    const le = littleEndianBytes(data);
    entries.push({ name, dtype: 'float32', shape: [...(shape as number[])], offset: payloadBytes, length: data.length, crc32: crc32(le) });
    datas.push(data);
    payloadBytes += data.length * 4;
  }

  const header = {
    format_version: CONTAINER_FORMAT_VERSION,
    kind,
    meta,
    payload_bytes: payloadBytes,
    tensors: entries,
  };
  const headerBytes = new TextEncoder().encode(JSON.stringify(header));
  if (headerBytes.length > 0xffffffff) throw new MsnValueError('encodeContainer: the JSON header exceeds 4 GiB; keep large data in tensors, not in meta.');
  const dataStart = alignUp(PREAMBLE + headerBytes.length, 4);
  let out: Uint8Array;
  try {
    out = new Uint8Array(dataStart + payloadBytes);
  } catch (err) {
    throw new MsnValueError(
      `encodeContainer: cannot allocate ${dataStart + payloadBytes} bytes (${(err as Error).message}); split the tensors over several files.`,
    );
  }
  out.set(MAGIC_BYTES, 0);
  writeUintLE(out, 8, headerBytes.length, 4);
  out.set(headerBytes, PREAMBLE);
  for (let t = 0; t < entries.length; t++) out.set(littleEndianBytes(datas[t]), dataStart + entries[t].offset);
  writeUintLE(out, 12, crc32(out, PREAMBLE), 4);
  return out;
}

/** Throw unless `value` survives JSON.stringify/JSON.parse unchanged (up to dropped undefined properties and -0). */
function checkMeta(value: unknown, path: string, depth: number, ancestors: Set<object>): void {
  if (depth > MAX_META_DEPTH) throw new MsnValueError(`encodeContainer: ${path} nests deeper than ${MAX_META_DEPTH} levels; flatten the metadata.`);
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new MsnValueError(`encodeContainer: ${path} is ${value}; JSON cannot hold it, store it as a string or null.`);
    return;
  }
  if (typeof value !== 'object') {
    throw new MsnValueError(`encodeContainer: ${path} is a ${typeof value}; meta may hold only null, booleans, finite numbers, strings, arrays and plain objects.`);
  }
  if (ancestors.has(value)) throw new MsnValueError(`encodeContainer: ${path} refers back to one of its parents (a cycle); JSON cannot hold it.`);
  ancestors.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if (value[i] === undefined) throw new MsnValueError(`encodeContainer: ${path}[${i}] is undefined (or a hole); use null.`);
      checkMeta(value[i], `${path}[${i}]`, depth + 1, ancestors);
    }
  } else {
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto !== Object.prototype && proto !== null) {
      const name = (value as { constructor?: { name?: string } }).constructor?.name ?? 'object';
      throw new MsnValueError(
        `encodeContainer: ${path} is a ${name}, not a plain object; convert it first (dates to ISO strings, typed arrays to tensors or number arrays).`,
      );
    }
    for (const [k, v] of Object.entries(value)) {
      if (v !== undefined) checkMeta(v, `${path}.${k}`, depth + 1, ancestors);
    }
  }
  ancestors.delete(value);
}

// ---------------------------------------------------------------- decoding

interface TensorRef {
  name: string;
  shape: number[];
  /** Byte offset into the data section. */
  offset: number;
  length: number;
  crc32: number;
}

interface ParsedHeader {
  kind: string;
  meta: unknown;
  dataStart: number;
  refs: TensorRef[];
}

/**
 * Read a buffer written by `encodeContainer`. Throws MsnFormatError for
 * anything but an intact container (wrong magic or version, size over
 * `maxBytes`, checksum mismatch, malformed header, lying shapes or offsets,
 * non-finite values, unexpected kind). The returned tensors never share
 * memory with `bytes`.
 */
export function decodeContainer(bytes: Uint8Array, options: DecodeContainerOptions = {}): ContainerContents {
  if (!(bytes instanceof Uint8Array)) {
    throw new MsnValueError(`decodeContainer: expected a Uint8Array, got ${describe(bytes)}; wrap an ArrayBuffer with new Uint8Array(buffer).`);
  }
  if (!isRecord(options)) throw new MsnConfigError(`decodeContainer: options must be an object, got ${describe(options)}.`);
  const { expectedKind, maxBytes = DEFAULT_CONTAINER_MAX_BYTES, checkMeta } = options;
  if (checkMeta !== undefined && typeof checkMeta !== 'function') {
    throw new MsnConfigError(`decodeContainer: checkMeta must be a function when given, got ${describe(checkMeta)}.`);
  }
  if (typeof maxBytes !== 'number' || !Number.isSafeInteger(maxBytes) || maxBytes < PREAMBLE) {
    throw new MsnConfigError(`decodeContainer: maxBytes must be an integer of at least ${PREAMBLE}, got ${describe(maxBytes)}.`);
  }
  if (expectedKind !== undefined && (typeof expectedKind !== 'string' || expectedKind.length === 0)) {
    throw new MsnConfigError(`decodeContainer: expectedKind must be a non-empty string when given, got ${describe(expectedKind)}.`);
  }

  if (bytes.length > maxBytes) {
    formatError(`the input is ${bytes.length} bytes, over the limit of ${maxBytes}; pass a larger maxBytes if you trust this file.`);
  }
  if (bytes.length < PREAMBLE) {
    formatError(`the input is only ${bytes.length} bytes, shorter than the ${PREAMBLE}-byte preamble; ${RESTORE}.`);
  }
  for (let i = 0; i < MAGIC_BYTES.length; i++) {
    if (bytes[i] !== MAGIC_BYTES[i]) {
      const sameFamily = i >= 7;
      formatError(
        sameFamily
          ? `the file is a newer container version ('${latin1(bytes.subarray(0, 8))}', this reader handles '${CONTAINER_MAGIC}'); upgrade msn-web.`
          : `the input does not start with '${CONTAINER_MAGIC}' (it is not an msn-web checkpoint, or its start is corrupted).`,
      );
    }
  }
  const headerLength = readUintLE(bytes, 8, 4);
  if (headerLength === 0 || headerLength > bytes.length - PREAMBLE) {
    formatError(`the header length field says ${headerLength} bytes but ${bytes.length - PREAMBLE} follow the preamble; ${RESTORE}.`);
  }

  if (crc32(bytes, PREAMBLE) !== readUintLE(bytes, 12, 4)) {
    formatError(`checksum mismatch${diagnose(bytes, headerLength)}: ${RESTORE}.`);
  }

  const header = parseHeader(bytes, headerLength);
  if (expectedKind !== undefined && header.kind !== expectedKind) {
    formatError(`expected a '${expectedKind}' file but this one holds ${quote(header.kind)}; check which file you opened.`);
  }
  checkMeta?.(header.meta);

  const entries: [string, ContainerTensor][] = [];
  for (const ref of header.refs) {
    const start = header.dataStart + ref.offset;
    const end = start + ref.length * 4;
    if (crc32(bytes, start, end) !== ref.crc32) formatError(`tensor ${quote(ref.name)} fails its checksum: ${RESTORE}.`);
    const data = fromLittleEndian(Float32Array, bytes, start, ref.length);
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (v - v !== 0) {
        formatError(`tensor ${quote(ref.name)} holds ${v} at index ${i}; a checkpoint must be finite, so restore an earlier one.`);
      }
    }
    entries.push([ref.name, { shape: ref.shape, data }]);
  }
  // fromEntries defines own properties, so a tensor named "__proto__" stays a plain entry.
  return { kind: header.kind, meta: header.meta, tensors: Object.fromEntries(entries) };
}

function latin1(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '?';
  return s;
}

/** After a checksum mismatch: name the damaged part if the header still parses. */
function diagnose(bytes: Uint8Array, headerLength: number): string {
  let header: ParsedHeader;
  try {
    header = parseHeader(bytes, headerLength);
  } catch {
    return ' (the header is damaged, or the file was cut short)';
  }
  const bad: string[] = [];
  for (const ref of header.refs) {
    const start = header.dataStart + ref.offset;
    if (crc32(bytes, start, start + ref.length * 4) !== ref.crc32) bad.push(ref.name);
  }
  if (bad.length === 0) return ' (in the header or padding)';
  const more = bad.length > 1 ? ` and ${bad.length - 1} other tensor${bad.length > 2 ? 's' : ''}` : '';
  return ` in tensor ${quote(bad[0])}${more}`;
}

/** Parse and validate the JSON header against the real byte count. Every failure is an MsnFormatError. */
function parseHeader(bytes: Uint8Array, headerLength: number): ParsedHeader {
  let header: unknown;
  try {
    const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(PREAMBLE, PREAMBLE + headerLength));
    header = JSON.parse(text);
  } catch (err) {
    formatError(`the header is not valid UTF-8 JSON (${(err as Error)?.message ?? String(err)}); ${RESTORE}.`);
  }
  if (!isRecord(header)) formatError(`the header is ${describe(header)}, not an object; ${RESTORE}.`);
  const version = header.format_version;
  if (version !== CONTAINER_FORMAT_VERSION) {
    if (typeof version === 'number' && Number.isInteger(version) && version > CONTAINER_FORMAT_VERSION) {
      formatError(`format_version ${version} is newer than this reader (${CONTAINER_FORMAT_VERSION}); upgrade msn-web.`);
    }
    formatError(`format_version is ${describe(version)}, expected ${CONTAINER_FORMAT_VERSION}; ${RESTORE}.`);
  }
  const kind = header.kind;
  if (typeof kind !== 'string' || kind.length === 0) formatError(`the header's kind is ${describe(kind)}, expected a non-empty string.`);
  if (!Object.prototype.hasOwnProperty.call(header, 'meta')) formatError('the header has no meta entry.');

  const dataStart = alignUp(PREAMBLE + headerLength, 4);
  if (dataStart > bytes.length) formatError(`the data section would start at byte ${dataStart}, past the end of the ${bytes.length}-byte file; ${RESTORE}.`);
  for (let i = PREAMBLE + headerLength; i < dataStart; i++) {
    if (bytes[i] !== 0) formatError(`padding byte ${i} after the header is ${bytes[i]}, expected 0; ${RESTORE}.`);
  }
  const payloadBytes = header.payload_bytes;
  const available = bytes.length - dataStart;
  if (typeof payloadBytes !== 'number' || !Number.isSafeInteger(payloadBytes) || payloadBytes < 0 || payloadBytes % 4 !== 0) {
    formatError(`payload_bytes is ${describe(payloadBytes)}, expected a non-negative multiple of 4.`);
  }
  if (payloadBytes !== available) {
    formatError(`the header describes ${payloadBytes} data bytes but ${available} follow it; ${RESTORE}.`);
  }

  const list = header.tensors;
  if (!Array.isArray(list)) formatError(`the header's tensors entry is ${describe(list)}, expected an array.`);
  const names = new Set<string>();
  const refs = list.map((entry: unknown, t: number) => parseTensorRef(entry, t, names, payloadBytes));
  checkNoOverlap(refs);
  return { kind, meta: header.meta, dataStart, refs };
}

/** Entry `t` of the header's tensor table, checked on its own and against the data section (`names` collects the names seen so far). */
function parseTensorRef(entry: unknown, t: number, names: Set<string>, payloadBytes: number): TensorRef {
  const maxElements = payloadBytes / 4;
  if (!isRecord(entry)) formatError(`tensors[${t}] is ${describe(entry)}, expected an object.`);
  const { name, dtype, shape, offset, length, crc32: crc } = entry;
  if (typeof name !== 'string' || name.length === 0) formatError(`tensors[${t}].name is ${describe(name)}, expected a non-empty string.`);
  if (names.has(name)) formatError(`tensor name ${quote(name)} appears twice; names must be unique.`);
  names.add(name);
  if (dtype !== 'float32') formatError(`tensor ${quote(name)} has dtype ${describe(dtype)}; this reader supports only 'float32'.`);
  if (!Array.isArray(shape)) formatError(`tensor ${quote(name)} has shape ${describe(shape)}, expected an array of non-negative integers.`);
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      formatError(`tensor ${quote(name)} has dimension ${describe(d)}; dimensions must be non-negative integers.`);
    }
  }
  // The product is checked against the real payload as it grows, so a
  // lying shape fails here before anything is allocated.
  let size = shape.includes(0) ? 0 : 1;
  for (let i = 0; i < shape.length && size > 0; i++) {
    size *= shape[i] as number;
    if (size > maxElements) {
      formatError(`tensor ${quote(name)} has shape ${JSON.stringify(shape.slice(0, 16))} but the data section holds only ${maxElements} values.`);
    }
  }
  if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0) {
    formatError(`tensor ${quote(name)} has length ${describe(length)}, expected a non-negative integer.`);
  }
  if (length !== size) formatError(`tensor ${quote(name)} has length ${length} but its shape holds ${size} values.`);
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0 || offset % 4 !== 0) {
    formatError(`tensor ${quote(name)} has offset ${describe(offset)}, expected a non-negative multiple of 4.`);
  }
  if (offset + length * 4 > payloadBytes) {
    formatError(`tensor ${quote(name)} spans bytes ${offset}..${offset + length * 4} but the data section has ${payloadBytes}; ${RESTORE}.`);
  }
  if (typeof crc !== 'number' || !Number.isInteger(crc) || crc < 0 || crc > 0xffffffff) {
    formatError(`tensor ${quote(name)} has crc32 ${describe(crc)}, expected a uint32.`);
  }
  return { name, shape: shape as number[], offset, length, crc32: crc };
}

/** Non-overlapping: sorted by start, each tensor must end before the next starts. Empty tensors occupy no bytes and cannot overlap anything. */
function checkNoOverlap(refs: TensorRef[]): void {
  const spans = refs.filter((r) => r.length > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < spans.length; i++) {
    const prev = spans[i - 1];
    if (prev.offset + prev.length * 4 > spans[i].offset) {
      formatError(`tensors ${quote(prev.name)} and ${quote(spans[i].name)} overlap in the data section; ${RESTORE}.`);
    }
  }
}
