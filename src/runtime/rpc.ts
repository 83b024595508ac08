/**
 * comlink plumbing shared by the client and the worker hosts: errors keep
 * their kind across the boundary. comlink's own handler sends only
 * name/message/stack and rebuilds a plain Error; this one rebuilds msn-web
 * errors as their own classes (so both `err.name === 'MsnShapeError'` and
 * `instanceof MsnShapeError` work on the main thread) and turns thrown
 * non-Error values (e.g. `{ message }` objects) into Errors. Registered in
 * both threads (each has its own comlink module).
 */
import * as Comlink from 'comlink';
import { MsnValueError, errorFromName } from '../errors.js';

interface WireError {
  isError: boolean;
  value: unknown;
}

const MARK = Symbol.for('msn-web.error-handler');

/** Installs the error transfer handler (idempotent). */
export function registerErrorTransfer(): void {
  const base = Comlink.transferHandlers.get('throw') as (Comlink.TransferHandler<unknown, unknown> & { [MARK]?: true }) | undefined;
  if (!base || base[MARK]) return;
  const handler: Comlink.TransferHandler<{ value: unknown }, WireError> & { [MARK]: true } = {
    [MARK]: true,
    canHandle: (v): v is { value: unknown } => base.canHandle(v),
    serialize({ value }) {
      if (value instanceof Error) {
        return [{ isError: true, value: { name: value.name, message: value.message, stack: value.stack } }, []];
      }
      if (typeof value === 'object' && value !== null && typeof (value as { message?: unknown }).message === 'string') {
        const v = value as { name?: unknown; message: string };
        return [{ isError: true, value: { name: typeof v.name === 'string' ? v.name : 'Error', message: v.message } }, []];
      }
      return [{ isError: false, value }, []];
    },
    deserialize(wire) {
      if (wire.isError) {
        const v = wire.value as { name: string; message: string; stack?: string };
        throw errorFromName(v.name, v.message, v.stack);
      }
      throw wire.value;
    },
  };
  Comlink.transferHandlers.set('throw', handler as Comlink.TransferHandler<unknown, unknown>);
}

/** Node 20 has no ArrayBuffer.prototype.detached; a view on a detached buffer cannot be constructed. */
function isDetached(buf: ArrayBufferLike): boolean {
  try {
    new Uint8Array(buf);
    return false;
  } catch {
    return true;
  }
}

/**
 * Marks a typed array's buffer for transfer when the array covers all of it;
 * a view into a larger (or shared) buffer is copied first, so transferring
 * never detaches memory the caller did not pass.
 */
export function transferable<T extends Float32Array | Uint8Array | Uint8ClampedArray>(a: T): { value: T; transfer: Transferable[] } {
  if (a.buffer.byteLength === 0) {
    // An array that is simply empty goes through (the engine then says what shape it expected).
    if (!isDetached(a.buffer)) return { value: a, transfer: [] };
    // Node silently drops a message whose transfer list holds a detached buffer: fail loudly instead.
    throw new MsnValueError(
      'The pixel buffer is empty or detached: an array passed to an earlier call was transferred to the worker. ' +
        'Pass { transfer: false } to keep your copy, or pass a fresh array.',
    );
  }
  if (typeof SharedArrayBuffer !== 'undefined' && a.buffer instanceof SharedArrayBuffer) return { value: a, transfer: [] };
  if (a.byteOffset === 0 && a.byteLength === a.buffer.byteLength) return { value: a, transfer: [a.buffer as ArrayBuffer] };
  const copy = a.slice() as T;
  return { value: copy, transfer: [copy.buffer as ArrayBuffer] };
}
