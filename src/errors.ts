/**
 * Typed errors. The kind of an error lives in `name`, because comlink (and
 * structured clone) keep only `name`, `message` and `stack` across a worker
 * boundary: branch on `err.name === 'MsnShapeError'`, not on `instanceof`.
 * Messages say what happened, what was expected, and what to do.
 */
export class MsnError extends Error {
  override name = 'MsnError';
}
/** A tensor or array has the wrong rank, size or channel count. */
export class MsnShapeError extends MsnError {
  override name = 'MsnShapeError';
}
/** A value is out of range, not finite, or of the wrong type. */
export class MsnValueError extends MsnError {
  override name = 'MsnValueError';
}
/** A configuration or option object is invalid. */
export class MsnConfigError extends MsnError {
  override name = 'MsnConfigError';
}
/** A file (checkpoint, model, dataset) is malformed, truncated or unsafe. */
export class MsnFormatError extends MsnError {
  override name = 'MsnFormatError';
}
/** A backend could not be initialised. */
export class MsnBackendError extends MsnError {
  override name = 'MsnBackendError';
}
/** An operation was cancelled through an AbortSignal. */
export class MsnAbortError extends MsnError {
  override name = 'AbortError';
}
/** Training produced non-finite values too many times in a row. */
export class MsnNumericalError extends MsnError {
  override name = 'MsnNumericalError';
}
/**
 * The worker that hosts the model is gone (terminated, crashed, out of
 * memory) or the client was disposed: every pending call rejects with this,
 * and so does every later call. Create a new client to continue.
 */
export class MsnWorkerError extends MsnError {
  override name = 'MsnWorkerError';
}
/** A method was called after dispose(). */
export class MsnDisposedError extends MsnError {
  override name = 'MsnDisposedError';
}

/**
 * The work does not fit in memory (the wasm heap, the GPU, or a size limit
 * that protects it): the message gives the size asked for and what to lower.
 */
export class MsnResourceError extends MsnError {
  override name = 'MsnResourceError';
}

type ErrorClass = new (message?: string, options?: { cause?: unknown }) => Error;
const ERROR_CLASSES: Record<string, ErrorClass> = {
  MsnError, MsnShapeError, MsnValueError, MsnConfigError, MsnFormatError, MsnBackendError,
  AbortError: MsnAbortError, MsnNumericalError, MsnWorkerError, MsnDisposedError, MsnResourceError,
};

/**
 * Rebuilds an error from `{name, message}` (e.g. after a worker boundary):
 * msn-web kinds come back as their own class (so `instanceof` works too),
 * other names as a plain Error with that `name`.
 */
export function errorFromName(name: string, message: string, stack?: string): Error {
  const Cls = ERROR_CLASSES[name];
  const err = Cls ? new Cls(message) : new Error(message);
  if (!Cls) err.name = name;
  if (stack) err.stack = stack;
  return err;
}
