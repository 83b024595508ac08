/** Helpers for the container / atomic-file / idb-store tests: error capture and hand-assembled containers. */
import { expect } from 'vitest';
import { crc32 } from '../../src/util/crc32.js';

export function catchError(f: () => unknown): Error {
  try {
    f();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the call to throw');
}

export async function catchAsyncError(f: () => Promise<unknown>): Promise<Error> {
  try {
    await f();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the call to reject');
}

/** The call throws an error named `name` whose message matches `message`. */
export function expectNamedError(f: () => unknown, name: string, message?: RegExp): Error {
  const err = catchError(f);
  expect(err, 'expected an Error').toBeInstanceOf(Error);
  expect(err.name, err.message).toBe(name);
  if (message) expect(err.message).toMatch(message);
  return err;
}

/** Describe what `f` did: 'ok', 'MsnFormatError', or '<OtherName>: message' for anything else. */
export function outcome(f: () => unknown): string {
  try {
    f();
    return 'ok';
  } catch (err) {
    const e = err as Error;
    return e?.name === 'MsnFormatError' ? 'MsnFormatError' : `${e?.name}: ${e?.message}`;
  }
}

export const enc = (s: string) => new TextEncoder().encode(s);

/** Split a valid container into its parsed JSON header and its data section. */
export function splitContainer(bytes: Uint8Array): { header: Record<string, unknown>; payload: Uint8Array } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const h = view.getUint32(8, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(16, 16 + h))) as Record<string, unknown>;
  const start = Math.ceil((16 + h) / 4) * 4;
  return { header, payload: bytes.slice(start) };
}

/**
 * Assemble a container by hand with a correct file checksum, so only the
 * structural checks can reject it.
 */
export function assemble(
  header: string | Uint8Array | object,
  payload: Uint8Array,
  options: { magic?: string; padByte?: number; headerLength?: number } = {},
): Uint8Array {
  const hb = header instanceof Uint8Array ? header : enc(typeof header === 'string' ? header : JSON.stringify(header));
  const start = Math.ceil((16 + hb.length) / 4) * 4;
  const out = new Uint8Array(start + payload.length);
  const magic = options.magic ?? 'MSNCKPT1';
  for (let i = 0; i < 8; i++) out[i] = magic.charCodeAt(i);
  const view = new DataView(out.buffer);
  view.setUint32(8, options.headerLength ?? hb.length, true);
  out.set(hb, 16);
  out.fill(options.padByte ?? 0, 16 + hb.length, start);
  out.set(payload, start);
  view.setUint32(12, crc32(out, 16), true);
  return out;
}

/** Recompute the file checksum in place (after a deliberate edit). */
export function fixFileCrc(bytes: Uint8Array): Uint8Array {
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).setUint32(12, crc32(bytes, 16), true);
  return bytes;
}
