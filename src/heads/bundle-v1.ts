/**
 * Reader of the first head byte format, "MSNHEAD1", which saveHead's bytes
 * used until heads moved into the tensor container (bundle.ts). Heads users
 * saved that way must keep loading and predicting exactly as before, so this
 * reader stays as it was; nothing writes this format any more.
 *
 *   bytes 0..7    ASCII "MSNHEAD1"
 *   bytes 8..11   uint32 LE: length H of the JSON header
 *   bytes 12..15  uint32 LE: CRC-32 of every byte from 16 to the end
 *   16..16+H      UTF-8 JSON: the bundle with each array's `data` replaced by
 *                 `offset` (in float32 elements into the payload), plus
 *                 `payloadFloats`
 *   then          zero padding to a multiple of 4 bytes
 *   then          the float32 payload, little-endian
 */
import {
  type BundleArray,
  type HeadBundle,
  type LoadHeadOptions,
  checkArrayTable,
  checkBundleFingerprint,
  checkFields,
  fail,
  isRecord,
  validateBundle,
} from './bundle-format.js';
import { crc32 } from '../util/crc32.js';
import { alignUp, fromLittleEndian, readUintLE } from '../util/bytes.js';

export const V1_MAGIC = 'MSNHEAD1';
const PREAMBLE = 16;

/**
 * Reads version-1 bytes; throws MsnFormatError on any damage. Everything
 * in the header is checked before a value is decoded: the fields and their
 * limits, then the fingerprint (`expectedFingerprint`, MsnConfigError), then
 * the arrays table: only this kind's arrays, each inside the payload, no two
 * sharing bytes (aliased entries would expand one payload many times over).
 */
export function bundleFromV1Bytes(bytes: Uint8Array, options: LoadHeadOptions = {}): HeadBundle {
  if (!(bytes instanceof Uint8Array)) fail('expected a Uint8Array.');
  if (bytes.length < PREAMBLE || String.fromCharCode(...bytes.subarray(0, 8)) !== V1_MAGIC) {
    fail(`bytes do not start with '${V1_MAGIC}' (not a head bundle, or truncated).`);
  }
  if (crc32(bytes.subarray(PREAMBLE)) !== readUintLE(bytes, 12, 4)) {
    fail('checksum mismatch: the bytes were truncated or altered after saving.');
  }
  const headerLength = readUintLE(bytes, 8, 4);
  if (PREAMBLE + headerLength > bytes.length) fail(`header says ${headerLength} bytes but only ${bytes.length - PREAMBLE} follow.`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(PREAMBLE, PREAMBLE + headerLength)));
  } catch (err) {
    fail(`header is not valid UTF-8 JSON (${(err as Error).message}).`);
  }
  if (!isRecord(header) || !isRecord(header.arrays)) fail('header has no arrays table.');
  const floats = header.payloadFloats;
  const start = alignUp(PREAMBLE + headerLength, 4);
  if (typeof floats !== 'number' || !Number.isInteger(floats) || floats < 0 || start + floats * 4 !== bytes.length) {
    fail(`payload should be ${String(floats)} float32 values after byte ${start}; there are ${bytes.length} bytes.`);
  }
  checkFields(header);
  checkBundleFingerprint(header as unknown as HeadBundle, options.expectedFingerprint);
  const table = header.arrays as Record<string, unknown>;
  checkArrayTable(header as unknown as HeadBundle, table);

  // Every range is checked (and the ranges against each other) before one value is read.
  const refs: { name: string; shape: number[]; offset: number; size: number }[] = [];
  for (const [name, ref] of Object.entries(table)) {
    if (!isRecord(ref) || !Array.isArray(ref.shape) || typeof ref.offset !== 'number') {
      fail(`arrays.${name} must be { shape, offset } in the header.`);
    }
    const shape = ref.shape as unknown[];
    if (!shape.every((d) => typeof d === 'number' && Number.isInteger(d) && d >= 0)) {
      fail(`arrays.${name}.shape must hold non-negative integers, got ${JSON.stringify(shape.slice(0, 8))}.`);
    }
    // Grown one dimension at a time against the payload, so no product overflows.
    let size = 1;
    for (const d of shape as number[]) {
      size *= d;
      if (size > floats) break;
    }
    const offset = ref.offset;
    if (!Number.isInteger(offset) || offset < 0 || size > floats || offset + size > floats) {
      fail(`arrays.${name} [offset ${offset}, shape ${JSON.stringify(shape.slice(0, 8))}] lies outside the payload.`);
    }
    refs.push({ name, shape: shape as number[], offset, size });
  }
  const spans = refs.filter((r) => r.size > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i].offset < spans[i - 1].offset + spans[i - 1].size) {
      fail(
        `arrays.${spans[i - 1].name} and arrays.${spans[i].name} share payload bytes, but every array must have its own range; ` +
          'the bundle is damaged or was not written by msn-web: save the head again with saveHead().',
      );
    }
  }

  const arrays: Record<string, BundleArray> = {};
  for (const { name, shape, offset, size } of refs) {
    const data = Array.from(fromLittleEndian(Float32Array, bytes, start + offset * 4, size));
    // defineProperty: a name such as "__proto__" (refused above anyway) stays an own entry.
    Object.defineProperty(arrays, name, { value: { shape, data }, enumerable: true, writable: true, configurable: true });
  }
  const { payloadFloats: _floats, ...rest } = header;
  return validateBundle({ ...rest, arrays });
}
