/**
 * CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, as in zip, PNG and
 * gzip). Table driven, eight bytes per step ("slicing-by-8"), so checking a
 * checkpoint of hundreds of megabytes stays well under a second.
 *
 * `crc32(bytes)` is the usual one-shot value; `updateCrc32(prev, bytes)`
 * continues a finished value over more bytes (zlib's `crc32(crc, buf)`), so
 * `updateCrc32(crc32(a), b) === crc32(concat(a, b))`.
 */
import { MsnValueError } from '../errors.js';

let tables: Uint32Array | undefined;

/** Eight 256-entry tables back to back: table k maps a byte k positions before the end. */
function getTables(): Uint32Array {
  if (tables) return tables;
  const t = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 8; k++) {
      const prev = t[(k - 1) * 256 + n];
      t[k * 256 + n] = (prev >>> 8) ^ t[prev & 0xff];
    }
  }
  tables = t;
  return t;
}

/**
 * CRC-32 of `bytes[start..end)`; 0 for an empty range.
 * The check value is `crc32(utf8('123456789')) === 0xcbf43926`.
 */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  return updateCrc32(0, bytes, start, end);
}

/** CRC-32 of (the bytes that gave `crc`) followed by `bytes[start..end)`. */
export function updateCrc32(crc: number, bytes: Uint8Array, start = 0, end = bytes.length): number {
  if (!(bytes instanceof Uint8Array)) {
    throw new MsnValueError(`crc32: expected a Uint8Array, got ${bytes === null ? 'null' : typeof bytes}; wrap other buffers in new Uint8Array(buffer).`);
  }
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > bytes.length || start > end) {
    throw new MsnValueError(`crc32: range [${start}, ${end}) is not inside the ${bytes.length} bytes given; pass 0 <= start <= end <= length.`);
  }
  if (!Number.isInteger(crc) || crc < 0 || crc > 0xffffffff) {
    throw new MsnValueError(`crc32: previous value ${crc} is not a uint32; pass 0 to start or a value returned by crc32.`);
  }
  const t = getTables();
  let c = (crc ^ 0xffffffff) | 0;
  let i = start;
  const end8 = end - ((end - start) & 7);
  for (; i < end8; i += 8) {
    const a = c ^ (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
    c =
      t[1792 + (a & 0xff)] ^
      t[1536 + ((a >>> 8) & 0xff)] ^
      t[1280 + ((a >>> 16) & 0xff)] ^
      t[1024 + (a >>> 24)] ^
      t[768 + bytes[i + 4]] ^
      t[512 + bytes[i + 5]] ^
      t[256 + bytes[i + 6]] ^
      t[bytes[i + 7]];
  }
  for (; i < end; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
