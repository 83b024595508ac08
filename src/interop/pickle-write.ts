/**
 * A pickle opcode emitter: the writing side of pickle.ts. It emits exactly
 * the opcodes it is asked for (no memo, no framing), with the encodings
 * CPython's protocol-2 pickler uses for the same values: BININT1 / BININT2 /
 * BININT / LONG1 for ints, BINFLOAT (big-endian float64) for floats,
 * BINUNICODE for str, GLOBAL "module\nname\n" for globals.
 *
 * torch-save.ts builds `torch.save` pickles with it; the interop tests use
 * its raw `op()` to build hostile pickles byte by byte.
 */
import { MsnValueError } from '../errors.js';
import { ByteBuilder } from '../util/bytes.js';

const utf8 = new TextEncoder();

export class PickleWriter {
  private readonly out = new ByteBuilder();

  /** Raw opcode / argument bytes. */
  op(...bytes: number[]): this {
    this.out.push(...bytes);
    return this;
  }
  /** Appends an already encoded byte run (e.g. a UTF-8 string) without spreading it. */
  raw(bytes: Uint8Array): this {
    this.out.chunk(bytes.slice());
    return this;
  }
  /** Unsigned little-endian integer of `n` bytes. */
  uint(v: number, n: number): this {
    this.out.uint(v, n);
    return this;
  }
  proto(v = 2) { return this.op(0x80, v); }
  stop() { return this.op(0x2e); }
  mark() { return this.op(0x28); }
  none() { return this.op(0x4e); }
  bool(v: boolean) { return this.op(v ? 0x88 : 0x89); }
  emptyDict() { return this.op(0x7d); }
  emptyList() { return this.op(0x5d); }
  emptyTuple() { return this.op(0x29); }
  tuple() { return this.op(0x74); }
  setitem() { return this.op(0x73); }
  setitems() { return this.op(0x75); }
  append() { return this.op(0x61); }
  appends() { return this.op(0x65); }
  reduce() { return this.op(0x52); }
  build() { return this.op(0x62); }
  persid() { return this.op(0x51); }
  pop() { return this.op(0x30); }
  put(i: number) { return i < 256 ? this.op(0x71, i) : this.op(0x72).uint(i, 4); }
  get(i: number) { return i < 256 ? this.op(0x68, i) : this.op(0x6a).uint(i, 4); }
  /** A Python int (a number must be an integer; bigints beyond 2^53 stay exact). */
  int(v: number | bigint) {
    if (typeof v === 'number') {
      if (!Number.isInteger(v)) throw new MsnValueError(`PickleWriter.int: ${v} is not an integer.`);
      if (v >= 0 && v < 256) return this.op(0x4b, v);
      if (v >= 0 && v < 65536) return this.op(0x4d).uint(v, 2);
      if (v >= -(2 ** 31) && v < 2 ** 31) return this.op(0x4a).uint(v >>> 0, 4);
    }
    // LONG1 with 8 bytes, two's complement (as CPython writes int64-range values)
    const big = BigInt(v);
    if (big < -(2n ** 63n) || big >= 2n ** 63n) throw new MsnValueError(`PickleWriter.int: ${big} does not fit in 64 bits.`);
    const u = BigInt.asUintN(64, big);
    this.op(0x8a, 8);
    for (let i = 0n; i < 8n; i++) this.out.push(Number((u >> (8n * i)) & 0xffn));
    return this;
  }
  /** A Python float (BINFLOAT: big-endian IEEE 754 double). */
  float(v: number) {
    const dv = new DataView(new ArrayBuffer(8));
    dv.setFloat64(0, v, false);
    return this.op(0x47, ...new Uint8Array(dv.buffer));
  }
  str(s: string) {
    const e = utf8.encode(s);
    this.op(0x58).uint(e.length, 4);
    return e.length > 4096 ? this.raw(e) : this.op(...e);
  }
  global(module: string, name: string) {
    return this.op(0x63, ...utf8.encode(`${module}\n${name}\n`));
  }
  /** A tuple of ints (MARK ... TUPLE; EMPTY_TUPLE for none). */
  tupleOf(items: readonly number[]) {
    if (items.length === 0) return this.emptyTuple();
    this.mark();
    for (const v of items) this.int(v);
    return this.tuple();
  }
  /** Bytes written so far. */
  get length(): number {
    return this.out.length;
  }
  bytes(): Uint8Array {
    return this.out.bytes();
  }
}
