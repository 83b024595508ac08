import { describe, expect, it } from 'vitest';
import { crc32 as bundleCrc32 } from '../../src/heads/bundle.js';
import { crc32, updateCrc32 } from '../../src/util/crc32.js';
import { Rng } from '../../src/util/rng.js';
import { expectNamedError } from './container-test-helpers.js';

/** Bit-at-a-time reference: the definition, no tables. */
function referenceCrc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

function randomBytes(rng: Rng, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.nextUint32() & 0xff;
  return out;
}

describe('crc32', () => {
  it('matches the IEEE check values', () => {
    const utf8 = (s: string) => new TextEncoder().encode(s);
    expect(crc32(utf8('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    expect(crc32(utf8('The quick brown fox jumps over the lazy dog'))).toBe(0x414fa339);
    expect(crc32(new Uint8Array(32))).toBe(0x190a55ad);
    expect(crc32(new Uint8Array(32).fill(0xff))).toBe(0xff6cab0b);
  });

  it('agrees with the bit-wise definition for every length 0..300 and random ranges', () => {
    const rng = new Rng(1);
    const data = randomBytes(rng, 301);
    for (let n = 0; n <= 300; n++) expect(crc32(data.subarray(0, n)), `length ${n}`).toBe(referenceCrc32(data.subarray(0, n)));
    for (let k = 0; k < 200; k++) {
      const a = rng.nextUint32() % 301;
      const b = a + (rng.nextUint32() % (302 - a));
      expect(crc32(data, a, b), `[${a}, ${b})`).toBe(referenceCrc32(data.subarray(a, b)));
    }
  });

  it('continues over concatenations, and ignores the byteOffset of views', () => {
    const rng = new Rng(2);
    const all = randomBytes(rng, 1000);
    for (const cut of [0, 1, 7, 8, 9, 500, 999, 1000]) {
      expect(updateCrc32(crc32(all.subarray(0, cut)), all.subarray(cut))).toBe(crc32(all));
    }
    const shifted = new Uint8Array(1003);
    shifted.set(all, 3);
    expect(crc32(shifted.subarray(3))).toBe(crc32(all));
  });

  it('is what the head bundle re-exports (byte-identical refactor)', () => {
    expect(bundleCrc32).toBe(crc32);
  });

  it('rejects bad arguments with MsnValueError', () => {
    const b = new Uint8Array(4);
    expectNamedError(() => crc32([1, 2] as unknown as Uint8Array), 'MsnValueError', /Uint8Array/);
    expectNamedError(() => crc32(b, 2, 1), 'MsnValueError', /range \[2, 1\)/);
    expectNamedError(() => crc32(b, 0, 5), 'MsnValueError', /range/);
    expectNamedError(() => crc32(b, -1), 'MsnValueError', /range/);
    expectNamedError(() => updateCrc32(-1, b), 'MsnValueError', /uint32/);
  });

  it('checks 64 MiB in well under a few seconds', () => {
    const big = new Uint8Array(64 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4096) big[i] = i & 0xff;
    const t0 = performance.now();
    const value = crc32(big);
    const ms = performance.now() - t0;
    expect(value).toBe(updateCrc32(crc32(big.subarray(0, 12345)), big.subarray(12345)));
    console.log(`crc32: 64 MiB in ${ms.toFixed(0)} ms (${((64 / ms) * 1000).toFixed(0)} MiB/s)`);
    expect(ms).toBeLessThan(5000);
  });
});
