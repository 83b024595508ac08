/**
 * The shared byte helpers (src/util/bytes.ts) and the float16/bfloat16
 * conversions (src/util/float16.ts) on their own: every binary format
 * reads and writes through them, so a slip here breaks all of them at once.
 */
import { describe, expect, it } from 'vitest';
import { MsnFormatError } from '../../src/errors.js';
import {
  ByteReader,
  type Fail,
  alignUp,
  failWith,
  fromLittleEndian,
  littleEndianBytes,
  pushUintLE,
  readUintLE,
  swapBytes,
  writeUintLE,
} from '../../src/util/bytes.js';
import {
  FLOAT16_MAX,
  bfloat16BitsToNumber,
  bfloat16ToFloat32,
  float16BitsToNumber,
  float16ToFloat32,
  float32ToFloat16,
} from '../../src/util/float16.js';
import * as modelFormat from '../../src/io/model-format.js';

describe('little-endian integers', () => {
  it('reads and writes every width exactly, up to 2^53 - 1', () => {
    const values = [0, 1, 0xff, 0x1234, 0xdeadbeef, 2 ** 32, 2 ** 40 + 5, Number.MAX_SAFE_INTEGER];
    for (const v of values) {
      for (const size of [1, 2, 4, 8]) {
        if (v >= 2 ** (8 * size)) continue;
        const out: number[] = [];
        pushUintLE(out, v, size);
        const bytes = new Uint8Array(size + 3);
        writeUintLE(bytes, 3, v, size);
        expect([...bytes.subarray(3)], `${v} in ${size}`).toEqual(out);
        expect(readUintLE(bytes, 3, size)).toBe(v);
      }
    }
    expect(readUintLE(Uint8Array.of(0x04, 0x03, 0x02, 0x01), 0, 4)).toBe(0x01020304);
  });

  it('an 8-byte value from 2^53 up reads as unsafe, so one comparison refuses it', () => {
    const bytes = new Uint8Array(8);
    writeUintLE(bytes, 0, 2 ** 53 - 1, 8);
    expect(Number.isSafeInteger(readUintLE(bytes, 0, 8))).toBe(true);
    bytes[6] = 0x20; // 2^53
    expect(readUintLE(bytes, 0, 8)).toBeGreaterThan(Number.MAX_SAFE_INTEGER);
    expect(readUintLE(new Uint8Array(8).fill(0xff), 0, 8)).toBeGreaterThan(Number.MAX_SAFE_INTEGER);
  });

  it('bytes past the end read as 0, never NaN', () => {
    expect(readUintLE(Uint8Array.of(0x01), 0, 4)).toBe(1);
    expect(readUintLE(Uint8Array.of(0x01), 5, 4)).toBe(0);
  });

  it('ByteReader refuses ranges outside the input with a typed, located error', () => {
    const fail: Fail = failWith('TEST: ');
    const r = new ByteReader(new Uint8Array(10), fail);
    r.need(0, 10, 'all of it');
    r.need(10, 0, 'nothing at the end');
    for (const [pos, len] of [[8, 3], [-1, 2], [0.5, 1], [11, 0], [2 ** 60, 1]]) {
      expect(() => r.need(pos, len, 'a header')).toThrow(MsnFormatError);
    }
    expect(() => r.need(8, 3, 'a header')).toThrow('TEST: a header at offset 8 (+3 bytes) lies outside the 10-byte file (truncated or corrupt)');
    const big = new ByteReader(Uint8Array.of(0, 0, 0, 0, 0, 0, 0x20, 0), fail);
    expect(() => big.u64(0, 'a size')).toThrow('TEST: a size is an impossible 64-bit value');
    expect(new ByteReader(Uint8Array.of(1, 2, 3, 4), fail).u32(0)).toBe(0x04030201);
  });
});

describe('alignment', () => {
  it('rounds up to the next multiple, exactly beyond 2^32', () => {
    expect([0, 1, 3, 4, 5].map((n) => alignUp(n, 4))).toEqual([0, 4, 4, 4, 8]);
    expect(alignUp(2 ** 33 + 1, 4)).toBe(2 ** 33 + 4);
    expect(alignUp(65, 64)).toBe(128);
  });
});

