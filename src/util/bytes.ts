/**
 * Byte helpers shared by every binary format msn-web reads or writes (the
 * tensor container, the model format, ZIP, pickle, safetensors, torch
 * checkpoints). All those formats are little-endian; the helpers here are the
 * one place that knows how to get between their bytes and typed arrays on any
 * host, how to align an offset, and how to read an integer without DataView's
 * RangeError. Browser-safe (no Node imports).
 */
import { MsnFormatError } from '../errors.js';

/**
 * Whether this host stores numbers little-endian (every browser and Node
 * platform msn-web runs on does). The file formats msn-web reads and writes
 * are little-endian, so typed arrays can view their bytes directly when this
 * is true; the readers and writers swap or refuse otherwise.
 */
export const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// ---------------------------------------------------------------- failing

/** Throws one format's error; formats bind their message prefix once (see `failWith`). */
export type Fail = (message: string) => never;

/**
 * A thrower for one format: `const fail: Fail = failWith('ZIP: ')` throws
 * MsnFormatError('ZIP: ' + message). Declare the constant with the `Fail`
 * type: TypeScript narrows after a `never` call only through an explicitly
 * typed name.
 */
export function failWith(prefix: string): Fail {
  return (message) => {
    throw new MsnFormatError(`${prefix}${message}`);
  };
}

// ---------------------------------------------------------------- offsets

/** `n` rounded up to the next multiple of `to` (exact for every safe integer, unlike a bit mask). */
export function alignUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

// ---------------------------------------------------------------- integers

/**
 * The unsigned little-endian integer of `size` bytes (1..8) at `pos`. Exact
 * below 2^53; a larger value comes back above Number.MAX_SAFE_INTEGER, so
 * callers refuse it with one comparison. The caller checks the bounds; a
 * byte past the end reads as 0 (as the ZIP reader's bit arithmetic always
 * did), never as NaN, which would slip through every later comparison.
 */
export function readUintLE(bytes: Uint8Array, pos: number, size: number): number {
  let v = 0;
  for (let i = size - 1; i >= 0; i--) v = v * 256 + (bytes[pos + i] ?? 0);
  return v;
}

/** Writes `v` (0 <= v < 2^53) as `size` little-endian bytes at `pos`. The caller checks the bounds. */
export function writeUintLE(bytes: Uint8Array, pos: number, v: number, size: number): void {
  for (let i = 0; i < size; i++) bytes[pos + i] = Math.floor(v / 2 ** (8 * i)) & 0xff;
}

/** Appends `v` (0 <= v < 2^53) as `size` little-endian bytes to a byte list being built. */
export function pushUintLE(out: number[], v: number, size: number): void {
  for (let i = 0; i < size; i++) out.push(Math.floor(v / 2 ** (8 * i)) & 0xff);
}

/**
 * A byte string of unknown final length, built front to back (the ZIP and
 * pickle writers): small fields collect in a number list, large byte runs
 * are kept as whole chunks (never spread into the list), and `bytes()` joins
 * everything once.
 */
export class ByteBuilder {
  private readonly chunks: Uint8Array[] = [];
  private cur: number[] = [];
  private flushed = 0;

  /** Bytes written so far (the offset of the next one). */
  get length(): number {
    return this.flushed + this.cur.length;
  }
  /** Appends single bytes. */
  push(...bytes: number[]): void {
    for (const b of bytes) this.cur.push(b);
    if (this.cur.length >= 1 << 16) this.flush();
  }
  /** Appends `v` (0 <= v < 2^53) as `size` little-endian bytes. */
  uint(v: number, size: number): void {
    pushUintLE(this.cur, v, size);
  }
  /** Appends a byte run as one chunk, not copied: leave it unchanged until `bytes()`. */
  chunk(bytes: Uint8Array): void {
    this.flush();
    this.chunks.push(bytes);
    this.flushed += bytes.length;
  }
  /** Everything written, in one fresh array. */
  bytes(): Uint8Array {
    this.flush();
    const out = new Uint8Array(this.flushed);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
  private flush(): void {
    if (this.cur.length === 0) return;
    this.chunks.push(Uint8Array.from(this.cur));
    this.flushed += this.cur.length;
    this.cur = [];
  }
}

/**
 * Bounds-checked little-endian reads at absolute offsets, for parsers of
 * hostile files: `need` fails with a typed error naming what lies outside
 * the input and where, so no RangeError can escape.
 */
export class ByteReader {
  constructor(
    readonly bytes: Uint8Array,
    private readonly fail: Fail,
  ) {}

  /** Fails unless bytes [pos, pos + len) lie inside the input. */
  need(pos: number, len: number, what: string): void {
    if (!Number.isSafeInteger(pos) || pos < 0 || len < 0 || pos + len > this.bytes.length) {
      this.fail(`${what} at offset ${pos} (+${len} bytes) lies outside the ${this.bytes.length}-byte file (truncated or corrupt)`);
    }
  }
  u16(pos: number): number {
    return readUintLE(this.bytes, pos, 2);
  }
  u32(pos: number): number {
    return readUintLE(this.bytes, pos, 4);
  }
  /** u64 as a number; anything from 2^53 up cannot be a real offset or size here. */
  u64(pos: number, what: string): number {
    const v = readUintLE(this.bytes, pos, 8);
    if (v > Number.MAX_SAFE_INTEGER) this.fail(`${what} is an impossible 64-bit value`);
    return v;
  }
}

// ---------------------------------------------------------------- typed arrays

/** The numeric typed arrays a format stores (one element size each). */
export type LittleEndianArray = Float32Array | Float64Array | Uint16Array | Int16Array | Int32Array | Uint32Array | BigInt64Array;
type ArrayType<T extends LittleEndianArray> = { new (buffer: ArrayBuffer): T; readonly BYTES_PER_ELEMENT: number };

/** Reverses the byte order of every `size`-byte element of `bytes`, in place. */
export function swapBytes(bytes: Uint8Array, size: number): void {
  for (let i = 0; i + size <= bytes.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = bytes[a];
      bytes[a] = bytes[b];
      bytes[b] = t;
    }
  }
}

/** The little-endian bytes of `data`: a view of it on little-endian hosts, a swapped copy otherwise. */
export function littleEndianBytes(data: LittleEndianArray): Uint8Array {
  const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (HOST_LITTLE_ENDIAN) return view;
  const copy = view.slice();
  swapBytes(copy, data.BYTES_PER_ELEMENT);
  return copy;
}

/**
 * `count` little-endian elements of `type` starting at byte `start`, copied
 * into a fresh (hence aligned, and never aliasing the input) array. The
 * caller checks that the bytes exist.
 */
export function fromLittleEndian<T extends LittleEndianArray>(type: ArrayType<T>, bytes: Uint8Array, start: number, count: number): T {
  // new Uint8Array(view) copies; Buffer#slice would not.
  const copy = new Uint8Array(bytes.subarray(start, start + count * type.BYTES_PER_ELEMENT));
  if (!HOST_LITTLE_ENDIAN) swapBytes(copy, type.BYTES_PER_ELEMENT);
  return new type(copy.buffer);
}
