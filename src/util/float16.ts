/**
 * IEEE 754 binary16 ("half") and bfloat16 conversions, in one place for the
 * model format (which stores weights as half), the safetensors reader and
 * the torch checkpoint reader (which widen half and bfloat16 tensors).
 *
 * Widening is exact in both cases: every half and every bfloat16 value is a
 * float32. Narrowing float32 to half rounds to nearest, ties to even, as
 * numpy and torch do, so weights written here match theirs bit for bit.
 */

/** The largest finite half, 65504; a float32 above it becomes ±Infinity. */
export const FLOAT16_MAX = 65504;

/** One float32 bit pattern -> binary16 bits, round to nearest, ties to even; NaN stays NaN, overflow -> ±Inf. */
function halfBits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): value = m * 2^(e - 25) with the implicit bit restored.
    if (e < -10) return sign; // below half the smallest subnormal: rounds to ±0
    const m = mant | 0x800000;
    const shift = 14 - e; // 14..24
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1) === 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++; // a carry into the exponent is correct (up to Inf)
  return sign | h;
}

/** float32 values -> binary16 bit patterns (round to nearest even). */
export function float32ToFloat16(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = halfBits(bits[i]);
  return out;
}

/** Table of all 65536 half values as float32, built on first use (256 KiB). */
let HALF_TABLE: Float32Array | undefined;
function halfTable(): Float32Array {
  if (HALF_TABLE) return HALF_TABLE;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) t[h] = sign * frac * 2 ** -24; // zero or subnormal
    else if (exp === 0x1f) t[h] = frac ? NaN : sign * Infinity;
    else t[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  HALF_TABLE = t;
  return t;
}

/** binary16 bit patterns -> float32 values (exact). */
export function float16ToFloat32(src: Uint16Array): Float32Array {
  const t = halfTable();
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = t[src[i]];
  return out;
}

/** One binary16 bit pattern (0..65535) -> its value (exact). */
export function float16BitsToNumber(h: number): number {
  return halfTable()[h & 0xffff];
}

/** bfloat16 is the upper half of a float32: shifting the bits back up is the whole conversion. */
const BF_WORD = new Uint32Array(1);
const BF_VALUE = new Float32Array(BF_WORD.buffer);

/** bfloat16 bit patterns -> float32 values (exact). */
export function bfloat16ToFloat32(src: Uint16Array): Float32Array {
  const out = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = src[i] << 16;
  return new Float32Array(out.buffer);
}

/** One bfloat16 bit pattern (0..65535) -> its value (exact). */
export function bfloat16BitsToNumber(h: number): number {
  BF_WORD[0] = (h & 0xffff) << 16;
  return BF_VALUE[0];
}
