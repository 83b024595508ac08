/**
 * The version-1 head byte format ("MSNHEAD1"), written the way saveHead's
 * bytes (`bundleToBytes`) were written up to msn-web 3f4be0f. msn-web now
 * saves heads in the tensor container; this writer stays with the tests so the
 * v1 reader (src/heads/bundle-v1.ts), which must keep loading heads users
 * saved, can be fed exact v1 bytes. test/heads/fixtures-v1.test.ts checks it
 * reproduces the committed fixtures byte for byte.
 *
 *   0..7 "MSNHEAD1" | 8..11 header length H | 12..15 CRC-32 of bytes 16..end
 *   16..16+H JSON header (the bundle with arrays as { shape, offset } and
 *   payloadFloats) | zero padding to 4 | float32 payload, little-endian
 */
import type { HeadBundle } from '../../src/heads/index.js';
import { crc32 } from '../../src/util/crc32.js';

export function writeV1(bundle: HeadBundle): Uint8Array {
  const refs: Record<string, { shape: number[]; offset: number }> = {};
  let floats = 0;
  for (const [name, array] of Object.entries(bundle.arrays)) {
    refs[name] = { shape: [...array.shape], offset: floats };
    floats += array.data.length;
  }
  const headerBytes = new TextEncoder().encode(JSON.stringify({ ...bundle, arrays: refs, payloadFloats: floats }));
  const start = (16 + headerBytes.length + 3) & ~3;
  const out = new Uint8Array(start + floats * 4);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode('MSNHEAD1'), 0);
  view.setUint32(8, headerBytes.length, true);
  out.set(headerBytes, 16);
  for (const [name, array] of Object.entries(bundle.arrays)) {
    array.data.forEach((v, i) => view.setFloat32(start + (refs[name].offset + i) * 4, v, true));
  }
  view.setUint32(12, crc32(out.subarray(16)), true);
  return out;
}