describe('typed arrays to and from little-endian bytes', () => {
  it('round-trips every element type, from an unaligned offset, without aliasing the input', () => {
    const f = Float32Array.of(1.5, -0, Infinity, 3.25e-39);
    const bytes = new Uint8Array(3 + f.byteLength);
    bytes.set(littleEndianBytes(f), 3);
    const back = fromLittleEndian(Float32Array, bytes, 3, f.length);
    expect([...back]).toEqual([...f]);
    expect(Object.is(back[1], -0)).toBe(true);
    bytes[3] = 0xff;
    expect(back[0]).toBe(1.5);
    expect(readUintLE(littleEndianBytes(Uint16Array.of(0x1234)), 0, 2)).toBe(0x1234);
    const big = BigInt64Array.of(-2n, 2n ** 62n);
    expect([...fromLittleEndian(BigInt64Array, littleEndianBytes(big), 0, 2)]).toEqual([...big]);
  });

  it('copies out of a Node Buffer (whose slice() is a view)', () => {
    const buf = Buffer.from([0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]);
    const out = fromLittleEndian(Float32Array, buf, 4, 1);
    expect(out[0]).toBe(2);
    expect(out.buffer.byteLength).toBe(4);
  });

  it('littleEndianBytes views the array on a little-endian host', () => {
    const f = new Float32Array(8).subarray(2, 4);
    const b = littleEndianBytes(f);
    expect(b.buffer).toBe(f.buffer);
    expect([b.byteOffset, b.byteLength]).toEqual([8, 8]);
  });

  it('swapBytes reverses each element in place', () => {
    const b = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
    swapBytes(b, 4);
    expect([...b]).toEqual([4, 3, 2, 1, 8, 7, 6, 5]);
    swapBytes(b, 2);
    expect([...b]).toEqual([3, 4, 1, 2, 7, 8, 5, 6]);
  });
});

describe('failWith', () => {
  it('throws MsnFormatError with the format prefix', () => {
    const fail: Fail = failWith('ZIP: ');
    expect(() => fail('broken')).toThrow(MsnFormatError);
    expect(() => fail('broken')).toThrow(/^ZIP: broken$/);
  });
});

describe('float16 and bfloat16 (util/float16)', () => {
  it('is what the model format exports (one implementation)', () => {
    expect(modelFormat.float32ToFloat16).toBe(float32ToFloat16);
    expect(modelFormat.float16ToFloat32).toBe(float16ToFloat32);
  });

  it('single-value widening agrees with the array form for every bit pattern', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const half = float16ToFloat32(all);
    const bf = bfloat16ToFloat32(all);
    // Object.is: -0 must stay -0; NaN equals NaN.
    const wrong: string[] = [];
    for (let h = 0; h < 65536; h++) {
      if (!Object.is(float16BitsToNumber(h), half[h])) wrong.push(`half ${h}`);
      if (!Object.is(bfloat16BitsToNumber(h), bf[h])) wrong.push(`bfloat ${h}`);
    }
    expect(wrong.slice(0, 5)).toEqual([]);
  });

  it('widens the landmarks exactly: subnormals, the largest finite half, infinities, NaN, -0', () => {
    expect(float16BitsToNumber(0x0001)).toBe(2 ** -24);
    expect(float16BitsToNumber(0x03ff)).toBe(1023 * 2 ** -24);
    expect(float16BitsToNumber(0x0400)).toBe(2 ** -14);
    expect(float16BitsToNumber(0x7bff)).toBe(FLOAT16_MAX);
    expect(float16BitsToNumber(0x7c00)).toBe(Infinity);
    expect(float16BitsToNumber(0xfc00)).toBe(-Infinity);
    expect(Number.isNaN(float16BitsToNumber(0x7e00))).toBe(true);
    expect(Object.is(float16BitsToNumber(0x8000), -0)).toBe(true);
    expect(bfloat16BitsToNumber(0x3f80)).toBe(1);
    expect(bfloat16BitsToNumber(0xc000)).toBe(-2);
    expect(bfloat16BitsToNumber(0x0001)).toBe(2 ** -133); // a float32 subnormal
    expect(bfloat16BitsToNumber(0xff80)).toBe(-Infinity);
    expect(Number.isNaN(bfloat16BitsToNumber(0x7fc0))).toBe(true);
  });

  it('narrows a float32 subarray at an offset (reads its own elements only)', () => {
    const f = Float32Array.of(7, 1, 2 ** -24, 65520, 8).subarray(1, 4);
    expect([...float32ToFloat16(f)]).toEqual([0x3c00, 0x0001, 0x7c00]);
  });
});
